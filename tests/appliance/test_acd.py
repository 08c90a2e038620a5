"""The ACD strategies, each exactly: who gets the call, ties by longest idle then seat, only available agents."""

from __future__ import annotations

import random

import pytest

from appliance.acd import STRATEGIES, Acd, Agent, strategy_name
from appliance.actions import (
    Connect, LogEvent, Publish, Ring, StartRecording, StopPlay, StopRing, StopTone, WriteCall,
)
from appliance.callcontrol import CallCentre
from appliance.flows import default_flow
from drivers.base import Digit, OffHook, OnHook, Released, Seized


def agents(n=4, **per_seat):
    out = [Agent(seat=s, port=29 + s, name=f"A{s}", extension=f"80{s}") for s in range(1, n + 1)]
    for key, values in per_seat.items():
        for a, v in zip(out, values):
            setattr(a, key, v)
    return out


def seat(acd):
    a = acd.pick_agent()
    return None if a is None else a.seat


def test_names_and_the_old_saved_name():
    assert STRATEGIES == ("ring-all", "round-robin", "random", "fewest-calls", "least-talk-time", "longest-idle",
                          "skill-level", "fixed-order")
    assert strategy_name("longest_idle") == "longest-idle"
    assert Acd(agents(), strategy="longest_idle").strategy == "longest-idle"
    with pytest.raises(ValueError, match="not one of"):
        Acd(agents(), strategy="fewest_calls")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nobody_but_available_agents_gets_a_call(strategy):
    team = agents(5)
    for a, state in zip(team, ("logged_out", "busy", "talking", "ringing", "out_of_service")):
        a.state = state
    acd = Acd(team, strategy=strategy)
    acd.enqueue("c1", 0.0)
    assert acd.pick_agent() is None and acd.next_group() is None and acd.queue  # the call keeps waiting
    team[3].state = "available"
    entry, group = acd.next_group()
    assert entry.call_id == "c1" and [a.seat for a in group] == [4]


def test_longest_idle_then_seat():
    acd = Acd(agents(idle_since=[5.0, 3.0, 3.0, 9.0]), strategy="longest-idle")
    assert seat(acd) == 2  # seats 2 and 3 idle since 3.0: the lower seat


def test_fewest_calls_today_ties_by_longest_idle_then_seat():
    team = agents(calls_today=[3, 1, 1, 1], idle_since=[0.0, 8.0, 4.0, 4.0])
    acd = Acd(team, strategy="fewest-calls")
    assert seat(acd) == 3
    acd.answered(team[2], 10.0)
    assert team[2].calls_today == 2 and seat(acd) == 4


def test_least_talk_time_today():
    team = agents(talk_today=[100.0, 40.0, 40.0, 50.0], idle_since=[0.0, 2.0, 1.0, 0.0])
    acd = Acd(team, strategy="least-talk-time")
    assert seat(acd) == 3
    acd.talked(team[2], 30.0, 20.0)
    assert team[2].talk_today == 70.0 and seat(acd) == 2


def test_today_starts_again_at_the_day_start():
    team = agents(2, calls_today=[4, 0], talk_today=[600.0, 0.0])
    acd = Acd(team, strategy="fewest-calls", day_start=0.0)
    acd.start_day(0.0)  # the same day: nothing changes
    assert team[0].calls_today == 4
    acd.start_day(86400.0)
    assert [(a.calls_today, a.talk_today) for a in team] == [(0, 0.0), (0, 0.0)] and acd.day_start == 86400.0


def test_skill_level_highest_first_ties_by_longest_idle():
    team = agents(skill=[5, 9, 9, 10], idle_since=[0.0, 6.0, 2.0, 1.0])
    acd = Acd(team, strategy="skill-level")
    assert seat(acd) == 4
    team[3].state = "talking"
    assert seat(acd) == 3  # skill 9, idle longer than seat 2


def test_fixed_order_seat_one_always_first():
    team = agents(idle_since=[50.0, 0.0, 0.0, 0.0])
    acd = Acd(team, strategy="fixed-order")
    assert seat(acd) == 1
    team[0].state = "busy"
    assert seat(acd) == 2


def test_round_robin_continues_after_the_last_seat_served():
    team = agents(4)
    acd = Acd(team, strategy="round-robin")
    got = []
    for k in range(6):
        acd.enqueue(f"c{k}", float(k))
        got.append(acd.next_group()[1][0].seat)  # the agents stay available: pure rotation
    assert got == [1, 2, 3, 4, 1, 2]
    team[2].state = "talking"  # seat 3 busy: after seat 2 comes seat 4
    acd.enqueue("c6", 6.0)
    assert acd.next_pair()[1].seat == 4 and acd.last_seat == 4


