"""Faults a test can inject into the simulated card: dead ports, lost frames, a card that disappears.

Each fault shows the way it would on real hardware: a dead port delivers only
idle frames and its card reports ``PortFault``; lost frames are idle frames in
the middle of a call; late frames arrive some ticks behind from then on (a
buffer that slipped); a card pulled out of its slot (or a USB Astribank
unplugged) loses every port and its span signal at once.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from appliance.errors import DriverError

from ..base import PortFault

__all__ = ["Faults", "ALAW_IDLE"]

ALAW_IDLE = 0xD5  # the A-law code an idle channel carries


class Faults:
    """Fault injection for ``SimCard`` (a part of it). Uses ``_at``, ``_out``, ``ports``, ``alarms``, ``set_alarm``."""

    def _init_faults(self) -> None:
        self.dead_ports: set[int] = set()
        self._drop: dict[int, int] = {}  # port -> frames still to lose
        self._late: dict[int, deque] = {}  # port -> frames held back: what it delivers lags by len()
        self.unplugged = False

    def _port(self, port: int) -> int:
        if not 0 <= port < len(self.ports):
            raise DriverError(f"port {port} does not exist; this card has ports 0..{len(self.ports) - 1}")
        return port

    def fail_port(self, port: int, reason: str = "no frames") -> None:
        """From now on ``port`` delivers only idle frames and takes none; the card reports it."""
        port = self._port(port)
        if port not in self.dead_ports:
            self.dead_ports.add(port)
            self._out.append(PortFault(port, False, reason))

    def restore_port(self, port: int) -> None:
        port = self._port(port)
        if port in self.dead_ports and not self.unplugged:
            self.dead_ports.discard(port)
            self._out.append(PortFault(port, True))

    def drop_frames(self, port: int, n: int) -> None:
        """Lose ``port``'s next ``n`` received frames (they arrive idle), as a glitching line would."""
        self._drop[self._port(port)] = int(n)

    def delay_frames(self, port: int, n: int) -> None:
        """From now on ``port``'s frames arrive ``n`` ticks late (idle frames fill the gap); 0 catches up."""
        port, n = self._port(port), int(n)
        if n <= 0:
            self._late.pop(port, None)
        else:
            held = self._late.setdefault(port, deque())
            held.extend(np.full(160, ALAW_IDLE, np.uint8) for _ in range(max(0, n - len(held))))

    def unplug(self) -> None:
        """The card disappears: every port fails and the span loses its signal."""
        if self.unplugged:
            return
        for port in range(len(self.ports)):
            self.fail_port(port, "card removed")
        self.unplugged = True
        for span in self.alarms:
            self.set_alarm(span, {"LOS"})

    def schedule_fault(self, at: float, fault: str, *args) -> None:
        """Run ``fail_port``, ``restore_port``, ``drop_frames``, ``delay_frames`` or ``unplug`` at time ``at``."""
        if fault not in ("fail_port", "restore_port", "drop_frames", "delay_frames", "unplug"):
            raise DriverError(f"unknown fault {fault!r}; one of fail_port, restore_port, drop_frames, delay_frames, "
                              "unplug")
        fn = getattr(self, fault)
        self._at(at, lambda: fn(*args))

    def _apply_faults(self, out: np.ndarray) -> None:
        """Overwrite what dead ports and lost frames deliver this tick (``out``: A-law frames)."""
        for port, held in self._late.items():
            held.append(out[port].copy())
            out[port] = held.popleft()
        for port in self.dead_ports:
            out[port] = ALAW_IDLE
        for port, left in list(self._drop.items()):
            out[port] = ALAW_IDLE
            if left <= 1:
                del self._drop[port]
            else:
                self._drop[port] = left - 1

    def _check_plugged(self, what: str) -> None:
        if self.unplugged:
            raise DriverError(f"cannot {what}: the card has been removed")
