"""ITU-T V.29 fax page modem (9600, 7200 and 4800 bit/s QAM at 2400 baud, carrier 1700 Hz).

Every burst is the training of V.29 §3.3 (``dsp.fax.qam.training_symbols``), segment 4 (48 symbols of
scrambled ones), the data, ``TURN_OFF_SYMBOLS`` of scrambled ones, then the carrier stops. The receiver's
equaliser and training are in ``dsp.fax.equalizer``.

Pulse shaping: a square-root raised cosine (roll-off ``BETA`` = 0.25) so that
the receiver's matched square-root filter makes the whole a Nyquist (raised
cosine) pulse: no intersymbol interference on a flat line, and the best
signal-to-noise ratio a linear receiver gets from white noise. A roll-off of
0.25 keeps the spectrum within 1700 +- 1500 Hz, inside the telephone band.
At 8000 samples/s a 20 ms block of 160 samples holds exactly 48 symbols and
40 carrier cycles, so one precomputed (160, 48 + 2 SPAN) matrix shapes a
block and one precomputed carrier table mixes it up.
"""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.fax.modemargs import check_bits, check_modem
from dsp.fax.equalizer import CENTRE, N_TAPS, Tracker, acquire, alternations, gardner, symbol_timing
from dsp.fax.qam import (BETA, BITS_PER_SYMBOL, CARRIER_HZ, L2, POINTS, RATE, RATES, SEG1, SEG2, SEG3, SEG4, SPAN,
                         SYMBOLS_PER_BLOCK, T_SYM, TX_BLOCK, Slicer, decode_symbols, descramble, encode_symbols,
                         matched_output, mean_energy, scramble, shaping_matrix, training_symbols)
from dsp.levels import DBM0_RMS
from dsp.tones import to_int16

__all__ = ["BETA", "TX_BLOCK", "SYMBOLS_PER_BLOCK", "v29_modulate", "v29_demodulate", "V29Transmitter", "V29Receiver"]

TURN_OFF_SYMBOLS = 48  # 20 ms of scrambled ones after the data
GAP_SYMBOLS = 60  # 25 ms of silence between bursts queued back to back

_G = shaping_matrix()
_LO = np.exp(2j * np.pi * CARRIER_HZ / RATE * np.arange(TX_BLOCK))  # 40 whole cycles: the same every block
_ROW_ENERGY = float(np.mean(np.sum(_G * _G, axis=1)))  # mean baseband power per unit symbol energy


