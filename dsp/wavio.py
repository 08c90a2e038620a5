"""WAV files in and out for the command lines and the prompt importer (the one place in dsp that does file I/O).

``parse_wav`` reads the RIFF structure held in memory; ``decode_wav`` turns any
common sample format into float channels on the int16 scale: 8-bit unsigned,
16/24/32-bit integer PCM, 32/64-bit float (1.0 = full scale), A-law, mu-law,
plain or WAVE_FORMAT_EXTENSIBLE.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from appliance.atomicfile import write_bytes_atomically
from appliance.errors import AudioFileError, DspError
from dsp.g711 import alaw_decode, ulaw_decode

__all__ = ["WAVE_FORMAT_PCM", "WAVE_FORMAT_FLOAT", "WAVE_FORMAT_ALAW", "WAVE_FORMAT_MULAW",
           "WavInfo", "Wav", "parse_wav", "decode_wav", "read_wav", "read_wav_8k", "write_wav"]

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_FLOAT = 3
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {WAVE_FORMAT_PCM: "pcm", WAVE_FORMAT_FLOAT: "float", WAVE_FORMAT_ALAW: "alaw",
                 WAVE_FORMAT_MULAW: "ulaw"}


@dataclass(frozen=True)
class WavInfo:
    """What ``parse_wav`` found: the fmt fields (the sub-format for EXTENSIBLE) and the data chunk's bytes."""
    format_tag: int
    channels: int
    rate: int
    bits: int
    block_align: int
    data: bytes


def parse_wav(blob: bytes, name: str, *, streaming: bool = False) -> WavInfo:
    """Parse a RIFF/WAVE file held in memory, any format tag.

    Parameters
    ----------
    blob : bytes
        The whole file.
    name : str
        Named in every error message (usually the path).
    streaming : bool
        Accept a data chunk whose size field overstates the file (as written by
        tools streaming to a pipe, e.g. ``espeak-ng --stdout``): the data runs to EOF.

    Raises
    ------
    AudioFileError
        Naming ``name`` and what is wrong.
    """
    def bad(msg: str) -> AudioFileError:
        return AudioFileError(f"{name}: {msg}")

    if len(blob) < 12 or blob[:4] != b"RIFF":
        raise bad("not a RIFF file")
    if blob[8:12] != b"WAVE":
        raise bad(f"RIFF form type {blob[8:12]!r} is not WAVE")
    riff_end = 8 + struct.unpack_from("<I", blob, 4)[0]
    limit = len(blob) if streaming else min(riff_end, len(blob))
    fmt = data = None
    pos = 12
    while pos + 8 <= limit:
        cid, size = struct.unpack_from("<4sI", blob, pos)
        body = pos + 8
        label = cid.decode("latin-1").strip()
        if body + size > limit:
            if streaming and cid == b"data":
                size = limit - body
            else:
                raise bad(f"{label} chunk truncated: header says {size} bytes, file has {limit - body}")
        if cid == b"fmt ":
            if fmt is not None:
                raise bad("more than one fmt chunk")
            if size < 16:
                raise bad(f"fmt chunk is {size} bytes, at least 16 needed")
            fmt = list(struct.unpack_from("<HHIIHH", blob, body))
            if fmt[0] == WAVE_FORMAT_EXTENSIBLE:
                if size < 40:
                    raise bad(f"WAVE_FORMAT_EXTENSIBLE fmt chunk is {size} bytes, 40 needed")
                fmt[0] = struct.unpack_from("<H", blob, body + 24)[0]  # first field of the sub-format GUID
        elif cid == b"data":
            if data is not None:
                raise bad("more than one data chunk")
            data = blob[body:body + size]
        pos = body + size + (size & 1)  # chunks are padded to even length
    if fmt is None:
        raise bad("fmt chunk missing")
    if data is None:
        raise bad("data chunk missing")
    if not streaming and riff_end > len(blob):
        raise bad(f"RIFF chunk truncated: header says {riff_end - 8} bytes, file has {len(blob) - 8}")
    tag, channels, rate, _byte_rate, block_align, bits = fmt
    if channels < 1:
        raise bad(f"channel count {channels} is not at least 1")
    if streaming:
        data = data[:len(data) - len(data) % max(block_align, 1)]
    if block_align < 1 or len(data) % block_align:
        raise bad(f"data length {len(data)} is not a multiple of block align {block_align}")
    return WavInfo(tag, channels, rate, bits, block_align, data)


@dataclass(frozen=True)
class Wav:
    """A decoded WAV file.

    samples : ndarray, shape (n_channels, n), float64 on the int16 scale (full scale 32768)
    format : str, e.g. ``"pcm16"``, ``"pcm24"``, ``"float32"``, ``"alaw"``, ``"ulaw"``
    """
    rate: int
    samples: np.ndarray
    format: str
    bits: int


