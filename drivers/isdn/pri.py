"""One PRI interface: the Q.921 data link and Q.931 call control stacked, sans-I/O.

Frames in (``receive_frame``), frames out (``frames_to_send``), commands for
the B-channels, call events out (``next_event``), timers through
``next_deadline``/``handle_timer``. Layer 3 messages go down as I-frames; what
the link delivers goes up to call control; link changes reach the calls (T309).
"""

from __future__ import annotations

import logging
from typing import Iterable

from .calls import CallEvent, PriCalls
from .lapd import Data, Lapd, LinkDown, LinkReset, LinkUp

log = logging.getLogger(__name__)


class PriInterface:
    """Q.921 + Q.931 for the B-channels ``channels`` (timeslot numbers); ``network`` picks the side."""

    def __init__(self, network: bool, channels: Iterable[int], *, timers: dict[str, float] | None = None) -> None:
        self.network = network
        self.lapd = Lapd(network)
        self.calls = PriCalls(network, channels, timers)

    @property
    def up(self) -> bool:
        return self.lapd.up

    def start(self, now: float) -> None:
        self.lapd.start(now)
        self._pump(now)

    def receive_frame(self, frame: bytes, now: float) -> None:
        self.lapd.receive(frame, now)
        self._pump(now)

    def handle_timer(self, now: float) -> None:
        self.lapd.handle_timer(now)
        self.calls.handle_timer(now)
        self._pump(now)

    def next_deadline(self) -> float | None:
        times = [t for t in (self.lapd.next_deadline(), self.calls.next_deadline()) if t is not None]
        return min(times) if times else None

    def frames_to_send(self) -> list[bytes]:
        return self.lapd.frames_to_send()

    def next_event(self) -> CallEvent | None:
        return self.calls.next_event()

    # --- the B-channels ----------------------------------------------------------------------

    def setup(self, channel: int, called: str, calling: str | None, now: float) -> None:
        self.calls.setup(channel, called, calling, now)
        self._pump(now)

    def answer(self, channel: int, now: float) -> None:
        self.calls.answer(channel, now)
        self._pump(now)

    def hangup(self, channel: int, cause: int, now: float) -> None:
        self.calls.hangup(channel, cause, now)
        self._pump(now)

    def link_lost(self, cause: int, now: float) -> None:
        """The span went into alarm: the link is down at once and every call ends now, with ``cause``."""
        self.lapd.deactivate(now)
        self.calls.drop_all(cause)
        self._pump(now)

    def busy(self, channel: int) -> bool:
        return self.calls.busy(channel)

    def _pump(self, now: float) -> None:
        """Carry link events up and call control's messages down until neither has more."""
        while True:
            moved = False
            while (ev := self.lapd.next_event()) is not None:
                moved = True
                if isinstance(ev, Data):
                    self.calls.receive(ev.payload, now)
                elif isinstance(ev, LinkUp):
                    log.info("PRI (%s side): D-channel up", "network" if self.network else "user")
                    self.calls.link_changed(True, now)
                elif isinstance(ev, LinkDown):
                    log.warning("PRI: D-channel down: %s", ev.reason)
                    self.calls.link_changed(False, now)
                elif isinstance(ev, LinkReset):
                    log.warning("PRI: D-channel reset (%s); calls kept", ev.reason)
                    self.calls.link_reset(now)
            for msg in self.calls.messages_to_send():
                moved = True
                self.lapd.send(msg, now)
            if not moved:
                return
