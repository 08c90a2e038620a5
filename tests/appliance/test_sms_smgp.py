"""SMGP 3.0 codec: exact bytes built field by field here, independently of the code."""
from __future__ import annotations

import hashlib
import struct

import pytest

from appliance.errors import ProtocolError
from appliance.sms import smgp


def pad(text: str | bytes, size: int) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    return raw + b"\0" * (size - len(raw))


def header(body: bytes, request: int, seq: int) -> bytes:
    # PacketLength, RequestID, SequenceID
    return struct.pack(">III", 12 + len(body), request, seq) + body


MSG_ID = bytes.fromhex("07550011281115000042")  # BCD: SMGW code 075500, MMDDHHMM 11281115, sequence 000042


def test_login_bytes_and_authenticator():
    md5 = hashlib.md5(b"12345678" + b"\0" * 7 + b"pw" + b"1128111500").digest()
    pdu = smgp.Login.create("12345678", "pw", 1128111500)
    assert pdu.authenticator == md5
    body = (b"12345678"                          # ClientID 8
            + md5                                # AuthenticatorClient 16
            + b"\x02"                            # LoginMode (2 = transmit)
            + struct.pack(">I", 1128111500)      # TimeStamp
            + b"\x30")                           # ClientVersion
    wire = smgp.encode(pdu, 1)
    assert wire == header(body, 0x00000001, 1)
    assert len(wire) == 42
    assert smgp.decode(wire) == (1, pdu)


def test_login_resp():
    body = (struct.pack(">I", 21)   # Status (4 octets)
            + b"S" * 16             # AuthenticatorServer
            + b"\x30")              # ServerVersion
    wire = header(body, 0x80000001, 1)
    assert smgp.decode(wire) == (1, smgp.LoginResp(21, b"S" * 16, 0x30))
    assert smgp.encode(smgp.LoginResp(21, b"S" * 16), 1) == wire


def submit_body(content: bytes, tlvs: bytes = b"") -> bytes:
    return (b"\x06"                          # MsgType (6 = MT)
            + b"\x01"                        # NeedReport
            + b"\x00"                        # Priority
            + pad("HELP", 10)                # ServiceID
            + b"00"                          # FeeType
            + b"000000"                      # FeeCode
            + b"000000"                      # FixedFee
            + b"\x08"                        # MsgFormat (UCS2)
            + pad("", 17) + pad("", 17)      # ValidTime, AtTime
            + pad("10659001", 21)            # SrcTermID
            + pad("", 21)                    # ChargeTermID
            + b"\x02"                        # DestTermIDCount
            + pad("13300133000", 21) + pad("18900189000", 21)  # DestTermID x2
            + bytes([len(content)])          # MsgLength
            + content                        # MsgContent
            + b"\0" * 8                      # Reserve
            + tlvs)                          # optional TLVs


def make_submit(content: bytes, tlvs=None) -> smgp.Submit:
    return smgp.Submit(["13300133000", "18900189000"], content, "10659001", service_id="HELP", tlvs=tlvs or [])


def test_submit_bytes_without_and_with_tlvs():
    content = "你好".encode("utf-16-be")
    wire = smgp.encode(make_submit(content), 7)
    assert wire == header(submit_body(content), 0x00000002, 7)
    assert smgp.decode(wire) == (7, make_submit(content))
    tlvs = (struct.pack(">HH", 0x0002, 1) + b"\x01"      # TP_udhi = 1
            + struct.pack(">HH", 0x0009, 1) + b"\x02"    # PkTotal = 2
            + struct.pack(">HH", 0x000A, 1) + b"\x01")   # PkNumber = 1
    pdu = make_submit(content, [(0x0002, b"\x01"), (0x0009, b"\x02"), (0x000A, b"\x01")])
    assert smgp.encode(pdu, 8) == header(submit_body(content, tlvs), 0x00000002, 8)
    assert smgp.decode(smgp.encode(pdu, 8))[1] == pdu
    assert smgp.tlv_int(pdu.tlvs, smgp.TAG_PK_TOTAL) == 2


