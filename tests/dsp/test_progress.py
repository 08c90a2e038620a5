"""Call-progress detection: every plan tone by name and time, its tolerances, outcomes, and speech that is never a tone.

Most tests put every signal on its own channel of one detector, as the media
tick does, and check each channel's result on its own.
"""

from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest
from scipy.signal import resample_poly

from appliance.errors import DspError
from dsp.cadence import Segments
from dsp.g711 import alaw_decode, alaw_encode
from dsp.progress import OUTCOMES, OutcomeEvent, ProgressDetector, ToneEvent, detect_progress
from dsp.signals import speech_like
from dsp.toneplans import PLANS
from dsp.tones import cadence, noise, to_int16, tone_signal
from dsp.voice import VoiceDetector, frame_features, voiced_frames
from dsp.wavio import parse_wav
from tests.tools import require_tool

BLOCK_S = 0.02
CADENCED = {p: [n for n, s in PLANS[p].tones.items() if s.on_off] for p in PLANS}
CHINA_450 = ["dial", "ringback", "busy", "congestion", "vacant", "call_waiting"]
TEXTS = {"cmn": "喂，你好，我是张经理。请问你找哪位？有什么事情吗？",
         "en": "Hello? Yes, this is Mister Zhang speaking. Who is calling, please?"}


def make(spec, lead=0, level=None, scale=1.0, df=0.0, snr=None, seed=0):
    """Whole cycles of ``spec`` after ``lead`` samples of silence (continuous tones: 3 s); float64 and its end, s."""
    spec = dataclasses.replace(
        spec, on_off=tuple((a * scale, b * scale) for a, b in spec.on_off),
        freqs=tuple(f + df for f in spec.freqs), on_freqs=tuple(tuple(f + df for f in fs) for fs in spec.on_freqs))
    cycle = sum(map(sum, spec.on_off)) if spec.on_off else 3.0
    total = cycle * max(1, int(np.ceil(3.0 / cycle))) if spec.on_off else 3.0
    x = np.concatenate([np.zeros(lead), tone_signal(spec, total, level)]).astype(np.float64)
    if snr is not None:  # noise power relative to one step's tone power (a dual tone: both sines)
        lv = (spec.level_dbm0 if level is None else level) + 10 * np.log10(len(spec.on_freqs[0] if spec.on_freqs
                                                                                  else spec.freqs))
        x += noise(x.size, lv - snr, seed)
    return x, lead / 8000 + total


