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
    patience: float = math.inf  # mean patience, seconds (exponential); inf: nobody abandons
    strategy: str = "longest-idle"
    seed: int = 0
    media: bool = False
    trunks: int = 30
    ring_delay: float = 2.0
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


def simulate(p: SimParams, data_root: str | None = None, records: list | None = None) -> dict:
    """Run the simulation and return its summary (see module docstring); ``records`` gets the call records."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="appliance-sim-") as tmp:
        data = DataDir.open(data_root or tmp, create=True)
        cfg = sim_config(p)
        rng = np.random.default_rng(p.seed)
        agent = AgentScript(ring_delay_s=p.ring_delay, talk_s=lambda r: r.exponential(p.aht))
        card = SimCard(p.trunks, p.seats, box_number=cfg["system"]["box_number"], agent=agent,
                       media=p.media, seed=int(rng.integers(2**31)))
        horizon = p.hours * 3600.0
        card.set_traffic(poisson_callers(p.calls_per_hour, until=horizon, patience_s=p.patience,
                                         seed=int(rng.integers(2**31))))
        # the prompts' content does not matter to the statistics, only their length: no TTS needed
        prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
        core = Core(data, cfg, VirtualClock(), card=card, prompts=prompts, media=p.media)
        core.logic.acd.rng = random.Random(p.seed)  # the random strategy: reproducible from the seed
        try:
            rt = core.runtime
            rt.run_until(horizon)
            limit = horizon + 4 * 3600.0  # drain: let the calls in progress end
            while (core.logic.calls or card.next_deadline() is not None) and rt.now < limit:
                rt.run_until(min(rt.next_time(), limit))
            core.settle()
            calls = core.journal.calls(limit=10**9)
            if records is not None:
                records.extend(calls)
            out = metrics(calls, core.logic.acd.agents, rt.now, p.short_abandon_s)
        finally:
            core.close()
    blocked = sum(1 for c in card.callers if c.outcome == "blocked")
    return {**out, "blocked": blocked, "wall_s": round(time.perf_counter() - started, 3)}
