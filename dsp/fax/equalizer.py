"""The V.29 receiver's training and tracking: segment-2 detection and timing, the T/2-spaced adaptive
equaliser (least-squares training, then decision-directed tracking), Gardner's timing detector.

Acquisition (``alternations``, ``symbol_timing``, ``acquire``): segment 2's
alternations are a line at the carrier and two at +-1200 Hz from it; the two
side lines give the symbol timing, the turn of the alternations per symbol
the carrier offset, and a correlation with the known segment 3 its start.

Training (``train``) solves for the taps in one step: segment 3 of the V.29
training is a known sequence, so the taps that best map the received T/2
samples onto it are a small least-squares problem (``N_TAPS`` unknowns, a
few hundred equations). That converges where an LMS would need thousands of
symbols, and it fixes the carrier phase and the line's distortion together.
A residual carrier frequency shows as a phase ramp of the equalised symbols
against the reference; its slope corrects the estimate and the solve is
repeated.

Data (``Tracker``): the taps filter a whole block of symbols at once (one
matrix product); a tight loop on Python complex scalars then removes the
remaining carrier phase (a second-order phase-locked loop), decides each
symbol by table lookup (``dsp.fax.qam.Slicer``) and records its error; the
taps take one normalised block-LMS step per block from those errors.
"""

from __future__ import annotations

import cmath

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dsp.fax.qam import Slicer

__all__ = ["N_TAPS", "CENTRE", "alternations", "gardner", "symbol_timing", "acquire", "train", "Tracker"]

N_TAPS = 40  # T/2 taps: 20 symbol periods; 28 before the symbol's own sample (delayed echoes), 12 after
CENTRE = 28  # the tap on the symbol's own sample at the start
RIDGE = 1e-3  # least-squares regularisation, relative to the mean tap energy


def windows(yc: np.ndarray, n_sym: int) -> np.ndarray:
    """The (n_sym, N_TAPS) equaliser inputs of consecutive symbols: windows of ``yc`` starting 2 apart."""
    return sliding_window_view(yc, N_TAPS)[: 2 * n_sym: 2]


def train(y2: np.ndarray, first: int, ref: np.ndarray, omega: float) -> tuple[np.ndarray, float, float]:
    """Least-squares taps that map the T/2 samples ``y2`` onto the known symbols ``ref``.

    Parameters
    ----------
    y2 : ndarray, shape (n,), complex, T/2 samples; even indices fall on symbol instants
    first : int, symbol index (y2 index / 2) of ``ref[0]``
    ref : ndarray, shape (n_ref,), complex, the symbols sent, in signal-space units
    omega : float, carrier frequency offset estimate, radians per symbol

    Returns
    -------
    w : ndarray, shape (N_TAPS,), complex; omega : float, refined; mse : float, error power / symbol power
    """
    k = np.arange(y2.size)
    for _ in range(3):
        yc = y2 * np.exp(-0.5j * omega * k)
        start = 2 * first - CENTRE
        w_in = windows(yc[start:], ref.size)
        gram = w_in.conj().T @ w_in
        gram += RIDGE * np.real(np.trace(gram)) / N_TAPS * np.eye(N_TAPS)
        w = np.linalg.solve(gram, w_in.conj().T @ ref)
        z = w_in @ w
        # residual phase ramp: the equalised symbols against the reference, a straight line fit
        ph = np.unwrap(np.angle(z * ref.conj()))
        slope = np.polyfit(np.arange(ref.size), ph, 1)[0]
        omega += slope
        if abs(slope) < 1e-5:
            break
    mse = float(np.mean(np.abs(z - ref) ** 2) / np.mean(np.abs(ref) ** 2))
    return w, omega, mse


