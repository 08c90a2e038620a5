"""Recording by policy (all, none, queues, agents): the config's checks, the decision, and real calls on the simulated
card in virtual time whose records, index rows and files say exactly which calls were recorded.

The core factory and helpers here are shared by the other ``test_recording_*`` files."""

from __future__ import annotations

import pytest

from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.errors import ConfigError
from appliance.prompts import PromptLibrary
from appliance.recpolicy import RecordingPolicy, should_record
from appliance.wavfile import read_alaw_wav
from drivers.sim import AgentScript, CallerScript, SimCard
from dsp.dtmf.offline import detect_digits
from dsp.g711 import alaw_decode
from dsp.levels import tone_level_dbm0

EPOCH0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC, 11:20 in Shanghai: virtual time starts here
TICK = 0.02
FLOW = {"start": "menu", "nodes": {
    "menu": {"kind": "menu", "prompt": "welcome", "choices": {"1": "sales", "2": "support", "3": "vm"},
             "invalid": "invalid", "on_fail": "bye"},
    "sales": {"kind": "queue", "queue": "default"},
    "support": {"kind": "queue", "queue": "support"},
    "vm": {"kind": "voicemail", "box": "general"},
    "bye": {"kind": "hangup", "prompt": "goodbye"},
}}
BASE = {"queues": [{"name": "support"}], "ivr": {"flow": FLOW}}


def build_core(root, *, agent=None, scripts=None, epoch=EPOCH0, media=True, seats=6, **cfg_updates):
    """A core on the simulated card in virtual time, its data directory at ``root``; beeps stand in for speech."""
    data = DataDir.open(root, create=True)
    cfg = validate({"card": {"seats": seats}, **BASE, **cfg_updates})
    card = SimCard(cfg["card"]["trunk_channels"], seats, agent=agent, agents=scripts, media=media, seed=1)
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, VirtualClock(epoch), card=card, prompts=prompts, media=media)
    events: list[dict] = []
    core.bus.listen(events.append)
    return core, card, events


@pytest.fixture
def make_core(tmp_path):
    made = []

    def make(**kw):
        kw.setdefault("root", tmp_path / "data")
        core, card, events = build_core(**kw)
        made.append(core)
        return core, card, events

    yield make
    for core in made:
        core.close()


def by_caller(core) -> dict:
    core.settle()
    return {c["caller"]: c for c in core.journal.calls()}


def index_rows(core) -> list[dict]:
    core.settle()
    return core.recindex.rows()


# --- the decision -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy, queue, seat, agent_id, expect", [
    (RecordingPolicy("all"), None, None, None, True),
    (RecordingPolicy("none"), "default", 1, "1001", False),
    (RecordingPolicy("queues", queues=frozenset({"vip"})), "vip", 1, None, True),
    (RecordingPolicy("queues", queues=frozenset({"vip"})), "default", 1, None, False),
    (RecordingPolicy("queues", queues=frozenset({"vip"})), None, None, None, False),  # a transfer out of the IVR
    (RecordingPolicy("agents", agents=frozenset({"1001"})), "default", 3, "1001", True),
    (RecordingPolicy("agents", agents=frozenset({"1001"})), "default", 3, "1002", False),
    (RecordingPolicy("agents", seats=frozenset({3})), "default", 3, "1002", True),
    (RecordingPolicy("agents", seats=frozenset({3})), "default", 4, None, False),
    (RecordingPolicy("agents", seats=frozenset({3})), "default", None, None, False),  # an outside number
    (True, "x", None, None, True),
    (False, "x", 1, "1", False),
])
def test_decision(policy, queue, seat, agent_id, expect):
    assert should_record(policy, queue, seat, agent_id) is expect


def test_policy_from_config_and_legacy_configs():
    assert RecordingPolicy.from_config(validate({})["recording"]) == RecordingPolicy("all")
    # a config saved before policies existed: enabled false still means no call is recorded
    old = validate({"recording": {"enabled": False, "mode": "stereo"}})["recording"]
    assert (old["policy"], old["mode"]) == ("all", "stereo")
    assert RecordingPolicy.from_config(old) == RecordingPolicy("none")
    cfg = validate({**BASE, "recording": {"policy": "queues", "queues": ["support"]}})
    assert RecordingPolicy.from_config(cfg["recording"]) == RecordingPolicy("queues", queues=frozenset({"support"}))
    with pytest.raises(ValueError, match="recording policy 'some' is not one of all, none, queues, agents"):
        RecordingPolicy("some")


