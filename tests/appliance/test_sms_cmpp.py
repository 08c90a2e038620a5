"""CMPP 2.0 codec: exact bytes built field by field here, independently of the code."""
from __future__ import annotations

import hashlib
import struct

import pytest

from appliance.errors import ProtocolError
from appliance.sms import cmpp


def pad(text: str | bytes, size: int) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    return raw + b"\0" * (size - len(raw))


def header(body: bytes, command: int, seq: int) -> bytes:
    # Total_Length, Command_Id, Sequence_Id
    return struct.pack(">III", 12 + len(body), command, seq) + body


def test_connect_bytes_and_authenticator():
    md5 = hashlib.md5(b"901234" + b"\0" * 9 + b"s3cret" + b"1128111500").digest()
    pdu = cmpp.Connect.create("901234", "s3cret", 1128111500)
    assert pdu.authenticator == md5
    body = (b"901234"                             # Source_Addr 6
            + md5                                 # AuthenticatorSource 16
            + b"\x20"                             # Version
            + struct.pack(">I", 1128111500))      # Timestamp as int
    wire = cmpp.encode(pdu, 1)
    assert wire == header(body, 0x00000001, 1)
    assert len(wire) == 39
    assert cmpp.decode(wire) == (1, pdu)


def test_timestamp_zero_padded_in_authenticator():
    # January: MMDDHHMMSS = "0105..." must keep its leading zero
    md5 = hashlib.md5(b"901234" + b"\0" * 9 + b"k" + b"0105080910").digest()
    assert cmpp.authenticator_source("901234", b"k", 105080910) == md5


def test_connect_resp():
    body = (b"\x00"            # Status (1 octet in 2.0)
            + b"A" * 16        # AuthenticatorISMG
            + b"\x20")         # Version
    wire = header(body, 0x80000001, 1)
    assert cmpp.decode(wire) == (1, cmpp.ConnectResp(0, b"A" * 16, 0x20))
    assert cmpp.encode(cmpp.ConnectResp(0, b"A" * 16), 1) == wire


def submit_body(content: bytes, udhi: int = 0, total: int = 1, number: int = 1, fmt: int = 8) -> bytes:
    return (struct.pack(">Q", 0)            # Msg_Id
            + bytes([total, number])        # Pk_total, Pk_number
            + b"\x01"                       # Registered_Delivery
            + b"\x00"                       # Msg_level
            + pad("HELP", 10)               # Service_Id
            + b"\x00"                       # Fee_UserType
            + pad("", 21)                   # Fee_terminal_Id
            + b"\x00"                       # TP_pId
            + bytes([udhi])                 # TP_udhi
            + bytes([fmt])                  # Msg_Fmt
            + pad("901234", 6)              # Msg_src
            + b"01"                         # FeeType
            + b"000000"                     # FeeCode
            + pad("", 17) + pad("", 17)     # ValId_Time, At_Time
            + pad("1065800", 21)            # Src_Id
            + b"\x02"                       # DestUsr_tl
            + pad("13800138000", 21) + pad("13900139000", 21)  # Dest_terminal_Id x2
            + bytes([len(content)])         # Msg_Length
            + content                       # Msg_Content
            + b"\0" * 8)                    # Reserve


def make_submit(content: bytes) -> cmpp.Submit:
    return cmpp.Submit(["13800138000", "13900139000"], content, "1065800", service_id="HELP", msg_src="901234")


def test_submit_bytes():
    content = "你好".encode("utf-16-be")
    wire = cmpp.encode(make_submit(content), 7)
    assert wire == header(submit_body(content), 0x00000004, 7)
    assert cmpp.decode(wire) == (7, make_submit(content))


def test_submit_resp():
    msg_id = cmpp.MsgId(11, 28, 11, 15, 0, 901234, 42).to_int()
    wire = header(struct.pack(">Q", msg_id) + b"\x00", 0x80000004, 7)  # Msg_Id, Result
    seq, resp = cmpp.decode(wire)
    assert (seq, resp) == (7, cmpp.SubmitResp(msg_id, 0))
    assert cmpp.encode(resp, 7) == wire
    assert cmpp.MsgId.from_int(resp.msg_id) == cmpp.MsgId(11, 28, 11, 15, 0, 901234, 42)


def test_msg_id_bit_layout():
    # month 4 | day 5 | hour 5 | minute 6 | second 6 | gateway 22 | sequence 16
    value = (12 << 60) | (31 << 55) | (23 << 50) | (59 << 44) | (58 << 38) | (0x3FFFFF << 16) | 0x1234
    assert cmpp.MsgId.from_int(value) == cmpp.MsgId(12, 31, 23, 59, 58, 0x3FFFFF, 0x1234)
    assert cmpp.MsgId(12, 31, 23, 59, 58, 0x3FFFFF, 0x1234).to_int() == value
    with pytest.raises(ProtocolError, match="gateway_id"):
        cmpp.MsgId(1, 1, 1, 1, 1, 1 << 22, 0).to_int()


