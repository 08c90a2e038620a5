"""The simulated card: one E1 span facing a virtual PSTN with scripted callers, and FXS ports with virtual agents.

It runs on the runtime's clock (real or virtual): everything it does is scheduled
at a time and happens in ``poll(now)``. With ``media=True`` callers press keys as
DTMF audio and send tones through the A-law frames, exactly as a real span would
carry them; with ``media=False`` digits travel as ``Digit`` events so that long
virtual runs skip the audio.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Callable, Iterable, Iterator

import numpy as np

from appliance.errors import DriverError
from dsp.dtmf import dtmf_generate
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import dbm0_to_amplitude
from dsp.signals import speech_like
from dsp.tones import to_int16

from ..base import (BLOCK, Alarm, CardEvent, Digit, OffHook, OnHook, PortInfo, PortKind, Released, Seized,
                    check_frames)
from .parties import AgentScript, CallerScript, CallerState, PhoneState
from .pstn import CAUSES, OutboundCalls, OutboundScript, OutboundState, tone_clip
from .faults import Faults
from .lines import AnalogLines
from .phones import PhoneActions, end_ring_burst
from .source import Source

SPAN_ALARMS = ("RED", "YELLOW", "BLUE", "LOS", "LOF")  # as DAHDI names them
UNANSWERED_OFFHOOK_S = 2.0  # an agent who picked up but got nobody puts the phone down again
PEER_GONE_HANGUP_S = 0.5  # an agent puts the phone down this long after the caller left
SPEECH_LOOP_S = 4.0  # a talking party repeats this much seeded speech
N_VOICES = 4


class SimCard(OutboundCalls, AnalogLines, Faults, PhoneActions):
    """A software card: ``n_trunks`` E1 channels (ports 0..n_trunks-1) then ``n_seats`` FXS ports.

    Parameters
    ----------
    n_trunks, n_seats : int
        Port counts; trunk ports come first in the frame arrays.
    box_number : str
        The number callers dial (the called number of every inbound call).
    agent : AgentScript
        How the virtual agents behave (one script for all seats unless ``agents`` is given).
    media : bool
        Carry digits and tones as audio (True) or as events (False).
    seed : int
        Seed of the card's random draws (talk times).
    network : dict of str to OutboundScript
        How numbers the box dials answer; any other number is vacant (``unknown``).
    tone_plan : str
        The network's tones (``dsp.toneplans``): "cn" or "us".
    """

    def __init__(
        self,
        n_trunks: int = 30,
        n_seats: int = 6,
        *,
        box_number: str = "4008001234",
        agent: AgentScript | None = None,
        agents: Iterable[AgentScript] | None = None,
        media: bool = True,
        seed: int = 0,
        network: dict[str, OutboundScript] | None = None,
        unknown: OutboundScript | None = None,
        tone_plan: str = "cn",
        n_fxo: int = 0,
    ) -> None:
        if not 1 <= n_trunks <= 31:
            raise DriverError(f"n_trunks: {n_trunks} is out of range; an E1 span has 1..31 channels")
        if not 0 <= n_seats <= 24:
            raise DriverError(f"n_seats: {n_seats} is out of range; allowed 0..24")
        if not 0 <= n_fxo <= 8:
            raise DriverError(f"n_fxo: {n_fxo} is out of range; allowed 0..8")
        self.n_trunks, self.n_seats = n_trunks, n_seats
        self.box_number = box_number
        self.media = media
        self.rng = np.random.default_rng(seed)
        self.ports = tuple(
            [PortInfo(i, PortKind.TRUNK, f"E1 1/{i + 1}", span=1) for i in range(n_trunks)]
            + [PortInfo(n_trunks + s, PortKind.FXS, f"FXS {s + 1}") for s in range(n_seats)]
            + [PortInfo(n_trunks + n_seats + k, PortKind.FXO, f"FXO {k + 1}") for k in range(n_fxo)]
        )
        self.fxo_ports = tuple(range(n_trunks + n_seats, n_trunks + n_seats + n_fxo))
        self.line_calls: dict = {}  # FXO port -> LineState of the call on that line
        scripts = list(agents) if agents is not None else [agent or AgentScript()] * n_seats
        if len(scripts) != n_seats:
            raise DriverError(f"agents: {len(scripts)} scripts given for {n_seats} seats")
        self.phones = {n_trunks + s: PhoneState(n_trunks + s, scripts[s]) for s in range(n_seats)}
        self.callers: list[CallerState] = []
        self.trunk_caller: dict[int, CallerState] = {}
        self.network = dict(network or {})
        self.unknown = unknown or OutboundScript("vacant", tone_s=6.0)
        self.tone_plan = tone_plan
        tone_clip(tone_plan, "ringback")  # a bad plan name fails here, not mid-call
        self.outbound: list[OutboundState] = []
        self.trunk_out: dict[int, OutboundState] = {}
        self.alarms: dict[int, frozenset[str]] = {1: frozenset()}  # span -> alarms raised, empty when up
        self._init_faults()
        self._now = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._out: list[CardEvent] = []
        self._src = [Source() for _ in self.ports]
        self._rx = np.zeros((len(self.ports), BLOCK), np.int16)
        self._t = np.arange(BLOCK, dtype=np.float64)
        # a few voices made once (tens of ms each), never in the tick; scaled to each party's level
        self._voices = [speech_like(SPEECH_LOOP_S, seed=seed * 100 + k, level_dbm0=0.0)
                        for k in range(N_VOICES)] if media else []

    # --- scheduling -------------------------------------------------------------------

    def _at(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), fn))

    def add_caller(self, script: CallerScript) -> CallerState:
        """Schedule one caller; returns the live state a test can inspect."""
        state = self._new_caller(script)
        self._at(script.arrive_at, lambda: self._arrive(state))
        return state

    def set_traffic(self, scripts: Iterable[CallerScript]) -> None:
        """Feed callers lazily from an iterator ordered by ``arrive_at`` (a Poisson generator).

        Only the next arrival is ever scheduled, so a day of traffic costs no memory up front.
        """
        self._schedule_next(iter(scripts))

    def _schedule_next(self, traffic: Iterator[CallerScript]) -> None:
        script = next(traffic, None)
        if script is not None:
            def arrive() -> None:
                self._arrive(self._new_caller(script))
                self._schedule_next(traffic)
            self._at(script.arrive_at, arrive)

    def _new_caller(self, script: CallerScript) -> CallerState:
        state = CallerState(script)
        self.callers.append(state)
        return state

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def poll(self, now: float) -> list[CardEvent]:
        while self._heap and self._heap[0][0] <= now:
            when, _, fn = heapq.heappop(self._heap)
            self._now = max(self._now, when)
            fn()
        self._now = now
        out, self._out = self._out, []
        return out

    # --- callers on the trunk -----------------------------------------------------------

    def _arrive(self, c: CallerState) -> None:
        free = None if self.alarms[1] else next(
            (p for p in range(self.n_trunks) if p not in self.trunk_caller and p not in self.trunk_out), None)
        if free is None:
            c.outcome, c.ended_at = "blocked", self._now  # all channels busy: the network gives congestion
            return
        c.port = free
        self.trunk_caller[free] = c
        withheld = None if c.script.number is not None else (c.script.withheld or "unavailable")
        self._out.append(Seized(free, c.script.number, self.box_number, withheld))

    def _caller_hangs_up(self, c: CallerState, outcome: str, cause: int = 16) -> None:
        if c.port is None or self.trunk_caller.get(c.port) is not c:
            return
        port = c.port
        c.outcome, c.ended_at = outcome, self._now
        del self.trunk_caller[port]
        self._silence(port)
        self._out.append(Released(port, cause))

    def _press(self, c: CallerState, keys: str) -> bool:
        """The caller presses ``keys`` now (as DTMF audio, after any sound still queued, or as events);
        False if the caller is no longer on the line."""
        if self.trunk_caller.get(c.port) is not c:
            return False
        if self.media:
            self._src[c.port].clips.append(dtmf_generate(keys, level_dbm0=-10.0, on_s=0.1, off_s=0.1))
        else:
            self._out.extend(Digit(c.port, d) for d in keys)
        return True

    def _press_digits(self, c: CallerState) -> None:
        if not self._press(c, c.script.digits):
            return
        c.digits_done_at = self._now
        c.outcome = "waiting"
        if math.isfinite(c.script.patience_s):
            self._at(self._now + c.script.patience_s, lambda: self._maybe_abandon(c))

    def _maybe_abandon(self, c: CallerState) -> None:
        if c.connected_at is None:
            self._caller_hangs_up(c, "abandoned")

    # --- phones on FXS ports --------------------------------------------------------------

    def _phone(self, port: int) -> PhoneState:
        try:
            return self.phones[port]
        except KeyError:
            raise DriverError(f"port {port} is not an FXS port of this card") from None

    def _agent_picks_up(self, ph: PhoneState, ring_id: int) -> None:
        if ph.hook != "ringing" or ph.rings != ring_id:
            return
        end_ring_burst(ph, self._now)
        ph.hook = "off"
        self._out.append(OffHook(ph.port))
        self._at(self._now + UNANSWERED_OFFHOOK_S, lambda: self._hang_up_if_alone(ph, ring_id))

    def _hang_up_if_alone(self, ph: PhoneState, ring_id: int) -> None:
        if ph.hook == "off" and ph.peer is None and ph.rings == ring_id:
            self._agent_hangs_up(ph)

    def _agent_hangs_up(self, ph: PhoneState) -> None:
        if ph.hook != "off":
            return
        ph.hook = "on"
        ph.peer = None
        self._silence(ph.port)
        self._out.append(OnHook(ph.port))

    def far_end_clears(self, port: int, cause: int = 16) -> None:
        """Whoever is on the far side of ``port`` hangs up now (a test's or a scenario's move)."""
        if port in self.trunk_caller:
            self._caller_hangs_up(self.trunk_caller[port], "completed", cause)
        elif port in self.trunk_out:
            self._out_end(self.trunk_out[port], cause)
        elif port in self.line_calls:
            self._line_caller_leaves(self.line_calls[port])
        else:
            raise DriverError(f"port {port} has no call whose far end could clear")

    def _silence(self, port: int) -> None:
        src = self._src[port]
        src.clips.clear()
        src.pos = 0
        src.tone_hz = None
        src.loop = None

    def _play_clip(self, port: int, x: np.ndarray) -> None:
        """Queue a finite sound (int16) on ``port``'s line."""
        if self.media:
            self._src[port].clips.append(x)

    def _loop_clip(self, port: int, x: np.ndarray) -> None:
        """``port``'s line repeats ``x`` (int16) until it is silenced."""
        if self.media:
            src = self._src[port]
            src.loop, src.loop_pos = x, 0

    def _talk(self, port: int, dbm0: float) -> None:
        """``port``'s far end talks: a seeded voice at ``dbm0``, looping."""
        if self.media:
            voice = self._voices[int(self.rng.integers(len(self._voices)))]
            src = self._src[port]
            src.loop, src.loop_pos = to_int16(voice * 10.0 ** (dbm0 / 20.0)), 0

    def _start_sound(self, port: int, hz: float | None, dbm0: float, speech: bool) -> None:
        """While connected a party sends a steady test tone, or a seeded voice, or nothing."""
        if not self.media:
            return
        src = self._src[port]
        if hz is not None:
            src.tone_hz, src.tone_amp, src.phase = hz, dbm0_to_amplitude(dbm0), 0.0
        elif speech:
            voice = self._voices[int(self.rng.integers(len(self._voices)))]
            src.loop, src.loop_pos = to_int16(voice * 10.0 ** (dbm0 / 20.0)), 0

    # --- commands from the core ---------------------------------------------------------

    def answer(self, port: int) -> None:
        if port in self.fxo_ports:
            self._answer_line(port)
            return
        c = self.trunk_caller.get(port)
        if c is None or c.answered_at is not None:
            return
        c.answered_at = self._now
        c.outcome = "ivr"
        self._at(self._now + c.script.digit_delay_s, lambda: self._press_digits(c))
        for delay, keys in c.script.presses:
            self._at(self._now + delay, lambda keys=keys: self._press(c, keys))

    def hangup(self, port: int, cause: int = 16) -> None:
        if port in self.fxo_ports:
            self._hangup_line(port)
            return
        out = self.trunk_out.pop(port, None)
        if out is not None:
            out.state, out.ended_at, out.cause = "ended", self._now, cause
            self._silence(port)
            return
        c = self.trunk_caller.pop(port, None)
        if c is not None:
            c.outcome = "completed" if c.connected_at is not None else "cleared"
            c.ended_at = self._now
            self._silence(port)

    def bridge(self, a: int, b: int | None) -> None:
        for port, peer in ((a, b),) if b is None else ((a, b), (b, a)):
            if port in self.phones:
                self._phone_bridged(self.phones[port], peer)
            elif port in self.trunk_caller:
                self._caller_bridged(self.trunk_caller[port], peer)

    def _phone_bridged(self, ph: PhoneState, peer: int | None) -> None:
        if peer is not None and ph.hook == "off":
            ph.peer = peer
            self._start_sound(ph.port, ph.agent.tone_hz, ph.agent.tone_dbm0, ph.agent.speech)
            talk = ph.agent.draw_talk(self.rng)
            ring_id = ph.rings
            self._at(self._now + talk, lambda: ph.rings == ring_id and self._agent_hangs_up(ph))
        elif peer is None and ph.peer is not None:
            ph.peer = None
            self._silence(ph.port)
            self._at(self._now + PEER_GONE_HANGUP_S, lambda: self._agent_hangs_up(ph))

    def _caller_bridged(self, c: CallerState, peer: int | None) -> None:
        if peer is not None and c.connected_at is None:
            c.connected_at = self._now
            c.outcome = "talking"
            self._start_sound(c.port, c.script.tone_hz, c.script.tone_dbm0, c.script.speech)
            if c.script.talk_s is not None:
                self._at(self._now + c.script.talk_s, lambda: self._caller_hangs_up(c, "completed"))

    # --- the span ------------------------------------------------------------------------

    def set_alarm(self, span: int, alarms: Iterable[str]) -> None:
        """Raise the span's alarms (any of ``SPAN_ALARMS``) or clear them all (an empty set).

        A span going down ends every call on it with cause 38 (network out of order);
        while it is down inbound calls cannot arrive and dialling fails at once.
        """
        if span not in self.alarms:
            raise DriverError(f"span {span} does not exist; this card has span 1")
        new = frozenset(alarms)
        bad = sorted(new - set(SPAN_ALARMS))
        if bad:
            raise DriverError(f"unknown span alarm {bad[0]!r}; allowed: {', '.join(SPAN_ALARMS)}")
        if new == self.alarms[span]:
            return
        went_down = new and not self.alarms[span]
        self.alarms[span] = new
        self._out.append(Alarm(span, new))
        if went_down:
            for c in list(self.trunk_caller.values()):
                self._caller_hangs_up(c, "dropped", CAUSES["out_of_order"])
            for call in list(self.trunk_out.values()):
                self._out_end(call, CAUSES["out_of_order"])

    def schedule_alarm(self, at: float, span: int, alarms: Iterable[str]) -> None:
        """Raise or clear span alarms at time ``at`` (a scenario's fault)."""
        alarms = frozenset(alarms)
        self._at(at, lambda: self.set_alarm(span, alarms))

    # --- media ----------------------------------------------------------------------------

    def read(self, out: np.ndarray) -> None:
        check_frames(out, len(self.ports), "read")
        rx = self._rx
        rx.fill(0)
        for port, src in enumerate(self._src):
            if src.active:
                src.fill(rx[port], self._t)
        alaw_encode(rx, out=out)
        if self.dead_ports or self._drop or self._late:
            self._apply_faults(out)

    def write(self, frames: np.ndarray) -> None:
        check_frames(frames, len(self.ports), "write")
        for c in self.trunk_caller.values():
            if c.script.record and c.port not in self.dead_ports:
                c.heard.append(alaw_decode(frames[c.port]))
        for ph in self.phones.values():
            if ph.agent.record and ph.hook == "off" and ph.port not in self.dead_ports:
                ph.heard.append(alaw_decode(frames[ph.port]))

    def close(self) -> None:
        self._heap.clear()
