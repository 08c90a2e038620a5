"""V.27ter (4800/2400 bit/s DPSK): our modem end to end through A-law, noise, offsets and echo; no training on
other signals; the scrambler's guard; and spandsp's modems both ways (the acceptance test)."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.fax.tones import ced, cng
from dsp.fax.v21 import v21_modulate
from dsp.fax.v27ter import (BITS_PER_SYMBOL, CONDITIONING_START, SEG4_SYMBOLS, SEG5_SYMBOLS, Descrambler, Scrambler,
                            V27terReceiver, V27terTransmitter, conditioning_pattern)
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import rms_dbm0
from dsp.signals import speech_like
from dsp.tones import noise, to_int16

RATES = (4800, 2400)
# most bits after the data from our transmitter: turn-off ones, pad, a fading symbol (measured: 98 and 49)
MAX_EXTRA = {4800: 3 * 32 + 2 + 3, 2400: 2 * 24 + 1 + 2}


def random_bits(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, n, np.uint8)


def transmit(bursts, bit_rate: int, level_dbm0: float = -13.0) -> np.ndarray:
    """Our transmitter sending each of ``bursts`` (queued at once), 100 ms of silence before, 200 ms after."""
    tx = V27terTransmitter(bit_rate, level_dbm0)
    for b in bursts:
        tx.send(b)
    out = [np.zeros(800, np.int16)]
    while tx.busy:
        out.append(tx.take())
    out.append(np.zeros(1600, np.int16))
    return np.concatenate(out)


def shift_frequency(x: np.ndarray, hz: float) -> np.ndarray:
    """``x`` with every component moved by ``hz`` (single-sideband shift through the analytic signal)."""
    n = x.size
    X = np.fft.fft(x.astype(np.float64)) * np.where(np.arange(n) < n // 2, 2.0, 0.0)  # the analytic signal
    return (np.fft.ifft(X) * np.exp(2j * np.pi * hz * np.arange(n) / 8000.0)).real


def through_line(x: np.ndarray, noise_dbm0: float | None = None, hz: float = 0.0, echo=None,
                 seed: int = 0) -> np.ndarray:
    """``x`` shifted in frequency, through an FIR echo, with white noise, A-law coded and decoded; padded to 160."""
    y = x.astype(np.float64)
    if hz:
        y = shift_frequency(y, hz)
    if echo is not None:
        y = np.convolve(y, echo)[: y.size]
    y = np.concatenate((y, np.zeros(-y.size % 160)))
    if noise_dbm0 is not None:
        y = y + noise(y.size, noise_dbm0, seed)
    return alaw_decode(alaw_encode(to_int16(y)))


def receive_bursts(x: np.ndarray, bit_rate: int, rx: V27terReceiver | None = None
                   ) -> tuple[list[np.ndarray], list[str]]:
    """Our receiver on ``x`` block by block: the bits of each burst (split at "carrier_down"), all events."""
    rx, x = rx or V27terReceiver(bit_rate), np.concatenate((x, np.zeros(-x.size % 160, x.dtype)))
    bursts: list[list[np.ndarray]] = [[]]
    events: list[str] = []
    for i in range(0, x.size, 160):
        bursts[-1].append(rx.process(x[i:i + 160]))
        events += rx.events
        if "carrier_down" in rx.events:
            bursts.append([])
    out = [np.concatenate(b) if b else np.zeros(0, np.uint8) for b in bursts]
    return [b for b in out if b.size], events


def receive(x: np.ndarray, bit_rate: int, rx: V27terReceiver | None = None) -> tuple[np.ndarray, list[str]]:
    """Our receiver on ``x``: all the bits, all the events."""
    bursts, events = receive_bursts(x, bit_rate, rx)
    return (np.concatenate(bursts) if bursts else np.zeros(0, np.uint8)), events


def assert_data(got: np.ndarray, sent: np.ndarray, bit_rate: int) -> None:
    """``got`` is ``sent`` bit for bit, then at most MAX_EXTRA bits."""
    assert got.size >= sent.size, f"only {got.size} of {sent.size} bits"
    errors = np.flatnonzero(got[: sent.size] != sent)
    assert errors.size == 0, f"{errors.size} bit errors, first at {errors[:5]}"
    assert got.size - sent.size <= MAX_EXTRA[bit_rate]


def test_scrambler_inverts_and_self_synchronises():
    bits = random_bits(5000, 1)
    s = Scrambler(reg=0x5A5).run(bits.tolist())
    d = Descrambler()
    out = np.concatenate([d.run(s[i:i + 97]) for i in range(0, s.size, 97)])
    np.testing.assert_array_equal(out[12:], bits[12:])  # after 12 bits, whatever the start state
    assert 0.45 < s.mean() < 0.55


def test_scrambler_guard_breaks_a_repeating_output():
    """Input chosen to make the plain scrambler's output all zeros: the guard inverts every 34th bit."""
    scr = Scrambler()
    bits = []
    for _ in range(400):
        b = ((scr.reg >> 5) ^ (scr.reg >> 6)) & 1  # what cancels the feedback
        bits.append(b)
        scr.run([b])
    s = Scrambler().run(bits)
    ones = np.flatnonzero(s)
    assert ones.size > 5 and np.all(np.diff(ones[1:]) == 34)
    np.testing.assert_array_equal(Descrambler().run(s), bits)


