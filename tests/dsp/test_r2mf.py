"""MFC/R2 MF signals: the Q.441 frequency pairs, the sender, the receiver's Q.455 limits, and spandsp as a peer."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import tone_level_dbm0
from dsp.r2mf import BACKWARD_HZ, FORWARD_HZ, PAIRS, R2MfDetector, R2MfSender, mf_tone, signal_freqs
from dsp.signals import speech_like
from dsp.tones import noise, sine, to_int16
from tests.tools import require_tool

DIRECTIONS = [True, False]
IDS = ["forward", "backward"]


def alaw(x: np.ndarray) -> np.ndarray:
    return alaw_decode(alaw_encode(to_int16(x)))


def detect(x: np.ndarray, forward: bool) -> list[tuple[int, int | None]]:
    """(sample where the tick ends, signal or None) for every change our receiver reports on one channel."""
    n = -(-x.size // 160) * 160 + 480
    buf = np.zeros(n)
    buf[:x.size] = x
    det = R2MfDetector(1, forward)
    out = []
    for i in range(0, n, 160):
        out += [(i + 160, s) for _, s in det.process(buf[None, i:i + 160])]
    return out


def heard(x: np.ndarray, forward: bool) -> list[int]:
    return [s for _, s in detect(x, forward) if s is not None]


def pair(f1: float, f2: float, l1: float = -8.0, l2: float = -8.0, on_ms: int = 80, lead: int = 37) -> np.ndarray:
    x = sine((f1, f2), (l1, l2), on_ms * 8)
    return np.concatenate([np.zeros(lead), x, np.zeros(400)])


# --- the code and the sender --------------------------------------------------------------------

def test_pairs_are_the_q441_table_weights_0_1_2_4_7_11():
    weights = (0, 1, 2, 4, 7, 11)
    assert sorted(PAIRS) == list(range(1, 16)) and len(set(PAIRS.values())) == 15
    for n, (i, j) in PAIRS.items():
        if n not in (10, 14, 15):  # Q.441: 10 is 4+7; 14 and 15 are the last two pairs with f5
            assert weights[i] + weights[j] == n
    assert PAIRS[10] == (3, 4) and PAIRS[14] == (3, 5) and PAIRS[15] == (4, 5)
    assert signal_freqs(1, True) == (1380.0, 1500.0) and signal_freqs(15, False) == (660.0, 540.0)
    assert np.allclose(np.diff(FORWARD_HZ), 120.0) and np.allclose(np.diff(BACKWARD_HZ), -120.0)
    with pytest.raises(DspError, match="1..15"):
        signal_freqs(16, True)


def test_mf_tone_level_and_phase_continuity():
    x = mf_tone(6, True, 800)
    assert x.dtype == np.int16
    for f in signal_freqs(6, True):
        assert tone_level_dbm0(x, f)[0] == pytest.approx(-8.0, abs=0.05)
    np.testing.assert_array_equal(np.concatenate([mf_tone(6, True, 300), mf_tone(6, True, 500, start=300)]), x)


def test_sender_is_phase_continuous_per_channel_and_leaves_other_rows_alone():
    tx = R2MfSender(3, forward=False)
    tx.set(0, 7)
    tx.set(2, 12)
    frames = []
    for _ in range(4):
        out = np.full((3, 160), 99, np.int16)
        tx.fill(out)
        frames.append(out.copy())
    got = np.concatenate(frames, axis=1)
    np.testing.assert_array_equal(got[0], mf_tone(7, False, 640))
    np.testing.assert_array_equal(got[2], mf_tone(12, False, 640))
    assert (got[1] == 99).all()
    tx.set(0, None)
    assert list(tx.sending) == [2] and tx.get(2) == 12 and tx.get(0) is None
    out = np.zeros((3, 160), np.int16)
    out[2] = 1000
    tx.fill(out, add=True)
    np.testing.assert_array_equal(out[2], to_int16(mf_tone(12, False, 800)[640:].astype(float) + 1000))


# --- the receiver: what it must accept ------------------------------------------------------------

@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_all_15_signals_after_alaw_with_recognition_within_40_ms(forward):
    for s in range(1, 16):
        x = alaw(np.concatenate([np.zeros(37), mf_tone(s, forward, 640), np.zeros(400)]))
        changes = detect(x, forward)
        assert [c[1] for c in changes] == [s, None], s
        assert changes[0][0] - 37 <= 8 * 40 + 160  # at the end of the tick that holds the 40 ms mark


@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
@pytest.mark.parametrize("level", [-5.0, -20.0, -35.0])
@pytest.mark.parametrize("offset", [-10.0, 10.0])
def test_levels_minus_5_to_minus_35_and_10_hz_off(forward, level, offset):
    for s in (1, 6, 10, 15):
        f1, f2 = signal_freqs(s, forward)
        assert heard(alaw(pair(f1 + offset, f2 + offset, level, level)), forward) == [s], (s, level, offset)


@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_twist_5_db_adjacent_and_7_db_apart_accepted_20_db_rejected(forward):
    g = FORWARD_HZ if forward else BACKWARD_HZ
    for s, (i, j) in PAIRS.items():
        twist = 5.0 if abs(i - j) == 1 else 7.0
        for lo, hi in ((-10.0, -10.0 - twist), (-12.0 - twist, -12.0)):
            assert heard(alaw(pair(g[i], g[j], lo, hi)), forward) == [s], (s, lo, hi)
        assert heard(alaw(pair(g[i], g[j], -5.0, -25.0)), forward) == []


@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_many_channels_at_once_each_its_own_signal(forward):
    det = R2MfDetector(15, forward)
    tx = R2MfSender(15, forward)
    for ch in range(15):
        tx.set(ch, ch + 1)
    seen = {}
    for _ in range(5):
        x = alaw_decode(alaw_encode(tx.fill(np.zeros((15, 160), np.int16))))
        seen.update(det.process(x))
    assert seen == {ch: ch + 1 for ch in range(15)}
    assert det.current(3) == 4
    det.reset(3)
    assert det.current(3) is None


# --- the receiver: what it must reject ------------------------------------------------------------

@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_one_tone_three_tones_and_the_other_group_are_no_signal(forward):
    g = FORWARD_HZ if forward else BACKWARD_HZ
    other = BACKWARD_HZ if forward else FORWARD_HZ
    for f in g:
        assert heard(alaw(np.concatenate([sine(f, -8.0, 800), np.zeros(400)])), forward) == []
    three = sine((g[0], g[2], g[4]), -8.0, 800)
    assert heard(alaw(np.concatenate([three, np.zeros(400)])), forward) == []
    assert heard(alaw(pair(other[0], other[1])), forward) == []


@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_7_ms_bursts_are_ignored_and_7_ms_breaks_do_not_end_a_signal(forward):
    for lead in range(0, 160, 10):
        burst = np.concatenate([np.zeros(lead), mf_tone(5, forward, 56, level_dbm0=-5.0), np.zeros(500)])
        assert heard(alaw(burst), forward) == [], lead
        on = mf_tone(5, forward, 800)
        broken = np.concatenate([np.zeros(lead), on[:400], np.zeros(56), on[456:], np.zeros(500)])
        assert [s for _, s in detect(alaw(broken), forward)] == [5, None], lead


@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_no_signals_in_speech_noise_or_silence(forward):
    x = speech_like(60.0, seed=7, level_dbm0=-15.0)
    assert detect(alaw(x), forward) == []
    assert detect(alaw(noise(10.0, -20.0, seed=3)), forward) == []
    assert detect(np.zeros(8000), forward) == []


def test_no_signals_in_two_minutes_of_real_speech_either_group():
    from tests.dsp.speech import espeak_corpus

    x = alaw_decode(alaw_encode(espeak_corpus(require_tool("espeak-ng"), 2.0, seed=11))).astype(float)
    n = x.size // (8 * 160) * 160
    rows = x[:8 * n].reshape(8, n)  # eight channels of it at once
    for forward in DIRECTIONS:
        det = R2MfDetector(8, forward)
        hits = [hit for i in range(0, n, 160) for hit in det.process(rows[:, i:i + 160])]
        assert hits == [], forward


def test_bad_input_is_refused_by_name():
    det = R2MfDetector(2, True)
    with pytest.raises(DspError, match=r"expected shape \(2, 160\)"):
        det.process(np.zeros((2, 80), np.int16))
    with pytest.raises(DspError, match="1..15 or None"):
        R2MfSender(1, True).set(0, 0)


# --- spandsp (libspandsp2) as the peer --------------------------------------------------------------

@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_spandsp_tones_are_heard_by_ours_after_alaw(forward):
    from tests.peers.spandsp import r2_mf_tx

    for s in range(1, 16):
        x = r2_mf_tx(s, forward, 640)
        for f in signal_freqs(s, forward):  # spandsp sends each frequency at -11 dBm0 (Q.454: -11.5 +- 1)
            assert tone_level_dbm0(x, f)[0] == pytest.approx(-11.0, abs=0.5)
        x = alaw_decode(alaw_encode(np.concatenate([np.zeros(53, np.int16), x, np.zeros(400, np.int16)])))
        assert [c[1] for c in detect(x, forward)] == [s, None], s


@pytest.mark.parametrize("forward", DIRECTIONS, ids=IDS)
def test_our_tones_are_heard_by_spandsp_after_alaw(forward):
    from tests.peers.spandsp import R2MfRx

    tx = R2MfSender(1, forward)
    rx = R2MfRx(forward)
    try:
        for s in range(1, 16):
            tx.set(0, s)
            for tick in range(8):  # 100 ms on, 60 ms off
                if tick == 5:
                    tx.set(0, None)
                out = tx.fill(np.zeros((1, 160), np.int16))
                rx.process(alaw_decode(alaw_encode(out[0])))
        assert rx.signals() == list(range(1, 16))
        assert [s for _, s in rx.changes][1::2] == [None] * 15
    finally:
        rx.close()
