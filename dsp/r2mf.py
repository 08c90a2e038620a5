"""MFC/R2 inter-register signals (ITU-T Q.441, China No.1): the 15 frequency pairs, a sender and a receiver.

Each signal is two of six frequencies, 120 Hz apart: the forward group
(outgoing register to incoming) 1380-1980 Hz, the backward group 1140-540 Hz.
Q.441 numbers the frequencies f0..f5 with the weights 0, 1, 2, 4, 7, 11 and
signal n is the pair in ``PAIRS[n]`` (1 = f0+f1, 2 = f0+f2, 3 = f1+f2, 4 = f0+f3,
..., 10 = f3+f4, 11 = f0+f5, ..., 15 = f4+f5): the weights add up to n except
for 10 (4 + 7) and 14, 15. Each frequency is sent at ``LEVEL_DBM0`` (-8 dBm0).

``R2MfSender`` keeps each channel's tone phase-continuous across the 20 ms
ticks; ``R2MfDetector`` is the streaming receiver for many channels at once,
built like ``dsp.dtmf.DtmfDetector``: every 10 ms it looks at the last 20 ms of
each channel through a Hann window and reports when a channel's signal starts,
changes or stops.
"""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.levels import DBM0_RMS, dbm0_to_amplitude
from dsp.tones import to_int16

__all__ = ["BACKWARD_HZ", "FORWARD_HZ", "LEVEL_DBM0", "PAIRS", "R2MfDetector", "R2MfSender", "mf_tone",
           "signal_freqs"]

FORWARD_HZ = (1380.0, 1500.0, 1620.0, 1740.0, 1860.0, 1980.0)
BACKWARD_HZ = (1140.0, 1020.0, 900.0, 780.0, 660.0, 540.0)
PAIRS = {1: (0, 1), 2: (0, 2), 3: (1, 2), 4: (0, 3), 5: (1, 3), 6: (2, 3), 7: (0, 4), 8: (1, 4), 9: (2, 4),
         10: (3, 4), 11: (0, 5), 12: (1, 5), 13: (2, 5), 14: (3, 5), 15: (4, 5)}
LEVEL_DBM0 = -8.0
RATE = 8000
BLOCK = 160
_SIGNAL_OF = np.zeros((6, 6), np.int64)
for _n, (_i, _j) in PAIRS.items():
    _SIGNAL_OF[_i, _j] = _SIGNAL_OF[_j, _i] = _n


def signal_freqs(signal: int, forward: bool) -> tuple[float, float]:
    """The two frequencies (Hz) of MF ``signal`` 1..15 in the forward or backward group."""
    if not isinstance(signal, (int, np.integer)) or int(signal) not in PAIRS:
        raise DspError(f"an R2 MF signal is 1..15, got {signal!r}")
    i, j = PAIRS[int(signal)]
    group = FORWARD_HZ if forward else BACKWARD_HZ
    return group[i], group[j]


def _tone(signal: int, forward: bool, start: int, n: int, amp: float, phase: float = 0.0) -> np.ndarray:
    f = np.array(signal_freqs(signal, forward))
    t = (start + np.arange(n)) / RATE
    return amp * np.sin(2.0 * np.pi * f[:, None] * t[None, :] + phase).sum(axis=0)


def mf_tone(signal: int, forward: bool, n_samples: int, level_dbm0: float = LEVEL_DBM0, phase: float = 0.0,
            start: int = 0) -> np.ndarray:
    """``n_samples`` of MF ``signal`` (each frequency at ``level_dbm0``), int16 at 8 kHz.

    ``phase`` is both sines' starting phase in radians; ``start`` is a sample offset, so that
    ``mf_tone(s, f, n, start=k)`` continues ``mf_tone(s, f, k)`` without a phase jump.
    """
    if int(n_samples) < 0:
        raise DspError(f"n_samples must be >= 0, got {n_samples!r}")
    return to_int16(_tone(signal, forward, int(start), int(n_samples), dbm0_to_amplitude(level_dbm0), phase))


