"""RTP packets, sender and receiver: header bytes written out from RFC 3550 §5.1, A.1 validation, A.3 loss, A.8 jitter."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import ProtocolError
from drivers.sip.rtp import (ALAW_TO_ULAW, ULAW_TO_ALAW, RtpPacket, RtpReceiver, RtpSender, RtpSource,
                             signed32)
from dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

# V=2 P=0 X=0 CC=0 | M=1 PT=8 | seq 0x1234 | ts 0xDEADBEEF | SSRC 0x01020304 | 4 bytes of A-law silence
SIMPLE = bytes([0x80, 0x88, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0xD5, 0xD5, 0xD5, 0xD5])

# V=2 P=1 X=1 CC=2 (0xB2) | M=0 PT=0 | seq 65535 | ts 0 | SSRC 0x11223344 | CSRC 0xAAAAAAAA, 0xBBBBBBBB |
# extension profile 0xBEDE, 1 word: 10 FF 00 00 | payload 7F FF | 3 padding octets, the last one the count
FULL = bytes([0xB2, 0x00, 0xFF, 0xFF, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44,
              0xAA, 0xAA, 0xAA, 0xAA, 0xBB, 0xBB, 0xBB, 0xBB,
              0xBE, 0xDE, 0x00, 0x01, 0x10, 0xFF, 0x00, 0x00,
              0x7F, 0xFF, 0x00, 0x00, 0x03])


def test_parse_simple_header_bits():
    p = RtpPacket.parse(SIMPLE)
    assert (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc) == (8, True, 0x1234, 0xDEADBEEF, 0x01020304)
    assert p.payload == b"\xd5" * 4
    assert (p.csrc, p.extension_profile, p.extension_data, p.padding) == ((), None, b"", 0)
    assert p.serialize() == SIMPLE


def test_parse_csrc_extension_padding():
    p = RtpPacket.parse(FULL)
    assert (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc) == (0, False, 65535, 0, 0x11223344)
    assert p.csrc == (0xAAAAAAAA, 0xBBBBBBBB)
    assert p.extension_profile == 0xBEDE and p.extension_data == b"\x10\xff\x00\x00"
    assert p.payload == b"\x7f\xff" and p.padding == 3
    assert p.serialize() == FULL


def test_build_matches_hand_written_bytes():
    p = RtpPacket(8, 0x1234, 0xDEADBEEF, 0x01020304, b"\xd5" * 4, marker=True)
    assert p.serialize() == SIMPLE


@pytest.mark.parametrize("data, message", [
    (SIMPLE[:11], "RTP packet too short: 11 bytes, the fixed header needs 12"),
    (b"\x40" + SIMPLE[1:], "RTP version 1, expected 2"),
    (FULL[:16], "RTP packet truncated in the CSRC list: 2 CSRCs need 20 bytes, got 16"),
    (FULL[:22], "RTP packet truncated in the extension header: need 24 bytes, got 22"),
    (FULL[:26], "RTP header extension of 1 words needs 28 bytes, got 26"),
    (FULL[:-1] + b"\x00", "RTP padding count 0 is invalid with 5 bytes after the header"),
    (FULL[:-1] + b"\x06", "RTP padding count 6 is invalid with 5 bytes after the header"),
])
def test_malformed_packets_give_exact_errors(data, message):
    with pytest.raises(ProtocolError) as e:
        RtpPacket.parse(data)
    assert str(e.value) == message


@pytest.mark.parametrize("kwargs, message", [
    (dict(payload_type=128), "RTP payload type must be an integer 0..127, got 128"),
    (dict(sequence_number=65536), "RTP sequence number must be an integer 0..65535, got 65536"),
    (dict(csrc=tuple(range(16))), "RTP CSRC list holds at most 15 entries, got 16"),
    (dict(extension_profile=1, extension_data=b"abc"),
     "RTP header extension must be a multiple of 4 bytes up to 262140, got 3"),
])
def test_serialize_rejects_out_of_range_fields(kwargs, message):
    fields = dict(payload_type=8, sequence_number=1, timestamp=2, ssrc=3) | kwargs
    with pytest.raises(ProtocolError) as e:
        RtpPacket(**fields).serialize()
    assert str(e.value) == message


def test_transcoding_tables_are_the_g711_codecs():
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(ULAW_TO_ALAW, alaw_encode(ulaw_decode(codes)))
    assert np.array_equal(ALAW_TO_ULAW, ulaw_encode(alaw_decode(codes)))


# --- sender ----------------------------------------------------------------------------------

def test_sender_marker_timestamps_and_sequence_wrap():
    s = RtpSender(0xCAFEBABE, 8, initial_seq=65534, initial_ts=0xFFFFFF60)
    frame = np.full(160, 0xD5, np.uint8)
    p1, p2 = s.frame(frame), s.frame(frame)
    assert (p1.marker, p1.sequence_number, p1.timestamp) == (True, 65534, 0xFFFFFF60)
    assert (p2.marker, p2.sequence_number, p2.timestamp) == (False, 65535, 0)  # both wrap
    s.skip(2)  # 40 ms of silence: nothing sent, the clock runs on
    p3 = s.frame(frame)
    assert (p3.marker, p3.sequence_number, p3.timestamp) == (True, 0, 160 * 3)
    assert p3.payload == bytes(frame) and p3.payload_type == 8 and p3.ssrc == 0xCAFEBABE
    assert (s.packet_count, s.octet_count) == (3, 480)
    assert RtpPacket.parse(p3.serialize()) == p3


def test_sender_pcmu_transcodes_the_alaw_frame():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, 160).astype(np.uint8)
    p = RtpSender(1, 0).frame(frame)
    assert p.payload == ulaw_encode(alaw_decode(frame)).tobytes() and p.payload_type == 0


def test_sender_rtp_time_follows_the_reference():
    s = RtpSender(1, 8, initial_ts=1000)
    assert s.rtp_time(5.0) == 1000  # no reference yet: the next frame's timestamp
    s.frame(b"\xd5" * 160, now=10.0)
    assert s.rtp_time(10.0) == 1000 and s.rtp_time(12.5) == 1000 + 20000


def test_packet_at_shares_the_sequence_space():
    s = RtpSender(7, 8, initial_seq=10, initial_ts=800)
    e = s.packet_at(b"\x05\x0a\x00\xa0", 800, 101, marker=True)
    a = s.frame(b"\xd5" * 160)
    assert (e.sequence_number, e.timestamp, e.payload_type, e.marker) == (10, 800, 101, True)
    assert (a.sequence_number, a.timestamp) == (11, 800)


# --- receiver --------------------------------------------------------------------------------

def pkt(seq, ts=None, ssrc=0x1111, pt=8):
    return RtpPacket(pt, seq & 0xFFFF, (seq * 160 if ts is None else ts) & 0xFFFFFFFF, ssrc, b"\xd5" * 160)


def test_probation_holds_the_first_packet_and_delivers_both():
    r = RtpReceiver()
    first, second = pkt(100), pkt(101)
    assert r.receive(first.serialize(), 0.0) == []
    assert r.receive(second.serialize(), 0.02) == [first, second]
    src = r.sources[0x1111]
    assert src.valid and (src.base_seq, src.received, src.expected, src.lost) == (100, 2, 2, 0)


def test_probation_restarts_on_a_non_sequential_packet():
    r = RtpReceiver()
    assert r.receive(pkt(10), 0.0) == []
    assert r.receive(pkt(12), 0.02) == []
    assert r.receive(pkt(13), 0.04) == [pkt(12), pkt(13)]
    assert r.sources[0x1111].discarded == 1


def test_sequence_wrap_counts_a_cycle():
    r = RtpReceiver()
    delivered = []
    for i, seq in enumerate([65533, 65534, 65535, 0, 1, 2]):
        delivered += r.receive(pkt(seq), i * 0.02)
    src = r.sources[0x1111]
    assert [p.sequence_number for p in delivered] == [65533, 65534, 65535, 0, 1, 2]
    assert (src.cycles, src.max_seq, src.extended_max_seq) == (65536, 2, 65538)
    assert (src.expected, src.received, src.lost) == (6, 6, 0)


def test_probation_across_the_wrap():
    r = RtpReceiver()
    r.receive(pkt(65535), 0.0)
    r.receive(pkt(0), 0.02)
    src = r.sources[0x1111]
    assert (src.extended_max_seq, src.expected) == (65536, 2)


def test_loss_counting_and_fraction_per_interval():
    r = RtpReceiver()
    for seq in range(100, 120):
        if seq not in (105, 110):
            r.receive(pkt(seq), seq * 0.02)
    src = r.sources[0x1111]
    assert (src.expected, src.received, src.lost) == (20, 18, 2)
    (rep,) = r.reports()
    assert (rep.ssrc, rep.fraction_lost, rep.cumulative_lost, rep.extended_max_seq) == (0x1111, (2 << 8) // 20, 2, 119)
    assert r.reports() == []  # nothing heard since
    for seq in range(120, 130):
        r.receive(pkt(seq), seq * 0.02)
    (rep,) = r.reports()
    assert (rep.fraction_lost, rep.cumulative_lost, rep.extended_max_seq) == (0, 2, 129)


def test_duplicates_make_loss_negative_and_reordered_packets_are_delivered():
    r = RtpReceiver()
    got = []
    for seq in [1, 2, 4, 3, 3, 5]:
        got += r.receive(pkt(seq), 0.0)
    assert [p.sequence_number for p in got] == [1, 2, 4, 3, 3, 5]
    src = r.sources[0x1111]
    assert (src.expected, src.received, src.lost, src.max_seq) == (5, 6, -1, 5)
    assert r.reports()[0].cumulative_lost == -1


def test_big_jump_restarts_the_source_after_two_sequential_packets():
    r = RtpReceiver()
    for seq in range(100, 110):
        r.receive(pkt(seq), 0.0)
    assert r.receive(pkt(40000), 0.2) == []  # a jump of more than MAX_DROPOUT: held
    assert r.receive(pkt(40001), 0.22) == [pkt(40000), pkt(40001)]
    src = r.sources[0x1111]
    assert (src.restarts, src.base_seq, src.received, src.expected, src.lost) == (1, 40000, 2, 2, 0)


def test_a_stray_packet_does_not_restart():
    r = RtpReceiver()
    for seq in range(100, 110):
        r.receive(pkt(seq), 0.0)
    assert r.receive(pkt(30000), 0.2) == []
    assert r.receive(pkt(110), 0.22) == [pkt(110)]
    src = r.sources[0x1111]
    assert src.restarts == 0 and src.max_seq == 110


def test_late_packet_within_misorder_is_delivered():
    r = RtpReceiver()
    for seq in range(100, 110):
        r.receive(pkt(seq), 0.0)
    assert r.receive(pkt(20), 0.2) == [pkt(20)]  # 90 behind: a late packet, counted
    assert r.sources[0x1111].received == 11


def test_interarrival_jitter_a8_by_hand():
    # timestamps 0, 160, 320, 480 arrive at 0, 20, 45, 55 ms, i.e. 0, 160, 360, 440 timestamp units:
    # transit 0, 0, 40, -40; D = 0, 40, 80; J = 0 -> 0 -> 40/16 = 2.5 -> 2.5 + (80 - 2.5)/16 = 7.34375
    src = RtpSource(0x1111)
    for seq, ts, now in [(0, 0, 0.0), (1, 160, 0.020), (2, 320, 0.045), (3, 480, 0.055)]:
        src.update(pkt(seq, ts), now)
    assert src.jitter_estimate == pytest.approx(7.34375, abs=1e-9)
    assert src.jitter == 7


def test_jitter_skips_packets_of_the_same_instant_and_handles_timestamp_wrap():
    src = RtpSource(0x1111)
    base = 0xFFFFFF00
    src.update(pkt(0, base), 0.0)
    src.update(pkt(1, base), 0.010)  # same timestamp (an event update): not a jitter sample
    src.update(pkt(2, base), 0.020)
    src.update(pkt(3, base + 160), 0.020)  # wraps past 2**32, on time
    assert src.jitter_estimate == 0.0
    src.update(pkt(4, base + 320), 0.050)  # 10 ms late: D = 80
    assert src.jitter_estimate == pytest.approx(80 / 16)


def test_receiver_counts_malformed_and_never_raises():
    r = RtpReceiver()
    assert r.receive(b"\x80\x08", 0.0) == []
    assert r.receive(b"\x00" * 20, 0.0) == []
    assert r.receive(bytes([0x81, 0xC8]) + bytes(26), 0.0) == []  # an RTCP SR on the RTP port
    assert r.malformed == 3 and r.sources == {}


def test_sources_are_bounded_and_forgotten():
    r = RtpReceiver(max_sources=2)
    for i, ssrc in enumerate([1, 2, 3]):
        r.receive(pkt(0, ssrc=ssrc), float(i))
    assert sorted(r.sources) == [2, 3] and r.evicted == 1
    r.forget(2)
    assert sorted(r.sources) == [3]


def test_signed32():
    assert signed32(5) == 5 and signed32(0xFFFFFFFF) == -1 and signed32(0x80000000) == -(1 << 31)
