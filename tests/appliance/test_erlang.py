"""Erlang C and Erlang A against published values and independent formulas, and `simulate` against them."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from appliance.acd import STRATEGIES
from appliance.erlang import ErlangA, erlang_b, erlang_c, erlang_c_stats, erlang_c_wait_over
from appliance.simulate import SimParams, simulate

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
    calls = []
    simulate(SimParams(hours=20, calls_per_hour=96, aht=AHT, ring_delay=0.0, strategy=strategy, seed=1,
                       trunks=31), records=calls)
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
