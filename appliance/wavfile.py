"""A-law WAV files (WAVE_FORMAT_ALAW, 8 kHz, 1 or 2 channels): a streaming writer for the recorder, a strict
reader, and the repair of a file a crash or a full disk cut short.

The writer lays out a fixed 58-byte header, the conventional one for non-PCM WAV::

    0  'RIFF' <riff size>  'WAVE'
    12 'fmt ' 18  tag=6 channels rate=8000 byte_rate block_align=channels bits=8 cbSize=0
    38 'fact' 4   <samples per channel>
    50 'data' <data size>
    58 audio bytes (interleaved for stereo), one pad byte at close if the size is odd

The header goes to the file when it is opened; audio is buffered and written every
``FLUSH_EVERY_S`` seconds of audio, each time with the sizes patched in place, so a
file whose process is killed is readable up to the last flush (at most a second
short) even before ``repair_alaw_wav`` makes it exact at the next start.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from dsp.wavio import WAVE_FORMAT_ALAW, WavInfo, parse_wav  # noqa: F401  (WavInfo, parse_wav re-exported)

from .atomicfile import replace_atomically
from .errors import ProtocolError

RATE = 8000
FLUSH_EVERY_S = 1.0

_HEADER = struct.Struct("<4sI4s4sIHHIIHHH4sII4sI")
HEADER_SIZE = _HEADER.size  # 58
_RIFF_SIZE_AT = 4
_FACT_AT = 46
_DATA_SIZE_AT = 54


def _header(channels: int, n_samples: int, data_size: int, riff_size: int) -> bytes:
    return _HEADER.pack(
        b"RIFF", riff_size, b"WAVE",
        b"fmt ", 18, WAVE_FORMAT_ALAW, channels, RATE, RATE * channels, channels, 8, 0,
        b"fact", 4, n_samples,
        b"data", data_size,
    )


def _frame_bytes(frames: np.ndarray | bytes | bytearray | memoryview, channels: int) -> bytes:
    """Validate one block of A-law codes and return it as interleaved bytes."""
    if isinstance(frames, (bytes, bytearray, memoryview)):
        if channels != 1:
            raise ValueError(f"raw bytes are accepted for mono only; this file has {channels} channels, "
                             f"pass a uint8 array of shape ({channels}, n)")
        return bytes(frames)
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 2 \
            or frames.shape[0] != channels:
        got = f"{frames.dtype} array of shape {frames.shape}" if isinstance(frames, np.ndarray) \
            else type(frames).__name__
        raise ValueError(f"A-law frames must be a uint8 array of shape ({channels}, n), got {got}")
    # (channels, n) -> (n, channels) in C order is the interleaved layout on disk
    return frames.T.tobytes() if channels > 1 else frames.tobytes()


def _write_all(fd: int, data: bytes | bytearray | memoryview, at: int | None = None) -> None:
    view = memoryview(data)
    try:
        while view:
            n = os.write(fd, view) if at is None else os.pwrite(fd, view, at)
            view = view[n:]
            if at is not None:
                at += n
    finally:
        view.release()


def _seal(fd: int, data_at: int, size: int, block_align: int, fact_at: int | None) -> int:
    """Make the file behind ``fd`` a whole WAV of the first ``size`` data bytes there (rounded down to whole
    frames): cut what follows, add the pad byte an odd size needs (or, when even that byte finds no room on a
    full disk, drop the last sample), patch the RIFF, fact and data sizes. Returns the data size kept."""
    size -= size % block_align
    os.ftruncate(fd, data_at + size)
    if size & 1:
        try:
            _write_all(fd, b"\x00", data_at + size)
        except OSError:
            size -= block_align  # an odd size is mono: one sample less, and no pad byte to write
            os.ftruncate(fd, data_at + size)
    _write_all(fd, struct.pack("<I", data_at - 8 + size + (size & 1)), _RIFF_SIZE_AT)
    _write_all(fd, struct.pack("<I", size), data_at - 4)
    if fact_at is not None:
        _write_all(fd, struct.pack("<I", size // block_align), fact_at)
    return size


class AlawWavWriter:
    """Streaming A-law WAV writer, cheap enough to be called every 20 ms per recording.

    Parameters
    ----------
    path : str or os.PathLike
        File to create (truncated if it exists); the header is written at once.
    channels : int
        1 (mono) or 2 (stereo, e.g. caller left and agent right).

    Notes
    -----
    Audio is kept in a buffer and written every ``FLUSH_EVERY_S`` of audio, with the
    three size fields then rewritten by ``os.pwrite``: a write system call and two
    small in-place writes a second, never an fsync (``close`` fsyncs, off the tick).
    A write that fails (``OSError``: a full disk) propagates; ``abort`` then closes the
    file valid with the audio that reached it.
    """

    def __init__(self, path: str | os.PathLike, channels: int = 1) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels!r}")
        self.path = os.fspath(path)
        self.channels = channels
        self._data_size = 0  # bytes accepted by write()
        self._on_disk = 0  # of those, bytes that reached the file
        self._buf = bytearray()
        self._flush_bytes = int(FLUSH_EVERY_S * RATE) * channels
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(self._fd, _header(channels, 0, 0, HEADER_SIZE - 8))
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise

    @property
    def n_samples(self) -> int:
        """Samples per channel written so far."""
        return self._data_size // self.channels

    @property
    def duration_s(self) -> float:
        """Seconds of audio written so far."""
        return self.n_samples / RATE

    @property
    def file_size(self) -> int:
        """Bytes the file has (header, audio that reached it, pad byte once closed)."""
        return HEADER_SIZE + self._on_disk + (self._on_disk & 1 if self.closed else 0)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, frames: np.ndarray | bytes) -> None:
        """Append A-law codes.

        Parameters
        ----------
        frames : ndarray, shape (channels, n), uint8, A-law codes; or bytes (mono only)

        Raises
        ------
        OSError
            When the buffered audio could not be written (e.g. ENOSPC); what fitted stays in the file.
        """
        if self._fd is None:
            raise ValueError(f"{self.path}: write to a closed A-law WAV writer")
        raw = _frame_bytes(frames, self.channels)
        self._buf += raw
        self._data_size += len(raw)
        if len(self._buf) >= self._flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the buffered audio and patch the sizes to it (no fsync). OSError propagates, the bytes that
        were written counted and dropped from the buffer."""
        if self._fd is None:
            return
        done = 0
        view = memoryview(self._buf)
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        finally:
            view.release()
            del self._buf[:done]
            self._on_disk += done
        self._patch()

    def _patch(self) -> None:
        size = self._on_disk - self._on_disk % self.channels
        fd = self._fd
        os.pwrite(fd, struct.pack("<I", HEADER_SIZE - 8 + size), _RIFF_SIZE_AT)
        os.pwrite(fd, struct.pack("<I4sI", size // self.channels, b"data", size), _FACT_AT)

    def close(self) -> None:
        """Write what is buffered, pad to even length, patch the sizes, fsync and close. Idempotent.

        If the last write fails (OSError: a full disk) the file is closed as by ``abort`` and the error raised."""
        if self._fd is None:
            return
        try:
            self.flush()
        except OSError:
            self.abort()
            raise
        fd, self._fd = self._fd, None
        try:
            self._data_size = _seal(fd, HEADER_SIZE, self._on_disk, self.channels, _FACT_AT)
            self._on_disk = self._data_size
            os.fsync(fd)
        finally:
            os.close(fd)

    def abort(self) -> None:
        """Close after a failed write: the audio that reached the file stays, in whole frames, with the header
        patched to it; the buffer is dropped and nothing else written (a full disk has no room). Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._buf.clear()
        try:
            self._data_size = self._on_disk = _seal(fd, HEADER_SIZE, self._on_disk, self.channels, _FACT_AT)
            try:
                os.fsync(fd)
            except OSError:
                pass  # the sizes are in the page cache; a full disk may refuse the flush of other blocks
        finally:
            os.close(fd)

    def __enter__(self) -> "AlawWavWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Repaired:
    """What ``repair_alaw_wav`` changed: the data size the header claimed, the size kept (whole frames of the
    bytes actually in the file) and the channel count."""

    header_bytes: int
    data_bytes: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.data_bytes / self.channels / RATE


def repair_alaw_wav(path: str | os.PathLike, channels: int = 1) -> Repaired | None:
    """Make an A-law WAV cut short (a killed process, a full disk) valid: its sizes from the bytes there.

    A file whose RIFF, fact and data sizes agree with its length is left alone (None).
    Otherwise the data chunk becomes every whole frame after its header (a half
    frame at the end is cut), an odd size gets its pad byte, and the three sizes are
    patched. A file shorter than the 58-byte header (killed while opening it) becomes
    an empty WAV of ``channels`` channels.

    Returns
    -------
    Repaired or None

    Raises
    ------
    ProtocolError
        For a file that is not a RIFF/WAVE file with a fmt chunk before its data chunk (not the recorder's).
    """
    name = os.fspath(path)
    fd = os.open(name, os.O_RDWR | os.O_CLOEXEC)
    try:
        length = os.fstat(fd).st_size
        head = os.pread(fd, 4096, 0)
        if length < HEADER_SIZE and (b"RIFF".startswith(head[:4]) or head.startswith(b"RIFF")):
            os.ftruncate(fd, 0)
            _write_all(fd, _header(channels, 0, 0, HEADER_SIZE - 8), 0)
            os.fsync(fd)
            return Repaired(0, 0, channels)
        data_at, claimed, block_align, chans, fact_at = _layout(head, name)
        riff = struct.unpack_from("<I", head, _RIFF_SIZE_AT)[0]
        fact = struct.unpack_from("<I", head, fact_at)[0] if fact_at is not None else None
        whole = claimed + (claimed & 1)
        if (data_at + whole == length and riff == length - 8 and claimed % block_align == 0
                and (fact is None or fact == claimed // block_align)):
            return None
        kept = _seal(fd, data_at, length - data_at, block_align, fact_at)
        os.fsync(fd)
        return Repaired(claimed, kept, chans)
    finally:
        os.close(fd)


def _layout(head: bytes, name: str) -> tuple[int, int, int, int, int | None]:
    """(data offset, data size claimed, block align, channels, fact value offset or None) from a WAV's start."""
    def bad(msg: str) -> ProtocolError:
        return ProtocolError(f"{name}: {msg}")

    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise bad("not a RIFF/WAVE file; cannot repair it")
    pos, block_align, chans, fact_at = 12, None, None, None
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"fmt " and pos + 8 + 16 <= len(head):
            chans = struct.unpack_from("<H", head, pos + 10)[0]
            block_align = struct.unpack_from("<H", head, pos + 20)[0]
        elif cid == b"fact" and size >= 4:
            fact_at = pos + 8
        elif cid == b"data":
            if not block_align:
                raise bad("no fmt chunk (or block align 0) before the data chunk; cannot repair it")
            return pos + 8, size, block_align, chans, fact_at
        pos += 8 + size + (size & 1)
    raise bad("no data chunk header in the first 4096 bytes; cannot repair it")


def read_alaw_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an A-law WAV file strictly.

    Returns
    -------
    codes : ndarray, shape (channels, n), uint8, A-law codes
    rate : int, samples per second (always 8000)

    Raises
    ------
    ProtocolError
        Naming the file and the violation: not RIFF/WAVE, missing or truncated chunk,
        format tag other than 6, bits other than 8, block align != channels, rate != 8000.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        blob = f.read()
    info = parse_wav(blob, name)
    return alaw_codes(info, name), info.rate


def alaw_codes(info: WavInfo, name: str) -> np.ndarray:
    """Check that ``info`` describes 8 kHz 8-bit A-law and return its codes, shape (channels, n), uint8."""
    def bad(msg: str) -> ProtocolError:
        return ProtocolError(f"{name}: {msg}")

    if info.format_tag != WAVE_FORMAT_ALAW:
        raise bad(f"format tag {info.format_tag} is not A-law ({WAVE_FORMAT_ALAW})")
    if info.bits != 8:
        raise bad(f"{info.bits} bits per sample, A-law needs 8")
    if info.channels not in (1, 2):
        raise bad(f"{info.channels} channels, 1 or 2 allowed")
    if info.block_align != info.channels:
        raise bad(f"block align {info.block_align} is not the channel count {info.channels}")
    if info.rate != RATE:
        raise bad(f"sample rate {info.rate} Hz is not {RATE} Hz")
    codes = np.frombuffer(info.data, dtype=np.uint8)
    return codes.reshape(-1, info.channels).T.copy()


def write_alaw_wav(path: str | os.PathLike, codes: np.ndarray | bytes) -> None:
    """Write a whole A-law WAV file atomically (temp file in the same folder, fsync, ``os.replace``).

    Parameters
    ----------
    codes : ndarray, shape (channels, n), uint8, A-law codes; or bytes (mono)
    """
    path = os.fspath(path)
    channels = 1 if isinstance(codes, (bytes, bytearray, memoryview)) else \
        (codes.shape[0] if isinstance(codes, np.ndarray) and codes.ndim == 2 else 0)
    if channels not in (1, 2):
        _frame_bytes(codes, 1)  # raises with the shape named
        raise ValueError(f"A-law codes must have 1 or 2 channels, got {channels}")
    def write(tmp: str) -> None:
        with AlawWavWriter(tmp, channels) as w:
            w.write(codes)

    replace_atomically(path, write, suffix=".wav")
