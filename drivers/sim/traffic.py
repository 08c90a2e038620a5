"""Traffic for the simulated card: Poisson arrivals of callers with exponential patience."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from .parties import CallerScript

MOBILE_PREFIXES = ("138", "139", "135", "136", "137", "150", "151", "186", "189", "133", "177", "199")


def random_number(rng: np.random.Generator) -> str:
    """A plausible Chinese mobile number (11 digits)."""
    prefix = MOBILE_PREFIXES[int(rng.integers(len(MOBILE_PREFIXES)))]
    return prefix + "".join(str(d) for d in rng.integers(0, 10, 8))


def poisson_callers(
    calls_per_hour: float,
    *,
    start: float = 0.0,
    until: float = math.inf,
    patience_s: float = math.inf,
    digit_delay_s: float = 1.0,
    seed: int = 0,
    **script: object,
) -> Iterator[CallerScript]:
    """Callers arriving as a Poisson process of ``calls_per_hour`` between ``start`` and ``until``.

    Each caller presses 1 ``digit_delay_s`` after the box answers and, when
    ``patience_s`` is finite, abandons after an exponentially distributed wait with
    that mean (the M/M/c+M model behind Erlang A). Other ``CallerScript`` fields
    (``speech``, ``tone_dbm0``, ...) are passed through to every caller.
    """
    if calls_per_hour <= 0:
        return
    rng = np.random.default_rng(seed)
    mean_gap = 3600.0 / calls_per_hour
    t = start + float(rng.exponential(mean_gap))
    while t < until:
        patience = float(rng.exponential(patience_s)) if math.isfinite(patience_s) else math.inf
        yield CallerScript(number=random_number(rng), arrive_at=t, digit_delay_s=digit_delay_s, patience_s=patience,
                           **script)
        t += float(rng.exponential(mean_gap))
