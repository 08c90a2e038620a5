"""RTCP: SR/RR/SDES/BYE bytes written out from RFC 3550 §6, compound parsing, and the reporter's timing and RTT."""

from __future__ import annotations

import random

import pytest

from appliance.errors import ProtocolError
from drivers.sip.rtcp import (CNAME, Bye, ReceiverReport, ReportBlock, RtcpReporter, RtcpUnknown, SdesChunk,
                              SenderReport, SourceDescription, build_compound, ntp_middle, ntp_timestamp,
                              parse_compound)
from drivers.sip.rtp import RtpPacket, RtpReceiver, RtpSender

SR_ONE_BLOCK = bytes([
    0x81, 0xC8, 0x00, 0x0C,  # V=2 P=0 RC=1, PT=200, length 12 (13 words)
    0x11, 0x22, 0x33, 0x44,  # SSRC of sender
    0xE8, 0xA0, 0xB7, 0x10,  # NTP seconds
    0x80, 0x00, 0x00, 0x00,  # NTP fraction (.5)
    0x00, 0x00, 0x1F, 0x40,  # RTP timestamp 8000
    0x00, 0x00, 0x00, 0x0A,  # packet count 10
    0x00, 0x00, 0x06, 0x40,  # octet count 1600
    0x55, 0x66, 0x77, 0x88,  # report block: SSRC_1
    0x19, 0x00, 0x00, 0x02,  # fraction lost 25/256, cumulative lost 2
    0x00, 0x01, 0x00, 0x05,  # extended highest sequence number: 1 cycle, seq 5
    0x00, 0x00, 0x00, 0x07,  # interarrival jitter 7
    0xB7, 0x05, 0x20, 0x00,  # LSR
    0x00, 0x05, 0x40, 0x00,  # DLSR 5.25 s
])
SDES_CNAME = bytes([0x81, 0xCA, 0x00, 0x03, 0x11, 0x22, 0x33, 0x44,
                    0x01, 0x04, ord("a"), ord("b"), ord("@"), ord("c"), 0x00, 0x00])  # CNAME, null item + pad
BYE_REASON = bytes([0x81, 0xCB, 0x00, 0x03, 0x11, 0x22, 0x33, 0x44,
                    0x04, ord("d"), ord("o"), ord("n"), ord("e"), 0x00, 0x00, 0x00])
RR_EMPTY = bytes([0x80, 0xC9, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44])


def test_sr_with_one_report_block():
    (sr,) = parse_compound(SR_ONE_BLOCK)
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.ntp_timestamp, sr.rtp_timestamp, sr.packet_count, sr.octet_count) == \
        (0x11223344, 0xE8A0B71080000000, 8000, 10, 1600)
    assert sr.reports == [ReportBlock(0x55667788, 25, 2, 0x10005, 7, 0xB7052000, 0x00054000)]
    assert sr.extension == b""
    assert sr.serialize() == SR_ONE_BLOCK


def test_compound_sr_sdes_bye_round_trip():
    data = SR_ONE_BLOCK + SDES_CNAME + BYE_REASON
    sr, sdes, bye = parse_compound(data)
    assert sdes == SourceDescription([SdesChunk(0x11223344, [(CNAME, b"ab@c")])]) and sdes.chunks[0].cname == "ab@c"
    assert bye == Bye([0x11223344], "done")
    assert build_compound([sr, sdes, bye]) == data
    assert parse_compound(RR_EMPTY) == [ReceiverReport(0x11223344, [])]
    assert ReceiverReport(0x11223344).serialize() == RR_EMPTY


def test_sdes_chunk_exactly_filling_words_gets_a_whole_null_word():
    sdes = SourceDescription([SdesChunk(1, [(CNAME, b"ab")]), SdesChunk(2, [(CNAME, b"x"), (6, b"tool")])])
    data = sdes.serialize()
    assert data[8:16] == b"\x01\x02ab\x00\x00\x00\x00"  # 4 + 4 bytes: the terminator needs a word of its own
    assert len(data) % 4 == 0 and parse_compound(data) == [sdes]


