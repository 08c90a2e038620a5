"""SMS PDU codec: GSM 7-bit alphabet, SMS-SUBMIT, SMS-DELIVER, status reports, reassembly."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from appliance.errors import ProtocolError
from appliance.sms import gsm7
from appliance.sms.pdu import (
    DCS_8BIT,
    DCS_GSM7,
    DCS_UCS2,
    Concat,
    Reassembler,
    at_cmgs_pdus,
    decode_deliver,
    decode_status_report,
    encode_submit,
    split_text,
)

SMSC_CN = "0891683108200105F0"  # +8613800210500
SCTS = "62118211410023"  # 2026-11-28 11:14:00 +08:00 (32 quarters, swapped "23")
CHINESE_150 = ("您好，这里是客服中心。您的工单已受理，我们将尽快安排工程师上门服务，请保持电话畅通。" * 4)[:150]


def deliver_from_submit(tpdu: bytes, scts: str = SCTS) -> str:
    """Build the SMS-DELIVER (with SMSC prefix) a handset would receive for a SUBMIT TPDU;
    the sender (TP-OA) is the SUBMIT's destination (TP-DA), coded the same way."""
    first, da_len = tpdu[0], tpdu[2]
    i = 4 + (da_len + 1) // 2  # past first octet, MR, DA length, DA type, DA digits
    address = tpdu[2:i]
    pid, dcs = tpdu[i], tpdu[i + 1]
    i += 2 + (1 if first & 0x18 == 0x10 else 0)  # relative TP-VP is one octet
    user_data = tpdu[i:]  # TP-UDL and TP-UD are the same in both directions
    deliver_first = 0x04 | (first & 0x40)  # TP-MMS (no more messages) and TP-UDHI
    return (
        SMSC_CN
        + f"{deliver_first:02X}"
        + address.hex().upper()
        + f"{pid:02X}{dcs:02X}"
        + scts
        + user_data.hex().upper()
    )


# ---------------------------------------------------------------- gsm7


def test_gsm7_known_packing():
    septets = gsm7.encode_septets("hellohello")
    assert gsm7.pack(septets) == bytes.fromhex("E8329BFD4697D9EC37")
    assert gsm7.decode_septets(gsm7.unpack(bytes.fromhex("E8329BFD4697D9EC37"), 10)) == "hellohello"


def test_gsm7_eight_septets_fill_seven_octets():
    assert gsm7.pack(gsm7.encode_septets("12345678")) == bytes.fromhex("31D98C56B3DD70")


def test_gsm7_fill_bits_shift_the_data():
    assert gsm7.pack([0x41], fill_bits=1) == bytes([0x82])
    assert gsm7.pack([0x7F, 0x7F], fill_bits=6) == bytes([0xC0, 0xFF, 0x0F])
    assert gsm7.unpack(bytes([0xC0, 0xFF, 0x0F]), 2, fill_bits=6) == [0x7F, 0x7F]


def test_gsm7_extension_takes_two_septets():
    assert gsm7.encode_septets("€[a") == [0x1B, 0x65, 0x1B, 0x3C, 0x61]
    assert gsm7.decode_septets([0x1B, 0x65, 0x1B, 0x3C, 0x61]) == "€[a"
    for ch in "^{}\\[~]|€\f":
        assert gsm7.septet_count(ch) == 2
        assert gsm7.decode_septets(gsm7.encode_septets(ch)) == ch


def test_gsm7_special_basic_characters():
    assert gsm7.encode_septets("@£$¥ΔÄ§¿à\n") == [0, 1, 2, 3, 0x10, 0x5B, 0x5F, 0x60, 0x7F, 0x0A]
    assert gsm7.can_encode("Hello @ £5 {ok}")
    assert not gsm7.can_encode("你好")
    assert not gsm7.can_encode("`")  # backtick is not in the alphabet


def test_gsm7_lenient_escape_decoding():
    assert gsm7.decode_septets([0x1B, 0x41]) == "A"  # unknown extension shows the basic char
    assert gsm7.decode_septets([0x41, 0x1B]) == "A "
    assert gsm7.decode_septets([0x1B, 0x1B, 0x41]) == " A"


