"""The runtime's loops: real time on an absolute 20 ms schedule, virtual time as fast as the CPU allows."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from appliance.clock import RealClock, VirtualClock
from appliance.player import PromptPlayer
from appliance.runtime import TICK_S, Runtime
from drivers.sim import SimCard


class Idle:
    def __init__(self):
        self.times = []

    def handle(self, event, now):
        return []

    def advance(self, now):
        self.times.append(now)
        return []

    def next_deadline(self):
        return None


def test_real_time_ticks_stay_on_the_absolute_schedule():
    logic = Idle()
    rt = Runtime(SimCard(2, 1), logic, RealClock(), PromptPlayer(3, {}), media=True)

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        started = time.monotonic()
        await rt.run_realtime(stop)
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    steps = np.diff(logic.times) / TICK_S
    # every step is a whole number of ticks after the last: lateness never accumulates into drift
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    if rt.stats.slips == 0:
        assert set(np.round(steps)) == {1.0}
        assert abs(len(logic.times) - elapsed / TICK_S) <= 2


def test_virtual_time_steps_every_tick_with_media_and_by_deadlines_without():
    logic = Idle()
    clock = VirtualClock(0.0)
    rt = Runtime(SimCard(2, 1), logic, clock, PromptPlayer(3, {}), media=True)
    rt.run_until(10.0)
    assert len(logic.times) == 500 and logic.times[-1] == pytest.approx(10.0)
    assert clock.now() == pytest.approx(10.0)
    quiet = Idle()
    rt = Runtime(SimCard(2, 1, media=False), quiet, VirtualClock(0.0), PromptPlayer(3, {}), media=False)
    rt.run_until(3600.0)
    assert quiet.times == []  # nothing scheduled: an hour passes in no steps at all
