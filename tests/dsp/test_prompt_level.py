"""Prompt preparation: mono 8 kHz A-law at the set active level, resampled, trimmed, clipping counted."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.g711 import alaw_decode
from dsp.levels import active_level_dbm0, dbm0_to_amplitude, rms_dbm0, tone_level_dbm0
from dsp.prompt_level import PromptReport, prepare_prompt
from dsp.tones import noise, sine
from dsp.wavio import decode_wav, parse_wav
from tests.tools import require_tool


def peak_hz(x: np.ndarray, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spec)])


def test_a_quiet_44k_stereo_tone_comes_out_at_1_khz_and_minus_16():
    rate = 44100
    x = sine(1000, -30.0, 2 * rate, rate)  # tone from the first sample to the last: padded, not trimmed
    codes, rep = prepare_prompt(np.stack([x, x]), rate)
    y = alaw_decode(codes).astype(np.float64)
    assert codes.dtype == np.uint8 and codes.ndim == 1
    assert rep.in_rate == 44100 and rep.in_channels == 2 and rep.clipped == 0
    assert rep.duration_s == pytest.approx(2.2, abs=0.02)  # 0.1 s of silence added at each end
    assert rep.input_level_dbm0 == pytest.approx(-30.0, abs=0.1)
    assert rep.gain_db == pytest.approx(14.0, abs=0.1)
    mid = y[1600:-1600]
    assert peak_hz(mid) == pytest.approx(1000, abs=2)
    assert tone_level_dbm0(mid, 1000)[0] == pytest.approx(-16.0, abs=0.15)
    assert rep.level_dbm0 == pytest.approx(-16.0, abs=0.5)
    assert np.all(y[:700] == alaw_decode(np.array([0xD5], np.uint8))[0])  # the lead-in is A-law's zero


def test_out_of_band_content_is_filtered_not_aliased():
    rate = 48000
    x = sine(1000, -30.0, rate, rate) + sine(6000, -10.0, rate, rate)  # 6 kHz would alias to 2 kHz
    codes, rep = prepare_prompt(x, rate, -20.0, margin_s=None)
    y = alaw_decode(codes)[400:-400].astype(np.float64)
    assert tone_level_dbm0(y, 1000)[0] == pytest.approx(-20.0, abs=0.2)
    assert tone_level_dbm0(y, 2000)[0] < -50.0  # resample_poly's Kaiser filter: over 50 dB down
    assert rep.duration_s == 1.0


@pytest.mark.parametrize("voice", ["cmn", "en"])
def test_espeak_speech_at_any_input_level_comes_out_at_the_target(voice):
    exe = require_tool("espeak-ng")
    text = "您好，欢迎致电。咨询请按一。" if voice == "cmn" else "Thank you for calling. Please hold."
    run = subprocess.run([exe, "-v", voice, "--stdout", text], capture_output=True, check=True, timeout=60)
    wav = decode_wav(parse_wav(run.stdout, "espeak-ng", streaming=True), "espeak-ng")
    outs = []
    for scale in (0.02, 1.0):
        codes, rep = prepare_prompt(wav.samples * scale, wav.rate, -16.0)
        y = alaw_decode(codes).astype(np.float64)
        assert rep.clipped == 0 and rep.in_rate == 22050
        assert active_level_dbm0(y)[0][0] == pytest.approx(-16.0, abs=0.5)
        assert rep.level_dbm0 == pytest.approx(active_level_dbm0(y)[0][0], abs=1e-9)
        # an activity rule of the test's own: 10 ms frames above -45 dBm0
        frames = y[:y.size // 80 * 80].reshape(-1, 80)
        loud = rms_dbm0(frames) > -45.0
        assert rms_dbm0(frames[loud].ravel())[0] == pytest.approx(-16.0, abs=1.5)
        assert 0.05 <= np.flatnonzero(loud)[0] / 100 <= 0.2  # trimmed to ~0.1 s
        outs.append(y)
    # the gain makes up for the input level: both renders are the same prompt
    assert outs[0].size == outs[1].size
    assert np.corrcoef(outs[0], outs[1])[0, 1] > 0.999


def test_clipping_is_counted_not_avoided():
    x = sine(1000, -26.0, 32000)
    spikes = np.array([4000, 9000, 15000, 20001, 25000, 28000, 30000])
    x[spikes] = 20000.0 * np.array([1, -1, 1, -1, 1, 1, -1])
    codes, rep = prepare_prompt(x, 8000, -16.0, margin_s=None)
    gain = 10 ** (rep.gain_db / 20)
    assert gain * 20000 > 32768  # the spikes go over, the sine (peak 3,600 after the gain) does not
    assert rep.clipped == 7 and rep.clipped_fraction == pytest.approx(7 / 32000)
    y = alaw_decode(codes)
    assert np.array_equal(np.abs(y[spikes]), [32256] * 7)  # A-law's top value
    # the level was kept: the sine got the whole gain; only the clipped spikes lost energy
    assert tone_level_dbm0(y[100:-100], 1000)[0] == pytest.approx(-26.0 + rep.gain_db, abs=0.05)
    assert rep.level_dbm0 == pytest.approx(-16.0, abs=0.5)
    loud = prepare_prompt(np.where(np.arange(8000) % 40 < 20, 32767.0, -32768.0), 8000, -16.0)[1]
    assert loud.gain_db < -20 and loud.clipped == 0


def test_silent_or_bad_input_raises_naming_the_problem():
    with pytest.raises(DspError, match=r"the audio is silent: active level -120.0 dBm0 is below -70 dBm0"):
        prepare_prompt(np.zeros((2, 8000)), 8000)
    with pytest.raises(DspError, match="the audio is silent: active level -7[0-9].[0-9] dBm0"):
        prepare_prompt(noise(8000, -75.0, seed=1), 8000)
    with pytest.raises(DspError, match=r"rate must be an integer in 1000..384000 Hz, got 500"):
        prepare_prompt(np.ones(100), 500)
    with pytest.raises(DspError, match=r"level_dbm0 must be -60..0 dBm0, got 3"):
        prepare_prompt(np.ones(100), 8000, 3)
    with pytest.raises(DspError, match=r"expected shape \(n_channels, n\) with n >= 1, got \(2, 0\)"):
        prepare_prompt(np.zeros((2, 0)), 8000)
    with pytest.raises(DspError, match="the samples include NaN or infinity"):
        prepare_prompt(np.array([0.0, np.nan]), 8000)
    with pytest.raises(DspError, match="margin_s must be None or 0..10 s, got -1"):
        prepare_prompt(np.ones(100), 8000, margin_s=-1)


def test_report_is_a_frozen_record():
    _, rep = prepare_prompt(sine(1000, -16.0, 8000) + dbm0_to_amplitude(-80), 8000, margin_s=None)
    assert isinstance(rep, PromptReport) and rep.duration_s == 1.0
    with pytest.raises(AttributeError):
        rep.clipped = 3
