"""Soak: 100,000 simulated calls through the real core without a stuck channel, a stuck agent or growing memory.

Four hundred hours of a busy six-seat centre (250 calls an hour, AHT 60 s, mean patience 60 s, so about one
caller in eleven abandons) in virtual time without media, in chunks of 8 hours (2,000 calls). After every
chunk the live state of the core, the card and the runtime must agree with each other, every agent must have
worked, and Python's allocated memory blocks must stay where they were once the bounded caches had filled;
at the end every call the core was offered has its journal record. The journal itself grows with the calls
by design (SQLite on disk); what is measured is the process's memory.
"""

from __future__ import annotations

import gc
import os
import sys
import time

from appliance.simulate import SimParams, Simulation

CHUNK_S = 8 * 3600.0
CHUNKS = 50  # 400 h: about 100,000 calls
WARM_UP = 3  # chunks before the baseline: the caller-number cache (4,096) and the event ring (4,096) fill up
BLOCKS_BOUND = 10_000  # allocated blocks above the baseline; one leaked block a call would be 90,000
RSS_BOUND_KB = 32 * 1024  # the process as the OS sees it (numpy buffers, SQLite's page cache, the heap)
PARAMS = SimParams(hours=CHUNK_S * CHUNKS / 3600, calls_per_hour=250, seats=6, aht=60.0, patience=60.0, seed=7)
LONGEST_TALK_S = 1200.0  # exponential talk, mean 60 s: exceeded once in e^20 calls
LIVE_STATES = ("ringing", "talking")


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def python_blocks(sim: Simulation) -> int:
    """Python's allocated memory blocks with nothing pending: the card's record of callers gone dropped, the
    journal's queue committed (twice, so its writer thread lets go of the batch it last wrote), garbage
    collected."""
    sim.forget_ended_callers()
    sim.core.journal.flush()
    sim.core.journal.flush()
    gc.collect()
    return sys.getallocatedblocks()


def check_consistent(sim: Simulation) -> None:
    """Every live call is a live caller on the card and the other way round; every agent's state matches a
    live call and the phone; nothing has been ringing or talking longer than it can."""
    core, card, now = sim.core, sim.card, sim.now
    logic, acd = core.logic, core.logic.acd
    max_wait = core.cfg["queue"]["max_wait_s"]
    ring_timeout = core.cfg["queue"]["ring_timeout_s"]
    live = {call.call_id: call for call in logic.calls.values()}
    assert set(logic.calls) == set(card.trunk_caller), "the core's calls and the card's busy trunks differ"
    assert not card.trunk_out, "an outbound channel is held"
    for port, call in logic.calls.items():
        caller = card.trunk_caller[port]
        assert caller.ended_at is None and caller.outcome in ("ivr", "waiting", "talking"), (port, caller.outcome)
        assert now - call.start < max_wait + ring_timeout + LONGEST_TALK_S + 60, f"{call.call_id} is stuck"
        if call.agent_answer is None:
            assert caller.connected_at is None, f"{call.call_id}: the caller talks to someone the core has not"
    talking = 0
    for agent in acd.agents:
        phone = card.phones[agent.port]
        if agent.state in LIVE_STATES:
            assert agent.call_id in live, f"seat {agent.seat} is {agent.state} without a live call"
            call = live[agent.call_id]
            if agent.state == "ringing":
                assert phone.hook == "ringing" and agent in call.ringing, f"seat {agent.seat}: not really ringing"
                assert now - agent.since <= ring_timeout, f"seat {agent.seat} rings past the ring timeout"
            else:
                talking += 1
                assert phone.hook == "off" and call.agent is agent, f"seat {agent.seat}: not really talking"
                assert phone.peer == call.port, f"seat {agent.seat} talks to another port"
                assert now - agent.since < LONGEST_TALK_S, f"seat {agent.seat} has talked too long"
        else:
            assert agent.state == "available", f"seat {agent.seat} is {agent.state}"  # nobody logs out here
            assert agent.call_id is None and phone.hook == "on", f"seat {agent.seat} is available but busy"
    if acd.waiting():
        assert all(a.state != "available" for a in acd.agents), "a caller waits while an agent is available"
    bridged = int((core.runtime.switch.m != 0).sum()) // 2
    assert bridged == talking, f"{bridged} bridges in the switch for {talking} calls in talk"


def test_100000_calls_leave_nothing_behind():
    started = time.perf_counter()
    figures = []
    with Simulation(PARAMS) as sim:
        agents = sim.core.logic.acd.agents
        worked = [a.time_in_state("talking", 0.0) for a in agents]
        base_blocks = base_rss = None
        for k in range(1, CHUNKS + 1):
            sim.run_until(k * CHUNK_S)
            check_consistent(sim)
            now_worked = [a.time_in_state("talking", sim.now) for a in agents]
            assert all(b > a for a, b in zip(worked, now_worked)), f"chunk {k}: an agent took no call"
            worked = now_worked
            blocks, rss = python_blocks(sim), rss_kb()
            figures.append((k, sim.core.logic.counts["offered"], blocks, rss, round(time.perf_counter() - started, 1)))
            if k == WARM_UP:
                base_blocks, base_rss = blocks, rss
            elif k > WARM_UP:
                assert blocks - base_blocks < BLOCKS_BOUND, f"chunk {k}: Python memory grew: {figures}"
                assert rss - base_rss < RSS_BOUND_KB, f"chunk {k}: the process grew: {figures}"
            assert len(sim.card.callers) == len(sim.card.trunk_caller), "a caller neither gone nor on a trunk"
        sim.drain()
        outcomes = sim.caller_outcomes()
        counts = sim.core.logic.counts
        journal = sim.core.journal.counts(0.0, float("inf"))
        # the day is over: nothing left anywhere
        assert not sim.core.logic.calls and not sim.card.trunk_caller and sim.core.logic.acd.waiting() == 0
        assert all(a.state == "available" and a.call_id is None for a in agents)
        assert all(ph.hook == "on" for ph in sim.card.phones.values())
        assert not (sim.core.runtime.switch.m != 0).any()
    print(f"\nsoak: {counts['offered']} calls in {time.perf_counter() - started:.1f} s; "
          f"(chunk, offered, Python blocks, RSS kB, s): {figures}")
    assert counts["offered"] > 99_000 and outcomes["blocked"] == 0
    assert sum(outcomes.values()) == counts["offered"]
    assert journal == {k: counts[k] for k in journal}  # every offered call has its record, same disposition
    assert journal["answered"] == outcomes["completed"] and journal["abandoned"] == outcomes["abandoned"]
    assert journal["offered"] == journal["answered"] + journal["abandoned"]
