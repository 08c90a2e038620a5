"""RFC 4733 telephone-events: payload bytes, the sender's packet train, the receiver's once-per-press digits."""

from __future__ import annotations

import random

import numpy as np
import pytest

from appliance.errors import ProtocolError
from drivers.sip.rtp import RtpPacket, RtpSender
from drivers.sip.telephone_event import (EventDigit, TelephoneEvent, TelephoneEventReceiver, TelephoneEventSender,
                                         decode_event, encode_event, event_code)

# RTP: V=2, M=0, PT=101 | seq 42 | ts 8000 | SSRC 0x12345678 |
# event 5 | E=1 R=0 volume 10 (0x8A) | duration 800 (100 ms at 8 kHz)
DIGIT5_END = bytes([0x80, 0x65, 0x00, 0x2A, 0x00, 0x00, 0x1F, 0x40, 0x12, 0x34, 0x56, 0x78,
                    0x05, 0x8A, 0x03, 0x20])


def test_digit5_end_packet_bytes():
    p = RtpPacket.parse(DIGIT5_END)
    assert (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc) == (101, False, 42, 8000, 0x12345678)
    ev = decode_event(p.payload)
    assert ev == TelephoneEvent(event=5, end=True, volume=10, duration=800) and ev.digit == "5"
    assert encode_event("5", end=True, volume=10, duration=800) == DIGIT5_END[12:]
    assert RtpPacket(101, 42, 8000, 0x12345678, encode_event(5, True, 10, 800)).serialize() == DIGIT5_END


def test_reserved_bit_is_ignored_and_start_packet_bytes():
    assert decode_event(b"\x0b\x4a\x00\xa0") == TelephoneEvent(11, False, 10, 160)  # R set, '#'
    assert encode_event("#", duration=160) == b"\x0b\x0a\x00\xa0"
    assert encode_event("flash", volume=0, duration=1600) == b"\x10\x00\x06\x40"


