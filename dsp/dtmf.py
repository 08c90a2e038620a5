"""DTMF (Q.23) generation and a streaming, all-channels-at-once DTMF receiver."""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.levels import DBM0_RMS
from dsp.tones import sine, to_int16

__all__ = ["DTMF_FREQS", "DTMF_KEYS", "DtmfDetector", "dtmf_digit", "dtmf_generate", "detect_digits"]

DTMF_FREQS = {"low": (697.0, 770.0, 852.0, 941.0), "high": (1209.0, 1336.0, 1477.0, 1633.0)}
DTMF_KEYS = "123A456B789C*0#D"  # row-major: key = DTMF_KEYS[4 * low_index + high_index]
_ROWCOL = {k: (i // 4, i % 4) for i, k in enumerate(DTMF_KEYS)}


def dtmf_digit(digit: str, level_dbm0: float = -10.0, duration_s: float = 0.1,
               rate: int = 8000, twist_db: float = 0.0) -> np.ndarray:
    """One DTMF key: low tone at ``level_dbm0``, high tone at ``level_dbm0 + twist_db``.

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
    return to_int16(sine(freqs, (level_dbm0, level_dbm0 + twist_db), n, rate))


def dtmf_generate(digits: str, level_dbm0: float = -10.0, on_s: float = 0.1, off_s: float = 0.1,
                  twist_db: float = 0.0, rate: int = 8000) -> np.ndarray:
    """A string of DTMF keys, each ``on_s`` of tone followed by ``off_s`` of silence.

    ``twist_db`` is the high group's level minus the low group's, dB (positive = normal twist).

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


class DtmfDetector:
    """Streaming DTMF receiver for many channels at once.

    Each 10 ms sub-block of every channel gets one matrix product against
    rectangular-window cos/sin bases at the 8 DTMF frequencies. A sub-block is a
    *hit* for a key when: the strongest low and strongest high tones are each
    above ``MIN_TONE_DBM0``; each beats the runner-up of its group by
    ``GROUP_MARGIN_DB``; the high minus low level is within -``REVERSE_TWIST_DB``
    .. +``NORMAL_TWIST_DB``; the two tones carry ``MIN_TONE_FRACTION`` of the
    sub-block's energy (rejects speech, music, noise, and sub-blocks the tone
    only partly fills); and, when the previous sub-block was a hit for the same
    key, the phase advance of each tone between them puts its frequency within
    ``FREQ_TOL`` of nominal. A key is reported (key-down) after ``HOLD``
    consecutive hits (30 ms: a 40 ms tone always gives 3 full sub-blocks, a
    20 ms tone at most 2), and only if the channel has seen ``GAP``
    consecutive sub-blocks without a hit since its last key.

    Parameters
    ----------
    n_channels : int
    block : int, samples per ``process`` call; a multiple of 10 ms (160 = 20 ms at 8 kHz)
    rate : int, samples per second, a multiple of 100
    """

    MIN_TONE_DBM0 = -36.0
    GROUP_MARGIN_DB = 4.0
    NORMAL_TWIST_DB = 8.0
    REVERSE_TWIST_DB = 4.0
    MIN_TONE_FRACTION = 0.75
    FREQ_TOL = 0.025
    HOLD = 3
    GAP = 3

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000):
        n_channels, block, rate = int(n_channels), int(block), int(rate)
        if n_channels < 1:
            raise DspError(f"n_channels must be >= 1, got {n_channels}")
        if rate < 4000 or rate % 100:
            raise DspError(f"rate must be a multiple of 100 Hz and >= 4000, got {rate}")
        sub = rate // 100
        if block < sub or block % sub:
            raise DspError(f"block must be a positive multiple of {sub} samples (10 ms), got {block}")
        self.n_channels, self.block, self.rate, self._sub = n_channels, block, rate, sub
        self._n_sub = block // sub
        freqs = np.array(DTMF_FREQS["low"] + DTMF_FREQS["high"])
        w = 2.0 * np.pi * freqs / rate
        k = np.arange(sub)[:, None]
        # interleaved (cos, -sin) columns: the product viewed as complex128 is sum x e^{-jwk}
        basis = np.empty((sub, 16))
        basis[:, 0::2] = np.cos(w * k)
        basis[:, 1::2] = -np.sin(w * k)
        self._basis = basis
        self._rot = np.exp(-1j * w * sub)  # nominal phase advance over one sub-block, removed
        self._cos_tol = np.cos(2.0 * np.pi * self.FREQ_TOL * freqs * sub / rate)
        # energies are sums of squares over a sub-block; a tone's is A^2 sub / 2
        self._min_energy = sub * DBM0_RMS**2 * 10.0 ** (self.MIN_TONE_DBM0 / 10.0)
        self._twist_hi = 10.0 ** (self.NORMAL_TWIST_DB / 10.0)
        self._twist_lo = 10.0 ** (-self.REVERSE_TWIST_DB / 10.0)
        self._margin = 10.0 ** (self.GROUP_MARGIN_DB / 10.0)
        S = self._n_sub
        self._xf = np.zeros((n_channels, block))
        self._prod = np.zeros((n_channels * S, 16))
        self._coef = np.zeros((n_channels, S + 1, 16))  # slot 0: last sub-block of the previous call
        self._etot = np.zeros((n_channels, S))
        self._rows8 = np.arange(n_channels * S) * 8  # row starts in a flat (C * S, 8) array
        self._prev_key = np.full(n_channels, -1, np.int64)  # hit key of the last sub-block, -1 none
        self._run = np.zeros(n_channels, np.int64)  # consecutive hits of _prev_key
        self._miss = np.full(n_channels, self.GAP, np.int64)  # consecutive sub-blocks without a hit
        self._armed = np.ones(n_channels, bool)  # may report the next key

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s history (a call ended)."""
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        ch = int(ch)
        self._coef[ch] = 0.0
        self._prev_key[ch] = -1
        self._run[ch] = 0
        self._miss[ch] = self.GAP
        self._armed[ch] = True

    def process(self, x: np.ndarray) -> list[tuple[int, str]]:
        """Feed one block of every channel; return the keys that went down, in channel order.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale

        Returns
        -------
        events : list of (channel, key) with key one of ``DTMF_KEYS``
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"DtmfDetector.process: expected an int16 or float ndarray, got {got}")
        if x.shape != (self.n_channels, self.block):
            raise DspError(f"DtmfDetector.process: expected shape {(self.n_channels, self.block)}, got {x.shape}")
        C, S, N = self.n_channels, self._n_sub, self._sub
        np.copyto(self._xf, x, casting="unsafe")
        xs = self._xf.reshape(C * S, N)
        np.matmul(xs, self._basis, out=self._prod)
        np.einsum("ij,ij->i", xs, xs, out=self._etot.reshape(C * S))
        coef = self._coef
        coef[:, 1:, :] = self._prod.reshape(C, S, 16)
        z = coef.view(np.complex128)  # shape (C, S + 1, 8)
        energy = (z.real**2 + z.imag**2)[:, 1:, :] * (2.0 / N)  # (C, S, 8), sum of squares per tone
        # per-sub-block phase advance relative to nominal; cos of it, for the frequency test
        adv = z[:, 1:, :] * np.conj(z[:, :-1, :]) * self._rot
        cos_adv = adv.real / np.maximum(np.abs(adv), 1e-30)
        freq_ok = cos_adv >= self._cos_tol  # (C, S, 8)

        e2 = energy.reshape(C * S, 8)
        low_sorted = np.sort(e2[:, :4], axis=1)
        high_sorted = np.sort(e2[:, 4:], axis=1)
        el, el2 = low_sorted[:, 3], low_sorted[:, 2]
        eh, eh2 = high_sorted[:, 3], high_sorted[:, 2]
        bl = np.argmax(e2[:, :4], axis=1)
        bh = np.argmax(e2[:, 4:], axis=1)
        hit = (
            (el >= self._min_energy) & (eh >= self._min_energy)
            & (el >= self._margin * el2) & (eh >= self._margin * eh2)
            & (eh <= self._twist_hi * el) & (eh >= self._twist_lo * el)
            & (el + eh >= self.MIN_TONE_FRACTION * self._etot.reshape(C * S))
        )
        fok = freq_ok.reshape(C * S * 8)
        rows = self._rows8
        phase_ok = (fok[rows + bl] & fok[rows + 4 + bh]).reshape(C, S)
        key = np.where(hit, 4 * bl + bh, -1).reshape(C, S)

        events = []
        prev_key, run, miss, armed = self._prev_key, self._run, self._miss, self._armed
        for s in range(S):
            k = key[:, s]
            same = (k >= 0) & (k == prev_key)
            # a continuing hit must also pass the frequency test; if not, the run starts over
            run[:] = np.where(same & phase_ok[:, s], run + 1, np.where(k >= 0, 1, 0))
            miss[:] = np.where(k >= 0, 0, miss + 1)
            armed |= miss >= self.GAP
            fire = armed & (k >= 0) & (run >= self.HOLD)
            if fire.any():
                chans = np.flatnonzero(fire)
                events.extend((int(c), DTMF_KEYS[int(k[c])]) for c in chans)
                armed[chans] = False
            prev_key[:] = k
        coef[:, 0, :] = coef[:, S, :]
        if S > 1 and len(events) > 1:
            events.sort(key=lambda e: e[0])  # stable: one channel's keys stay in time order
        return events


def detect_digits(x: np.ndarray, rate: int = 8000) -> str:
    """All DTMF keys in one signal, in order.

    Parameters
    ----------
    x : ndarray, shape (n_samples,) or (1, n_samples), int16 or float, linear PCM on the int16 scale
    rate : int, samples per second

    Returns
    -------
    keys : str
    """
    if not isinstance(x, np.ndarray) or not (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)):
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"detect_digits: expected shape (n_samples,) or (1, n_samples), got {got}")
    x = x.reshape(1, -1)
    block = 2 * (rate // 100)
    n_blocks = -(-x.shape[1] // block)
    padded = np.zeros((1, n_blocks * block), np.float64)
    padded[:, : x.shape[1]] = x
    det = DtmfDetector(1, block, rate)
    return "".join(k for i in range(n_blocks) for _, k in det.process(padded[:, i * block:(i + 1) * block]))
