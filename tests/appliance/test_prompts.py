"""Prompts: espeak-ng speech at 8 kHz and the set level, the disk cache, the beep without espeak-ng, prompt files."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import wave

import numpy as np
import pytest

import appliance.prompts as prompts
from appliance import messages
from scipy.io import wavfile
from scipy.signal import resample_poly

from appliance.errors import ConfigError, DspError
from appliance.prompts import BEEP_DBM0, TARGET_DBM0, PromptLibrary, beep, load_prompt_file
from appliance.wavfile import read_alaw_wav, write_alaw_wav
from dsp.g711 import alaw_decode, alaw_encode, ulaw_encode
from dsp.levels import active_level_dbm0, rms_dbm0, tone_level_dbm0
from dsp.tones import sine, to_int16
from tests.tools import require_tool

ZH = messages.text("prompt.welcome", "zh")
EN = messages.text("prompt.welcome", "en")
_run = subprocess.run  # the real one, for the tests' own runs while prompts' calls are counted


def frame_levels(x: np.ndarray, rate: int = 8000) -> np.ndarray:
    """dBm0 of consecutive 10 ms frames."""
    n = rate // 100
    return rms_dbm0(x[:x.size // n * n].reshape(-1, n).astype(np.float64))


def active_span_s(x: np.ndarray, rate: int, threshold: float) -> float:
    idx = np.flatnonzero(np.abs(x) > threshold)
    return (idx[-1] - idx[0]) / rate


class Spawns:
    """Counts subprocess.run calls made by the prompts module."""

    def __init__(self, monkeypatch):
        self.n = 0
        def run(*a, **kw):
            self.n += 1
            return _run(*a, **kw)
        monkeypatch.setattr(prompts.subprocess, "run", run)


@pytest.mark.parametrize("text,voice", [(ZH, "cmn"), (EN, "en")])
def test_espeak_speech_level_duration_and_cache(tmp_path, monkeypatch, text, voice):
    espeak = require_tool("espeak-ng")
    spawns = Spawns(monkeypatch)
    warnings = []
    lib = PromptLibrary(tmp_path / "cache", espeak=espeak, warn=warnings.append)
    x = lib.render(text, voice)
    assert spawns.n == 1 and warnings == []
    assert x.dtype == np.int16 and x.ndim == 1
    assert 0.5 <= x.size / 8000 <= 10.0
    lv = frame_levels(x)
    active = lv > -45.0  # an activity rule of its own, not the library's
    assert active.mean() > 0.4
    speech = x[:lv.size * 80].reshape(-1, 80)[active].astype(np.float64)
    assert TARGET_DBM0 == -16.0
    assert abs(rms_dbm0(speech.ravel())[0] - TARGET_DBM0) <= 1.5
    assert active_level_dbm0(x)[0][0] == pytest.approx(TARGET_DBM0, abs=0.5)  # P.56, as the library sets it
    assert np.abs(x).max() < 32256  # no sample at A-law's clip value
    # silence trimmed to about 100 ms at each end
    first, last = np.flatnonzero(active)[[0, -1]]
    assert 0.05 <= first / 100 <= 0.2 and 0.05 <= (lv.size - 1 - last) / 100 <= 0.2
    # resampled at the right ratio: the speech lasts as long as espeak-ng's own 22,050 Hz output
    raw = _run([espeak, "-v", voice, "-s", "150", "--stdout", text], capture_output=True, check=True).stdout
    pcm = np.frombuffer(raw[44:], dtype="<i2").astype(np.float64)
    scale = np.abs(pcm).max() / np.abs(x.astype(np.float64)).max()
    assert abs(active_span_s(x, 8000, 300) - active_span_s(pcm, 22050, 300 * scale)) < 0.03
    # cached as A-law WAV holding exactly these samples; a second render does not spawn
    codes, rate = read_alaw_wav(lib.cache_path(text, voice))
    assert rate == 8000 and np.array_equal(alaw_decode(codes[0]), x)
    assert np.array_equal(lib.render(text, voice), x)
    assert np.array_equal(lib.render_alaw(text, voice), codes[0])
    assert spawns.n == 1
    # a library on the same cache whose espeak-ng would fail still gets the speech
    other = PromptLibrary(tmp_path / "cache", espeak=str(tmp_path / "no-such-espeak"), warn=warnings.append)
    assert np.array_equal(other.render(text, voice), x)
    assert warnings == [] and spawns.n == 1


def test_leading_dash_is_text_not_an_option(tmp_path):
    espeak = require_tool("espeak-ng")
    warnings = []
    x = PromptLibrary(tmp_path, espeak=espeak, warn=warnings.append).render("-h", "en")
    assert warnings == [] and x.size > 1600 and not np.array_equal(x, beep())


def test_no_espeak_warns_once_and_beeps(tmp_path):
    warnings = []
    lib = PromptLibrary(tmp_path, espeak=None, warn=warnings.append)
    a = lib.render(ZH, "cmn")
    b = lib.render(EN, "en")
    assert warnings == [messages.text("warn.no_espeak")]
    assert np.array_equal(a, b) and a.dtype == np.int16 and a.shape == (8000,)
    assert os.listdir(tmp_path) == []  # the beep is not cached as if it were the speech
    # four 0.2 s bursts with 50 ms gaps: 660, 880, 660, 880 Hz, each at -16 dBm0
    for k, f in enumerate((660, 880, 660, 880)):
        seg = a[k * 2000 + 200:k * 2000 + 1400].astype(np.float64)  # inside the ramps
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
        assert np.fft.rfftfreq(seg.size, 1 / 8000)[np.argmax(spec)] == pytest.approx(f, abs=7)
        assert tone_level_dbm0(seg, f)[0] == pytest.approx(BEEP_DBM0, abs=0.2)
        for g in (450, 697, 770, 852, 941, 1209, 1336, 1477, 1633):  # dial/busy and DTMF stay silent
            assert tone_level_dbm0(seg, g)[0] < BEEP_DBM0 - 40
        assert np.all(a[k * 2000 + 1600:k * 2000 + 2000] == 0)
    assert np.array_equal(lib.render_alaw(ZH), alaw_encode(a))


def test_failing_binary_beeps(tmp_path):
    fake = tmp_path / "espeak-ng"
    fake.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    fake.chmod(0o755)
    warnings = []
    lib = PromptLibrary(tmp_path / "c", espeak=str(fake), warn=warnings.append, lang="en")
    assert np.array_equal(lib.render("hello", "en"), beep())
    assert np.array_equal(lib.render("again", "en"), beep())
    assert warnings == [messages.text("warn.no_espeak", "en")]


def test_bad_arguments(tmp_path):
    lib = PromptLibrary(tmp_path, espeak=None, warn=lambda m: None)
    with pytest.raises(ValueError, match="non-empty string"):
        lib.render("  ")
    with pytest.raises(ValueError, match=r"voice '-x' is not an espeak-ng voice name"):
        lib.render("hi", "-x")
    with pytest.raises(ConfigError, match="speed 20 must be"):
        PromptLibrary(tmp_path, espeak=None, speed=20)


def write_pcm(path, x: np.ndarray, rate: int, width: int = 2) -> None:
    """x : shape (channels, n), int16."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(width)
        w.setframerate(rate)
        # 8-bit WAV is unsigned
        w.writeframes(x.T.tobytes() if width == 2 else ((x.T >> 8) + 128).astype(np.uint8).tobytes())


