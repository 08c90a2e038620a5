"""Tone generation: levels, China cadences sample by sample, noise, and the streaming ToneGenerator."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.levels import DBM0_PEAK, rms_dbm0, tone_level_dbm0
from dsp.tones import CHINA_TONES, ToneGenerator, cadence, noise, sine, to_int16, tone


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
