"""Call control as sans-I/O logic: explicit events and times in, exact actions out."""

from __future__ import annotations

from appliance.acd import Agent
from appliance.actions import (
    Answer, Connect, Hangup, LogEvent, Play, PromptDone, Publish, Ring, StartRecording, StartTone, StopPlay,
    StopRing, StopTone, WriteCall,
)
from appliance.callcontrol import CallCentre
from appliance.flows import default_flow
from drivers.base import Digit, OffHook, OnHook, Released, Seized

QUEUE = {"name": "default", "ring_timeout_s": 15.0, "max_wait_s": 300.0, "strategy": "longest_idle",
         "hold": "ringback", "announce_s": 0}


def centre(n_seats=2, **ivr):
    agents = [Agent(seat=s + 1, port=30 + s, name=f"A{s + 1}", extension=f"80{s + 1}") for s in range(n_seats)]
    flow = default_flow({"1": "queue", "9": "hangup", "0": "repeat"})
    flow["nodes"]["welcome"].update(timeout_s=ivr.get("timeout", 5.0), retries=ivr.get("retries", 1))
    return CallCentre(list(range(30)), agents, flow, QUEUE, record=True, call_id_prefix="t")


def signalling(actions):
    """The actions that reach the card, switch and players, in order."""
    return [a for a in actions if not isinstance(a, (LogEvent, Publish, WriteCall))]


def test_seizure_answers_and_plays_the_welcome():
    cc = centre()
    acts = cc.handle(Seized(3, "13800138000", "4008001234"), 10.0)
    assert signalling(acts) == [Answer(3), Play(3, "welcome")]
    assert [a.type for a in acts if isinstance(a, Publish)] == ["call.offered"]


def test_digit_queues_and_rings_the_longest_idle_agent():
    cc = centre()
    cc.acd.agents[0].idle_since = 5.0  # seat 2 has been idle longer (since 0)
    cc.handle(Seized(3, "13800138000", "4008001234"), 10.0)
    acts = cc.handle(Digit(3, "1"), 11.0)
    # an agent is free: "transferring you to an agent" while the agent's phone rings
    assert signalling(acts) == [StopPlay(3), Play(3, "transfer"), Ring(31, "13800138000")]
    acts = cc.handle(PromptDone(3), 12.0)
    assert signalling(acts) == [StartTone(3, "ringback")]  # then ringback (hold: ringback in this queue)
    acts = cc.handle(OffHook(31), 13.0)
    assert signalling(acts) == [StopRing(31), StopPlay(3), StopTone(3), Connect(3, 31),
                                StartRecording("t-000001", 3, 31)]


def test_ring_no_answer_moves_to_the_next_agent_and_keeps_the_place_in_queue():
    cc = centre()
    cc.handle(Seized(3, "a", "b"), 0.0)
    cc.handle(Digit(3, "1"), 1.0)
    cc.handle(Seized(4, "c", "d"), 2.0)
    cc.handle(Digit(4, "1"), 3.0)  # rings seat 2
    assert cc.next_deadline() == 16.0  # seat 1 rings out 15 s after 1.0
    acts = cc.advance(16.0)
    # seat 1 rang out: the call goes back to the head of the queue, seat 1 is free again and rung at once
    assert signalling(acts) == [StopRing(30), Ring(30, "a")]
    assert cc.calls[3].agent.seat == 1 and cc.calls[4].agent.seat == 2


def test_invalid_key_then_timeout_ends_in_goodbye_and_clearing():
    cc = centre(retries=1, timeout=5.0)
    cc.handle(Seized(0, None, "4008001234"), 0.0)
    assert signalling(cc.handle(Digit(0, "7"), 1.0)) == [StopPlay(0), Play(0, "invalid")]
    assert signalling(cc.handle(PromptDone(0), 2.0)) == [Play(0, "welcome")]
    assert cc.handle(PromptDone(0), 5.0) == []  # prompt over: the digit timer runs
    assert cc.next_deadline() == 10.0
    assert signalling(cc.advance(10.0)) == [Play(0, "goodbye")]  # second failure: retries used up
    acts = cc.handle(PromptDone(0), 12.0)
    assert signalling(acts) == [StopPlay(0), StopTone(0), Hangup(0, 16)]
    record = next(a.record for a in acts if isinstance(a, WriteCall))
    assert (record["disposition"], record["ended_by"], record["queue"], record["wait_s"]) == ("ivr", "system", None, None)
    assert cc.calls == {}


def test_an_agent_set_busy_stays_busy_after_using_the_phone():
    cc = centre()
    agent = cc.acd.agents[0]
    cc.set_agent_state(agent, "busy", 1.0)
    cc.handle(OffHook(30), 2.0)
    cc.handle(OnHook(30), 3.0)
    assert agent.state == "busy"
    other = cc.acd.agents[1]
    cc.handle(OffHook(31), 4.0)  # an available agent lifting the phone is busy until hanging up
    assert other.state == "busy"
    cc.handle(OnHook(31), 5.0)
    assert other.state == "available" and other.idle_since == 5.0


def test_caller_leaving_mid_call_leaves_the_agent_on_busy_tone_until_hang_up():
    cc = centre()
    cc.handle(Seized(3, "a", "b"), 0.0)
    cc.handle(Digit(3, "1"), 1.0)
    cc.handle(OffHook(30), 2.0)
    acts = cc.handle(Released(3), 30.0)
    assert StartTone(30, "busy") in acts and cc.acd.agents[0].state == "busy"
    record = next(a.record for a in acts if isinstance(a, WriteCall))
    assert (record["talk_s"], record["wait_s"], record["ended_by"]) == (28.0, 1.0, "caller")
    acts = cc.handle(OnHook(30), 31.0)
    assert StopTone(30) in acts and cc.acd.agents[0].state == "available"