def test_conditioning_pattern_is_the_127_symbol_sequence():
    c = conditioning_pattern()
    assert c.shape == (SEG4_SYMBOLS,) and set(np.unique(c)) == {0, 4}
    np.testing.assert_array_equal(c[:SEG4_SYMBOLS - 127], c[127:])


@pytest.mark.parametrize("bit_rate", RATES)
def test_level_and_spectrum(bit_rate):
    body = transmit([random_bits(bit_rate * 2, 2)], bit_rate, level_dbm0=-13.0)[800:-1600].astype(np.float64)
    assert abs(rms_dbm0(body)[0] - (-13.0)) < 0.3
    spec = np.abs(np.fft.rfft(body)) ** 2
    f = np.fft.rfftfreq(body.size, 1 / 8000)
    edge = 1800 + 0.75 * bit_rate / BITS_PER_SYMBOL[bit_rate] + 50  # (1 + roll-off) / 2 of the baud rate
    assert spec[np.abs(f - 1800) > edge - 1800].sum() < 1e-3 * spec.sum()


# --- our transmitter to our receiver -----------------------------------------------------------------

@pytest.mark.parametrize("bit_rate", RATES)
@pytest.mark.parametrize("kind", ["random", "tcf"])
def test_end_to_end_through_alaw(bit_rate, kind):
    bits = random_bits(3 * bit_rate, 7) if kind == "random" else np.zeros(int(1.5 * bit_rate), np.uint8)
    got, events = receive(through_line(transmit([bits], bit_rate)), bit_rate)
    assert_data(got, bits, bit_rate)
    assert events == ["trained", "carrier_down"]


@pytest.mark.parametrize("bit_rate,noise_dbm0", [(4800, -30.0), (2400, -24.0)])
def test_white_noise(bit_rate, noise_dbm0):
    """Signal at -13 dBm0, white noise over the whole band, 4 dB below where errors start (measured over
    9600 bits and 3 seeds: the first errors at -26 dBm0 at 4800 bit/s, at -20 dBm0 at 2400 bit/s)."""
    bits = random_bits(2 * bit_rate, 8)
    x = transmit([bits], bit_rate)
    for seed in range(3):
        got, _ = receive(through_line(x, noise_dbm0=noise_dbm0, seed=seed), bit_rate)
        assert_data(got, bits, bit_rate)


@pytest.mark.parametrize("bit_rate", RATES)
@pytest.mark.parametrize("hz", [7.0, -7.0])
def test_frequency_offset(bit_rate, hz):
    bits = random_bits(3 * bit_rate, 9)
    got, _ = receive(through_line(transmit([bits], bit_rate), hz=hz, noise_dbm0=-35.0), bit_rate)
    assert_data(got, bits, bit_rate)


ECHO = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.45, 0.0, -0.2])


