"""Call handling from the agent's phone, as sans-I/O scenarios: hold by flash, consultation of a seat or an outside
number, attended and blind transfer, transfer to a queue, three-way and larger conferences, parties leaving."""

from __future__ import annotations

from appliance.acd import Agent
from appliance.actions import (
    Connect, Dial, Hangup, Hear, Isolate, LogEvent, Play, Publish, Ring, StartTone, StopPlay,
    StopRing, StopTone, WriteCall,
)
from appliance.callcontrol import CallCentre
from appliance.flows import default_flow
from drivers.base import Connected, Digit, Flash, OffHook, OnHook, Released, Seized

QUEUES = [{"name": "sales", "ring_timeout_s": 15.0, "max_wait_s": 300.0, "hold": "ringback", "announce_s": 0},
          {"name": "vip", "ring_timeout_s": 15.0, "max_wait_s": 300.0, "hold": "ringback", "announce_s": 0}]


def centre(n=3):
    team = [Agent(seat=s + 1, port=30 + s, name=f"A{s + 1}", extension=f"80{s + 1}") for s in range(n)]
    flow = default_flow({"1": "queue"})
    flow["nodes"]["queue"]["queue"] = "sales"
    return CallCentre(list(range(30)), team, flow, QUEUES, call_id_prefix="t")


def signalling(actions):
    return [a for a in actions if not isinstance(a, (LogEvent, Publish, WriteCall))]


def logged(actions, type_):
    return [a.data for a in actions if isinstance(a, LogEvent) and a.type == type_]


def heard(actions):
    """The switch's one-way paths set or cleared, as a set of (listener, talker, on)."""
    return {(a.listener, a.talker, a.on) for a in actions if isinstance(a, Hear)}


def dial(cc, port, digits, now):
    out = []
    for i, d in enumerate(digits):
        out += cc.handle(Digit(port, d), now + 0.2 * i)
    return out


def talking(cc, n=3):
    """A caller on channel 3 talking with seat 1 (port 30) from t=3."""
    cc = cc or centre(n)
    cc.handle(Seized(3, "13800138000", "4008001234"), 0.0)
    cc.handle(Digit(3, "1"), 1.0)
    cc.handle(OffHook(30), 3.0)
    return cc


def test_a_flash_holds_the_caller_with_music_and_a_second_flash_resumes():
    cc = talking(None)
    acts = cc.handle(Flash(30), 10.0)
    assert heard(acts) == {(3, 30, False), (30, 3, False)}
    assert [a for a in signalling(acts) if not isinstance(a, Hear)] == [Play(3, "moh"), StartTone(30, "dial")]
    acts = cc.handle(Flash(30), 15.0)
    assert heard(acts) == {(3, 30, True), (30, 3, True)}
    assert StopPlay(3) in acts and StopTone(30) in acts
    assert logged(acts, "call.resume") == [{"seat": 1}]
    cc.handle(Flash(30), 20.0)
    acts = cc.advance(24.0)  # nothing dialled within 4 s: back to the caller
    assert heard(acts) == {(3, 30, True), (30, 3, True)}


def test_attended_transfer_to_a_seat():
    cc = talking(None)
    cc.handle(Flash(30), 10.0)
    acts = dial(cc, 30, "802", 11.0)
    assert [a for a in signalling(acts) if isinstance(a, (Ring, StartTone))] == [Ring(31, "801"),
                                                                                StartTone(30, "ringback")]
    assert logged(acts, "call.consult") == [{"seat": 1, "to_seat": 2}]
    acts = cc.handle(OffHook(31), 14.0)
    assert signalling(acts) == [StopRing(31), StopTone(30), Connect(30, 31)]
    assert cc.acd.agents[1].state == "talking"
    acts = cc.handle(OnHook(30), 20.0)  # seat 1 hangs up: the caller is seat 2's now
    assert logged(acts, "call.transferred") == [{"from_seat": 1, "kind": "attended", "to_seat": 2,
                                                 "to_number": None}]
    assert Isolate(30) in acts and Connect(3, 31) in acts and StopPlay(3) in acts
    assert heard(acts) >= {(3, 31, True), (31, 3, True)}
    assert [a.state for a in cc.acd.agents] == ["available", "talking", "available"]
    acts = cc.handle(OnHook(31), 80.0)
    rec = next(a.record for a in acts if isinstance(a, WriteCall))
    assert (rec["seat"], rec["disposition"], rec["talk_s"], rec["ended_by"]) == (2, "answered", 77.0, "agent")
    assert cc.acd.agents[0].talk_today == 17.0 and cc.acd.agents[1].talk_today == 77.0  # 3..20, then to 80


def test_blind_transfer_rings_on_with_the_caller_hearing_ringback():
    cc = talking(None)
    cc.handle(Flash(30), 10.0)
    dial(cc, 30, "802", 11.0)
    acts = cc.handle(OnHook(30), 12.0)  # hung up while seat 2 still rings
    assert logged(acts, "call.transferred")[0]["kind"] == "blind"
    assert StartTone(3, "ringback") in acts
    acts = cc.handle(OffHook(31), 15.0)
    assert StopTone(3) in acts and Connect(3, 31) in acts
    assert cc.calls[3].agent.seat == 2 and cc.acd.agents[1].state == "talking"


def test_a_blind_transfer_nobody_answers_goes_back_to_the_queue():
    cc = talking(None, )
    cc.handle(Flash(30), 10.0)
    dial(cc, 30, "802", 11.0)
    cc.handle(OnHook(30), 12.0)
    acts = cc.advance(11.4 + 15.0)  # the consultation's ring timeout
    assert StopRing(31) in acts
    assert logged(acts, "call.queued") == [{"call_id": "t-000001", "position": 1, "queue": "sales"}]
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(32, "13800138000")]  # seat 3: idle longest


