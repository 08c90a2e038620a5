"""The runtime: the 20 ms media tick and the loop that drives the sans-I/O logic on real or virtual time.

Each step (DESIGN.md "The core, as data flows through it"): read one A-law frame per
port, decode, detect DTMF on all ports at once, feed card and detector events to the
call logic, apply its actions, mix ``tx = M @ rx`` plus prompts and tones, tap the
recorder, encode and write. All arrays are allocated here, once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from drivers.base import BLOCK, Card, Digit, Released
from dsp.dtmf import DtmfDetector
from dsp.g711 import alaw_decode, alaw_encode
from dsp.toneplans import get_plan
from dsp.tones import ToneGenerator

from .actions import (
    Answer, Connect, Disconnect, Hangup, LogEvent, Play, PromptDone, Publish, Ring, StartRecording,
    StartTone, StopPlay, StopRecording, StopRing, StopTone, WriteCall,
)
from .player import PromptPlayer
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


class Runtime:
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
    """

    def __init__(self, card: Card, logic, clock, player: PromptPlayer, *, media: bool = True,
                 recorder=None, journal=None, bus=None, tone_plan: str = "cn") -> None:
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
            events += [Digit(ch, d) for ch, d in self.dtmf.process(self.rx)]
        events += [PromptDone(p) for p in self.player.finished(now)]
        for ev in events:
            self.apply(self.logic.handle(ev, now), now)
            if type(ev) is Released:  # cleared by the far end: same fresh start as our own Hangup
                self._idle_port(ev.port)
        self.apply(self.logic.advance(now), now)
        if self.media:
            self._mix()
        self.stats.ticks += 1

    def _mix(self) -> None:
        np.copyto(self.rxf, self.rx)
        self.switch.mix(self.rxf, self.txf)
        self.player.add_to(self.txf)
        self.tones.add_to(self.txf)
        np.clip(self.txf, -32768, 32767, out=self.txf)
        np.copyto(self.tx, self.txf, casting="unsafe")
        if self.recorder is not None:
            self.recorder.tap(self.rx_alaw, self.rx)
        alaw_encode(self.tx, out=self.tx_alaw)
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
                self.player.play(a.port, a.prompt, now)
            elif kind is StopPlay:
                self.player.stop(a.port)
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
            elif kind is Hangup:
                card.hangup(a.port, a.cause)
                self._idle_port(a.port)
            elif kind is Ring:
                card.ring(a.port, a.caller)
            elif kind is StopRing:
                card.stop_ring(a.port)
            elif kind is Connect:
                self.switch.connect(a.a, a.b)
                card.bridge(a.a, a.b)
            elif kind is Disconnect:
                self.switch.disconnect(a.a, a.b)
                card.bridge(a.a, None)
                card.bridge(a.b, None)
            elif kind is StartRecording:
                if self.recorder is not None and self.media:
                    rel = self.recorder.start(a.call_id, a.caller_port, a.agent_port, self.clock.epoch(now))
                    if rel is not None:
                        self._recordings[a.call_id] = rel
            elif kind is StopRecording:
                if self.recorder is not None:
                    self.recorder.stop(a.call_id)
            elif kind is WriteCall:
                self._write_call(a.record)
            else:
                raise TypeError(f"unknown action {a!r}")

    def _idle_port(self, port: int) -> None:
        """A cleared port starts its next call with fresh detector, player and tone state."""
        self.dtmf.reset(port)
        self.player.stop(port)
        self.tones.stop(port)

    def _write_call(self, record: dict) -> None:
        rec = {k: (self.clock.epoch(v) if k.endswith("_ts") and v is not None else v) for k, v in record.items()}
        rec["recording"] = self._recordings.pop(record["call_id"], None)
        if self.journal is not None:
            self.journal.put_call(rec)

    # --- loops ------------------------------------------------------------------------------------

    def next_time(self) -> float:
        """The next step's time in virtual time: every tick with media, else the next deadline."""
        if self.media:
            return (round(self.now / TICK_S) + 1) * TICK_S
        times = [t for t in (self.card.next_deadline(), self.logic.next_deadline(), self.player.next_deadline())
                 if t is not None]
        return max(min(times), self.now + MIN_EVENT_STEP_S) if times else float("inf")

    def run_until(self, until: float) -> None:
        """Run in virtual time up to ``until`` (seconds on the clock), as fast as the CPU allows."""
        while True:
            t = self.next_time()
            if t > until:
                break
            self.clock.advance_to(t)
            self.step(t)
        if self.clock.now() < until:
            self.clock.advance_to(until)
            self.now = until

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
