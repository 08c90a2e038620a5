"""Per-tick cost of the dsp pieces on one 20 ms block of 36 channels (the media tick's budget is 1 ms).

Where the issue names a reference, the reference runs in the same session on the
same audio and a ratio test compares the medians: G.711 against Python's
``audioop`` channel by channel, DTMF detection against spandsp's ``dtmf_rx``
channel by channel through cffi.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from dsp.dtmf import DtmfDetector
from dsp.g711 import alaw_decode, alaw_encode
from dsp.signals import speech_like
from dsp.tones import CHINA_TONES, ToneGenerator, to_int16

N_CH, BLOCK = 36, 160


@pytest.fixture(scope="module")
def voice():
    """One second of a different seeded voice on each of the 36 channels, int16."""
    return to_int16(np.stack([speech_like(1.0, seed=ch, level_dbm0=-18.0) for ch in range(N_CH)]))


def test_alaw_decode_36_channels(benchmark, voice):
    codes = alaw_encode(voice[:, :BLOCK])
    out = np.empty((N_CH, BLOCK), np.int16)
    benchmark(alaw_decode, codes, out)
    np.testing.assert_array_equal(out, alaw_decode(codes))


def test_alaw_encode_36_channels(benchmark, voice):
    out = np.empty((N_CH, BLOCK), np.uint8)
    benchmark(alaw_encode, voice[:, :BLOCK], out)
    np.testing.assert_array_equal(out, alaw_encode(voice[:, :BLOCK]))


def test_tone_generator_6_active_of_36(benchmark):
    gen = ToneGenerator(N_CH, BLOCK)
    for k, name in enumerate(("dial", "ringback", "busy", "congestion", "vacant", "call_waiting")):
        spec = CHINA_TONES[name]
        gen.start(6 * k, spec.freqs, spec.level_dbm0, spec.on_off)
    out = np.zeros((N_CH, BLOCK), np.float32)
    benchmark(gen.add_to, out)
    assert out[1:6].sum() == 0 and out[0].any()


# --- against references, same run, same audio -------------------------------------------------

MEDIANS: dict[str, float] = {}


def record(benchmark, name: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        MEDIANS[name] = stats.stats.median
        benchmark.extra_info["median_us"] = round(stats.stats.median * 1e6, 2)


def ratio(ours: str, ref: str) -> float:
    if ours not in MEDIANS or ref not in MEDIANS:
        pytest.skip("needs both benchmarks measured in this run")
    r = MEDIANS[ours] / MEDIANS[ref]
    print(f"\n{ours}: {MEDIANS[ours] * 1e6:.1f} us, {ref}: {MEDIANS[ref] * 1e6:.1f} us, ratio {r:.2f}")
    return r


@pytest.fixture(scope="module")
def audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # removed in 3.13; here only as the yardstick
        return pytest.importorskip("audioop")


def g711_ours_tick(voice):
    """One tick both ways: decode what 36 channels sent, encode what they will hear."""
    pcm, codes = voice[:, :BLOCK], alaw_encode(voice[:, BLOCK:2 * BLOCK])
    enc, dec = np.empty((N_CH, BLOCK), np.uint8), np.empty((N_CH, BLOCK), np.int16)

    def tick():
        alaw_decode(codes, dec)
        alaw_encode(pcm, enc)
        return dec, enc

    return tick


def g711_audioop_tick(voice, audioop):
    pcm_rows = [r.tobytes() for r in voice[:, :BLOCK]]
    code_rows = [c.tobytes() for c in alaw_encode(voice[:, BLOCK:2 * BLOCK])]

    def tick():
        return [audioop.alaw2lin(c, 2) for c in code_rows], [audioop.lin2alaw(p, 2) for p in pcm_rows]

    return tick


@pytest.mark.benchmark(group="g711-tick")
def test_g711_tick_ours(benchmark, voice):
    dec, _ = benchmark(g711_ours_tick(voice))
    record(benchmark, "g711 ours")
    np.testing.assert_array_equal(dec, alaw_decode(alaw_encode(voice[:, BLOCK:2 * BLOCK])))


@pytest.mark.benchmark(group="g711-tick")
def test_g711_tick_audioop(benchmark, voice, audioop):
    dec, enc = benchmark(g711_audioop_tick(voice, audioop))
    record(benchmark, "g711 audioop")
    # the yardstick does the same work: bit-exact with ours
    assert b"".join(enc) == alaw_encode(voice[:, :BLOCK]).tobytes()
    assert b"".join(dec) == alaw_decode(alaw_encode(voice[:, BLOCK:2 * BLOCK])).tobytes()


def test_g711_tick_ratio_at_most_1(voice, audioop):
    r = ratio("g711 ours", "g711 audioop")
    if r > 1.0:  # measured again with the two in alternation before failing (see interleaved_ratio)
        r = interleaved_ratio(g711_ours_tick(voice), g711_audioop_tick(voice, audioop), calls=2000)
        print(f"g711: measured again, in alternation: ratio {r:.2f}")
    assert r <= 1.0, f"g711: ours takes {r:.2f} times audioop's time"


@pytest.fixture(scope="module")
def talk():
    """36 channels of real speech: a seeded minute of espeak-ng (Mandarin and English, 8 voices), A-law."""
    from tests.dsp.speech import espeak_corpus
    from tests.tools import require_tool

    x = alaw_decode(alaw_encode(espeak_corpus(require_tool("espeak-ng"), minutes=1.0, seed=5)))
    n = x.size // N_CH // BLOCK * BLOCK
    return np.ascontiguousarray(x[:N_CH * n].reshape(N_CH, n))


def ours_tick(audio):
    """Our DTMF receiver on the next block of 36 channels of ``audio``, per call; and its cleanup."""
    det = DtmfDetector(N_CH, BLOCK)
    blocks = [np.ascontiguousarray(audio[:, i * BLOCK:(i + 1) * BLOCK]) for i in range(audio.shape[1] // BLOCK)]
    state = {"i": 0}

    def tick():
        state["i"] += 1
        return det.process(blocks[state["i"] % len(blocks)])

    return tick, lambda: None


def spandsp_tick(audio):
    """spandsp's dtmf_rx on the same blocks, one call per channel; and the cleanup freeing its states."""
    from tests.peers.spandsp import require_spandsp

    ffi, lib = require_spandsp()
    blocks = [np.ascontiguousarray(audio[:, i * BLOCK:(i + 1) * BLOCK]) for i in range(audio.shape[1] // BLOCK)]
    frame = np.zeros((N_CH, BLOCK), np.int16)
    states = [lib.dtmf_rx_init(ffi.NULL, ffi.NULL, ffi.NULL) for _ in range(N_CH)]
    pairs = [(s, ffi.cast("int16_t *", ffi.from_buffer(frame[c]))) for c, s in enumerate(states)]
    rx = lib.dtmf_rx
    state = {"i": 0}

    def tick():  # the same block of 36 channels, one dtmf_rx call per channel
        state["i"] += 1
        np.copyto(frame, blocks[state["i"] % len(blocks)])
        for s, p in pairs:
            rx(s, p, BLOCK)

    def free():
        for s in states:
            lib.dtmf_rx_free(s)

    return tick, free


def dtmf_ours(benchmark, audio, name):
    tick, _ = ours_tick(audio)
    assert benchmark(tick) == []
    record(benchmark, name)


def dtmf_spandsp(benchmark, audio, name):
    tick, free = spandsp_tick(audio)
    try:
        benchmark(tick)
        record(benchmark, name)
    finally:
        free()


def interleaved_ratio(a, b, calls: int = 200, rounds: int = 7) -> float:
    """min time per call of ``a`` over that of ``b``, the two timed in alternation: a host that slows down for a
    while (another process, a throttled VM) slows both alike, where two benchmarks run one after the other
    would charge it to one of them."""
    best = {a: float("inf"), b: float("inf")}
    for _ in range(rounds):
        for fn in (a, b):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            best[fn] = min(best[fn], (time.perf_counter() - t0) / calls)
    return best[a] / best[b]


@pytest.mark.benchmark(group="dtmf-tick-speech")
def test_dtmf_tick_ours_speech(benchmark, talk):
    dtmf_ours(benchmark, talk, "dtmf ours speech")


@pytest.mark.benchmark(group="dtmf-tick-speech")
def test_dtmf_tick_spandsp_speech(benchmark, talk):
    dtmf_spandsp(benchmark, talk, "dtmf spandsp speech")


@pytest.mark.benchmark(group="dtmf-tick-synthetic")
def test_dtmf_tick_ours_synthetic(benchmark, voice):
    """speech_like: 39 steady harmonics, far more tonal than speech, so many more windows reach the later tests."""
    dtmf_ours(benchmark, voice, "dtmf ours synthetic")


@pytest.mark.benchmark(group="dtmf-tick-synthetic")
def test_dtmf_tick_spandsp_synthetic(benchmark, voice):
    dtmf_spandsp(benchmark, voice, "dtmf spandsp synthetic")


def test_dtmf_tick_ratio_against_spandsp(talk, voice):
    """The goal is 1.0 or better on speech; the closing note states both ratios. These guard regressions.

    A ratio over its limit from the two benchmarks (measured one after the other) is measured again with the
    two timed in alternation before the test fails: a busy host must not pass for a slower receiver."""
    for kind, audio, limit in (("speech", talk, 1.5), ("synthetic", voice, 2.5)):
        r = ratio(f"dtmf ours {kind}", f"dtmf spandsp {kind}")
        if r > limit:
            (ours, _), (ref, free) = ours_tick(audio), spandsp_tick(audio)
            try:
                r = interleaved_ratio(ours, ref)
            finally:
                free()
            print(f"dtmf {kind}: measured again, in alternation: ratio {r:.2f}")
        assert r <= limit, f"dtmf {kind}: ours takes {r:.2f} times spandsp's time (limit {limit})"


@pytest.mark.benchmark(group="detector-set")
def test_full_detector_set_36_channels_of_speech(benchmark, talk):
    """What every channel's receive path can run each tick: DTMF, call progress (with the voice
    classifier for answer detection) and the signal/silence detector, all 36 channels at once."""
    from dsp.energy import SignalDetector
    from dsp.progress import ProgressDetector

    dtmf, progress, energy = DtmfDetector(N_CH, BLOCK), ProgressDetector(N_CH, BLOCK), SignalDetector(N_CH, BLOCK)
    blocks = [np.ascontiguousarray(talk[:, i * BLOCK:(i + 1) * BLOCK]) for i in range(talk.shape[1] // BLOCK)]
    state = {"i": 0}

    def tick():
        state["i"] += 1
        x = blocks[state["i"] % len(blocks)]
        return dtmf.process(x), progress.process(x), energy.process(x)

    keys, _, _ = benchmark(tick)
    assert keys == []
    record(benchmark, "detector set")