def test_gsm7_seeded_random_round_trip():
    rng = random.Random(2311)
    alphabet = [ch for ch in map(chr, range(0x2100)) if gsm7.can_encode(ch)]
    assert len(alphabet) == 127 + 10
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        septets = gsm7.encode_septets(text)
        fill = rng.randrange(7)
        packed = gsm7.pack(septets, fill)
        assert len(packed) == (fill + 7 * len(septets) + 7) // 8
        assert gsm7.decode_septets(gsm7.unpack(packed, len(septets), fill)) == text


def test_gsm7_errors():
    with pytest.raises(ProtocolError, match=r"'中'.*index 2"):
        gsm7.encode_septets("ab中")
    with pytest.raises(ProtocolError, match="fill_bits 7"):
        gsm7.pack([1], fill_bits=7)
    with pytest.raises(ProtocolError, match="fill_bits -1"):
        gsm7.unpack(b"\x00", 1, fill_bits=-1)
    with pytest.raises(ProtocolError, match="septet value 128 at index 1"):
        gsm7.pack([1, 128])
    with pytest.raises(ProtocolError, match="septet value 200 at index 0"):
        gsm7.decode_septets([200])
    with pytest.raises(ProtocolError, match="9 septets need 8 octets, only 7"):
        gsm7.unpack(bytes(7), 9)
    with pytest.raises(ProtocolError, match="negative"):
        gsm7.unpack(b"", -1)


# ---------------------------------------------------------------- split_text


def test_split_single_part_limits():
    assert split_text("a" * 160) == (DCS_GSM7, ["a" * 160])
    assert split_text("中" * 70) == (DCS_UCS2, ["中" * 70])
    assert split_text("") == (DCS_GSM7, [""])
    assert split_text("€" * 80) == (DCS_GSM7, ["€" * 80])  # 160 septets


def test_split_long_gsm7():
    dcs, parts = split_text("a" * 161)
    assert dcs == DCS_GSM7 and [len(p) for p in parts] == [153, 8]
    assert split_text("€" * 81)[1] == ["€" * 76, "€" * 5]  # 152 septets, never 153 with half an escape


def test_split_escape_at_boundary_moves_whole_pair():
    text = "a" * 152 + "€" + "b" * 10
    parts = split_text(text)[1]
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert "".join(parts) == text


def test_split_ucs2_and_surrogates():
    dcs, parts = split_text(CHINESE_150)
    assert dcs == DCS_UCS2 and [len(p) for p in parts] == [67, 67, 16]
    text = "中" * 66 + "😀" + "x" * 5  # the emoji would straddle units 67/68
    parts = split_text(text)[1]
    assert parts == ["中" * 66, "😀xxxxx"]
    assert split_text("😀" * 35) == (DCS_UCS2, ["😀" * 35])  # 70 units, one part


def test_split_too_many_parts():
    assert len(split_text("a" * 153 * 255)[1]) == 255
    with pytest.raises(ProtocolError, match="256 parts, at most 255"):
        split_text("a" * (153 * 255 + 1))
    with pytest.raises(ProtocolError, match="256 parts"):
        encode_submit("10086", "中" * (67 * 255 + 1), ref=1)


# ---------------------------------------------------------------- SMS-SUBMIT


