"""DTMF (ITU-T Q.23) keys as signals: the frequency plan and the generator."""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.tones import sine, to_int16

__all__ = ["DTMF_FREQS", "DTMF_KEYS", "dtmf_digit", "dtmf_generate"]

DTMF_FREQS = {"low": (697.0, 770.0, 852.0, 941.0), "high": (1209.0, 1336.0, 1477.0, 1633.0)}
DTMF_KEYS = "123A456B789C*0#D"  # row-major: key = DTMF_KEYS[4 * low_index + high_index]
_ROWCOL = {k: (i // 4, i % 4) for i, k in enumerate(DTMF_KEYS)}


def dtmf_digit(digit: str, level_dbm0: float = -10.0, duration_s: float = 0.1,
               rate: int = 8000, twist_db: float = 0.0) -> np.ndarray:
    """One DTMF key: low tone at ``level_dbm0``, high tone ``twist_db`` below it.

    ``twist_db`` is Q.24's twist: positive is *normal* twist (high group weaker,
    as a long line leaves it), negative *reverse* twist (high group stronger).

    Returns
    -------
    x : ndarray, shape (round(duration_s * rate),), int16
    """
    key = str(digit).upper()
    if len(key) != 1 or key not in _ROWCOL:
        raise DspError(f"DTMF digit must be one of 0-9 * # A-D, got {digit!r}")
    row, col = _ROWCOL[key]
    if not np.isfinite(duration_s) or duration_s < 0:
        raise DspError(f"duration_s must be >= 0 s, got {duration_s!r}")
    n = int(round(duration_s * rate))
    freqs = (DTMF_FREQS["low"][row], DTMF_FREQS["high"][col])
    return to_int16(sine(freqs, (level_dbm0, level_dbm0 - twist_db), n, rate))


def dtmf_generate(digits: str, level_dbm0: float = -10.0, on_s: float = 0.1, off_s: float = 0.1,
                  twist_db: float = 0.0, rate: int = 8000) -> np.ndarray:
    """A string of DTMF keys, each ``on_s`` of tone followed by ``off_s`` of silence.

    ``twist_db`` is the low group's level minus the high group's, dB (positive = normal twist).

    Returns
    -------
    x : ndarray, shape (len(digits) * (round(on_s * rate) + round(off_s * rate)),), int16
    """
    for i, ch in enumerate(digits):
        if ch.upper() not in _ROWCOL:
            raise DspError(f"DTMF string {digits!r} has {ch!r} at position {i}; allowed: 0-9 * # A-D")
    if not np.isfinite(off_s) or off_s < 0:
        raise DspError(f"off_s must be >= 0 s, got {off_s!r}")
    gap = np.zeros(int(round(off_s * rate)), np.int16)
    parts = []
    for ch in digits:
        parts += [dtmf_digit(ch, level_dbm0, on_s, rate, twist_db), gap]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)