def test_load_alaw_file(tmp_path):
    x = to_int16(sine(1000, -10, 4000))
    codes = alaw_encode(np.stack([x, x // 2]))
    write_alaw_wav(tmp_path / "s.wav", codes)
    got = load_prompt_file(tmp_path / "s.wav")
    expect = (alaw_decode(codes).astype(np.float64).mean(axis=0))
    assert got.dtype == np.int16 and np.array_equal(got, to_int16(expect))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_load_pcm_any_rate_stereo(tmp_path, rate):
    n = rate // 2
    left = to_int16(sine(1000, -10, n, rate))
    right = to_int16(sine(1000, -10, n, rate, phase=np.pi))  # cancels when mixed
    write_pcm(tmp_path / "l.wav", np.stack([left, left]), rate)
    write_pcm(tmp_path / "c.wav", np.stack([left, right]), rate)
    got = load_prompt_file(tmp_path / "l.wav")
    assert got.dtype == np.int16 and got.shape == (4000,)
    assert tone_level_dbm0(got[200:-200], 1000)[0] == pytest.approx(-10, abs=0.1)
    assert np.abs(load_prompt_file(tmp_path / "c.wav")).max() <= 1


def test_the_level_is_configurable_and_part_of_the_cache_key(tmp_path):
    espeak = require_tool("espeak-ng")
    loud = PromptLibrary(tmp_path, espeak=espeak, warn=pytest.fail, level_dbm0=-10.0)
    soft = PromptLibrary(tmp_path, espeak=espeak, warn=pytest.fail, level_dbm0=-26.0)
    assert loud.cache_path(EN, "en") != soft.cache_path(EN, "en")
    a, b = loud.render(EN, "en"), soft.render(EN, "en")
    assert active_level_dbm0(a)[0][0] == pytest.approx(-10.0, abs=0.5)
    assert active_level_dbm0(b)[0][0] == pytest.approx(-26.0, abs=0.5)
    for bad in (-5.0, -31, float("nan"), "-16"):
        with pytest.raises(ConfigError, match=r"prompt level .* must be a number of dBm0 in -30..-6"):
            PromptLibrary(tmp_path, espeak=None, level_dbm0=bad)


def test_load_errors_name_the_file(tmp_path):
    (tmp_path / "x.mp3").write_bytes(b"ID3\x03" + bytes(100))
    with pytest.raises(ConfigError, match=r"^prompt file '.*x\.mp3': not a RIFF file$"):
        load_prompt_file(tmp_path / "x.mp3")
    with pytest.raises(ConfigError, match=r"^prompt file '.*missing\.wav': cannot be read: No such file"):
        load_prompt_file(tmp_path / "missing.wav")
    riff(tmp_path / "mp3.wav", 0x55, 1, 8000, 0, bytes(100))
    with pytest.raises(ConfigError, match=r"^prompt file '.*mp3\.wav': format tag 0x0055 is not supported"):
        load_prompt_file(tmp_path / "mp3.wav")


def test_load_8_bit_and_a_law_at_16_khz_as_they_are(tmp_path):
    x = sine(1000, -10, 16000, 16000)
    riff(tmp_path / "a.wav", 6, 1, 16000, 8, alaw_encode(to_int16(x)).tobytes())
    write_pcm(tmp_path / "u8.wav", to_int16(x)[np.newaxis], 16000, width=1)
    for name in ("a.wav", "u8.wav"):
        got = load_prompt_file(tmp_path / name)
        assert got.shape == (8000,)
        assert tone_level_dbm0(got[200:-200], 1000)[0] == pytest.approx(-10, abs=0.15)


# -- importing installer-supplied files into the library ---------------------------------------

_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def riff(path, tag: int, channels: int, rate: int, bits: int, data: bytes, extensible: bool = False) -> None:
    """Write a WAV file with any format tag, plain or WAVE_FORMAT_EXTENSIBLE."""
    block = channels * max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block, block, bits)
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + _GUID_TAIL
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    body += b"\x00" * (len(data) & 1)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def int24(x: np.ndarray) -> bytes:
    """x : shape (channels, n), float on the int16 scale -> interleaved 24-bit little-endian."""
    v = np.clip(np.rint(x.T * 256), -(1 << 23), (1 << 23) - 1).astype("<i4").ravel()
    return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def write_tone(path, fmt: str, rate: int, channels: int) -> None:
    """Two seconds of 1 kHz at -20 dBm0 (the second channel 6 dB lower), in the named format."""
    x = np.stack([sine(1000, -20.0, 2 * rate, rate) * (0.5 if c else 1.0) for c in range(channels)])
    if fmt == "pcm8":
        write_pcm(path, to_int16(x), rate, width=1)
    elif fmt == "pcm16":
        write_pcm(path, to_int16(x), rate)
    elif fmt in ("pcm24", "pcm24x"):
        riff(path, 1, channels, rate, 24, int24(x), extensible=fmt == "pcm24x")
    elif fmt == "pcm32":
        riff(path, 1, channels, rate, 32, np.rint(x.T * 65536).astype("<i4").tobytes())
    elif fmt == "float32":
        wavfile.write(path, rate, (x.T / 32768).astype(np.float32))
    elif fmt in ("alaw", "ulaw"):
        enc = alaw_encode if fmt == "alaw" else ulaw_encode
        riff(path, 6 if fmt == "alaw" else 7, channels, rate, 8, enc(to_int16(x)).T.tobytes())


@pytest.mark.parametrize("fmt,rate,channels", [
    ("pcm8", 11025, 1), ("pcm16", 16000, 2), ("pcm24", 44100, 2), ("pcm24x", 22050, 2),
    ("pcm32", 96000, 1), ("float32", 48000, 2), ("alaw", 16000, 2), ("ulaw", 8000, 1),
])
def test_import_any_wav_gives_a_1_khz_tone_at_the_library_level(tmp_path, fmt, rate, channels):
    path = tmp_path / f"in-{fmt}.wav"
    write_tone(path, fmt, rate, channels)
    lib = PromptLibrary(tmp_path / "lib", espeak=None)
    report = lib.import_file("tone", path)
    assert (report.in_rate, report.in_channels, report.clipped) == (rate, channels, 0)
    x = lib.load_imported("tone")
    assert x.dtype == np.int16 and x.size == pytest.approx(17600, abs=160)  # 2 s plus 0.1 s padding each end
    mid = x[1000:-1000].astype(np.float64)
    spec = np.abs(np.fft.rfft(mid * np.hanning(mid.size)))
    assert np.fft.rfftfreq(mid.size, 1 / 8000)[np.argmax(spec)] == pytest.approx(1000, abs=2)
    assert tone_level_dbm0(mid, 1000)[0] == pytest.approx(-16.0, abs=0.2)
    codes, file_rate = read_alaw_wav(lib.imported_path("tone"))
    assert file_rate == 8000 and codes.shape == (1, x.size)


def test_import_24_bit_44k_stereo_speech_at_minus_16(tmp_path):
    espeak = require_tool("espeak-ng")
    raw = _run([espeak, "-v", "cmn", "--stdout", ZH], capture_output=True, check=True).stdout
    pcm = np.frombuffer(raw[44:], dtype="<i2").astype(np.float64)
    speech = resample_poly(pcm, 2, 1) * 0.05  # 22,050 -> 44,100 Hz, about -40 dBm0
    x = np.stack([np.concatenate([np.zeros(44100), speech, np.zeros(22050)])] * 2)
    x[1] *= 0.7
    with wave.open(str(tmp_path / "s24.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(44100)
        w.writeframes(int24(x))
    lib = PromptLibrary(tmp_path / "lib", espeak=None)
    report = lib.import_file("welcome", tmp_path / "s24.wav")
    assert report.in_rate == 44100 and report.in_channels == 2 and report.clipped == 0
    assert report.gain_db > 20
    y = lib.load_imported("welcome")
    assert active_level_dbm0(y)[0][0] == pytest.approx(-16.0, abs=0.5)
    lv = frame_levels(y)
    active = lv > -45.0
    loud = y[:lv.size * 80].reshape(-1, 80)[active].astype(np.float64)
    assert rms_dbm0(loud.ravel())[0] == pytest.approx(-16.0, abs=1.5)
    first, last = np.flatnonzero(active)[[0, -1]]  # 1 s before and 0.5 s after trimmed to ~0.1 s
    assert 0.05 <= first / 100 <= 0.2 and 0.05 <= (lv.size - 1 - last) / 100 <= 0.2


def test_import_reports_and_logs_clipping(tmp_path, caplog):
    x = sine(1000, -30.0, 16000)
    x[::200] = 30000.0  # 80 spikes, pushed far past A-law's range by the +14 dB gain
    write_pcm(tmp_path / "spiky.wav", to_int16(x)[np.newaxis], 8000)
    lib = PromptLibrary(tmp_path / "lib", espeak=None)
    with caplog.at_level(logging.WARNING, logger="appliance.prompts"):
        report = lib.import_file("spiky", tmp_path / "spiky.wav")
    assert report.clipped == 80
    pct = 100 * report.clipped_fraction
    assert f"spiky.wav: 80 samples ({pct:.2f}%) clipped at {report.level_dbm0:.1f} dBm0" in caplog.text
    assert np.count_nonzero(np.abs(lib.load_imported("spiky")) == 32256) == 80


def test_import_rejects_what_is_not_audio_and_keeps_the_old_prompt(tmp_path):
    lib = PromptLibrary(tmp_path / "lib", espeak=None)
    write_tone(tmp_path / "good.wav", "pcm16", 8000, 1)
    lib.import_file("menu", tmp_path / "good.wav")
    before = (tmp_path / "lib" / "imported" / "menu.wav").read_bytes()
    (tmp_path / "notes.wav").write_text("please record the menu in a calm voice\n")
    write_tone(tmp_path / "cut.wav", "pcm16", 8000, 1)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "cut.wav").read_bytes()[:3000])
    riff(tmp_path / "empty.wav", 1, 1, 8000, 16, b"")
    riff(tmp_path / "gsm.wav", 0x31, 1, 8000, 0, bytes(650))
    write_pcm(tmp_path / "quiet.wav", np.zeros((1, 8000), np.int16), 8000)
    cases = {
        "notes.wav": "not a RIFF file",
        "cut.wav": "data chunk truncated: header says 32000 bytes, file has 2956",
        "empty.wav": "the data chunk holds no samples",
        "gsm.wav": "format tag 0x0031 is not supported",
        "quiet.wav": "the audio is silent: active level -120.0 dBm0 is below -70 dBm0",
    }
    for name, problem in cases.items():
        with pytest.raises(DspError) as e:
            lib.import_file("menu", tmp_path / name)
        assert str(e.value).startswith(f"{tmp_path / name}: {problem}")
    assert (tmp_path / "lib" / "imported" / "menu.wav").read_bytes() == before
    assert sorted(os.listdir(tmp_path / "lib" / "imported")) == ["menu.wav"]  # no temp files left
    with pytest.raises(ConfigError, match=r"prompt name '\.\./x' must be 1..64 letters"):
        lib.import_file("../x", tmp_path / "good.wav")
    with pytest.raises(ConfigError, match="prompt 'other' has not been imported"):
        lib.load_imported("other")
