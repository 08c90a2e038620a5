"""Agents' states survive a restart of the core: the same agents at the same seats, busy with the same reasons,
and the durations in the journal run on across the restart."""

from __future__ import annotations

from drivers.sim import AgentScript, CallerScript

from tests.appliance import test_agents
from tests.appliance.test_agents import AGENTS, EPOCH0, assert_durations, port, states

make_core = test_agents.make_core  # the fixture: cores on one data dir

FIVE = AGENTS + [{"id": "1005", "name": "陈静"}]
LATER = EPOCH0 + 100.0  # the second core starts 100 s after the first


def run_first_core(make_core):
    """Seat 1 talking, seat 2 busy (training), seat 3 available (agent 1003), seat 4 logged out, and seat 5's
    phone lifted, when the core stops at 20."""
    core, card = make_core([AgentScript(ring_delay_s=1.0, talk_s=1000.0)] * 5, agents=FIVE)
    core.runtime.run_until(1.0)
    for seat, (agent_id, pin) in enumerate((("1001", "1234"), ("1002", "4321"), ("1003", ""), ("1004", "1111"),
                                            ("1005", "")), 1):
        core.agent_login(seat, agent_id, pin)
    core.runtime.run_until(5.0)
    core.agent_state(2, "busy", "training")
    core.agent_logout(4)
    card.add_caller(CallerScript("13800138000", arrive_at=6.0))  # rings seat 1 at 7, answered at 8
    card.schedule_phone(15.0, "phone_dials", port(5), "")
    core.runtime.run_until(20.0)
    assert [(a.state, a.reason) for a in core.logic.acd.agents] == [
        ("talking", None), ("busy", "training"), ("available", None), ("logged_out", None), ("busy", "off_hook")]
    core.close()


def restart(make_core):
    """The core again on the same data dir, with agent 1003 no longer in the config."""
    agents = [a for a in FIVE if a["id"] != "1003"]
    return make_core([AgentScript(ring_delay_s=1.0, talk_s=1000.0)] * 5, agents=agents, epoch=LATER)


def test_seats_come_back_with_their_agents_states_and_reasons(make_core):
    run_first_core(make_core)
    core, card = restart(make_core)
    assert [(a.seat, a.agent_id, a.name, a.state, a.reason) for a in core.logic.acd.agents] == [
        (1, "1001", "王芳", "available", None),  # was talking: no call survives a restart
        (2, "1002", "李强", "busy", "training"),
        (3, None, "坐席3", "logged_out", None),  # agent 1003 is no longer configured
        (4, None, "坐席4", "logged_out", None),
        (5, "1005", "陈静", "available", None),  # the phone was off hook, not set busy
    ]
    seats = core.status()["seats"]
    assert [(s["seat"], s["state"], s["reason"], s["agent_id"]) for s in seats] == [
        (1, "available", None, "1001"), (2, "busy", "training", "1002"), (3, "logged_out", None, None),
        (4, "logged_out", None, None), (5, "available", None, "1005")]
    core.runtime.run_until(10.0)
    core.agent_state(2, "available")
    card.add_caller(CallerScript("13800138001", arrive_at=12.0))  # queued at 13: seat 1 is idle longest
    core.runtime.run_until(20.0)
    after = [s for s in states(core, LATER, since=LATER) if s[0] > 0]
    assert after == [
        (10.0, 2, "1002", "busy", 105.0, "available", None),  # busy (training) since 5 s into the first run
        (13.0, 1, "1001", "available", 13.0, "ringing", None),  # available since the restart
        (14.0, 1, "1001", "ringing", 1.0, "talking", None),
    ]
    core.settle()
    answered = [e["data"] for e in core.journal.events_of("call.answered", LATER)]
    assert [(a["seat"], a["agent_id"]) for a in answered] == [(1, "1001")]


def test_a_restart_journals_the_states_it_changes_and_durations_run_on_across_it(make_core):
    run_first_core(make_core)
    core, card = restart(make_core)
    core.runtime.run_until(10.0)
    core.agent_state(2, "available")
    core.runtime.run_until(12.0)
    assert states(core, LATER, since=LATER) == [
        (0.0, 1, "1001", "talking", 92.0, "available", None),
        (0.0, 3, "1003", "available", 99.0, "logged_out", None),
        (0.0, 5, "1005", "busy", 85.0, "available", None),
        (10.0, 2, "1002", "busy", 105.0, "available", None),
    ]
    assert_durations(core)  # over both runs: each seat's events chain up across the restart
