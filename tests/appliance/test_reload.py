"""config.reload: the core takes up a saved configuration between ticks, answered over the real control socket;
a changed flow reaches new calls only, and a file that does not validate changes nothing."""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

from appliance.client import ApiError
from appliance.clock import VirtualClock
from appliance.configfile import load_config, save_config
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from drivers.sim import AgentScript, CallerScript, SimCard
from tests.appliance.servers import control_api

EPOCH0 = 1_764_300_000.0
OLD = {"start": "main", "nodes": {
    "main": {"kind": "menu", "prompt": "welcome", "choices": {"1": "sales"}, "timeout_s": 5, "on_fail": "bye"},
    "sales": {"kind": "queue", "queue": "default"},
    "bye": {"kind": "hangup", "prompt": "goodbye"}}}
NEW = {"start": "notice", "nodes": {
    "notice": {"kind": "play", "text": "系统维护中，请稍后再拨。", "next": "bye"},
    "bye": {"kind": "hangup", "prompt": "goodbye"}}}


@pytest.fixture
def box():
    root = tempfile.mkdtemp(prefix="reload-")  # short: the socket path's limit
    data = DataDir.open(f"{root}/data", create=True)
    cfg = save_config(data.config, {"card": {"trunk_channels": 4, "seats": 2}, "ivr": {"flow": OLD}})
    card = SimCard(4, 2, agent=AgentScript(ring_delay_s=1.0, talk_s=5.0), media=False, seed=1)
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, load_config(data.config), VirtualClock(EPOCH0), card=card, prompts=prompts, media=False)
    with control_api(core, timeout=30.0) as client:
        yield core, card, client
    core.close()
    shutil.rmtree(root)


def visits(core, caller):
    core.settle()
    rec = next(c for c in core.journal.calls() if c["caller"] == caller)
    return [e["data"]["node"] for e in core.journal.events(rec["call_id"]) if e["type"] == "ivr.node"]


def test_a_saved_flow_reaches_new_calls_and_the_rest_waits_for_a_restart(box):
    core, card, client = box
    card.add_caller(CallerScript("13800000001", arrive_at=1.0, digits="", digit_delay_s=1.0))
    core.runtime.run_until(2.0)  # in the old menu now
    save_config(core.data.config, {"ivr": {"flow": NEW}, "queue": {"ring_timeout_s": 20.0},
                                   "prompts": {"queue_busy": "请稍候，第{position}位。"}, "card": {"tone_plan": "us"}})
    assert client.call("config.reload") == {"applied": ["queue", "ivr", "prompts"], "restart_needed": ["card"]}
    assert core.logic.queue_cfg["default"]["ring_timeout_s"] == 20.0
    assert core.logic.texts["queue_busy"] == "请稍候，第{position}位。"
    assert core.cfg["card"]["tone_plan"] == "cn"  # not taken up: the tick still plays China's tones
    card.add_caller(CallerScript("13800000002", arrive_at=3.0, digits="", digit_delay_s=1.0))
    core.runtime.run_until(40.0)
    assert visits(core, "13800000001") == ["main", "bye"]  # finished on the flow it started on
    assert visits(core, "13800000002") == ["notice", "bye"]  # the new words, rendered before it was taken up
    assert client.call("config.reload") == {"applied": [], "restart_needed": ["card"]}  # nothing new since


def test_a_config_file_that_does_not_validate_changes_nothing(box):
    core, card, client = box
    with open(core.data.config, encoding="utf-8") as f:
        doc = json.load(f)
    ivr = next(d for d in doc["settings"].values() if d["section"] == "ivr")
    ivr["values"]["flow"]["nodes"]["sales"]["queue"] = "nowhere"  # edited by hand, wrongly
    with open(core.data.config, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
    before = core.cfg
    with pytest.raises(ApiError) as err:
        client.call("config.reload")
    assert err.value.code == "bad_config"
    assert err.value.message == (f"config file {core.data.config}: ivr.flow: node 'sales' field 'queue': "
                                 "'queue:nowhere' names no queue; queues: default")
    assert core.cfg is before and core.logic.flow == OLD


def test_the_command_line_calls_the_control_api(box, capsys):
    from appliance.cli import main
    core, card, client = box
    data = str(core.data.root)
    assert main(["call", "--data-dir", data, "agent.state", "seat=2", "state=busy", "reason=meal"]) == 0
    assert json.loads(capsys.readouterr().out) == {"seat": 2, "state": "busy", "reason": "meal", "agent_id": None}
    assert main(["call", "--data-dir", data, "agent.state", "seat=9", "state=busy"]) == 1
    assert capsys.readouterr().err == "error: not_found: seat: 9 is not a configured seat\n"
    assert main(["call", "--data-dir", data, "agent.state", "seat"]) == 1
    assert capsys.readouterr().err == "error: argument 'seat' is not KEY=VALUE\n"
