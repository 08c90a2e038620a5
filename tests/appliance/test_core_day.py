"""The ACD's "today" follows the box's local day: counts start from zero at local midnight, and seats bring
their skill level to the agents."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from drivers.sim import AgentScript, SimCard

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def test_counts_start_again_at_local_midnight_and_seats_bring_their_skill(tmp_path):
    start = dt.datetime(2026, 11, 28, 23, 59, 0, tzinfo=SHANGHAI).timestamp()
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"trunk_channels": 2, "seats": 2}, "queue": {"strategy": "fewest-calls"},
                    "seats": [{"skill": 9}, {"skill": 2}]})
    card = SimCard(2, 2, agent=AgentScript(ring_delay_s=1.0), media=False)
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, VirtualClock(start), card=card, prompts=prompts, media=False)
    try:
        agents = core.logic.acd.agents
        assert [a.skill for a in agents] == [9, 2]
        agents[0].calls_today, agents[0].talk_today = 7, 600.0
        core.runtime.run_until(59.0)  # 23:59:59 local: still the same day
        assert agents[0].calls_today == 7
        core.runtime.run_until(61.0)  # past midnight
        assert (agents[0].calls_today, agents[0].talk_today) == (0, 0.0)
    finally:
        core.close()
