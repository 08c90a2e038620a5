"""The runtime: the 20 ms media tick and the loop that drives the sans-I/O logic on real or virtual time.

Each step (DESIGN.md "The core, as data flows through it"): read one A-law frame per
port, decode, detect DTMF on all ports at once, feed card and detector events to the
call logic, apply its actions, mix ``tx = M @ rx`` plus prompts and tones, encode, tap
the recorder (each recorded caller's port, received and sent) and write. All arrays are
allocated here, once. The FXO ports' rows also go through a caller-ID receiver while their
line is on hook and a call-progress detector while it is off hook (``CallerIdHeard``,
``LineTone``: ``appliance.fxolines`` decides what they mean), and the trunk ports' rows
through another while an outbound call is dialled on them, from its ``Dial`` until
``StopProgress`` or the port is cleared (``TrunkTone``: ``appliance.outbound`` classifies the attempt).

IVR flows' HTTP lookups and spoken answers (``flowrun.HttpLookup``, ``flowrun.Say``)
go to workers off the tick; each step collects what they have finished: a lookup's
answer as an ``HttpResult`` event, a rendered answer played like a prompt (its
``PromptDone`` at its end). In real time the tick never waits for them; in virtual
time ``run_until`` lets them finish before time moves on, so they answer one tick
after they were asked however fast the host is.
"""

from __future__ import annotations

import asyncio
import math
import logging
from dataclasses import dataclass

import numpy as np

from drivers.base import BLOCK, Card, Digit, PortKind, Released
from dsp.callerid import CallerIdReceiver
from dsp.dtmf import DtmfDetector
from dsp.g711 import alaw_decode, alaw_encode
from dsp.progress import ProgressDetector, ToneEvent
from dsp.toneplans import get_plan
from dsp.tones import ToneGenerator

from .actions import (
    Answer, CallerIdHeard, Connect, Dial, Disconnect, Hangup, Hear, HttpResult, Isolate, LineTone, LogEvent, Play,
    PlayRecording, PromptDone, Publish, Ring, SaveCampaign, StartRecording, StartTone, StopPlay, StopProgress,
    StopRecording, StopRing, StopTone, TrunkTone, WriteCall,
)
from .errors import ApplianceError
from .faxmedia import FaxMedia
from .flowrun import HttpLookup, Say
from .player import PromptPlayer
from .tickwork import EMPTY_CLIP, OffTickWork
from .switch import Switch

log = logging.getLogger(__name__)

PACE_TIMEOUT_S = 0.04  # two ticks without the card's "frames ready": tick anyway
TICK_S = BLOCK / 8000  # 20 ms
MIN_EVENT_STEP_S = 0.001  # event mode never steps by less, so a stuck deadline cannot spin


@dataclass
class TickStats:
    ticks: int = 0
    late_max_s: float = 0.0  # worst lateness of a real-time tick behind its schedule
    slips: int = 0  # times the loop fell so far behind that it skipped ticks
    unpaced: int = 0  # ticks a hardware-paced loop ran without the card's "frames ready"


