"""A-law WAV files (WAVE_FORMAT_ALAW, 8 kHz, 1 or 2 channels): a streaming writer for the recorder and a strict reader.

The writer lays out a fixed 58-byte header, the conventional one for non-PCM WAV::

    0  'RIFF' <riff size>  'WAVE'
    12 'fmt ' 18  tag=6 channels rate=8000 byte_rate block_align=channels bits=8 cbSize=0
    38 'fact' 4   <samples per channel>
    50 'data' <data size>
    58 audio bytes (interleaved for stereo), one pad byte at close if the size is odd

Sizes are patched in place every ``PATCH_EVERY_S`` seconds of audio, so a file cut
short by a crash of the process stays readable up to the last patch.
"""

from __future__ import annotations

import os
import struct
import numpy as np

from dsp.wavio import WAVE_FORMAT_ALAW, WavInfo, parse_wav  # noqa: F401  (WavInfo, parse_wav re-exported)

from .atomicfile import replace_atomically
from .errors import ProtocolError

RATE = 8000
PATCH_EVERY_S = 5.0

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


class AlawWavWriter:
    """Streaming A-law WAV writer, cheap enough to be called every 20 ms per recording.

    Parameters
    ----------
    path : str or os.PathLike
        File to create (truncated if it exists).
    channels : int
        1 (mono) or 2 (stereo, e.g. caller left and agent right).

    Notes
    -----
    Writes are buffered; nothing is fsynced until ``close()``. Every 5 s of audio the
    buffer is flushed and the three size fields are rewritten with ``os.pwrite``, which
    leaves the stream position alone.
    """

    def __init__(self, path: str | os.PathLike, channels: int = 1) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels!r}")
        self.path = os.fspath(path)
        self.channels = channels
        self._data_size = 0
        self._patched_size = 0
        self._patch_bytes = int(PATCH_EVERY_S * RATE) * channels
        self._f = open(self.path, "wb")
        self._f.write(_header(channels, 0, 0, HEADER_SIZE - 8))

    @property
    def n_samples(self) -> int:
        """Samples per channel written so far."""
        return self._data_size // self.channels

    @property
    def duration_s(self) -> float:
        """Seconds of audio written so far."""
        return self.n_samples / RATE

    @property
    def closed(self) -> bool:
        return self._f.closed

    def write(self, frames: np.ndarray | bytes) -> None:
        """Append A-law codes.

        Parameters
        ----------
        frames : ndarray, shape (channels, n), uint8, A-law codes; or bytes (mono only)
        """
        if self._f.closed:
            raise ValueError(f"{self.path}: write to a closed A-law WAV writer")
        raw = _frame_bytes(frames, self.channels)
        self._f.write(raw)
        self._data_size += len(raw)
        if self._data_size - self._patched_size >= self._patch_bytes:
            self._patch(pad=False)

    def _patch(self, pad: bool) -> None:
        self._f.flush()
        size = self._data_size
        riff = HEADER_SIZE - 8 + size + (size & 1 if pad else 0)
        fd = self._f.fileno()
        os.pwrite(fd, struct.pack("<I", riff), _RIFF_SIZE_AT)
        os.pwrite(fd, struct.pack("<I", size // self.channels), _FACT_AT)
        os.pwrite(fd, struct.pack("<I", size), _DATA_SIZE_AT)
        self._patched_size = size

    def close(self) -> None:
        """Pad to even length, patch the sizes, fsync and close. Idempotent."""
        if self._f.closed:
            return
        try:
            if self._data_size & 1:
                self._f.write(b"\x00")
            self._patch(pad=True)
            os.fsync(self._f.fileno())
        finally:
            self._f.close()

    def __enter__(self) -> "AlawWavWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