def test_submit_known_vector_hellohello():
    (tpdu,) = encode_submit("+46708251358", "hellohello", ref=0, request_report=False,
                            validity=timedelta(days=4))
    assert tpdu.hex().upper() == "11000B916407281553F80000AA0AE8329BFD4697D9EC37"
    assert at_cmgs_pdus("+46708251358", "hellohello", ref=0, request_report=False,
                        validity=timedelta(days=4)) == [
        (23, "0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
    ]


def test_submit_ucs2_single_with_report():
    assert at_cmgs_pdus("+8613912345678", "你好", ref=7) == [
        (19, "0031000D91683119325476F80008A7044F60597D")
    ]


def test_submit_national_number_and_no_validity():
    (tpdu,) = encode_submit("13912345678", "Hi", ref=0, request_report=False, validity=None, mr=9)
    assert tpdu.hex().upper() == "01090B813119325476F8000002C834"


@pytest.mark.parametrize(
    ("number", "address"),
    [("+8613912345678", "0D91683119325476F8"), ("10086", "05810180F6"), ("1234", "04812143")],
)
def test_address_encoding(number, address):
    (tpdu,) = encode_submit(number, "", ref=0, request_report=False, validity=None)
    assert tpdu.hex().upper() == "0100" + address + "000000"
    assert decode_deliver(deliver_from_submit(tpdu)).sender == number


@pytest.mark.parametrize("number", ["", "+", "139-1234-5678", "+86 139", "1" * 21, "abc"])
def test_bad_numbers(number):
    with pytest.raises(ProtocolError, match="bad phone number"):
        encode_submit(number, "hi", ref=1)


@pytest.mark.parametrize(
    ("period", "vp"),
    [
        (timedelta(minutes=5), 0),
        (timedelta(minutes=6), 1),
        (timedelta(hours=12), 143),
        (timedelta(hours=12, minutes=30), 144),
        (timedelta(days=1), 167),
        (timedelta(days=2), 168),
        (timedelta(days=4), 170),
        (timedelta(days=30), 196),
        (timedelta(days=31), 197),
        (timedelta(weeks=63), 255),
    ],
)
def test_relative_validity(period, vp):
    (tpdu,) = encode_submit("10086", "", ref=0, request_report=False, validity=period)
    assert tpdu.hex().upper() == f"110005810180F60000{vp:02X}00"


@pytest.mark.parametrize("period", [timedelta(0), timedelta(minutes=-5), timedelta(weeks=63, seconds=1)])
def test_relative_validity_out_of_range(period):
    with pytest.raises(ProtocolError, match="validity period"):
        encode_submit("10086", "hi", ref=0, validity=period)


def test_submit_bad_ref_and_mr():
    with pytest.raises(ProtocolError, match="ref 256"):
        encode_submit("10086", "hi", ref=256)
    with pytest.raises(ProtocolError, match="mr -1"):
        encode_submit("10086", "hi", ref=0, mr=-1)


def test_submit_chinese_150_three_parts():
    tpdus = encode_submit("+8613912345678", CHINESE_150, ref=0x5A, mr=0xFE)
    assert len(tpdus) == 3
    units = [67, 67, 16]
    for seq, (tpdu, n) in enumerate(zip(tpdus, units), 1):
        head = bytes([0x71, (0xFE + seq - 1) % 256]) + bytes.fromhex("0D91683119325476F8")
        assert tpdu[:11] == head  # SUBMIT, VPF relative, SRR, UDHI; MR wraps 0xFE, 0xFF, 0x00
        assert tpdu[11:14] == bytes([0x00, 0x08, 0xA7])  # PID, DCS UCS2, VP 24 h
        assert tpdu[14] == 6 + 2 * n  # TP-UDL counts the UDH octets too
        assert tpdu[15:21] == bytes([0x05, 0x00, 0x03, 0x5A, 0x03, seq])
        assert len(tpdu) == 15 + 6 + 2 * n
    assert b"".join(t[21:] for t in tpdus).decode("utf-16-be") == CHINESE_150


def test_chinese_150_delivered_and_reassembled_shuffled():
    tpdus = encode_submit("+8613800138000", CHINESE_150, ref=0x5A)
    delivers = [decode_deliver(deliver_from_submit(t)) for t in tpdus]
    assert [d.concat for d in delivers] == [Concat(0x5A, 3, s) for s in (1, 2, 3)]
    assert all(d.dcs == DCS_UCS2 and d.sender == "+8613800138000" for d in delivers)
    order = delivers[:]
    random.Random(7).shuffle(order)
    order.insert(1, order[0])  # a duplicate
    r = Reassembler()
    results = [r.feed(d, now=100.0 + i) for i, d in enumerate(order)]
    assert results[:-1] == [None] * (len(order) - 1)
    assert results[-1] == CHINESE_150
    assert len(r) == 0


def test_gsm7_long_message_fill_bit_exact_bytes():
    text = "a" * 153 + "b" * 8
    tpdus = encode_submit("10086", text, ref=1, request_report=False, validity=None)
    assert len(tpdus) == 2
    # 41 = SUBMIT|UDHI, MR 01, DA, PID, DCS, UDL = 7 UDH septets + 8, UDH 05 00 03 01 02 02.
    assert tpdus[1][:16].hex().upper() == "410105810180F600000F050003010202"
    # Eight 'b' (0x62) after one zero fill bit, 57 bits in 8 octets, checked by hand:
    # C4 = 0x62 << 1, 62 = the second septet whole, B1 = 0x62 >> 1 | (0x62 & 3) << 6, ...
    assert tpdus[1][16:].hex().upper() == "C462B1582C168B01"
    assert tpdus[0][9] == 7 + 153 and len(tpdus[0]) == 10 + 6 + 134  # (1 + 153*7) bits = 134 octets
    d = [decode_deliver(deliver_from_submit(t)) for t in tpdus]
    assert [x.text for x in d] == ["a" * 153, "b" * 8]
    assert [x.concat for x in d] == [Concat(1, 2, 1), Concat(1, 2, 2)]


def test_escape_at_part_boundary_round_trip():
    text = "x" * 152 + "{" + "y" * 20
    tpdus = encode_submit("+8613912345678", text, ref=200)
    assert len(tpdus) == 2
    assert tpdus[0][14] == 7 + 152  # UDL after DA(9) PID DCS VP: first part stops before the escape
    r = Reassembler()
    texts = [r.feed(decode_deliver(deliver_from_submit(t)), now=0.0) for t in reversed(tpdus)]
    assert texts == [None, text]


def test_emoji_single_and_split():
    (tpdu,) = encode_submit("10086", "好😀", ref=0, validity=None, request_report=False)
    assert tpdu.hex().upper() == "010005810180F6000806597DD83DDE00"
    text = "中" * 66 + "😀" + "尾" * 10
    tpdus = encode_submit("10086", text, ref=3)
    assert len(tpdus) == 2 and tpdus[0][-2:] == "中".encode("utf-16-be")
    d = [decode_deliver(deliver_from_submit(t)) for t in tpdus]
    assert d[1].text == "😀" + "尾" * 10
    r = Reassembler()
    assert r.feed(d[1], 0.0) is None and r.feed(d[0], 1.0) == text


def test_seeded_random_submit_deliver_round_trip():
    rng = random.Random(20261128)
    pool = "abcXYZ 0123@£€[]{}^~|\\\n中文客服您好，。😀🎉é"
    for _ in range(60):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 400)))
        ref = rng.randrange(256)
        tpdus = encode_submit("+8613912345678", text, ref=ref)
        r = Reassembler()
        out = None
        for t in rng.sample(tpdus, len(tpdus)):
            out = r.feed(decode_deliver(deliver_from_submit(t)), now=0.0) or out
        assert out == text


