"""Caller-ID receivers: a streaming one for many FXO channels, and one for a whole recording."""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.callerid.messages import CallerId, parse_dtmf_keys, parse_message
from dsp.dtmf import DtmfDetector
from dsp.fsk import FskReceiver


class CallerIdReceiver:
    """Streaming caller-ID receiver for many channels: FSK messages and DTMF caller ID.

    The FSK path is ``FskReceiver``; a message starts with the first byte after at
    least ``MIN_MARK_BITS`` of mark and ends after its declared length and checksum.
    The DTMF path collects keys until 'C' or '#', or gives up ``DTMF_TIMEOUT_S``
    after the last key. Python-level work happens only per received byte or key.
    Feed a line only from seizure to answer: later, keys a caller presses ('123#')
    would read as DTMF caller ID. ``diagnose(ch)`` says why nothing came.

    Parameters
    ----------
    n_channels : int
    block : int, samples per ``process`` call, a multiple of 10 ms (160 = 20 ms at 8 kHz)
    rate : int, samples per second, a multiple of 4000
    min_level_dbm0 : float, dBm0, FSK carrier-detect threshold
    """

    MIN_MARK_BITS = 40  # GR-30 sends 180 (80 for call waiting); bytes within a message idle <= 10
    DTMF_TIMEOUT_S = 1.0

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000, min_level_dbm0: float = -43.0):
        self.n_channels, self.block, self.rate = int(n_channels), int(block), int(rate)
        self.min_level_dbm0 = float(min_level_dbm0)
        self._fsk = FskReceiver(n_channels, block, rate, min_level_dbm0)
        if self.block % (self.rate // 100):
            raise DspError(f"block must be a multiple of {self.rate // 100} samples (10 ms), got {block!r}")
        self._dtmf: DtmfDetector | None = None
        C = self.n_channels
        self._msg: list[bytearray | None] = [None] * C
        self._collecting = np.zeros(C, bool)
        self._keys = [""] * C
        self._key_block = np.zeros(C, np.int64)
        self._keys_pending = np.zeros(C, bool)
        self._blocks = 0
        self._carrier_blocks = np.zeros(C, np.int64)
        self._max_mark = np.zeros(C, np.int64)
        self._armed = np.zeros(C, bool)
        self._failure: list[str | None] = [None] * C

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``: its modem, partial message, keys and diagnostics."""
        self._fsk.reset(ch)
        if self._dtmf is not None:
            self._dtmf.reset(ch)
        self._msg[ch] = None
        self._collecting[ch] = self._keys_pending[ch] = False
        self._keys[ch] = ""
        self._carrier_blocks[ch] = self._max_mark[ch] = 0
        self._armed[ch] = False
        self._failure[ch] = None

    def _fail(self, ch: int, reason: str) -> None:
        self._failure[ch] = reason
        self._msg[ch] = None
        self._collecting[ch] = False

    def _parsed(self, ch: int, parse, data, out: list) -> None:
        try:
            out.append((ch, parse(data)))
            self._failure[ch] = None
        except DspError as exc:
            self._failure[ch] = str(exc)

    def _on_byte(self, ch: int, value: int, idle_bits: int, out: list) -> None:
        msg = self._msg[ch]
        # noise may cut the run just before the start bit: a long run seen since the last byte will do
        armed, self._armed[ch] = self._armed[ch], False
        if idle_bits >= self.MIN_MARK_BITS or (armed and msg is None):
            if msg is not None:
                self._fail(ch, f"truncated message: a new mark preamble after {len(msg)} bytes")
            if value < 0:
                self._fail(ch, "framing error in the first byte after the mark preamble")
                return
            self._msg[ch] = bytearray((value,))
            self._collecting[ch] = True
            return
        if msg is None:
            return  # seizure or noise between messages
        if value < 0:
            self._fail(ch, f"framing error (stop bit missing) in byte {len(msg) + 1} of the message")
            return
        msg.append(value)
        if len(msg) >= 3 and len(msg) == msg[1] + 3:
            self._msg[ch] = None
            self._collecting[ch] = False
            self._parsed(ch, parse_message, bytes(msg), out)

    def _on_key(self, ch: int, key: str, out: list) -> None:
        self._keys[ch] += key
        self._keys_pending[ch] = True
        self._key_block[ch] = self._blocks
        if key in "C#":
            keys, self._keys[ch] = self._keys[ch], ""
            self._keys_pending[ch] = False
            self._parsed(ch, parse_dtmf_keys, keys, out)

    def process(self, x: np.ndarray, keys: list[tuple[int, str]] | None = None) -> list[tuple[int, CallerId]]:
        """Feed one block of every channel; return the caller IDs completed in it.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale
        keys : list of (channel, key), optional: this block's DTMF keys from the runtime's
            own ``DtmfDetector``; without it the receiver runs a detector of its own

        Returns
        -------
        ids : list of (channel, CallerId), in channel order
        """
        fsk = self._fsk
        chars = fsk.process(x)
        if keys is None:
            if self._dtmf is None:
                self._dtmf = DtmfDetector(self.n_channels, self.block, self.rate)
            keys = self._dtmf.process(x)
        self._blocks += 1
        self._carrier_blocks += fsk.carrier
        np.maximum(self._max_mark, fsk.mark_bits, out=self._max_mark)
        out: list[tuple[int, CallerId]] = []
        for ch, value, idle in chars:
            self._on_byte(ch, value, idle, out)
        self._armed |= fsk.mark_bits >= self.MIN_MARK_BITS
        for ch in np.flatnonzero(self._collecting & ~fsk.carrier):
            msg = self._msg[ch]
            want = f" of {msg[1] + 3}" if len(msg) >= 2 else ""
            self._fail(int(ch), f"truncated message: the carrier stopped after {len(msg)}{want} bytes")
        for ch, key in keys:
            self._on_key(int(ch), key, out)
        late = self._keys_pending & ((self._blocks - self._key_block) * self.block > self.DTMF_TIMEOUT_S * self.rate)
        for ch in np.flatnonzero(late):
            self._failure[ch] = f"DTMF caller ID {self._keys[ch]!r} has no end key (C or #)"
            self._keys[ch], self._keys_pending[ch] = "", False
        if len(out) > 1:
            out.sort(key=lambda o: o[0])
        return out

    def diagnose(self, ch: int) -> str:
        """Why channel ``ch`` has produced nothing (yet), most telling reason first."""
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        ch = int(ch)
        if self._failure[ch]:
            return self._failure[ch]
        if self._keys_pending[ch]:
            return f"DTMF caller ID {self._keys[ch]!r} has no end key (C or #)"
        if self._collecting[ch]:
            return f"truncated message: the signal ended after {len(self._msg[ch])} bytes"
        ms = 1000.0 * self._carrier_blocks[ch] * self.block / self.rate
        if self._max_mark[ch] >= self.MIN_MARK_BITS:
            return f"truncated message: {self._max_mark[ch]} mark bits, then no message"
        if ms:
            return (f"no mark preamble: FSK carrier for about {ms:.0f} ms but never "
                    f"{self.MIN_MARK_BITS} mark bits in a row (longest {self._max_mark[ch]})")
        return (f"no carrier: no Bell 202 signal (1200/2200 Hz) above {self.min_level_dbm0:g} dBm0 "
                f"and no DTMF caller ID")


def decode_callerid(x: np.ndarray, rate: int = 8000) -> CallerId:
    """Caller ID from a recording: the first FSK message, else the first DTMF caller ID.

    Parameters
    ----------
    x : ndarray, shape (n_samples,) or (1, n_samples), int16 or float, linear PCM on the int16 scale
    rate : int, samples per second, a multiple of 4000

    Raises DspError with the reason when nothing decodes (no carrier, no mark preamble,
    truncated message, bad checksum, DTMF keys without an end key ...).
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf" or not (
            x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)):
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"decode_callerid: expected an int16 or float array of shape (n_samples,), got {got}")
    block = rate // 50
    x = x.reshape(-1)
    # 0.1 s of silence after the end lets the carrier drop and the last byte finish
    n_blocks = -(-(x.size + rate // 10) // block)
    padded = np.zeros((1, n_blocks * block))
    padded[0, :x.size] = x
    rx = CallerIdReceiver(1, block, rate)
    found = []
    for i in range(n_blocks):
        found += rx.process(padded[:, i * block:(i + 1) * block])
    fsk = [cid for _, cid in found if cid.format != "dtmf"]
    if fsk or found:
        return (fsk or [found[0][1]])[0]
    raise DspError(rx.diagnose(0))