def deliver_body(content: bytes, registered: int, fmt: int = 0) -> bytes:
    return (struct.pack(">Q", 99)           # Msg_Id
            + pad("1065800", 21)            # Dest_Id
            + pad("HELP", 10)               # Service_Id
            + b"\x00\x00"                   # TP_pid, TP_udhi
            + bytes([fmt])                  # Msg_Fmt
            + pad("13800138000", 21)        # Src_terminal_Id
            + bytes([registered])           # Registered_Delivery
            + bytes([len(content)])         # Msg_Length
            + content + b"\0" * 8)          # Msg_Content, Reserve


def test_deliver_mo_message():
    wire = header(deliver_body("查询".encode("gbk"), 0, fmt=15), 0x00000005, 3)
    seq, pdu = cmpp.decode(wire)
    assert seq == 3 and pdu.report is None
    assert (pdu.msg_id, pdu.dest_id, pdu.service_id, pdu.src_terminal_id) == (99, "1065800", "HELP", "13800138000")
    assert pdu.text() == "查询"
    assert cmpp.encode(pdu, 3) == wire


@pytest.mark.parametrize("stat", ["DELIVRD", "EXPIRED", "UNDELIV"])
def test_deliver_status_report(stat):
    report = (struct.pack(">Q", 0xABCDEF)   # Msg_Id of the submitted message
              + stat.encode()               # Stat 7
              + b"2611281115"               # Submit_time YYMMDDHHMM
              + b"2611281116"               # Done_time
              + pad("13800138000", 21)      # Dest_terminal_Id
              + struct.pack(">I", 5))       # SMSC_sequence
    assert len(report) == 60
    wire = header(deliver_body(report, 1), 0x00000005, 4)
    _, pdu = cmpp.decode(wire)
    assert pdu.report == cmpp.StatusReport(0xABCDEF, stat, "2611281115", "2611281116", "13800138000", 5)
    assert pdu.report.pack() == report
    assert cmpp.encode(pdu, 4) == wire


def test_deliver_report_truncated_names_field():
    wire = header(deliver_body(b"\0" * 30, 1), 0x00000005, 4)
    with pytest.raises(ProtocolError, match="report: truncated at field Done_time"):
        cmpp.decode(wire)


def test_deliver_resp_active_test_terminate():
    assert cmpp.encode(cmpp.DeliverResp(99, 0), 4) == header(struct.pack(">QB", 99, 0), 0x80000005, 4)
    assert cmpp.encode(cmpp.ActiveTest(), 9) == struct.pack(">III", 12, 0x00000008, 9)
    assert cmpp.encode(cmpp.ActiveTestResp(), 9) == struct.pack(">IIIB", 13, 0x80000008, 9, 0)
    assert cmpp.encode(cmpp.Terminate(), 10) == struct.pack(">III", 12, 0x00000002, 10)
    assert cmpp.encode(cmpp.TerminateResp(), 10) == struct.pack(">III", 12, 0x80000002, 10)
    for pdu in (cmpp.DeliverResp(99, 1), cmpp.ActiveTest(), cmpp.ActiveTestResp(), cmpp.Terminate(),
                cmpp.TerminateResp()):
        assert cmpp.decode(cmpp.encode(pdu, 1)) == (1, pdu)


def test_long_ucs2_message_parts():
    text = "字" * 67 + "文" * 67 + "尾"
    parts = cmpp.long_submits(make_submit(b""), text, ref=0x5A)
    assert [(p.pk_total, p.pk_number, p.tp_udhi) for p in parts] == [(3, 1, 1), (3, 2, 1), (3, 3, 1)]
    # UDH: IEI length 05, IEI 00 (8-bit ref), IE length 03, ref, total, number
    assert parts[0].msg_content == b"\x05\x00\x03\x5a\x03\x01" + ("字" * 67).encode("utf-16-be")
    assert parts[2].msg_content == b"\x05\x00\x03\x5a\x03\x03" + "尾".encode("utf-16-be")
    wire = cmpp.encode(parts[1], 2)
    assert wire == header(submit_body(parts[1].msg_content, udhi=1, total=3, number=2), 0x00000004, 2)
    assert "".join(p.msg_content[6:].decode("utf-16-be") for p in parts) == text


def test_short_ucs2_message_single_part_without_udh():
    [only] = cmpp.long_submits(make_submit(b""), "字" * 70, ref=1)
    assert (only.tp_udhi, only.pk_total, only.msg_content) == (0, 1, ("字" * 70).encode("utf-16-be"))