def test_submit_resp_and_msg_id_parts():
    wire = header(MSG_ID + struct.pack(">I", 0), 0x80000002, 7)  # MsgID 10, Status 4
    seq, resp = smgp.decode(wire)
    assert (seq, resp) == (7, smgp.SubmitResp(MSG_ID, 0))
    assert smgp.encode(resp, 7) == wire
    assert smgp.msg_id_parts(resp.msg_id) == ("075500", "11281115", "000042")
    with pytest.raises(ProtocolError, match="MsgID: needs 10 octets, got 3"):
        smgp.msg_id_parts(b"abc")


def deliver_body(content: bytes, is_report: int, fmt: int = 0, tlvs: bytes = b"") -> bytes:
    return (MSG_ID                          # MsgID 10
            + bytes([is_report])            # IsReport
            + bytes([fmt])                  # MsgFormat
            + b"20261128111500"             # RecvTime YYYYMMDDhhmmss
            + pad("13300133000", 21)        # SrcTermID
            + pad("10659001", 21)           # DestTermID
            + bytes([len(content)])         # MsgLength
            + content + b"\0" * 8 + tlvs)   # MsgContent, Reserve, TLVs


def test_deliver_mo_message_with_tlv():
    tlv = struct.pack(">HH", 0x0003, 4) + b"LINK"   # LinkID
    wire = header(deliver_body("查询".encode("gbk"), 0, fmt=15, tlvs=tlv), 0x00000003, 3)
    seq, pdu = smgp.decode(wire)
    assert seq == 3 and pdu.report is None and pdu.text() == "查询"
    assert (pdu.msg_id, pdu.src_term_id, pdu.dest_term_id, pdu.recv_time) == (
        MSG_ID, "13300133000", "10659001", "20261128111500")
    assert pdu.tlvs == [(0x0003, b"LINK")]
    assert smgp.encode(pdu, 3) == wire


@pytest.mark.parametrize("stat", ["DELIVRD", "EXPIRED", "UNDELIV"])
def test_deliver_status_report(stat):
    orig = bytes.fromhex("07550011281115000099")
    report = (b"id:" + orig                    # id: then the 10 binary octets of the MsgID
              + b" sub:001 dlvrd:001"
              + b" Submit_date:2611281115 done_date:2611281116"
              + b" Stat:" + stat.encode() + b" err:000"
              + b" Text:" + pad("hello", 20))  # first 20 octets of the message
    assert len(report) == 122
    wire = header(deliver_body(report, 1), 0x00000003, 4)
    _, pdu = smgp.decode(wire)
    assert pdu.report == smgp.Report(orig, "001", "001", "2611281115", "2611281116", stat, "000", b"hello")
    assert pdu.report.pack() == report
    assert smgp.encode(pdu, 4) == wire


def test_report_parse_tolerates_smpp_style_keys():
    text = (b"id:" + b"\x00" * 10
            + b" sub:001 dlvrd:000 submit date:2611281115 done date:2611281120 stat:UNDELIV err:006")
    rep = smgp.Report.parse(text)
    assert (rep.stat, rep.err, rep.done_date, rep.text) == ("UNDELIV", "006", "2611281120", b"")


def test_report_parse_accepts_msg_id_as_hex_text():
    text = b"id:07550011281115000042 sub:001 dlvrd:001 Submit_date:2611281115 done_date:2611281116 Stat:DELIVRD err:000"
    rep = smgp.Report.parse(text)
    assert (rep.msg_id, rep.stat) == (bytes.fromhex("07550011281115000042"), "DELIVRD")


def test_report_errors():
    with pytest.raises(ProtocolError, match="SMGP Deliver report: field id missing"):
        smgp.decode(header(deliver_body(b"xx", 1), 0x00000003, 4))
    with pytest.raises(ProtocolError, match="unreadable after id at offset 13"):
        smgp.Report.parse(b"id:0123456789 garbage")


