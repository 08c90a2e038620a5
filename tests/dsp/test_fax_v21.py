"""V.21 channel 2 and HDLC for T.30: CRC vectors, stuffing, frames through modem, A-law and noise, spandsp both ways."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.fax.hdlc import (FCS_GOOD, HdlcFrame, HdlcReceiver, abort_bits, crc16, encode, fcs16, flags_bits,
                          frame_bits, preamble_flags, stuff)
from dsp.fax.tones import ced, cng
from dsp.fax.v21 import V21_BAUD, V21_MARK_HZ, V21_SPACE_HZ, V21Modulator, V21Receiver, v21_modulate
from dsp.fsk import fsk_modulate
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import tone_level_dbm0
from dsp.progress import detect_progress
from dsp.tones import noise, to_int16

# A DIS frame: address 0xFF, control 0x13 (final frame), FCF 0x80 (DIS, 00000001 in line order), then
# ten FIF octets (their meaning is T.30 Table 2's business, not checked here; only the framing is).
DIS = bytes([0xFF, 0x13, 0x80, 0x00, 0xCE, 0xF4, 0x80, 0x80, 0x81, 0x80, 0x80, 0x80, 0x18])
# a CSI ("+86 10 5555 1234" as T.30 sends it, last digit first, padded to 20 with spaces), not final
CSI = bytes([0xFF, 0x03, 0x40]) + b"+86 10 5555 1234".ljust(20)[::-1]
FRAMES = [CSI, DIS]


def line_bits(data: bytes) -> list[int]:
    """The octets' bits in line order, each octet least significant bit first."""
    return [(b >> i) & 1 for b in data for i in range(8)]


def fcs_by_definition(data: bytes) -> bytes:
    """ISO/IEC 13239 §4.2.5.2 by the letter: the ones' complement of the remainder of
    x^k (x^15 + ... + 1) + x^16 M(x) divided by x^16 + x^12 + x^5 + 1, where M(x) has the bits in line
    order as coefficients, first bit highest; the remainder goes out highest term first."""
    reg = 0xFFFF  # the x^k (x^15 + ... + 1) term: a register preset to ones
    for bit in line_bits(data):
        top = (reg >> 15) ^ bit
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= 0x1021
    bits = [((reg ^ 0xFFFF) >> (15 - i)) & 1 for i in range(16)]  # highest term first on the line
    return bytes(sum(bits[8 * j + i] << i for i in range(8)) for j in range(2))


def hdlc_decode(bits) -> tuple[list[HdlcFrame], HdlcReceiver]:
    rx = HdlcReceiver()
    return rx.feed(bits), rx


def through_line(x: np.ndarray, noise_dbm0: float | None = None, seed: int = 0) -> np.ndarray:
    """``x`` with silence either side, white noise added, through an A-law encoder and decoder."""
    y = np.concatenate((np.zeros(1234), x.astype(np.float64), np.zeros(1600)))
    y = np.concatenate((y, np.zeros(-y.size % 160)))
    if noise_dbm0 is not None:
        y = y + noise(y.size, noise_dbm0, seed)
    return alaw_decode(alaw_encode(to_int16(y)))


def receive(x: np.ndarray, rx: V21Receiver | None = None) -> tuple[list[HdlcFrame], HdlcReceiver]:
    rx = rx or V21Receiver(1)
    hd = HdlcReceiver()
    out = []
    for i in range(0, x.size, 160):
        out += hd.feed(rx.process(x[None, i:i + 160])[0])
    return out, hd


def modulate(frames, level_dbm0: float, offset_hz: float = 0.0) -> np.ndarray:
    return fsk_modulate(encode(frames, preamble_flags()), level_dbm0, 8000, V21_BAUD,
                        V21_MARK_HZ + offset_hz, V21_SPACE_HZ + offset_hz)


# --- CRC and FCS ---------------------------------------------------------------------------------------


def test_crc16_x25_check_value():
    assert crc16(b"123456789") ^ 0xFFFF == 0x906E
    assert fcs16(b"123456789") == b"\x6e\x90"
    assert crc16(b"123456789" + b"\x6e\x90") == FCS_GOOD == 0xF0B8
    assert crc16(b"") == 0xFFFF


def test_dis_fcs_from_the_definition():
    assert fcs_by_definition(DIS) == b"\x63\x2f"
    assert fcs16(DIS) == b"\x63\x2f"
    assert fcs_by_definition(b"123456789") == b"\x6e\x90"
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 17, 64):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert fcs16(data) == fcs_by_definition(data), data