def test_negative_cumulative_loss_and_unknown_types():
    block = ReportBlock(1, 0, -1, 100, 0)
    assert block.serialize()[4:8] == b"\x00\xff\xff\xff"
    rr = ReceiverReport(9, [block])
    app = RtcpUnknown(204, 3, b"\x00\x00\x00\x09nameDATA")
    assert parse_compound(rr.serialize() + app.serialize()) == [rr, app]


def test_padding_on_the_last_packet():
    padded = bytes([0xA0, 0xC9, 0x00, 0x02]) + RR_EMPTY[4:] + b"\x00\x00\x00\x04"
    assert parse_compound(padded) == [ReceiverReport(0x11223344)]


@pytest.mark.parametrize("data, message", [
    (b"", "RTCP datagram is empty"),
    (RR_EMPTY + b"\x80\xc9", "RTCP packet header truncated: 2 bytes at offset 8"),
    (b"\x40" + RR_EMPTY[1:], "RTCP version 1 at offset 0, expected 2"),
    (SR_ONE_BLOCK[:48], "RTCP packet type 200 at offset 0 claims 52 bytes, only 48 left"),
    (bytes([0x81, 0xC8, 0x00, 0x06]) + SR_ONE_BLOCK[4:28], "RTCP SR with 1 report blocks needs 52 bytes, got 28"),
    (bytes([0x80, 0xC8, 0x00, 0x01]) + bytes(4), "RTCP SR needs at least 28 bytes, got 8"),
    (bytes([0xA0, 0xC9, 0x00, 0x01]) + bytes(4) + RR_EMPTY,
     "RTCP padding on packet type 201 at offset 0, allowed on the last only"),
    (bytes([0xA0, 0xC9, 0x00, 0x01]) + b"\x00\x00\x00\x09", "RTCP padding count 9 invalid for a 4-byte body"),
    (bytes([0x81, 0xCA, 0x00, 0x02, 0, 0, 0, 1, 1, 9, 0x61, 0x62]), "RTCP SDES item type 1 truncated"),
    (bytes([0x81, 0xCB, 0x00, 0x02, 0, 0, 0, 1, 9, 0x61, 0x62, 0x63]), "RTCP BYE reason of 9 bytes truncated"),
])
def test_malformed_compounds_give_exact_errors(data, message):
    with pytest.raises(ProtocolError) as e:
        parse_compound(data)
    assert str(e.value) == message


def test_ntp_helpers():
    assert ntp_timestamp(0xE8A0B710 + 0.5) == 0xE8A0B71080000000
    assert ntp_middle(0xE8A0B71080000000) == 0xB7108000


