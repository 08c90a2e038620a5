"""dBm0 levels: the G.711 reference point, whole-signal levels, one tone among others, the P.56 active level."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.levels import DBM0_PEAK, FLOOR_DBM0, active_level_dbm0, dbm0_to_amplitude, rms_dbm0, tone_level_dbm0


def _sine(freq, peak, n, rate=8000, phase=0.3):
    return peak * np.sin(2 * np.pi * freq * np.arange(n) / rate + phase)


def test_dbm0_reference_is_a_full_scale_sine_at_plus_3_14():
    assert DBM0_PEAK == pytest.approx(22827.06, abs=0.01)
    assert DBM0_PEAK == pytest.approx(32768 * 10 ** (-3.14 / 20), rel=1e-12)
    full = _sine(1000, 32768.0, 8000)
    assert rms_dbm0(full)[0] == pytest.approx(3.14, abs=1e-6)
    assert dbm0_to_amplitude(3.14) == pytest.approx(32768.0, rel=1e-12)


def test_dbm0_to_amplitude_scales_by_20_log10():
    assert dbm0_to_amplitude(0.0) == DBM0_PEAK
    assert dbm0_to_amplitude(-20.0) == pytest.approx(DBM0_PEAK / 10.0, rel=1e-12)
    with pytest.raises(DspError, match="level_dbm0 must be a finite number of dBm0, got nan"):
        dbm0_to_amplitude(float("nan"))


def test_rms_dbm0_per_channel_with_int16_rounding():
    x = np.stack([
        np.rint(_sine(1000, dbm0_to_amplitude(0.0), 800)),
        np.rint(_sine(697, dbm0_to_amplitude(-20.0), 800)),
        np.zeros(800),
    ]).astype(np.int16)
    lv = rms_dbm0(x)
    assert lv.shape == (3,) and lv.dtype == np.float64
    assert lv[0] == pytest.approx(0.0, abs=0.01)
    assert lv[1] == pytest.approx(-20.0, abs=0.01)
    assert lv[2] == FLOOR_DBM0 == -120.0


def test_rms_dbm0_of_a_square_wave_is_3_dB_above_its_sine():
    sq = np.where(np.arange(800) % 8 < 4, 1000, -1000).astype(np.int16)
    assert rms_dbm0(sq)[0] == pytest.approx(20 * np.log10(1000 / (DBM0_PEAK / np.sqrt(2))), abs=1e-9)


def test_tone_level_finds_one_tone_among_others():
    rng = np.random.default_rng(3)
    n = 8000
    x = (_sine(1000, dbm0_to_amplitude(-10.0), n) + _sine(450, dbm0_to_amplitude(-3.0), n, phase=1.0)
         + rng.standard_normal(n) * DBM0_PEAK / np.sqrt(2) * 10 ** (-30 / 20))
    x = np.rint(x).astype(np.int16)
    assert tone_level_dbm0(x, 1000)[0] == pytest.approx(-10.0, abs=0.05)
    assert tone_level_dbm0(x, 450)[0] == pytest.approx(-3.0, abs=0.05)
    assert tone_level_dbm0(x, 2000)[0] < -55.0  # only the noise is there
    assert rms_dbm0(x)[0] == pytest.approx(10 * np.log10(10 ** -1.0 + 10 ** -0.3 + 10 ** -3.0), abs=0.05)


def test_tone_level_is_exact_on_a_short_block_with_a_fractional_number_of_periods():
    n = 160  # 20 ms; 697 Hz gives 13.94 periods
    x = np.stack([_sine(697, dbm0_to_amplitude(-25.0), n, phase=p) for p in (0.0, 1.0, 2.5)])
    np.testing.assert_allclose(tone_level_dbm0(x, 697), [-25.0] * 3, atol=1e-9)


def test_tone_level_silence_and_errors():
    assert tone_level_dbm0(np.zeros((2, 100), np.int16), 1000).tolist() == [FLOOR_DBM0, FLOOR_DBM0]
    with pytest.raises(DspError, match=r"freq must be in \(0, 4000.0\) Hz, got 4000"):
        tone_level_dbm0(np.zeros(100), 4000)
    with pytest.raises(DspError, match=r"expected shape \(n_channels, n_samples\).*got \(2, 2, 2\)"):
        rms_dbm0(np.zeros((2, 2, 2)))
    with pytest.raises(DspError, match="expected an int or float ndarray, got complex128"):
        rms_dbm0(np.zeros(4, complex))


# -- active speech level (ITU-T P.56 method B) ------------------------------------------------

def _p56_reference(x: np.ndarray, rate: int) -> float:
    """P.56 method B as the ITU's sv56 runs it, sample by sample (the thresholds vectorised); dBm0."""
    g = np.exp(-1.0 / (0.03 * rate))
    hang_max = int(0.2 * rate + 0.5)
    c = 2.0 ** np.arange(16)
    a = np.zeros(16)
    hang = np.full(16, hang_max)
    p = q = 0.0
    for v in np.abs(x):
        p = g * p + (1 - g) * v
        q = g * q + (1 - g) * p
        hit = q >= c
        counted = hit | (hang < hang_max)
        a += counted
        hang = np.where(hit, 0, np.where(counted, hang + 1, hang))
    a_db = 10 * np.log10(np.sum(x * x) / a[a > 0])
    delta = a_db - 20 * np.log10(c[a > 0])
    j = np.flatnonzero(delta <= 15.9)[0]
    f = (delta[j - 1] - 15.9) / (delta[j - 1] - delta[j])
    return a_db[j - 1] + f * (a_db[j] - a_db[j - 1]) - 20 * np.log10(DBM0_PEAK / np.sqrt(2))


