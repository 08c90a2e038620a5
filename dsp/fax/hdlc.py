"""HDLC framing for T.30 control frames (ISO/IEC 13239): flags, bit stuffing, FCS-16, aborts; sans-I/O.

Bits go on the line in time order, each octet least significant bit first.
A frame is ``flag, stuffed(data + FCS), flag``; the flag is 0x7E
(``01111110`` on the line), the transmitter inserts a 0 after any five
consecutive 1s of the frame body, and seven or more 1s in a row abort a
frame. The FCS is the ITU-T CRC-16 (generator x^16 + x^12 + x^5 + 1,
register preset to all ones, processed bit-reversed, ones' complement sent
low octet first, each octet least significant bit first), so a receiver that
runs the CRC over data and FCS together finds the constant ``FCS_GOOD``.
T.30 §5.3 asks for 1 s (+-15 %) of flags before the first frame of a
transmission: ``preamble_flags`` gives how many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.errors import DspError

__all__ = ["FLAG", "FCS_GOOD", "crc16", "fcs16", "stuff", "flags_bits", "preamble_flags", "frame_bits",
           "encode", "abort_bits", "HdlcFrame", "HdlcReceiver"]

FLAG = 0x7E
FCS_GOOD = 0xF0B8  # the register after data and its FCS (before the final complement)
MIN_FRAME_OCTETS = 3  # at least one octet of data and the two of the FCS


def _table() -> np.ndarray:
    """CRC-16 (reflected 0x8408) of every octet value, one step of the byte-wise algorithm."""
    crc = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        crc = np.where(crc & 1, (crc >> 1) ^ 0x8408, crc >> 1)
    return crc.astype(np.uint16)


_TABLE = [int(v) for v in _table()]


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """The CRC register after ``data`` (no final complement): ITU-T CRC-16, bit-reversed, LSB first.

    Parameters
    ----------
    data : bytes
    crc : int, 0..0xFFFF, the register before ``data`` (all ones at the start of a frame)

    Returns
    -------
    crc : int, 0..0xFFFF
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DspError(f"crc16: data must be bytes, got {type(data).__name__}")
    for b in bytes(data):
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def fcs16(data: bytes) -> bytes:
    """The two FCS octets that follow ``data`` in a frame, in line order (low octet first).

    ``fcs16(b"123456789") == b"\\x6e\\x90"`` (CRC-16/X.25 check value 0x906E).
    """
    v = crc16(data) ^ 0xFFFF
    return bytes((v & 0xFF, v >> 8))


def _octet_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes(data), np.uint8), bitorder="little")


def stuff(bits: np.ndarray) -> np.ndarray:
    """Insert a 0 after every run of five 1s of a frame body.

    Parameters
    ----------
    bits : ndarray, shape (n,), uint8, 0 or 1, in line order

    Returns
    -------
    stuffed : ndarray, shape (n + n_inserted,), uint8
    """
    out = []
    ones = 0
    for b in np.asarray(bits, np.uint8).tolist():
        out.append(b)
        ones = ones + 1 if b else 0
        if ones == 5:
            out.append(0)
            ones = 0
    return np.array(out, np.uint8)


def flags_bits(n_flags: int) -> np.ndarray:
    """``n_flags`` flags back to back.

    Returns
    -------
    bits : ndarray, shape (8 * n_flags,), uint8
    """
    if int(n_flags) < 0:
        raise DspError(f"n_flags must be >= 0, got {n_flags!r}")
    return np.tile(_octet_bits(bytes((FLAG,))), int(n_flags))


def preamble_flags(seconds: float = 1.0, bit_rate: float = 300.0) -> int:
    """Flags that last at least ``seconds`` at ``bit_rate`` (T.30: 1 s +- 15 %; 38 flags at 300 bit/s)."""
    if not (np.isfinite(seconds) and seconds >= 0 and np.isfinite(bit_rate) and bit_rate > 0):
        raise DspError(f"preamble_flags: seconds must be >= 0 and bit_rate > 0, got {seconds!r}, {bit_rate!r}")
    return int(np.ceil(seconds * bit_rate / 8.0 - 1e-9))


