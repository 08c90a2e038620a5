"""ITU-T V.27ter fax page modem (4800 and 2400 bit/s differential PSK): scrambler, shaping and transmitter.

What this module follows of V.27ter:

* carrier 1800 Hz; 4800 bit/s is 1600 baud with tribits Gray coded to phase
  changes 001 0, 000 45, 010 90, 011 135, 111 180, 110 225, 100 270, 101 315
  degrees; 2400 bit/s is 1200 baud with dibits 00 0, 01 90, 11 180, 10 270
  degrees (first bit in time is the left one);
* raised-cosine spectrum with 50 % roll-off split equally between transmitter
  and receiver (a root-raised-cosine pulse here);
* the self-synchronising scrambler 1 + x^-6 + x^-7 with the guard against
  repeating patterns: when the scrambled bit has matched the bit 8, 9 or 12
  places back for 33 bits running, the next one is inverted (``Scrambler``);
* the long synchronising signal without the echo-protection tone (as T.30 uses
  it): 50 symbols of 180-degree reversals, 1074 symbols of the equaliser
  conditioning pattern (0 or 180 degrees as the first bit of each group of
  three bits from the scrambler fed with ones, started from 0011110), 8 symbols
  of scrambled ones; then the data and a turn-off of 20 ms of scrambled ones.

The receiver is ``dsp.fax.v27ter_rx.V27terReceiver`` (re-exported here).
"""

from __future__ import annotations

import math

import numpy as np

from appliance.errors import DspError
from dsp.fax.modemargs import check_bits, check_modem, rrc
from dsp.levels import dbm0_to_amplitude

__all__ = ["CARRIER_HZ", "SEG3_SYMBOLS", "SEG4_SYMBOLS", "SEG5_SYMBOLS", "Scrambler", "Descrambler",
           "V27terTransmitter", "V27terReceiver", "conditioning_pattern", "phase_change_bits", "rrc_pulse"]

CARRIER_HZ = 1800.0
BAUD = {4800: 1600, 2400: 1200}
BITS_PER_SYMBOL = {4800: 3, 2400: 2}
ROLL_OFF = 0.5
SEG3_SYMBOLS = 50  # 180-degree reversals
SEG4_SYMBOLS = 1074  # equaliser conditioning pattern (long train)
SEG5_SYMBOLS = 8  # scrambled ones
TURN_OFF_S = 0.02
GAP_S = 0.025  # silence between bursts queued back to back, so a receiver sees the carrier drop
PULSE_HALF_SPAN = 4  # symbols each side of a pulse's centre
# phase change, in eighths of a turn, of each tribit (first bit most significant) and each dibit
TRIBIT_PHASE = np.array([1, 0, 2, 3, 6, 7, 5, 4], np.int64)
DIBIT_PHASE = np.array([0, 2, 6, 4], np.int64)
CONDITIONING_START = (0, 0, 1, 1, 1, 1, 0)  # scrambler register, newest bit first
GUARD_LIMIT = 33


class Scrambler:
    """V.27ter's self-synchronising scrambler 1 + x^-6 + x^-7 with its guard against repeating patterns.

    ``reg`` holds past scrambled bits, newest in bit 0; ``count`` how many bits
    running matched one of the bits 8, 9 or 12 places back.
    """

    def __init__(self, reg: int = 0) -> None:
        self.reg = int(reg)
        self.count = 0

    def run(self, bits) -> np.ndarray:
        """Scramble ``bits`` (sequence of 0/1, line order); return them scrambled, shape (n,), uint8."""
        reg, count = self.reg, self.count
        out = bytearray(len(bits))
        for i, b in enumerate(bits):
            s = (b ^ (reg >> 5) ^ (reg >> 6)) & 1
            if count >= GUARD_LIMIT:
                s ^= 1
                count = 0
            elif ((reg >> 7) ^ s) & ((reg >> 8) ^ s) & ((reg >> 11) ^ s) & 1:
                count = 0  # differs from all three: no repetition with period 1..4, 6, 8, 9, 12
            else:
                count += 1
            reg = ((reg << 1) | s) & 0xFFF
            out[i] = s
        self.reg, self.count = reg, count
        return np.frombuffer(bytes(out), np.uint8)