def test_active_level_agrees_with_the_sample_by_sample_p56_loop():
    from dsp.signals import speech_like
    x = np.concatenate([np.zeros(2000), speech_like(1.0, seed=5, level_dbm0=-22.0), np.zeros(3000)])
    lv, act = active_level_dbm0(x)
    assert lv[0] == pytest.approx(_p56_reference(x, 8000), abs=1e-9)
    assert 0.4 < act[0] < 0.8


def test_active_level_ignores_pauses_and_scales_exactly():
    rng = np.random.default_rng(11)
    burst = rng.standard_normal(8000) * DBM0_PEAK / np.sqrt(2) * 10 ** (-25 / 20)  # 1 s at -25 dBm0
    talk = np.concatenate([burst, np.zeros(8000), burst, np.zeros(8000)])  # half the time silent
    lv, act = active_level_dbm0(np.stack([talk, 2.0 * talk, np.zeros_like(talk)]))
    burst_dbm0 = rms_dbm0(burst)[0]
    assert rms_dbm0(talk)[0] == pytest.approx(burst_dbm0 - 3.01, abs=0.01)  # the plain mean is 3 dB low
    # P.56 counts 0.2 s of hangover and the envelope's decay after each burst: activity 0.64, not 0.5
    assert burst_dbm0 - 1.2 < lv[0] < burst_dbm0
    assert 0.55 < act[0] < 0.7
    # thresholds are powers of two: twice the amplitude moves every count one threshold up, exactly 6.02 dB
    assert lv[1] - lv[0] == pytest.approx(20 * np.log10(2.0), abs=1e-9)
    assert lv[2] == FLOOR_DBM0 and act[2] == 0.0


def test_active_level_of_a_steady_tone_is_its_rms_level():
    x = np.rint(_sine(1000, dbm0_to_amplitude(-16.0), 16000)).astype(np.int16)
    lv, act = active_level_dbm0(x)
    assert -16.0 < lv[0] < -15.9  # 2 s; the envelope's rise at the start is the only inactive part
    assert act[0] > 0.98
    lv44, _ = active_level_dbm0(_sine(1000, dbm0_to_amplitude(-16.0), 88200, rate=44100), rate=44100)
    assert -16.0 < lv44[0] < -15.9
    with pytest.raises(DspError, match="rate must be >= 1000 samples per second, got 10"):
        active_level_dbm0(x, rate=10)
