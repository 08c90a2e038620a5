"""A-law WAV writer and strict reader: exact bytes, header fields, sox as a peer, crash recovery, errors."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from appliance.errors import ProtocolError
from appliance.wavfile import (HEADER_SIZE, AlawWavWriter, parse_wav, read_alaw_wav,
                               write_alaw_wav)
from tests.tools import require_tool


def codes(channels: int, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(channels, n), dtype=np.uint8)


def chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def fmt_body(tag=6, channels=1, rate=8000, bits=8, block_align=None) -> bytes:
    ba = channels if block_align is None else block_align
    return struct.pack("<HHIIHHH", tag, channels, rate, rate * ba, ba, bits, 0)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("channels,n", [(1, 8000), (1, 1601), (2, 4000), (2, 1)])
def test_round_trip_exact(tmp_path, channels, n):
    x = codes(channels, n, seed=n)
    p = tmp_path / "a.wav"
    with AlawWavWriter(p, channels) as w:
        for start in range(0, n, 160):  # 20 ms frames as the recorder writes them
            w.write(x[:, start:start + 160])
        assert w.n_samples == n
        assert w.duration_s == n / 8000
    got, rate = read_alaw_wav(p)
    assert rate == 8000
    assert got.dtype == np.uint8 and got.shape == (channels, n)
    assert np.array_equal(got, x)
    raw = p.read_bytes()
    # interleaved on disk, padded to even length
    assert raw[HEADER_SIZE:HEADER_SIZE + n * channels] == x.T.tobytes()
    assert len(raw) == HEADER_SIZE + n * channels + ((n * channels) & 1)


def test_mono_bytes_and_header_fields(tmp_path):
    x = codes(1, 1001)
    p = tmp_path / "m.wav"
    with AlawWavWriter(p) as w:
        w.write(x[0].tobytes()[:500])
        w.write(x[:, 500:])
    raw = p.read_bytes()
    assert raw[0:4] == b"RIFF"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8 == 50 + 1001 + 1
    assert raw[8:12] == b"WAVE"
    assert raw[12:16] == b"fmt "
    assert struct.unpack_from("<IHHIIHHH", raw, 16) == (18, 6, 1, 8000, 8000, 1, 8, 0)
    assert raw[38:42] == b"fact"
    assert struct.unpack_from("<II", raw, 42) == (4, 1001)
    assert raw[50:54] == b"data"
    assert struct.unpack_from("<I", raw, 54)[0] == 1001
    assert raw[58:58 + 1001] == x.tobytes()
    assert raw[-1:] == b"\x00"


def test_stereo_header_fields(tmp_path):
    p = tmp_path / "s.wav"
    write_alaw_wav(p, codes(2, 300))
    raw = p.read_bytes()
    assert struct.unpack_from("<IHHIIHHH", raw, 16) == (18, 6, 2, 8000, 16000, 2, 8, 0)
    assert struct.unpack_from("<I", raw, 46)[0] == 300
    assert struct.unpack_from("<I", raw, 54)[0] == 600
    assert [f for f in os.listdir(tmp_path)] == ["s.wav"]  # no temp file left behind


def test_sox_reads_it(tmp_path):
    sox = require_tool("sox")
    p = tmp_path / "s.wav"
    write_alaw_wav(p, codes(2, 12000))
    out = subprocess.run([sox, "--i", str(p)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Channels\s*:\s*2\n", out)
    assert re.search(r"Sample Rate\s*:\s*8000\n", out)
    assert re.search(r"Precision\s*:\s*13-bit", out)
    assert re.search(r"Duration\s*:\s*00:00:01\.50 = 12000 samples", out)
    assert re.search(r"Sample Encoding\s*:\s*8-bit A-law", out)
    # and sox decodes the same samples the codes stand for: compare with its own raw A-law output
    raw = subprocess.run([sox, str(p), "-t", "raw", "-e", "a-law", "-b", "8", "-"],
                         capture_output=True, check=True).stdout
    assert raw == read_alaw_wav(p)[0].T.tobytes()


def test_reads_sox_written_file(tmp_path):
    sox = require_tool("sox")
    p = tmp_path / "from_sox.wav"
    subprocess.run([sox, "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-b", "8", str(p),
                    "synth", "0.25", "sine", "1000"], check=True)
    got, rate = read_alaw_wav(p)
    assert rate == 8000 and got.shape == (1, 2000)


def test_chunks_in_any_order_with_odd_padding(tmp_path):
    x = codes(1, 7)
    p = tmp_path / "o.wav"
    p.write_bytes(riff(chunk(b"LIST", b"INFOabc"), chunk(b"data", x.tobytes()), chunk(b"fmt ", fmt_body())))
    got, _ = read_alaw_wav(p)
    assert np.array_equal(got, x)


def test_crashed_writer_readable_to_last_flush(tmp_path):
    p = tmp_path / "crash.wav"
    # a child process writes 12.6 s in 20 ms frames and dies without close()
    script = (
        "import os, numpy as np\n"
        "from appliance.wavfile import AlawWavWriter\n"
        f"w = AlawWavWriter({str(p)!r}, 2)\n"
        "rng = np.random.default_rng(5)\n"
        "for _ in range(630):\n"
        "    w.write(rng.integers(0, 256, size=(2, 160), dtype=np.uint8))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=os.getcwd())
    assert p.stat().st_size == HEADER_SIZE + 2 * 96000  # flushed, sizes patched, every whole second
    got, rate = read_alaw_wav(p)
    assert got.shape == (2, 96000)  # the last 0.6 s was still in the buffer
    rng = np.random.default_rng(5)
    expect = np.concatenate([rng.integers(0, 256, size=(2, 160), dtype=np.uint8) for _ in range(600)], axis=1)
    assert np.array_equal(got, expect)


def test_truncated_data_error_exact(tmp_path):
    p = tmp_path / "t.wav"
    write_alaw_wav(p, codes(1, 16000))
    p.write_bytes(p.read_bytes()[:HEADER_SIZE + 1200])
    with pytest.raises(ProtocolError) as e:
        read_alaw_wav(p)
    assert str(e.value) == f"{p}: data chunk truncated: header says 16000 bytes, file has 1200"


@pytest.mark.parametrize("blob,msg", [
    (b"RIFX" + bytes(40), "not a RIFF file"),
    (b"RI", "not a RIFF file"),
    (b"RIFF\x04\x00\x00\x00AVI ", "RIFF form type b'AVI ' is not WAVE"),
    (riff(chunk(b"data", b"\x01\x02")), "fmt chunk missing"),
    (riff(chunk(b"fmt ", fmt_body())), "data chunk missing"),
    (riff(chunk(b"fmt ", fmt_body(tag=1, bits=16, block_align=2)), chunk(b"data", b"\x00\x00")),
     "format tag 1 is not A-law (6)"),
    (riff(chunk(b"fmt ", fmt_body(bits=16)), chunk(b"data", b"\x00")), "16 bits per sample, A-law needs 8"),
    (riff(chunk(b"fmt ", fmt_body(channels=2, block_align=4)), chunk(b"data", b"\x00" * 4)),
     "block align 4 is not the channel count 2"),
    (riff(chunk(b"fmt ", fmt_body(rate=16000)), chunk(b"data", b"\x00")), "sample rate 16000 Hz is not 8000 Hz"),
    (riff(chunk(b"fmt ", fmt_body(channels=2)), chunk(b"data", b"\x00" * 3)),
     "data length 3 is not a multiple of block align 2"),
    (riff(chunk(b"fmt ", b"\x06\x00")), "fmt chunk is 2 bytes, at least 16 needed"),
])
def test_violations_named(tmp_path, blob, msg):
    p = tmp_path / "bad.wav"
    p.write_bytes(blob)
    with pytest.raises(ProtocolError) as e:
        read_alaw_wav(p)
    assert str(e.value) == f"{p}: {msg}"


def test_streaming_size_accepted_only_when_asked():
    pcm = np.arange(100, dtype="<i2").tobytes()
    blob = b"RIFF\xff\xff\xff\x7fWAVE" + chunk(b"fmt ", fmt_body(tag=1, bits=16, rate=22050, block_align=2)) \
        + b"data\x00\xf0\xff\x7f" + pcm + b"\x01"  # an odd trailing byte: half a sample
    info = parse_wav(blob, "pipe", streaming=True)
    assert (info.format_tag, info.channels, info.rate, info.bits) == (1, 1, 22050, 16)
    assert info.data == pcm
    with pytest.raises(ProtocolError, match=r"^pipe: data chunk truncated: header says 2147479552 bytes, file has 201$"):
        parse_wav(blob, "pipe")


def test_bad_frames_rejected(tmp_path):
    with AlawWavWriter(tmp_path / "x.wav", 2) as w:
        with pytest.raises(ValueError, match=r"uint8 array of shape \(2, n\), got int16 array of shape \(2, 5\)"):
            w.write(np.zeros((2, 5), np.int16))
        with pytest.raises(ValueError, match="mono only"):
            w.write(b"\x00\x01")
        assert w.n_samples == 0
    with pytest.raises(ValueError, match="channels must be 1 or 2, got 3"):
        AlawWavWriter(tmp_path / "y.wav", 3)