class Descrambler:
    """The inverse of ``Scrambler``, self-synchronising after 12 bits; vectorised unless the guard fires."""

    def __init__(self) -> None:
        self.hist = np.zeros(12, np.uint8)  # the last 12 received (scrambled) bits, oldest first
        self.count = 0

    def run(self, s: np.ndarray) -> np.ndarray:
        """Descramble ``s`` (shape (n,), uint8 0/1); return the data bits, shape (n,), uint8."""
        n = s.size
        if n == 0:
            return np.zeros(0, np.uint8)
        h = np.concatenate((self.hist, s.astype(np.uint8)))
        cur = h[12:]
        d = cur ^ h[6:-6] ^ h[5:-7]
        reset = (cur != h[4:-8]) & (cur != h[3:-9]) & (cur != h[:-12])
        # the guard fires only after 33 bits without a reset: check the longest run first
        idx = np.flatnonzero(reset)
        first = idx[0] if idx.size else n
        runs = np.diff(np.concatenate((idx, [n]))) - 1 if idx.size else np.zeros(0, np.int64)
        if self.count + first < GUARD_LIMIT and (runs.size == 0 or runs.max() < GUARD_LIMIT):
            self.count = int(n - 1 - idx[-1]) if idx.size else self.count + n
        else:
            count = self.count
            for i in range(n):
                if count >= GUARD_LIMIT:
                    d[i] ^= 1
                    count = 0
                elif reset[i]:
                    count = 0
                else:
                    count += 1
            self.count = count
        self.hist = h[-12:].copy()
        return d


def phase_change_bits(bits_per_symbol: int) -> np.ndarray:
    """The bits (first in time first) each phase change stands for, shape (8, bits_per_symbol), uint8.

    Indexed by the change in eighths of a turn; at 2400 bit/s the odd eighths never occur (zeros there).
    """
    table = TRIBIT_PHASE if bits_per_symbol == 3 else DIBIT_PHASE
    inv = np.zeros((8, bits_per_symbol), np.uint8)
    for v, ph in enumerate(table):
        inv[ph] = [(v >> (bits_per_symbol - 1 - i)) & 1 for i in range(bits_per_symbol)]
    return inv


def conditioning_pattern() -> np.ndarray:
    """Segment 4's phase changes, in eighths of a turn (0 or 4), shape (SEG4_SYMBOLS,), int64."""
    reg = 0
    for b in CONDITIONING_START[::-1]:
        reg = (reg << 1) | b
    s = Scrambler(reg).run([1] * (3 * SEG4_SYMBOLS))
    return 4 * s[::3].astype(np.int64)


def rrc_pulse(t: np.ndarray, beta: float = ROLL_OFF) -> np.ndarray:
    """Root-raised-cosine pulse at ``t`` symbols from its centre, V.27ter's roll-off by default, float64."""
    return rrc(t, beta)


