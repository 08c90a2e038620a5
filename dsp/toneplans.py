"""Call-progress tone plans as data: ToneSpec, the China (default) and North American plans, SIT and fax tones.

A plan maps tone names to ``ToneSpec`` values and gives the frequency tolerance
its detector must accept. Every plan also holds the special information tone
(``sit``) and the fax calling and answer tones (``cng``, ``ced``), so an
outbound call can recognise an intercept or a fax machine whatever the country.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from appliance.errors import DspError

__all__ = ["ToneSpec", "TonePlan", "CHINA_TONES", "US_TONES", "PLANS", "get_plan"]


@dataclass(frozen=True)
class ToneSpec:
    """A call-progress tone: frequencies (Hz), cadence as (on, off) seconds repeated, level (dBm0).

    An empty ``on_off`` means continuous. ``on_freqs``, when given, holds the
    frequencies of each on period, one tuple per (on, off) pair (the special
    information tone steps 950, 1400, 1800 Hz); ``freqs`` then lists them all.
    """

    freqs: tuple[float, ...]
    on_off: tuple[tuple[float, float], ...] = ()
    level_dbm0: float = -10.0
    on_freqs: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self):
        if self.on_freqs and len(self.on_freqs) != len(self.on_off):
            raise DspError(f"on_freqs must give one frequency tuple per (on, off) pair ({len(self.on_off)}), "
                           f"got {len(self.on_freqs)}: {self.on_freqs!r}")
        for pair in self.on_off:
            if len(pair) != 2 or min(pair) < 0 or pair[0] <= 0:
                raise DspError(f"on_off must be (on > 0, off >= 0) pairs of seconds, got {pair!r}")

    def segments(self) -> tuple[tuple[tuple[float, ...], float], ...]:
        """One cadence cycle as (freqs, seconds) segments; off periods have ``()`` freqs.

        Zero-length off periods are dropped (SIT steps straight from one frequency
        to the next); a continuous tone is one segment of ``inf`` seconds.
        """
        if not self.on_off:
            return ((tuple(self.freqs), math.inf),)
        out = []
        for i, (on, off) in enumerate(self.on_off):
            out.append((tuple(self.on_freqs[i]) if self.on_freqs else tuple(self.freqs), float(on)))
            if off > 0:
                out.append(((), float(off)))
        return tuple(out)


@dataclass(frozen=True)
class TonePlan:
    """A country's call-progress tones.

    Attributes
    ----------
    name : str, the key in ``PLANS``
    tones : dict of str to ToneSpec, in the order a detector prefers them when two match
    freq_tol_hz : float, Hz, how far from nominal a tone may be and still be recognised
    """

    name: str
    tones: dict[str, ToneSpec] = field(hash=False)
    freq_tol_hz: float


# China tone plan (YD/T; see REFERENCE.md), 450 Hz +-25 Hz at -10 dBm0. These are
# the tones the runtime plays, so this dict keeps only the 450 Hz family.
CHINA_TONES: dict[str, ToneSpec] = {
    "dial": ToneSpec((450.0,)),
    "ringback": ToneSpec((450.0,), ((1.0, 4.0),)),
    "busy": ToneSpec((450.0,), ((0.35, 0.35),)),
    "congestion": ToneSpec((450.0,), ((0.7, 0.7),)),
    "vacant": ToneSpec((450.0,), ((0.1, 0.1),) * 3 + ((0.4, 0.4),)),
    "call_waiting": ToneSpec((450.0,), ((0.4, 4.0),)),
}

# Tones every plan carries. SIT (ITU-T Q.35/E.180): three steps of 330 ms, then
# 1 s of silence before it repeats. Fax (T.30): the caller's CNG is 1100 Hz
# 0.5 s on / 3 s off; the answerer's CED (V.25 ANS) is 2100 Hz for 2.6-4 s.
_SHARED: dict[str, ToneSpec] = {
    "sit": ToneSpec((950.0, 1400.0, 1800.0), ((0.33, 0.0), (0.33, 0.0), (0.33, 1.0)), -24.0,
                    ((950.0,), (1400.0,), (1800.0,))),
    "cng": ToneSpec((1100.0,), ((0.5, 3.0),), -12.0),
    "ced": ToneSpec((2100.0,), (), -12.0),
}

# North America (precise tone plan, as ITU-T E.180 lists it). "congestion" is
# what the plan calls reorder, so a dialer reads the same names in every plan.
US_TONES: dict[str, ToneSpec] = {
    "dial": ToneSpec((350.0, 440.0), (), -13.0),
    "ringback": ToneSpec((440.0, 480.0), ((2.0, 4.0),), -19.0),
    "busy": ToneSpec((480.0, 620.0), ((0.5, 0.5),), -24.0),
    "congestion": ToneSpec((480.0, 620.0), ((0.25, 0.25),), -24.0),
}

PLANS: dict[str, TonePlan] = {
    "cn": TonePlan("cn", {**CHINA_TONES, **_SHARED}, 25.0),
    # the precise plan holds +-0.5%; 10 Hz leaves room for older exchanges and
    # still lets a 20 ms window part 440 Hz from 480 Hz
    "us": TonePlan("us", {**US_TONES, **_SHARED}, 10.0),
}


def get_plan(plan: str | TonePlan) -> TonePlan:
    """The plan named ``plan`` (a key of ``PLANS``), or ``plan`` itself if it is already a TonePlan."""
    if isinstance(plan, TonePlan):
        return plan
    try:
        return PLANS[plan]
    except (KeyError, TypeError):
        raise DspError(f"tone plan must be one of {', '.join(sorted(PLANS))}, got {plan!r}") from None