class FixedRandom:
    """random() from a list, for exact intervals."""

    def __init__(self, values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def test_reporter_intervals_are_randomised_around_5s():
    rep = RtcpReporter(1, "a@b", now=100.0, rng=FixedRandom([0.0, 1.0, 0.5]))
    assert rep.next_deadline() == 100.0 + 1.25  # first report: half of 5 s, times 0.5
    assert rep.poll(101.0, 0.0) is None
    assert rep.poll(101.25, 0.0) is not None
    assert rep.next_deadline() == 101.25 + 7.5  # times 1.5
    assert rep.poll(108.75, 0.0) is not None and rep.next_deadline() == 108.75 + 5.0
    seeded = RtcpReporter(1, "a@b", rng=random.Random(5))
    gaps, now = [], 0.0
    for _ in range(200):
        now = seeded.next_deadline()
        seeded.poll(now, 0.0)
        gaps.append(seeded.next_deadline() - now)
    assert 2.5 <= min(gaps) < 3.0 and 7.0 < max(gaps) <= 7.5 and 4.7 < sum(gaps) / len(gaps) < 5.3


def stream(receiver, seqs, ssrc=0x77, t0=0.0):
    for seq in seqs:  # each on time
        receiver.receive(RtpPacket(8, seq, seq * 160, ssrc, b"\xd5" * 160).serialize(), t0 + seq * 0.02)


def test_reporter_builds_sr_with_report_block_and_echoes_lsr():
    sender = RtpSender(0x1234, 8, initial_ts=8000)
    receiver = RtpReceiver()
    rep = RtcpReporter(0x1234, "box@10.0.0.1", sender, receiver, rng=FixedRandom([0.5] * 5))
    for i in range(10):
        sender.frame(b"\xd5" * 160, now=10.0 + i * 0.02)
    stream(receiver, [s for s in range(20) if s != 7])
    peer_sr = SenderReport(0x77, ntp_timestamp(0xE8A0B705 + 0.125), 3200, 20, 3200).serialize()
    rep.receive(peer_sr, now=10.0, ntp=0xE8A0B705 + 0.2)
    sr, sdes = parse_compound(rep.build(now=12.5, ntp=0xE8A0C000 + 0.25))
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.ntp_timestamp, sr.packet_count, sr.octet_count) == (0x1234, 0xE8A0C00040000000, 10, 1600)
    assert sr.rtp_timestamp == 8000 + 9 * 160 + round((12.5 - 10.18) * 8000)
    assert sr.reports == [ReportBlock(0x77, (1 << 8) // 20, 1, 19, 0, 0xB7052000, int(2.5 * 65536))]
    assert sdes.chunks == [SdesChunk(0x1234, [(CNAME, b"box@10.0.0.1")])]


def test_reporter_switches_to_rr_two_reports_after_sending_stops():
    sender = RtpSender(5)
    rep = RtcpReporter(5, "x", sender, RtpReceiver())
    kinds = []
    for n in range(4):
        if n == 0:
            sender.frame(b"\xd5" * 160)
        kinds.append(type(parse_compound(rep.build(n * 5.0, 0.0))[0]).__name__)
    assert kinds == ["SenderReport", "SenderReport", "ReceiverReport", "ReceiverReport"]
    assert type(parse_compound(RtcpReporter(6, "y").build(0.0, 0.0))[0]) is ReceiverReport


def test_round_trip_time_from_the_rfc_example():
    # §6.4.1: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s), DLSR = 0x0005:4000 (5.250 s)
    rep = RtcpReporter(0x1234, "x")
    rr = ReceiverReport(0x99, [ReportBlock(0x1234, 64, 12, 70000, 400, 0xB7052000, 0x00054000)])
    rep.receive(rr.serialize(), now=3.0, ntp=0xE8A0B710 + 0.5)
    assert rep.rtt == 6.125
    remote = rep.remote[0x99]
    assert (remote.fraction_lost, remote.cumulative_lost, remote.highest_seq, remote.jitter, remote.rtt, remote.at) \
        == (0.25, 12, 70000, 0.05, 6.125, 3.0)


def test_no_rtt_without_lsr_and_blocks_about_others_ignored():
    rep = RtcpReporter(0x1234, "x")
    rr = ReceiverReport(0x99, [ReportBlock(0x1234, 0, 0, 1, 0), ReportBlock(0x4321, 0, 0, 1, 0)])
    rep.receive(rr.serialize(), now=1.0, ntp=5000.0)
    assert rep.rtt is None and rep.remote[0x99].rtt is None and list(rep.remote) == [0x99]


def test_receive_counts_garbage_and_bye_forgets_the_source():
    receiver = RtpReceiver()
    stream(receiver, range(5))
    rep = RtcpReporter(1, "x", receiver=receiver)
    assert rep.receive(b"\x80\xc9\x00", now=0.0, ntp=0.0) == []
    assert rep.receive(b"\x00" * 8, now=0.0, ntp=0.0) == []
    assert rep.malformed == 2
    rep.receive(ReceiverReport(0x77).serialize() + Bye([0x77], "hangup").serialize(), now=1.0, ntp=0.0)
    assert rep.byes == {0x77} and 0x77 not in receiver.sources


def test_bye_compound_ends_with_bye():
    rep = RtcpReporter(0x42, "me@box")
    rr, sdes, bye = parse_compound(rep.bye(now=1.0, ntp=0.0, reason="call ended"))
    assert isinstance(rr, ReceiverReport) and sdes.chunks[0].cname == "me@box"
    assert bye == Bye([0x42], "call ended")