def test_random_is_uniform_and_reproducible_with_a_seed():
    def draws(seed):
        acd = Acd(agents(4), strategy="random", rng=random.Random(seed))
        return [seat(acd) for _ in range(4000)]

    first = draws(7)
    assert first == draws(7) and first != draws(8)
    counts = [first.count(s) for s in (1, 2, 3, 4)]
    assert all(900 < c < 1100 for c in counts)


def test_ring_all_offers_every_available_agent_by_longest_idle():
    team = agents(4, idle_since=[3.0, 1.0, 2.0, 0.0])
    team[3].state = "busy"
    acd = Acd(team, strategy="ring-all")
    acd.enqueue("c1", 0.0)
    entry, group = acd.next_group()
    assert [a.seat for a in group] == [2, 3, 1]


# --- in call control ----------------------------------------------------------------------------

def centre(strategy, n=3):
    team = [Agent(seat=s + 1, port=30 + s, name=f"A{s + 1}", extension=f"80{s + 1}") for s in range(n)]
    queue = {"name": "default", "ring_timeout_s": 15.0, "max_wait_s": 300.0, "strategy": strategy}
    return CallCentre(list(range(30)), team, default_flow({"1": "queue"}), queue, record=True,
                      call_id_prefix="t")


def signalling(actions):
    return [a for a in actions if not isinstance(a, (LogEvent, Publish, WriteCall))]


def queue_call(cc, port, now):
    cc.handle(Seized(port, f"138{port}", "4008001234"), now)
    return cc.handle(Digit(port, "1"), now + 1.0)


def test_ring_all_rings_everyone_and_the_first_to_answer_takes_the_call():
    cc = centre("ring-all")
    cc.acd.agents[0].idle_since = 1.0
    acts = queue_call(cc, 3, 10.0)
    assert [a for a in signalling(acts) if isinstance(a, Ring)] == [Ring(31, "1383"), Ring(32, "1383"), Ring(30, "1383")]
    assert [a.state for a in cc.acd.agents] == ["ringing"] * 3
    acts = cc.handle(OffHook(32), 13.0)
    assert signalling(acts) == [StopRing(32), StopRing(31), StopRing(30), StopPlay(3), StopTone(3), Connect(3, 32),
                                StartRecording("t-000001", 3, 32)]
    assert [a.state for a in cc.acd.agents] == ["available", "available", "talking"]
    assert cc.calls[3].agent.seat == 3 and cc.acd.agents[2].calls_today == 1
    assert cc.handle(OffHook(30), 14.0) and cc.acd.agents[0].state == "busy"  # too late: just off hook
    cc.handle(OnHook(30), 15.0)
    cc.handle(OnHook(32), 73.0)
    assert cc.acd.agents[2].talk_today == 60.0


def test_ring_all_ring_out_and_caller_gone_free_everyone():
    cc = centre("ring-all")
    queue_call(cc, 3, 0.0)
    acts = cc.advance(16.0)  # nobody answered in 15 s: every phone stops, and the call rings them all again
    rings = [a for a in signalling(acts)]
    assert rings[:3] == [StopRing(30), StopRing(31), StopRing(32)]
    assert sorted(a.port for a in rings[3:]) == [30, 31, 32]
    acts = cc.handle(Released(3, 16), 20.0)
    assert sorted(a.port for a in signalling(acts) if isinstance(a, StopRing)) == [30, 31, 32]
    assert [a.state for a in cc.acd.agents] == ["available"] * 3 and cc.calls == {}


@pytest.mark.parametrize("strategy", ["fewest-calls", "least-talk-time"])
def test_call_control_counts_calls_and_talk_today(strategy):
    cc = centre(strategy, n=2)
    queue_call(cc, 3, 0.0)  # seat 1 (all equal: seat order)
    cc.handle(OffHook(30), 2.0)
    cc.handle(OnHook(30), 302.0)  # 300 s talk
    queue_call(cc, 4, 400.0)  # seat 2: no calls and no talk yet
    assert cc.calls[4].agent.seat == 2
    cc.handle(OffHook(31), 402.0)
    cc.handle(OnHook(31), 412.0)  # 10 s talk
    queue_call(cc, 5, 500.0)
    # both have 1 call: fewest-calls takes the longest idle (seat 1 since 302); least talk time takes seat 2
    assert cc.calls[5].agent.seat == (1 if strategy == "fewest-calls" else 2)
    assert [(a.calls_today, a.talk_today) for a in cc.acd.agents] == [(1, 300.0), (1, 10.0)]