class V29Transmitter:
    """Streaming V.29 transmitter for one channel: queue bursts with ``send``, take blocks with ``take``.

    Each burst is the training, segment 4, the data (padded with ones to a
    whole symbol), ``TURN_OFF_SYMBOLS`` of scrambled ones and the pulses'
    tail; bursts queued back to back are ``GAP_SYMBOLS`` (25 ms) apart, so a
    receiver sees the carrier drop. Random data are at ``level_dbm0``; the
    training is within a dB of it.

    Parameters
    ----------
    bit_rate : int, 9600, 7200 or 4800
    level_dbm0 : float, dBm0 of the data signal (T.30 sends -13 .. -6)
    block : int, samples per ``take``
    rate : int, samples per second (8000 only)
    """

    def __init__(self, bit_rate: int = 9600, level_dbm0: float = -13.0, block: int = 160, rate: int = 8000):
        self.bit_rate, self.block, self.rate = check_modem(bit_rate, block, rate, RATES, "V.29")
        if not isinstance(level_dbm0, (int, float, np.integer, np.floating)) or not -60.0 <= level_dbm0 <= 0.0:
            raise DspError(f"level_dbm0 must be between -60 and 0 dBm0, got {level_dbm0!r}")
        power = DBM0_RMS ** 2 * 10.0 ** (level_dbm0 / 10.0)
        # a real passband signal has half the power of its complex envelope
        self._scale = np.sqrt(2.0 * power / (_ROW_ENERGY * mean_energy(self.bit_rate)))
        self._k = BITS_PER_SYMBOL[self.bit_rate]
        self._train, self._p_train = training_symbols(self.bit_rate)
        self._symbols = np.zeros(0, complex)  # elements queued, not yet shaped
        self._hist = np.zeros(2 * SPAN, complex)  # the last 2 SPAN elements shaped
        self._out = np.zeros(0, np.int16)  # samples shaped, not yet taken
        self._scr = np.zeros(23, np.uint8)  # the scrambler's last 23 outputs

    @property
    def busy(self) -> bool:
        """True while a queued burst still has samples to come out of ``take``."""
        return bool(self._symbols.size or self._out.size)

    def send(self, bits) -> None:
        """Queue one burst: training, ``bits`` scrambled, turn-off.

        Parameters
        ----------
        bits : array_like, shape (n_bits,), 0 or 1, line order (n_bits may be 0)
        """
        b = check_bits(bits, "V29Transmitter.send")
        k = self._k
        line = np.concatenate((np.ones(SEG4 * k, np.uint8), b,
                               np.ones(-b.size % k + TURN_OFF_SYMBOLS * k, np.uint8)))
        sb, self._scr = scramble(line, self._scr)
        q1, p, _ = encode_symbols(sb, self.bit_rate, self._p_train)
        gap = np.zeros(GAP_SYMBOLS if self.busy else 0, complex)
        self._symbols = np.concatenate((self._symbols, gap, self._train, POINTS[q1, p], np.zeros(2 * SPAN)))

    def _shape(self) -> np.ndarray:
        """The next 160 samples (48 symbols); a short last group is completed with silence."""
        s = np.zeros(SYMBOLS_PER_BLOCK, complex)
        s[: min(self._symbols.size, SYMBOLS_PER_BLOCK)] = self._symbols[:SYMBOLS_PER_BLOCK]
        self._symbols = self._symbols[SYMBOLS_PER_BLOCK:]
        window = np.concatenate((self._hist, s))
        self._hist = window[-2 * SPAN:]
        # two real products: numpy's complex-by-real matrix product is many times slower
        return to_int16(self._scale * ((_G @ window.real) * _LO.real - (_G @ window.imag) * _LO.imag))

    def take(self) -> np.ndarray:
        """The next block of line signal; zeros when idle.

        Returns
        -------
        x : ndarray, shape (block,), int16
        """
        while self._out.size < self.block and self._symbols.size:
            self._out = np.concatenate((self._out, self._shape()))
        x = np.zeros(self.block, np.int16)
        n = min(self.block, self._out.size)
        x[:n], self._out = self._out[:n], self._out[n:]
        return x


def v29_modulate(bits, bit_rate: int = 9600, level_dbm0: float = -13.0) -> np.ndarray:
    """One whole V.29 burst: training, ``bits``, turn-off, then the carrier stops.

    Parameters
    ----------
    bits : array_like, shape (n_bits,), 0 or 1, line order
    bit_rate : int, 9600, 7200 or 4800
    level_dbm0 : float, dBm0 of the data signal

    Returns
    -------
    x : ndarray, shape (160 * n_blocks,), int16, 8000 samples/s
    """
    tx = V29Transmitter(bit_rate, level_dbm0)
    tx.send(bits)
    out = []
    while tx.busy:
        out.append(tx.take())
    return np.concatenate(out)


_LO_RX = np.exp(-2j * np.pi * CARRIER_HZ / RATE * np.arange(80))  # 17 whole cycles in 80 samples


