"""Test wiring for R2 spans: two ``R2Span`` back to back, or one against libopenr2, stepped 20 ms at a time.

Time is virtual (``now`` advances 20 ms a tick), so a call with its whole MF
register exchange takes a few hundred ticks and no wall-clock time.
"""

from __future__ import annotations

import numpy as np

from drivers.r2.span import R2Span

TICK = 0.02
SILENCE = 0xD5


class Side:
    """One ``R2Span`` as the card would drive it: its tx arrays, its events, the bits it wrote."""

    def __init__(self, span: R2Span) -> None:
        self.span = span
        self.events: list = []
        self.bits: dict[int, list[int]] = {c: [] for c in span.channels}  # every nibble written, per channel
        self.tx = np.full((len(span.channels), 160), SILENCE, np.uint8)

    def tick(self, rx_audio: np.ndarray, now: float) -> None:
        due = self.span.next_deadline()
        if due is not None and now >= due:
            self.span.handle_timer(now)
        self.span.process(rx_audio, now)
        self.tx[:] = SILENCE
        self.span.fill_tx(self.tx)
        while (ev := self.span.next_event()) is not None:
            self.events.append(ev)

    def written(self) -> list[tuple[int, int]]:
        out = self.span.tx_bits()
        for c, nib in out:
            self.bits[c].append(nib)
        return out


class Pair:
    """Span ``a`` and span ``b`` on the same channels, each one's tx the other's rx."""

    def __init__(self, a: R2Span, b: R2Span) -> None:
        self.a, self.b = Side(a), Side(b)
        self.now = 0.0
        self._deliver()

    def _deliver(self) -> None:
        for src, dst in ((self.a, self.b), (self.b, self.a)):
            for c, nib in src.written():
                dst.span.rx_bits(c, nib, self.now)

    def step(self) -> None:
        self.now += TICK
        a_tx, b_tx = self.a.tx.copy(), self.b.tx.copy()
        self.a.tick(b_tx, self.now)
        self.b.tick(a_tx, self.now)
        self._deliver()
        for side in (self.a, self.b):
            while (ev := side.span.next_event()) is not None:
                side.events.append(ev)

    def run(self, seconds: float, until=None) -> bool:
        for _ in range(int(round(seconds / TICK))):
            self.step()
            if until is not None and until():
                return True
        return until is None


class OpenR2Wire:
    """Our span (one channel) against ``tests.peers.openr2.OpenR2Peer`` on the same E1 channel.

    With ``auto_release`` openr2 completes a far-end disconnect at once (``disconnect``), as
    Asterisk's chan_dahdi does when openr2 reports one.
    """

    def __init__(self, span: R2Span, peer, auto_release: bool = True) -> None:
        self.ours, self.peer = Side(span), peer
        self.auto_release = auto_release
        self.peer_bits: list[int] = []  # every nibble openr2 wrote
        self._released = 0
        self.channel = span.channels[0]
        self.now = 0.0
        self.peer_tx = bytes([SILENCE]) * 160
        self.our_bits = 0x9
        self._deliver_ours()
        self.ours.span.rx_bits(self.channel, peer.tx_bits, self.now)

    def _deliver_ours(self) -> None:
        for _, nib in self.ours.written():
            self.our_bits = nib

    def step(self) -> None:
        self.now += TICK
        our_tx = bytes(self.ours.tx[0])
        bits, audio = self.peer.step(self.our_bits, our_tx)
        self.ours.span.rx_bits(self.channel, bits, self.now)
        self.ours.tick(np.frombuffer(self.peer_tx, np.uint8)[None, :], self.now)
        self.peer_tx = audio
        if not self.peer_bits or bits != self.peer_bits[-1]:
            self.peer_bits.append(bits)
        self._deliver_ours()
        seen = sum(1 for e in self.peer.events if e.name == "disconnect")
        if self.auto_release and seen > self._released:
            self._released = seen
            self.peer.disconnect()

    def run(self, seconds: float, until=None) -> bool:
        for _ in range(int(round(seconds / TICK))):
            self.step()
            if until is not None and until():
                return True
        return until is None
