"""Caller identification in the core: record fields, screening (blocked, VIP), on the simulated card in virtual time."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.acd import Acd, Agent
from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from drivers.sim import AgentScript, CallerScript, SimCard
from dsp.levels import tone_level_dbm0

EPOCH0 = 1_764_300_000.0
BLOCKED_HZ = 1200.0  # the test's blocked prompt: a tone no other prompt or tone has
BLOCKED_S = 1.5


@pytest.fixture
def make_core(tmp_path):
    made = []

    def make(agent: AgentScript | None = None, *, media=False, **cfg_updates):
        data = DataDir.open(tmp_path / f"data{len(made)}", create=True)
        cfg = validate(cfg_updates)
        card = SimCard(cfg["card"]["trunk_channels"], cfg["card"]["seats"], agent=agent or AgentScript(),
                       media=media, seed=1)
        prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
        t = np.arange(int(BLOCKED_S * 8000)) / 8000
        prompts["blocked"] = (4000 * np.sin(2 * np.pi * BLOCKED_HZ * t)).astype(np.int16)
        core = Core(data, cfg, VirtualClock(EPOCH0), card=card, prompts=prompts, media=media)
        made.append(core)
        events = []
        core.bus.listen(events.append)
        hangups = []
        real_hangup = card.hangup
        card.hangup = lambda port, cause=16: (hangups.append((port, cause)), real_hangup(port, cause))[1]
        return core, card, events, hangups

    yield make
    for core in made:
        core.close()


def _by_caller(core) -> dict:
    core.settle()
    return {r["caller"]: r for r in core.journal.calls()}


def _types(core, call_id) -> list[str]:
    return [e["type"] for e in core.journal.events(call_id)]


# --- the blocked path ----------------------------------------------------------------------------

def test_blacklisted_caller_hears_the_blocked_prompt_and_is_cleared_with_cause_21(make_core):
    core, card, events, hangups = make_core(AgentScript(ring_delay_s=1.0, talk_s=5.0), media=True,
                                            screening={"blacklist": ["139 1234 5678"]})
    bad = card.add_caller(CallerScript("+8613912345678", arrive_at=1.0, digit_delay_s=0.5, record=True))
    good = card.add_caller(CallerScript("13800138000", arrive_at=1.0, digit_delay_s=0.5))
    core.runtime.run_until(20.0)
    recs = _by_caller(core)
    rec = recs["+8613912345678"]
    assert (rec["disposition"], rec["ended_by"], rec["queue"], rec["queued_ts"], rec["seat"]) == \
        ("blocked", "system", None, None, None)
    assert rec["end_ts"] - rec["answer_ts"] == pytest.approx(BLOCKED_S, abs=0.021)
    assert (bad.port, 21) in hangups and bad.outcome == "cleared"
    heard = bad.heard_audio()[None, 800:int((BLOCKED_S - 0.1) * 8000)].astype(np.float64)
    assert tone_level_dbm0(heard, BLOCKED_HZ)[0] > -20  # the blocked prompt, not the welcome
    # never queued, never rung; the journal says why
    types = _types(core, rec["call_id"])
    assert "call.queued" not in types and "call.ringing" not in types and "ivr.node" not in types
    blocked = [e for e in core.journal.events(rec["call_id"]) if e["type"] == "call.blocked"]
    assert [b["data"] for b in blocked] == [{"reason": "blacklist", "caller": "+8613912345678"}]
    ended = next(e["data"] for e in events if e["event"] == "call.ended" and e["data"]["call_id"] == rec["call_id"])
    assert (ended["disposition"], ended["reason"]) == ("blocked", "blacklist")
    # the other caller went through as usual
    assert recs["13800138000"]["disposition"] == "answered" and good.outcome == "completed"
    assert core.logic.counts == {"offered": 2, "answered": 1, "abandoned": 0}
    assert core.journal.counts(EPOCH0, EPOCH0 + 100) == {"offered": 2, "answered": 1, "abandoned": 0}


def test_blocked_prompt_is_rendered_from_the_catalog(tmp_path):
    cfg = validate({})
    lib = PromptLibrary(tmp_path, espeak=None, warn=lambda m: None)
    assert set(render_prompts(lib, cfg)) == {"welcome", "invalid", "goodbye", "blocked", "transfer", "voicemail",
                                             "code.done", "code.failed", "moh", "beep"}


def test_prefix_rule_blocks_the_range_only(make_core):
    core, card, events, hangups = make_core(AgentScript(ring_delay_s=1.0, talk_s=2.0),
                                            screening={"blacklist": ["1700*"]})
    card.add_caller(CallerScript("17001234567", arrive_at=0.0))
    card.add_caller(CallerScript("017001239999", arrive_at=0.5))  # a mobile with the trunk 0: national 1700...
    card.add_caller(CallerScript("17101234567", arrive_at=1.0))
    core.runtime.run_until(30.0)
    recs = _by_caller(core)
    assert {c: r["disposition"] for c, r in recs.items()} == {
        "17001234567": "blocked", "017001239999": "blocked", "17101234567": "answered"}
    assert sorted(cause for _, cause in hangups) == [16, 21, 21]  # 16: the agent ended the answered call


def test_caller_hanging_up_during_the_blocked_prompt(make_core):
    core, card, events, hangups = make_core(screening={"blacklist": ["13912345678"]})
    c = card.add_caller(CallerScript("13912345678", arrive_at=0.0))
    core.runtime.run_until(0.5)
    card.far_end_clears(c.port)
    core.runtime.run_until(5.0)
    rec = _by_caller(core)["13912345678"]
    assert (rec["disposition"], rec["ended_by"]) == ("blocked", "caller")
    assert hangups == [] and core.logic.calls == {}


@pytest.mark.parametrize("block_withheld, disposition", [(False, "answered"), (True, "blocked")])
def test_withheld_is_blocked_only_with_block_withheld(make_core, block_withheld, disposition):
    core, card, events, hangups = make_core(AgentScript(ring_delay_s=1.0, talk_s=2.0),
                                            screening={"block_withheld": block_withheld})
    card.add_caller(CallerScript(None, arrive_at=0.0))
    core.runtime.run_until(20.0)
    core.settle()
    rec = core.journal.calls()[0]
    assert rec["disposition"] == disposition
    assert (rec["caller"], rec["caller_national"], rec["caller_area"], rec["caller_kind"]) == (None, None, None, None)
    if block_withheld:
        assert [c for _, c in hangups] == [21]
        blocked = [e["data"] for e in core.journal.events(rec["call_id"]) if e["type"] == "call.blocked"]
        assert blocked == [{"reason": "withheld", "caller": None}]


# --- VIP ------------------------------------------------------------------------------------------

def test_vip_arriving_after_two_waiting_callers_is_answered_first(make_core):
    core, card, events, hangups = make_core(AgentScript(ring_delay_s=1.0, talk_s=30.0),
                                            card={"seats": 1}, screening={"vip": ["0755*", "13700001111"]})
    card.add_caller(CallerScript("13800000001", arrive_at=0.0))  # takes the only seat
    card.add_caller(CallerScript("13800000002", arrive_at=5.0))  # waits
    card.add_caller(CallerScript("13800000003", arrive_at=6.0))  # waits
    card.add_caller(CallerScript("+86 137 0000 1111", arrive_at=8.0))  # VIP: ahead of both
    card.add_caller(CallerScript("075512345678", arrive_at=9.0))  # VIP by prefix: behind the first VIP
    core.runtime.run_until(200.0)
    recs = _by_caller(core)
    order = sorted(recs, key=lambda c: recs[c]["agent_answer_ts"])
    assert order == ["13800000001", "+86 137 0000 1111", "075512345678", "13800000002", "13800000003"]
    assert all(r["disposition"] == "answered" for r in recs.values())
    vip = recs["+86 137 0000 1111"]
    queued = [e["data"] for e in core.journal.events(vip["call_id"]) if e["type"] in ("call.offered", "call.queued")]
    assert queued[0]["vip"] is True and queued[1]["vip"] is True
    assert queued[1]["position"] == 1  # ahead of the two who were waiting
    normal = [e["data"] for e in core.journal.events(recs["13800000003"]["call_id"]) if e["type"] == "call.queued"]
    assert "vip" not in normal[0]


def _agents(n):
    return [Agent(seat=i, port=30 + i, name=f"a{i}", extension=f"80{i}") for i in range(1, n + 1)]


@pytest.mark.parametrize("strategy", Acd.strategies)
def test_acd_priority_is_fifo_within_a_priority_under_every_strategy(strategy):
    acd = Acd(_agents(1), strategy=strategy)
    assert [acd.enqueue("n1", 1.0), acd.enqueue("n2", 2.0), acd.enqueue("v1", 3.0, priority=1),
            acd.enqueue("n3", 4.0), acd.enqueue("v2", 5.0, priority=1)] == [1, 2, 1, 4, 2]
    assert acd.enqueue("n0", 0.5, front=True) == 3  # back from an unanswered ring: head of the normal calls
    assert acd.enqueue("v0", 0.5, front=True, priority=1) == 1
    assert [e.call_id for e in acd.queue] == ["v0", "v1", "v2", "n0", "n1", "n2", "n3"]
    taken = []
    while (got := acd.next_group()) is not None:
        taken.append(got[0].call_id)
    assert taken == ["v0", "v1", "v2", "n0", "n1", "n2", "n3"]


# --- record fields ------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg, raw, expected", [
    ({}, "02788886666", ("02788886666", "湖北省武汉市", "landline")),
    ({}, "88886666", ("02788886666", "湖北省武汉市", "landline")),  # local: the box's area code 27
    ({"system": {"area_code": "10"}}, "88886666", ("01088886666", "北京市", "landline")),
    ({"system": {"area_code": "010"}}, "88886666", ("01088886666", "北京市", "landline")),
    ({}, "95555", ("95555", None, "service")),
    ({}, None, (None, None, None)),
])
def test_record_and_offered_event_fields(make_core, cfg, raw, expected):
    core, card, events, hangups = make_core(AgentScript(ring_delay_s=1.0, talk_s=2.0), **cfg)
    card.add_caller(CallerScript(raw, arrive_at=0.0))
    core.runtime.run_until(20.0)
    core.settle()
    rec = core.journal.calls()[0]
    assert rec["caller"] == raw  # unchanged: the raw number
    assert (rec["caller_national"], rec["caller_area"], rec["caller_kind"]) == expected
    assert rec["disposition"] == "answered"
    offered = next(e["data"] for e in events if e["event"] == "call.offered")
    assert (offered["caller"], offered["caller_national"], offered["caller_area"], offered["caller_kind"]) == \
        (raw, *expected)
    assert "vip" not in offered
    logged = core.journal.events(rec["call_id"])[0]
    assert (logged["type"], logged["data"]) == ("call.offered", offered)
    # the status view is unchanged by it
    assert core.status()["queue"] == []


# --- the agent's screen ----------------------------------------------------------------------------

def test_customer_lookup_gives_the_record_area_and_the_callers_last_calls(make_core):
    core, card, events, _ = make_core(AgentScript(ring_delay_s=1.0, talk_s=5.0))
    core.customers.add("02787654321", "王建国", company="武汉重工", note="老客户", vip=True)
    card.add_caller(CallerScript("87654321", arrive_at=1.0, digit_delay_s=1.0))  # local: Wuhan (area 27)
    card.add_caller(CallerScript("+862787654321", arrive_at=30.0, digit_delay_s=1.0))  # the same number
    card.add_caller(CallerScript("13912345678", arrive_at=60.0, digit_delay_s=1.0))
    core.runtime.run_until(100.0)
    core.settle()
    got = core.customer_lookup("027-8765 4321")
    assert {k: got[k] for k in ("number", "kind", "area", "customer")} == {
        "number": "02787654321", "kind": "landline", "area": "湖北省武汉市",
        "customer": {"number": "02787654321", "name": "王建国", "company": "武汉重工", "note": "老客户", "vip": True}}
    assert [(round(h["start_ts"] - EPOCH0), h["disposition"], h["seat"]) for h in got["history"]] == [
        (30, "answered", 2), (1, "answered", 1)]  # longest idle: seat 2 for the second call
    stranger = core.customer_lookup("13912345678", history=5)
    assert stranger["customer"] is None and stranger["kind"] == "mobile" and len(stranger["history"]) == 1
    from appliance.control import CommandError
    with pytest.raises(CommandError, match="number: 'abc' is not a phone number we can normalise"):
        core.customer_lookup("abc")
