"""Prompt preparation: any decoded audio to 8 kHz A-law at a set speech level, trimmed, with clipping counted.

Pure arrays in and out; reading files is ``dsp.wavio``'s job and storing them the
prompt library's. The level is the ITU-T P.56 active level of the mix
(``dsp.levels.active_level_dbm0``), so pauses and leading silence do not make a
prompt louder; the edges are trimmed with ``dsp.energy.trim_silence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from appliance.errors import DspError
from dsp.energy import trim_silence
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import active_level_dbm0

__all__ = ["PromptReport", "prepare_prompt", "resample_to", "RATE", "DEFAULT_LEVEL_DBM0", "MIN_INPUT_DBM0"]

RATE = 8000
DEFAULT_LEVEL_DBM0 = -16.0
MIN_INPUT_DBM0 = -70.0  # quieter than this is silence or hiss: a gain of 50+ dB would only amplify noise
LEVEL_RANGE_DBM0 = (-60.0, 0.0)
CLIP = 32767.0  # A-law's overload point on the int16 scale (its top code covers 31744..32767)


@dataclass(frozen=True)
class PromptReport:
    """What ``prepare_prompt`` did to one prompt.

    Attributes
    ----------
    in_rate : int, samples per second of the input
    in_channels : int, channels mixed into the prompt
    duration_s : float, seconds of the output
    input_level_dbm0 : float, active level of the mix before the gain, dBm0
    gain_db : float, gain applied, dB
    level_dbm0 : float, active level of the output as A-law decodes it, dBm0
    activity : float, active fraction of the output (P.56), 0..1
    clipped : int, output samples clipped at A-law's overload point (|x| > 32767 after the gain)
    """

    in_rate: int
    in_channels: int
    duration_s: float
    input_level_dbm0: float
    gain_db: float
    level_dbm0: float
    activity: float
    clipped: int

    @property
    def clipped_fraction(self) -> float:
        """Share of output samples that were clipped, 0..1."""
        n = round(self.duration_s * RATE)
        return self.clipped / n if n else 0.0


def resample_to(x: np.ndarray, rate: int, new_rate: int = RATE) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly`` with the reduced ratio, e.g. 80/441 from 44.1 kHz).

    Parameters
    ----------
    x : ndarray, shape (n_channels, n) or (n,), float64
    rate, new_rate : int, samples per second

    Returns
    -------
    y : ndarray, shape (n_channels, m) or (m,), float64, ``m = ceil(n * new_rate / rate)``
    """
    if rate == new_rate:
        return x
    g = math.gcd(int(new_rate), int(rate))
    return resample_poly(x, int(new_rate) // g, int(rate) // g, axis=-1)


def prepare_prompt(samples: np.ndarray, rate: int, level_dbm0: float = DEFAULT_LEVEL_DBM0, *,
                   margin_s: float | None = 0.1) -> tuple[np.ndarray, PromptReport]:
    """Turn decoded audio into a prompt: mono, 8 kHz, at ``level_dbm0`` of active speech, A-law coded.

    Channels are averaged, the mix resampled to 8 kHz, its P.56 active level
    measured and a gain applied to bring it to ``level_dbm0``. The gain is never
    reduced to avoid clipping: prompts must sound equally loud, so samples the
    gain pushes beyond A-law's overload point are clipped there and counted in
    ``report.clipped``; the caller decides whether that many is acceptable (the
    prompt library logs a warning). With ``margin_s`` the silence at each end
    is cut (or zero-padded) to exactly ``margin_s`` around the first and last
    signal found by ``dsp.energy.trim_silence`` on the levelled mix.

    Parameters
    ----------
    samples : ndarray, shape (n_channels, n) or (n,), int or float, linear PCM on the int16 scale
        (as ``dsp.wavio.read_wav`` returns it)
    rate : int, samples per second of ``samples``, 1000..384000
    level_dbm0 : float, dBm0, active speech level of the result, -60..0
    margin_s : float or None, seconds of silence kept at each end; None keeps the whole signal

    Returns
    -------
    codes : ndarray, shape (m,), uint8, A-law codes at 8 kHz
    report : PromptReport

    Raises
    ------
    DspError
        For a bad array, rate or level, or audio with no sound above ``MIN_INPUT_DBM0``.
    """
    x = _check(samples, rate, level_dbm0, margin_s)
    mono = resample_to(x.mean(axis=0), int(rate))
    lv, _ = active_level_dbm0(mono, RATE)
    if lv[0] < MIN_INPUT_DBM0:
        raise DspError(f"prepare_prompt: the audio is silent: active level {lv[0]:.1f} dBm0 "
                       f"is below {MIN_INPUT_DBM0:.0f} dBm0")
    gain_db = float(level_dbm0) - float(lv[0])
    y = mono * 10.0 ** (gain_db / 20.0)
    if margin_s is not None:
        y = _trim(y, margin_s)
    y = np.rint(y)
    clipped = int(np.count_nonzero(np.abs(y) > CLIP))  # -32768 codes like -32767: count the symmetric range
    codes = alaw_encode(np.clip(y, -CLIP, CLIP).astype(np.int16))
    out_lv, out_act = active_level_dbm0(alaw_decode(codes), RATE)
    report = PromptReport(int(rate), x.shape[0], codes.size / RATE, float(lv[0]), gain_db, float(out_lv[0]),
                          float(out_act[0]), clipped)
    return codes, report


def _check(samples, rate, level_dbm0, margin_s) -> np.ndarray:
    if not isinstance(samples, np.ndarray) or samples.dtype.kind not in "iuf":
        got = samples.dtype if isinstance(samples, np.ndarray) else type(samples).__name__
        raise DspError(f"prepare_prompt: expected an int or float ndarray, got {got}")
    x = samples[np.newaxis, :] if samples.ndim == 1 else samples
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] == 0:
        raise DspError(f"prepare_prompt: expected shape (n_channels, n) with n >= 1, got {samples.shape}")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise DspError("prepare_prompt: the samples include NaN or infinity")
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not 1000 <= rate <= 384000:
        raise DspError(f"prepare_prompt: rate must be an integer in 1000..384000 Hz, got {rate!r}")
    lo, hi = LEVEL_RANGE_DBM0
    if isinstance(level_dbm0, bool) or not isinstance(level_dbm0, (int, float)) \
            or not (math.isfinite(level_dbm0) and lo <= level_dbm0 <= hi):
        raise DspError(f"prepare_prompt: level_dbm0 must be {lo:.0f}..{hi:.0f} dBm0, got {level_dbm0!r}")
    if margin_s is not None and (isinstance(margin_s, bool) or not isinstance(margin_s, (int, float))
                                 or not 0.0 <= margin_s <= 10.0):
        raise DspError(f"prepare_prompt: margin_s must be None or 0..10 s, got {margin_s!r}")
    return x


def _trim(y: np.ndarray, margin_s: float) -> np.ndarray:
    """``y`` with exactly ``margin_s`` before its first and after its last signal (cut, or padded with zeros)."""
    start, stop = trim_silence(y, RATE, 0.0)
    if stop == 0:
        return y  # no block reached the detector's threshold (a very short or odd signal): keep it whole
    m = round(margin_s * RATE)
    head = np.zeros(max(0, m - start))
    tail = np.zeros(max(0, stop + m - y.size))
    return np.concatenate([head, y[max(0, start - m):stop + m], tail])
