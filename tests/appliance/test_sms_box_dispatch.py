"""Internal dispatch SMS through the whole box: callers on the simulated card in virtual time abandon and leave a
message, a complaint is assigned on the bus, and the rules' messages reach a simulated SMGP gateway once each,
also across a restart of the core."""

from __future__ import annotations

import shutil
import tempfile
import time

import pytest

from appliance.config import validate
from appliance.datadir import DataDir
from drivers.sim import AgentScript, CallerScript, SimCard
from tests.appliance.servers import control_api
from tests.appliance.simcore import cores
from tests.appliance.simgateway import SECRET, SimGateway

EPOCH0 = 1_764_300_000.0  # 2025-11-28 11:20 in Beijing
FLOW = {"start": "menu", "nodes": {
    "menu": {"kind": "menu", "prompt": "welcome", "choices": {"1": "sales", "2": "message"}, "on_fail": "bye"},
    "sales": {"kind": "queue", "queue": "default"},
    "message": {"kind": "voicemail", "box": "general"},
    "bye": {"kind": "hangup", "prompt": "goodbye"},
}}
DUTY, BOSS, AFTER_SALES = "13900001111", "13700002222", "13600003333"
B, E = "13912345678", "13600136000"


@pytest.fixture
def rig():
    server = SimGateway("smgp", "12345678")
    root = tempfile.mkdtemp(prefix="smsd-")  # short: the control socket's path is limited to 107 bytes
    with cores() as new_core:
        def make():
            data = DataDir.open(f"{root}/data", create=True)
            cfg = validate({
                "card": {"trunk_channels": 4, "seats": 1}, "ivr": {"flow": FLOW}, "queue": {"max_wait_s": 60},
                "departments": [{"name": "售后", "number": "80001", "mobile": AFTER_SALES}],
                "sms": {"via": "smgp", "smgp_host": "127.0.0.1", "smgp_port": server.port,
                        "smgp_account": "12345678", "smgp_secret": SECRET, "smgp_src_id": "10690001"},
                "sms_rules": [
                    {"event": "missed.unreturned", "to": [DUTY], "after_min": 2,
                     "text": "未接来电{号码}共{次数}次，{时间}起未回拨"},
                    {"event": "voicemail.left", "to": [BOSS], "text": "{号码}在{时间}留言{时长}秒，信箱{信箱}"},
                    {"event": "complaint.assigned", "to_department": True, "text": "投诉工单{工单}已派{部门}，来电{号码}"},
                ]})
            card = SimCard(4, 1, agent=AgentScript(ring_delay_s=2.0, talk_s=30.0), media=False, seed=1)
            core = new_core(data, cfg, card, epoch=EPOCH0, media=False)
            core.sms_dispatch_every = 0.02  # real seconds between looks at the lists (30 s on a box)
            return core, card
        yield make, server
    server.close()
    shutil.rmtree(root)
    assert server.errors == []


def looks(core, n: int = 2) -> None:
    """Let the core's SMS worker look at the missed calls and voicemail ``n`` more times."""
    start = core.sms_dispatch_looks
    deadline = time.monotonic() + 10
    while core.sms_dispatch_looks < start + n:
        assert time.monotonic() < deadline, "the SMS worker does not look at the lists"
        time.sleep(0.01)
    core.sms_worker.call(lambda now, wall: None).result(10)  # and what those looks queued is handed out


def sent_texts(server, n: int, timeout: float = 10.0) -> list[tuple[str, str]]:
    """The submits' (number, text), sorted, once ``n`` have arrived."""
    assert server.wait_for(lambda: len(server.submits) >= n, timeout), [s.dest_term_ids for _, s in server.submits]
    return sorted((s.dest_term_ids[0], s.msg_content.decode("utf-16-be")) for _, s in server.submits)


def test_missed_calls_voicemail_and_complaints_are_dispatched_once(rig):
    make, server = rig
    core, card = make()
    with control_api(core) as client:
        card.add_caller(CallerScript(B, 1.0, digits="1", digit_delay_s=0.5, patience_s=1.0))  # abandons, ringing
        card.add_caller(CallerScript(E, 2.0, digits="2", digit_delay_s=0.5, patience_s=6.0))  # leaves a message
        core.runtime.run_until(20.0)
        core.settle()
        # E's message at once; the missed calls (B abandoned, E left a message) are not two minutes old yet
        assert sent_texts(server, 1) == [(BOSS, f"{E}在11:20留言5秒，信箱general")]
        looks(core)
        assert len(server.submits) == 1
        core.runtime.run_until(130.0)  # two minutes on: nobody called them back
        assert sent_texts(server, 3)[:2] == [(BOSS, f"{E}在11:20留言5秒，信箱general"),
                                             (DUTY, f"未接来电{E}共1次，11:20起未回拨")]
        assert sent_texts(server, 3)[2] == (DUTY, f"未接来电{B}共1次，11:20起未回拨")
        core.bus.publish("complaint.assigned", {"ticket": "TS-0001", "department": "售后", "number": B})
        assert (AFTER_SALES, f"投诉工单TS-0001已派售后，来电{B}") in sent_texts(server, 4)
        core.bus.publish("complaint.assigned", {"ticket": "TS-0001", "department": "售后", "number": B})  # again
        core.runtime.run_until(200.0)
        looks(core)
        assert len(server.submits) == 4  # every occurrence once
        origins = sorted(m["origin"] for m in client.call("sms.list")["messages"])
        assert origins == ["dispatch:complaint.assigned>department", f"dispatch:missed.unreturned>{DUTY}",
                           f"dispatch:missed.unreturned>{DUTY}", f"dispatch:voicemail.left>{BOSS}"]
    core.close()
    core, card = make()  # restarted: the lists are looked at again, nothing is sent twice
    core.runtime.run_until(210.0)
    looks(core)
    assert len(server.submits) == 4
