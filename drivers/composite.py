"""Several cards as one: an E1 on a DAHDI card with the agents on IP phones, for instance.

``CompositeCard([a, b])`` numbers ``a``'s ports first, then ``b``'s; events come
back with their ports shifted, frames are read and written in slices, commands
go to the card that owns the port. The core sees one card.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from appliance.errors import DriverError

from .base import BLOCK, Card, CardEvent, PortInfo, check_frames


class CompositeCard:
    def __init__(self, cards: list[Card]) -> None:
        if not cards:
            raise DriverError("a composite card needs at least one card")
        self.cards = list(cards)
        self._offset: list[int] = []
        ports: list[PortInfo] = []
        for card in self.cards:
            self._offset.append(len(ports))
            ports += [dataclasses.replace(p, index=len(ports) + i) for i, p in enumerate(card.ports)]
        self.ports = tuple(ports)
        self._bufs = [np.zeros((len(c.ports), BLOCK), np.uint8) for c in self.cards]

    def _owner(self, port: int) -> tuple[Card, int]:
        if not isinstance(port, (int, np.integer)) or not 0 <= port < len(self.ports):
            raise DriverError(f"port {port!r} does not exist; this card has ports 0..{len(self.ports) - 1}")
        i = max(k for k, off in enumerate(self._offset) if off <= port)
        return self.cards[i], int(port) - self._offset[i]

    def poll(self, now: float) -> list[CardEvent]:
        out: list[CardEvent] = []
        for card, off in zip(self.cards, self._offset):
            for ev in card.poll(now):
                port = getattr(ev, "port", None)
                out.append(dataclasses.replace(ev, port=port + off) if port is not None else ev)
        return out

    def box_alarms(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for card in self.cards:
            alarms = getattr(card, "box_alarms", None)
            if alarms is not None:
                out.update(alarms())
        return out

    def next_deadline(self) -> float | None:
        times = [t for c in self.cards if (t := c.next_deadline()) is not None]
        return min(times) if times else None

    def read(self, out: np.ndarray) -> None:
        check_frames(out, len(self.ports), "read")
        for card, off, buf in zip(self.cards, self._offset, self._bufs):
            card.read(buf)
            out[off:off + len(buf)] = buf

    def write(self, frames: np.ndarray) -> None:
        check_frames(frames, len(self.ports), "write")
        for card, off, buf in zip(self.cards, self._offset, self._bufs):
            buf[:] = frames[off:off + len(buf)]
            card.write(buf)

    def answer(self, port: int) -> None:
        card, p = self._owner(port)
        card.answer(p)

    def hangup(self, port: int, cause: int = 16) -> None:
        card, p = self._owner(port)
        card.hangup(p, cause)

    def dial(self, port: int, number: str) -> None:
        card, p = self._owner(port)
        card.dial(p, number)

    def ring(self, port: int, caller: str | None) -> None:
        card, p = self._owner(port)
        card.ring(p, caller)

    def stop_ring(self, port: int) -> None:
        card, p = self._owner(port)
        card.stop_ring(p)

    def bridge(self, a: int, b: int | None) -> None:
        """Each card hears of its own port's partner only when both are its own; audio is the switch's."""
        ca, pa = self._owner(a)
        if b is None:
            ca.bridge(pa, None)
            return
        cb, pb = self._owner(b)
        ca.bridge(pa, pb if cb is ca else None)
        if cb is not ca:
            cb.bridge(pb, None)

    async def open(self) -> None:
        for card in self.cards:
            opener = getattr(card, "open", None)
            if opener is not None:
                await opener()

    def attach(self, loop: Any, on_ready: Callable[[], None] | None = None) -> bool:
        """Attach each card that can be; the tick is paced by the first that paces (DAHDI's clock)."""
        paced = False
        for card in self.cards:
            attach = getattr(card, "attach", None)
            if attach is not None and attach(loop, on_ready if not paced else None):
                paced = True
        return paced

    def detach(self) -> None:
        for card in self.cards:
            detach = getattr(card, "detach", None)
            if detach is not None:
                detach()

    def close(self) -> None:
        for card in self.cards:
            card.close()
