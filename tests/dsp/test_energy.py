"""Signal/silence detection on real espeak-ng speech in seeded noise after A-law, streaming and offline."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from scipy.signal import resample_poly

from appliance.errors import DspError
from dsp.energy import SignalDetector, Transition, block_activity, find_message_end, trim_silence
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import active_level_dbm0
from dsp.tones import noise, sine, to_int16
from dsp.wavio import decode_wav, parse_wav
from tests.tools import require_tool

RATE = 8000
ZH = "您好，欢迎致电。咨询请按一，投诉请按二。"
EN = "Hello, thank you for calling. Please leave a message after the tone."


def _espeak(voice: str, text: str) -> np.ndarray:
    exe = require_tool("espeak-ng")
    run = subprocess.run([exe, "-v", voice, "--stdout", text], capture_output=True, check=True, timeout=60)
    wav = decode_wav(parse_wav(run.stdout, f"espeak-ng -v {voice}", streaming=True), "espeak-ng")
    assert wav.rate == 22050
    return resample_poly(wav.samples[0], 160, 441)  # 22,050 Hz -> 8 kHz


@pytest.fixture(scope="module")
def speech():
    """{"zh": ..., "en": ...}: the voiced part only (first to last sample above 0.3 % of the peak), float, 8 kHz."""
    out = {}
    for key, voice, text in (("zh", "cmn", ZH), ("en", "en", EN)):
        x = _espeak(voice, text)
        idx = np.flatnonzero(np.abs(x) > 0.003 * np.abs(x).max())
        out[key] = x[idx[0]:idx[-1] + 1]
    return out


def at_level(x: np.ndarray, level_dbm0: float) -> np.ndarray:
    return x * 10 ** ((level_dbm0 - active_level_dbm0(x)[0][0]) / 20)


def line(parts, noise_dbm0: float | None, seed: int) -> np.ndarray:
    """Concatenate (seconds of silence | speech array) parts, add seeded noise, A-law round trip; int16."""
    x = np.concatenate([np.zeros(round(p * RATE)) if np.isscalar(p) else p for p in parts])
    if noise_dbm0 is not None:
        x = x + noise(x.size, noise_dbm0, seed)
    return alaw_decode(alaw_encode(to_int16(x)))


def run_stream(x: np.ndarray, det: SignalDetector) -> tuple[np.ndarray, list[Transition]]:
    """x : shape (n_channels, n); states per block, shape (n_channels, n_blocks), and all events."""
    nb = x.shape[1] // det.block
    states = np.zeros((x.shape[0], nb), bool)
    events = []
    for k in range(nb):
        st, ev = det.process(x[:, k * det.block:(k + 1) * det.block])
        states[:, k] = st
        events += ev
    return states, events


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_speech_at_minus_30_in_noise_at_minus_50_is_one_message(speech, lang):
    s = at_level(speech[lang], -30.0)
    x = line([2.0, s, 3.0], -50.0, seed=1)
    states, events = run_stream(x[np.newaxis], SignalDetector(1))
    start, end = 2.0, 2.0 + s.size / RATE
    # one signal from the first syllable to the last: pauses between words stay inside the hangover
    assert [e.kind for e in events] == ["signal", "silence"]
    assert events[0].channel == 0 and abs(events[0].time - start) <= 0.06  # a soft 'h' may open
    assert abs(events[1].time - end) <= 0.06
    k0, k1 = round(start / 0.02), round(end / 0.02)
    assert not states[0, :k0 - 1].any() and not states[0, k1 + 27:].any()  # noise alone never counts
    assert states[0, k0 + 3:k1].all()


def test_all_channels_at_once_match_the_offline_rules(speech):
    """36 channels of different lines in one detector; every channel's states equal block_activity's."""
    zh, en = at_level(speech["zh"], -30.0), at_level(speech["en"], -20.0)
    rows = [line([1.0, zh, 1.0], -50.0, seed=10 + i) if i % 3 == 0 else
            line([0.5, en, 2.0], -45.0 + i / 4, seed=10 + i) if i % 3 == 1 else
            line([zh.size / RATE + 2.0], -50.0 - i, seed=10 + i) for i in range(36)]
    n = min(r.size for r in rows)
    x = np.stack([r[:n] for r in rows])
    x[5] = 0  # digital silence
    states, events = run_stream(x, SignalDetector(36))
    _, _, offline = block_activity(x)
    assert np.array_equal(states, offline[:, :states.shape[1]])
    on = {e.channel for e in events if e.kind == "signal"}
    assert on == {i for i in range(36) if i % 3 != 2}
    assert all(e.channel % 3 != 2 for e in events)


def test_hangover_bridges_short_pauses_only(speech):
    s = at_level(speech["en"][:RATE], -25.0)  # the first second: "Hello, thank"
    det = SignalDetector(1, hangover_s=0.5)
    _, events = run_stream(line([1.0, s, 0.4, s, 0.9, s, 2.0], -55.0, seed=2)[np.newaxis], det)
    assert [e.kind for e in events] == ["signal", "silence", "signal", "silence"]
    gap = events[2].time - events[1].time  # the 0.9 s pause ended the first message
    assert gap == pytest.approx(0.9, abs=0.06)
    assert events[1].time == pytest.approx(1.0 + 2 * s.size / RATE + 0.4, abs=0.06)


def test_louder_line_noise_becomes_the_floor_and_speech_still_counts(speech):
    s = at_level(speech["zh"], -20.0)
    x = line([6.0, s, 2.0], -35.0, seed=3)  # 10 dB above the threshold
    det = SignalDetector(1)
    states, events = run_stream(x[np.newaxis], det)
    # from floor_lo (-54) the floor climbs at 3 dB/s until it is 9 dB under the noise (~3.3 s), then 0.5 s of hangover
    first_off = 1 + np.flatnonzero(~states[0, 1:])[0]  # block 0 is the attack
    assert 3.5 < first_off * 0.02 < 4.5
    assert not states[0, first_off:round(6.0 / 0.02) - 1].any()
    assert [e.kind for e in events] == ["signal", "silence", "signal", "silence"]
    assert events[2].time == pytest.approx(6.0, abs=0.04)
    assert det.floor[0] == pytest.approx(-37.0, abs=2.0)


def test_a_steady_tone_fades_into_the_floor_at_the_rise_rate():
    # 450 Hz at -10 dBm0: exactly 9 periods per 20 ms block, so every block measures -10.00 dBm0
    x = sine(450, -10.0, 14 * RATE)[np.newaxis]
    det = SignalDetector(1)
    states, events = run_stream(x, det)
    # after block k the floor is -54 + 0.06 (k + 1): active while -10 > floor + 9, blocks 0..582;
    # the state goes off 25 blocks (0.5 s) later and the event dates the end of block 582
    assert events == [Transition(0, "signal", 0.0), Transition(0, "silence", pytest.approx(583 * 0.02))]
    assert states[0, 1:607].all() and not states[0, 607:].any()
    assert not states[0, 0]  # two blocks of attack


def test_attack_ignores_a_click_and_reset_forgets():
    x = np.zeros((2, 160 * 20))
    x[:, 800:960] = sine(1000, -10.0, 160)  # one loud block
    x[1, 960:1120] = sine(1000, -10.0, 160)  # two on channel 1
    det = SignalDetector(2, hangover_s=0.1)
    states, events = run_stream(x, det)
    assert events == [Transition(1, "signal", pytest.approx(0.1)), Transition(1, "silence", pytest.approx(0.14))]
    assert states[0].sum() == 0 and states[1].tolist() == [False] * 6 + [True] * 5 + [False] * 9
    det.process(np.full((2, 160), 3000, np.int16))
    st, ev = det.process(np.full((2, 160), 3000, np.int16))
    assert st.tolist() == [True, True] and [(e.channel, e.kind) for e in ev] == [(0, "signal"), (1, "signal")]
    det.reset(1)
    assert det.state.tolist() == [True, False] and det.floor[1] == -54.0
    st, ev = det.process(np.full((2, 160), 3000, np.int16), now=100.0)
    assert ev == [] and st.tolist() == [True, False]  # channel 1 starts its attack again
    st, ev = det.process(np.full((2, 160), 3000, np.int16), now=100.02)
    assert ev == [Transition(1, "signal", pytest.approx(100.0))]
    with pytest.raises(ValueError):
        st[0] = False  # the returned state is read-only


def test_detector_errors_name_the_value():
    with pytest.raises(DspError, match="n_channels must be an integer >= 1, got 0"):
        SignalDetector(0)
    with pytest.raises(DspError, match=r"threshold_dbm0 must be a number in -100.0..3.14, got 10"):
        SignalDetector(2, threshold_dbm0=10)
    with pytest.raises(DspError, match="hangover_s must be a number in 0.0..3600.0, got -1"):
        SignalDetector(2, hangover_s=-1)
    det = SignalDetector(2)
    with pytest.raises(DspError, match=r"x must have shape \(2, 160\), got \(2, 80\)"):
        det.process(np.zeros((2, 80)))
    with pytest.raises(DspError, match="expected an int or float ndarray, got complex128"):
        det.process(np.zeros((2, 160), complex))
    with pytest.raises(DspError, match="channel must be in 0..1, got 2"):
        det.reset(2)
    with pytest.raises(DspError, match="unknown detector setting 'treshold_dbm0'"):
        block_activity(np.zeros(800), treshold_dbm0=-30)


def test_trim_silence_keeps_the_speech_and_a_margin(speech):
    s = at_level(speech["zh"], -30.0)
    x = line([1.5, s, 2.5], -50.0, seed=4)
    start, stop = trim_silence(x, margin_s=0.1)
    assert start == pytest.approx(1.5 * RATE - 800, abs=0.04 * RATE)
    assert stop == pytest.approx(1.5 * RATE + s.size + 800, abs=0.04 * RATE)
    assert stop - start < x.size - 3.5 * RATE
    # stereo: decided on the mix; bounds clipped to the signal
    st = np.stack([x, np.zeros_like(x)])
    assert trim_silence(st, margin_s=0.1) == (start, stop)
    assert trim_silence(x, margin_s=5.0) == (0, x.size)
    assert trim_silence(line([3.0], -50.0, seed=5)) == (0, 0)
    assert trim_silence(np.zeros(8000, np.int16)) == (0, 0)
    # at 16 kHz the blocks are 320 samples: same answer on the same speech
    s16, x16 = resample_poly(s, 2, 1), resample_poly(x.astype(np.float64), 2, 1)
    assert s16.size == 2 * s.size
    a, b = trim_silence(x16, rate=16000, margin_s=0.1)
    assert abs(a - 2 * start) <= 0.04 * 16000 and abs(b - 2 * stop) <= 0.04 * 16000


def test_end_of_message_after_n_seconds_of_silence(speech):
    s = at_level(speech["en"], -28.0)
    x = line([1.0, s, 1.2, s, 3.5], -52.0, seed=6)
    end2 = (1.0 + 2 * s.size / RATE + 1.2) * RATE
    end1 = (1.0 + s.size / RATE) * RATE
    assert find_message_end(x, silence_s=3.0) == pytest.approx(end2, abs=0.06 * RATE)
    assert find_message_end(x, silence_s=1.0) == pytest.approx(end1, abs=0.06 * RATE)
    assert find_message_end(x[:round(end2 + 2.0 * RATE)], silence_s=3.0) is None  # still waiting
    assert find_message_end(line([4.0], -52.0, seed=7), silence_s=3.0) is None  # nobody spoke
    # the streaming detector with hangover = the silence gives the same time
    _, events = run_stream(x[np.newaxis], SignalDetector(1, hangover_s=3.0))
    assert [e.kind for e in events] == ["signal", "silence"]
    assert events[1].time * RATE == find_message_end(x, silence_s=3.0)
