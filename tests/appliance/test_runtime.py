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


@pytest.mark.parametrize("plan,expected", [("cn", "ringback"), ("us", "ringback")])
def test_callers_hear_the_configured_tone_plan(plan, expected):
    """Ringback goes out as the plan's tone: China's 450 Hz 1 s / 4 s, North America's 440+480 Hz 2 s / 4 s;
    the call-progress detector, listening with the same plan, names it."""
    from appliance.actions import StartTone
    from dsp.progress import detect_progress

    rt = Runtime(SimCard(2, 1), Idle(), VirtualClock(0.0), PromptPlayer(3, {}), media=True, tone_plan=plan)
    rt.apply([StartTone(0, "ringback")], 0.0)
    sent = []
    for i in range(6 * 50 * 2):  # two whole cycles
        rt.step(i * TICK_S)
        sent.append(rt.tx[0].copy())
    tones, _ = detect_progress(np.concatenate(sent), plan=plan)
    assert [name for name, _, _ in tones] == [expected]
    other = "us" if plan == "cn" else "cn"
    assert detect_progress(np.concatenate(sent), plan=other)[0] == []


def test_a_tone_the_plan_lacks_is_skipped_with_a_warning(caplog):
    from appliance.actions import StartTone

    rt = Runtime(SimCard(2, 1), Idle(), VirtualClock(0.0), PromptPlayer(3, {}), media=True, tone_plan="us")
    rt.apply([StartTone(0, "vacant")], 0.0)
    rt.step(0.0)
    assert not rt.tx[0].any()
    assert "tone plan 'us' has no 'vacant' tone; port 0 stays silent" in caplog.text


def test_a_card_with_its_own_clock_paces_the_tick_and_a_silent_one_falls_back_to_the_host_clock():
    """A pipe stands in for the card's frames-ready signal: the tick runs once per signal, whatever the
    host clock says; when the signals stop, ticks go on every PACE_TIMEOUT_S and are counted."""
    import os

    from appliance.runtime import PACE_TIMEOUT_S

    class PacedCard(SimCard):
        def attach(self, loop, on_ready):
            self.r, self.w = os.pipe()
            loop.add_reader(self.r, lambda: (os.read(self.r, 64), on_ready()))
            self.loop = loop
            return True

        def detach(self):
            self.loop.remove_reader(self.r)
            os.close(self.r)
            os.close(self.w)

    logic = Idle()
    card = PacedCard(2, 1)
    rt = Runtime(card, logic, RealClock(), PromptPlayer(3, {}), media=True)

    async def main():
        loop = asyncio.get_running_loop()
        ready, stop = asyncio.Event(), asyncio.Event()
        assert card.attach(loop, ready.set)
        task = asyncio.create_task(rt.run_realtime(stop, ready))
        for _ in range(30):  # a card clock 3x slower than the host's 20 ms would suggest... still 30 ticks
            os.write(card.w, b"x")
            await asyncio.sleep(0.03)
        ticks_paced = len(logic.times)
        await asyncio.sleep(PACE_TIMEOUT_S * 5.5)  # the card falls silent
        stop.set()
        await task
        card.detach()
        return ticks_paced

    ticks_paced = asyncio.run(main())
    assert 29 <= ticks_paced <= 31  # one tick per signal (the last may still be pending)
    assert rt.stats.unpaced >= 4 and len(logic.times) == ticks_paced + rt.stats.unpaced


def test_in_event_mode_an_action_between_steps_starts_from_the_time_reached():
    """A command applied after ``run_until`` (a control API call) acts at that time: a seat rung then answers its
    ring delay later, not at once (the card's own time had stood at its last event)."""
    from appliance.actions import Ring
    from drivers.base import OffHook
    from drivers.sim import AgentScript

    class Seen(Idle):
        def __init__(self):
            super().__init__()
            self.events = []

        def handle(self, event, now):
            self.events.append((round(now, 6), event))
            return []

    logic = Seen()
    card = SimCard(2, 1, agent=AgentScript(ring_delay_s=2.0), media=False)
    rt = Runtime(card, logic, VirtualClock(0.0), PromptPlayer(3, {}), media=False)
    rt.run_until(100.0)
    rt.apply([Ring(2, None)], rt.now)
    rt.run_until(110.0)
    assert logic.events[0] == (102.0, OffHook(2))