class R2MfSender:
    """The MF tones of many channels, 20 ms at a time, phase-continuous while a channel's signal lasts.

    ``set(ch, signal)`` starts (or changes to) a signal, ``set(ch, None)`` stops it;
    ``fill(out)`` writes each sending channel's next block into its row of ``out``
    (or adds it, saturating, with ``add=True``) and leaves the other rows alone.
    """

    def __init__(self, n_channels: int, forward: bool, level_dbm0: float = LEVEL_DBM0) -> None:
        if int(n_channels) < 1:
            raise DspError(f"n_channels must be >= 1, got {n_channels!r}")
        self.n_channels, self.forward = int(n_channels), bool(forward)
        self._amp = dbm0_to_amplitude(level_dbm0)
        self._signal = np.zeros(self.n_channels, np.int64)  # 0: silent
        self._pos = np.zeros(self.n_channels, np.int64)  # samples sent of the current signal

    def set(self, ch: int, signal: int | None) -> None:
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        new = 0 if signal is None else int(signal)
        if new not in PAIRS and signal is not None:
            raise DspError(f"an R2 MF signal is 1..15 or None, got {signal!r}")
        if new != self._signal[ch]:
            self._signal[ch], self._pos[ch] = new, 0

    def get(self, ch: int) -> int | None:
        return int(self._signal[ch]) or None

    @property
    def sending(self) -> np.ndarray:
        """Indices of the channels sending a signal now."""
        return np.flatnonzero(self._signal)

    def fill(self, out: np.ndarray, add: bool = False) -> np.ndarray:
        """Write (or add) the next ``out.shape[1]`` samples of every sending channel into ``out`` (int16)."""
        if not isinstance(out, np.ndarray) or out.dtype != np.int16 or out.ndim != 2 or out.shape[0] != self.n_channels:
            got = (out.dtype, out.shape) if isinstance(out, np.ndarray) else type(out).__name__
            raise DspError(f"R2MfSender.fill: expected an int16 array of shape ({self.n_channels}, n), got {got}")
        n = out.shape[1]
        for ch in self.sending:
            x = _tone(int(self._signal[ch]), self.forward, int(self._pos[ch]), n, self._amp)
            out[ch] = to_int16(x + out[ch]) if add else to_int16(x)
            self._pos[ch] += n
        return out