@pytest.mark.parametrize("recording, message", [
    ({"policy": "queues", "queues": ["sales"]},
     "recording.queues[0]: 'sales' names no queue; queues: default, support"),
    ({"policy": "queues"}, "recording.policy: 'queues' with recording.queues empty would record no call; list the "
                           "queues in the same change, or use policy none"),
    ({"policy": "agents"}, "recording.policy: 'agents' with recording.agents and recording.seats empty would record "
                           "no call; list the agents or seats in the same change, or use policy none"),
    ({"seats": [7]}, "recording.seats[0]: 7 names no seat; seats: 1, 2, 3, 4, 5, 6"),
    ({"seats": [2, 2]}, "recording.seats[1]: 2 is listed twice"),
    ({"seats": ["2"]}, "recording.seats[0]: '2' is not an integer 1..24"),
    ({"seats": 2}, "recording.seats: 2 is an integer; expected a list"),
    ({"agents": ["1001"]}, "recording.agents[0]: '1001' names no agent of the agents section; agents: none (every "
                           "seat is its own agent: list seats instead)"),
    ({"queues": [""]}, "recording.queues[0]: '' is not a name of 1..32 characters"),
    ({"policy": "some"}, "recording.policy: 'some' is not allowed; one of agents, all, none, queues"),
    ({"keep_days": -1}, "recording.keep_days: -1 is out of range; allowed 0..3650 (days)"),
    ({"max_mb": 1.5}, "recording.max_mb: 1.5 is a number; expected an integer"),
    ({"retain": 3}, "recording.retain: unknown key; allowed keys: agents, enabled, keep_days, max_mb, min_free_mb, "
                    "mode, policy, queues, seats, voicemail_keep_days"),
])
def test_config_errors_name_the_key_and_the_value(recording, message):
    with pytest.raises(ConfigError) as err:
        validate({**BASE, "recording": recording})
    assert str(err.value) == message


def test_agents_named_must_be_configured():
    agents = [{"id": "1001", "name": "张三"}, {"id": "1002", "name": "李四"}]
    validate({"agents": agents, "recording": {"policy": "agents", "agents": ["1002"]}})
    with pytest.raises(ConfigError) as err:
        validate({"agents": agents, "recording": {"policy": "agents", "agents": ["1003"]}})
    assert str(err.value) == "recording.agents[0]: '1003' names no agent of the agents section; agents: 1001, 1002"


# --- real calls ---------------------------------------------------------------------------------------


def caller(number, at, key, **kw):
    return CallerScript(number, arrive_at=at, digits=key, digit_delay_s=1.0, tone_hz=1000.0, tone_dbm0=-10.0, **kw)


def test_queue_policy_records_the_listed_queue_only(make_core):
    agent = AgentScript(ring_delay_s=1.0, talk_s=6.0, tone_hz=1500.0, tone_dbm0=-13.0)
    core, card, _ = make_core(agent=agent, recording={"policy": "queues", "queues": ["support"], "min_free_mb": 0})
    card.add_caller(caller("13800000001", 0.5, "1"))
    card.add_caller(caller("13800000002", 0.5, "2"))
    core.runtime.run_until(15.0)
    calls = by_caller(core)
    sales, support = calls["13800000001"], calls["13800000002"]
    assert (sales["queue"], sales["disposition"], sales["recording"]) == ("default", "answered", None)
    assert (support["queue"], support["disposition"]) == ("support", "answered")
    assert support["recording"] == f"recordings/2025/11/28/{support['call_id']}.wav"
    [row] = index_rows(core)
    assert {k: row[k] for k in ("number", "call_id", "kind", "path", "state", "deleted_ts")} == {
        "number": 1, "call_id": support["call_id"], "kind": "call", "path": support["recording"], "state": "done",
        "deleted_ts": None}
    assert row["start_ts"] == pytest.approx(support["agent_answer_ts"])
    assert row["seconds"] == pytest.approx(support["talk_s"], abs=TICK + 1e-9)
    codes, _ = read_alaw_wav(core.data.root / support["recording"])
    assert row["bytes"] == 58 + codes.shape[1] and codes.shape[1] == round(row["seconds"] * 8000)
    audio = alaw_decode(codes)[:, 8000:-8000].astype(float)
    assert tone_level_dbm0(audio, 1000.0)[0] == pytest.approx(-10.0, abs=0.3)  # the caller
    assert tone_level_dbm0(audio, 1500.0)[0] == pytest.approx(-13.0, abs=0.3)  # the agent
    assert sorted(p.name for p in (core.data.root / "recordings").rglob("*.wav")) == [f"{support['call_id']}.wav"]


