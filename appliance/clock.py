"""The runtime's two clocks: real time for the box, virtual time for simulations and tests.

Both give ``now`` in seconds on a monotonic scale and convert it to wall-clock epoch
seconds for records; this is the one place that reads the system's clocks.
"""

from __future__ import annotations

import time


class RealClock:
    """Monotonic time since start; epoch conversion anchored once at start."""

    virtual = False

    def __init__(self) -> None:
        self._mono0 = time.monotonic()
        self._epoch0 = time.time()

    def now(self) -> float:
        return time.monotonic() - self._mono0

    def epoch(self, now: float) -> float:
        return self._epoch0 + now

    def wall(self) -> float:
        """Wall-clock epoch seconds for things outside the tick (event timestamps)."""
        return self.epoch(self.now())


class VirtualClock:
    """Time that moves only when the runtime advances it, as fast as the CPU allows."""

    virtual = True

    def __init__(self, epoch0: float | None = None) -> None:
        self._now = 0.0
        self._epoch0 = time.time() if epoch0 is None else float(epoch0)

    def now(self) -> float:
        return self._now

    def advance_to(self, t: float) -> None:
        if t < self._now:
            raise ValueError(f"virtual time cannot go back from {self._now} to {t}")
        self._now = t

    def epoch(self, now: float) -> float:
        return self._epoch0 + now

    def wall(self) -> float:
        return self.epoch(self._now)
