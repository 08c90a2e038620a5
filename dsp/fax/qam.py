"""Shared pieces of the 2400-baud QAM fax modem (ITU-T V.29): signal space, scrambler, pulse shape, slicer.

Everything here is stateless or carries its state explicitly, so the
transmitter and the receiver of ``dsp.fax.v29`` (and tests) share one
definition of the line code.

Signal space (V.29 §2.3, Tables 1 and 2). A signal element is an absolute
phase index ``p`` (0..7, in steps of 45 degrees) and an amplitude bit ``q1``:
at 0/90/180/270 degrees the relative amplitude is 3 (q1 = 0) or 5 (q1 = 1), at
45/135/225/315 degrees it is sqrt(2) or 3 sqrt(2). Data set the phase
*change* from the previous element through Table 1 (bits Q2 Q3 Q4, Gray
coded); 9600 bit/s sends Q1 Q2 Q3 Q4 per symbol, 7200 sends Q2 Q3 Q4 with
Q1 = 0, 4800 sends Q2 Q3 with Q4 = not (Q2 xor Q3) (only the 90-degree
changes, amplitude 3).
"""

from __future__ import annotations

import numpy as np

from dsp.fax import modemargs
from dsp.fax.modemargs import rrc

__all__ = ["BAUD", "CARRIER_HZ", "RATES", "BITS_PER_SYMBOL", "POINTS", "DPHASE", "PHASE_BITS", "SEG1", "SEG2",
           "SEG3", "SEG4", "RATE", "TX_BLOCK", "SYMBOLS_PER_BLOCK", "BETA", "SPAN", "T_SYM", "NPH", "L2",
           "scramble", "descramble", "encode_symbols", "decode_symbols",
           "pn_bits", "training_symbols", "rrc", "Slicer", "shaping_matrix", "matched_bank", "matched_output",
           "mean_energy"]

BAUD = 2400.0
CARRIER_HZ = 1700.0
RATES = (9600, 7200, 4800)
BITS_PER_SYMBOL = {9600: 4, 7200: 3, 4800: 2}

# POINTS[q1, p]: the element of absolute phase index p (45-degree steps) and amplitude bit q1
_AMP = np.array([[3.0, np.sqrt(2.0)], [5.0, 3.0 * np.sqrt(2.0)]])  # [q1, p odd]
POINTS = np.array([[_AMP[q, p & 1] * np.exp(1j * np.pi * p / 4.0) for p in range(8)] for q in range(2)])

# Table 1/V.29: phase change (45-degree steps) for Q2 Q3 Q4 read as the number 4 Q2 + 2 Q3 + Q4
DPHASE = np.array([1, 0, 2, 3, 6, 7, 5, 4], np.int64)
PHASE_BITS = np.argsort(DPHASE)  # inverse: phase change -> 4 Q2 + 2 Q3 + Q4

SCRAMBLER_TAPS = (18, 23)  # 1 + x^-18 + x^-23
SEG1, SEG2, SEG3, SEG4 = 48, 128, 384, 48  # training segment lengths, symbols (V.29 §3.3)


# (q1, p) of the training elements, per rate
_A = (0, 4)
_B = {9600: (1, 7), 7200: (0, 7), 4800: (0, 6)}
_C = (0, 0)
_D = {9600: (1, 3), 7200: (0, 3), 4800: (0, 2)}


def pn_bits(n: int) -> np.ndarray:
    """The segment-3 bits: 0101010 (the generator's initial state goes out first), then ``b[k] = b[k-6] ^ b[k-7]``.

    Returns
    -------
    b : ndarray, shape (n,), uint8
    """
    b = np.zeros(n + 7, np.uint8)
    b[:7] = [0, 1, 0, 1, 0, 1, 0]
    for k in range(7, n):
        b[k] = b[k - 6] ^ b[k - 7]
    return b[:n]