def test_transfer_to_a_queue_by_flash_star_9():
    cc = talking(None)
    cc.handle(Flash(30), 10.0)
    acts = dial(cc, 30, "*92#", 11.0)
    assert logged(acts, "call.transferred") == [{"from_seat": 1, "kind": "queue", "to_queue": "vip"}]
    assert logged(acts, "call.queued") == [{"call_id": "t-000001", "position": 1, "queue": "vip"}]
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(31, "13800138000")]  # longest idle


def test_three_way_conference_then_the_agent_leaves_and_the_others_talk_on():
    cc = talking(None)
    cc.handle(Flash(30), 10.0)
    dial(cc, 30, "802", 11.0)
    cc.handle(OffHook(31), 14.0)
    cc.handle(Flash(30), 20.0)
    acts = cc.handle(Digit(30, "3"), 21.0)
    assert heard(acts) == {(3, 30, True), (30, 3, True), (3, 31, True), (31, 3, True), (30, 31, True),
                           (31, 30, True)}
    assert logged(acts, "call.conference") == [{"ports": [3, 30, 31]}]
    acts = cc.handle(OnHook(30), 30.0)  # the first agent leaves; seat 2 carries the call
    assert heard(acts) >= {(3, 30, False), (30, 3, False), (31, 30, False), (30, 31, False)}
    assert cc.calls[3].agent.seat == 2 and cc.calls[3].conf == [3, 31]
    acts = cc.handle(Released(3, 16), 40.0)  # the caller hangs up: seat 2 hears busy
    assert StartTone(31, "busy") in acts and cc.calls == {}


def test_conference_with_an_outside_number_and_a_party_leaving():
    cc = talking(None)
    cc.handle(Flash(30), 10.0)
    acts = dial(cc, 30, "13900001111#", 11.0)
    assert [a for a in acts if isinstance(a, Dial)] == [Dial(0, "13900001111")]
    assert heard(acts) == {(30, 0, True), (0, 30, True)}  # the agent hears the network's progress
    cc.handle(Connected(0), 15.0)
    cc.handle(Flash(30), 20.0)
    cc.handle(Digit(30, "3"), 21.0)
    assert cc.calls[3].conf == [3, 30, 0]
    acts = cc.handle(Released(0, 16), 30.0)  # the outside party hangs up: the caller and agent talk on
    assert Isolate(0) in acts and cc.calls[3].conf == [3, 30]


def test_a_busy_seat_cannot_be_consulted_and_a_second_flash_goes_back():
    cc = talking(None, )
    cc.acd.agents[1].state = "busy"
    cc.handle(Flash(30), 10.0)
    acts = dial(cc, 30, "802", 11.0)
    assert StartTone(30, "busy") in acts and logged(acts, "call.consult_failed") == [{"seat": 2, "state": "busy"}]
    acts = cc.handle(Flash(30), 13.0)
    assert heard(acts) == {(3, 30, True), (30, 3, True)}


def test_flash_1_drops_the_consulted_seat():
    cc = talking(None)
    cc.handle(Flash(30), 10.0)
    dial(cc, 30, "802", 11.0)
    cc.handle(OffHook(31), 14.0)
    cc.handle(Flash(30), 20.0)
    acts = cc.handle(Digit(30, "1"), 21.0)
    assert Isolate(31) in acts and StartTone(31, "busy") in acts
    assert heard(acts) >= {(3, 30, True), (30, 3, True)}
    cc.handle(OnHook(31), 22.0)
    assert cc.acd.agents[1].state == "available"


def test_an_ip_phones_refer_to_an_outside_number_is_a_blind_transfer():
    cc = talking(None)
    acts = cc.handle(Flash(30), 10.0) + dial(cc, 30, "13900001111", 10.0)  # REFER: flash, the digits at once
    acts = cc.handle(OnHook(30), 10.1)  # then the phone's BYE
    assert [a for a in acts if isinstance(a, Dial)] == [Dial(0, "13900001111")]
    assert logged(acts, "call.transferred")[0]["kind"] == "blind"
    acts = cc.handle(Connected(0), 15.0)
    assert heard(acts) >= {(3, 0, True), (0, 3, True)} and cc.calls[3].state == "external"
    acts = cc.handle(Released(0, 16), 75.0)
    rec = next(a.record for a in acts if isinstance(a, WriteCall))
    assert (rec["disposition"], rec["talk_s"]) == ("transferred", 60.0) and Hangup(3, 16) in acts


def test_an_ip_phones_hold_key_holds_the_caller_with_music():
    from drivers.base import Hold
    cc = talking(None)
    acts = cc.handle(Hold(30, True), 10.0)
    assert heard(acts) == {(3, 30, False), (30, 3, False)} and Play(3, "moh") in acts
    assert cc.advance(30.0) == []  # no flash timer: held until resumed
    acts = cc.handle(Hold(30, False), 40.0)
    assert heard(acts) == {(3, 30, True), (30, 3, True)} and StopPlay(3) in acts


def test_the_status_shows_a_consulted_outside_number_on_its_channel():
    cc = talking(None)
    cc.handle(Flash(30), 10.0)
    dial(cc, 30, "13900001111#", 11.0)
    trunks = {t["port"]: (t["state"], t["call_id"]) for t in cc.snapshot(12.0)["trunks"]}
    assert trunks[0] == ("agent", "t-000001") and trunks[3] == ("agent", "t-000001") and trunks[1][0] == "idle"