def test_deliver_resp_active_test_exit():
    assert smgp.encode(smgp.DeliverResp(MSG_ID, 0), 4) == header(MSG_ID + b"\0\0\0\0", 0x80000003, 4)
    assert smgp.encode(smgp.ActiveTest(), 9) == struct.pack(">III", 12, 0x00000004, 9)
    assert smgp.encode(smgp.ActiveTestResp(), 9) == struct.pack(">III", 12, 0x80000004, 9)
    assert smgp.encode(smgp.Exit(), 10) == struct.pack(">III", 12, 0x00000006, 10)
    assert smgp.encode(smgp.ExitResp(), 10) == struct.pack(">III", 12, 0x80000006, 10)
    for pdu in (smgp.DeliverResp(MSG_ID, 1), smgp.ActiveTest(), smgp.ActiveTestResp(), smgp.Exit(), smgp.ExitResp()):
        assert smgp.decode(smgp.encode(pdu, 1)) == (1, pdu)


def test_long_message_parts_carry_udh_and_tlvs():
    parts = smgp.long_submits(make_submit(b""), "字" * 100, ref=9)
    assert len(parts) == 2
    assert parts[1].msg_content == b"\x05\x00\x03\x09\x02\x02" + ("字" * 33).encode("utf-16-be")
    assert parts[1].tlvs == [(0x0002, b"\x01"), (0x0009, b"\x02"), (0x000A, b"\x02")]
    [single] = smgp.long_submits(make_submit(b""), "short", ref=9)
    assert single.tlvs == [] and single.msg_content == "short".encode("utf-16-be")


def stream() -> bytes:
    return (smgp.encode(smgp.ActiveTest(), 1) + smgp.encode(make_submit(b"hi"), 2)
            + smgp.encode(smgp.SubmitResp(MSG_ID, 0), 3))


def test_decoder_byte_by_byte_and_chunks():
    data = stream()
    for size in (1, 7, 40, len(data)):
        dec, got = smgp.Decoder(), []
        for i in range(0, len(data), size):
            got += dec.feed(data[i:i + size])
        assert got == [(1, smgp.ActiveTest()), (2, make_submit(b"hi")), (3, smgp.SubmitResp(MSG_ID, 0))]
        assert dec.pending == 0


def test_decoder_rejects_bad_length():
    with pytest.raises(ProtocolError, match="SMGP: length field 4 outside 12..8192 at stream offset 12"):
        smgp.Decoder().feed(smgp.encode(smgp.ActiveTest(), 1) + struct.pack(">III", 4, 4, 2))
    with pytest.raises(ProtocolError, match="length field 9000 outside"):
        smgp.Decoder().feed(struct.pack(">I", 9000))


def test_decode_errors():
    with pytest.raises(ProtocolError, match="SMGP: header needs 12 octets, got 3"):
        smgp.decode(b"abc")
    with pytest.raises(ProtocolError, match="SMGP: length field says 99 octets"):
        smgp.decode(struct.pack(">III", 99, 4, 1))
    with pytest.raises(ProtocolError, match="unknown command id 0x80000099"):
        smgp.decode(struct.pack(">III", 12, 0x80000099, 1))
    with pytest.raises(ProtocolError, match="SMGP Login_Resp: truncated at field AuthenticatorServer"):
        smgp.decode(header(b"\0\0\0\0" + b"S" * 3, 0x80000001, 1))
    with pytest.raises(ProtocolError, match="SMGP Deliver: truncated at field TLV 0x0003 Value"):
        smgp.decode(header(deliver_body(b"x", 0, tlvs=struct.pack(">HH", 3, 4) + b"LI"), 0x00000003, 1))


def test_encode_errors_name_field():
    with pytest.raises(ProtocolError, match="SMGP Login: field ClientID is 9 octets, max 8"):
        smgp.encode(smgp.Login("123456789", b"\0" * 16, 0), 1)
    with pytest.raises(ProtocolError, match="SMGP Submit: field MsgLength out of range"):
        smgp.encode(make_submit(b"x" * 256), 1)
    with pytest.raises(ProtocolError, match="SMGP Submit_Resp: field Status out of range"):
        smgp.encode(smgp.SubmitResp(MSG_ID, -1), 1)


def test_deliver_built_from_report_carries_it_as_content():
    rep = smgp.Report(MSG_ID, "001", "001", "2611281115", "2611281116", "DELIVRD", "000", b"")
    pdu = smgp.Deliver(MSG_ID, "13300133000", "10659001", b"", is_report=1, report=rep)
    assert smgp.decode(smgp.encode(pdu, 1))[1].report == rep