class R2MfDetector:
    """Streaming MFC/R2 receiver (Q.441 codes, receiver limits as in Q.455) for one group on many channels.

    Every 10 ms each channel's last 20 ms go through a Hann window; one matrix
    product gives the window's spectrum at the group's six frequencies and at
    the DFT bins of the group's band. A window is a *hit* for signal n when:

    * its two strongest group tones are the pair of n, each above ``MIN_TONE_DBM0``
      (accepts -5 .. -35 dBm0), within ``MAX_TWIST_DB`` of each other (Q.455 asks
      for 5 dB between adjacent and 7 dB between other frequencies; 20 dB must fail);
    * the third strongest group tone is ``THIRD_DB`` below the weaker of the two
      (three tones are no signal);
    * the two carry ``MIN_BAND_FRACTION`` of the band's energy and
      ``MIN_FULL_FRACTION`` of the whole window's (speech and noise are no signal);
    * each tone's phase advance since the window 10 ms earlier puts it within
      ``FREQ_TOL_HZ`` of its nominal frequency (Q.455: +-10 Hz must pass);
    * the window's two 10 ms halves carry energies within ``HALF_DB`` (a tone
      that fills it, not a short burst at its centre).

    A signal is recognised after ``HOLD`` consecutive hits (a tone of 30 ms always
    gives them, a 7 ms burst never) and ends after ``RELEASE`` consecutive windows
    without it, so a break of 7 ms does not end it. ``process`` returns the
    changes: recognition lags the tone's start by 20-40 ms, its end by 20-40 ms.
    """

    MIN_TONE_DBM0 = -38.0
    MAX_TWIST_DB = 10.0
    THIRD_DB = 15.0
    MIN_BAND_FRACTION = 0.8
    MIN_FULL_FRACTION = 0.8
    FREQ_TOL_HZ = 15.0
    HALF_DB = 6.0
    HOLD = 2
    RELEASE = 3

    def __init__(self, n_channels: int, forward: bool) -> None:
        if int(n_channels) < 1:
            raise DspError(f"n_channels must be >= 1, got {n_channels!r}")
        self.n_channels, self.forward = int(n_channels), bool(forward)
        C, sub = self.n_channels, BLOCK // 2
        win = 2 * sub
        hann = np.hanning(win + 2)[1:-1]
        k = np.arange(win)[:, None]
        freqs = np.array(FORWARD_HZ if forward else BACKWARD_HZ)
        w = 2.0 * np.pi * freqs / RATE
        lo, hi = freqs.min() - 100.0, freqs.max() + 100.0
        bins = np.arange(int(np.ceil(lo * win / RATE)), int(hi * win / RATE) + 1)
        wb = 2.0 * np.pi * bins / win
        basis = np.empty((win, 12 + 2 * bins.size))
        basis[:, 0:12:2] = np.cos(w * k)
        basis[:, 1:12:2] = -np.sin(w * k)
        basis[:, 12::2] = np.cos(wb * k)
        basis[:, 13::2] = np.sin(wb * k)
        self._basis = np.ascontiguousarray(basis * hann[:, None])
        self._hann2 = hann ** 2
        self._full_scale = 2.0 * self._hann2.sum() / hann.sum() ** 2  # a sine's |coef|^2 -> its windowed energy
        self._band_scale = hann.sum() ** 2 / (win * self._hann2.sum())  # ... -> its share of the band's bins
        amp = DBM0_RMS * np.sqrt(2.0) * 10.0 ** (self.MIN_TONE_DBM0 / 20.0)
        self._min_energy = (amp * hann.sum() / 2.0) ** 2
        self._rot = np.exp(-1j * w * sub)  # nominal phase advance over one 10 ms hop, removed
        self._cos_tol = np.cos(2.0 * np.pi * self.FREQ_TOL_HZ * sub / RATE)
        self._twist = 10.0 ** (self.MAX_TWIST_DB / 10.0)
        self._third = 10.0 ** (self.THIRD_DB / 10.0)
        self._half = 10.0 ** (self.HALF_DB / 10.0)
        self._sub = sub
        self._buf = np.zeros((C, 3 * sub))  # the previous call's last 10 ms, then this call's 20 ms
        self._prev = np.zeros((C, 6), complex)  # tone coefficients of the previous call's last window
        self._cur = np.zeros(C, np.int64)  # reported signal, 0 none
        self._cand = np.zeros(C, np.int64)  # signal of the current run of windows
        self._run = np.zeros(C, np.int64)
        self._away = np.zeros(C, np.int64)  # consecutive windows without the reported signal
        self.window_signals = np.zeros((C, 2), np.int64)  # hits of the last call's two windows, 0 none

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s history (its register phase starts or ended)."""
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        ch = int(ch)
        self._buf[ch] = 0.0
        self._prev[ch] = 0.0
        self._cur[ch] = self._cand[ch] = self._run[ch] = self._away[ch] = 0

    def current(self, ch: int) -> int | None:
        return int(self._cur[ch]) or None

    def process(self, x: np.ndarray) -> list[tuple[int, int | None]]:
        """Feed 20 ms of every channel; return ``(channel, signal or None)`` for each channel whose signal changed.

        Parameters
        ----------
        x : ndarray, shape (n_channels, 160), int16 or float, linear PCM on the int16 scale
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"R2MfDetector.process: expected an int16 or float ndarray, got {got}")
        if x.shape != (self.n_channels, BLOCK):
            raise DspError(f"R2MfDetector.process: expected shape {(self.n_channels, BLOCK)}, got {x.shape}")
        C, sub = self.n_channels, self._sub
        buf = self._buf
        buf[:, :sub] = buf[:, 2 * sub:]
        np.copyto(buf[:, sub:], x, casting="unsafe")
        frames = np.stack([buf[:, :2 * sub], buf[:, sub:]], axis=1)  # (C, 2, 160)
        prod = frames.reshape(2 * C, 2 * sub) @ self._basis
        z = prod[:, :12].reshape(C, 2, 12).view(complex)  # (C, 2, 6) sum h x e^{-jwk}
        band = prod[:, 12:]
        band_e = (band * band).reshape(C, 2, -1).sum(axis=2)
        e = z.real ** 2 + z.imag ** 2
        order = np.argsort(e, axis=2)
        i1, i2, i3 = order[..., 5], order[..., 4], order[..., 3]
        e1 = np.take_along_axis(e, i1[..., None], 2)[..., 0]
        e2 = np.take_along_axis(e, i2[..., None], 2)[..., 0]
        e3 = np.take_along_axis(e, i3[..., None], 2)[..., 0]
        full = np.einsum("csk,k->cs", frames * frames, self._hann2)
        half = np.einsum("cjk->cj", buf.reshape(C, 3, sub) ** 2) + 1e-9  # energy of each 10 ms sub-block
        halves = np.stack([half[:, :2], half[:, 1:]], axis=1)  # (C, 2, 2)
        hit = (e2 >= self._min_energy) & (e1 <= e2 * self._twist) & (e3 * self._third <= e2)
        tones = e1 + e2
        hit &= tones >= self.MIN_BAND_FRACTION * self._band_scale * band_e
        hit &= tones * self._full_scale >= self.MIN_FULL_FRACTION * full
        hit &= halves.max(axis=2) <= self._half * halves.min(axis=2)
        if hit.any():  # the frequency check, by the phase advance over the 10 ms hop
            prev = np.concatenate([self._prev[:, None, :], z[:, :1, :]], axis=1)  # window before each window
            for idx in (i1, i2):
                a = np.take_along_axis(z, idx[..., None], 2)[..., 0]
                b = np.take_along_axis(prev, idx[..., None], 2)[..., 0]
                adv = a * b.conj() * self._rot[idx]
                hit &= adv.real >= self._cos_tol * np.abs(adv)
        self._prev = z[:, 1, :].copy()
        sig = np.where(hit, _SIGNAL_OF[i1, i2], 0)
        self.window_signals = sig
        return self._count(sig)

    def _count(self, sig: np.ndarray) -> list[tuple[int, int | None]]:
        before = self._cur.copy()
        if not sig.any() and not self._cur.any() and not self._cand.any():
            return []
        for s in range(sig.shape[1]):
            k = sig[:, s]
            self._run = np.where(k == self._cand, self._run + 1, 1)
            self._cand = k.copy()
            self._away = np.where(k == self._cur, 0, self._away + 1)
            on = (k > 0) & (self._run >= self.HOLD) & (k != self._cur)
            off = (self._cur > 0) & (self._away >= self.RELEASE)
            self._cur = np.where(on, k, np.where(off, 0, self._cur))
            self._away = np.where(on | off, 0, self._away)
        changed = np.flatnonzero(self._cur != before)
        return [(int(c), int(self._cur[c]) or None) for c in changed]