def decode_wav(info: WavInfo, name: str) -> Wav:
    """Decode the sample data of ``info`` to float channels on the int16 scale.

    Raises
    ------
    AudioFileError
        For a codec or sample layout we do not read, naming ``name``.
    """
    def bad(msg: str) -> AudioFileError:
        return AudioFileError(f"{name}: {msg}")

    tag, bits, ch = info.format_tag, info.bits, info.channels
    kind = _FORMAT_NAMES.get(tag)
    if kind is None:
        raise bad(f"format tag {tag:#06x} is not supported; use PCM, float, A-law or mu-law WAV")
    if not 1000 <= info.rate <= 384000:
        raise bad(f"sample rate {info.rate} Hz is outside 1000..384000 Hz")
    width = (bits + 7) // 8
    if kind in ("alaw", "ulaw"):
        if bits != 8 or info.block_align != ch:
            raise bad(f"{kind} needs 8 bits and block align {ch}, got {bits} bits, block align {info.block_align}")
        codes = np.frombuffer(info.data, np.uint8)
        x = (alaw_decode(codes) if kind == "alaw" else ulaw_decode(codes)).astype(np.float64)
        label = kind
    else:
        allowed = (8, 16, 24, 32) if kind == "pcm" else (32, 64)
        if width * 8 not in allowed:
            raise bad(f"{bits}-bit {kind} samples are not supported; {kind} needs {allowed} bits")
        if info.block_align != width * ch:
            raise bad(f"block align {info.block_align} does not match {ch} channels of {width} bytes")
        raw = np.frombuffer(info.data, np.uint8)
        if kind == "float":
            x = np.frombuffer(info.data, "<f4" if width == 4 else "<f8").astype(np.float64) * 32768.0
            if not np.all(np.isfinite(x)):
                raise bad("float samples include NaN or infinity")
        elif width == 1:
            x = (raw.astype(np.float64) - 128.0) * 256.0  # 8-bit WAV is unsigned
        elif width == 3:
            b = raw.reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / 256.0
        else:
            dt = "<i2" if width == 2 else "<i4"
            x = np.frombuffer(info.data, dt).astype(np.float64) / (1 if width == 2 else 65536.0)
        label = f"{kind}{width * 8}"
    return Wav(info.rate, x.reshape(-1, ch).T.copy(), label, bits)


def read_wav(path: str | os.PathLike) -> Wav:
    """Read and decode a whole WAV file (see ``decode_wav`` for the formats).

    Raises
    ------
    AudioFileError
        Naming the file and the problem (not RIFF/WAVE, truncated, unsupported codec, no samples, unreadable).
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise AudioFileError(f"{name}: cannot be read: {e.strerror or e}") from None
    wav = decode_wav(parse_wav(blob, name), name)
    if wav.samples.shape[1] == 0:
        raise AudioFileError(f"{name}: the data chunk holds no samples")
    return wav


def read_wav_8k(path: str | os.PathLike) -> np.ndarray:
    """Read a mono 8 kHz WAV (16-bit PCM or A-law, as the command lines take) as int16.

    Returns
    -------
    x : ndarray, shape (n,), int16

    Raises
    ------
    AudioFileError
        When the file is not a WAV we read, or is not mono 8 kHz 16-bit/A-law (the message says what it is).
    """
    wav = read_wav(path)
    name = os.fspath(path)
    if wav.rate != 8000:
        raise AudioFileError(f"{name}: sample rate is {wav.rate} Hz; 8000 Hz needed "
                             f"(convert with: sox {name} -r 8000 -b 16 out.wav)")
    if wav.samples.shape[0] != 1:
        raise AudioFileError(f"{name}: {wav.samples.shape[0]} channels; mono needed")
    if wav.format not in ("pcm16", "alaw"):
        raise AudioFileError(f"{name}: {wav.format} samples; 16-bit PCM or A-law needed")
    return wav.samples[0].astype(np.int16)


def write_wav(path: str | os.PathLike, x: np.ndarray, rate: int = 8000) -> None:
    """Write 16-bit PCM WAV atomically (``appliance.atomicfile``: old file or new, never half).

    Parameters
    ----------
    x : ndarray, shape (n,) or (n_channels, n), int16 (floats are rounded and clipped to int16)
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf" or x.ndim not in (1, 2):
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"write_wav: expected an int16 ndarray of shape (n,) or (n_channels, n), got {got}")
    chans = x.reshape(1, -1) if x.ndim == 1 else x
    pcm = np.clip(np.rint(chans), -32768, 32767).astype("<i2").T.tobytes()
    ch = chans.shape[0]
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, WAVE_FORMAT_PCM,
                         ch, int(rate), int(rate) * 2 * ch, 2 * ch, 16, b"data", len(pcm))
    write_bytes_atomically(path, header + pcm, suffix=".wav")
