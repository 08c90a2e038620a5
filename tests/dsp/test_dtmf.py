"""DTMF: generator levels, the streaming receiver's accept/reject rules, 36 channels, and multimon-ng as a peer."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.dtmf import DTMF_FREQS, DTMF_KEYS, DtmfDetector, detect_digits, dtmf_digit, dtmf_generate
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import tone_level_dbm0
from dsp.tones import noise, sine, to_int16
from dsp.signals import speech_like
from tests.tools import require_tool

ALL = "0123456789*#ABCD"


def two_tones(f_low, f_high, level=-10.0, on_s=0.1, twist_db=0.0):
    on = sine((f_low, f_high), (level, level + twist_db), int(on_s * 8000))
    return to_int16(np.concatenate([on, np.zeros(800)]))


# --- generator ------------------------------------------------------------------------------

def test_generator_levels_twist_and_timing():
    x = dtmf_generate("5#", level_dbm0=-12.0, on_s=0.05, off_s=0.03, twist_db=2.0)
    assert x.dtype == np.int16 and x.shape == (2 * (400 + 240),)
    assert tone_level_dbm0(x[:400], 770)[0] == pytest.approx(-12.0, abs=0.02)
    assert tone_level_dbm0(x[:400], 1336)[0] == pytest.approx(-14.0, abs=0.02)  # normal twist: high weaker
    assert tone_level_dbm0(x[640:1040], 941)[0] == pytest.approx(-12.0, abs=0.02)
    assert tone_level_dbm0(x[640:1040], 1477)[0] == pytest.approx(-14.0, abs=0.02)
    assert not x[400:640].any() and not x[1040:].any()
    np.testing.assert_array_equal(dtmf_digit("d", -12.0, 0.05), dtmf_generate("D", -12.0, 0.05, 0.0))


def test_generator_rejects_other_characters_by_name():
    with pytest.raises(DspError, match=r"DTMF string '12x4' has 'x' at position 2; allowed: 0-9 \* # A-D"):
        dtmf_generate("12x4")
    with pytest.raises(DspError, match=r"one of 0-9 \* # A-D, got 'E'"):
        dtmf_digit("E")


# --- receiver: what it must accept -------------------------------------------------------------

@pytest.mark.parametrize("level", [-10.0, -25.0, 0.0])
def test_every_key_at_levels(level):
    assert detect_digits(dtmf_generate(ALL, level_dbm0=level)) == ALL


def test_after_alaw_round_trip_at_minus_25():
    x = dtmf_generate(ALL, level_dbm0=-25.0)
    assert detect_digits(alaw_decode(alaw_encode(x))) == ALL


@pytest.mark.parametrize("offset", range(0, 160, 20))
def test_50_ms_tones_with_50_ms_gaps_and_40_40_at_any_alignment(offset):
    pad = np.zeros(offset, np.int16)
    assert detect_digits(np.concatenate([pad, dtmf_generate(ALL, on_s=0.05, off_s=0.05)])) == ALL
    assert detect_digits(np.concatenate([pad, dtmf_generate(ALL, on_s=0.04, off_s=0.04)])) == ALL


def test_one_report_per_key_press_even_with_a_10_ms_dropout():
    long_key = dtmf_generate("7", on_s=2.0, off_s=0.1)
    assert detect_digits(long_key) == "7"
    broken = np.concatenate([dtmf_digit("7", -10, 0.1), np.zeros(80, np.int16), dtmf_generate("7", on_s=0.1)])
    assert detect_digits(broken) == "7"
    assert detect_digits(dtmf_generate("77", on_s=0.06, off_s=0.05)) == "77"


def test_frequency_error_of_1_5_percent_is_accepted():
    for dev in (-0.015, 0.015):
        for row, fl in enumerate(DTMF_FREQS["low"]):
            for col, fh in enumerate(DTMF_FREQS["high"]):
                key = DTMF_KEYS[4 * row + col]
                assert detect_digits(two_tones(fl * (1 + dev), fh)) == key, (fl, dev)
                assert detect_digits(two_tones(fl, fh * (1 + dev))) == key, (fh, dev)


def test_frequency_error_of_3_5_percent_is_rejected():
    for dev in (-0.035, 0.035, -0.05, 0.05):
        for fl in DTMF_FREQS["low"]:
            for fh in DTMF_FREQS["high"]:
                assert detect_digits(two_tones(fl * (1 + dev), fh)) == "", (fl, dev)
                assert detect_digits(two_tones(fl, fh * (1 + dev))) == "", (fh, dev)


def test_twist_limits_8_dB_normal_4_dB_reverse():
    assert detect_digits(dtmf_generate(ALL, twist_db=6.0)) == ALL
    assert detect_digits(dtmf_generate(ALL, twist_db=-3.0)) == ALL
    assert detect_digits(dtmf_generate(ALL, twist_db=10.0)) == ""
    assert detect_digits(dtmf_generate(ALL, twist_db=-6.0)) == ""


def test_keys_over_speech_15_dB_below():
    keys = dtmf_generate("159#", level_dbm0=-10.0, on_s=0.1, off_s=0.4)
    speech = speech_like(keys.size / 8000, seed=11, level_dbm0=-25.0)
    assert detect_digits(to_int16(keys + speech)) == "159#"


# --- receiver: what it must reject -------------------------------------------------------------

def test_20_ms_tones_are_not_keys_at_any_alignment():
    for offset in range(0, 160, 10):
        x = np.concatenate([np.zeros(offset, np.int16), dtmf_generate(ALL, on_s=0.02, off_s=0.08)])
        assert detect_digits(x) == "", offset


@pytest.mark.parametrize("freq", [1000.0, 697.0, 1633.0, 450.0])
def test_single_tones_are_not_keys(freq):
    assert detect_digits(to_int16(sine(freq, -5.0, 16000))) == ""


def test_noise_and_speech_like_audio_are_not_keys():
    assert detect_digits(to_int16(noise(80000, -20.0, seed=2))) == ""
    for seed, level in ((1, -5.0), (2, -15.0), (3, -25.0)):
        assert detect_digits(to_int16(speech_like(10.0, seed, level))) == "", seed


def test_a_second_tone_in_a_group_must_be_well_below_the_first():
    def three(freqs, levels):
        return to_int16(np.concatenate([sine(freqs, levels, 800), np.zeros(800)]))

    assert detect_digits(three((697, 770, 1209), (-10, -12.5, -10))) == ""
    assert detect_digits(three((697, 1209, 1336), (-10, -10, -12.5))) == ""
    assert detect_digits(three((697, 770, 1209), (-10, -20, -10))) == "1"
    assert detect_digits(three((697, 1209, 1336), (-10, -10, -20))) == "1"


def test_too_quiet_is_not_a_key():
    assert detect_digits(dtmf_generate(ALL, level_dbm0=-40.0)) == ""


# --- streaming over many channels -------------------------------------------------------------

def test_36_channels_in_one_call_each_gets_its_own_keys():
    rng = np.random.default_rng(36)
    n_ch, n_blocks = 36, 80
    want = ["".join(rng.choice(list(ALL), size=4)) for _ in range(n_ch)]
    x = np.zeros((n_ch, n_blocks * 160), np.int16)
    for ch, keys in enumerate(want):
        start = int(rng.integers(0, 400))
        sig = dtmf_generate(keys, level_dbm0=float(rng.uniform(-25, -5)), on_s=0.06, off_s=0.06)
        x[ch, start:start + sig.size] = sig
    det = DtmfDetector(n_ch)
    got = [""] * n_ch
    for b in range(n_blocks):
        events = det.process(x[:, b * 160:(b + 1) * 160])
        assert [c for c, _ in events] == sorted({c for c, _ in events})  # channel order, one per channel
        for ch, key in events:
            got[ch] += key
    assert got == want


def test_reset_forgets_a_key_half_heard():
    x = np.zeros((2, 480), np.int16)
    x[:, 160:] = dtmf_digit("3", -10.0, 0.04)  # 320 samples: key starts at block 1
    fresh, reset = DtmfDetector(2), DtmfDetector(2)
    for b in range(3):
        if b == 2:
            reset.reset(1)  # channel 1's call ended after 20 ms of the key
        assert fresh.process(x[:, b * 160:(b + 1) * 160]) == ([(0, "3"), (1, "3")] if b == 2 else [])
        events = reset.process(x[:, b * 160:(b + 1) * 160])
    assert events == [(0, "3")]


def test_float_input_and_shape_errors():
    det = DtmfDetector(2, block=80)
    x = dtmf_generate("A", on_s=0.05).astype(np.float32)
    events = [det.process(np.stack([x[i:i + 80], np.zeros(80, np.float32)])) for i in range(0, 400, 80)]
    assert sum(events, []) == [(0, "A")]
    with pytest.raises(DspError, match=r"expected shape \(2, 80\), got \(2, 160\)"):
        det.process(np.zeros((2, 160), np.int16))
    with pytest.raises(DspError, match=r"block must be a positive multiple of 80 samples \(10 ms\), got 100"):
        DtmfDetector(1, block=100)
    with pytest.raises(DspError, match=r"expected shape \(n_samples,\) or \(1, n_samples\), got \(2, 10\)"):
        detect_digits(np.zeros((2, 10)))


# --- a peer decoder ------------------------------------------------------------------------

def test_multimon_ng_decodes_our_keys():
    sox, multimon = require_tool("sox"), require_tool("multimon-ng")
    raw = dtmf_generate(ALL, level_dbm0=-10.0, on_s=0.07, off_s=0.07).astype("<i2").tobytes()
    resampled = subprocess.run(
        [sox, "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-L", "-",
         "-t", "raw", "-r", "22050", "-e", "signed", "-b", "16", "-c", "1", "-L", "-"],
        input=raw, capture_output=True, check=True, timeout=20).stdout
    out = subprocess.run([multimon, "-q", "-c", "-a", "DTMF", "-"], input=resampled,
                         capture_output=True, check=True, timeout=20).stdout.decode()
    got = "".join(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("DTMF:"))
    assert got == ALL
    assert detect_digits(np.frombuffer(raw, "<i2")) == got
