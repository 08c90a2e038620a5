"""Progressive group calling: the campaign's numbers (do-not-call, invalid, duplicates, retries) as plain objects,
and whole campaigns on the simulated card in virtual time: pacing by free agents, retries, allowed hours and
holidays, waiting callers first, an agent who does not pick up, pause, resume, stop and a restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
import zoneinfo

import pytest

from appliance.campaign import AGENT_REST_S, DEFAULT_RETRIES, Campaign
from appliance.control import CommandError
from drivers.sim import AgentScript, CallerScript, OutboundScript
from tests.appliance import test_outbound

make_core = test_outbound.make_core  # the fixture: cores on the sim card in virtual time
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


def local(*when: int) -> float:
    return dt.datetime(*when, tzinfo=TZ).timestamp()


TUE_10AM = local(2026, 12, 1, 10, 0)  # a Tuesday


def start(core, **args):
    """``campaign.start`` (it normalises the numbers off the loop: a coroutine)."""
    return asyncio.run(core.campaign_start(**args))


def api(core, id_, cmd, args):
    """One control-API command as the server runs it (schema checked), awaited if it answers later."""
    answer = core.server.execute(id_, cmd, args)
    return asyncio.run(answer) if inspect.isawaitable(answer) else answer


def answered(talk_s=None):
    return OutboundScript("answered", setup_s=0.5, ring_s=4.0, talk_s=talk_s)


# --- the numbers -----------------------------------------------------------------------------------

def test_numbers_are_normalised_and_marked_invalid_duplicate_or_do_not_call():
    camp = Campaign("c1", ["13900000001", "12", "139-0000-0001", "02787654321", "87654322", "17001234567"], 5.0,
                    home_area="27", dnc=["1700*", "027 8765 4322"])
    assert [(e.raw, e.number, e.state, e.result) for e in camp.entries] == [
        ("13900000001", "13900000001", "pending", None), ("12", None, "invalid", "invalid"),
        ("139-0000-0001", "13900000001", "duplicate", None), ("02787654321", "02787654321", "pending", None),
        ("87654322", "02787654322", "dnc", None), ("17001234567", "17001234567", "dnc", None)]
    assert [camp.take(5.0), camp.take(5.0), camp.take(5.0)] == [0, 3, None]


def test_a_retried_result_comes_back_after_its_interval_until_its_retries_are_used_up():
    camp = Campaign("c1", ["13900000001", "13900000002"], 0.0, home_area="27",
                    retries={"busy": {"count": 2, "interval_s": 60}})
    assert camp.retries == {**DEFAULT_RETRIES, "busy": (2, 60.0)}
    assert camp.take(0.0) == 0 and camp.take(0.0) == 1
    assert camp.attempted(0, "busy", 17, 10.0) == 70.0
    assert camp.attempted(1, "vacant", 1, 12.0) is None  # never retried
    assert camp.take(69.9) is None and camp.next_due() == 70.0 and camp.take(70.0) == 0
    assert camp.attempted(0, "busy", 17, 80.0) == 140.0
    assert camp.take(140.0) == 0
    assert camp.attempted(0, "busy", None, 150.0) is None  # two retries made
    e = camp.entries[0]
    assert (e.state, e.attempts, e.retried, e.result, e.cause) == ("done", 3, {"busy": 2}, "busy", None)
    assert camp.all_done() and camp.summary()["results"] == {"busy": 1, "vacant": 1}


@pytest.mark.parametrize("settings, message", [
    ({"name": "a b"}, "name: 'a b' is not 1-40 letters, digits, '-', '_' or Chinese characters"),
    ({"numbers": []}, "numbers: expected a list of 1..10000 numbers, got 0"),
    ({"hours": {"mon": ["09:00-08:00"]}}, "hours.mon: '09:00-08:00' is not HH:MM-HH:MM with the start before the end"),
    ({"hours": {"monday": []}}, "hours: day 'monday' is not one of mon, tue, wed, thu, fri, sat, sun"),
    ({"holidays": ["2026-13-01"]}, "holidays: '2026-13-01' is not a date YYYY-MM-DD"),
    ({"retries": {"vacant": {"count": 1}}}, "retries: 'vacant' is not retried; results that are: busy, no_answer, "
                                            "congestion, failed"),
    ({"retries": {"busy": {"count": 11}}}, "retries.busy.count: 11 is not an integer 0..10"),
    ({"retries": {"busy": {"interval_s": 5}}}, "retries.busy.interval_s: 5 is not a number of seconds 10..86400"),
    ({"dnc": ["12a"]}, "dnc[0] '12a': not a number (digits, optionally after '+') nor a prefix ending in one '*' "
                       "(\"0755*\")"),
    ({"ring_s": 5}, "ring_s: 5 is not a number of seconds 10..120"),
])
def test_bad_settings_are_refused_naming_the_setting(settings, message):
    args = {"name": "c1", "numbers": ["13900000001"], **settings}
    with pytest.raises(ValueError) as e:
        Campaign(args.pop("name"), args.pop("numbers"), 0.0, home_area="27", **args)
    assert str(e.value) == message


# --- campaigns on the card ---------------------------------------------------------------------------------

NETWORK = {"13900000001": answered(), "13900000002": OutboundScript("busy", setup_s=0.5, tone_s=3.0),
           "13900000003": OutboundScript("vacant", setup_s=0.5, tone_s=5.0), "13900000004": answered(),
           "13900000005": OutboundScript("no_answer", setup_s=0.5, ring_s=10.0)}


def calls(core):
    core.settle()
    return [(round(c["start_ts"] - TUE_10AM, 2), round(c["end_ts"] - TUE_10AM, 2), c["seat"], c["called"],
             c["result"], c["cause"], c["disposition"], c["campaign"])
            for c in sorted(core.journal.calls(), key=lambda c: (c["start_ts"], c["call_id"]))]


def test_a_campaign_dials_at_the_pace_of_its_free_agents_with_retries_and_a_do_not_call_list(make_core):
    core, card = make_core(NETWORK, agent=AgentScript(ring_delay_s=2.0, talk_s=20.0), epoch=TUE_10AM)
    core.runtime.run_until(1.0)
    status = start(core, name="秋季回访", numbers=["13900000001", "13900000002", "13900000003", "1700123",
                                                   "13900000004", "17001234567", "13900000005", "139 0000 0001"],
                   seats=[1, 2], dnc=["1700*"], retries={"busy": {"count": 1, "interval_s": 60},
                                                         "no_answer": {"count": 1, "interval_s": 30}})
    assert (status["state"], status["entries"], status["open"]) == (
        "running", {"pending": 5, "dialling": 0, "done": 0, "dnc": 1, "invalid": 1, "duplicate": 1}, True)
    core.runtime.run_until(300.0)
    # seat 3 is not in the campaign; seats 1 and 2 each take the next number when free (they hang up 0.5 s
    # after a failed call); busy and no answer come back after their intervals, vacant does not
    assert calls(core) == [
        (1.0, 23.0, 1, "13900000001", "answered", None, "answered", "秋季回访"),  # the agent hung up
        (1.0, 6.5, 2, "13900000002", "busy", 17, "failed", "秋季回访"),  # both free agents at once at the start
        (7.0, 14.5, 2, "13900000003", "vacant", 1, "failed", "秋季回访"),
        (15.0, 37.0, 2, "13900000004", "answered", None, "answered", "秋季回访"),
        (23.0, 35.5, 1, "13900000005", "no_answer", 19, "failed", "秋季回访"),
        (65.5, 78.0, 1, "13900000005", "no_answer", 19, "failed", "秋季回访"),  # due at 65.5
        (66.5, 72.0, 2, "13900000002", "busy", 17, "failed", "秋季回访")]
    for c in core.journal.calls():  # every call rang its agent first and dialled at the pick-up
        events = [(e["type"], round(e["ts"] - c["start_ts"], 3)) for e in core.journal.events(c["call_id"])
                  if e["type"] in ("call.ringing", "call.dialling")]
        assert events == [("call.ringing", 0.0), ("call.dialling", 2.0)]
    status = core.campaign_status(name="秋季回访", numbers=True)
    assert (status["state"], status["attempts"], status["results"]) == (
        "finished", 7, {"answered": 2, "busy": 1, "vacant": 1, "invalid": 1, "no_answer": 1})
    assert [(n["number"], n["state"], n["attempts"], n["result"], n["cause"]) for n in status["list"]] == [
        ("13900000001", "done", 1, "answered", None), ("13900000002", "done", 2, "busy", 17),
        ("13900000003", "done", 1, "vacant", 1), ("1700123", "invalid", 0, "invalid", None),
        ("13900000004", "done", 1, "answered", None), ("17001234567", "dnc", 0, None, None),
        ("13900000005", "done", 2, "no_answer", 19), ("139 0000 0001", "duplicate", 0, None, None)]
    busy = [c for c in core.journal.calls() if c["called"] == "13900000002"]
    attempts = sorted((e["data"] for c in busy for e in core.journal.events(c["call_id"])
                       if e["type"] == "campaign.attempt"), key=lambda d: d["attempt"])
    assert attempts == [
        {"campaign": "秋季回访", "number": "13900000002", "attempt": 1, "result": "busy", "cause": 17,
         "retry_in_s": 60.0},
        {"campaign": "秋季回访", "number": "13900000002", "attempt": 2, "result": "busy", "cause": 17,
         "retry_in_s": None}]
    [finished] = [e for e in core.journal.events_of("campaign.state")]
    assert (finished["data"], round(finished["ts"] - TUE_10AM, 2)) == (
        {"campaign": "秋季回访", "state": "finished", "attempts": 7}, 78.0)
    [saved] = core.journal.campaigns()
    assert (saved["name"], saved["state"]) == ("秋季回访", "finished")


def test_waiting_callers_get_a_free_agent_before_the_campaign(make_core):
    core, card = make_core({"13900000001": answered(), "13900000002": answered()}, seats=1, media=False,
                           agent=AgentScript(ring_delay_s=2.0, talk_s=30.0), epoch=TUE_10AM)
    core.runtime.run_until(1.0)
    start(core, name="c1", numbers=["13900000001", "13900000002"])
    card.add_caller(CallerScript("13800138000", arrive_at=10.0, digits="1", digit_delay_s=0.5))
    core.runtime.run_until(200.0)
    core.settle()
    rows = sorted(core.journal.calls(), key=lambda c: c["start_ts"])
    # the campaign's first call; the caller queued at 10.5 is rung when the agent hangs up at 33; then the campaign
    assert [(c["direction"], c["called"] if c["direction"] == "out" else c["caller"],
             round(c["agent_answer_ts"] - TUE_10AM, 2), round(c["end_ts"] - TUE_10AM, 2)) for c in rows] == [
        ("out", "13900000001", 3.0, pytest.approx(33.0, abs=0.01)),
        ("in", "13800138000", pytest.approx(35.0, abs=0.01), pytest.approx(65.0, abs=0.01)),
        ("out", "13900000002", pytest.approx(67.0, abs=0.01), pytest.approx(97.0, abs=0.01))]


def test_a_campaign_keeps_to_its_hours_and_holidays(make_core):
    begin = local(2026, 12, 1, 10, 3)  # Tuesday 10:03; open 10:00-10:05 Tuesday to Thursday, Wednesday a holiday
    core, card = make_core({f"1390000000{i}": answered() for i in range(1, 5)}, seats=1, media=False,
                           agent=AgentScript(ring_delay_s=2.0, talk_s=40.0), epoch=begin)
    core.runtime.run_until(1.0)
    start(core, name="c1", numbers=[f"1390000000{i}" for i in range(1, 5)],
                        hours={d: ["10:00-10:05"] for d in ("tue", "wed", "thu")}, holidays=["2026-12-02"])
    core.runtime.run_until(local(2026, 12, 3, 10, 10) - begin)
    core.settle()
    rung = sorted(dt.datetime.fromtimestamp(c["start_ts"], TZ).strftime("%a %H:%M:%S.%f")[:-4]
                  for c in core.journal.calls())
    # each call takes 42 s (ring 2, talk 40): the fourth would start at 10:05:07, after the hours
    assert rung == ["Thu 10:00:00.00", "Tue 10:03:01.00", "Tue 10:03:43.00", "Tue 10:04:25.00"]
    assert core.campaign_status(name="c1")["state"] == "finished"


def test_an_agent_who_does_not_pick_up_rests_and_after_missed_offers_is_set_busy(make_core):
    core, card = make_core({"13900000001": answered()}, seats=1, media=False,
                           agent=AgentScript(ring_delay_s=100.0), epoch=TUE_10AM)
    core.runtime.run_until(1.0)
    start(core, name="c1", numbers=["13900000001"])
    core.runtime.run_until(200.0)
    core.settle()
    rows = sorted(core.journal.calls(), key=lambda c: c["start_ts"])
    ring = 15.0  # the queue's ring_timeout_s
    assert [(round(c["start_ts"] - TUE_10AM, 3), round(c["end_ts"] - TUE_10AM, 3), c["result"]) for c in rows] == [
        (pytest.approx(t, abs=0.01), pytest.approx(t + ring, abs=0.01), "failed")
        for t in (1.0, 1.0 + ring + AGENT_REST_S, 1.0 + 2 * (ring + AGENT_REST_S))]
    assert card.outbound == []  # nothing was dialled
    assert core.status()["seats"][0]["state"] == "busy" and core.status()["seats"][0]["reason"] == "no_answer"
    status = core.campaign_status(name="c1", numbers=True)
    assert [(n["state"], n["attempts"]) for n in status["list"]] == [("pending", 0)]  # the number waits


def test_pause_resume_stop_and_a_restart(make_core):
    busy = OutboundScript("busy", setup_s=0.5, tone_s=3.0)
    network = {"13900000001": busy, "13900000002": busy, "13900000003": answered()}
    core, card = make_core(network, seats=1, media=False, agent=AgentScript(ring_delay_s=2.0, talk_s=10.0),
                           epoch=TUE_10AM)
    core.runtime.run_until(1.0)
    start(core, name="c1", numbers=["13900000001", "13900000002", "13900000003"],
                        retries={"busy": {"count": 1, "interval_s": 600}})
    core.runtime.run_until(8.0)  # the first is busy (ended 6.5), the agent free again at 7.0, the second rings
    assert core.campaign_pause(name="c1")["state"] == "paused"  # its ringing call is cancelled
    core.runtime.run_until(60.0)
    assert [c[3] for c in calls(core)] == ["13900000001", "13900000002"]
    with pytest.raises(CommandError) as e:
        start(core, name="c1", numbers=["13900000009"])
    assert (e.value.code, e.value.message) == (
        "conflict", "name: campaign 'c1' is paused; stop it first or choose another name")
    core.close()

    later = TUE_10AM + 120.0  # the core starts again two minutes later
    core, card = make_core(network, seats=1, media=False, agent=AgentScript(ring_delay_s=2.0, talk_s=10.0),
                           epoch=later, data=core.data)
    status = core.campaign_status(name="c1", numbers=True)
    assert status["state"] == "paused"
    assert [(n["state"], n["attempts"], n["result"], n["next_ts"]) for n in status["list"]] == [
        ("pending", 1, "busy", pytest.approx(TUE_10AM + 606.5)), ("pending", 0, None, pytest.approx(TUE_10AM + 8.0)),
        ("pending", 0, None, pytest.approx(TUE_10AM + 1.0))]
    core.runtime.run_until(30.0)
    assert card.outbound == []  # paused
    assert core.campaign_resume(name="c1")["state"] == "running"
    core.runtime.run_until(60.0)
    dialled = [(round(o.dialled_at, 2), o.number) for o in card.outbound]
    assert dialled == [(32.0, "13900000003"), (44.0, "13900000002")]  # the agent talked 10 s from the dial
    assert core.campaign_stop(name="c1")["state"] == "stopped"
    core.runtime.run_until(1000.0)  # the first number's retry falls due at 606.5: not dialled
    assert len(card.outbound) == 2
    with pytest.raises(CommandError) as e:
        core.campaign_resume(name="c1")
    assert (e.value.code, e.value.message) == ("conflict", "name: campaign 'c1' is stopped; only a paused one resumes")
    with pytest.raises(CommandError) as e:
        core.campaign_status(name="c9")
    assert (e.value.code, e.value.message) == ("not_found", "name: no campaign 'c9'; campaigns: c1")


def test_the_campaign_commands_through_the_control_api(make_core):
    core, card = make_core({"13900000001": answered()}, seats=2, media=False, epoch=TUE_10AM,
                           agent=AgentScript(ring_delay_s=2.0, talk_s=10.0))
    core.runtime.run_until(1.0)
    run = functools.partial(api, core)
    assert run(1, "campaign.start", {"name": "c1", "numbers": "13900000001"})["message"] == \
        'numbers: "13900000001" is not a list; allowed a list of at most 10000 items, each a string of at most 32 ' \
        'characters'
    assert run(2, "campaign.start", {"name": "c1", "numbers": ["13900000001"], "hours": ["09:00-18:00"]})[
        "message"] == 'hours: ["09:00-18:00"] is not an object; allowed a JSON object'
    assert run(3, "campaign.start", {"name": "c1", "numbers": ["13900000001"], "queue": "sales"}) == {
        "id": 3, "ok": False, "error": "bad_argument", "message": "queue: 'sales' is not a queue; queues: default"}
    assert run(4, "campaign.start", {"name": "c1", "numbers": ["13900000001"], "seats": [2], "ring_s": 20})["ok"]
    core.runtime.run_until(30.0)
    status = run(5, "campaign.status", {"name": "c1", "numbers": True})
    assert (status["ok"], status["state"], status["seats"], status["ring_s"], status["list"][0]["result"]) == (
        True, "finished", [2], 20.0, "answered")
    assert [c["name"] for c in run(6, "campaign.status", {})["campaigns"]] == ["c1"]
    assert run(7, "campaign.stop", {"name": "c1"}) == {
        "id": 7, "ok": False, "error": "conflict", "message": "name: campaign 'c1' is finished"}
    assert run(8, "campaign.pause", {"name": "c2"})["error"] == "not_found"
    assert run(9, "campaign.start", {"name": "c1", "numbers": ["13900000001"], "hours": {"mon": ["9-18"]}}) == {
        "id": 9, "ok": False, "error": "bad_argument",
        "message": "hours.mon: '9-18' is not HH:MM-HH:MM with the start before the end"}  # from the worker thread
    core.settle()
    [rec] = core.journal.calls()
    assert (rec["seat"], rec["campaign"], rec["result"]) == (2, "c1", "answered")
