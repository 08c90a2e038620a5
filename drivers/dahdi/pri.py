"""The E1 span's PRI signalling on DAHDI: the D-channel's frames through ``drivers.isdn``.

``PriSpan`` opens the span's D-channel (``dchan=16`` in system.conf: DAHDI
signalling ``hardhdlc``) in HDLC mode, where every read and write is one whole
LAPD frame followed by its two FCS bytes (the hardware checks and fills them;
we strip and pad). Each poll it reads every waiting frame into the PRI stack,
runs its timers and writes what it has to send; call events come back as the
core's card events on the B-channels' ports.
"""

from __future__ import annotations

import logging
from collections import deque

from appliance.errors import DriverError

from ..base import Alarm, CardEvent
from ..isdn.pri import PriInterface
from ..trunkcalls import card_event
from .channel import DahdiChannel
from .events import EventDecoder
from .kernel import Kernel

log = logging.getLogger(__name__)

FCS_PAD = b"\0\0"  # room for the FCS, which the hardware computes
HDLC_SIGNALLING = ("hardhdlc", "hdlcfcs", "hdlcnet")
MAX_FRAMES_PER_POLL = 64  # a burst bigger than this waits for the next tick


class PriSpan:
    """PRI on one span: D-channel ``dchan`` (DAHDI channel number), B-channels ``ports`` (timeslot -> port)."""

    def __init__(self, kernel: Kernel, dchan: int, span: int, ports: dict[int, int], *, network: bool,
                 decoder: EventDecoder, calling_number: str | None = None,
                 timers: dict[str, float] | None = None) -> None:
        self.span, self.dchan = span, dchan
        self.ports = dict(ports)
        self._timeslot = {port: ts for ts, port in self.ports.items()}
        self.calling_number = calling_number or None
        self.pri = PriInterface(network, self.ports, timers=timers)
        self.chan = DahdiChannel(kernel, dchan, port=-1, decoder=decoder, blocksize=1024, hdlc=True)
        if self.chan.params.signalling not in HDLC_SIGNALLING:
            sig = self.chan.params.signalling
            self.chan.close()
            raise DriverError(f"DAHDI channel {dchan} is signalled {sig!r}, but span.dchan makes it the PRI "
                              "D-channel, which needs hardhdlc; apply the configuration (appliance dahdi-conf --apply)")
        self._started = False
        self._unsent: deque[bytes] = deque()  # frames DAHDI had no buffer for yet
        self.now = 0.0

    # --- each tick ---------------------------------------------------------------------------

    def poll(self, now: float) -> tuple[list[CardEvent], list[Alarm]]:
        """Read frames, run timers, write frames: the card events, and the span alarms the D-channel saw."""
        self.now = now
        if not self._started:
            self._started = True
            self.pri.start(now)
        alarms = [ev for ev in self.chan.events() if isinstance(ev, Alarm)]
        for _ in range(MAX_FRAMES_PER_POLL):
            frame = self.chan.read_frame()
            if frame is None:
                break
            if len(frame) > len(FCS_PAD):
                self.pri.receive_frame(frame[:-len(FCS_PAD)], now)
        due = self.pri.next_deadline()
        if due is not None and now >= due:
            self.pri.handle_timer(now)
        self._flush()
        return self._events(), alarms

    def next_deadline(self) -> float | None:
        return self.pri.next_deadline()

    def span_alarm(self, alarms: frozenset[str]) -> list[CardEvent]:
        """The span went down: its calls end with cause 38 (network out of order)."""
        if alarms:
            self.pri.link_lost(38, self.now)
        return self._events()

    def _flush(self) -> None:
        self._unsent.extend(self.pri.frames_to_send())
        while self._unsent:
            if not self.chan.write_frame(self._unsent[0] + FCS_PAD):
                return  # buffers full: the rest go next tick, in order
            self._unsent.popleft()

    def _events(self) -> list[CardEvent]:
        out: list[CardEvent] = []
        while (ev := self.pri.next_event()) is not None:
            out.append(card_event(ev, self.ports[ev.channel]))
        return out

    # --- commands on the B-channels -------------------------------------------------------------

    def answer(self, port: int) -> None:
        self.pri.answer(self._timeslot[port], self.now)
        self._flush()

    def dial(self, port: int, number: str) -> None:
        if not self.pri.up:
            raise DriverError(f"cannot dial on E1 {self.span}/{self._timeslot[port]}: the PRI D-channel is down")
        self.pri.setup(self._timeslot[port], number, self.calling_number, self.now)
        self._flush()

    def hangup(self, port: int, cause: int) -> None:
        self.pri.hangup(self._timeslot[port], cause, self.now)
        self._flush()

    def close(self) -> None:
        self.chan.close()
