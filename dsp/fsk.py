"""Bell 202 FSK for caller ID: async framing, a phase-continuous modulator, a streaming many-channel receiver.

Bell 202 (GR-30, YD/T 1277) sends 1200 bit/s, mark (1) at 1200 Hz and space
(0) at 2200 Hz, bytes asynchronously: a start bit (0), 8 data bits LSB first, a
stop bit (1). How the receiver works is in ``FskReceiver``'s docstring.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided
from scipy import signal

from appliance.errors import DspError
from dsp.levels import dbm0_to_amplitude
from dsp.tones import to_int16

__all__ = ["BELL202_MARK_HZ", "BELL202_SPACE_HZ", "BELL202_BAUD", "async_frame", "fsk_modulate", "FskReceiver"]

BELL202_MARK_HZ = 1200.0
BELL202_SPACE_HZ = 2200.0
BELL202_BAUD = 1200.0


def async_frame(data: bytes, stop_bits: int = 1) -> np.ndarray:
    """Bits of ``data`` framed for an async line: per byte a 0, 8 data bits LSB first, ``stop_bits`` ones.

    Returns
    -------
    bits : ndarray, shape (len(data) * (9 + stop_bits),), uint8, 0 or 1
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DspError(f"async_frame: data must be bytes, got {type(data).__name__}")
    if int(stop_bits) < 1:
        raise DspError(f"async_frame: stop_bits must be >= 1, got {stop_bits!r}")
    octets = np.frombuffer(bytes(data), np.uint8)
    frames = np.ones((octets.size, 9 + int(stop_bits)), np.uint8)
    frames[:, 0] = 0
    frames[:, 1:9] = (octets[:, None] >> np.arange(8)) & 1
    return frames.reshape(-1)


def fsk_modulate(bits, level_dbm0: float = -13.5, rate: int = 8000, baud: float = BELL202_BAUD,
                 mark_hz: float = BELL202_MARK_HZ, space_hz: float = BELL202_SPACE_HZ) -> np.ndarray:
    """Phase-continuous binary FSK: bit 1 at ``mark_hz``, bit 0 at ``space_hz``.

    Each sample's phase is the exact integral of the frequency up to its instant,
    so bit boundaries fall between samples (1200 bit/s is 6 2/3 samples a bit at
    8 kHz) without drift; ``baud`` need not divide ``rate`` (tests use 0.5 % off).

    Parameters
    ----------
    bits : array_like, shape (n_bits,), 0 or 1
    level_dbm0 : float, dBm0 of the (constant-envelope) signal
    rate : int, samples per second
    baud : float, bits per second

    Returns
    -------
    x : ndarray, shape (ceil(n_bits * rate / baud),), int16
    """
    b = np.asarray(bits)
    if b.ndim != 1 or not np.all((b == 0) | (b == 1)):
        raise DspError(f"fsk_modulate: bits must be a 1-D sequence of 0 and 1, got shape {b.shape}")
    if not (np.isfinite(baud) and 0 < baud <= rate / 2):
        raise DspError(f"fsk_modulate: baud must be in (0, {rate / 2}] bit/s, got {baud!r}")
    for name, f in (("mark_hz", mark_hz), ("space_hz", space_hz)):
        if not 0 < f < rate / 2:
            raise DspError(f"fsk_modulate: {name} must be in (0, {rate / 2}) Hz, got {f!r}")
    amp = dbm0_to_amplitude(level_dbm0)
    freqs = np.where(b == 1, float(mark_hz), float(space_hz))
    n = int(np.ceil(b.size * rate / baud - 1e-9))
    t = np.arange(n) / rate
    k = np.minimum((t * baud).astype(np.int64), b.size - 1)  # bit in flight at each sample
    cycles_at_bit_start = np.concatenate(([0.0], np.cumsum(freqs) / baud))
    cycles = cycles_at_bit_start[k] + freqs[k] * (t - k / baud)
    return to_int16(amp * np.sin(2.0 * np.pi * np.mod(cycles, 1.0)))