class _Burst:
    """A queued burst: the training's symbols, then its line bits scrambled and mapped only as ``take`` needs
    them (so queueing a long page costs nothing up front)."""

    def __init__(self, line: np.ndarray, bps: int, train: np.ndarray, phase: int, reg: int, count: int):
        self.line, self.bps, self.phase = line, bps, phase
        self.syms = np.concatenate((train, np.zeros(line.size // bps, np.complex128)))
        self.ready = train.size  # symbols computed
        self.scr = Scrambler(reg)
        self.scr.count = count
        self._table = TRIBIT_PHASE if bps == 3 else DIBIT_PHASE

    def upto(self, k: int) -> np.ndarray:
        """The burst's symbols, shape (n_symbols,), complex128, the first ``k`` (at least) computed."""
        k = min(max(k, self.ready + 64), self.syms.size)  # in chunks, for fewer calls
        if k > self.ready:
            bps, n_train = self.bps, self.syms.size - self.line.size // self.bps
            a, b = (self.ready - n_train) * bps, (k - n_train) * bps
            s = self.scr.run(self.line[a:b].tolist()).astype(np.int64).reshape(-1, bps)
            vals = s[:, 0] * 4 + s[:, 1] * 2 + s[:, 2] if bps == 3 else s[:, 0] * 2 + s[:, 1]
            ph = self.phase + np.cumsum(self._table[vals])
            self.syms[self.ready:k] = np.exp(1j * np.pi / 4 * ph)
            self.phase = int(ph[-1] % 8)
            self.ready = k
        return self.syms


class V27terTransmitter:
    """Streaming V.27ter transmitter for one channel: queue bursts with ``send``, take blocks with ``take``.

    Each burst is the long training (no echo-protection tone), the scrambled
    data and a 20 ms turn-off of scrambled ones, shaped by a root-raised-cosine
    pulse (4 symbols each side) on an 1800 Hz carrier. The data is padded with
    ones to a whole symbol. Bursts queued back to back follow each other with
    a 25 ms gap, each with its own training.

    Parameters
    ----------
    bit_rate : int, 4800 or 2400
    level_dbm0 : float, mean power of the signal in dBm0
    block : int, samples per ``take``
    rate : int, samples per second (8000)
    """

    def __init__(self, bit_rate: int = 4800, level_dbm0: float = -13.0, block: int = 160, rate: int = 8000):
        self.bit_rate, self.block, self.rate = check_modem(bit_rate, block, rate, tuple(BAUD), "V.27ter")
        if not isinstance(level_dbm0, (int, float, np.floating, np.integer)) or not -60.0 <= level_dbm0 <= 0.0:
            raise DspError(f"level_dbm0 must be between -60 and 0 dBm0, got {level_dbm0!r}")
        self.baud = BAUD[self.bit_rate]
        self._bps = BITS_PER_SYMBOL[self.bit_rate]
        g = math.gcd(self.baud, self.rate)
        self._phases = self.rate // g  # distinct pulse phases at the sample instants
        self._g = g
        L = PULSE_HALF_SPAN
        m = np.arange(-L + 1, L + 1)
        frac = np.arange(self._phases) * g / self.rate
        self._taps = rrc_pulse(frac[:, None] + m[None, :])  # (phases, 2L): pulse of symbol k0 - m
        self._m = m
        power = float(np.mean(np.sum(self._taps**2, axis=1)))  # mean |baseband|^2 for unit symbols
        self._scale = dbm0_to_amplitude(float(level_dbm0)) / math.sqrt(power)
        train = np.concatenate((np.full(SEG3_SYMBOLS, 4, np.int64), conditioning_pattern()))
        self._train = np.exp(1j * np.pi / 4 * np.cumsum(train))  # the same for every burst
        self._train_end = int(np.sum(train) % 8)
        scr = Scrambler()
        for b in CONDITIONING_START[::-1]:
            scr.reg = (scr.reg << 1) | b
        scr.run([1] * (3 * SEG4_SYMBOLS))  # the scrambler runs on through segment 4, as the pattern was made
        self._scr_after_train = (scr.reg, scr.count)
        self._bursts: list[_Burst] = []
        self._n = 0  # samples of the head burst already sent
        self._gap = 0  # samples of silence still due before the head burst
        self._t = 0  # samples sent in all, for the carrier's phase

    def send(self, bits) -> None:
        """Queue one burst: training, ``bits`` scrambled, turn-off.

        Parameters
        ----------
        bits : array_like, shape (n_bits,), 0 or 1, line order (n_bits may be 0)
        """
        b = check_bits(bits, "V27terTransmitter.send")
        bps = self._bps
        pad = -b.size % bps
        line = np.concatenate((np.ones(SEG5_SYMBOLS * bps, np.uint8), b,
                               np.ones(pad + int(round(TURN_OFF_S * self.baud)) * bps, np.uint8)))
        self._bursts.append(_Burst(line, bps, self._train, self._train_end, *self._scr_after_train))

    def _length(self, burst: _Burst) -> int:
        """Samples of a burst: until its last pulse has died away."""
        return -(-(burst.syms.size + 2 * PULSE_HALF_SPAN) * self.rate // self.baud)

    @property
    def busy(self) -> bool:
        """True while a queued burst still has samples to come out of ``take``."""
        return bool(self._bursts)

    def take(self) -> np.ndarray:
        """The next block of signal; zeros when idle.

        Returns
        -------
        x : ndarray, shape (block,), int16
        """
        N = self.block
        out = np.zeros(N, np.complex128)
        done = 0
        while done < N and self._bursts:
            if self._gap:
                k = min(N - done, self._gap)
                self._gap -= k
                done += k
                continue
            burst = self._bursts[0]
            total = self._length(burst)
            k = min(N - done, total - self._n)
            n = self._n + np.arange(k)
            num = n * self.baud
            k0 = num // self.rate - PULSE_HALF_SPAN  # the symbol whose centre last passed (pulses start early)
            ph = (num % self.rate) // self._g
            idx = k0[:, None] - self._m[None, :]
            syms = burst.upto(int(k0[-1]) + PULSE_HALF_SPAN)
            ok = (idx >= 0) & (idx < syms.size)
            a = np.where(ok, syms[np.clip(idx, 0, syms.size - 1)], 0.0)
            out[done:done + k] = np.einsum("ij,ij->i", a, self._taps[ph])
            done += k
            self._n += k
            if self._n >= total:
                self._bursts.pop(0)
                self._n = 0
                self._gap = int(GAP_S * self.rate) if self._bursts else 0
        t = self._t + np.arange(N)
        carrier = np.exp(2j * np.pi * ((t * int(CARRIER_HZ)) % self.rate) / self.rate)
        self._t = (self._t + N) % self.rate
        x = np.rint(self._scale * (out * carrier).real)
        return np.clip(x, -32768, 32767).astype(np.int16)


def __getattr__(name: str):
    if name == "V27terReceiver":  # lazily, as v27ter_rx imports this module
        from dsp.fax.v27ter_rx import V27terReceiver

        return V27terReceiver
    raise AttributeError(name)
