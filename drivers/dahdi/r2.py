"""MFC/R2 (China No.1) on the DAHDI card's E1 span: ``drivers.r2.span.R2Span`` on the trunk ports' CAS channels.

``MfcR2Span`` is to an R2 span what ``drivers.dahdi.pri.PriSpan`` is to a PRI
one. Each poll the channels whose received ABCD bits changed (DAHDI's
BITSCHANGED, which ``TrunkPort`` notes in ``bits_changed``) are read with
DAHDI_GETRXBITS into the R2 line signalling (every channel at the first poll),
its timers run, and the bits it wants sent go out with DAHDI_SETTXBITS; its call
events come back as the core's card events on the trunk ports. The MF register
signals travel in the channels' audio: ``process`` hears them in the frames the
card read, ``fill_tx`` puts ours into a copy of the frames the card writes.

A span alarm ends the calls the core knows of with ``Released(port, 38)`` and
clears their channels; while it lasts the received bits and audio mean nothing
and are ignored. When it clears, every channel's bits are read again, so the far
end's idle (or clear-forward) brings each line back to idle. A trunk port that
goes out of service (its channel closed: DAHDI puts its bits back to the idle of
system.conf) ends its call with cause 41; once reopened, its bits are read and
written again.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

import numpy as np

from appliance.errors import DriverError

from ..base import CardEvent, Released
from ..r2.span import R2Span
from ..trunkcalls import Cleared, Offered, card_event
from .ports import Port, TrunkPort

log = logging.getLogger(__name__)

DEFAULTS = {"max_dnis": 4, "max_ani": 12, "category": "national-subscriber", "calling_number": None, "cd_bits": 0b01}
OPTIONS = frozenset(DEFAULTS) | {"ani_after", "timers"}  # what R2Span takes besides the channels
ALARM_CAUSE = 38  # network out of order: the span went down
FAULT_CAUSE = 41  # temporary failure: the channel itself failed


class MfcR2Span:
    """MFC/R2 on the trunk ports ``ports`` of E1 span ``span`` (their timeslots are the R2 channels).

    ``options``: R2Span's keyword arguments (``DEFAULTS``, plus ``ani_after`` and
    ``timers``). ``fault(port, reason)`` takes a port whose channel failed out of
    service (the card's own handling of kernel errors).
    """

    def __init__(self, ports: Iterable[TrunkPort], span: int, options: dict,
                 fault: Callable[[Port, str], None]) -> None:
        ports = list(ports)
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise DriverError(f"unknown MFC/R2 option(s) {', '.join(unknown)}; expected some of {sorted(OPTIONS)}")
        for p in ports:
            if p.chan.params.signalling != "cas":
                raise DriverError(f"DAHDI channel {p.chan.channo} is signalled {p.chan.params.signalling!r}, but "
                                  "span.signalling mfcr2 needs cas on every trunk channel; apply the configuration "
                                  "(appliance dahdi-conf --apply)")
        self.span = span
        self._ports = {p.chan.params.chanpos: p for p in ports}  # timeslot -> port, in the ports' order
        self._timeslot = {p.info.index: ts for ts, p in self._ports.items()}
        self._rows = np.array([p.info.index for p in ports], np.intp)  # R2Span row i -> the card's frame row
        self.r2 = R2Span(list(self._ports), **{**DEFAULTS, **options})
        self._fault = fault
        self.alarms: frozenset[str] = frozenset()
        self.now = 0.0
        self._read_all = True  # the first poll, and after an alarm: read every channel's bits
        self._calls: set[int] = set()  # timeslots whose call the core knows of (Seized reported, or dialled)
        self._tx: dict[int, int] = {}  # timeslot -> the bits last handed out (written again to a reopened channel)
        self._down: set[int] = set()  # timeslots whose port is out of service
        self._events: list[CardEvent] = []

    # --- each tick ---------------------------------------------------------------------------

    def poll(self, now: float) -> list[CardEvent]:
        """Read the changed bits, run the timers, write the bits: the card events."""
        self.now = now
        self._read_bits(now)
        due = self.r2.next_deadline()
        if due is not None and now >= due:
            self.r2.handle_timer(now)
        return self._flush()

    def process(self, frames: np.ndarray) -> None:
        """The frames the card read (all ports): the trunk rows go to the MF receivers."""
        if not self.alarms:
            self.r2.process(frames[self._rows], self.now)

    def fill_tx(self, frames: np.ndarray) -> np.ndarray:
        """A copy of ``frames`` (all ports) with the MF signals of the channels in register phase."""
        out = frames.copy()
        rows = out[self._rows]
        self.r2.fill_tx(rows)
        out[self._rows] = rows
        return out

    def next_deadline(self) -> float | None:
        return self.r2.next_deadline()

    def span_alarm(self, alarms: frozenset[str]) -> list[CardEvent]:
        """The span's alarms changed: down ends the calls (cause 38); up reads every channel's bits again."""
        was = self.alarms
        if alarms and not was:
            log.warning("DAHDI R2 span %d in alarm (%s): its calls end", self.span, ", ".join(sorted(alarms)))
            self._end(None, ALARM_CAUSE)
        self.alarms = frozenset(alarms)
        if was and not alarms:
            self._read_all = True
            self._read_bits(self.now)
        return self._flush()

    # --- commands on the trunk ports ----------------------------------------------------------

    def answer(self, port: int) -> None:
        self.r2.answer(self._timeslot[port], self.now)
        self._write_bits()

    def dial(self, port: int, number: str) -> None:
        ts = self._timeslot[port]
        p = self._ports[ts]
        if self.alarms:
            raise DriverError(f"cannot dial on {p}: E1 span {self.span} is in alarm ({', '.join(sorted(self.alarms))})")
        if p.down is not None:
            raise DriverError(f"cannot dial on {p}: it is out of service ({p.down})")
        try:
            self.r2.dial(ts, number, self.now)
        except DriverError as exc:
            raise DriverError(f"cannot dial on {p}: {exc}") from exc
        self._calls.add(ts)
        self._write_bits()

    def hangup(self, port: int, cause: int) -> None:
        ts = self._timeslot[port]
        self._calls.discard(ts)
        self.r2.hangup(ts, cause, self.now)
        self._write_bits()

    # --- internals ------------------------------------------------------------------------------

    def _read_bits(self, now: float) -> None:
        for ts, p in self._ports.items():
            if p.down is not None:
                if ts not in self._down:  # its channel is closed: the call on it cannot go on
                    self._down.add(ts)
                    self._end([ts], FAULT_CAUSE)
                continue
            if ts in self._down:  # reopened: DAHDI reset its bits when it was closed
                self._down.discard(ts)
                p.bits_changed = True
                if ts in self._tx:
                    self._write(ts, self._tx[ts])
            changed, p.bits_changed = p.bits_changed, False
            if self.alarms or not (changed or self._read_all):
                continue
            try:
                bits = p.chan.rx_bits()
            except DriverError as exc:
                self._fault(p, str(exc))
                continue
            self.r2.rx_bits(ts, bits, now)
        if not self.alarms:
            self._read_all = False

    def _end(self, timeslots: list[int] | None, cause: int) -> None:
        """End the core's calls on ``timeslots`` (None: all) with ``Released(port, cause)``."""
        self._drain()  # what the span already has comes first (a Seized before its Released)
        for ts in sorted(self._calls if timeslots is None else set(timeslots) & self._calls):
            self._calls.discard(ts)
            self.r2.hangup(ts, cause, self.now)
            self._events.append(Released(self._ports[ts].info.index, cause))

    def _flush(self) -> list[CardEvent]:
        self._write_bits()
        self._drain()
        out, self._events = self._events, []
        return out

    def _write_bits(self) -> None:
        for ts, bits in self.r2.tx_bits():
            self._tx[ts] = bits
            self._write(ts, bits)

    def _write(self, ts: int, bits: int) -> None:
        p = self._ports[ts]
        if p.down is not None:
            return  # written when the channel is back
        try:
            p.chan.set_tx_bits(bits)
        except DriverError as exc:
            self._fault(p, str(exc))

    def _drain(self) -> None:
        while (ev := self.r2.next_event()) is not None:
            port = self._ports[ev.channel].info.index
            if isinstance(ev, Offered):
                if self.alarms:  # its register exchange ended as the span went down: refuse it
                    self.r2.hangup(ev.channel, ALARM_CAUSE, self.now)
                    continue
                self._calls.add(ev.channel)
            elif isinstance(ev, Cleared):
                self._calls.discard(ev.channel)
            self._events.append(card_event(ev, port))
