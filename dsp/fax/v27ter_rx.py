"""Streaming V.27ter receiver (4800 and 2400 bit/s): carrier detect, training recognition, timing, equaliser.

Per block, vectorised: the signal is mixed down from 1800 Hz and matched-filtered
(root-raised-cosine); the in-band power of 2.5 ms pieces drives the carrier
detect; symbol timing is the Oerder-Meyr estimate (the phase of the
symbol-rate line of |y|^2, smoothed over blocks) and the baseband is
interpolated (cubic) at two points a symbol; a T/2-spaced equaliser (13 taps)
filters all of the block's symbols at once. It is solved by least squares over
the training (normal equations summed over blocks with forgetting, ridge towards
the taps in use) and follows the data by block LMS. Per symbol, in a tight loop
on Python scalars: the carrier phase (second-order loop: offsets of +-10 Hz
are followed) and the decision on the nearest point of the phase lattice.

Training is recognised by content only: 24 reversals, then the first 100 symbols
of the conditioning pattern, at most 6 of the 124 wrong, which no tone, noise
or speech gives (and the equaliser adapts only once reversals were seen, so it
cannot make a pattern out of noise). It also fixes where the data begins,
1074 + 8 symbols after the pattern's start. A burst over noise is caught by its
6 dB rise in level.

Once trained, the burst ends when the equalised symbols collapse (three below
0.3 of normal) or the carrier detect lets go; the symbols after the end give no
bits. Extra bits after the data are the transmitter's turn-off: from ours at
most 101 (4800: 32 symbols of ones, a pad of 2, one fading symbol) or 51
(2400: 24 symbols, 1, one); from another, its turn-off and one symbol (from
spandsp we measured up to 143 and 100).
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from appliance.errors import DspError
from dsp.fax.v27ter import (BAUD, BITS_PER_SYMBOL, CARRIER_HZ, PULSE_HALF_SPAN, SEG4_SYMBOLS, SEG5_SYMBOLS,
                            Descrambler, conditioning_pattern, phase_change_bits,
                            rrc_pulse)
from dsp.fax.modemargs import check_modem
from dsp.levels import DBM0_RMS

__all__ = ["V27terReceiver"]

SUB = 20  # samples per carrier-detect piece (2.5 ms)
ON_PIECES, OFF_PIECES = 2, 4  # pieces in a row to switch the carrier on / off
HYSTERESIS_DB = 3.0
EQ_HALF = 6  # equaliser taps each side of the centre, at T/2
ALIGN_ALT, ALIGN_PAT, ALIGN_MAX_ERR = 24, 100, 6
END_LEVEL, END_SYMBOLS = 0.3, 3
JUMP = 4.0  # 6 dB
LS_FORGET, LS_RIDGE, LMS_STEP = 0.8, 0.05, 0.1
LS_FROM = 96  # symbols: before, too few equations for the taps (and only the reversals' two tones)
GIVE_UP = 300  # symbols without the reversals of segment 3
PLL_ACQUIRE, PLL_TRACK = (0.25, 0.02), (0.07, 0.002)  # carrier loop gains (phase, frequency) per symbol
WAIT_SAMPLES = 160  # signal gathered before the first timing estimate


class V27terReceiver:
    """Streaming V.27ter demodulator for one channel: blocks of samples in, descrambled data bits out.

    Parameters
    ----------
    bit_rate : int, 4800 or 2400
    block : int, samples per ``process`` call
    rate : int, samples per second (8000)
    min_level_dbm0 : float, dBm0; weaker in-band signals count as no carrier

    Attributes
    ----------
    trained : bool, training recognised, data bits flowing in the current burst
    carrier : bool, in-band energy above the threshold
    events : list of str, set by each ``process``: "trained", "carrier_down", "train_failed"
    """

    def __init__(self, bit_rate: int = 4800, block: int = 160, rate: int = 8000, min_level_dbm0: float = -43.0):
        self.bit_rate, self.block, self.rate = check_modem(bit_rate, block, rate, tuple(BAUD), "V.27ter")
        level = min_level_dbm0
        if not isinstance(level, (int, float, np.integer, np.floating)) or not -70.0 <= level <= -10.0:
            raise DspError(f"min_level_dbm0 must be between -70 and -10 dBm0, got {min_level_dbm0!r}")
        self.baud = BAUD[self.bit_rate]
        self._bps = BITS_PER_SYMBOL[self.bit_rate]
        self._sps = self.rate / self.baud
        half = int(PULSE_HALF_SPAN * self._sps)
        h = rrc_pulse(np.arange(-half, half + 1) / self._sps)
        self._h = h / h.sum()
        # in-band share of a V.27ter signal's power that passes the filter: |y|^2 = P * share / 2 for line power P
        G = np.abs(np.fft.rfft(h, 4096)) ** 2  # the transmitter's pulse has the same shape
        share = float(np.sum(G * np.abs(np.fft.rfft(self._h, 4096)) ** 2) / np.sum(G))
        self._ref = DBM0_RMS**2 * share / 2.0  # |y|^2 of a 0 dBm0 signal
        self._on = self._ref * 10.0 ** (min_level_dbm0 / 10.0)
        self._off = self._on * 10.0 ** (-HYSTERESIS_DB / 10.0)
        self._cond = 1 - 2 * (conditioning_pattern()[:ALIGN_PAT] // 4).astype(np.int64)  # +1: 0 deg, -1: 180
        self._q = math.pi / 4 if self._bps == 3 else math.pi / 2  # data lattice step
        self._inv = phase_change_bits(self._bps)
        self.reset()

    def reset(self) -> None:
        """Forget everything (filters, timing, equaliser, burst state); wait for a new burst."""
        self._mixed = np.zeros(self._h.size - 1, np.complex128)  # the filter's history
        self._t = 0  # samples received
        self._y = np.zeros(0, np.complex128)  # filtered baseband, the last few hundred samples
        self._y0 = 0  # absolute index of _y[0]
        self._pleft = np.zeros(0)  # |y|^2 of a piece not yet complete
        self.carrier = False
        self._run = 0  # pieces in a row against the carrier state
        self._jump = 0  # pieces in a row well above the level the training started on
        self._reversals = False  # the reversals of segment 3 seen: a rise in level is segment 4, not a new burst
        self._level = 0.0
        self.trained = False
        self.events: list[str] = []
        self._state = "idle"  # idle, wait (gathering signal), train (training or data), done (until carrier off)
        self._start = 0

    # --- front end ----------------------------------------------------------------------------------
    def _front_end(self, x: np.ndarray) -> np.ndarray:
        """Mix down and matched-filter one block; return the in-band power of the pieces completed, shape (k,)."""
        n = self._t + np.arange(x.size)
        lo = np.exp(-2j * np.pi * ((n * int(CARRIER_HZ)) % self.rate) / self.rate)
        m = np.concatenate((self._mixed, x * lo))
        y = np.convolve(m, self._h, "valid")
        self._mixed = m[-(self._h.size - 1):]
        keep = 640
        self._y = np.concatenate((self._y[-keep:], y))
        self._y0 = self._t + x.size - self._y.size
        self._t += x.size
        p = np.concatenate((self._pleft, np.abs(y) ** 2))  # pieces run on across blocks of any size
        k = p.size // SUB
        self._pleft = p[k * SUB:]
        return p[: k * SUB].reshape(k, SUB).mean(axis=1)

    # --- burst start --------------------------------------------------------------------------------
    def _begin(self) -> None:
        """One block of signal is in hand: level, timing, and the demodulator's state."""
        s0 = self._start - self._y0
        seg = self._y[max(s0, 0):]
        # the reversals are a tone at half the baud rate: mean |y|^2 is half |y|^2 at the symbol centres
        self._level = max(float(np.mean(np.abs(seg[-100:]) ** 2)), 1e-9)
        self._gain = 1.0 / math.sqrt(2.0 * self._level)
        self._C = 0j
        self._c_upto = self._start
        self._timing(first=True)
        self._eq = np.zeros(2 * EQ_HALF + 1, np.complex128)
        self._eq[EQ_HALF] = 1.0
        self._R = np.zeros((2 * EQ_HALF + 1, 2 * EQ_HALF + 1), np.complex128)
        self._r = np.zeros(2 * EQ_HALF + 1, np.complex128)
        self._ys = np.zeros(0, np.complex128)  # T/2 samples; even indices are symbol centres
        self._ys0 = 0  # T/2 index of _ys[0]
        self._nsym = 0  # symbols decided in this burst
        self._theta = self._omega = 0.0  # carrier phase (rad) and its change per symbol
        self._k8 = 0  # lattice point of the last symbol, eighths of a turn
        self._diff: list[int] = []  # training: +1 no change, -1 reversal, per symbol
        self._p = -1  # symbol index where the conditioning pattern starts
        self._desc = Descrambler()
        self._reversals = False
        self._low = 0
        self._amp = 1.0
        self._state = "train"

    def _timing(self, first: bool = False) -> None:
        """Fold new samples into the symbol-rate line of |y|^2 and pull the sampling grid towards it."""
        a = self._c_upto - self._y0
        seg = self._y[a:]
        if seg.size:
            n = self._c_upto + np.arange(seg.size)
            line = np.exp(-2j * np.pi * ((n * self.baud) % self.rate) / self.rate)
            c = complex(np.sum(np.abs(seg) ** 2 * line)) * self._gain**2
            self._C = c if first else 0.7 * self._C + c
            self._c_upto += seg.size
        T = self._sps
        tau = (-cmath.phase(self._C) / (2 * math.pi)) * T  # symbol centres at tau + k T
        if first:
            t = tau + math.ceil((self._start + 2 - tau) / T) * T
            self._tnext = t
            self._half = 0
            return
        centre = self._tnext + (T / 2 if self._half else 0.0)
        err = ((tau - centre) / T + 0.5) % 1.0 - 0.5
        self._tnext += (0.5 if self._nsym < 100 else 0.1) * err * T

    # --- symbols ------------------------------------------------------------------------------------
    def _half_samples(self, t_end: int) -> None:
        """Interpolate the baseband at the T/2 grid up to absolute sample time ``t_end``."""
        step = self._sps / 2
        n = int(math.floor((t_end - 2 - self._tnext) / step)) + 1
        if n <= 0:
            return
        t = self._tnext + step * np.arange(n)
        i = np.floor(t).astype(np.int64)
        mu = t - i
        j = i - self._y0
        y = self._y
        ym1, y0, y1, y2 = y[j - 1], y[j], y[j + 1], y[j + 2]
        # the cubic through the four neighbours (Lagrange), in Horner form
        c1 = y1 - ym1 / 3 - y0 / 2 - y2 / 6
        c2 = (ym1 + y1) / 2 - y0
        c3 = (y2 - ym1) / 6 + (y0 - y1) / 2
        v = y0 + mu * (c1 + mu * (c2 + mu * c3))
        self._ys = np.concatenate((self._ys, v * self._gain))
        self._tnext += n * step
        self._half = (self._half + n) % 2

    def _symbols(self, out: list[np.ndarray]) -> None:
        """Equalise and decide every symbol whose equaliser window is complete."""
        K = EQ_HALF
        first_c = 2 * self._nsym - self._ys0  # index in _ys of the next symbol's centre
        if first_c < K:  # the first symbols of a burst: pad the window's past with zeros
            self._ys = np.concatenate((np.zeros(K - first_c, np.complex128), self._ys))
            self._ys0 -= K - first_c
            first_c = K
        n = (self._ys.size - K - 1 - first_c) // 2 + 1
        if n <= 0:
            return
        win = np.lib.stride_tricks.sliding_window_view(self._ys, 2 * K + 1)[first_c - K: first_c - K + 2 * n: 2]
        z = win @ self._eq
        nsym0 = self._nsym
        data_from = self._p + SEG4_SYMBOLS if self._p >= 0 else -1
        theta, omega, k8, q = self._theta, self._omega, self._k8, self._q
        a1, a2 = PLL_ACQUIRE if nsym0 < 200 else PLL_TRACK
        ks = [0] * n
        errs = np.empty(n, np.complex128)
        rots = np.empty(n, np.complex128)
        low, amp, end = self._low, self._amp, -1
        mags = np.abs(z).tolist()  # equalised: echoes make the raw samples' amplitude swing
        zl = z.tolist()
        pi = math.pi
        for i in range(n):
            rot = cmath.exp(-1j * theta)
            zz = zl[i] * rot
            a = cmath.phase(zz)
            if nsym0 + i >= data_from >= 0:
                kk = round(a / q)
                e = a - kk * q
                k8 = (kk * round(q / (pi / 4))) % 8
            else:
                kk = round(a / pi)
                e = a - kk * pi
                k8 = (4 * kk) % 8
            ks[i] = k8
            errs[i] = zz - cmath.exp(1j * (k8 * pi / 4))
            rots[i] = rot
            theta += a1 * e + omega
            omega += a2 * e
            if mags[i] < END_LEVEL * amp:
                low += 1
                if low >= END_SYMBOLS and self._p >= 0:
                    end = max(i - END_SYMBOLS + 1, 0)  # the low ones of the block before are out already
                    break
            else:
                low = 0
                amp = 0.99 * amp + 0.01 * mags[i]
        self._low, self._amp = low, amp
        self._theta, self._omega = theta % (2 * pi), omega
        if end >= 0:
            ks = ks[:end]
        elif self._reversals:  # adapting on anything else would let the equaliser invent a pattern out of noise
            zz = z * rots
            if nsym0 + n > LS_FROM and (data_from < 0 or nsym0 + n <= data_from):
                # training: least squares over the blocks so far (forgetting), pulled towards the taps in use
                A = win * rots[:, None]
                self._R = LS_FORGET * self._R + A.conj().T @ A
                self._r = LS_FORGET * self._r + A.conj().T @ (zz - errs)
                delta = LS_RIDGE * float(np.trace(self._R).real) / (2 * K + 1) + 1e-12
                self._eq = np.linalg.solve(self._R + delta * np.eye(2 * K + 1), self._r + delta * self._eq)
            else:
                # data: block LMS on the decision errors, rotated back to the equaliser's output
                g = (errs * np.conj(rots))[:, None] * np.conj(win)
                self._eq -= LMS_STEP * g.mean(axis=0) / (2 * K + 1)
        k = np.array([self._k8] + ks, np.int64)
        d8 = (k[1:] - k[:-1]) % 8
        self._k8 = int(k[-1])
        self._nsym += len(ks)
        if self._p < 0:
            self._diff.extend((1 - 2 * (d8 // 4 % 2)).tolist())
            if not self._reversals and len(self._diff) >= 24:
                self._reversals = bool(np.convolve(self._diff, np.ones(24), "valid").min() <= -22)
            self._align()
        if self._p >= 0:
            self._bits(nsym0, d8, out)
        drop = 2 * self._nsym - self._ys0 - K - 1
        if drop > 0:
            self._ys = self._ys[drop:]
            self._ys0 += drop
        if end >= 0:
            self.events.append("carrier_down")
            self.trained = self._reversals = False
            self._state = "done"

    def _align(self) -> None:
        """Find the end of the reversals and the start of the conditioning pattern in the decisions."""
        d = np.array(self._diff, np.int64)
        if not self._reversals:
            if d.size > GIVE_UP:  # not V.27ter: wait quietly for the carrier to drop or the level to jump
                self._state = "done"
            return
        need = ALIGN_ALT + ALIGN_PAT
        if d.size < need + 40:
            if d.size > SEG4_SYMBOLS + 200:
                self._fail()
            return
        pat = np.correlate(d[ALIGN_ALT:], self._cond, "valid")  # candidates p = ALIGN_ALT + i
        alt = -np.convolve(d, np.ones(ALIGN_ALT), "valid")[: pat.size]  # reversals before p
        score = pat + alt
        best = int(np.argmax(score))
        if score[best] >= need - 2 * ALIGN_MAX_ERR:
            self._p = ALIGN_ALT + best
            self.trained = True
            self.events.append("trained")
            self._diff = []
        elif d.size > SEG4_SYMBOLS + 200:
            self._fail()

    def _fail(self) -> None:
        self.events.append("train_failed")
        self._state = "done"
        self._reversals = False

    def _bits(self, nsym0: int, d8: np.ndarray, out: list[np.ndarray]) -> None:
        """Data bits of the symbols from segment 5 on (segment 5 only primes the descrambler)."""
        s5 = self._p + SEG4_SYMBOLS
        idx = nsym0 + np.arange(d8.size)
        sel = idx >= s5
        if not sel.any():
            return
        bits = self._inv[d8[sel]].reshape(-1)
        data = self._desc.run(bits)
        skip = max(0, (s5 + SEG5_SYMBOLS - int(idx[sel][0])) * self._bps)
        if skip < data.size:
            out.append(data[skip:])

    def _carrier_detect(self, power: np.ndarray, t0: int) -> int:
        """Carrier on/off from the pieces' power (with hysteresis), and bursts starting over noise.

        Returns the absolute sample time where the carrier went off in this block, or -1.
        """
        off_at = -1
        for j, pw in enumerate(power.tolist()):
            if (pw >= self._on) if not self.carrier else (pw < self._off):
                self._run += 1
                if self._run >= (OFF_PIECES if self.carrier else ON_PIECES):
                    self.carrier = not self.carrier
                    self._run = self._jump = 0
                    if self.carrier and self._state in ("idle", "done"):
                        self._state, self._start = "wait", t0 + (j - ON_PIECES) * SUB
                    elif not self.carrier:
                        off_at = t0 + (j + 1) * SUB
                continue
            self._run = 0
            if not self.carrier or self.trained or self._state == "wait" or self._reversals:
                continue
            # a burst starting over noise (or after a failed or finished one): a rise well above the level we know
            if pw > JUMP * self._level:
                self._jump += 1
                if self._jump >= ON_PIECES:
                    self._state, self._start = "wait", t0 + (j - ON_PIECES) * SUB
                    self._jump = 0
            else:
                self._jump = 0
                if self._state == "done":
                    self._level += 0.1 * (pw - self._level)
        return off_at

    # --- the block ----------------------------------------------------------------------------------
    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed one block; return the data bits decoded in it.

        Parameters
        ----------
        x : ndarray, shape (block,), int16 or float, linear PCM on the int16 scale

        Returns
        -------
        bits : ndarray, shape (n_bits,), uint8, 0 or 1, line order
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"V27terReceiver.process: expected an int16 or float ndarray, got {got}")
        if x.shape != (self.block,):
            raise DspError(f"V27terReceiver.process: expected shape ({self.block},), got {x.shape}")
        self.events = []
        t0 = self._t - self._pleft.size  # where the first piece completed in this block began
        power = self._front_end(x.astype(np.float64))
        out: list[np.ndarray] = []
        off_at = self._carrier_detect(power, t0)
        if self._state == "wait" and self._t - self._start >= WAIT_SAMPLES:
            self._begin()
        if self._state == "train":
            self._timing()
            self._half_samples(self._t if off_at < 0 else off_at)
            self._symbols(out)
        if off_at >= 0:
            if self.trained:
                self.events.append("carrier_down")
            elif self._state == "train" and self._reversals:  # a training that stopped half way
                self.events.append("train_failed")
            self.trained = self._reversals = False
            self._state = "idle"
        return np.concatenate(out) if out else np.zeros(0, np.uint8)
