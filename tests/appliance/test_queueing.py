"""Callers in queue, as sans-I/O scenarios with explicit times: several queues with members and skills, what a
waiting caller hears, overflow by length and by wait, callback in queue, and the journal's queue events."""

from __future__ import annotations

from appliance.acd import Agent
from appliance.actions import (
    Connect, Dial, Disconnect, Hangup, LogEvent, Play, PromptDone, Publish, Ring, StartRecording, StartTone, StopPlay, StopRing,
    StopTone, WriteCall,
)
from appliance.callcontrol import CallCentre
from appliance.flowrun import Say
from appliance.flows import default_flow
from drivers.base import Connected, Digit, OffHook, OnHook, Released, Seized

BASE = {"ring_timeout_s": 15.0, "max_wait_s": 300.0, "strategy": "longest-idle", "hold": "ringback",
        "announce_s": 0}


def flow_to(queue_by_key: dict[str, str]) -> dict:
    """A menu whose keys lead to queues."""
    nodes = {f"q_{name}": {"kind": "queue", "queue": name} for name in set(queue_by_key.values())}
    nodes["welcome"] = {"kind": "menu", "prompt": "welcome", "on_fail": next(iter(nodes)),
                        "choices": {k: f"q_{q}" for k, q in queue_by_key.items()}}
    return {"start": "welcome", "nodes": nodes}


def centre(queues, n=3, skills=None, flow=None, **kw):
    team = [Agent(seat=s + 1, port=30 + s, name=f"A{s + 1}", extension=f"80{s + 1}") for s in range(n)]
    for agent, sk in zip(team, skills or []):
        agent.skills = sk
    return CallCentre(list(range(30)), team, flow or default_flow({"1": "queue"}), queues, call_id_prefix="t",
                      **kw)


def signalling(actions):
    return [a for a in actions if not isinstance(a, (LogEvent, Publish, WriteCall))]


def logged(actions, type_):
    return [a.data for a in actions if isinstance(a, LogEvent) and a.type == type_]


def record(actions):
    return next(a.record for a in actions if isinstance(a, WriteCall))


def arrive(cc, port, now, key="1", number=None):
    acts = cc.handle(Seized(port, number or f"1380013{port:04d}", "4008001234"), now)
    return acts + cc.handle(Digit(port, key), now + 1.0)


# --- queues, members and skills -------------------------------------------------------------------

def test_each_queue_rings_only_its_members_by_their_skill_in_it():
    queues = [{**BASE, "name": "sales", "strategy": "skill-level"}, {**BASE, "name": "service",
                                                                     "strategy": "skill-level"}]
    # seat 1 sells only; seat 2 does both, better at service; seat 3 only service
    cc = centre(queues, skills=[{"sales": 9}, {"sales": 3, "service": 8}, {"service": 5}],
                flow=flow_to({"1": "sales", "2": "service"}))
    acts = arrive(cc, 3, 0.0, key="2")
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(31, "13800130003")]  # seat 2: skill 8
    acts = arrive(cc, 4, 10.0, key="2")
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(32, "13800130004")]  # seat 3
    acts = arrive(cc, 5, 20.0, key="2")  # no free service agent (seat 1 sells only): waits
    assert not [a for a in acts if isinstance(a, Ring)]
    assert logged(acts, "call.queued") == [{"call_id": "t-000003", "position": 1, "queue": "service"}]
    acts = arrive(cc, 6, 30.0, key="1")  # a sales call goes to seat 1 past the waiting service call
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(30, "13800130006")]
    assert cc.snapshot(40.0)["queues"] == {"sales": [], "service": [
        {"call_id": "t-000003", "caller": "13800130005", "position": 1, "waiting_s": 19.0, "callback": False}]}


def test_a_free_agent_takes_the_longest_waiting_call_of_the_queues_it_serves():
    queues = [{**BASE, "name": "sales"}, {**BASE, "name": "service"}]
    cc = centre(queues, n=1, flow=flow_to({"1": "sales", "2": "service"}))
    arrive(cc, 3, 0.0, key="1")
    cc.handle(OffHook(30), 3.0)  # seat 1 takes the first call
    arrive(cc, 4, 10.0, key="1")  # sales, waiting since 11
    arrive(cc, 5, 5.0, key="2")  # service, waiting since 6: longer
    acts = cc.handle(OnHook(30), 60.0)
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(30, "13800130005")]