def run(signals, plan="cn", pad_s=4.6, **options):
    """Each signal on its own channel of one detector, zero-padded to a common length.

    Returns per channel: (tones as (name, start_s, end_s), the outcome decided while streaming or None,
    all events including those of ``finish``).
    """
    n = max(s.size for s in signals) + int(pad_s * 8000)
    n += -n % 160
    x = np.zeros((len(signals), n), np.int16)
    for i, s in enumerate(signals):
        x[i, : s.size] = to_int16(s) if s.dtype != np.int16 else s
    det = ProgressDetector(len(signals), plan=plan, **options)
    events = []
    for i in range(n // 160):
        events += det.process(x[:, i * 160:(i + 1) * 160])
    outcomes = [det.outcome(ch) for ch in range(len(signals))]
    for ch in range(len(signals)):
        events += det.finish(ch)
    out = []
    for ch, outcome in enumerate(outcomes):
        mine = [e for e in events if e.channel == ch]
        tones = [(e.tone, e.start_s, e.end_s) for e in mine if isinstance(e, ToneEvent) and e.end_s is not None]
        out.append((tones, outcome, mine))
    return out


def assert_one_tone(result, name, start, end):
    tones = result[0]
    assert [t[0] for t in tones] == [name], tones
    assert tones[0][1] == pytest.approx(start, abs=BLOCK_S) and tones[0][2] == pytest.approx(end, abs=BLOCK_S), tones


@pytest.fixture(scope="module")
def espeak_speech():
    """Mandarin and English phrases from espeak-ng, at 8 kHz, -18 dBm0-ish, int16."""
    espeak = require_tool("espeak-ng")
    out = {}
    for voice, text in TEXTS.items():
        run_ = subprocess.run([espeak, "-v", voice, "--stdout", text], capture_output=True, check=True, timeout=60)
        info = parse_wav(run_.stdout, f"espeak-ng -v {voice}", streaming=True)  # --stdout leaves sizes unset
        assert info.rate == 22050 and info.bits == 16
        x = resample_poly(np.frombuffer(info.data, "<i2").astype(np.float64), 160, 441)
        out[voice] = to_int16(x * (4000.0 / np.sqrt(np.mean(x ** 2))))
    return out


# --- every tone, its name and its time ------------------------------------------------------

@pytest.mark.parametrize("plan", ["cn", "us"])
def test_every_tone_is_named_with_start_and_end_at_any_alignment(plan):
    names = list(PLANS[plan].tones)
    leads = [0, 37, 80, 123]
    cases = [(name, lead) for name in names for lead in leads]
    sigs = [make(PLANS[plan].tones[name], lead) for name, lead in cases]
    for (name, lead), (_, end), res in zip(cases, sigs, run([s for s, _ in sigs], plan)):
        assert_one_tone(res, name, lead / 8000, end)


@pytest.mark.parametrize("plan", ["cn", "us"])
def test_cadence_within_8_percent_accepted_and_20_percent_rejected(plan):
    names = CADENCED[plan]
    ok = [(n, s) for n in names for s in (0.92, 1.08)]
    bad = [(n, s) for n in names for s in (0.8, 1.2)]
    sigs = [make(PLANS[plan].tones[n], 19, scale=s) for n, s in ok + bad]
    results = run([s for s, _ in sigs], plan)
    for (name, scale), (_, end), res in zip(ok, sigs, results):
        # the last off period runs into the padding: it counts up to its nominal length
        last_off = PLANS[plan].tones[name].on_off[-1][1]
        assert_one_tone(res, name, 19 / 8000, end + (1.0 - scale) * last_off)
    for (name, scale), res in zip(bad, results[len(ok):]):
        # not that tone; its last burst and the silence after may still look like another
        # one-burst cadence (0.42 s then 4 s of silence is a call-waiting cycle)
        assert name not in [t[0] for t in res[0]] and res[1] in (None, "silence"), (name, scale, res)


def test_china_450_within_20_hz_accepted_60_hz_rejected():
    ok = [(n, d) for n in CHINA_450 for d in (-20.0, 20.0)]
    bad = [(n, d) for n in CHINA_450 for d in (-60.0, 60.0)]
    sigs = [make(PLANS["cn"].tones[n], 11, df=d) for n, d in ok + bad]
    results = run([s for s, _ in sigs])
    for (name, _), (_, end), res in zip(ok, sigs, results):
        assert_one_tone(res, name, 11 / 8000, end)
    assert all(res[0] == [] for res in results[len(ok):])


@pytest.mark.parametrize("plan", ["cn", "us"])
def test_levels_from_minus_5_to_minus_35_dbm0(plan):
    cases = [(n, lv) for n in PLANS[plan].tones for lv in (-5.0, -20.0, -35.0)]
    sigs = [make(PLANS[plan].tones[n], 50, level=lv) for n, lv in cases]
    quiet = [make(spec, 50, level=-48.0)[0] for spec in PLANS[plan].tones.values()]  # below MIN_TONE_DBM0
    results = run([s for s, _ in sigs] + quiet, plan)
    for (name, _), (_, end), res in zip(cases, sigs, results):
        assert_one_tone(res, name, 50 / 8000, end)
    assert all(res[0] == [] for res in results[len(cases):])


@pytest.mark.parametrize("plan", ["cn", "us"])
def test_white_noise_at_15_db_snr_and_alaw_round_trip(plan):
    names = list(PLANS[plan].tones)
    noisy = [make(PLANS[plan].tones[n], 37, snr=15.0, seed=i) for i, n in enumerate(names)]
    coded = []
    for n in names:
        x, end = make(PLANS[plan].tones[n], 51, level=-30.0)
        coded.append((alaw_decode(alaw_encode(to_int16(x))), end))
    results = run([s for s, _ in noisy + coded], plan)
    for name, lead, (_, end), res in zip(names * 2, [37] * len(names) + [51] * len(names), noisy + coded, results):
        assert_one_tone(res, name, lead / 8000, end)


def test_a_dual_tone_needs_both_frequencies_within_10_db():
    spec = PLANS["us"].tones["busy"]  # 480 + 620 Hz at -24 dBm0, 0.5 s / 0.5 s
    sigs = [cadence(spec.freqs, levels, spec.on_off, 4.0)
            for levels in ((-24.0, -200.0), (-200.0, -24.0), (-24.0, -37.0), (-24.0, -32.0))]
    assert [res[0] for res in run(sigs, "us")] == [[], [], [], [("busy", 0.0, 4.0)]]


# --- outcomes -----------------------------------------------------------------------------------

def test_each_outcome_from_its_signal(espeak_speech):
    cn = PLANS["cn"].tones
    rb = tone_signal(cn["ringback"], 15.0)
    cases = {
        "answered": np.concatenate([rb, espeak_speech["cmn"]]),
        "busy": tone_signal(cn["busy"], 3.5),
        "congestion": tone_signal(cn["congestion"], 4.2),
        "vacant": tone_signal(cn["vacant"], 3.2),
        "special_information": np.concatenate([tone_signal(cn["sit"], 0.99), espeak_speech["cmn"]]),
        "fax": tone_signal(cn["cng"], 7.0),
        "ced": tone_signal(cn["ced"], 3.3),
        "no_answer": tone_signal(cn["ringback"], 40.0),
        "silence": np.zeros(8000, np.int16),
        "noise": to_int16(noise(8000 * 5, -50.0, seed=3)),
    }
    results = run(list(cases.values()), pad_s=0.0, silence_s=4.0)
    got = dict(zip(cases, results))
    for name in ("answered", "busy", "congestion", "vacant", "special_information", "fax", "no_answer"):
        assert got[name][1] == name, (name, got[name][:2])
    assert got["ced"][1] == "fax"
    assert got["noise"][1] == "silence" and got["silence"][1] == "silence"
    # when each was decided, seconds from the start
    at = {name: next(e.at_s for e in res[2] if isinstance(e, OutcomeEvent)) for name, res in got.items()
          if res[1] is not None}
    assert 15.0 < at["answered"] < 15.6  # the first syllables of speech after three rings
    assert at["busy"] == pytest.approx(1.05, abs=0.05)  # one and a half cycles
    assert at["special_information"] == pytest.approx(0.99 + 0.9, abs=0.05)  # SIT, not the announcement
    assert at["no_answer"] == pytest.approx(30.0, abs=BLOCK_S)
    assert at["noise"] == pytest.approx(4.0, abs=BLOCK_S) and at["silence"] == pytest.approx(4.0, abs=BLOCK_S)
    assert got["answered"][0] == [("ringback", 0.0, 15.0)]
    assert [t[0] for t in got["special_information"][0]] == ["sit"]


def test_no_answer_after_a_number_of_rings_and_events_in_order():
    rb = tone_signal(PLANS["us"].tones["ringback"], 20.0)
    (tones, outcome, events), = run([rb], "us", pad_s=0.0, no_answer_rings=2)
    assert outcome == "no_answer"
    assert events == [ToneEvent(0, "ringback", 0.0, None), OutcomeEvent(0, "no_answer", 12.0),
                      ToneEvent(0, "ringback", 0.0, 20.0)]  # the last from finish()


def test_offline_helper_matches_the_streaming_channels_and_finishes_the_signal(espeak_speech):
    cn = PLANS["cn"].tones
    sigs = [make(spec, lead, snr=20.0, seed=lead)[0] for lead, spec in zip((0, 45, 90), cn.values())]
    n = -(-max(s.size for s in sigs) // 160) * 160
    padded = [np.concatenate([s, np.zeros(n - s.size)]) for s in sigs]
    for res, x in zip(run(padded, pad_s=0.0), padded):  # a channel among others = the channel alone
        assert detect_progress(to_int16(x))[0] == res[0] and res[0]
    x = np.concatenate([tone_signal(cn["ringback"], 10.0), espeak_speech["en"]])
    assert detect_progress(x) == ([("ringback", 0.0, 10.0)], "answered")
    assert detect_progress(tone_signal(cn["ringback"], 6.0)) == ([("ringback", 0.0, 6.0)], "no_answer")
    assert detect_progress(tone_signal(cn["dial"], 2.5)) == ([("dial", 0.0, 2.5)], "silence")
    assert detect_progress(tone_signal(cn["busy"], 2.1).reshape(1, -1)) == ([("busy", 0.0, 2.1)], "busy")
    us = tone_signal(PLANS["us"].tones["congestion"], 2.0)
    assert detect_progress(us, "us") == ([("congestion", 0.0, 2.0)], "congestion")
    assert detect_progress(us, "cn") == ([], "silence")  # not a China tone


def test_reset_restarts_a_channel_and_leaves_the_others():
    busy = tone_signal(PLANS["cn"].tones["busy"], 2.8)
    det = ProgressDetector(2)
    x = np.stack([busy, busy])
    for i in range(70):
        det.process(x[:, i * 160:(i + 1) * 160])
        if i == 34:
            det.reset(1)
    assert det.outcome(0) == "busy" and det.tone(0) == "busy"
    assert det.outcome(1) is None and det.tone(1) is None  # reset mid-way: the rest is not a whole cadence yet
    events = []
    for i in range(70):
        events += det.process(x[:, i * 160:(i + 1) * 160])
    assert OutcomeEvent(1, "busy", pytest.approx(1.05, abs=0.05)) in events  # its clock restarted at the reset
    assert not any(isinstance(e, OutcomeEvent) and e.channel == 0 for e in events)


def test_a_reset_channel_is_a_fresh_one_though_decided_channels_skip_speech_analysis(espeak_speech):
    def feed(det, x):
        x = to_int16(x)[: x.size // 160 * 160].reshape(1, -1)
        return [e for i in range(0, x.shape[1], 160) for e in det.process(x[:, i:i + 160])]

    call = np.concatenate([tone_signal(PLANS["cn"].tones["ringback"], 6.0), espeak_speech["cmn"]])
    fresh = feed(ProgressDetector(1), call)
    assert fresh[0] == ToneEvent(0, "ringback", 0.0) and [(e.outcome, e.at_s > 6.0) for e in fresh
                                                          if isinstance(e, OutcomeEvent)] == [("answered", True)]
    det = ProgressDetector(1)
    feed(det, espeak_speech["en"])  # answered within the first syllables: the rest skips the voice classifier
    assert det.outcome(0) == "answered"
    det.reset(0)
    assert feed(det, call) == fresh


def test_channels_stepped_one_by_one_or_all_at_once_give_the_same_events(monkeypatch):
    cn = PLANS["cn"].tones
    sigs = [make(spec, lead, snr=10.0, seed=lead)[0] for lead, spec in zip(range(0, 900, 100), cn.values())]
    results = []
    for many in (0, 10**6):  # blocks where more than ``MANY`` channels may change go all at once
        monkeypatch.setattr(Segments, "MANY", many)
        results.append(run(sigs))
    assert results[0] == results[1] and all(res[0] for res in results[0])


# --- speech is never a tone, and is what answered means --------------------------------------

@pytest.mark.parametrize("plan", ["cn", "us"])
def test_speech_is_never_a_tone(plan, espeak_speech):
    speech = [espeak_speech["cmn"], espeak_speech["en"]] + [to_int16(speech_like(6.0, seed)) for seed in range(4)]
    speech += [to_int16(s.astype(float) * 0.1) for s in speech[:2]]  # 20 dB quieter
    speech += [to_int16(espeak_speech["cmn"] + noise(espeak_speech["cmn"].size, -36.0, seed=9))]
    for tones, outcome, _ in run(speech, plan, pad_s=0.0):
        assert tones == [] and outcome == "answered"


def test_voice_detector_speech_versus_every_plan_tone(espeak_speech):
    tones = [make(spec, snr=15.0, seed=i)[0] for p in PLANS.values() for i, spec in enumerate(p.tones.values())]
    speech = [espeak_speech["cmn"], espeak_speech["en"], speech_like(4.0, 1)]
    others = [noise(8000 * 3, -20.0, seed=2), np.zeros(8000)]
    sigs = tones + speech + others
    n = max(s.size for s in sigs) // 160 * 160
    x = np.zeros((len(sigs), n))
    for i, s in enumerate(sigs):
        x[i, : min(n, s.size)] = s[:n]
    det = VoiceDetector(len(sigs))
    speaking = np.stack([det.process(x[:, i:i + 160]) for i in range(0, n, 160)], axis=1)
    assert not speaking[: len(tones)].any()
    assert not speaking[len(tones) + len(speech):].any()
    first = [np.argmax(row) * BLOCK_S for row in speaking[len(tones):len(tones) + len(speech)]]
    assert all(row.any() for row in speaking[len(tones):len(tones) + len(speech)])
    assert max(first) < 0.6  # within the first syllables
    assert voiced_frames(x[len(tones)]).mean() > 0.4  # Mandarin: most frames are voiced


def test_frame_features_of_a_tone_noise_and_silence():
    tone = to_int16(tone_signal(PLANS["cn"].tones["dial"], 0.02, level_dbm0=-10.0))
    wn = noise(160, -20.0, seed=4)
    level, flat, peak = frame_features(np.stack([tone, wn, np.zeros(160)]).astype(float))
    assert level[0] == pytest.approx(-10.0, abs=0.01) and level[1] == pytest.approx(-20.0, abs=1e-6)
    assert level[2] == pytest.approx(-120.0)
    assert flat[0] < 1e-3 and peak[0] > 0.99
    assert 0.4 < flat[1] < 0.7 and peak[1] < 0.5


# --- errors ---------------------------------------------------------------------------------------

def test_errors_name_the_bad_value():
    with pytest.raises(DspError, match=r"tone plan must be one of cn, us, got 'uk'"):
        ProgressDetector(1, plan="uk")
    det = ProgressDetector(2)
    with pytest.raises(DspError, match=r"expected shape \(2, 160\), got \(2, 80\)"):
        det.process(np.zeros((2, 80)))
    with pytest.raises(DspError, match=r"expected an int16 or float ndarray, got complex128"):
        det.process(np.zeros((2, 160), complex))
    with pytest.raises(DspError, match=r"channel must be in 0..1, got 2"):
        det.reset(2)
    with pytest.raises(DspError, match=r"no_answer_rings must be >= 1 or None, got 0"):
        ProgressDetector(1, no_answer_rings=0)
    with pytest.raises(DspError, match=r"silence_s must be a number of seconds > 0, got -1"):
        ProgressDetector(1, silence_s=-1)
    with pytest.raises(DspError, match=r"expected shape \(n_samples,\) or \(1, n_samples\), got \(2, 160\)"):
        detect_progress(np.zeros((2, 160)))
    assert OUTCOMES == ("answered", "busy", "no_answer", "congestion", "vacant", "special_information", "fax",
                        "silence")
