"""`appliance simulate`: the real core on the simulated card in virtual time, summarised as queue metrics.

Metrics follow the usual call-centre definitions (REFERENCE.md): ASA is the mean
queue wait of answered calls; the service level is the share of offered calls
answered within 20 s, leaving out short abandons (callers gone within
``short_abandon_s`` of joining the queue); occupancy is handle time over handle
plus idle time of the seats.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from drivers.sim import AgentScript, SimCard, poisson_callers

from .clock import VirtualClock
from .config import validate
from .core import Core, render_prompts
from .datadir import DataDir
from .prompts import PromptLibrary

SERVICE_LEVEL_S = 20.0


@dataclass
class SimParams:
    hours: float
    calls_per_hour: float
    seats: int = 6
    aht: float = 180.0  # mean talk time, seconds (exponential)
    patience: float = math.inf  # mean patience, seconds (exponential), from joining the queue; inf: nobody abandons
    strategy: str = "longest-idle"
    seed: int = 0
    media: bool = False
    trunks: int = 30
    ring_delay: float = 2.0  # an agent lets the phone ring this long: handle time and queue wait (Erlang: 0)
    short_abandon_s: float = 5.0


def sim_config(p: SimParams) -> dict:
    """The default config resized for ``p``; validation fills in every other key and the seats."""
    return validate({"card": {"trunk_channels": p.trunks, "seats": p.seats},
                     "queue": {"strategy": p.strategy, "max_wait_s": 3600}})


def metrics(calls: list[dict], agents, end: float, short_abandon_s: float) -> dict:
    """Queue metrics from journal call records and the agents' time accounting."""
    answered = [c for c in calls if c["disposition"] == "answered"]
    abandoned = [c for c in calls if c["disposition"] == "abandoned"]
    short = [c for c in abandoned if c["wait_s"] is not None and c["wait_s"] < short_abandon_s]
    within = [c for c in answered if c["wait_s"] <= SERVICE_LEVEL_S]
    queued = [c["wait_s"] for c in calls if c["wait_s"] is not None]
    denominator = len(calls) - len(short)
    handle = sum(a.time_in_state(s, end) for a in agents for s in ("ringing", "talking", "busy"))
    idle = sum(a.time_in_state("available", end) for a in agents)
    return {
        "offered": len(calls),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "asa_s": round(float(np.mean([c["wait_s"] for c in answered])), 3) if answered else 0.0,
        "service_level_20s": round(len(within) / denominator, 4) if denominator else 1.0,
        "mean_wait_s": round(float(np.mean(queued)), 3) if queued else 0.0,  # all queued calls, abandons too
        "wait_over_20s": round(float(np.mean(np.array(queued) > SERVICE_LEVEL_S)), 4) if queued else 0.0,
        "occupancy": round(handle / (handle + idle), 4) if handle + idle else 0.0,
    }


class Simulation:
    """One run of the core on the simulated card in virtual time, step by step.

    ``run_until(t)`` advances virtual time, ``drain()`` lets the calls in progress end and
    ``summary()`` gives the metrics; between steps ``core`` and ``card`` are there to inspect
    (the soak test checks them every few thousand calls). Use as a context manager, or ``close()``.

    The simulated card keeps every caller's state for tests to look at; ``forget_ended_callers()``
    counts the outcomes of the callers who have gone and drops them (and the phones' old ring
    bursts), so that a long run holds only what is live.
    """

    def __init__(self, p: SimParams, data_root: str | None = None) -> None:
        self.p = p
        self._tmp = tempfile.TemporaryDirectory(prefix="appliance-sim-") if data_root is None else None
        data = DataDir.open(data_root or self._tmp.name, create=True)
        cfg = sim_config(p)
        rng = np.random.default_rng(p.seed)
        agent = AgentScript(ring_delay_s=p.ring_delay, talk_s=lambda r: r.exponential(p.aht))
        self.card = SimCard(p.trunks, p.seats, box_number=cfg["system"]["box_number"], agent=agent,
                            media=p.media, seed=int(rng.integers(2**31)))
        self.horizon = p.hours * 3600.0
        self.card.set_traffic(poisson_callers(p.calls_per_hour, until=self.horizon, patience_s=p.patience,
                                              seed=int(rng.integers(2**31))))
        # the prompts' content does not matter to the statistics, only their length: no TTS needed
        prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
        self.core = Core(data, cfg, VirtualClock(), card=self.card, prompts=prompts, media=p.media)
        self.core.logic.acd.rng = random.Random(p.seed)  # the random strategy: reproducible from the seed
        self.outcomes: Counter[str] = Counter()  # callers forgotten so far, by outcome
        self._closed = False

    @property
    def now(self) -> float:
        return self.core.runtime.now

    def run_until(self, t: float) -> None:
        """Run to virtual time ``t`` (seconds since the start)."""
        self.core.runtime.run_until(t)

    def drain(self, limit_s: float = 4 * 3600.0) -> None:
        """Run past the horizon until no call is left and the card has nothing scheduled (at most ``limit_s``)."""
        rt, card = self.core.runtime, self.card
        self.run_until(max(self.now, self.horizon))
        limit = self.horizon + limit_s
        while (self.core.logic.calls or card.next_deadline() is not None) and rt.now < limit:
            rt.run_until(min(rt.next_time(), limit))
        self.core.settle()

    def forget_ended_callers(self) -> None:
        """Count the outcomes of the callers who have gone and drop them from the card's lists."""
        card = self.card
        live = []
        for c in card.callers:
            if c.ended_at is None:
                live.append(c)
            else:
                self.outcomes[c.outcome] += 1
        card.callers[:] = live
        for ph in card.phones.values():
            del ph.ring_log[:-1]  # the last burst may still be open (the card closes it in place)

    def caller_outcomes(self) -> Counter[str]:
        """Every caller so far by outcome (``blocked``: all channels were busy)."""
        return self.outcomes + Counter(c.outcome for c in self.card.callers)

    def records(self) -> list[dict]:
        """The journal's call records (committed by ``drain``), newest first."""
        return self.core.journal.calls(limit=10**9)

    def summary(self, calls: list[dict] | None = None) -> dict:
        """The metrics (module docstring) over ``calls``, by default every record, plus the blocked callers."""
        calls = self.records() if calls is None else calls
        out = metrics(calls, self.core.logic.acd.agents, self.now, self.p.short_abandon_s)
        return {**out, "blocked": self.caller_outcomes()["blocked"]}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.core.close()
            finally:
                if self._tmp is not None:
                    self._tmp.cleanup()

    def __enter__(self) -> "Simulation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def simulate(p: SimParams, data_root: str | None = None, records: list | None = None) -> dict:
    """Run the simulation and return its summary (see module docstring); ``records`` gets the call records."""
    started = time.perf_counter()
    with Simulation(p, data_root) as sim:
        sim.drain()
        calls = sim.records()
        if records is not None:
            records.extend(calls)
        out = sim.summary(calls)
    return {**out, "wall_s": round(time.perf_counter() - started, 3)}