# ---------------------------------------------------------------- SMS-DELIVER


def test_deliver_known_vector():
    d = decode_deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
    assert d.smsc == "+27381000015"
    assert d.sender == "27838890001"
    assert d.timestamp == datetime(1999, 3, 29, 15, 16, 59, tzinfo=timezone(timedelta(hours=2)))
    assert (d.pid, d.dcs, d.text, d.concat) == (0, DCS_GSM7, "hellohello", None)


def test_deliver_alphanumeric_sender_negative_zone_8bit():
    sender = gsm7.pack(gsm7.encode_septets("Google")).hex().upper()  # 42 bits = 11 semi-octets
    pdu = "00" + "24" + "0BD0" + sender + "00" + "04" + "6211821141000A" + "03" + "010203"
    d = decode_deliver(bytes.fromhex(pdu))
    assert d.smsc == "" and d.sender == "Google" and d.status_report_indicated
    assert d.timestamp.utcoffset() == timedelta(hours=-5)  # 20 quarters, sign bit
    assert (d.dcs, d.text, d.payload) == (DCS_8BIT, "", b"\x01\x02\x03")


def test_deliver_16bit_concat_and_other_ies():
    ud = bytes.fromhex("09" "0A01FF" "0804ABCD0302") + "Hi".encode("utf-16-be")
    pdu = SMSC_CN + "44" + "05810180F6" + "0008" + SCTS + f"{len(ud):02X}" + ud.hex()
    d = decode_deliver(pdu)
    assert d.concat == Concat(0xABCD, 3, 2) and d.text == "Hi" and d.sender == "10086"


