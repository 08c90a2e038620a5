"""Per-tick cost of the dsp pieces on one 20 ms block of 36 channels (the media tick's budget is 1 ms)."""

from __future__ import annotations

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


def test_dtmf_detector_36_channels_of_speech(benchmark, voice):
    det = DtmfDetector(N_CH, BLOCK)
    blocks = [np.ascontiguousarray(voice[:, i * BLOCK:(i + 1) * BLOCK]) for i in range(voice.shape[1] // BLOCK)]
    state = {"i": 0}

    def tick():
        state["i"] += 1
        return det.process(blocks[state["i"] % len(blocks)])

    events = benchmark(tick)
    assert events == []


def test_tone_generator_6_active_of_36(benchmark):
    gen = ToneGenerator(N_CH, BLOCK)
    for k, name in enumerate(("dial", "ringback", "busy", "congestion", "vacant", "call_waiting")):
        spec = CHINA_TONES[name]
        gen.start(6 * k, spec.freqs, spec.level_dbm0, spec.on_off)
    out = np.zeros((N_CH, BLOCK), np.float32)
    benchmark(gen.add_to, out)
    assert out[1:6].sum() == 0 and out[0].any()