def frame_bits(data: bytes) -> np.ndarray:
    """One frame body on the line: ``data`` and its FCS, stuffed, without flags.

    Returns
    -------
    bits : ndarray, shape (n,), uint8, 0 or 1
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 1:
        raise DspError(f"frame_bits: data must be non-empty bytes, got {data!r}")
    return stuff(_octet_bits(bytes(data) + fcs16(data)))


def abort_bits() -> np.ndarray:
    """A frame abort: seven 1s (ISO/IEC 13239 §4.4), sent in place of the rest of a frame.

    Returns
    -------
    bits : ndarray, shape (7,), uint8
    """
    return np.ones(7, np.uint8)


def encode(frames, preamble: int = 38, between: int = 1, closing: int = 1) -> np.ndarray:
    """A transmission: ``preamble`` flags, the frames with ``between`` flags between them, ``closing`` flags.

    Parameters
    ----------
    frames : sequence of bytes, each a frame's address, control and information octets (no FCS)
    preamble : int, flags before the first frame (>= 1; T.30 wants 1 s, ``preamble_flags()``)
    between : int, flags between frames (>= 1; one flag closes a frame and opens the next)
    closing : int, flags after the last frame (>= 1)

    Returns
    -------
    bits : ndarray, shape (n_bits,), uint8, in line order
    """
    for name, v in (("preamble", preamble), ("between", between), ("closing", closing)):
        if int(v) < 1:
            raise DspError(f"encode: {name} must be >= 1 flag, got {v!r}")
    parts = [flags_bits(preamble)]
    for i, f in enumerate(frames):
        if i:
            parts.append(flags_bits(between))
        parts.append(frame_bits(f))
    parts.append(flags_bits(closing))
    return np.concatenate(parts)


@dataclass(frozen=True)
class HdlcFrame:
    """A frame found between two flags.

    data : bytes, the octets before the FCS
    fcs_ok : bool, whether the FCS checked
    """

    data: bytes
    fcs_ok: bool


class HdlcReceiver:
    """Bits in, frames out, for one channel; no I/O, no clock.

    Hunts for a flag, then collects unstuffed bits until the next flag. An
    octet-aligned body of at least ``MIN_FRAME_OCTETS`` becomes an
    ``HdlcFrame`` (with ``fcs_ok`` False when the FCS fails); a shorter or
    unaligned one, and a frame cut by seven 1s (abort; the receiver then hunts
    again), are only counted. Counters: ``frames_ok``, ``frames_bad`` (FCS),
    ``runts`` (short or unaligned), ``aborts``; ``flags`` counts every flag
    seen (a caller uses it to tell an HDLC preamble on the line).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to hunting for a flag, counters to zero."""
        self._ones = 0
        self._buf: list[int] | None = None  # None: hunting
        self.frames_ok = self.frames_bad = self.runts = self.aborts = self.flags = 0

    def feed(self, bits) -> list[HdlcFrame]:
        """Take ``bits`` (array_like, shape (n,), 0 or 1, line order); return the frames they complete."""
        b = np.asarray(bits)
        if b.ndim != 1 or (b.size and not np.all((b == 0) | (b == 1))):
            raise DspError(f"HdlcReceiver.feed: bits must be a 1-D sequence of 0 and 1, got shape {b.shape}")
        out: list[HdlcFrame] = []
        ones, buf = self._ones, self._buf
        for bit in b.astype(np.uint8).tolist():
            if bit:
                ones += 1
                if ones == 7:
                    if buf is not None:
                        self.aborts += 1
                    buf = None
                elif buf is not None and ones < 7:
                    buf.append(1)
                continue
            if ones == 6:  # a flag: closes the frame in progress (its 0111111 is in buf) and opens one
                self.flags += 1
                if buf is not None:
                    body = buf[:-7]
                    if body:
                        frame = self._frame(body)
                        if frame is not None:
                            out.append(frame)
                buf = []
            elif ones == 5:
                pass  # a stuffed 0
            elif buf is not None:
                buf.append(0)
            ones = 0
        self._ones, self._buf = ones, buf
        return out

    def _frame(self, body: list[int]) -> HdlcFrame | None:
        if len(body) % 8 or len(body) < 8 * MIN_FRAME_OCTETS:
            self.runts += 1
            return None
        octets = np.packbits(np.array(body, np.uint8), bitorder="little").tobytes()
        ok = crc16(octets) == FCS_GOOD
        if ok:
            self.frames_ok += 1
        else:
            self.frames_bad += 1
        return HdlcFrame(octets[:-2], ok)