def test_deliver_concat_ie_with_bad_sequence_is_ignored():
    ud = bytes.fromhex("050003010300") + "Hi".encode("utf-16-be")
    pdu = SMSC_CN + "44" + "05810180F6" + "0008" + SCTS + f"{len(ud):02X}" + ud.hex()
    d = decode_deliver(pdu)
    assert d.concat is None and Reassembler().feed(d, 0.0) == "Hi"


@pytest.mark.parametrize(("dcs", "text"), [(0xF0, "hellohello"), (0x11, "hellohello"), (0xC0, "hellohello")])
def test_deliver_other_gsm7_coding_groups(dcs, text):
    pdu = "000405810180F600" + f"{dcs:02X}" + SCTS + "0AE8329BFD4697D9EC37"
    assert decode_deliver(pdu).text == text


def test_deliver_errors():
    with pytest.raises(ProtocolError, match="not valid hex"):
        decode_deliver("07917283ZZ")
    with pytest.raises(ProtocolError, match="not valid hex"):
        decode_deliver("0")
    good = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
    with pytest.raises(ProtocolError, match=r"TP-UD needs 9 octets at offset 27, only 8 left"):
        decode_deliver(good[:-2])
    with pytest.raises(ProtocolError, match=r"TP-SCTS needs 7 octets at offset 19, only 5 left"):
        decode_deliver(good[:48])
    with pytest.raises(ProtocolError, match="SMSC length needs 1 octets at offset 0"):
        decode_deliver("")
    with pytest.raises(ProtocolError, match="not an SMS-DELIVER: first octet 0x11 at offset 1"):
        decode_deliver("0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
    with pytest.raises(ProtocolError, match=r"bad TP-SCTS 62138211410023 at offset 9"):
        decode_deliver("000405810180F60000" + "62138211410023" + "00")
    with pytest.raises(ProtocolError, match="compressed"):
        decode_deliver("000405810180F60020" + SCTS + "00")
    with pytest.raises(ProtocolError, match="UCS2 user data at offset 17 has odd length 3"):
        decode_deliver("000405810180F60008" + SCTS + "03" + "4F6059")
    with pytest.raises(ProtocolError, match="UDH at offset 17 is longer"):
        decode_deliver("004405810180F60008" + SCTS + "02" + "0500")
    with pytest.raises(ProtocolError, match="information element at offset 18 overruns"):
        decode_deliver("004405810180F60008" + SCTS + "04" + "03000500")


# ---------------------------------------------------------------- status report


def status_report(status: int) -> str:
    return SMSC_CN + "06" + "2A" + "0D91683119325476F8" + SCTS + "62118211510023" + f"{status:02X}"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(0x00, "delivered"), (0x02, "delivered"), (0x20, "pending"), (0x30, "pending"),
     (0x41, "failed"), (0x45, "failed"), (0x62, "failed")],
)
def test_status_report(status, outcome):
    rep = decode_status_report(status_report(status))
    assert rep.smsc == "+8613800210500" and rep.mr == 0x2A and rep.recipient == "+8613912345678"
    tz = timezone(timedelta(hours=8))
    assert rep.sc_timestamp == datetime(2026, 11, 28, 11, 14, 0, tzinfo=tz)
    assert rep.discharge_time == datetime(2026, 11, 28, 11, 15, 0, tzinfo=tz)
    assert rep.status == status and rep.outcome == outcome
    assert [rep.delivered, rep.pending, rep.failed].count(True) == 1


