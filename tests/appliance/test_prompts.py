"""Prompts: espeak-ng speech at 8 kHz and -20 dBm0, the disk cache, the beep without espeak-ng, prompt files."""

from __future__ import annotations

import os
import subprocess
import wave

import numpy as np
import pytest

import appliance.prompts as prompts
from appliance import messages
from appliance.errors import ConfigError
from appliance.prompts import BEEP_DBM0, TARGET_DBM0, PromptLibrary, beep, load_prompt_file
from appliance.wavfile import read_alaw_wav, write_alaw_wav
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import rms_dbm0, tone_level_dbm0
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
    assert abs(rms_dbm0(speech.ravel())[0] - TARGET_DBM0) <= 2.0
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
        w.writeframes(x.T.tobytes() if width == 2 else (x.T >> 8).astype(np.int8).tobytes())


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


def test_load_errors_name_the_file(tmp_path):
    write_pcm(tmp_path / "u8.wav", np.zeros((1, 100), np.int16), 8000, width=1)
    p = tmp_path / "u8.wav"
    with pytest.raises(ConfigError) as e:
        load_prompt_file(p)
    assert str(e.value) == (f"prompt file {str(p)!r}: format tag 1 with 8 bits is not supported; "
                            f"use A-law 8 kHz or 16-bit PCM WAV")
    (tmp_path / "x.mp3").write_bytes(b"ID3\x03" + bytes(100))
    with pytest.raises(ConfigError, match=r"^prompt file '.*x\.mp3': not a RIFF file$"):
        load_prompt_file(tmp_path / "x.mp3")
    with pytest.raises(ConfigError, match=r"^prompt file '.*missing\.wav' cannot be read: No such file"):
        load_prompt_file(tmp_path / "missing.wav")
    a = tmp_path / "a16k.wav"
    write_alaw_wav(a, np.zeros((1, 10), np.uint8))
    blob = bytearray(a.read_bytes())
    blob[24:28] = (16000).to_bytes(4, "little")
    a.write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match=r"a16k\.wav': sample rate 16000 Hz is not 8000 Hz$"):
        load_prompt_file(a)