def training_symbols(bit_rate: int) -> tuple[np.ndarray, int]:
    """Segments 1 to 3 as complex elements and the phase index of the last one (for segment 4's encoding).

    The training sequence (V.29 §3.3) precedes the data of every burst:

    * segment 1: 48 symbol intervals without energy;
    * segment 2: 128 alternations A B A B ..., A = amplitude 3 at 180 degrees (the
      absolute phase reference), B depends on the rate (9600: 3 sqrt(2) at 315,
      7200: sqrt(2) at 315, 4800: 3 at 270);
    * segment 3: 384 elements C or D after the bits of the generator
      1 + x^-6 + x^-7 started from 0101010 (0 sends C = 3 at 0 degrees, 1 sends D:
      9600: 3 sqrt(2) at 135, 7200: sqrt(2) at 135, 4800: 3 at 90); the
      generator's initial state 0101010 is the first seven bits sent;
    * segment 4 (not included here: it is data to the modem): 48 symbols of
      scrambled binary ones, differentially encoded from the last element of
      segment 3; the data follow without a break.

    The elements and the generator's order were checked against spandsp's
    transmitter (tests/peers/spandsp_v29.py) as well as the text.

    Returns
    -------
    s : ndarray, shape (560,), complex128, in units of the signal space (A = -3); p_last : int
    """
    bit_rate = modemargs.check_bit_rate(bit_rate, RATES, "V.29")
    a, b = POINTS[_A], POINTS[_B[bit_rate]]
    c, d = POINTS[_C], POINTS[_D[bit_rate]]
    seg2 = np.tile([a, b], SEG2 // 2)
    pn = pn_bits(SEG3)
    seg3 = np.where(pn == 1, d, c)
    p_last = _D[bit_rate][1] if pn[-1] else _C[1]
    return np.concatenate((np.zeros(SEG1, complex), seg2, seg3)), p_last


def scramble(bits: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Self-synchronising scrambler 1 + x^-18 + x^-23: ``out[n] = in[n] ^ out[n-18] ^ out[n-23]``.

    The recursion only reaches 18 bits back, so 18 bits at a time are one
    vectorised step.

    Parameters
    ----------
    bits : ndarray, shape (n,), uint8 0/1, line order
    state : ndarray, shape (23,), uint8, the last 23 output bits, oldest first

    Returns
    -------
    out : ndarray, shape (n,), uint8; new_state : ndarray, shape (23,), uint8
    """
    n = bits.size
    buf = np.concatenate((state, np.zeros(n, np.uint8)))
    for i in range(0, n, 18):
        j = min(i + 18, n)
        buf[23 + i:23 + j] = bits[i:j] ^ buf[5 + i:5 + j] ^ buf[i:j]
    return buf[23:], buf[-23:].copy()


def descramble(bits: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``scramble``: ``out[n] = in[n] ^ in[n-18] ^ in[n-23]`` (state: the last 23 inputs)."""
    buf = np.concatenate((state, bits.astype(np.uint8)))
    n = bits.size
    return buf[23:] ^ buf[5:5 + n] ^ buf[:n], buf[-23:].copy()


def encode_symbols(bits: np.ndarray, bit_rate: int, phase: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Scrambled bits -> signal elements, differentially from absolute phase index ``phase``.

    Parameters
    ----------
    bits : ndarray, shape (n_symbols * bits_per_symbol,), uint8, line order (first bit is Q1, or Q2 below 9600)
    bit_rate : int, 9600, 7200 or 4800
    phase : int, absolute phase index (0..7) of the element before the first

    Returns
    -------
    q1 : ndarray, shape (n_symbols,), int64; p : ndarray, shape (n_symbols,), int64; last phase index : int
    """
    k = BITS_PER_SYMBOL[bit_rate]
    g = bits.reshape(-1, k).astype(np.int64)
    if bit_rate == 9600:
        q1, code = g[:, 0], 4 * g[:, 1] + 2 * g[:, 2] + g[:, 3]
    elif bit_rate == 7200:
        q1, code = np.zeros(len(g), np.int64), 4 * g[:, 0] + 2 * g[:, 1] + g[:, 2]
    else:
        q1, code = np.zeros(len(g), np.int64), 4 * g[:, 0] + 2 * g[:, 1] + (1 - (g[:, 0] ^ g[:, 1]))
    p = (phase + np.cumsum(DPHASE[code])) % 8
    return q1, p, int(p[-1]) if p.size else int(phase)


def decode_symbols(q1: np.ndarray, p: np.ndarray, bit_rate: int, phase: int) -> tuple[np.ndarray, int]:
    """Inverse of ``encode_symbols``: decided elements -> scrambled bits (uint8, line order), last phase index."""
    prev = np.concatenate(([phase], p[:-1]))
    code = PHASE_BITS[(p - prev) % 8]
    q2, q3, q4 = code >> 2 & 1, code >> 1 & 1, code & 1
    if bit_rate == 9600:
        g = np.stack((q1, q2, q3, q4), axis=1)
    elif bit_rate == 7200:
        g = np.stack((q2, q3, q4), axis=1)
    else:
        g = np.stack((q2, q3), axis=1)
    return g.reshape(-1).astype(np.uint8), int(p[-1]) if p.size else int(phase)


class Slicer:
    """Nearest allowed element of a rate's signal space by a table lookup on a grid (cheap on Python scalars).

    ``cell(z)`` gives the grid cell of a complex point; ``point[cell]``,
    ``q1[cell]`` and ``p[cell]`` are the decided element. The grid step
    (``STEP`` = 1/8 of the unit of the signal space) only moves decisions for
    points within 1/16 of a decision boundary, where noise decides anyway.
    """

    STEP = 0.125
    HALF = 7.0  # the grid covers -7 .. 7 on both axes; beyond it, the edge cell decides

    def __init__(self, bit_rate: int):
        q1 = [0, 1] if bit_rate == 9600 else [0]
        ps = range(8) if bit_rate != 4800 else (0, 2, 4, 6)
        cand = [(q, p) for q in q1 for p in ps]
        pts = np.array([POINTS[q, p] for q, p in cand])
        self.n = int(round(2 * self.HALF / self.STEP))
        ax = -self.HALF + (np.arange(self.n) + 0.5) * self.STEP
        grid = ax[np.newaxis, :] + 1j * ax[:, np.newaxis]  # [row = imag, col = real]
        best = np.argmin(np.abs(grid.reshape(-1, 1) - pts[np.newaxis, :]), axis=1)
        self.point = [complex(pts[b]) for b in best]
        self.q1 = [cand[b][0] for b in best]
        self.p = [cand[b][1] for b in best]
        self.energy = float(np.mean(np.abs(pts) ** 2))
        self.weak = 0.15 * float(np.min(np.abs(pts))) ** 2  # |z|^2 below this: no signal element


# --- pulse shape: square-root raised cosine at 8000 samples/s ---------------------------------------------------

RATE = 8000
TX_BLOCK = 160
SYMBOLS_PER_BLOCK = 48  # 160 samples * 2400 / 8000
BETA = 0.25
SPAN = 8  # the pulse reaches SPAN symbols either side of its centre


def shaping_matrix() -> np.ndarray:
    """G (160, 48 + 2 SPAN): block samples from the block's symbols and the 2 SPAN before them (delay SPAN)."""
    i = np.arange(TX_BLOCK)[:, np.newaxis] * (SYMBOLS_PER_BLOCK / TX_BLOCK)
    j = np.arange(SYMBOLS_PER_BLOCK + 2 * SPAN)[np.newaxis, :]
    t = i - (j - 2 * SPAN) - SPAN
    return np.where(np.abs(t) <= SPAN, rrc(t, BETA), 0.0)


def mean_energy(bit_rate: int) -> float:
    """Mean energy of the rate's signal elements (signal-space units squared)."""
    pts = POINTS[:1 if bit_rate != 9600 else 2, ::1 if bit_rate != 4800 else 2]
    return float(np.mean(np.abs(pts) ** 2))


T_SYM = RATE / BAUD  # 10/3 samples a symbol
NPH = 64  # fractional-delay phases of the matched filter
L2 = int(np.ceil(SPAN * T_SYM))  # the matched filter reaches L2 samples either side


def matched_bank() -> np.ndarray:
    """(NPH + 1, 2 L2) square-root raised cosine taps for output instants ``n0 + ph / NPH`` (unit DC gain)."""
    j = np.arange(-L2 + 1, L2 + 1)[np.newaxis, :]
    f = np.arange(NPH + 1)[:, np.newaxis] / NPH
    t = (f - j) / T_SYM
    h = np.where(np.abs(t) <= SPAN, rrc(t, BETA), 0.0)
    return h / h[0].sum()


_BANK = matched_bank()
_J = np.arange(-L2 + 1, L2 + 1)


def matched_output(bb: np.ndarray, base: int, times: np.ndarray) -> np.ndarray:
    """The matched filter's output at sample instants ``times`` (floats, absolute; resolution 1/NPH sample).

    Parameters
    ----------
    bb : ndarray, shape (n,), complex, the line signal mixed down to baseband; bb[0] is sample ``base``
    times : ndarray, shape (m,), float, each with L2 samples of ``bb`` either side

    Returns
    -------
    y : ndarray, shape (m,), complex
    """
    n0 = np.floor(times).astype(np.int64)
    ph = np.rint((times - n0) * NPH).astype(np.int64)
    return np.einsum("ij,ij->i", bb[(n0 - base)[:, np.newaxis] + _J], _BANK[ph])
