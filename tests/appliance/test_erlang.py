"""Erlang C and Erlang A against published values and independent formulas, and `simulate` against both."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from appliance.acd import STRATEGIES
from appliance.cli import build_parser, sim_params
from appliance.erlang import ErlangA, erlang_b, erlang_c, erlang_c_stats, erlang_c_wait_over
from appliance.simulate import SimParams, Simulation, simulate

AHT = 180.0
LAM = 4.8 / AHT  # six agents at 80 % occupancy: 96 calls an hour


def erlang_c_direct(c, a):
    """The textbook sum, independent of the Erlang B recursion."""
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


def test_erlang_c_published_example():
    # 100 calls in 30 min, AHT 180 s (10 Erlang), 11 agents: P(wait) 68.21 %, ASA 122.8 s, 20 s service level 39.0 %
    s = erlang_c_stats(11, 100 / 1800, 180.0)
    assert s.p_wait == pytest.approx(0.6821, abs=5e-5)
    assert s.asa == pytest.approx(122.8, abs=0.05)
    assert 1 - erlang_c_wait_over(11, 100 / 1800, 180.0, 20.0) == pytest.approx(0.390, abs=5e-4)
    assert erlang_b(1, 1.0) == 0.5 and erlang_b(2, 1.0) == pytest.approx(0.2)


def test_six_agents_at_80_percent():
    c = erlang_c(6, 4.8)
    assert c == pytest.approx(erlang_c_direct(6, 4.8), rel=1e-12) == pytest.approx(0.517772, abs=1e-6)
    s = erlang_c_stats(6, LAM, AHT)
    assert s.mean_wait == pytest.approx(c * AHT / 1.2) == pytest.approx(77.666, abs=1e-3)
    assert erlang_c_wait_over(6, LAM, AHT, 20.0) == pytest.approx(c * math.exp(-1.2 * 20 / 180))
    for n, a in [(1, 0.5), (3, 2.9), (24, 20.0), (30, 12.3)]:
        assert erlang_c(n, a) == pytest.approx(erlang_c_direct(n, a), rel=1e-10)


def test_erlang_a_without_abandonment_is_erlang_c():
    e = ErlangA(6, LAM, AHT)
    s, ref = e.stats(), erlang_c_stats(6, LAM, AHT)
    assert (s.p_wait, s.mean_wait, s.asa, s.p_abandon, s.occupancy) == pytest.approx(
        (ref.p_wait, ref.mean_wait, ref.asa, 0.0, 0.8), rel=1e-9, abs=1e-12)
    for t in (0.0, 20.0, 60.0, 300.0):
        assert e.wait_over(t) == pytest.approx(erlang_c_wait_over(6, LAM, AHT, t), rel=1e-9)
        assert e.answered_within(t) == pytest.approx(1 - e.wait_over(t), rel=1e-9)


@pytest.mark.parametrize("c, lam, patience", [(6, LAM, 120.0), (6, 1.2 * 6 / AHT, 60.0), (2, 1 / 60, 30.0)])
def test_erlang_a_identities(c, lam, patience):
    e = ErlangA(c, lam, AHT, patience)
    s = e.stats()
    n = np.arange(len(e.pi))
    queue = float((np.maximum(n - c, 0) * e.pi).sum())
    assert s.mean_wait == pytest.approx(queue / lam, rel=1e-9)  # Little's law on the queue
    assert s.p_abandon == pytest.approx(queue / patience / lam, rel=1e-9)  # abandon rate theta E[Q]
    assert s.occupancy == pytest.approx(lam * (1 - s.p_abandon) * AHT / c, rel=1e-9)  # answered load
    ts = np.concatenate([np.linspace(0, 2 * patience, 401), np.linspace(2 * patience, 30 * patience, 141)[1:]])
    # mean wait = integral of P(W > t) (beyond: below e^-30)
    survival = np.array([e.wait_over(t) for t in ts])
    integral = float(((survival[1:] + survival[:-1]) / 2 * np.diff(ts)).sum())
    assert integral == pytest.approx(s.mean_wait, rel=2e-3)
    assert e.answered_within(1e5) == pytest.approx(1 - s.p_abandon, rel=1e-9)


def fcfs_reference(queued, talk, c=6):
    """Waits of an ideal first-come-first-served queue with c agents that never idle while a call waits."""
    free, out = [0.0] * c, np.empty(len(queued))
    for i in np.argsort(queued, kind="stable"):
        start = max(heapq.heappop(free), queued[i])
        out[i] = start - queued[i]
        heapq.heappush(free, start + talk[i])
    return out


def test_the_reference_queue_is_erlang_c():
    rng = np.random.default_rng(11)
    n = 1_000_000
    waits = fcfs_reference(np.cumsum(rng.exponential(1 / LAM, n)), rng.exponential(AHT, n))
    assert waits.mean() == pytest.approx(erlang_c_stats(6, LAM, AHT).mean_wait, rel=0.05)
    assert (waits > 20).mean() == pytest.approx(erlang_c_wait_over(6, LAM, AHT, 20.0), rel=0.05)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_serves_like_the_ideal_queue(strategy):
    """Agents are alike, so a strategy that never leaves an agent idle while a caller waits gives every call
    the wait of the ideal FCFS M/M/6 queue on the same arrivals and talk times (to the 20 ms tick)."""
    # through the command line's parser: `appliance simulate --strategy NAME` accepts every strategy
    args = build_parser().parse_args(["simulate", "--hours", "20", "--calls-per-hour", "96", "--aht", str(AHT),
                                      "--ring-delay", "0", "--strategy", strategy, "--seed", "1", "--trunks", "31"])
    params = sim_params(args)
    assert params == SimParams(hours=20, calls_per_hour=96, aht=AHT, ring_delay=0.0, strategy=strategy, seed=1,
                               trunks=31)
    calls = []
    simulate(params, records=calls)
    assert len(calls) > 1800 and all(c["disposition"] == "answered" for c in calls)
    waits = np.array([c["wait_s"] for c in calls])
    ref = fcfs_reference(np.array([c["queued_ts"] for c in calls]), np.array([c["talk_s"] for c in calls]))
    if strategy == "ring-all":  # the other phones stop ringing first: up to one ring cycle late, rarely
        assert np.mean(np.abs(waits - ref) > 0.05) < 0.05 and waits.mean() == pytest.approx(ref.mean(), rel=0.005)
    else:
        assert np.abs(waits - ref).max() < 0.05


def test_simulate_agrees_with_erlang_c():
    """Three seeds of 300 h (about 86,000 calls) pooled: mean wait and P(wait > 20 s) within 5 %."""
    runs = [simulate(SimParams(hours=300, calls_per_hour=96, aht=AHT, ring_delay=0.0, seed=seed, trunks=31))
            for seed in (1, 2, 3)]
    n = np.array([r["offered"] for r in runs])
    mean_wait = float((n * [r["mean_wait_s"] for r in runs]).sum() / n.sum())
    over_20 = float((n * [r["wait_over_20s"] for r in runs]).sum() / n.sum())
    assert mean_wait == pytest.approx(erlang_c_stats(6, LAM, AHT).mean_wait, rel=0.05)
    assert over_20 == pytest.approx(erlang_c_wait_over(6, LAM, AHT, 20.0), rel=0.05)
    assert sum(r["abandoned"] + r["blocked"] for r in runs) < 0.001 * n.sum()


# Erlang A (M/M/6+M) against the simulation: six agents offered 5.1 Erlang (85 %), mean patience 90 s.
A_LAM, A_PATIENCE = 5.1 / AHT, 90.0


def erlang_a_figures(calls: list[dict]) -> dict:
    """From journal records, the quantities ErlangA gives, with its definitions: every wait is measured from
    joining the queue to the answer or the abandon, and every share is of all offered calls."""
    waits = np.array([c["wait_s"] for c in calls], float)
    answered = np.array([c["disposition"] == "answered" for c in calls])
    return {
        "p_abandon": float(np.mean([c["disposition"] == "abandoned" for c in calls])),
        "mean_wait": float(waits.mean()),  # abandoned calls up to abandoning
        "asa": float(waits[answered].mean()),
        "wait_over_20": float(np.mean(waits > 20.0)),  # still in queue 20 s after joining, whatever came next
        "answered_within_20": float(np.mean(answered & (waits <= 20.0))),
    }


def test_patience_counts_from_joining_the_queue():
    """The sim's caller starts the patience clock when the menu digit is pressed; without media the digit is
    an event at that instant and queues the call, so every abandoned call waited exactly its drawn patience
    (to the event loop's 1 ms step) - the M/M/c+M model's abandonment, measured as Erlang A measures it."""
    p = SimParams(hours=10, calls_per_hour=A_LAM * 3600, aht=AHT, patience=A_PATIENCE, ring_delay=0.0, seed=5,
                  trunks=31)
    with Simulation(p) as sim:
        sim.drain()
        gone = sorted(c.script.patience_s for c in sim.card.callers if c.outcome == "abandoned")
        calls = sim.records()
    waits = sorted(c["wait_s"] for c in calls if c["disposition"] == "abandoned")
    assert len(waits) == len(gone) > 50
    assert np.abs(np.array(waits) - gone).max() < 0.002


def test_simulate_agrees_with_erlang_a():
    """Three seeds of 120 h (about 36,000 calls) pooled against ErlangA(6 agents, 5.1 Erlang, AHT 180 s,
    mean patience 90 s): abandon share, mean wait, ASA, P(wait > 20 s), share answered within 20 s, occupancy.

    The sim keeps the model's definitions: patience is exponential and counts from joining the queue (the
    test above); the handle time is the talk time, so agents answer at once (``ring_delay=0``, as in the
    Erlang C test: a ringing phone would be handle time the model lacks, and queue wait on top); no wrap-up;
    31 trunks, so nobody is blocked. Each tolerance is about three standard deviations of the pooled figure:
    over 24 seeds of 120 h the spread (standard deviation / mean) was 3.0 % for the abandon share, 4.2 % for
    the mean wait, 4.7 % for the ASA, 3.6 % for P(wait > 20 s), 1.0 % for the share answered within 20 s and
    0.9 % for the occupancy, the means within 0.4 % of the model; pooling three divides these by 1.7.
    """
    calls, occupancy, blocked = [], [], 0
    for seed in (1, 2, 3):
        records = []
        out = simulate(SimParams(hours=120, calls_per_hour=A_LAM * 3600, aht=AHT, patience=A_PATIENCE,
                                 ring_delay=0.0, seed=seed, trunks=31), records=records)
        calls += records
        occupancy.append((len(records), out["occupancy"]))
        blocked += out["blocked"]
    assert len(calls) > 35_000 and blocked == 0
    assert all(c["wait_s"] is not None for c in calls)  # every call queued (the menu digit is always pressed)
    got = erlang_a_figures(calls)
    model = ErlangA(6, A_LAM, AHT, A_PATIENCE)
    s = model.stats()
    assert (s.p_abandon, s.mean_wait, s.asa) == pytest.approx((0.1281, 11.530, 8.820), abs=5e-4)
    assert got["p_abandon"] == pytest.approx(s.p_abandon, rel=0.05)
    assert got["mean_wait"] == pytest.approx(s.mean_wait, rel=0.07)
    assert got["asa"] == pytest.approx(s.asa, rel=0.08)
    assert got["wait_over_20"] == pytest.approx(model.wait_over(20.0), rel=0.06)
    assert got["answered_within_20"] == pytest.approx(model.answered_within(20.0), rel=0.02)
    pooled_occupancy = sum(n * o for n, o in occupancy) / sum(n for n, _ in occupancy)
    assert pooled_occupancy == pytest.approx(s.occupancy, rel=0.015)