class V29Receiver:
    """Streaming V.29 receiver for one channel: blocks of line signal in, data bits out.

    Carrier detect: the matched filter's output power over 20 ms against
    ``min_level_dbm0`` (-43, T.30's threshold), off 5 dB lower. Until it
    trains, every 10 ms the receiver tests the last 32 symbols for segment
    2's alternations (nearly all their energy at the carrier and +-1200 Hz
    from it); three passes in a row start the training (``dsp.fax.equalizer``:
    timing from the alternations, carrier offset, segment 3's start,
    least-squares taps). Then ``Tracker`` decides the data and Gardner's
    detector steers the symbol timing. Bits start after segment 4's first 23
    (the descrambler's memory) and stop when the carrier goes (power 6 dB
    under the training's, or four symbols far inside the signal space).

    Parameters
    ----------
    bit_rate : int, 9600, 7200 or 4800
    block : int, samples per ``process`` call (any length works; longer calls are taken 160 at a time)
    rate : int, samples per second (8000 only)
    min_level_dbm0 : float, dBm0; weaker in-band signals count as no carrier

    Attributes
    ----------
    carrier : bool, in-band energy above the threshold
    trained : bool, training recognised, data bits flowing in the current burst
    events : list of str, set by each ``process``: "carrier_up", "trained", "train_failed" and
        "carrier_down" (the last only for a burst that trained)
    log : list of (sample_index, str), every event since ``reset``, "carrier_down" of untrained carriers too
    """

    TIMING_P, TIMING_I = 0.5, 0.02  # timing loop gains, samples per unit of Gardner error per block

    def __init__(self, bit_rate: int = 9600, block: int = 160, rate: int = 8000, min_level_dbm0: float = -43.0):
        self.bit_rate, self.block, self.rate = check_modem(bit_rate, block, rate, RATES, "V.29")
        level = min_level_dbm0
        if not isinstance(level, (int, float, np.integer, np.floating)) or not -70.0 <= level <= -10.0:
            raise DspError(f"min_level_dbm0 must be between -70 and -10 dBm0, got {min_level_dbm0!r}")
        self._on = DBM0_RMS ** 2 * 10.0 ** (level / 10.0) / 2.0  # |y|^2 of an in-band signal at that level
        self._off = self._on * 10.0 ** (-0.5)
        self._k = BITS_PER_SYMBOL[self.bit_rate]
        self._slicer = Slicer(self.bit_rate)
        self._q1_of = np.array(self._slicer.q1, np.int64)
        self._p_of = np.array(self._slicer.p, np.int64)
        train, self._p_last = training_symbols(self.bit_rate)
        self._ab = train[SEG1:SEG1 + 2]
        self._seg3 = train[SEG1 + SEG2:]
        self.reset()

    def reset(self) -> None:
        """Forget everything (filters, timing, equaliser, burst state); wait for a new burst."""
        self.events: list[str] = []
        self.log: list[tuple[int, str]] = []
        self._n = 0
        self._bb = np.zeros(0, complex)
        self._base = 0
        self._t_next = float(L2)
        self._recent = np.zeros(96)  # |y|^2 of the last 96 T/2 samples (20 ms): the carrier's power, any block size
        self._seek_y, self._seek_t = np.zeros(0, complex), np.zeros(0)  # recent matched-filter output, its times
        self._state = "idle"
        self._to_idle()

    @property
    def carrier(self) -> bool:
        return self._state != "idle"

    @property
    def trained(self) -> bool:
        return self._state == "data"

    def _event(self, name: str) -> None:
        self.log.append((self._n, name))
        if name != "carrier_down" or self._state == "data":
            self.events.append(name)

    def _power_of(self, y: np.ndarray) -> float:
        self._recent = np.concatenate((self._recent, np.abs(y) ** 2))[-96:]
        return float(np.mean(self._recent))

    def _to_idle(self) -> None:
        self._holdoff = 96 if self._state == "data" else 0  # T/2 samples: a burst's tail is not a new carrier
        self._state = "idle"
        self._hits = self._unchecked = 0

    def _new_times(self, step: float) -> np.ndarray:
        limit = self._base + self._bb.size - L2 - 2
        n = int(np.floor((limit - self._t_next) / step)) + 1
        if n <= 0:
            return np.zeros(0)
        times = self._t_next + step * np.arange(n)
        self._t_next += step * n
        return times

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed a block of line signal; return the data bits completed in it.

        Parameters
        ----------
        x : ndarray, shape (n,), int16 or float, linear PCM on the int16 scale, 8000 samples/s

        Returns
        -------
        bits : ndarray, shape (n_bits,), uint8, 0 or 1, line order (descrambled)
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf" or x.ndim != 1:
            got = (x.dtype, x.shape) if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"V29Receiver.process: expected a 1-D int16 or float ndarray, got {got}")
        self.events = []
        if x.size > 160:  # the loops (carrier, timing, taps) step once a call: keep calls to 20 ms or less
            parts, events = [], []
            for i in range(0, x.size, 160):
                parts.append(self.process(x[i:i + 160]))
                events += self.events
            self.events = events
            return np.concatenate(parts)
        bb = x.astype(np.float64) * _LO_RX[(self._n + np.arange(x.size)) % 80]
        self._n += x.size
        # drop samples no future output needs; before training keep those of the 400 recent T/2 outputs, as
        # the training is resampled from them
        keep = int(np.floor(self._t_next)) - L2 - 4 - (0 if self._state == "data" else 700) - self._base
        if self._state != "collect" and keep > 0:
            self._bb, self._base = self._bb[keep:], self._base + keep
        self._bb = np.concatenate((self._bb, bb))
        if self._state == "data":
            return self._data()
        times = self._new_times(T_SYM / 2)
        if not times.size:
            return np.zeros(0, np.uint8)
        y = matched_output(self._bb, self._base, times)
        power = self._power_of(y)
        # the last 400 T/2 samples, kept while idle too: segment 2 may have begun before the carrier was seen
        if self._state in ("idle", "seek"):
            self._seek_y = np.concatenate((self._seek_y, y))[-400:]
            self._seek_t = np.concatenate((self._seek_t, times))[-400:]
            self._unchecked += y.size
        if self._state == "idle":
            self._holdoff -= y.size
            if power <= self._on or self._holdoff > 0:
                self._unchecked = 0
                return np.zeros(0, np.uint8)
            self._state = "seek"
            self._event("carrier_up")
            self._unchecked = min(self._unchecked + 48, self._seek_y.size)
        if power < self._off:
            self._event("carrier_down")
            self._to_idle()
            return np.zeros(0, np.uint8)
        # every 48 T/2 samples (10 ms) test the 64 before; three passes in a row: 80 symbols of segment 2
        while self._state == "seek" and self._unchecked >= 48:
            self._unchecked -= 48
            end = self._seek_y.size - self._unchecked
            if end < 64:
                continue
            if not alternations(self._seek_y[end - 64:end]):
                self._hits = 0
                continue
            self._hits += 1
            if self._hits == 1:
                self._region_t0 = float(self._seek_t[end - 64])
            if self._hits >= 3:
                self._state = "collect"
                self._need = self._seek_t[end - 1] + (SEG2 + SEG3 + 24) * T_SYM + L2 + 4
                self._seek_y, self._seek_t = self._seek_y[:end], self._seek_t[:end]
        if self._state == "collect" and self._base + self._bb.size >= self._need:
            return self._acquire()
        return np.zeros(0, np.uint8)

    def _fail(self) -> np.ndarray:
        self._state = "failed"
        self._event("train_failed")
        return np.zeros(0, np.uint8)

    def _acquire(self) -> np.ndarray:
        """Training heard and buffered: timing, frequency, segment 3's start, the taps; then the data so far."""
        yr, tr = self._seek_y, self._seek_t
        sel = tr >= self._region_t0 - 1e-9
        yr, tr = yr[sel], tr[sel]
        t0 = symbol_timing(yr, tr, T_SYM)
        k0 = np.ceil((tr[0] - t0) / T_SYM)
        self._t_next = t0 + k0 * T_SYM
        times = self._new_times(T_SYM / 2)
        y2 = matched_output(self._bb, self._base, times)
        n_reg = int((tr[-1] - times[0]) / T_SYM)  # symbols of the alternation region
        got = acquire(y2, n_reg, self._ab, self._seg3)
        if got is None:
            return self._fail()
        j3, w, omega, mse = got
        if not mse < 0.25:
            return self._fail()
        self.training_mse = mse
        self._power = float(np.mean(np.abs(y2) ** 2))
        self._event("trained")
        self._state = "data"
        self._tracker = Tracker(w, self._slicer)
        self._trate = 0.0
        k_data = j3 + SEG3
        idx = np.arange(2 * k_data - CENTRE, y2.size)
        self._yc = y2[idx] * np.exp(-0.5j * omega * idx)
        self._theta, self._dtheta = 0.5 * omega * y2.size, 0.5 * omega
        self._phase = self._p_last
        self._desc = np.zeros(23, np.uint8)
        self._skip = -(-23 // self._k) * self._k  # the descrambler's first 23 outputs are unknown
        return self._data(fresh=False)

    def _data(self, fresh: bool = True) -> np.ndarray:
        """Decide the symbols whose T/2 samples are in; the bits they carry."""
        ended = False
        if fresh:
            times = self._new_times(T_SYM / 2)
            if times.size:
                y = matched_output(self._bb, self._base, times)
                if self._power_of(y) < max(self._off, 0.25 * self._power):
                    ended = True  # 6 dB down on the training, or below the threshold: the tail, not data
                else:
                    self._yc = np.concatenate(
                        (self._yc, y * np.exp(-1j * (self._theta + self._dtheta * np.arange(y.size)))))
                    self._theta = (self._theta + self._dtheta * y.size) % (2 * np.pi)
        n_sym = (self._yc.size - N_TAPS) // 2 + 1
        bits = np.zeros(0, np.uint8)
        if fresh and not ended:  # symbol timing: Gardner's detector in a second-order loop (no lag at 100 ppm)
            ted = gardner(self._yc)
            self._trate += self.TIMING_I * ted
            self._t_next += self.TIMING_P * ted + self._trate
        if n_sym > 0 and not ended:
            cells, weak, _ = self._tracker.run(self._yc, n_sym)
            self._yc = self._yc[2 * n_sym:]
            # four weak symbols in a row: the carrier has gone; nothing from there on is data
            run = np.convolve(weak.astype(np.int64), np.ones(4, np.int64), "valid")
            if np.any(run == 4):
                cells, ended = cells[: int(np.argmax(run == 4))], True
            sb, self._phase = decode_symbols(self._q1_of[cells], self._p_of[cells], self.bit_rate, self._phase)
            bits, self._desc = descramble(sb, self._desc)
            if self._skip:
                cut = min(self._skip, bits.size)
                bits, self._skip = bits[cut:], self._skip - cut
        if ended:
            self._event("carrier_down")
            self._to_idle()
        return bits


def v29_demodulate(x: np.ndarray, bit_rate: int = 9600, block: int = 160) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Run ``x`` through a fresh ``V29Receiver`` ``block`` samples at a time.

    Returns
    -------
    bits : ndarray, shape (n_bits,), uint8, every burst's data bits in order; log : the receiver's ``log``
    """
    if not isinstance(x, np.ndarray) or x.ndim != 1:
        raise DspError(f"v29_demodulate: expected a 1-D ndarray, got {type(x).__name__}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise DspError(f"v29_demodulate: block must be >= 1 sample, got {block!r}")
    rx = V29Receiver(bit_rate)
    out = [rx.process(x[i:i + block]) for i in range(0, x.size, block)]
    return np.concatenate(out) if out else np.zeros(0, np.uint8), rx.log
