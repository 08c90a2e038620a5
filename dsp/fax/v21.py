"""V.21 channel 2 FSK (300 bit/s, mark 1650 Hz, space 1850 Hz): modulator and a streaming many-channel receiver.

The T.30 control channel: synchronous bits (HDLC, ``dsp.fax.hdlc``) at 300
bit/s, binary 1 (mark) at 1650 Hz and binary 0 (space) at 1850 Hz, ITU-T
V.21 §2. The modulator is ``dsp.fsk.fsk_modulate`` with V.21's numbers; the
receiver keeps ``dsp.fsk.FskReceiver``'s front end (complex band-pass,
discriminator, carrier detect) and replaces its asynchronous UART by bit
timing recovery for a synchronous stream.
"""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.fsk import FskReceiver, fsk_modulate
from dsp.levels import dbm0_to_amplitude
from dsp.tones import to_int16

__all__ = ["V21_MARK_HZ", "V21_SPACE_HZ", "V21_BAUD", "v21_modulate", "V21Modulator", "V21Receiver"]

V21_MARK_HZ = 1650.0
V21_SPACE_HZ = 1850.0
V21_BAUD = 300.0


def v21_modulate(bits, level_dbm0: float = -13.0, rate: int = 8000) -> np.ndarray:
    """Phase-continuous V.21 channel 2 FSK of ``bits`` (1 at 1650 Hz, 0 at 1850 Hz).

    Parameters
    ----------
    bits : array_like, shape (n_bits,), 0 or 1, line order
    level_dbm0 : float, dBm0 of the constant-envelope signal (T.30 transmitters send -13 .. -6)
    rate : int, samples per second

    Returns
    -------
    x : ndarray, shape (ceil(n_bits * rate / 300),), int16
    """
    return fsk_modulate(bits, level_dbm0, rate, V21_BAUD, V21_MARK_HZ, V21_SPACE_HZ)


class V21Modulator:
    """Streaming V.21 channel 2 transmitter for one channel: queue bits, take blocks; phase runs on across blocks.

    Once the queue runs dry the rest of the block and the blocks after it are
    silence (the carrier stops after the last bit, as T.30 wants after the
    closing flag); bits queued later start on the next block.

    Parameters
    ----------
    level_dbm0 : float, dBm0
    block : int, samples per ``take``
    rate : int, samples per second
    """

    def __init__(self, level_dbm0: float = -13.0, block: int = 160, rate: int = 8000):
        if int(block) < 1:
            raise DspError(f"block must be >= 1 sample, got {block!r}")
        if not np.isfinite(level_dbm0):
            raise DspError(f"level_dbm0 must be a finite dBm0 value, got {level_dbm0!r}")
        self.block, self.rate = int(block), int(rate)
        self._amp = dbm0_to_amplitude(level_dbm0)
        self._queue = np.zeros(0, np.uint8)
        self._pos = 0.0  # bits of the queue's head already sent (fraction of the first bit)
        self._cycles = 0.0  # oscillator phase, cycles

    def put(self, bits) -> None:
        """Queue ``bits`` (array_like, shape (n,), 0 or 1)."""
        b = np.asarray(bits)
        if b.ndim != 1 or (b.size and not np.all((b == 0) | (b == 1))):
            raise DspError(f"V21Modulator.put: bits must be a 1-D sequence of 0 and 1, got shape {b.shape}")
        self._queue = np.concatenate((self._queue, b.astype(np.uint8)))

    @property
    def pending_bits(self) -> int:
        """Bits queued and not yet fully sent."""
        return int(self._queue.size)

    def take(self) -> np.ndarray:
        """The next block: the queued bits' signal, then silence once they are all sent.

        Each sample takes the frequency of the bit in flight at its instant and
        the phase advances by that frequency, so the phase runs on across bits
        and blocks; bit edges fall on samples (26 2/3 samples a bit, jitter
        under 1/26 bit).

        Returns
        -------
        x : ndarray, shape (block,), int16
        """
        N, q = self.block, self._queue
        if not q.size:
            return np.zeros(N, np.int16)
        b = self._pos + np.arange(N) * (V21_BAUD / self.rate)  # bit position of each sample
        k = b.astype(np.int64)
        live = k < q.size
        freqs = np.where(q[np.minimum(k, q.size - 1)] == 1, V21_MARK_HZ, V21_SPACE_HZ) * live
        cyc = self._cycles + np.concatenate(([0.0], np.cumsum(freqs[:-1]))) / self.rate
        out = np.where(live, self._amp * np.sin(2.0 * np.pi * np.mod(cyc, 1.0)), 0.0)
        self._cycles = float(np.mod(cyc[-1] + freqs[-1] / self.rate, 1.0))
        end = self._pos + N * (V21_BAUD / self.rate)
        done = min(int(end), q.size)
        self._queue = q[done:]
        self._pos = end - done if self._queue.size else 0.0
        return to_int16(out)


