"""Fax calling and answer tones (T.30 §4.1, V.25): CNG and CED generation from the shared tone plan.

The tones' specs live in ``dsp.toneplans`` (every plan carries ``cng``:
1100 Hz, 0.5 s on / 3 s off, and ``ced``: 2100 Hz), and ``dsp.progress``
already recognises both (outcome ``fax``), so this module only adds the
durations T.30 asks for and checks them. CED here is the plain 2100 Hz tone
of T.30, without V.25's phase reversals (those only disable echo cancellers
for V.8 modems, which we do not speak).
"""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.toneplans import get_plan
from dsp.tones import tone_signal

__all__ = ["CED_MIN_S", "CED_MAX_S", "cng", "ced"]

CED_MIN_S = 2.6
CED_MAX_S = 4.0


def cng(total_s: float = 3.5, level_dbm0: float | None = None, rate: int = 8000) -> np.ndarray:
    """The calling terminal's CNG: 1100 Hz on 0.5 s, off 3 s, repeated, starting with the tone.

    Parameters
    ----------
    total_s : float, seconds of signal (> 0); one cycle is 3.5 s
    level_dbm0 : float, dBm0; None for the plan's level (-12 dBm0)
    rate : int, samples per second

    Returns
    -------
    x : ndarray, shape (round(total_s * rate),), int16
    """
    if not (np.isfinite(total_s) and total_s > 0):
        raise DspError(f"cng: total_s must be > 0 seconds, got {total_s!r}")
    return tone_signal(get_plan("cn").tones["cng"], total_s, level_dbm0, rate)


def ced(duration_s: float = 3.0, level_dbm0: float | None = None, rate: int = 8000) -> np.ndarray:
    """The answering terminal's CED: 2100 Hz for ``duration_s``, which T.30 bounds to 2.6 .. 4 s.

    Parameters
    ----------
    duration_s : float, seconds, ``CED_MIN_S`` .. ``CED_MAX_S``
    level_dbm0 : float, dBm0; None for the plan's level (-12 dBm0)
    rate : int, samples per second

    Returns
    -------
    x : ndarray, shape (round(duration_s * rate),), int16
    """
    if not (np.isfinite(duration_s) and CED_MIN_S <= duration_s <= CED_MAX_S):
        raise DspError(f"ced: duration_s must be in {CED_MIN_S} .. {CED_MAX_S} s (T.30), got {duration_s!r}")
    return tone_signal(get_plan("cn").tones["ced"], duration_s, level_dbm0, rate)