def test_long_message_keeps_surrogate_pairs_whole():
    text = "a" * 66 + "😀" + "b" * 10
    parts = cmpp.split_ucs2(text, 1)
    assert "".join(p[6:].decode("utf-16-be") for p in parts) == text


def stream() -> bytes:
    return (cmpp.encode(cmpp.ActiveTest(), 1) + cmpp.encode(make_submit(b"hi"), 2)
            + cmpp.encode(cmpp.SubmitResp(5, 0), 3))


def test_decoder_byte_by_byte():
    dec, got = cmpp.Decoder(), []
    for b in stream():
        got += dec.feed(bytes([b]))
    assert got == [(1, cmpp.ActiveTest()), (2, make_submit(b"hi")), (3, cmpp.SubmitResp(5, 0))]
    assert dec.pending == 0


@pytest.mark.parametrize("size", [5, 13, 50, 1000])
def test_decoder_chunks(size):
    data, dec, got = stream(), cmpp.Decoder(), []
    for i in range(0, len(data), size):
        got += dec.feed(data[i:i + size])
    assert [seq for seq, _ in got] == [1, 2, 3]


@pytest.mark.parametrize("length", [0, 11, 8193])
def test_decoder_rejects_bad_length(length):
    with pytest.raises(ProtocolError, match=f"length field {length} outside 12..8192"):
        cmpp.Decoder().feed(struct.pack(">III", length, 8, 1))


def test_decode_errors():
    with pytest.raises(ProtocolError, match="header needs 12 octets, got 5"):
        cmpp.decode(b"\0" * 5)
    with pytest.raises(ProtocolError, match="length field says 20 octets, frame has 12"):
        cmpp.decode(struct.pack(">III", 20, 8, 1))
    with pytest.raises(ProtocolError, match="unknown command id 0x00000063"):
        cmpp.decode(struct.pack(">III", 12, 0x63, 1))
    with pytest.raises(ProtocolError, match="CMPP_SUBMIT_RESP: truncated at field Result"):
        cmpp.decode(header(b"\0" * 8, 0x80000004, 1))
    wire = cmpp.encode(make_submit(b"hello"), 1)
    with pytest.raises(ProtocolError, match="CMPP_SUBMIT: truncated at field Msg_Content"):
        cmpp.decode(header(wire[12:-11], 0x00000004, 1))
    with pytest.raises(ProtocolError, match="CMPP_ACTIVE_TEST: 2 unexpected octets"):
        cmpp.decode(header(b"xx", 0x00000008, 1))


def test_encode_errors_name_field():
    with pytest.raises(ProtocolError, match="CMPP_CONNECT: field Source_Addr is 7 octets, max 6"):
        cmpp.encode(cmpp.Connect("1234567", b"\0" * 16, 0), 1)
    with pytest.raises(ProtocolError, match="Msg_Length out of range"):
        cmpp.encode(make_submit(b"x" * 256), 1)
    with pytest.raises(ProtocolError, match="DestUsr_tl"):
        cmpp.encode(cmpp.Submit([], b"", "1"), 1)


def test_decoder_bad_body_drops_only_that_pdu():
    bad = header(b"xx", 0x00000008, 2)  # ACTIVE_TEST must have no body
    good1, good2 = cmpp.encode(cmpp.ActiveTest(), 1), cmpp.encode(cmpp.ActiveTest(), 3)
    dec = cmpp.Decoder()
    assert dec.feed(good1 + bad + good2) == [(1, cmpp.ActiveTest())]  # good PDU handed over first
    with pytest.raises(ProtocolError, match="CMPP_ACTIVE_TEST: 2 unexpected octets"):
        dec.feed(b"")
    assert dec.feed(b"") == [(3, cmpp.ActiveTest())]  # framing stayed in step


def test_decoder_bad_length_names_stream_offset():
    dec = cmpp.Decoder()
    with pytest.raises(ProtocolError, match="at stream offset 12"):
        dec.feed(cmpp.encode(cmpp.ActiveTest(), 1) + struct.pack(">I", 3))


def test_non_ascii_field_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="CMPP_SUBMIT: field Src_Id is not ASCII"):
        cmpp.encode(cmpp.Submit(["13800138000"], b"", "号码"), 1)


def test_deliver_built_from_report_carries_it_as_content():
    rep = cmpp.StatusReport(7, "DELIVRD", "2611281115", "2611281116", "13800138000", 1)
    pdu = cmpp.Deliver(8, "1065800", "13800138000", b"", registered_delivery=1, report=rep)
    assert pdu.msg_content == rep.pack() and len(pdu.msg_content) == 60
    assert cmpp.decode(cmpp.encode(pdu, 1))[1].report == rep