class V21Receiver(FskReceiver):
    """Streaming V.21 channel 2 demodulator for many channels: blocks of samples in, bits out.

    Front end from ``FskReceiver`` with a band-pass sized for 300 bit/s
    (``LPF_TAPS``, ``LPF_HZ``) and carrier detect over ``POWER_WINDOW_S``.
    Bit timing: a phase accumulator per channel advances 1/13.33 bit per
    discriminator output (4000 a second); every sign change of the
    discriminator (with carrier) is placed between its two outputs and pulls
    the phase towards a bit boundary by ``PLL_GAIN`` of its error; each bit is
    the sign of the discriminator summed over the bit (integrate and dump).
    HDLC flags (two transitions every 8 bits) pull the loop in within the
    first few of T.30's 38 preamble flags. No bits come out without carrier
    (but the bit in hand when the carrier drops counts if over half of it
    came), and the loop restarts on the next carrier.

    Parameters
    ----------
    n_channels : int
    block : int, samples per ``process`` call, a multiple of 1 ms (160 = 20 ms at 8 kHz)
    rate : int, samples per second, a multiple of 4000
    min_level_dbm0 : float, dBm0; weaker signals in the band count as no carrier
    """

    LPF_TAPS = 41
    LPF_HZ = 360.0
    IN_BAND = 0.5
    IN_BAND_HOLD = 0.3
    PLL_GAIN = 0.15

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000, min_level_dbm0: float = -45.0):
        super().__init__(n_channels, block, rate, min_level_dbm0, V21_BAUD, V21_MARK_HZ, V21_SPACE_HZ)
        C = self.n_channels
        self._step = 1.0 / self._spb  # bits per output
        self._phase = np.zeros(C)  # position in the current bit, 0..1
        self._acc = np.zeros(C)  # discriminator summed over the current bit (mark negative)
        self._last = np.zeros(C)  # the previous output of the discriminator
        self._was = np.zeros(C, bool)  # carrier at the previous output
        self._bits = np.zeros((C, int(np.ceil(self._n * self._step)) + 4), np.uint8)
        self._count = np.zeros(C, np.int64)

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s filters and bit timing (a call ended or the port was reused)."""
        super().reset(ch)
        ch = int(ch)
        self._phase[ch] = self._acc[ch] = self._last[ch] = 0.0
        self._was[ch] = False

    def process(self, x: np.ndarray) -> list[np.ndarray]:
        """Feed one block of every channel; return each channel's bits completed in it.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale

        Returns
        -------
        bits : list of n_channels ndarrays, each shape (n_bits,), uint8, 0 or 1 (1 = mark), line order
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"V21Receiver.process: expected an int16 or float ndarray, got {got}")
        if x.shape != (self.n_channels, self.block):
            raise DspError(f"V21Receiver.process: expected shape {(self.n_channels, self.block)}, got {x.shape}")
        H = self._hist
        self._front_end(x)
        f = self._f[:, H:]
        car = self._car[:, H:]
        self._count[:] = 0
        if not (car.any() or self._was.any()):
            return [self._bits[c, :0].copy() for c in range(self.n_channels)]
        phase, acc, last, was, step, gain = self._phase, self._acc, self._last, self._was, self._step, self.PLL_GAIN
        rows = np.arange(self.n_channels)
        for m in range(f.shape[1]):
            fm, cm = f[:, m], car[:, m]
            start = cm & ~was  # a new carrier: the loop starts afresh
            phase[start] = 0.0
            acc[start] = 0.0
            # a sign change between the previous output and this one: where it crossed, in bits ago
            cross = cm & was & ((fm < 0.0) != (last < 0.0))
            if cross.any():
                d = last - fm
                s = np.where(cross, last / np.where(d == 0.0, 1.0, d), 0.0)  # 0..1 of the way from m - 1
                at = phase + s * step  # phase at the crossing
                err = at - np.round(at)  # distance from the nearest bit boundary, -0.5..0.5
                phase -= np.where(cross, gain * err, 0.0)
            phase += step
            acc += np.where(cm, fm, 0.0)
            done = cm & (phase >= 1.0)
            if done.any():
                c = rows[done]
                self._bits[c, self._count[c]] = acc[c] < 0.0
                self._count[c] += 1
                acc[c] = 0.0
                phase[c] -= 1.0
            # the carrier dropped: the bit in hand counts if most of it came (the closing flag's last 0
            # arrives through the filter as the carrier detect lets go)
            ended = was & ~cm & (phase >= 0.5)
            if ended.any():
                c = rows[ended]
                self._bits[c, self._count[c]] = acc[c] < 0.0
                self._count[c] += 1
            phase[~cm] = 0.0
            acc[~cm] = 0.0
            last[:] = fm
            was[:] = cm
        return [self._bits[c, : self._count[c]].copy() for c in range(self.n_channels)]