@pytest.mark.parametrize("bit_rate", RATES)
def test_echo_is_equalised(bit_rate):
    bits = random_bits(3 * bit_rate, 10)
    rx = V27terReceiver(bit_rate)
    got, _ = receive(through_line(transmit([bits], bit_rate), echo=ECHO), bit_rate, rx)
    assert_data(got, bits, bit_rate)
    taps = np.abs(rx._eq)
    assert np.sort(taps)[-2] > 0.1 * taps.max()  # the equaliser had to reach beyond its centre tap


@pytest.mark.parametrize("bit_rate", RATES)
def test_two_bursts_in_a_row(bit_rate):
    a, b = random_bits(bit_rate, 11), np.zeros(bit_rate // 2, np.uint8)
    bursts, events = receive_bursts(through_line(transmit([a, b], bit_rate)), bit_rate)
    assert events == ["trained", "carrier_down", "trained", "carrier_down"]
    assert len(bursts) == 2
    assert_data(bursts[0], a, bit_rate)
    assert_data(bursts[1], b, bit_rate)


@pytest.mark.parametrize("bit_rate", RATES)
@pytest.mark.parametrize("ppm", [200, -200])
def test_sampling_clock_offset(bit_rate, ppm):
    """The far end's clock off by 200 ppm: the timing follows over 10 s of data (a drift of 3 symbols)."""
    from scipy.signal import resample_poly

    bits = random_bits(10 * bit_rate, 18)
    x = resample_poly(transmit([bits], bit_rate).astype(np.float64), 1_000_000, 1_000_000 + ppm)
    got, _ = receive(through_line(x), bit_rate)
    assert_data(got, bits, bit_rate)


@pytest.mark.parametrize("bit_rate", RATES)
@pytest.mark.parametrize("level_dbm0", [-40.0, -6.0])
def test_signal_levels(bit_rate, level_dbm0):
    bits = random_bits(bit_rate, 19)
    got, _ = receive(through_line(transmit([bits], bit_rate, level_dbm0)), bit_rate)
    assert_data(got, bits, bit_rate)


def test_nothing_below_the_carrier_threshold():
    bits = random_bits(4800, 20)
    rx = V27terReceiver(4800, min_level_dbm0=-30.0)
    got, events = receive(through_line(transmit([bits], 4800, level_dbm0=-36.0)), 4800, rx)
    assert got.size == 0 and events == []


@pytest.mark.parametrize("bit_rate", RATES)
def test_two_bursts_over_noise(bit_rate):
    """Noise keeps the carrier detect on between the bursts: the second is found by its rise in level."""
    a, b = random_bits(bit_rate, 21), random_bits(bit_rate // 2, 22)
    x = np.concatenate((transmit([a], bit_rate), np.zeros(2400, np.int16), transmit([b], bit_rate)))
    bursts, events = receive_bursts(through_line(x, noise_dbm0=-36.0, seed=6), bit_rate)
    assert events.count("trained") == 2 and events.count("carrier_down") == 2
    assert_data(bursts[0], a, bit_rate)
    assert_data(bursts[1], b, bit_rate)


@pytest.mark.parametrize("bit_rate", RATES)
def test_burst_starting_in_noise(bit_rate):
    """Noise well above the carrier threshold before the burst: the training starts on the rise in level."""
    bits = random_bits(bit_rate, 12)
    x = np.concatenate((np.zeros(8000, np.int16), transmit([bits], bit_rate)))
    got, events = receive(through_line(x, noise_dbm0=-33.0, seed=4), bit_rate)
    assert_data(got, bits, bit_rate)
    assert events.count("trained") == 1


def _others() -> dict[str, np.ndarray]:
    hdlc_flags, rng = np.tile([0, 1, 1, 1, 1, 1, 1, 0], 120), np.random.default_rng(13)
    return {
        "silence": np.zeros(24000),
        "noise": noise(24000, -20.0, 5),
        "v21": v21_modulate(np.concatenate((hdlc_flags, rng.integers(0, 2, 600))), -13.0).astype(np.float64),
        "cng": cng(3.5).astype(np.float64),
        "ced": ced(3.0).astype(np.float64),
        "speech": speech_like(3.0, seed=3, level_dbm0=-15.0).astype(np.float64),
    }


@pytest.mark.parametrize("bit_rate", RATES)
@pytest.mark.parametrize("name", ["silence", "noise", "v21", "cng", "ced", "speech"])
def test_no_training_on_other_signals(bit_rate, name):
    rx = V27terReceiver(bit_rate)
    got, events = receive(through_line(_others()[name]), bit_rate, rx)
    assert got.size == 0 and not rx.trained and "trained" not in events and "carrier_down" not in events
    if name == "silence":
        assert events == [] and not rx.carrier


@pytest.mark.parametrize("bit_rate", RATES)
def test_after_v21_as_in_t30(bit_rate):
    """DCS on V.21, the 75 ms T.30 wants, then TCF: one receiver hears both and trains on the TCF only."""
    tcf = np.zeros(int(1.5 * bit_rate), np.uint8)
    flags = np.tile([0, 1, 1, 1, 1, 1, 1, 0], 40)
    x = np.concatenate((v21_modulate(flags, -13.0), transmit([tcf], bit_rate)[200:]))  # 600 samples between
    got, events = receive(through_line(x, noise_dbm0=-45.0), bit_rate)
    assert events == ["trained", "carrier_down"]
    assert_data(got, tcf, bit_rate)


def test_training_cut_short_fails():
    x = transmit([random_bits(4800, 25)], 4800)[: 800 + 480]  # 60 ms: the reversals and a little more
    got, events = receive(through_line(np.concatenate((x, np.zeros(800, np.int16)))), 4800)
    assert got.size == 0 and events == ["train_failed"]


def test_reset_forgets_a_burst_in_flight():
    bits = random_bits(4800, 14)
    x = through_line(transmit([bits], 4800))
    rx = V27terReceiver(4800)
    for i in range(0, 160 * 60, 160):
        rx.process(x[i:i + 160])
    assert rx.trained
    rx.reset()
    assert not rx.trained and not rx.carrier
    got, events = receive(through_line(transmit([bits[:2000]], 4800)), 4800, rx)
    assert_data(got, bits[:2000], 4800)


def test_transmitter_is_busy_for_a_burst():
    tx = V27terTransmitter(4800, block=80)
    assert not tx.busy and not tx.take().any() and tx.take().shape == (80,) and tx.take().dtype == np.int16
    tx.send([1, 0, 1])
    n = 0
    while tx.busy:
        n += tx.take().shape[0] // 80
    # training (1132 symbols) + 1 data + 32 turn-off symbols + the pulse's tails, at 1600 baud
    assert n == -(-(1132 + 1 + 32 + 8) * 5 // 80)


@pytest.mark.parametrize("call,match", [
    (lambda: V27terTransmitter(9600), "bit_rate"),
    (lambda: V27terReceiver(7200), "bit_rate"),
    (lambda: V27terTransmitter(4800, level_dbm0=float("nan")), "level_dbm0"),
    (lambda: V27terTransmitter(4800, block=0), "block"),
    (lambda: V27terReceiver(4800, rate=16000), "rate"),
    (lambda: V27terReceiver(4800, min_level_dbm0=5.0), "min_level_dbm0"),
    (lambda: V27terTransmitter().send([0, 2, 1]), "0 and 1"),
    (lambda: V27terTransmitter().send(np.zeros((2, 3))), "0 and 1"),
    (lambda: V27terReceiver().process(np.zeros(100)), "shape"),
    (lambda: V27terReceiver().process([0] * 160), "ndarray"),
])
def test_bad_arguments(call, match):
    with pytest.raises(DspError, match=match):
        call()


# --- spandsp as the peer (the acceptance test) ------------------------------------------------------

@pytest.mark.parametrize("bit_rate", RATES)
@pytest.mark.parametrize("kind", ["random", "tcf"])
def test_ours_to_spandsp(bit_rate, kind):
    from tests.peers.spandsp_v27ter import SIG_STATUS_TRAINING_SUCCEEDED, v27ter_rx

    bits = random_bits(3 * bit_rate, 15) if kind == "random" else np.zeros(int(1.5 * bit_rate), np.uint8)
    bursts, statuses = v27ter_rx(through_line(transmit([bits], bit_rate)), bit_rate)
    assert SIG_STATUS_TRAINING_SUCCEEDED in statuses and len(bursts) == 1
    assert bursts[0].size >= bits.size  # spandsp goes on with bits of the turn-off until its carrier detect lets go
    np.testing.assert_array_equal(bursts[0][: bits.size], bits)


def test_ours_to_spandsp_through_the_guard():
    """Data that drives the scrambler's output into a repeating pattern: spandsp must undo the guard's inversions."""
    from tests.peers.spandsp_v27ter import v27ter_rx

    scr = Scrambler()  # the transmitter's scrambler as the data begins
    for b in CONDITIONING_START[::-1]:
        scr.reg = (scr.reg << 1) | b
    scr.run([1] * (3 * SEG4_SYMBOLS + 3 * SEG5_SYMBOLS))
    bits, line = [], []
    for _ in range(1200):
        b = ((scr.reg >> 5) ^ (scr.reg >> 6)) & 1
        bits.append(b)
        line.append(int(scr.run([b])[0]))
    bits = np.array(bits, np.uint8)
    assert np.all(np.diff(np.flatnonzero(line)[1:]) == 34)  # on the line: zeros but for the guard's ones
    x = through_line(transmit([bits], 4800))
    bursts, _ = v27ter_rx(x, 4800)
    np.testing.assert_array_equal(bursts[0][: bits.size], bits)
    got, _ = receive(x, 4800)
    assert_data(got, bits, 4800)


@pytest.mark.parametrize("bit_rate", RATES)
@pytest.mark.parametrize("kind", ["random", "tcf"])
def test_spandsp_to_ours(bit_rate, kind):
    from tests.peers.spandsp_v27ter import v27ter_tx

    bits = random_bits(3 * bit_rate, 16) if kind == "random" else np.zeros(int(1.5 * bit_rate), np.uint8)
    x = np.concatenate((np.zeros(1234, np.int16), v27ter_tx(bits, bit_rate, level_dbm0=-13.0)))
    got, events = receive(through_line(x), bit_rate)
    assert got.size >= bits.size
    np.testing.assert_array_equal(got[: bits.size], bits)
    assert got.size - bits.size <= 3 * 50  # spandsp's own turn-off (ones), then we stop
    assert events == ["trained", "carrier_down"]


@pytest.mark.parametrize("bit_rate", RATES)
def test_spandsp_to_ours_over_a_bad_line(bit_rate):
    """spandsp's signal 9 Hz off, through an echo, with noise 21 dB down."""
    from tests.peers.spandsp_v27ter import v27ter_tx

    bits = random_bits(3 * bit_rate, 17)
    x = np.concatenate((np.zeros(800, np.int16), v27ter_tx(bits, bit_rate, level_dbm0=-13.0)))
    got, _ = receive(through_line(x, hz=9.0, echo=ECHO, noise_dbm0=-34.0, seed=2), bit_rate)
    np.testing.assert_array_equal(got[: bits.size], bits)


@pytest.mark.parametrize("block", [30, 1000])
def test_other_block_sizes(block):
    bits = random_bits(4800, 23)
    x = through_line(transmit([bits], 4800))
    x = np.concatenate((x, np.zeros(-x.size % block, x.dtype)))
    rx = V27terReceiver(4800, block=block)
    got = np.concatenate([rx.process(x[i:i + block]) for i in range(0, x.size, block)])
    assert_data(got, bits, 4800)
    tx = V27terTransmitter(4800, block=block)
    tx.send(bits)
    y = []
    while tx.busy:
        y.append(tx.take())
    y = np.concatenate(y)
    ref = transmit([bits], 4800)[800:]  # the same signal taken in blocks of 160
    n = min(y.size, ref.size)
    np.testing.assert_array_equal(y[:n], ref[:n])
    assert not y[n:].any() and not ref[n:].any()


@pytest.mark.parametrize("bit_rate", RATES)
def test_spandsp_with_echo_protection_tone_to_ours(bit_rate):
    """Some senders put V.27ter's echo-protection tone (unmodulated carrier, then 20 ms of silence) first."""
    from tests.peers.spandsp_v27ter import v27ter_tx

    bits = random_bits(bit_rate, 24)
    got, events = receive(through_line(v27ter_tx(bits, bit_rate, tep=True)), bit_rate)
    np.testing.assert_array_equal(got[: bits.size], bits)
    assert events == ["trained", "carrier_down"]