# --- what a waiting caller hears --------------------------------------------------------------------

def test_position_and_estimated_wait_are_announced_then_music_repeated_at_the_interval():
    cc = centre({**BASE, "hold": "music", "announce_s": 30.0}, n=1)
    arrive(cc, 3, 0.0)  # rings seat 1
    cc.handle(PromptDone(3), 3.0)
    cc.handle(OffHook(30), 4.0)  # seat 1 busy with it
    cc.handle(Seized(4, "13800130004", "4008001234"), 10.0)
    acts = cc.handle(Digit(4, "1"), 11.0)  # nobody free: told the position and wait at once
    assert signalling(acts)[-3:] == [StopPlay(4), StopTone(4), Say(4, "坐席正忙，请稍候。您现在排在第1位，预计等待2分钟。")]
    assert logged(acts, "call.announce") == [{"position": 1, "minutes": 2}]  # 1 x 120 s (no calls yet) / 1 agent
    assert signalling(cc.handle(PromptDone(4), 18.0)) == [Play(4, "moh")]
    assert signalling(cc.handle(PromptDone(4), 34.0)) == [Play(4, "moh")]  # the music loops
    assert cc.next_deadline() == 41.0  # 30 s after the announcement began
    acts = cc.advance(41.0)
    assert signalling(acts) == [StopPlay(4), StopTone(4), Say(4, "坐席正忙，请稍候。您现在排在第1位，预计等待2分钟。")]
    acts = cc.handle(OnHook(30), 50.0)  # seat 1 free: the waiting caller's agent rings, the caller hears on
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(30, "13800130004")]
    acts = cc.handle(OffHook(30), 52.0)
    assert signalling(acts)[:4] == [StopRing(30), StopPlay(4), StopTone(4), Connect(4, 30)]


def test_the_estimate_learns_the_handle_time_and_counts_the_agents_staffed():
    cc = centre({**BASE, "announce_s": 60.0, "wrap_up_s": 20.0}, n=2, lang="en")
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    cc.handle(OnHook(30), 302.0)  # 300 s talk + 20 s wrap-up: the average moves 10% of the way from 120 s
    assert cc.aht["default"] == 140.0
    assert cc.next_deadline() == 322.0 and cc.acd.agents[0].state == "wrap_up"
    cc.advance(322.0)
    for port, t in ((4, 400.0), (5, 401.0)):  # both agents take a call
        ring = next(a for a in arrive(cc, port, t) if isinstance(a, Ring))
        cc.handle(OffHook(ring.port), t + 2)
    acts = arrive(cc, 6, 500.0)  # position 1, 2 agents staffed: ceil(140 / 2 / 60) = 2 minutes
    assert [a.text for a in acts if isinstance(a, Say)] == [
        "All agents are busy, please hold. You are number 1 in the queue; the expected wait is 2 minutes."]


# --- overflow -----------------------------------------------------------------------------------------

def test_a_full_queue_sends_the_next_caller_to_its_overflow_queue():
    queues = [{**BASE, "name": "sales", "max_length": 1, "overflow": "queue:backup"}, {**BASE, "name": "backup"}]
    cc = centre(queues, n=2, skills=[{"sales": 5}, {"backup": 5}], flow=flow_to({"1": "sales"}))
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)  # the only sales agent is talking
    arrive(cc, 4, 10.0)  # waits: the sales queue now holds 1
    acts = arrive(cc, 5, 20.0)  # sales is full: to backup, whose agent rings
    assert logged(acts, "call.overflow") == [{"queue": "sales", "reason": "max_length", "waiting": 1}]
    assert logged(acts, "call.queued") == [{"call_id": "t-000003", "position": 1, "queue": "backup"}]
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(31, "13800130005")]
    cc.handle(OffHook(31), 25.0)
    acts = cc.handle(OnHook(31), 85.0)
    assert record(acts)["queue"] == "backup" and record(acts)["wait_s"] == 4.0  # queued at 21, answered 25


