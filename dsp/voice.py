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
    level = _level(np.einsum("...i,...i->...", xf, xf) / n)
    p = _band_power(xf, int(rate))
    total = np.add.reduce(p, axis=-1)
    return level, _flatness(p, total), _peak(p, total)


def _level(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, DBM0_RMS**2 * 1e-12) / DBM0_RMS**2)


def _band_power(xf: np.ndarray, rate: int) -> np.ndarray:
    """Hann power spectrum of float64 frames ``(..., n)`` in ``BAND_HZ``: shape ``(..., bins)``."""
    window, lo, hi = _analysis(xf.shape[-1], rate)
    sq = np.fft.rfft(xf * window, axis=-1).view(np.float64)[..., 2 * lo:2 * hi] ** 2  # re, im interleaved
    return sq[..., 0::2] + sq[..., 1::2]


def _flatness(p: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of band powers ``p`` whose sums are ``total``."""
    m = p.shape[-1]
    mean = total / m
    logs = p + (1e-12 * mean[..., None] + 1e-30)  # keeps log finite on a pure tone's empty bins
    np.log(logs, out=logs)
    return np.exp(np.add.reduce(logs, axis=-1) / m) / np.maximum(mean, 1e-30)


def _peak(p: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Share of ``total`` in the ``PEAK_BINS`` largest of band powers ``p``."""
    m = p.shape[-1]
    k = min(PEAK_BINS, m)
    top = np.partition(p, m - k, axis=-1)[..., -k:].sum(axis=-1)
    return top / np.maximum(total, 1e-30)


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
        self._voiced = np.zeros((w, n_channels), bool)  # ring buffers over the window, row = frame
        self._level = np.full((w, n_channels), -120.0)
        self._count = np.zeros(n_channels, np.int64)  # voiced frames in the ring, kept as frames come and go
        self._row = 0
        self.voiced = np.zeros(n_channels, bool)  # the last frame's voiced-like flags
        self.level = np.full(n_channels, -120.0)  # the last frame's level, dBm0

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s history (a call ended)."""
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        self._voiced[:, int(ch)] = False
        self._level[:, int(ch)] = -120.0
        self._count[int(ch)] = 0

    def process(self, x: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Feed one frame of every channel; return which channels are speaking.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale
        active : ndarray, shape (n_channels,), bool, optional; only these channels are analysed,
            the others' frames count as digital silence (for channels whose result nobody needs)

        Returns
        -------
        speaking : ndarray, shape (n_channels,), bool
        """
        x = _check(x, "VoiceDetector.process")
        if x.shape != (self.n_channels, self.block):
            raise DspError(f"VoiceDetector.process: expected shape {(self.n_channels, self.block)}, got {x.shape}")
        xf = x.astype(np.float64, copy=False)
        level = _level(np.einsum("...i,...i->...", xf, xf) / self.block)
        if active is not None:
            level[~active] = -120.0
        voiced = level >= MIN_DBM0
        loud = voiced.nonzero()[0]
        if loud.size:  # only loud frames need a spectrum: pauses and idle lines cost nothing more
            p = _band_power(xf[loud] if loud.size < self.n_channels else xf, self.rate)
            total = np.add.reduce(p, axis=-1)
            spread = _peak(p, total) <= MAX_PEAK  # energy not packed in a few bins, as a tone's is
            voiced[loud] = spread
            keep = spread.nonzero()[0]  # only those need a flatness: tones on the line cost less
            if keep.size:
                voiced[loud[keep]] = _flatness(p[keep], total[keep]) <= MAX_FLATNESS
        self.voiced, self.level = voiced, level
        row = self._row
        self._count -= self._voiced[row]
        self._count += voiced
        self._voiced[row] = voiced
        self._level[row] = level
        self._row = (row + 1) % self._voiced.shape[0]
        speaking = self._count >= self._need
        if np.count_nonzero(speaking):  # the level range only where enough frames were voiced
            speaking &= np.maximum.reduce(self._level) - np.minimum.reduce(self._level) >= self.MIN_RANGE_DB
        return speaking