class Runtime(OffTickWork, FaxMedia):
    """Drives ``logic`` (a CallCentre) with ``card`` on ``clock``.

    Parameters
    ----------
    card : Card
    logic : object with ``handle(event, now)``, ``advance(now)``, ``next_deadline()``
    clock : RealClock or VirtualClock
    player : PromptPlayer
    media : bool
        Move audio (True) or only events (False: virtual-time statistics runs).
    recorder, journal, bus : optional sinks for recordings, call records and API events.
    lookups : LookupWorker or None
        Does ``HttpLookup``; anything with ``submit(key, url, timeout_s)``, ``results()``
        and ``wait(timeout)``. None: every lookup fails with "no lookup worker".
    speech : SpeechWorker or None
        Renders ``Say``; anything with ``submit(key, text)``, ``results()`` and
        ``wait(timeout)``. None: a ``Say`` is skipped (``PromptDone`` at once), with a warning.
    playback : appliance.recplay.PlaybackWorker or None
        Loads the recordings ``PlayRecording`` asks for, like ``speech`` (``submit(key, number)``);
        None, or a recording that cannot be played: the ``code.failed`` prompt instead.
        The workers belong to the caller, who closes them.
    fax_mode : str
        Where fax sessions run (``appliance.faxmedia``): inline (virtual time), thread or process.
    """

    def __init__(self, card: Card, logic, clock, player: PromptPlayer, *, media: bool = True,
                 recorder=None, journal=None, bus=None, tone_plan: str = "cn",
                 lookups=None, speech=None, playback=None, fax_mode: str = "inline") -> None:
        self.card, self.logic, self.clock, self.player = card, logic, clock, player
        self.media = media
        self.recorder, self.journal, self.bus = recorder, journal, bus
        n = len(card.ports)
        self.n_ports = n
        self.rx_alaw = np.zeros((n, BLOCK), np.uint8)
        self.rx = np.zeros((n, BLOCK), np.int16)
        self.rxf = np.zeros((n, BLOCK), np.float32)
        self.txf = np.zeros((n, BLOCK), np.float32)
        self.tx = np.zeros((n, BLOCK), np.int16)
        self.tx_alaw = np.full((n, BLOCK), 0xD5, np.uint8)  # A-law silence
        self.dtmf = DtmfDetector(n)
        self.tones = ToneGenerator(n)
        self.tone_plan = get_plan(tone_plan)  # the country's ringback, busy, ... that callers hear
        self.switch = Switch(n)
        self.stats = TickStats()
        self.now = clock.now()
        self._recordings: dict[str, str] = {}
        self.lookups, self.speech = lookups, speech
        self._lookups_out = 0  # submitted, answer not yet collected
        self._speech_out = 0
        self.playback, self._playback_out = playback, 0  # recordings played over the phone (appliance.recplay)
        self._refused: list[HttpResult] = []  # lookups without a worker: answered at the next step
        self._say_gen = [0] * n  # per port, bumped whenever its playing stops or changes: older renderings are stale
        self._no_clip = np.zeros(0, np.int16)
        self._init_fax(fax_mode)
        # the FXO ports (analog lines): their rows of rx, and which lines are off hook
        self._fxo_ports = [p.index for p in card.ports if p.kind == PortKind.FXO]
        self._fxo_row = {port: i for i, port in enumerate(self._fxo_ports)}
        self._fxo = np.array(self._fxo_ports, np.intp)
        self.fxo_rx = np.zeros((len(self._fxo_ports), BLOCK), np.int16)
        self._fxo_off = np.zeros(len(self._fxo_ports), bool)
        lines = bool(self._fxo_ports) and media
        self.callerid = CallerIdReceiver(len(self._fxo_ports)) if lines else None
        self.progress = ProgressDetector(len(self._fxo_ports), plan=tone_plan) if lines else None
        # the trunk ports: their rows of rx, and which are being dialled (``Dial`` until ``StopProgress`` or cleared)
        self._trunk_ports = [p.index for p in card.ports if p.kind == PortKind.TRUNK]
        self._trunk_row = {port: i for i, port in enumerate(self._trunk_ports)}
        self._trk = np.array(self._trunk_ports, np.intp)
        self.trunk_rx = np.zeros((len(self._trunk_ports), BLOCK), np.int16)
        self._dialling = np.zeros(len(self._trunk_ports), bool)
        self.dial_progress = ProgressDetector(len(self._trunk_ports), plan=tone_plan) \
            if self._trunk_ports and media else None

    async def _run_paced(self, stop: asyncio.Event, paced: asyncio.Event) -> None:
        stats = self.stats
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                ready = asyncio.ensure_future(paced.wait())
                done, _ = await asyncio.wait({ready, stopping}, timeout=PACE_TIMEOUT_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                ready.cancel()
                if stopping in done:
                    break
                if ready not in done:
                    stats.unpaced += 1  # the card said nothing for two ticks: tick on the host clock
                paced.clear()
                self.step(self.clock.now())
        finally:
            stopping.cancel()

    # --- one step ---------------------------------------------------------------------------

    def step(self, now: float) -> None:
        self.now = now
        events = self.card.poll(now)
        if self.media:
            self.card.read(self.rx_alaw)
            alaw_decode(self.rx_alaw, out=self.rx)
            keys = self.dtmf.process(self.rx)
            events += [Digit(ch, d) for ch, d in keys]
            if self.callerid is not None:
                events += self._line_events(keys)
            if self.dial_progress is not None and self._dialling.any():
                events += self._trunk_events()
        if self._lookups_out or self._speech_out or self._refused or self._playback_out:
            events += self._collect(now)  # before ``finished``: a failed rendering's PromptDone comes this step
        events += self._fax_step(events)  # CNG listened for on new inbound calls; the fax sessions' news
        ended = [PromptDone(p) for p in self.player.finished(now)]
        gens = {id(ev): self._say_gen[ev.port] for ev in ended}
        events += ended
        for ev in events:
            if id(ev) in gens and self._say_gen[ev.port] != gens[id(ev)]:
                continue  # an event earlier in this step started something new on the port: this end is stale
            self.apply(self.logic.handle(ev, now), now)
            if type(ev) is Released:  # cleared by the far end: same fresh start as our own Hangup
                self._idle_port(ev.port)
        self.apply(self.logic.advance(now), now)
        if self.media:
            self._mix()
        self.stats.ticks += 1

    def _line_events(self, keys: list[tuple[int, str]]) -> list:
        """Caller ID heard on the lines on hook (FSK, or this tick's DTMF ``keys``), tones recognised on those
        off hook; only while any is off hook does the progress detector run."""
        np.take(self.rx, self._fxo, axis=0, out=self.fxo_rx)
        row, off, ports = self._fxo_row, self._fxo_off, self._fxo_ports
        events: list = []
        if not off.all():  # a line that goes on hook starts its receiver afresh: skipping costs no message
            for i, cid in self.callerid.process(self.fxo_rx, [(row[ch], d) for ch, d in keys
                                                              if ch in row and not off[row[ch]]]):
                if not off[i]:
                    events.append(CallerIdHeard(ports[i], cid.number or None, cid.number_absent_reason, cid.name,
                                                cid.format))
        if off.any():
            for e in self.progress.process(self.fxo_rx):
                if type(e) is ToneEvent and e.end_s is None and off[e.channel]:
                    events.append(LineTone(ports[e.channel], e.tone))
        return events

    def _trunk_events(self) -> list:
        """Call-progress tones recognised on the trunk channels being dialled (``TrunkTone``)."""
        np.take(self.rx, self._trk, axis=0, out=self.trunk_rx)
        on, ports = self._dialling, self._trunk_ports
        return [TrunkTone(ports[e.channel], e.tone) for e in self.dial_progress.process(self.trunk_rx)
                if type(e) is ToneEvent and e.end_s is None and on[e.channel]]

    def _mix(self) -> None:
        np.copyto(self.rxf, self.rx)
        self.switch.mix(self.rxf, self.txf)
        self.player.add_to(self.txf)
        self.tones.add_to(self.txf)
        if self.faxes or self._fax_draining:  # a fax port sends its session's block, nothing else
            self._fax_audio()
        np.clip(self.txf, -32768, 32767, out=self.txf)
        np.copyto(self.tx, self.txf, casting="unsafe")
        alaw_encode(self.tx, out=self.tx_alaw)
        if self.recorder is not None:  # a call's caller, both ways: follows transfers and conferences
            self.recorder.tap(self.rx_alaw, self.rx, self.tx_alaw, self.tx)
        self.card.write(self.tx_alaw)

    def apply(self, actions: list, now: float) -> None:
        card = self.card
        for a in actions:
            kind = type(a)
            if kind is Publish:
                if self.bus is not None:
                    self.bus.publish(a.type, a.data)
            elif kind is LogEvent:
                if self.journal is not None:
                    self.journal.add_event(a.call_id, self.clock.epoch(now), a.type, a.data)
            elif kind is Play:
                self._say_gen[a.port] += 1
                try:
                    self.player.play(a.port, a.prompt, now)
                except ApplianceError as e:  # a prompt missing from the set must not stop the tick: skip it
                    log.error("%s; port %d plays nothing", e, a.port)
                    self.player.play_clip(a.port, EMPTY_CLIP, now)
            elif kind is StopPlay:
                self._say_gen[a.port] += 1
                self.player.stop(a.port)
            elif kind is Say:
                self._say(a.port, a.text, now)
            elif kind is PlayRecording:
                self._play_recording(a.port, a.number, now)
            elif kind is HttpLookup:
                self._lookup(a)
            elif kind is StartTone:
                spec = self.tone_plan.tones.get(a.tone)
                if spec is None:
                    log.warning("tone plan %r has no %r tone; port %d stays silent", self.tone_plan.name, a.tone,
                                a.port)
                else:
                    self.tones.start(a.port, spec.freqs, spec.level_dbm0, spec.on_off or None)
            elif kind is StopTone:
                self.tones.stop(a.port)
            elif kind is Answer:
                card.answer(a.port)
                row = self._fxo_row.get(a.port)
                if row is not None and self.progress is not None:  # off hook: listen for the far end's tones
                    self._fxo_off[row] = True
                    self.progress.reset(row)
            elif kind is Hangup:
                card.hangup(a.port, a.cause)
                self._idle_port(a.port)
            elif kind is Ring:
                card.ring(a.port, a.caller)
            elif kind is Dial:
                card.dial(a.port, a.number)
                self._listen_progress(a.port, True)
            elif kind is StopProgress:
                self._listen_progress(a.port, False)
            elif kind is SaveCampaign:
                if self.journal is not None:
                    self.journal.put_campaign(a.name, self.clock.epoch(now), a.data)
            elif kind is StopRing:
                card.stop_ring(a.port)
            elif kind is Connect:
                self.switch.connect(a.a, a.b)
                card.bridge(a.a, a.b)
            elif kind is Hear:
                self.switch.hear(a.listener, a.talker, a.on)
            elif kind is Isolate:
                self.switch.isolate(a.port)
                card.bridge(a.port, None)
            elif kind is Disconnect:
                self.switch.disconnect(a.a, a.b)
                card.bridge(a.a, None)
                card.bridge(a.b, None)
            elif kind is StartRecording:
                if self.recorder is not None and self.media:
                    rel = self.recorder.start(a.call_id, a.caller_port, a.agent_port, self.clock.epoch(now),
                                              a.kind)
                    if rel is not None:
                        self._recordings[a.call_id] = rel
            elif kind is StopRecording:
                if self.recorder is not None:
                    self.recorder.stop(a.call_id)
            elif kind is WriteCall:
                self._write_call(a.record)
            elif not self._apply_fax(a, now):
                raise TypeError(f"unknown action {a!r}")

    def _idle_port(self, port: int) -> None:
        """A cleared port starts its next call with fresh detector, player and tone state."""
        self.dtmf.reset(port)
        self._say_gen[port] += 1  # a rendering still on its way was for the caller who left
        self.player.stop(port)
        self.tones.stop(port)
        row = self._fxo_row.get(port)
        if row is not None and self.callerid is not None:  # on hook: the next ring's caller ID starts afresh
            self._fxo_off[row] = False
            self.callerid.reset(row)
        self._listen_progress(port, False)

    def _listen_progress(self, port: int, on: bool) -> None:
        """Follow trunk ``port``'s call-progress tones (from a fresh start) or stop."""
        row = self._trunk_row.get(port)
        if row is not None and self.dial_progress is not None:
            self._dialling[row] = on
            if on:
                self.dial_progress.reset(row)

    def _write_call(self, record: dict) -> None:
        rec = {k: (self.clock.epoch(v) if k.endswith("_ts") and v is not None else v) for k, v in record.items()}
        rec["recording"] = self._recordings.pop(record["call_id"], None)
        if self.journal is not None:
            self.journal.put_call(rec)

    # --- loops ------------------------------------------------------------------------------------

    def next_time(self) -> float:
        """The next step's time in virtual time: every tick with media, else the next deadline (at most a tick
        away while lookups or renderings are out: their answers are collected by a step)."""
        if self.media:
            return (math.floor(self.now / TICK_S + 1e-9) + 1) * TICK_S  # after a stop between ticks: the next one
        times = [t for t in (self.card.next_deadline(), self.logic.next_deadline(), self.player.next_deadline())
                 if t is not None]
        if self._lookups_out or self._speech_out or self._refused or self._playback_out:
            times.append(self.now + TICK_S)
        return max(min(times), self.now + MIN_EVENT_STEP_S) if times else float("inf")

    def run_until(self, until: float) -> None:
        """Run in virtual time up to ``until`` (seconds on the clock), as fast as the CPU allows."""
        while True:
            t = self.next_time()
            if t > until + 1e-9:  # a tick time computed a hair above an ``until`` meant to reach it
                break
            self._finish_work()  # answers one tick after the question, however fast the host is
            self.clock.advance_to(t)
            self.step(t)
        if self.clock.now() < until:
            self.clock.advance_to(until)
            self.now = until
            if not self.media:  # event mode: the card's time too, so what a command does next starts from now
                for ev in self.card.poll(until):  # (nothing is due by now: the loop stepped for all of it)
                    self.apply(self.logic.handle(ev, until), until)

    async def run_realtime(self, stop: asyncio.Event, paced: asyncio.Event | None = None) -> None:
        """Tick every 20 ms against an absolute schedule (start + k * 20 ms): no drift.

        With ``paced`` (set by a hardware card each time its frames are ready, see
        ``DahdiCard.attach``) the card's clock drives the tick instead: the E1's clock
        and the host's drift apart, and ticking on the host's would now and then find
        no frame or two. If the card stays silent for ``PACE_TIMEOUT_S`` the tick runs
        anyway, so a card that stops cannot stop the box.
        """
        if paced is not None:
            await self._run_paced(stop, paced)
            return
        stats = self.stats
        t0 = self.clock.now()
        k = 0
        while not stop.is_set():
            target = t0 + k * TICK_S
            delay = target - self.clock.now()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            self.step(target)
            k += 1
            late = self.clock.now() - target
            stats.late_max_s = max(stats.late_max_s, late)
            if late > 10 * TICK_S:  # suspended or starved: resynchronise rather than burst
                stats.slips += 1
                k = int((self.clock.now() - t0) / TICK_S) + 1
                log.warning("media tick fell %.0f ms behind; resynchronised", late * 1000)
            elif k % 25 == 0:
                await asyncio.sleep(0)