def test_frame_bits_are_data_then_fcs_lsb_first_stuffed():
    bits = frame_bits(DIS)
    assert bits.dtype == np.uint8
    unstuffed = []
    ones = 0
    for b in bits.tolist():
        if ones == 5:
            assert b == 0
            ones = 0
            continue
        unstuffed.append(b)
        ones = ones + 1 if b else 0
    assert unstuffed == line_bits(DIS + b"\x63\x2f")


# --- stuffing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits, stuffed", [
    ([1, 1, 1, 1], [1, 1, 1, 1]),
    ([1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]),
    ([0, 1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 0, 0]),
    ([1] * 6, [1, 1, 1, 1, 1, 0, 1]),
    ([1] * 10, [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0]),
    ([0, 1, 1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 0, 1, 0]),  # a flag's pattern inside a frame
    ([1, 1, 1, 1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 1, 1, 1, 1]),
    ([], []),
])
def test_stuff(bits, stuffed):
    assert stuff(np.array(bits, np.uint8)).tolist() == stuffed


@pytest.mark.parametrize("data", [b"\x7e\x7e", b"\xff\xff\xff", b"\x1f", b"\xf8\x01", b"\x3e", b"\x7f\xfe"])
def test_frames_with_runs_of_ones_round_trip(data):
    body = frame_bits(data)
    assert not any(body[i:i + 6].all() for i in range(body.size - 5))  # never six 1s inside a frame
    bits = encode([data, data], preamble=2)
    frames, rx = hdlc_decode(bits)
    assert frames == [HdlcFrame(data, True), HdlcFrame(data, True)]
    assert (rx.frames_ok, rx.frames_bad, rx.runts, rx.aborts) == (2, 0, 0, 0)


def test_random_frames_round_trip_in_any_chunks():
    rng = np.random.default_rng(11)
    frames = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in rng.integers(1, 80, 40)]
    bits = encode(frames, preamble=3, between=2, closing=1)
    whole, _ = hdlc_decode(bits)
    assert whole == [HdlcFrame(f, True) for f in frames]
    rx = HdlcReceiver()
    cuts = np.sort(rng.integers(0, bits.size, 200))
    pieces = []
    for part in np.split(bits, cuts):
        pieces += rx.feed(part)
    assert pieces == whole
    assert rx.flags == 3 + 39 * 2 + 1


def test_bad_fcs_abort_and_runt():
    good = np.concatenate((flags_bits(2), frame_bits(DIS), flags_bits(1)))
    bad = good.copy()
    bad[16 + 20] ^= 1  # a bit inside the FIF (bits 16.. are the frame; this one is not near a stuffed 0)
    frames, rx = hdlc_decode(bad)
    assert len(frames) == 1 and not frames[0].fcs_ok and len(frames[0].data) == len(DIS)
    assert (rx.frames_ok, rx.frames_bad) == (0, 1)
    # an abort in mid-frame: nothing comes out, and the next frame after a flag does
    cut = np.concatenate((flags_bits(1), frame_bits(DIS)[:40], abort_bits(), flags_bits(1), frame_bits(CSI),
                          flags_bits(1)))
    frames, rx = hdlc_decode(cut)
    assert frames == [HdlcFrame(CSI, True)] and rx.aborts == 1
    # 2 octets between flags, and 13 bits: too short or unaligned, counted only
    frames, rx = hdlc_decode(np.concatenate((flags_bits(1), line_bits(b"\x12\x34"), flags_bits(1),
                                             np.zeros(13, np.uint8), flags_bits(1))))
    assert frames == [] and rx.runts == 2
    # bits before the first flag are ignored
    frames, _ = hdlc_decode(np.concatenate((np.array([0, 1, 0, 0, 1, 1], np.uint8), good)))
    assert frames == [HdlcFrame(DIS, True)]


def test_preamble_and_encode_layout():
    assert preamble_flags() == 38 and preamble_flags(1.0, 300) == 38 and preamble_flags(0.85) == 32
    bits = encode([DIS])
    assert bits[:8].tolist() == [0, 1, 1, 1, 1, 1, 1, 0]
    assert bits.size == 38 * 8 + frame_bits(DIS).size + 8
    assert np.array_equal(bits[-8:], flags_bits(1))