def test_event_codes():
    assert [event_code(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert event_code("b") == 13 and event_code("flash") == 16 and event_code(200) == 200
    assert [TelephoneEvent(c, False, 0, 0).digit for c in (0, 10, 11, 15, 16, 17)] == ["0", "*", "#", "D", "flash", None]


@pytest.mark.parametrize("call, message", [
    (lambda: decode_event(b"\x05\x8a\x03"), "telephone-event payload must be 4 bytes, got 3"),
    (lambda: decode_event(b"\x05\x8a\x03\x20\x00"), "telephone-event payload must be 4 bytes, got 5"),
    (lambda: encode_event("E"), "telephone-event digit must be one of '0123456789*#ABCD', 'flash' or 0..255, got 'E'"),
    (lambda: encode_event("1", volume=64), "telephone-event volume must be 0..63 (-dBm0), got 64"),
    (lambda: encode_event("1", duration=65536), "telephone-event duration must be 0..65535 timestamp units, got 65536"),
])
def test_errors(call, message):
    with pytest.raises(ProtocolError) as e:
        call()
    assert str(e.value) == message


AUDIO = np.full(160, 0xD5, np.uint8)


def test_sender_packet_train_for_a_100ms_press():
    rtp = RtpSender(0xABCD, 8, initial_seq=100, initial_ts=16000)
    ev = TelephoneEventSender(rtp, payload_type=101)
    before = ev.tick(AUDIO)  # tick 0: audio
    ev.press("5")
    train = [ev.tick(AUDIO) for _ in range(7)]  # ticks 1..7: the event replaces the audio
    after = ev.tick(AUDIO)
    assert [len(t) for t in train] == [1] * 7
    pkts = [t[0] for t in train]
    assert before[0].payload_type == 8 and before[0].timestamp == 16000
    assert all(p.payload_type == 101 and p.ssrc == 0xABCD and p.timestamp == 16160 for p in pkts)
    assert [p.sequence_number for p in pkts] == list(range(101, 108))
    assert [p.marker for p in pkts] == [True] + [False] * 6
    events = [decode_event(p.payload) for p in pkts]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {(e.event, e.volume) for e in events} == {(5, 10)}
    assert (after[0].payload_type, after[0].marker, after[0].timestamp, after[0].sequence_number) == \
        (8, True, 16000 + 8 * 160, 108)
    assert not ev.busy


def test_sender_queues_presses_and_flash_has_no_volume():
    rtp = RtpSender(1, 8)
    ev = TelephoneEventSender(rtp)
    ev.press("1", duration_ms=40)
    ev.press("flash", duration_ms=20)
    pkts = [p for _ in range(12) for p in ev.tick(None)]
    evs = [(p.timestamp, p.marker, decode_event(p.payload)) for p in pkts]
    assert [(ts, m, e.event, e.end, e.duration) for ts, m, e in evs] == [
        (0, True, 1, False, 160), (0, False, 1, True, 320), (0, False, 1, True, 320), (0, False, 1, True, 320),
        (640, True, 16, True, 160), (640, False, 16, True, 160), (640, False, 16, True, 160)]
    assert {e.volume for _, _, e in evs[4:]} == {0}
    assert rtp.timestamp == 12 * 160  # silence and events all advanced the clock


def test_press_validation():
    ev = TelephoneEventSender(RtpSender(1))
    with pytest.raises(ProtocolError, match="key press duration must be 1..8000 ms, got 0"):
        ev.press("1", 0)
    with pytest.raises(ProtocolError, match="dynamic"):
        TelephoneEventSender(RtpSender(1), payload_type=8)


def send_presses(presses, seed=0):
    """The packets of a list of (digit, ms) presses with 60 ms of audio between them."""
    rtp = RtpSender(0x5150, 8)
    ev = TelephoneEventSender(rtp)
    pkts = []
    for digit, ms in presses:
        ev.press(digit, ms)
        while ev.busy:
            pkts += ev.tick(AUDIO)
        for _ in range(3):
            pkts += ev.tick(AUDIO)
    return [p for p in pkts if p.payload_type == 101]


def test_round_trip_clean():
    presses = [("1", 100), ("1", 100), ("2", 60), ("#", 200), ("flash", 300), ("*", 20)]
    rx = TelephoneEventReceiver()
    got = []
    for i, p in enumerate(send_presses(presses)):
        got += rx.receive(RtpPacket.parse(p.serialize()), i * 0.02)
    assert got == [EventDigit(d, ms) for d, ms in presses]
    assert rx.duplicates == 2 * len(presses)  # the two retransmitted end packets of each press


def test_round_trip_with_duplicates_losses_and_reordering():
    presses = [("5", 100), ("5", 100), ("0", 140), ("9", 80), ("D", 100)]
    pkts = send_presses(presses)
    by_ts: dict[int, list[RtpPacket]] = {}
    for p in pkts:
        by_ts.setdefault(p.timestamp, []).append(p)
    trains = list(by_ts.values())
    assert len(trains) == 5
    net = []
    net += [trains[0][0], trains[0][0]] + trains[0][1:] + trains[0][-2:]  # duplicated start, retransmitted ends
    net += trains[1][2:]  # first packets of the second "5" lost: still a press, a new timestamp
    net += trains[2][:4]  # every end packet of the "0" lost: ended by the next event
    net += [trains[3][1], trains[3][0]] + trains[3][2:]  # reordered start
    net += trains[4][:4] + [trains[4][6]]  # the "D": first two end packets lost
    rx = TelephoneEventReceiver()
    got = []
    for i, p in enumerate(net):
        got += rx.receive(p, i * 0.02)
    assert [g.digit for g in got] == ["5", "5", "0", "9", "D"]
    assert got[2] == EventDigit("0", 80)  # only 4 updates of 20 ms arrived
    assert got[4] == EventDigit("D", 100)
    assert rx.digits == 5


def test_lost_end_of_the_last_press_times_out():
    pkts = send_presses([("7", 100)])[:3]
    rx = TelephoneEventReceiver(timeout=0.5)
    got = []
    for i, p in enumerate(pkts):
        got += rx.receive(p, 1.0 + i * 0.02)
    assert got == [] and rx.next_deadline() == pytest.approx(1.54)
    assert rx.poll(1.5) == []
    assert rx.poll(1.54) == [EventDigit("7", 60)]
    assert rx.poll(2.0) == [] and rx.next_deadline() is None


def test_random_network_gives_each_press_once():
    rng = random.Random(11)
    presses = [(rng.choice("0123456789*#"), rng.choice([60, 100, 160])) for _ in range(40)]
    pkts = send_presses(presses)
    net = []
    for p in pkts:
        if rng.random() < 0.1:
            continue  # lost
        net.append(p)
        if rng.random() < 0.1:
            net.append(p)  # duplicated
    for i in range(len(net) - 1):  # swap neighbours now and then
        if rng.random() < 0.05 and net[i].timestamp == net[i + 1].timestamp:
            net[i], net[i + 1] = net[i + 1], net[i]
    rx = TelephoneEventReceiver()
    got = []
    for i, p in enumerate(net):
        got += rx.receive(p, i * 0.02)
    got += rx.poll(1e9)
    heard = {p.timestamp for p in net}
    expected = [d for (d, _), ts in zip(presses, sorted({p.timestamp for p in pkts})) if ts in heard]
    assert [g.digit for g in got] == expected


def test_unknown_events_and_malformed_are_counted():
    rx = TelephoneEventReceiver()
    assert rx.receive(RtpPacket(101, 1, 0, 1, encode_event(20, True, 0, 160)), 0.0) == []
    assert rx.receive(RtpPacket(101, 2, 0, 1, b"\x05\x8a"), 0.0) == []
    assert rx.receive(RtpPacket(8, 3, 0, 1, b"\xd5" * 160), 0.0) == []  # audio: not ours, not counted
    assert (rx.ignored, rx.malformed, rx.digits) == (1, 1, 0)


def test_a_stray_packet_of_an_older_unseen_event_is_late():
    rx = TelephoneEventReceiver()
    assert rx.receive(RtpPacket(101, 10, 1600, 1, encode_event("3", False, 10, 160)), 0.0) == []
    assert rx.receive(RtpPacket(101, 8, 800, 1, encode_event("2", True, 10, 480)), 0.01) == []
    assert rx.late == 1
    assert rx.receive(RtpPacket(101, 11, 1600, 1, encode_event("3", True, 10, 320)), 0.02) == [EventDigit("3", 40)]