def test_status_report_trailing_parameters_ignored_and_errors():
    assert decode_status_report(status_report(0) + "00").delivered
    with pytest.raises(ProtocolError, match="TP-ST needs 1 octets at offset 34"):
        decode_status_report(status_report(0)[:-2])
    with pytest.raises(ProtocolError, match="not an SMS-STATUS-REPORT: first octet 0x04"):
        decode_status_report("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")


# ---------------------------------------------------------------- reassembly


def _parts(text: str, ref: int, sender: str = "+8613912345678") -> list:
    return [decode_deliver(deliver_from_submit(t)) for t in encode_submit(sender, text, ref=ref)]


def test_reassembler_keeps_senders_and_refs_apart_and_expires():
    a = _parts("A" * 200, ref=1, sender="+8613900000001")
    b = _parts("B" * 200, ref=1, sender="+8613900000002")
    c = _parts("C" * 200, ref=2, sender="+8613900000001")
    r = Reassembler(max_age=60.0)
    assert r.feed(a[0], 0.0) is None and r.feed(b[1], 10.0) is None and r.feed(c[0], 30.0) is None
    assert len(r) == 3
    assert r.expire(now=60.0) == []
    expired = r.expire(now=61.0)
    assert [(e.sender, e.ref, e.total, e.parts) for e in expired] == [("+8613900000001", 1, 2, {1: "A" * 153})]
    assert r.feed(b[0], 62.0) == "B" * 200
    assert r.feed(a[1], 63.0) is None  # its first half expired: it waits anew
    assert len(r) == 2


def test_reassembler_single_part_passes_through():
    (d,) = _parts("hello", ref=9)
    assert Reassembler().feed(d, 0.0) == "hello"


@pytest.mark.parametrize(("octets", "fill", "septets"), [(0, 0, 0), (6, 1, 7), (7, 0, 8), (5, 2, 6), (12, 2, 14)])
def test_gsm7_header_septets(octets, fill, septets):
    assert gsm7.header_septets(octets) == (fill, septets)


def _ucs2_part(ref: int, total: int, seq: int, units: bytes) -> str:
    ud = bytes([5, 0, 3, ref, total, seq]) + units
    return SMSC_CN + "44" + "0D91683119325476F8" + "0008" + SCTS + f"{len(ud):02X}" + ud.hex()


def test_reassembler_repairs_surrogate_pair_split_by_another_sender():
    emoji = "😀".encode("utf-16-be")  # D83D DE00
    first = decode_deliver(_ucs2_part(9, 2, 1, "好".encode("utf-16-be") + emoji[:2]))
    second = decode_deliver(_ucs2_part(9, 2, 2, emoji[2:] + "!".encode("utf-16-be")))
    r = Reassembler()
    assert r.feed(second, 0.0) is None
    assert r.feed(first, 0.0) == "好😀!"


def test_reassembler_lone_surrogate_becomes_replacement_char():
    (d,) = [decode_deliver(_ucs2_part(1, 1, 1, "😀".encode("utf-16-be")[:2]))]
    assert Reassembler().feed(d, 0.0) == "\ufffd"


def test_deliver_8bit_via_message_class_group():
    d = decode_deliver("000405810180F600F4" + SCTS + "02CAFE")
    assert (d.text, d.payload) == ("", b"\xca\xfe")


def test_at_cmgs_for_long_chinese_message():
    pdus = at_cmgs_pdus("+8613912345678", CHINESE_150, ref=1)
    assert [n for n, _ in pdus] == [15 + 6 + 134, 15 + 6 + 134, 15 + 6 + 32]
    assert all(h.startswith("0071") and len(h) == 2 + 2 * n for n, h in pdus)