def test_hdlc_errors_name_the_value():
    with pytest.raises(DspError, match="preamble must be >= 1 flag, got 0"):
        encode([DIS], preamble=0)
    with pytest.raises(DspError, match="non-empty bytes, got b''"):
        frame_bits(b"")
    with pytest.raises(DspError, match="crc16: data must be bytes, got str"):
        crc16("123")
    with pytest.raises(DspError, match="0 and 1, got shape"):
        HdlcReceiver().feed([0, 2])


# --- modulator ---------------------------------------------------------------------------------------


def test_modulator_tones_and_level():
    mark = v21_modulate(np.ones(300, int), -13.0)
    space = v21_modulate(np.zeros(300, int), -20.0)
    assert mark.shape == (8000,) and mark.dtype == np.int16
    assert tone_level_dbm0(mark, V21_MARK_HZ)[0] == pytest.approx(-13.0, abs=0.02)
    assert tone_level_dbm0(space, V21_SPACE_HZ)[0] == pytest.approx(-20.0, abs=0.02)
    assert tone_level_dbm0(mark, V21_SPACE_HZ)[0] < -50.0


def test_streaming_modulator_is_phase_continuous_and_block_independent():
    bits = encode(FRAMES, preamble=4)
    a = V21Modulator(-10.0)
    a.put(bits)
    whole = np.concatenate([a.take() for _ in range(-(-bits.size * 80 // 3 // 160) + 2)])
    b = V21Modulator(-10.0)
    out = []
    for part in np.array_split(bits, 7):  # queued in parts, always ahead of the signal
        b.put(part)
        out.append(b.take())
    while b.pending_bits:
        out.append(b.take())
    out += [b.take()] * 2
    streamed = np.concatenate(out)[:whole.size]
    assert np.array_equal(streamed, whole)
    n = int(np.ceil(bits.size * 8000 / 300))
    assert not whole[n + 1:].any() and whole[n - 10:n].any()
    # phase continuous: no step between samples larger than the 1850 Hz sine's own steepest
    assert np.abs(np.diff(whole[:n].astype(float))).max() < 2 * np.pi * 1850 / 8000 * np.abs(whole).max() * 1.01
    frames, _ = receive(through_line(whole))
    assert frames == [HdlcFrame(f, True) for f in FRAMES]


# --- receiver ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset_hz", [-10.0, 0.0, 10.0])
@pytest.mark.parametrize("level_dbm0", [-10.0, -20.0, -26.0])
def test_frames_through_alaw_with_noise_at_minus_30(level_dbm0, offset_hz):
    x = through_line(modulate(FRAMES, level_dbm0, offset_hz), noise_dbm0=-30.0, seed=int(-level_dbm0))
    frames, hd = receive(x)
    assert frames == [HdlcFrame(f, True) for f in FRAMES]
    assert (hd.frames_bad, hd.aborts) == (0, 0)


@pytest.mark.parametrize("offset_hz", [-10.0, 10.0])
@pytest.mark.parametrize("level_dbm0", [-30.0, -35.0, -40.0])
def test_weak_frames_through_alaw_at_10_db_snr(level_dbm0, offset_hz):
    x = through_line(modulate(FRAMES, level_dbm0, offset_hz), noise_dbm0=level_dbm0 - 10.0, seed=3)
    frames, _ = receive(x)
    assert frames == [HdlcFrame(f, True) for f in FRAMES]


def test_quiet_limit_and_no_false_frames():
    # -43 dBm0 still decodes without noise, -46 is below the carrier threshold (-45 dBm0)
    assert receive(through_line(modulate(FRAMES, -43.0)))[0] == [HdlcFrame(f, True) for f in FRAMES]
    assert receive(through_line(modulate(FRAMES, -46.0)))[0] == []
    # 0 dB S/N: nothing decodes, and nothing false comes out either
    frames, _ = receive(through_line(modulate(FRAMES, -30.0), noise_dbm0=-30.0, seed=4))
    assert [f for f in frames if f.fcs_ok] == []
    # noise, CNG and CED alone give no frames
    for x in (through_line(np.zeros(16000), -20.0, 9), through_line(cng(3.5)), through_line(ced(3.0))):
        assert [f for f in receive(x)[0] if f.fcs_ok] == []


def test_many_channels_at_once_match_one_at_a_time():
    sigs = [through_line(modulate(FRAMES, -12.0, 7.0), -40.0, 1),
            through_line(np.zeros(20000)),
            through_line(modulate([DIS], -33.0, -9.0), -45.0, 2),
            through_line(modulate([CSI, DIS, DIS], -20.0), -30.0, 3)]
    n = max(s.size for s in sigs)
    x = np.zeros((len(sigs), n))
    for i, s in enumerate(sigs):
        x[i, :s.size] = s
    rx = V21Receiver(len(sigs))
    hds = [HdlcReceiver() for _ in sigs]
    got = [[] for _ in sigs]
    for i in range(0, n, 160):
        for c, bits in enumerate(rx.process(x[:, i:i + 160])):
            got[c] += hds[c].feed(bits)
    assert got == [[HdlcFrame(f, True) for f in FRAMES], [], [HdlcFrame(DIS, True)],
                   [HdlcFrame(f, True) for f in (CSI, DIS, DIS)]]
    assert got == [receive(np.concatenate((s, np.zeros(n - s.size))))[0] for s in sigs]


def test_receiver_errors_and_reset():
    rx = V21Receiver(2)
    with pytest.raises(DspError, match=r"expected shape \(2, 160\), got \(1, 160\)"):
        rx.process(np.zeros((1, 160)))
    with pytest.raises(DspError, match="channel must be in 0..1, got 2"):
        rx.reset(2)
    x = through_line(modulate([DIS], -15.0))
    for i in range(0, 4000, 160):  # half the preamble, then the port is reused
        rx.process(np.stack((x[i:i + 160], x[i:i + 160])))
    rx.reset(0)
    hd = [HdlcReceiver(), HdlcReceiver()]
    got = [[], []]
    for i in range(0, x.size, 160):  # channel 0 starts the signal again, channel 1 carries on
        block = np.stack((x[i:i + 160], x[4000 + i:4160 + i] if 4160 + i <= x.size else np.zeros(160)))
        for c, bits in enumerate(rx.process(block)):
            got[c] += hd[c].feed(bits)
    assert got == [[HdlcFrame(DIS, True)], [HdlcFrame(DIS, True)]]


# --- tones -------------------------------------------------------------------------------------------


def test_cng_and_ced():
    x, y = cng(7.0), ced(3.0)
    assert x.shape == (56000,) and y.shape == (24000,)
    assert tone_level_dbm0(x[:4000], 1100.0)[0] == pytest.approx(-12.0, abs=0.01)
    assert not x[4000:28000].any() and x[28000:32000].any() and not x[32000:].any()
    assert tone_level_dbm0(y, 2100.0)[0] == pytest.approx(-12.0, abs=0.01)
    assert detect_progress(x) == ([("cng", 0.0, 7.0)], "fax")
    assert detect_progress(y) == ([("ced", 0.0, 3.0)], "fax")
    with pytest.raises(DspError, match=r"2.6 .. 4.0 s \(T.30\), got 5.0"):
        ced(5.0)
    with pytest.raises(DspError, match="total_s must be > 0 seconds, got 0"):
        cng(0)


# --- spandsp -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("level_dbm0, noise_dbm0", [(-13.0, None), (-30.0, -45.0), (-20.0, -30.0)])
def test_spandsp_v21_hdlc_to_ours(level_dbm0, noise_dbm0):
    from tests.peers.spandsp import v21_hdlc_tx

    x = through_line(v21_hdlc_tx(FRAMES, 38, level_dbm0), noise_dbm0, seed=5)
    frames, hd = receive(x)
    assert frames == [HdlcFrame(f, True) for f in FRAMES]
    assert hd.frames_bad == 0


@pytest.mark.parametrize("level_dbm0, noise_dbm0", [(-13.0, None), (-30.0, -45.0), (-20.0, -30.0)])
def test_ours_to_spandsp_v21_hdlc(level_dbm0, noise_dbm0):
    from tests.peers.spandsp import v21_hdlc_rx

    m = V21Modulator(level_dbm0)
    m.put(encode(FRAMES, preamble_flags()))
    blocks = []
    while m.pending_bits:
        blocks.append(m.take())
    x = through_line(np.concatenate(blocks), noise_dbm0, seed=6)
    got = v21_hdlc_rx(to_int16(x))
    # spandsp also reports junk it frames from the noise after the carrier (FCS bad): only good frames count
    assert [data for data, ok in got if ok] == FRAMES