def test_span_alarm_marks_the_trunks_down_until_it_clears():
    from drivers.base import Alarm

    cc = centre()
    acts = cc.handle(Alarm(1, frozenset({"RED", "LOS"})), 5.0)
    assert acts == [Publish("span.alarm", {"span": 1, "alarms": ["LOS", "RED"]})]
    snap = cc.snapshot(5.0)
    assert {t["state"] for t in snap["trunks"]} == {"alarm"} and snap["alarms"]["spans"] == {"1": ["LOS", "RED"]}
    cc.handle(Alarm(1, frozenset()), 9.0)
    snap = cc.snapshot(9.0)
    assert {t["state"] for t in snap["trunks"]} == {"idle"} and snap["alarms"] == {"spans": {}, "ports": {}}


def test_a_seat_whose_port_fails_mid_call_ends_the_call_and_is_skipped_until_it_works():
    from drivers.base import PortFault

    cc = centre()
    cc.acd.agents[0].idle_since = 5.0
    cc.handle(Seized(3, "13800138000", "4008001234"), 10.0)
    cc.handle(Digit(3, "1"), 11.0)  # rings seat 2 (port 31), idle longest
    cc.handle(OffHook(31), 12.0)
    acts = cc.handle(PortFault(31, False, "no frames"), 20.0)
    assert acts[0] == Publish("port.fault", {"port": 31, "ok": False, "reason": "no frames"})
    assert Hangup(3, 16) in acts and cc.acd.agents[1].state == "out_of_service"
    cc.handle(Seized(4, "13900139000", "4008001234"), 21.0)
    acts = cc.handle(Digit(4, "1"), 22.0)
    assert Ring(30, "13900139000") in acts  # seat 1, the only one in service
    assert cc.snapshot(22.0)["alarms"]["ports"] == {"31": "no frames"}
    acts = cc.handle(PortFault(31, True), 30.0)
    assert cc.acd.agents[1].state == "available" and cc.snapshot(30.0)["alarms"]["ports"] == {}


def test_a_voicemail_node_with_its_own_words_goes_straight_to_the_beep_and_hash_ends_only_a_message():
    flow = {"start": "vm", "nodes": {"vm": {"kind": "voicemail", "box": "sales", "prompt": "goodbye"}}}
    cc = CallCentre(list(range(30)), [], flow, QUEUE, call_id_prefix="t")
    assert signalling(cc.handle(Seized(3, "13800138000", "4008001234"), 0.0)) == [Answer(3), Play(3, "goodbye")]
    assert signalling(cc.handle(PromptDone(3), 2.0)) == [Play(3, "beep")]  # no second greeting
    assert signalling(cc.handle(PromptDone(3), 2.4)) == [StartRecording("t-000001", 3, 3, "voicemail")]
    acts = cc.handle(Digit(3, "#"), 7.4)
    assert [a.data for a in acts if isinstance(a, LogEvent) and a.type == "voicemail.recorded"] == [
        {"box": "sales", "seconds": 5.0, "caller": "13800138000"}]
    assert next(a.record for a in acts if isinstance(a, WriteCall))["disposition"] == "voicemail"

    flow = {"start": "vm", "nodes": {"vm": {"kind": "voicemail", "box": "sales"}}}
    cc = CallCentre(list(range(30)), [], flow, QUEUE, call_id_prefix="t")
    assert signalling(cc.handle(Seized(3, "13800138000", "4008001234"), 0.0)) == [Answer(3), Play(3, "voicemail")]
    assert cc.handle(Digit(3, "#"), 1.0) == []  # during the greeting: no message to end
    acts = cc.handle(Released(3, 16), 2.0)
    assert next(a.record for a in acts if isinstance(a, WriteCall))["disposition"] == "abandoned"


def test_a_transfer_to_an_agent_rings_the_seat_the_agent_is_logged_in_at():
    agents = [Agent(seat=s + 1, port=30 + s, name=f"A{s + 1}", extension=f"80{s + 1}") for s in range(3)]
    agents[2].agent_id = "1007"
    flow = {"start": "t", "nodes": {"t": {"kind": "transfer", "to": "agent:1007"}}}
    cc = CallCentre(list(range(30)), agents, flow, QUEUE, call_id_prefix="t")
    acts = cc.handle(Seized(3, "13800138000", "4008001234"), 0.0)
    assert [a for a in acts if isinstance(a, Ring)] == [Ring(32, "13800138000")]


def test_a_seat_whose_phone_fails_comes_back_as_the_agent_left_it():
    from drivers.base import PortFault
    cc = centre(3)
    cc.set_agent_state(cc.acd.agents[0], "busy", 1.0, "meal")
    cc.set_agent_state(cc.acd.agents[1], "logged_out", 1.0)
    for port in (30, 31, 32):
        cc.handle(PortFault(port, False, "unregistered"), 2.0)
    assert [(a.state, a.reason) for a in cc.acd.agents] == [("out_of_service", "unregistered")] * 3
    for port in (30, 31, 32):
        cc.handle(PortFault(port, True), 5.0)
    assert [(a.state, a.reason) for a in cc.acd.agents] == [("busy", "meal"), ("logged_out", None),
                                                            ("available", None)]
