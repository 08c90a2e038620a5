"""Bell 202 FSK: framing bit by bit, the modulator's frequencies and phase, the streaming receiver on many channels."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.fsk import FskReceiver, async_frame, fsk_modulate
from dsp.levels import dbm0_to_amplitude, rms_dbm0, tone_level_dbm0
from dsp.signals import speech_like
from dsp.tones import noise

RNG_BYTES = bytes(np.random.default_rng(7).integers(0, 256, 120, dtype=np.uint8))


def preamble_and(data: bytes, mark_bits: int = 180) -> np.ndarray:
    """300 bits of 0101..., ``mark_bits`` of 1, then ``data`` framed: the bits of a caller-ID burst."""
    return np.concatenate((np.arange(300) & 1, np.ones(mark_bits, int), async_frame(data), np.ones(10, int)))


def receive(x: np.ndarray, block: int = 160, rx: FskReceiver | None = None) -> list[tuple[int, int, int]]:
    """Run one channel through a receiver block by block, with 100 ms of silence after."""
    x = np.concatenate((x.astype(np.float64), np.zeros(800 + (-(x.size + 800)) % block)))
    rx = rx or FskReceiver(1, block)
    out = []
    for i in range(0, x.size, block):
        out += rx.process(x[None, i:i + block])
    return out


def payload(chars) -> bytes:
    """The bytes after the first long mark run (the seizure before it decodes as 0x55s)."""
    start = next(i for i, (_, _, idle) in enumerate(chars) if idle >= 40)
    return bytes(v for _, v, _ in chars[start:])


# --- framing and modulator ----------------------------------------------------------------------

def test_async_frame_is_start_bit_lsb_first_stop_bit():
    assert async_frame(b"\x01\x80").tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert async_frame(b"\x55").tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]  # seizure: 0101...
    assert async_frame(b"\xff", stop_bits=2).tolist() == [0] + [1] * 10
    assert async_frame(b"").shape == (0,) and async_frame(b"").dtype == np.uint8
    with pytest.raises(DspError, match="data must be bytes, got str"):
        async_frame("U")
    with pytest.raises(DspError, match="stop_bits must be >= 1, got 0"):
        async_frame(b"U", stop_bits=0)


def test_modulator_frequencies_level_and_length():
    mark = fsk_modulate(np.ones(1200), level_dbm0=-13.5)  # one second of mark
    assert mark.dtype == np.int16 and mark.shape == (8000,)
    assert tone_level_dbm0(mark, 1200.0)[0] == pytest.approx(-13.5, abs=0.02)
    assert tone_level_dbm0(mark, 2200.0)[0] < -70.0
    space = fsk_modulate(np.zeros(120), level_dbm0=-20.0)
    assert tone_level_dbm0(space, 2200.0)[0] == pytest.approx(-20.0, abs=0.02)
    assert rms_dbm0(fsk_modulate(np.arange(1200) & 1, -13.5))[0] == pytest.approx(-13.5, abs=0.02)
    # 10 bits at 1200 bit/s are 66 2/3 samples: rounded up, never drifting
    assert fsk_modulate(np.ones(10)).size == 67 and fsk_modulate(np.ones(30)).size == 200
    assert fsk_modulate(np.ones(1206), baud=1206.0).size == 8000


def test_modulator_phase_is_the_integral_of_the_bit_frequencies():
    bits = np.random.default_rng(1).integers(0, 2, 60)
    x = fsk_modulate(bits, level_dbm0=0.0, baud=1206.0)
    # independently: cycles up to sample n = sum over bits of frequency x time spent in that bit
    edges = np.arange(61) / 1206.0
    freqs = np.where(bits == 1, 1200.0, 2200.0)
    t = np.arange(x.size) / 8000.0
    spent = np.clip(t[:, None] - edges[None, :-1], 0.0, np.diff(edges)[None, :])
    expected = dbm0_to_amplitude(0.0) * np.sin(2 * np.pi * (spent @ freqs))
    assert np.abs(x - expected).max() <= 0.5 + 1e-6  # only the rounding to int16


def test_modulator_rejects_bad_arguments_by_name():
    with pytest.raises(DspError, match=r"bits must be a 1-D sequence of 0 and 1, got shape \(2, 2\)"):
        fsk_modulate(np.ones((2, 2)))
    with pytest.raises(DspError, match="bits must be a 1-D sequence of 0 and 1"):
        fsk_modulate([0, 2, 1])
    with pytest.raises(DspError, match=r"baud must be in \(0, 4000.0\] bit/s, got 0"):
        fsk_modulate([1], baud=0)
    with pytest.raises(DspError, match=r"space_hz must be in \(0, 4000.0\) Hz, got 5000"):
        fsk_modulate([1], space_hz=5000)


# --- receiver -------------------------------------------------------------------------------------

@pytest.mark.parametrize("block", [160, 80, 40, 8])
def test_receiver_decodes_every_byte_whatever_the_block(block):
    chars = receive(fsk_modulate(preamble_and(RNG_BYTES)), block)
    assert payload(chars) == RNG_BYTES
    first = next(c for c in chars if c[2] >= 40)
    assert 165 <= first[2] <= 181  # the 180-bit mark run, less the carrier window at its start
    assert all(idle <= 1 for _, _, idle in chars[chars.index(first) + 1:])  # back-to-back bytes


@pytest.mark.parametrize("baud", [1194.0, 1206.0])
def test_receiver_takes_half_a_percent_bit_rate_error(baud):
    assert payload(receive(fsk_modulate(preamble_and(RNG_BYTES), baud=baud))) == RNG_BYTES


@pytest.mark.parametrize("level", [-5.0, -35.0, -40.0])
def test_receiver_level_range(level):
    assert payload(receive(fsk_modulate(preamble_and(RNG_BYTES), level))) == RNG_BYTES


def test_receiver_at_10_db_snr_makes_no_byte_error():
    x = fsk_modulate(preamble_and(RNG_BYTES), -13.5)
    assert payload(receive(x + noise(x.size, -23.5, seed=11))) == RNG_BYTES


def test_idle_mark_before_each_byte_and_a_space_stop_bit_is_a_framing_error():
    bits = np.concatenate((np.ones(100, int), async_frame(b"\x80"), np.ones(7, int), async_frame(b"\x12"),
                           [0, 1, 1, 0, 0, 1, 0, 0, 1, 0], np.ones(20, int)))  # 0x93 with a space stop bit
    (c0, v0, idle0), (c1, v1, idle1), (c2, v2, _) = receive(fsk_modulate(bits))
    assert (v0, v1, v2) == (0x80, 0x12, -1)
    # idle counts steady mark: 100 bits less the 8 ms carrier window; a 7-bit gap is no preamble
    assert 75 <= idle0 <= 100 and idle1 <= 2


def test_no_characters_from_silence_noise_or_speech_and_no_long_mark_runs():
    rx = FskReceiver(3)
    signals = np.stack((np.zeros(16000), noise(16000, -20.0, seed=3), speech_like(2.0, seed=4)))
    longest = np.zeros(3, int)
    chars = []
    for i in range(0, 16000, 160):
        chars += rx.process(signals[:, i:i + 160])
        longest = np.maximum(longest, rx.mark_bits)
    assert [c for c in chars if c[0] == 0] == []
    assert longest.max() < 40  # what a caller-ID message needs before it
    assert not rx.carrier[0]


def test_36_channels_at_once_each_gets_its_own_bytes():
    C = 36
    rng = np.random.default_rng(5)
    sent = [bytes(rng.integers(0, 256, 12, dtype=np.uint8)) for _ in range(C)]
    x = np.zeros((C, 8000))
    for ch in range(C):
        burst = fsk_modulate(preamble_and(sent[ch]), level_dbm0=-5.0 - ch % 30)
        x[ch, 37 * ch:37 * ch + burst.size] = burst
    rx = FskReceiver(C)
    got: list[list] = [[] for _ in range(C)]
    for i in range(0, 8000, 160):
        for ch, value, idle in rx.process(x[:, i:i + 160]):
            got[ch].append((value, idle))
    for ch in range(C):
        start = next(i for i, (_, idle) in enumerate(got[ch]) if idle >= 40)
        assert bytes(v for v, _ in got[ch][start:]) == sent[ch], ch


def test_reset_forgets_one_channel_and_leaves_the_others():
    x = fsk_modulate(preamble_and(b"\x80\x01"))
    both = np.zeros((2, 4800))
    both[:, :x.size] = x
    rx = FskReceiver(2)
    out = []
    for i in range(0, both.shape[1], 160):
        if i == 2560:  # 560 ms into the 180-bit (150 ms) mark run that starts at 2000
            rx.reset(1)
        out += rx.process(both[:, i:i + 160])
    assert [(v, idle) for c, v, idle in out if c == 0][-2:] == [(0x80, 173), (0x01, 0)]
    # channel 1's carrier and steady mark start again at the reset
    assert [(v, idle) for c, v, idle in out if c == 1][-2:] == [(0x80, 74), (0x01, 0)]
    with pytest.raises(DspError, match=r"channel must be in 0..1, got 2"):
        rx.reset(2)


def test_receiver_rejects_bad_arguments_by_name():
    with pytest.raises(DspError, match="n_channels must be >= 1, got 0"):
        FskReceiver(0)
    with pytest.raises(DspError, match="rate must be a multiple of 4000 samples/s, got 11025"):
        FskReceiver(1, rate=11025)
    with pytest.raises(DspError, match=r"block must be a positive multiple of 8 samples \(1 ms\), got 100"):
        FskReceiver(1, block=100)
    with pytest.raises(DspError, match=r"expected shape \(2, 160\), got \(2, 80\)"):
        FskReceiver(2).process(np.zeros((2, 80)))
    with pytest.raises(DspError, match="expected an int16 or float ndarray, got complex128"):
        FskReceiver(1).process(np.zeros((1, 160), complex))
