"""Signal levels in dBm0 on the 16-bit linear scale of ``dsp.g711``: conversions and measurements.

G.711 puts A-law's overload point at +3.14 dBm0: a sine whose peak reaches full
scale (32768 on the int16 scale) is +3.14 dBm0, so a 0 dBm0 sine has the peak
``DBM0_PEAK = 32768 * 10 ** (-3.14 / 20)`` (22,827.06) and an RMS of
``DBM0_PEAK / sqrt(2)``. Levels of any signal are its power relative to that of
the 0 dBm0 sine. Silence is reported as ``FLOOR_DBM0`` (-120.0), never ``-inf``.
"""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError

__all__ = ["DBM0_PEAK", "DBM0_RMS", "FLOOR_DBM0", "dbm0_to_amplitude", "rms_dbm0", "tone_level_dbm0"]

OVERLOAD_DBM0 = 3.14
DBM0_PEAK = 32768.0 * 10.0 ** (-OVERLOAD_DBM0 / 20.0)
DBM0_RMS = DBM0_PEAK / np.sqrt(2.0)
FLOOR_DBM0 = -120.0


def dbm0_to_amplitude(level_dbm0: float) -> float:
    """Peak amplitude (int16 linear scale) of a sine at ``level_dbm0`` dBm0."""
    level = float(level_dbm0)
    if not np.isfinite(level):
        raise DspError(f"level_dbm0 must be a finite number of dBm0, got {level_dbm0!r}")
    return DBM0_PEAK * 10.0 ** (level / 20.0)


def _as_channels(x, name: str) -> np.ndarray:
    """View ``x`` as float64 shape (n_channels, n_samples); a 1-D array is one channel."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"{name}: expected an int or float ndarray, got {got}")
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2 or x.shape[1] == 0:
        raise DspError(f"{name}: expected shape (n_channels, n_samples) with n_samples >= 1, got {x.shape}")
    return x.astype(np.float64, copy=False)


def _power_to_dbm0(power: np.ndarray) -> np.ndarray:
    """Mean power (int16 units squared) -> dBm0, floored at ``FLOOR_DBM0``."""
    floor = DBM0_RMS**2 * 10.0 ** (FLOOR_DBM0 / 10.0)
    return 10.0 * np.log10(np.maximum(power, floor) / DBM0_RMS**2)


def rms_dbm0(x: np.ndarray) -> np.ndarray:
    """Level of each channel's whole signal.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples) or (n_samples,), int16 or float, linear PCM

    Returns
    -------
    level : ndarray, shape (n_channels,), float64, dBm0; ``FLOOR_DBM0`` (-120.0) for silence
    """
    xf = _as_channels(x, "rms_dbm0")
    return _power_to_dbm0(np.einsum("ij,ij->i", xf, xf) / xf.shape[1])


def tone_level_dbm0(x: np.ndarray, freq: float, rate: int = 8000) -> np.ndarray:
    """Level of the sine component at ``freq`` in each channel, other signals notwithstanding.

    A Hann-weighted least-squares fit of ``a cos + b sin`` at ``freq`` over the
    whole block: exact for a pure tone at ``freq`` whatever the block length,
    and other components leak in only through the window's side lobes (a
    component 100 Hz away over 1 s is below -80 dB).

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples) or (n_samples,), int16 or float, linear PCM
    freq : float, Hz, 0 < freq < rate / 2
    rate : int, samples per second

    Returns
    -------
    level : ndarray, shape (n_channels,), float64, dBm0 of that component; ``FLOOR_DBM0`` if absent
    """
    xf = _as_channels(x, "tone_level_dbm0")
    if not 0.0 < float(freq) < rate / 2.0:
        raise DspError(f"tone_level_dbm0: freq must be in (0, {rate / 2.0}) Hz, got {freq!r}")
    n = xf.shape[1]
    if n < 8:
        raise DspError(f"tone_level_dbm0: need at least 8 samples, got {n}")
    t = np.arange(n) * (2.0 * np.pi * float(freq) / rate)
    w = np.hanning(n + 2)[1:-1]  # no zero end points, so short blocks keep every sample
    c, s = w * np.cos(t), w * np.sin(t)
    gram = np.array([[c @ np.cos(t), c @ np.sin(t)], [s @ np.cos(t), s @ np.sin(t)]])
    proj = np.stack([xf @ c, xf @ s])  # shape (2, n_channels)
    ab = np.linalg.solve(gram, proj)
    amp2 = ab[0] ** 2 + ab[1] ** 2  # peak amplitude squared; mean power is half of it
    return _power_to_dbm0(amp2 / 2.0)
