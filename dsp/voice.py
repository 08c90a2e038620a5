"""Voice-vs-tone classifier: tells live speech from steady tones and line noise, all channels at once.

Each 20 ms frame is *voiced-like* when it is loud enough, its spectrum is not
flat (white noise is) and its energy is not packed into a few bins (a tone's
is). Speech is declared when a channel's last half second holds enough
voiced-like frames and its level moves like syllables do; a tone, a cadence or
steady noise never does both. It is what an outbound dialer calls "answered".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from appliance.errors import DspError
from dsp.levels import DBM0_RMS

__all__ = ["VoiceDetector", "frame_features", "voiced_frames"]

MIN_DBM0 = -45.0  # quieter frames are pauses, whatever their spectrum
MAX_FLATNESS = 0.3  # white noise measures ~0.56, voiced speech 0.01-0.1, a tone ~0
PEAK_BINS = 6  # enough for a dual tone's two Hann main lobes
MAX_PEAK = 0.9  # share of the band's energy in the PEAK_BINS strongest bins: a tone's is ~1
BAND_HZ = (200.0, 3400.0)  # telephone band: mains hum and DC stay out of the measures


def _check(x, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"{name}: expected an int16 or float ndarray, got {got}")
    return x


def frame_features(frames: np.ndarray, rate: int = 8000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level, spectral flatness and peakiness of each frame.

    Parameters
    ----------
    frames : ndarray, shape (..., n) with n >= 32, int16 or float, linear PCM on the int16 scale
    rate : int, samples per second

    Returns
    -------
    level : ndarray, shape (...), float64, dBm0 (-120.0 for digital silence)
    flatness : ndarray, shape (...), geometric over arithmetic mean of the Hann power
        spectrum in ``BAND_HZ``, 0..1 (white noise ~0.56, a tone ~0)
    peak : ndarray, shape (...), share of that band's energy in its ``PEAK_BINS`` strongest bins, 0..1
    """
    frames = _check(frames, "frame_features")
    n = frames.shape[-1]
    if n < 32:
        raise DspError(f"frame_features: frames need at least 32 samples, got {n}")
    xf = frames.astype(np.float64, copy=False)
    power = np.einsum("...i,...i->...", xf, xf) / n
    level = 10.0 * np.log10(np.maximum(power, DBM0_RMS**2 * 1e-12) / DBM0_RMS**2)
    window, lo, hi = _analysis(n, int(rate))
    spec = np.fft.rfft(xf * window, axis=-1)[..., lo:hi]
    p = spec.real ** 2 + spec.imag ** 2
    m = p.shape[-1]
    mean = p.mean(axis=-1)
    tiny = 1e-12 * mean[..., None] + 1e-30  # keeps log finite on a pure tone's empty bins
    flatness = np.exp(np.log(p + tiny).mean(axis=-1)) / np.maximum(mean, 1e-30)
    k = min(PEAK_BINS, m)
    top = np.partition(p, m - k, axis=-1)[..., -k:].sum(axis=-1)
    peak = top / np.maximum(p.sum(axis=-1), 1e-30)
    return level, flatness, peak


@lru_cache(maxsize=8)
def _analysis(n: int, rate: int) -> tuple[np.ndarray, int, int]:
    """Hann window of ``n`` samples (no zero end points) and the rfft bin range inside ``BAND_HZ``."""
    f = np.fft.rfftfreq(n, 1.0 / rate)
    k = np.flatnonzero((f >= BAND_HZ[0]) & (f <= BAND_HZ[1]))
    return np.hanning(n + 2)[1:-1], int(k[0]), int(k[-1]) + 1


def _voiced(level, flatness, peak) -> np.ndarray:
    return (level >= MIN_DBM0) & (flatness <= MAX_FLATNESS) & (peak <= MAX_PEAK)


def voiced_frames(x: np.ndarray, block: int = 160, rate: int = 8000) -> np.ndarray:
    """Which whole frames of each channel are voiced-like (speech, not tone, noise or pause).

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples) or (n_samples,), int16 or float, linear PCM
    block : int, samples per frame
    rate : int, samples per second

    Returns
    -------
    voiced : ndarray, shape (n_channels, n_samples // block), bool
    """
    x = _check(x, "voiced_frames")
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    if x2.ndim != 2:
        raise DspError(f"voiced_frames: expected shape (n_channels, n_samples), got {x.shape}")
    nf = x2.shape[1] // int(block)
    frames = x2[:, : nf * block].reshape(x2.shape[0], nf, block)
    return _voiced(*frame_features(frames, rate))


class VoiceDetector:
    """Streaming speech detector for many channels, one 20 ms frame per channel per call.

    A channel is *speaking* while its last ``WINDOW_S`` seconds hold at least
    ``MIN_VOICED_S`` of voiced-like frames (see ``frame_features``) and its
    frame levels span ``MIN_RANGE_DB`` or more (syllables come and go; a
    tone or steady noise keeps its level).

    Parameters
    ----------
    n_channels : int
    block : int, samples per frame and per ``process`` call (160 = 20 ms at 8 kHz)
    rate : int, samples per second
    """

    WINDOW_S = 0.5
    MIN_VOICED_S = 0.16
    MIN_RANGE_DB = 6.0

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000):
        n_channels, block, rate = int(n_channels), int(block), int(rate)
        if n_channels < 1 or block < 32 or rate < 4000:
            raise DspError(f"need n_channels >= 1, block >= 32, rate >= 4000, got {n_channels}, {block}, {rate}")
        self.n_channels, self.block, self.rate = n_channels, block, rate
        w = max(1, int(round(self.WINDOW_S * rate / block)))
        self._need = max(1, int(round(self.MIN_VOICED_S * rate / block)))
        self._voiced = np.zeros((n_channels, w), bool)  # ring buffers over the window, column = frame
        self._level = np.full((n_channels, w), -120.0)
        self._col = 0
        self.voiced = np.zeros(n_channels, bool)  # the last frame's voiced-like flags
        self.level = np.full(n_channels, -120.0)  # the last frame's level, dBm0

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s history (a call ended)."""
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        self._voiced[int(ch)] = False
        self._level[int(ch)] = -120.0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed one frame of every channel; return which channels are speaking.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale

        Returns
        -------
        speaking : ndarray, shape (n_channels,), bool
        """
        x = _check(x, "VoiceDetector.process")
        if x.shape != (self.n_channels, self.block):
            raise DspError(f"VoiceDetector.process: expected shape {(self.n_channels, self.block)}, got {x.shape}")
        level, flatness, peak = frame_features(x, self.rate)
        self.voiced = _voiced(level, flatness, peak)
        self.level = level
        self._voiced[:, self._col] = self.voiced
        self._level[:, self._col] = level
        self._col = (self._col + 1) % self._voiced.shape[1]
        spread = self._level.max(axis=1) - self._level.min(axis=1)
        return (self._voiced.sum(axis=1) >= self._need) & (spread >= self.MIN_RANGE_DB)