def test_the_maximum_wait_ends_in_goodbye_or_the_overflow_target():
    cc = centre({**BASE, "max_wait_s": 60.0}, n=1)
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    arrive(cc, 4, 10.0)
    assert cc.next_deadline() == 71.0
    acts = cc.advance(71.0)
    assert logged(acts, "call.overflow") == [{"queue": "default", "reason": "max_wait", "wait_s": 60.0}]
    assert signalling(acts) == [StopPlay(4), StopTone(4), Play(4, "goodbye")]
    acts = cc.handle(PromptDone(4), 74.0)
    assert signalling(acts) == [StopPlay(4), StopTone(4), Hangup(4, 16)]
    assert (record(acts)["disposition"], record(acts)["ended_by"], record(acts)["wait_s"]) == ("overflow", "system",
                                                                                                60.0)  # to goodbye
    assert logged(acts, "call.ended")[0]["reason"] == "overflow"

    cc = centre({**BASE, "max_wait_s": 60.0, "overflow": "number:13900001111"}, n=1)  # the duty mobile
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    arrive(cc, 4, 10.0)
    acts = cc.advance(71.0)
    assert signalling(acts) == [StopPlay(4), StopTone(4), Dial(0, "13900001111"), StartTone(4, "ringback")]
    acts = cc.handle(Connected(0), 80.0)
    assert signalling(acts) == [StopTone(4), Connect(4, 0), StartRecording("t-000002", 4, 0)]
    acts = cc.handle(Released(0, 16), 140.0)  # the mobile hangs up: the caller is cleared too
    assert (record(acts)["disposition"], record(acts)["trunk_port"]) == ("transferred", 4)
    assert Hangup(4, 16) in acts and cc.legs == {} and cc.calls == {3: cc.calls[3]}


# --- callback in queue -----------------------------------------------------------------------------------

def test_callback_in_queue_keeps_the_place_and_dials_the_caller_when_an_agent_answers():
    cc = centre({**BASE, "callback_key": "*", "announce_s": 30.0}, n=1)
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    arrive(cc, 4, 10.0, number="02787654321")  # a Wuhan landline
    arrive(cc, 5, 12.0)
    acts = cc.handle(Digit(4, "*"), 20.0)
    assert logged(acts, "call.callback_requested") == [{"number": "02787654321", "queue": "default"}]
    assert [a.text for a in acts if isinstance(a, Say)] == [
        "好的，坐席空闲时将回拨您的电话 0 2 7 8 7 6 5 4 3 2 1，您的排队位置保留。您现在可以挂机了。"]
    acts = cc.handle(PromptDone(4), 30.0)
    assert signalling(acts) == [StopPlay(4), StopTone(4), Hangup(4, 16)]  # the caller's line is cleared
    assert 4 not in cc.calls and [e.call_id for e in cc.acd.queue] == ["t-000002", "t-000003"]  # place kept
    cc.handle(Released(4, 16), 30.1)  # the card confirms: nothing changes
    assert [e.call_id for e in cc.acd.queue] == ["t-000002", "t-000003"]
    acts = cc.handle(OnHook(30), 60.0)  # the agent is free: the parked call is first, the agent's phone rings
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(30, "02787654321")]
    acts = cc.handle(OffHook(30), 63.0)  # the agent answers: the caller is dialled, the agent hears the progress
    assert signalling(acts)[-2:] == [Dial(0, "02787654321"), Connect(0, 30)]
    acts = cc.handle(Connected(0), 70.0)
    assert logged(acts, "call.callback_answered") == [{"port": 0}]
    acts = cc.handle(OnHook(30), 130.0)
    rec = record(acts)
    assert (rec["disposition"], rec["seat"], rec["wait_s"], rec["talk_s"]) == ("answered", 1, 52.0, 67.0)
    assert Hangup(0, 16) in acts


def test_a_callback_nobody_answers_is_a_failed_call_and_withheld_callers_cannot_ask():
    cc = centre({**BASE, "callback_key": "*"}, n=1)
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    acts = cc.handle(Seized(4, None, "4008001234"), 10.0) + cc.handle(Digit(4, "1"), 11.0)
    assert logged(cc.handle(Digit(4, "*"), 15.0), "call.callback_refused") == [{"reason": "withheld"}]
    cc.handle(Released(4, 16), 16.0)
    arrive(cc, 5, 20.0)
    cc.handle(Digit(5, "*"), 25.0)
    cc.handle(PromptDone(5), 30.0)
    cc.handle(OnHook(30), 60.0)
    cc.handle(OffHook(30), 62.0)
    acts = cc.handle(Released(0, 17), 70.0)  # user busy
    rec = record(acts)
    assert (rec["disposition"], rec["ended_by"]) == ("failed", "system")
    assert logged(acts, "call.ended")[0]["reason"] == "callback cause 17"
    assert cc.calls == {} and cc.parked == {} and cc.legs == {} and cc.by_id == {}


