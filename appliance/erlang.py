"""Queueing-theory references for the simulation: Erlang C (M/M/c) and Erlang A (M/M/c+M).

Rates are per second: ``lam`` calls arriving, ``aht`` mean handle (talk) time, ``patience`` mean
patience (exponential; ``inf`` for Erlang C). Waits are queue waits, first come first served.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of c servers offered ``a`` Erlang (the stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that a call waits, c agents offered ``a`` Erlang (a < c)."""
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


@dataclass(frozen=True)
class QueueStats:
    p_wait: float  # probability a call waits at all
    mean_wait: float  # mean queue wait of all calls (abandoned ones up to abandoning), seconds
    asa: float  # mean queue wait of answered calls, seconds
    p_abandon: float

    occupancy: float  # busy agents / agents


def erlang_c_stats(c: int, lam: float, aht: float) -> QueueStats:
    a = lam * aht
    if a >= c:
        raise ValueError(f"offered load {a:.3f} Erlang needs more than {c} agents")
    pw = erlang_c(c, a)
    w = pw * aht / (c - a)
    return QueueStats(pw, w, w, 0.0, a / c)


def erlang_c_wait_over(c: int, lam: float, aht: float, t: float) -> float:
    """P(queue wait > t) under Erlang C."""
    a = lam * aht
    return erlang_c(c, a) * math.exp(-(c - a) * t / aht)


class ErlangA:
    """M/M/c+M: Poisson arrivals, c agents with exponential handle times, exponential patience.

    Exact up to truncating the number in system at ``c + tail`` (the stationary tail beyond it is
    below 1e-15 for any stable case the appliance meets). ``patience=inf`` gives Erlang C by a route
    independent of the closed form.
    """

    def __init__(self, c: int, lam: float, aht: float, patience: float = math.inf, *, tail: int | None = None) -> None:
        self.c, self.lam, self.mu = c, lam, 1.0 / aht
        self.theta = 0.0 if math.isinf(patience) else 1.0 / patience
        if self.theta == 0.0 and lam * aht >= c:
            raise ValueError("without abandonment the load must be below the number of agents")
        if tail is None:
            tail = 200
            while True:  # the queue length where the stationary probabilities stop mattering
                ratio = lam / (c * self.mu + tail * self.theta)
                if ratio ** tail < 1e-16 or tail > 100_000:
                    break
                tail *= 2
        self.m = tail  # queue positions 1..m
        n = np.arange(c + tail + 1)
        death = np.minimum(n, c) * self.mu + np.maximum(n - c, 0) * self.theta
        logp = np.concatenate([[0.0], np.cumsum(np.log(lam) - np.log(death[1:]))])
        p = np.exp(logp - logp.max())
        p /= p.sum()
        if self.theta > 0:  # drop the positions no arrival practically sees (keeps the transients fast)
            last = int(np.nonzero(p > 1e-18)[0][-1])
            tail = max(1, min(tail, last - c + 1))
            p = p[:c + tail + 1] / p[:c + tail + 1].sum()
        self.m = tail
        self.pi = p  # stationary number in system = what an arrival sees (PASTA)
        # the tagged arrival's queue position j = n - c + 1 for n >= c; out-rate to j-1: c mu + (j-1) theta
        self.q0 = self.pi[c:c + tail]  # P(arrival finds n = c .. c+tail-1): position 1..tail
        self.rate = c * self.mu + np.arange(tail) * self.theta  # advance rate at positions 1..tail

    @property
    def p_wait(self) -> float:
        return float(self.q0.sum())

    def stats(self) -> QueueStats:
        th = self.theta
        # per position j: E[exp(-theta V)] telescopes to c mu / (c mu + j theta)
        cmu = self.c * self.mu
        j = np.arange(1, self.m + 1)
        served = cmu / (cmu + j * th)
        # E[V exp(-theta V)] = E[exp(-theta V)] * sum_k 1 / (rate_k + theta)
        inv = np.cumsum(1.0 / (self.rate + th))
        p_served_q = float((self.q0 * served).sum())
        p_abandon = self.p_wait - p_served_q
        wait_answered = float((self.q0 * served * inv).sum())
        if th > 0:
            mean_wait = p_abandon / th  # each waiting call abandons at rate theta
        else:
            mean_wait = float((self.q0 * inv).sum())
        p_answered = 1.0 - p_abandon
        busy = float((np.minimum(np.arange(len(self.pi)), self.c) * self.pi).sum())
        return QueueStats(self.p_wait, mean_wait, wait_answered / p_answered, p_abandon, busy / self.c)

    def _transient(self, t: float) -> tuple[float, float]:
        """(P(still waiting at t), P(answered by t after waiting)) by uniformization of the tagged call."""
        th = self.theta
        lam_u = self.rate[-1] + th
        v = self.q0.copy()  # mass at positions 1..m
        answered = 0.0
        left = t
        while left > 0:  # steps of at most 50 jumps on average keep exp(-L dt) representable
            dt = min(left, 50.0 / lam_u)
            left -= dt
            weight = math.exp(-lam_u * dt)
            acc_v, acc_a = weight * v, 0.0
            cur, cur_a = v, 0.0
            k = 0
            while True:
                k += 1
                # one jump of the uniformized chain
                nxt = cur * (1.0 - (self.rate + th) / lam_u)
                nxt[:-1] += cur[1:] * self.rate[1:] / lam_u
                cur_a = cur_a + cur[0] * self.rate[0] / lam_u
                cur = nxt
                weight *= lam_u * dt / k
                acc_v = acc_v + weight * cur
                acc_a += weight * cur_a
                if k > lam_u * dt and weight < 1e-18:
                    break
            v, answered = acc_v, answered + acc_a
        return float(v.sum()), answered

    def wait_over(self, t: float) -> float:
        """P(a call is still waiting in queue t seconds after joining it)."""
        return self._transient(t)[0] if t > 0 else self.p_wait

    def answered_within(self, t: float) -> float:
        """P(a call is answered within t seconds of joining the queue), of all calls."""
        return (1.0 - self.p_wait) + self._transient(t)[1]
