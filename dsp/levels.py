"""Signal levels in dBm0 on the 16-bit linear scale of ``dsp.g711``: conversions and measurements.

G.711 puts A-law's overload point at +3.14 dBm0: a sine whose peak reaches full
scale (32768 on the int16 scale) is +3.14 dBm0, so a 0 dBm0 sine has the peak
``DBM0_PEAK = 32768 * 10 ** (-3.14 / 20)`` (22,827.06) and an RMS of
``DBM0_PEAK / sqrt(2)``. Levels of any signal are its power relative to that of
the 0 dBm0 sine. Silence is reported as ``FLOOR_DBM0`` (-120.0), never ``-inf``.

``active_level_dbm0`` measures speech the way ITU-T P.56 (method B) does: the
level over the time the talker is active, so pauses do not pull it down.
"""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError

__all__ = ["DBM0_PEAK", "DBM0_RMS", "FLOOR_DBM0", "active_level_dbm0", "as_channels", "dbm0_to_amplitude",
           "rms_dbm0", "tone_level_dbm0"]

OVERLOAD_DBM0 = 3.14
DBM0_PEAK = 32768.0 * 10.0 ** (-OVERLOAD_DBM0 / 20.0)
DBM0_RMS = DBM0_PEAK / np.sqrt(2.0)
FLOOR_DBM0 = -120.0

# ITU-T P.56 method B constants
P56_TIME_CONSTANT_S = 0.03  # envelope smoothing
P56_HANGOVER_S = 0.2  # a threshold stays "active" this long after the envelope last reached it
P56_MARGIN_DB = 15.9  # active level sits this far above the threshold that separates speech from pauses
P56_THRESHOLDS = 2.0 ** np.arange(16)  # envelope thresholds on the int16 scale, 1 .. 32768


def dbm0_to_amplitude(level_dbm0: float) -> float:
    """Peak amplitude (int16 linear scale) of a sine at ``level_dbm0`` dBm0."""
    level = float(level_dbm0)
    if not np.isfinite(level):
        raise DspError(f"level_dbm0 must be a finite number of dBm0, got {level_dbm0!r}")
    return DBM0_PEAK * 10.0 ** (level / 20.0)


def as_channels(x, name: str, min_samples: int = 1) -> np.ndarray:
    """View ``x`` as float64 shape (n_channels, n_samples); a 1-D array is one channel.

    Raises DspError naming ``name`` for anything but an int/float array of 1 or 2
    dimensions with at least ``min_samples`` samples.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"{name}: expected an int or float ndarray, got {got}")
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2 or x.shape[1] < min_samples:
        raise DspError(f"{name}: expected shape (n_channels, n_samples) with n_samples >= {min_samples}, "
                       f"got {x.shape}")
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
    xf = as_channels(x, "rms_dbm0")
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
    xf = as_channels(x, "tone_level_dbm0")
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


def active_level_dbm0(x: np.ndarray, rate: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """Active speech level of each channel, ITU-T P.56 method B.

    The rectified signal is smoothed twice with a 30 ms time constant into an
    envelope; for each threshold ``2**j`` (j = 0..15, int16 scale) a sample counts
    as active while the envelope reached the threshold within the last 0.2 s.
    The mean power over each threshold's active samples, ``A_j`` (dB), falls
    towards the threshold ``C_j`` (dB) as thresholds rise; the active level is
    ``A`` where ``A - C`` = 15.9 dB, interpolated linearly between thresholds,
    as the ITU's ``sv56`` does (its bisection converges to the same point).
    Constant signals such as tones measure at their plain RMS level.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples) or (n_samples,), int16 or float, linear PCM
    rate : int, samples per second

    Returns
    -------
    level : ndarray, shape (n_channels,), float64, dBm0 over the active part;
        ``FLOOR_DBM0`` for a channel that is silent (no envelope sample reaches 1)
    activity : ndarray, shape (n_channels,), float64, the active fraction of the
        signal, 0..1 (P.56's activity factor: long-term power / active power)
    """
    # imported here: scipy.signal takes most of a second to import and the media tick never needs it
    from scipy.ndimage import maximum_filter1d
    from scipy.signal import lfilter

    xf = as_channels(x, "active_level_dbm0")
    if int(rate) < 1000:
        raise DspError(f"active_level_dbm0: rate must be >= 1000 samples per second, got {rate!r}")
    n_ch, n = xf.shape
    g = np.exp(-1.0 / (P56_TIME_CONSTANT_S * rate))
    env = lfilter([(1.0 - g) ** 2], [1.0, -2.0 * g, g * g], np.abs(xf), axis=-1)  # two one-pole stages
    hang = int(P56_HANGOVER_S * rate + 0.5)
    # active for threshold c at sample n <=> max(env[n - hang .. n]) >= c
    peak = maximum_filter1d(env, size=hang + 1, origin=hang // 2, axis=-1, mode="constant", cval=0.0)
    # count samples at or above each power-of-two threshold: floor(log2 peak) from frexp is exact
    _, e = np.frexp(peak)
    bucket = np.clip(e - 1, -1, P56_THRESHOLDS.size - 1) + 1  # 0: below 1; j + 1: in [2**j, 2**(j+1))
    hist = np.bincount((bucket + np.arange(n_ch)[:, None] * (P56_THRESHOLDS.size + 1)).ravel(),
                       minlength=n_ch * (P56_THRESHOLDS.size + 1)).reshape(n_ch, -1)
    counts = np.cumsum(hist[:, :0:-1], axis=1)[:, ::-1]  # counts[:, j]: samples with peak >= 2**j
    energy = np.einsum("ij,ij->i", xf, xf)
    level = np.full(n_ch, FLOOR_DBM0)
    activity = np.zeros(n_ch)
    c_db = 20.0 * np.log10(P56_THRESHOLDS)
    for ch in range(n_ch):  # a handful of channels; the per-sample work above is vectorised
        a = counts[ch]
        used = np.flatnonzero(a > 0)
        if used.size == 0 or energy[ch] == 0.0:
            continue
        a_db = 10.0 * np.log10(energy[ch] / a[used])
        delta = a_db - c_db[used]
        below = np.flatnonzero(delta <= P56_MARGIN_DB)
        if below.size == 0:  # every threshold reached still leaves more than the margin: take the highest
            a_level = a_db[-1]
        elif below[0] == 0:
            a_level = a_db[0]
        else:
            j = below[0]
            f = (delta[j - 1] - P56_MARGIN_DB) / (delta[j - 1] - delta[j])
            a_level = a_db[j - 1] + f * (a_db[j] - a_db[j - 1])
        level[ch] = a_level - 20.0 * np.log10(DBM0_RMS)
        activity[ch] = min(1.0, energy[ch] / n / 10.0 ** (a_level / 10.0))
    return level, activity