def test_the_announcement_says_the_configured_words():
    texts = {"queue_busy": "请稍候，您是第{position}位，约{minutes}分钟。", "queue_callback": "回拨请按{digit}。"}
    cc = centre({**BASE, "announce_s": 30.0, "callback_key": "#"}, n=1, texts=texts)
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    acts = arrive(cc, 4, 10.0)
    assert [a.text for a in acts if isinstance(a, Say)] == ["请稍候，您是第1位，约2分钟。回拨请按井号。"]


def test_a_caller_past_the_maximum_wait_can_leave_a_voicemail_or_wait_for_one_seat():
    cc = centre({**BASE, "max_wait_s": 60.0, "overflow": "voicemail:after"}, n=1)
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    arrive(cc, 4, 10.0)
    acts = cc.advance(71.0)
    assert signalling(acts) == [StopPlay(4), StopTone(4), Play(4, "voicemail")]
    assert logged(acts, "voicemail.greeting") == [{"box": "after"}]
    assert signalling(cc.handle(PromptDone(4), 78.0)) == [Play(4, "beep")]
    assert signalling(cc.handle(PromptDone(4), 78.4)) == [StartRecording("t-000002", 4, 4, "voicemail")]
    acts = cc.handle(Released(4, 16), 90.4)
    assert logged(acts, "voicemail.recorded") == [{"box": "after", "seconds": 12.0, "caller": "13800130004"}]
    assert (record(acts)["disposition"], record(acts)["wait_s"]) == ("voicemail", 60.0)

    cc = centre({**BASE, "max_wait_s": 60.0, "overflow": "seat:2"}, n=2, skills=[{}, {"other": 5}])
    cc.acd.agents[0].skills = None  # seat 1 serves the queue; seat 2 only takes overflow directed to it
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    arrive(cc, 4, 10.0)
    acts = cc.advance(71.0)
    assert logged(acts, "call.queued") == [{"call_id": "t-000002", "position": 1, "queue": "default", "seat": 2}]
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(31, "13800130004")]


def test_an_agent_who_hangs_up_before_the_callback_is_answered_ends_it():
    cc = centre({**BASE, "callback_key": "*"}, n=1)
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)
    arrive(cc, 4, 10.0)
    cc.handle(Digit(4, "*"), 20.0)
    cc.handle(PromptDone(4), 30.0)
    cc.handle(OnHook(30), 60.0)
    cc.handle(OffHook(30), 62.0)  # dials the caller on channel 0
    acts = cc.handle(OnHook(30), 70.0)
    assert signalling(acts)[:4] == [Disconnect(0, 30), StopPlay(0), StopTone(0), Hangup(0, 16)]
    assert (record(acts)["disposition"], record(acts)["ended_by"]) == ("failed", "agent")
    assert cc.legs == {} and cc.by_id == {} and cc.acd.agents[0].state == "available"


def test_full_queues_that_overflow_into_each_other_end_in_goodbye():
    queues = [{**BASE, "name": "a", "max_length": 1, "overflow": "queue:b"},
              {**BASE, "name": "b", "max_length": 1, "overflow": "queue:a"}]
    cc = centre(queues, n=1, skills=[{"a": 5}], flow=flow_to({"1": "a", "2": "b"}))
    arrive(cc, 3, 0.0, key="1")
    cc.handle(OffHook(30), 2.0)
    arrive(cc, 4, 10.0, key="1")  # waits in a
    arrive(cc, 5, 12.0, key="2")  # waits in b
    acts = arrive(cc, 6, 20.0, key="1")  # a full -> b full -> a full: goodbye
    assert [d["queue"] for d in logged(acts, "call.overflow")] == ["a", "b", "a"]
    assert signalling(acts)[-1] == Play(6, "goodbye")