def test_agent_policy_records_the_listed_seats_and_agents(make_core):
    agents = [{"id": "1001", "name": "张三"}, {"id": "1002", "name": "李四"}, {"id": "1003", "name": "王五"}]
    agent = AgentScript(ring_delay_s=1.0, talk_s=5.0)
    core, card, _ = make_core(agent=agent, seats=3, **{
        "agents": agents, "recording": {"policy": "agents", "agents": ["1002"], "seats": [3], "min_free_mb": 0}})
    for seat, agent_id in ((1, "1001"), (2, "1002"), (3, "1003")):
        core.agent_login(seat, agent_id)
    for i in range(3):  # three callers at once: one per seat
        card.add_caller(caller(f"1390000000{i}", 0.5 + i * 0.1, "1"))
    core.runtime.run_until(12.0)
    calls = sorted(by_caller(core).values(), key=lambda c: c["seat"])
    assert [(c["seat"], c["disposition"]) for c in calls] == [(1, "answered"), (2, "answered"), (3, "answered")]
    assert [c["recording"] is not None for c in calls] == [False, True, True]  # agent 1002, and seat 3
    rows = sorted(index_rows(core), key=lambda r: r["number"])
    assert [r["number"] for r in rows] == [1, 2]  # numbered in the order they started
    assert {r["call_id"]: r["path"] for r in rows} == {c["call_id"]: c["recording"] for c in calls[1:]}
    assert rows[0]["start_ts"] < rows[1]["start_ts"]


def test_disabled_records_no_call_but_every_voicemail(make_core):
    agent = AgentScript(ring_delay_s=1.0, talk_s=5.0)
    core, card, _ = make_core(agent=agent, recording={"enabled": False, "min_free_mb": 0})
    card.add_caller(caller("13800000001", 0.5, "1"))
    card.add_caller(caller("13800000002", 0.5, "3", patience_s=6.0, presses=((5.0, "5"),)))  # a message: a key
    core.runtime.run_until(20.0)
    calls = by_caller(core)
    assert (calls["13800000001"]["disposition"], calls["13800000001"]["recording"]) == ("answered", None)
    vm = calls["13800000002"]
    assert (vm["disposition"], vm["recording"]) == ("voicemail", f"voicemail/2025/11/28/{vm['call_id']}.wav")
    assert [(r["number"], r["kind"], r["path"], r["state"]) for r in index_rows(core)] == [
        (1, "voicemail", vm["recording"], "done")]
    codes, _ = read_alaw_wav(core.data.root / vm["recording"])
    assert detect_digits(alaw_decode(codes)[0]) == "5"


def test_a_reloaded_policy_applies_to_the_next_call(make_core):
    agent = AgentScript(ring_delay_s=1.0, talk_s=3.0)
    core, card, _ = make_core(agent=agent, recording={"min_free_mb": 0})
    card.add_caller(caller("13800000001", 0.5, "1"))
    core.runtime.run_until(8.0)
    core.apply_recording(validate({**BASE, "recording": {"policy": "none", "min_free_mb": 0}})["recording"])
    card.add_caller(caller("13800000002", 8.5, "1"))
    core.runtime.run_until(16.0)
    calls = by_caller(core)
    assert calls["13800000001"]["recording"] is not None
    assert (calls["13800000002"]["disposition"], calls["13800000002"]["recording"]) == ("answered", None)