class Tracker:
    """Decision-directed equaliser, carrier phase loop and slicer for data symbols.

    Parameters
    ----------
    w : ndarray, shape (N_TAPS,), complex, the trained taps
    slicer : Slicer of the rate
    """

    MU = 0.01  # normalised block-LMS step per symbol's worth of error
    PLL_P = 0.05  # phase loop: proportional gain (radians per radian of error)
    PLL_I = 0.001  # phase loop: integral gain (frequency, radians per symbol per radian)

    def __init__(self, w: np.ndarray, slicer: Slicer):
        self.w = w.astype(complex)
        self.s = slicer
        self.psi = 0.0  # carrier phase correction, radians
        self.freq = 0.0  # residual carrier frequency, radians per symbol
        self.weak = 0  # consecutive symbols far weaker than the signal space

    def run(self, yc: np.ndarray, n_sym: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Equalise, derotate and decide ``n_sym`` symbols, then adapt the taps.

        Parameters
        ----------
        yc : ndarray, shape (>= 2 n_sym + N_TAPS - 2,), complex, T/2 samples, the first window's start first

        Returns
        -------
        cells : ndarray, shape (n_sym,), int64, slicer cells; weak : ndarray, shape (n_sym,), bool,
            symbols far below the signal space (the carrier going); z : equalised, derotated symbols
        """
        win = windows(yc, n_sym)
        z = (win @ self.w).tolist()
        s = self.s
        half, inv, n = s.HALF, 1.0 / s.STEP, s.n
        point = s.point
        psi, freq, p_gain, i_gain = self.psi, self.freq, self.PLL_P, self.PLL_I
        low = s.weak
        cells = [0] * n_sym
        rots = [0j] * n_sym
        out = [0j] * n_sym
        weak = [False] * n_sym
        rot = cmath.exp(-1j * psi)
        for k in range(n_sym):
            q = z[k] * rot
            gx = int((q.real + half) * inv)
            gy = int((q.imag + half) * inv)
            gx = 0 if gx < 0 else (n - 1 if gx >= n else gx)
            gy = 0 if gy < 0 else (n - 1 if gy >= n else gy)
            c = gy * n + gx
            d = point[c]
            cells[k] = c
            rots[k] = rot
            out[k] = q
            e2 = d.real * d.real + d.imag * d.imag
            weak[k] = q.real * q.real + q.imag * q.imag < low
            err = (q.imag * d.real - q.real * d.imag) / e2  # sine of the phase error
            freq += i_gain * err
            psi += p_gain * err + freq
            rot = cmath.exp(-1j * psi)
        self.psi, self.freq = psi % (2 * np.pi), freq
        # block LMS: the error seen at the equaliser's output (before derotation) against each window
        d_arr = np.array([point[c] for c in cells])
        r = np.array(rots)
        e = d_arr * r.conj() - np.array(z)
        power = float(np.mean(np.abs(win) ** 2)) * N_TAPS + 1e-9
        self.w += (self.MU / power) * (win.conj().T @ e)
        return np.array(cells, np.int64), np.array(weak), np.array(out)



def alternations(y: np.ndarray) -> bool:
    """True when 64 T/2 samples are segment 2: carrier and +-1200 Hz lines hold most of the energy."""
    if y.size < 64:
        return False
    quarter = np.array([1, -1j, -1, 1j])
    e = y.size * float(np.sum(np.abs(y) ** 2)) + 1e-30
    rp = abs(np.sum(y * np.resize(quarter, y.size))) ** 2
    rm = abs(np.sum(y * np.resize(quarter.conj(), y.size))) ** 2
    dc = abs(np.sum(y)) ** 2
    return (rp + rm) / e > 0.08 and (rp + rm + dc) / e > 0.8


def symbol_timing(y: np.ndarray, t: np.ndarray, t_sym: float) -> float:
    """A symbol instant (samples, modulo ``t_sym``) from matched-filter samples ``y`` at times ``t`` of segment 2.

    The alternations are lines at +-1/(2T) from the carrier; their phases turn
    in opposite senses as the timing moves, so the phase of the product of
    one with the conjugate of the other is 2 pi times the timing in symbols.
    """
    y0 = y - y.mean()
    rot = np.exp(-1j * np.pi * t / t_sym)
    return float(np.angle(np.sum(y0 * rot.conj()) * np.conj(np.sum(y0 * rot))) / (2 * np.pi) * t_sym)


def acquire(y2: np.ndarray, n_reg: int, ab: np.ndarray, seg3: np.ndarray):
    """Carrier offset, segment 3's start and the trained taps from symbol-aligned T/2 samples.

    Parameters
    ----------
    y2 : ndarray, shape (n,), complex, T/2 samples from the alternation region on; even ones on symbol instants
    n_reg : int, symbols of y2 known to be alternations
    ab : ndarray, shape (2,), complex, elements A and B; seg3 : ndarray, shape (384,), complex, segment 3

    Returns
    -------
    (j3, w, omega, mse) or None : segment 3's first symbol index in y2 / 2, the taps, the carrier offset
        (radians per symbol) and the training error; None when y2 is too short
    """
    # the alternations repeat every 2 symbols: their turn over 2, then over 16 symbols, is the carrier offset
    s = y2[: 2 * n_reg: 2]
    omega = np.angle(np.sum(s[2:] * s[:-2].conj())) / 2.0
    s = s * np.exp(-1j * omega * np.arange(s.size))
    if s.size > 24:
        omega += np.angle(np.sum(s[16:] * s[:-16].conj())) / 16.0
    # segment 3 starts where the received symbols best match it and the 16 alternations before it. The region
    # lies in segment 2 (or up to 32 symbols before, in silence), so segment 3 starts 160 or fewer symbols
    # after it; the alternations tell the true start from one a generator period (127) later.
    sym = y2[::2] * np.exp(-1j * omega * np.arange((y2.size + 1) // 2))
    ref = np.concatenate((np.tile(ab, 8), seg3[:128]))
    ref = ref - ref.mean()
    lo, hi = max(n_reg - 4, 16), min(164, sym.size - seg3.size - 16)
    if hi <= lo:
        return None
    j3 = lo + int(np.argmax(np.abs(np.correlate(sym[lo - 16:hi + 128], ref, "valid"))))
    # train on segment 3 and up to 48 alternations before it (the last of them is B)
    first = max(j3 - 48, (CENTRE + 1) // 2)
    n_ab = j3 - first
    tail = np.resize(ab, n_ab + n_ab % 2)[-n_ab:] if n_ab else np.zeros(0, complex)
    w, omega, mse = train(y2, first, np.concatenate((tail, seg3)), omega)
    return j3, w, omega, mse


def gardner(y: np.ndarray) -> float:
    """Gardner's timing error over T/2 samples ``y`` (even ones on symbol instants), normalised by their power.

    Positive when the instants are early. Blind to the carrier phase, so it
    needs neither decisions nor the equaliser, whose taps it leaves alone.
    """
    n = (y.size - 1) // 2
    e = np.real(y[1:2 * n:2].conj() * (y[0:2 * n - 1:2] - y[2:2 * n + 1:2]))
    return float(np.mean(e)) / (float(np.mean(np.abs(y) ** 2)) + 1e-30)
