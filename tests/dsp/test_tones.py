"""Tone generation: levels, cadences sample by sample, tone plans as data, noise, and the streaming ToneGenerator."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.levels import DBM0_PEAK, rms_dbm0, tone_level_dbm0
from dsp.toneplans import PLANS, TonePlan, ToneSpec, get_plan
from dsp.tones import CHINA_TONES, ToneGenerator, cadence, noise, sine, to_int16, tone, tone_signal


def _gate(pairs, n, rate=8000):
    """Expected on/off per sample, built one sample at a time."""
    cycle = []
    for on, off in pairs:
        cycle += [True] * round(on * rate) + [False] * round(off * rate)
    return np.array([cycle[i % len(cycle)] for i in range(n)])


def test_sine_sums_tones_each_at_the_level():
    x = sine((697, 1209), -10.0, 800)
    assert x.shape == (800,) and x.dtype == np.float64
    assert tone_level_dbm0(x, 697)[0] == pytest.approx(-10.0, abs=1e-3)
    assert tone_level_dbm0(x, 1209)[0] == pytest.approx(-10.0, abs=1e-3)
    assert rms_dbm0(x)[0] == pytest.approx(-10.0 + 10 * np.log10(2), abs=0.01)
    assert sine(1000, 0.0, 3, phase=np.pi / 2)[0] == pytest.approx(DBM0_PEAK)
    np.testing.assert_allclose(sine(1000, 0.0, 8), DBM0_PEAK * np.sin(np.pi / 4 * np.arange(8)), atol=1e-9)


def test_tone_is_int16_of_the_requested_length():
    x = tone(450, -10.0, 0.5)
    assert x.dtype == np.int16 and x.shape == (4000,)
    assert rms_dbm0(x)[0] == pytest.approx(-10.0, abs=0.01)
    assert tone(1000, 3.14, 0.01).max() == 32767  # full scale clips, not wraps


def test_china_tone_plan():
    assert CHINA_TONES["dial"].on_off == () and CHINA_TONES["dial"].freqs == (450.0,)
    assert CHINA_TONES["ringback"].on_off == ((1.0, 4.0),)
    assert CHINA_TONES["busy"].on_off == ((0.35, 0.35),)
    assert CHINA_TONES["congestion"].on_off == ((0.7, 0.7),)
    assert CHINA_TONES["vacant"].on_off == ((0.1, 0.1),) * 3 + ((0.4, 0.4),)
    assert all(spec.level_dbm0 == -10.0 and spec.freqs == (450.0,) for spec in CHINA_TONES.values())


def test_plans_as_data():
    cn, us = PLANS["cn"], PLANS["us"]
    assert get_plan("cn") is cn and get_plan(us) is us and cn.freq_tol_hz == 25.0 and us.freq_tol_hz == 10.0
    assert {k: cn.tones[k] for k in CHINA_TONES} == CHINA_TONES
    assert list(cn.tones) == list(CHINA_TONES) + ["sit", "cng", "ced"]
    assert us.tones["dial"] == ToneSpec((350.0, 440.0), (), -13.0)
    assert us.tones["ringback"] == ToneSpec((440.0, 480.0), ((2.0, 4.0),), -19.0)
    assert us.tones["busy"] == ToneSpec((480.0, 620.0), ((0.5, 0.5),), -24.0)
    assert us.tones["congestion"] == ToneSpec((480.0, 620.0), ((0.25, 0.25),), -24.0)  # reorder
    for plan in (cn, us):
        assert plan.tones["sit"].on_freqs == ((950.0,), (1400.0,), (1800.0,))
        assert plan.tones["sit"].on_off == ((0.33, 0.0), (0.33, 0.0), (0.33, 1.0))
        assert plan.tones["cng"] == ToneSpec((1100.0,), ((0.5, 3.0),), -12.0)
        assert plan.tones["ced"] == ToneSpec((2100.0,), (), -12.0)


def test_tone_spec_segments():
    assert CHINA_TONES["dial"].segments() == (((450.0,), np.inf),)
    assert CHINA_TONES["busy"].segments() == (((450.0,), 0.35), ((), 0.35))
    assert PLANS["cn"].tones["sit"].segments() == (((950.0,), 0.33), ((1400.0,), 0.33), ((1800.0,), 0.33), ((), 1.0))
    assert len(CHINA_TONES["vacant"].segments()) == 8


def test_tone_plan_errors_name_the_bad_value():
    with pytest.raises(DspError, match=r"tone plan must be one of cn, us, got 'de'"):
        get_plan("de")
    with pytest.raises(DspError, match=r"one frequency tuple per \(on, off\) pair \(2\), got 1"):
        ToneSpec((950.0, 1400.0), ((0.3, 0.0), (0.3, 1.0)), -24.0, ((950.0,),))
    with pytest.raises(DspError, match=r"on_off must be \(on > 0, off >= 0\) pairs of seconds, got \(0.0, 0.1\)"):
        ToneSpec((450.0,), ((0.0, 0.1),))
    assert isinstance(PLANS["us"], TonePlan)


def test_tone_signal_plays_each_sit_step_at_its_own_frequency():
    sit = PLANS["us"].tones["sit"]
    x = tone_signal(sit, 4.0)
    assert x.dtype == np.int16 and x.shape == (32000,)
    for i, f in enumerate((950.0, 1400.0, 1800.0)):
        step = x[i * 2640:(i + 1) * 2640]
        assert tone_level_dbm0(step, f)[0] == pytest.approx(-24.0, abs=0.01)
        assert rms_dbm0(step)[0] == pytest.approx(-24.0, abs=0.01)  # and nothing else
    assert not x[7920:15920].any()  # 1 s of silence, then the next cycle
    # the oscillators run on through the silence, as ``cadence``'s does: same level, phase continued
    assert tone_level_dbm0(x[15920:18560], 950.0)[0] == pytest.approx(-24.0, abs=0.01)
    np.testing.assert_array_equal(x[15920:18560], to_int16(sine(950.0, -24.0, 18560)[15920:]))
    busy = CHINA_TONES["busy"]
    np.testing.assert_array_equal(tone_signal(busy, 2.0), cadence(busy.freqs, busy.level_dbm0, busy.on_off, 2.0))
    assert tone_level_dbm0(tone_signal(busy, 0.35, level_dbm0=-30.0), 450.0)[0] == pytest.approx(-30.0, abs=0.01)


@pytest.mark.parametrize("name", ["busy", "ringback", "vacant"])
def test_cadence_gates_a_continuous_tone_sample_exactly(name):
    spec = CHINA_TONES[name]
    x = cadence(spec.freqs, spec.level_dbm0, spec.on_off, 6.0)
    cont = tone(spec.freqs, spec.level_dbm0, 6.0)
    gate = _gate(spec.on_off, 48000)
    np.testing.assert_array_equal(x, np.where(gate, cont, 0))
    assert x.dtype == np.int16 and x.shape == (48000,)


def test_continuous_cadence_equals_tone():
    np.testing.assert_array_equal(cadence(450, -10, (), 1.0), tone(450, -10, 1.0))


def test_noise_level_seed_and_whiteness():
    x = noise(80000, -20.0, seed=5)
    assert x.dtype == np.float64 and x.shape == (80000,)
    assert rms_dbm0(x)[0] == pytest.approx(-20.0, abs=1e-9)
    np.testing.assert_array_equal(x, noise(80000, -20.0, seed=5))
    assert not np.array_equal(x, noise(80000, -20.0, seed=6))
    xn = x / x.std()
    assert abs(np.mean(xn[1:] * xn[:-1])) < 0.02  # white: no lag-1 correlation
    assert np.mean(xn ** 4) == pytest.approx(3.0, abs=0.1)  # Gaussian kurtosis
    assert rms_dbm0(to_int16(x))[0] == pytest.approx(-20.0, abs=0.01)


def _stream(gen, n_blocks, dtype=np.float64):
    blocks = []
    for _ in range(n_blocks):
        out = np.zeros((gen.n_channels, gen.block), dtype)
        gen.add_to(out)
        blocks.append(out)
    return np.concatenate(blocks, axis=1)


def test_generator_is_phase_continuous_and_matches_sine():
    gen = ToneGenerator(4, block=160)
    gen.start(1, (697, 1477), -10.0)
    gen.start(3, 450, -20.0)
    y = _stream(gen, 50)
    np.testing.assert_allclose(y[1], sine((697, 1477), -10.0, 8000), atol=1e-6)
    np.testing.assert_allclose(y[3], sine(450, -20.0, 8000), atol=1e-6)
    assert not y[0].any() and not y[2].any()


def test_generator_honours_cadence_across_blocks():
    gen = ToneGenerator(2, block=160)
    busy = CHINA_TONES["busy"]
    gen.start(0, busy.freqs, busy.level_dbm0, busy.on_off)
    gen.start(1, 450, -10.0, ((0.005, 0.0075),))  # cycle of 100 samples, shorter than a block
    y = _stream(gen, 100)
    np.testing.assert_allclose(y[0], np.where(_gate(busy.on_off, 16000), sine(450, -10.0, 16000), 0.0), atol=1e-6)
    np.testing.assert_allclose(y[1], np.where(_gate(((0.005, 0.0075),), 16000), sine(450, -10.0, 16000), 0.0),
                               atol=1e-6)
    assert gen.active(0)  # still active during 'off'


def test_generator_adds_into_float32_and_stops():
    gen = ToneGenerator(3, block=80)
    out = np.full((3, 80), 100.0, np.float32)
    gen.start(2, 1000, 0.0)
    gen.add_to(out)
    np.testing.assert_allclose(out[2], 100.0 + sine(1000, 0.0, 80), atol=0.01)
    np.testing.assert_array_equal(out[:2], 100.0)
    gen.stop(2)
    assert not gen.active(2)
    before = out.copy()
    gen.add_to(out)
    np.testing.assert_array_equal(out, before)
    gen.start(2, 1000, 0.0)  # a restart begins at phase 0 again
    out[:] = 0
    gen.add_to(out)
    np.testing.assert_allclose(out[2], sine(1000, 0.0, 80), atol=0.01)


def test_generator_errors_name_the_bad_value():
    gen = ToneGenerator(2)
    with pytest.raises(DspError, match=r"channel must be in 0..1, got 2"):
        gen.start(2, 450, -10)
    with pytest.raises(DspError, match=r"at most 4 frequencies per channel, got 5"):
        gen.start(0, (400, 500, 600, 700, 800), -10)
    with pytest.raises(DspError, match=r"freqs must be .* in \(0, 4000.0\) Hz, got 5000"):
        gen.start(0, 5000, -10)
    with pytest.raises(DspError, match=r"out must have shape \(2, 160\), got \(2, 80\)"):
        gen.add_to(np.zeros((2, 80)))
    with pytest.raises(DspError, match=r"out must be a float32 or float64 ndarray, got int16"):
        gen.add_to(np.zeros((2, 160), np.int16))
    with pytest.raises(DspError, match=r"on_off must be \(on, off\) pairs of seconds, got \(0.1,\)"):
        cadence(450, -10, [(0.1,)], 1.0)
    with pytest.raises(DspError, match=r"level_dbm0 must be one level or one per frequency \(2\)"):
        sine((697, 1209), (-10, -10, -10), 10)