class FskReceiver:
    """Streaming Bell 202 demodulator and async UART for many channels at once.

    Front end, every channel in a fixed set of array operations per block: a
    complex band-pass (``LPF_TAPS`` taps, the ``LPF_HZ`` low-pass moved up to
    the centre frequency) that keeps every (rate / 4000)-th output (4000 a
    second), as one matrix product over short sub-blocks; mixing those outputs
    down to 0 Hz; the delay-line discriminator ``Im(z[m] conj z[m-1])``,
    negative for mark, level-dependent but only its sign matters. Powers and
    sums go per millisecond through small matrix products. Carrier detect, over
    ``POWER_WINDOW_S``: in-band level at least ``min_level_dbm0`` and at least
    ``IN_BAND`` of the whole signal's power (white noise and most speech fail);
    it holds down to ``HYSTERESIS_DB`` lower and ``IN_BAND_HOLD``, and drops at
    once when the last millisecond falls ``DROP_DB`` below the window. A
    window is *steady mark* when the angle of its summed ``z[m] conj z[m-1]``
    (its mean frequency, which noise hardly biases) is within ``MARK_TOL_HZ``
    of the mark's.

    UART: the discriminator and carrier of the last character and a bit stay in
    arrays, so a character is read only once all of it has arrived. Every
    falling edge (mark to space, with carrier) not yet passed is read as if it
    began a character, all at once: the zero crossing placed between two
    outputs, the discriminator interpolated at the 10 bit centres from there.
    Then each channel's chain is followed, all channels per step: the first
    edge after the previous character's stop bit is the next start bit. A
    block costs one small step per character (at most 3 a channel in 20 ms),
    and nothing beyond the front end while no channel has a carrier.

    Each character is reported with the number of steady-mark bits the line
    idled before its start bit: a caller-ID message starts after a long run of
    mark, the bytes within it after a few bits at most.

    Parameters
    ----------
    n_channels : int
    block : int, samples per ``process`` call, a multiple of 1 ms (160 = 20 ms at 8 kHz)
    rate : int, samples per second, a multiple of 4000
    min_level_dbm0 : float, dBm0; weaker signals in the FSK band count as no carrier
    baud, mark_hz, space_hz : float, the modem (Bell 202 by default)
    """

    LPF_TAPS = 21
    LPF_HZ = 700.0  # best of 600-1000 Hz at 5-6 dB S/N; 50 dB down from 1500 Hz (images, aliases)
    POWER_WINDOW_S = 0.008
    IN_BAND = 0.75  # white noise gives 0.45 (0.72 at 99 %), FSK 1.0, FSK at 6 dB S/N above 0.76
    IN_BAND_HOLD = 0.55  # FSK at 3 dB S/N stays above 0.64
    HYSTERESIS_DB = 3.0
    DROP_DB = 10.0
    MARK_TOL_HZ = 120.0  # noise at 6 dB S/N pulls the mean down by <= 100 Hz; Bell 202 allows 12 Hz
    TAIL_BITS = 3  # a stop bit that reads space counts only if the carrier lasts this long after it

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000, min_level_dbm0: float = -43.0,
                 baud: float = BELL202_BAUD, mark_hz: float = BELL202_MARK_HZ, space_hz: float = BELL202_SPACE_HZ):
        n_channels, block, rate = int(n_channels), int(block), int(rate)
        if n_channels < 1:
            raise DspError(f"n_channels must be >= 1, got {n_channels}")
        if rate < 4000 or rate % 4000:
            raise DspError(f"rate must be a multiple of 4000 samples/s, got {rate}")
        M = rate // 4000
        if block < 4 * M or block % (4 * M):
            raise DspError(f"block must be a positive multiple of {4 * M} samples (1 ms), got {block}")
        if not 0 < float(baud) <= 1325.0:
            raise DspError(f"baud must be in (0, 1325] bit/s (3 outputs a bit at 4000/s), got {baud!r}")
        shift = abs(space_hz - mark_hz) / 2.0
        if not 0 < shift < self.LPF_HZ - self.MARK_TOL_HZ or not 0 < min(mark_hz, space_hz) < rate / 2:
            raise DspError(f"mark_hz and space_hz must differ, by less than {2 * (self.LPF_HZ - self.MARK_TOL_HZ):g} "
                           f"Hz, got {mark_hz!r} and {space_hz!r}")
        if not np.isfinite(min_level_dbm0):
            raise DspError(f"min_level_dbm0 must be a finite dBm0 value, got {min_level_dbm0!r}")
        C, N, L = n_channels, block, self.LPF_TAPS
        self.n_channels, self.block, self.rate = C, N, rate
        self._n = n = N // M  # outputs per block
        self._q = Q = 4  # outputs per millisecond
        nq = n // Q
        self._spb = spb = rate / M / float(baud)  # in outputs
        w = 2.0 * np.pi * (mark_hz + space_hz) / 2.0 / rate
        self._mark_sign = -1.0 if mark_hz < space_hz else 1.0  # mark below the centre: negative
        # band-pass and decimation as one matrix over sub-blocks of S inputs (with L - 1 inputs of
        # lead-in each); columns interleave real and imaginary parts so the product views as complex
        S = max(d for d in range(M, min(N, 20) + 1, M) if N % d == 0)  # 20: fastest here
        h = signal.firwin(L, self.LPF_HZ, fs=rate)
        hc = (h * np.exp(1j * w * np.arange(L)))[::-1]
        self._fir = np.zeros((S + L - 1, 2 * (S // M)))
        for k in range(S // M):
            self._fir[k * M:k * M + L, 2 * k] = hc.real
            self._fir[k * M:k * M + L, 2 * k + 1] = hc.imag
        self._xe = np.zeros((C, L - 1 + N))  # input with lead-in
        self._windows = as_strided(self._xe, shape=(C, N // S, S + L - 1),
                                   strides=(self._xe.strides[0], S * self._xe.itemsize, self._xe.itemsize),
                                   writeable=False)
        self._zb = np.zeros((C, n), np.complex128)  # band-pass outputs
        self._lo = np.exp(-1j * w * M * np.arange(n))  # mixes output m (input M m) down to 0 Hz
        self._lo_rot = np.exp(-1j * w * N)
        self._lo_phase = 1.0 + 0.0j
        self._z = np.zeros((C, n + 1), np.complex128)  # mixed down; column 0 the previous block's last
        self._p = np.zeros((C, n), np.complex128)  # z[m] conj z[m-1]
        # per-millisecond sums by matrix products: |z|^2 (scaled by the filter's power gain at
        # +-shift, so a tone reads its level), x^2 (over the same inputs), and p (re, im)
        gain = abs(np.exp(-2j * np.pi * shift / rate * np.arange(L)) @ h) ** 2
        ones = np.kron(np.eye(nq), np.ones((Q, 1)))
        self._sum_zz = np.repeat(ones, 2, axis=0) / gain  # (2n, nq) over interleaved re, im squares
        self._sum_xx = np.kron(np.eye(nq), np.ones((Q * M, 1))) / M
        self._sum_p = np.zeros((2 * n, 2 * nq))
        self._sum_p[0::2, :nq] = ones / gain
        self._sum_p[1::2, nq:] = ones / gain
        self._win = W = max(1, int(round(self.POWER_WINDOW_S * 1000)))
        self._chunks = np.zeros((C, 4, W - 1 + nq))  # |z|^2, x^2, Re p, Im p per millisecond
        self._box = np.zeros((W - 1 + nq, nq))  # window sums over the last W milliseconds
        for k in range(nq):
            self._box[k:k + W, k] = 1.0
        # a tone at min_level_dbm0 mixed down keeps half its amplitude: |z|^2 = amp^2 / 4
        self._on = W * Q * dbm0_to_amplitude(min_level_dbm0) ** 2 / 4.0
        self._hold = self._on * 10.0 ** (-self.HYSTERESIS_DB / 10.0)
        self._drop = W * 10.0 ** (self.DROP_DB / 10.0)
        self._on_ext = np.zeros((C, 1 + nq), bool)
        self._decided = np.ones((C, 1 + nq), bool)
        self._chunk_index = np.arange(1 + nq)
        self._tan_lo, self._tan_hi = np.tan(2.0 * np.pi * (shift + np.array([-1, 1]) * self.MARK_TOL_HZ) / 4000.0)
        self._steady = np.zeros((C, nq), bool)
        self.carrier = np.zeros(C, bool)  # carrier detected at some time during the last block
        self.mark_bits = np.zeros(C, np.int64)  # bits of steady mark up to the end of the last block
        self._car_state = np.zeros(C, bool)  # carrier detect at the end of the last block
        # UART history: a whole character (10 bits), the tail, a margin
        self._tail = int(np.ceil(self.TAIL_BITS * spb))
        self._hist = H = int(np.ceil(10.5 * spb)) + self._tail + 2
        self._f = np.zeros((C, H + n))  # discriminator, mark negative
        self._car = np.zeros((C, H + n), bool)
        self._lnm = np.tile(np.arange(-H, n), (C, 1))  # output index of the last not-steady-mark so far
        self._t = 0  # output index of the current block's first output
        self._pos = np.full(C, H + n, np.int64)  # history index where each channel's edge search resumes
        self._rows = np.arange(C)
        self._offsets = (np.arange(10) + 0.5) * spb  # bit centres after the start edge
        self._weights = 1 << np.arange(8)

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s filters and UART state (a call ended or the port was reused)."""
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        ch = int(ch)
        for buf in (self._xe, self._z, self._chunks, self._f):
            buf[ch] = 0
        self.carrier[ch] = self._car_state[ch] = False
        self.mark_bits[ch] = 0
        self._car[ch] = False
        self._lnm[ch] = self._t - self._hist + np.arange(self._f.shape[1])
        self._pos[ch] = self._f.shape[1]

    def _front_end(self, x: np.ndarray) -> None:
        """Discriminator and carrier of block ``x`` into the last ``n`` columns of the history."""
        C, N, L, n, W = self.n_channels, self.block, self.LPF_TAPS, self._n, self._win
        xe, z, p, ch = self._xe, self._z, self._p, self._chunks
        xe[:, : L - 1] = xe[:, N:]
        xe[:, L - 1:] = x
        np.matmul(self._windows.reshape(-1, self._fir.shape[0]), self._fir,
                  out=self._zb.view(np.float64).reshape(-1, self._fir.shape[1]))
        z[:, 0] = z[:, n]
        np.multiply(self._zb, self._lo * self._lo_phase, out=z[:, 1:])
        self._lo_phase *= self._lo_rot
        self._lo_phase /= abs(self._lo_phase)  # keep the oscillator on the unit circle
        np.multiply(z[:, 1:], np.conj(z[:, :-1]), out=p)
        f = self._f[:, self._hist:]
        if self._mark_sign < 0:
            np.copyto(f, p.imag)
        else:
            np.negative(p.imag, out=f)
        # per-millisecond sums, then sums over the window (column k: the window ending at millisecond k)
        ch[:, :, : W - 1] = ch[:, :, ch.shape[2] - W + 1:]
        new = ch[:, :, W - 1:]
        zv = z[:, 1:].view(np.float64)
        np.matmul(zv * zv, self._sum_zz, out=new[:, 0])
        np.matmul(np.square(x, dtype=np.float64), self._sum_xx, out=new[:, 1])
        new[:, 2:] = (p.view(np.float64) @ self._sum_p).reshape(C, 2, -1)
        box = ch @ self._box  # (C, 4, nq)
        pin, pall, re, im = box[:, 0], box[:, 1], box[:, 2], -self._mark_sign * box[:, 3]
        # |z|^2 of a tone is a quarter of its peak^2, x^2 averages half: in-band fraction = 2 pin / pall.
        # Hysteresis: 'on' sets, not 'hold' clears, else the state carries on (column 0: last block's)
        on, decided = self._on_ext, self._decided
        fading = new[:, 0] * self._drop < pin  # the last millisecond far below the window's mean
        np.greater_equal(pin, self._on, out=on[:, 1:])
        on[:, 1:] &= (2.0 * pin >= self.IN_BAND * pall) & ~fading
        if not (on[:, 1:].any() or self._car_state.any()):
            self.carrier[:] = False
            self._car[:, self._hist:] = False
            self._steady[:] = False
            return
        on[:, 0] = self._car_state
        decided[:, 1:] = on[:, 1:] | (pin < self._hold) | (2.0 * pin < self.IN_BAND_HOLD * pall) | fading
        idx = np.where(decided, self._chunk_index, 0)
        np.maximum.accumulate(idx, axis=1, out=idx)
        chunk = on[self._rows[:, None], idx[:, 1:]]
        self._car_state[:] = chunk[:, -1]
        np.any(chunk, axis=1, out=self.carrier)
        self._car[:, self._hist:] = np.repeat(chunk, self._q, axis=1)
        # mark negative: im <= -tan(lo) re and im >= -tan(hi) re
        np.logical_and(chunk, (re > 0.0) & (im <= -self._tan_lo * re) & (im >= -self._tan_hi * re),
                       out=self._steady)

    def process(self, x: np.ndarray) -> list[tuple[int, int, int]]:
        """Feed one block of every channel; return the characters completed in it.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale

        Returns
        -------
        chars : list of (channel, value, idle_bits), in channel order and time order within a
            channel. ``value`` is the byte 0..255, or -1 when the stop bit was a space (framing
            error); ``idle_bits`` is how many mark bits the line idled before the start bit.
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"FskReceiver.process: expected an int16 or float ndarray, got {got}")
        if x.shape != (self.n_channels, self.block):
            raise DspError(f"FskReceiver.process: expected shape {(self.n_channels, self.block)}, got {x.shape}")
        n, H = self._n, self._hist
        E = H + n
        f, car, lnm = self._f, self._car, self._lnm
        f[:, :H] = f[:, n:]
        car[:, :H] = car[:, n:]
        lnm[:, :H] = lnm[:, n:]
        self._front_end(x)
        t0 = self._t
        self._t += n
        pos = self._pos
        pos -= n
        np.maximum(pos, 1, out=pos)
        lnm[:, H:] = t0 + np.arange(n)  # no steady mark, unless shown below
        self.mark_bits[:] = 0
        out: list[tuple[int, int, int]] = []
        # only channels with a carrier somewhere in the history have anything to read
        live = np.flatnonzero(car.any(axis=1))
        if live.size == 0:
            pos[:] = E
            return out
        R = live.size
        f, car, lnm, p = f[live], car[live], lnm[live], pos[live]
        pos[:] = E
        mark = car & (f < 0.0)
        new = lnm[:, H:]
        new[mark[:, H:] & np.repeat(self._steady[live], self._q, axis=1)] = -1
        new[:, 0] = np.maximum(new[:, 0], lnm[:, H - 1])
        np.maximum.accumulate(new, axis=1, out=new)
        self._lnm[live, H:] = new
        self.mark_bits[live] = np.floor((t0 + n - 1 - new[:, -1]) / self._spb + 0.5)
        # every falling edge (mark to space, with carrier) may start a character; one whose next
        # output is mark again is a glitch (speech makes many)
        space = np.ones((R, E + 1), bool)
        np.greater_equal(f, 0.0, out=space[:, :E])
        space[:, :E] &= car
        fall = np.zeros((R, E + 1), bool)
        fall[:, 1:E] = mark[:, :-1] & space[:, 1:E] & space[:, 2:]
        # next_fall[c, j]: the first edge at index >= j (E if none; column E is the sentinel)
        next_fall = np.where(fall, np.arange(E + 1), E)
        next_fall[:, E] = E
        np.minimum.accumulate(next_fall[:, ::-1], axis=1, out=next_fall[:, ::-1])
        fall[:, :E] &= np.arange(E) >= p[:, None]  # the edges a character may still start on
        c, e = np.nonzero(fall)
        if c.size == 0:
            return out
        # read a character at every such edge at once ...
        f0, f1 = f[c, e - 1], f[c, e]  # either side of the zero crossing
        centre = (e - 1 + f0 / np.minimum(f0 - f1, -1e-300))[:, None] + self._offsets
        i0 = np.floor(centre).astype(np.int64)
        whole = i0[:, 9] + 1 + self._tail < E  # else the rest comes in the next block
        np.minimum(i0, E - 2 - self._tail, out=i0)
        frac = centre - i0
        flat = i0 + (c * E)[:, None]  # flat indices into the (R, E) arrays: take() beats 2-D indexing
        ff = f.reshape(-1)
        bits = ff.take(flat) * (1.0 - frac) + ff.take(flat + 1) * frac < 0.0
        near_flat = flat + (frac >= 0.5)
        # a carrier that ends within the character, or soon after a bad stop bit, abandons it
        cf = car.reshape(-1)
        kept = cf.take(near_flat).all(axis=1) & (bits[:, 9] | cf.take(near_flat[:, 9] + self._tail))
        near = i0[:, [0, 9]] + (frac[:, [0, 9]] >= 0.5)  # start and stop bit centres
        good = kept & ~bits[:, 0]
        # ... then follow each channel's chain: after a character the search resumes at its stop
        # bit, after a start bit that reads mark (a glitch) at that bit's centre, else past the edge
        after = np.where(good, near[:, 1], np.where(kept, near[:, 0], e + 1))
        ids = np.full((R, E + 1), -1, np.int64)
        ids[c, e] = np.arange(c.size)
        succ = np.where(whole, ids[c, next_fall[c, after]], -1)
        rows = np.arange(R)
        cur = ids[rows, next_fall[rows, np.minimum(p, E)]]
        p[:] = E
        taken = []
        while True:
            chans = np.flatnonzero(cur >= 0)
            if chans.size == 0:
                break
            k = cur[chans]
            taken.append(k)
            p[chans] = np.where(whole[k], after[k], e[k])  # an unfinished character is read again
            cur[chans] = succ[k]
        pos[live] = p
        if not taken:
            return out
        k = np.sort(np.concatenate(taken))  # channel order, then time order
        k = k[whole[k] & good[k]]
        if k.size:
            byte = np.where(bits[k, 9], bits[k, 1:9] @ self._weights, -1)
            idle = np.maximum(t0 - H + e[k] - 1 - lnm[c[k], e[k] - 1], 0) / self._spb
            out.extend(zip(live[c[k]].tolist(), byte.tolist(), np.floor(idle + 0.5).astype(np.int64).tolist()))
        return out
