"""SMGP 3.0 (China Telecom) PDU codec: sans-I/O, bytes in and bytes out.

Same framing as CMPP: a header ``PacketLength(4) RequestID(4) SequenceID(4)``
(big-endian) and a body of fixed-size fields, so the field machinery and the
stream ``Decoder`` come from ``gwcodec``. Submit and Deliver end with optional
TLVs (Tag 2, Length 2, Value), kept in order as ``(tag, value)`` pairs.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace

from appliance.errors import ProtocolError
from appliance.sms import gwcodec
from appliance.sms.gwcodec import COUNTED, FieldReader, Fixed, bodyless, content_text, octets, unpack_fields

VERSION = 0x30
MAX_PDU_LENGTH = gwcodec.MAX_PDU_LENGTH

LOGIN, LOGIN_RESP = 0x00000001, 0x80000001
SUBMIT, SUBMIT_RESP = 0x00000002, 0x80000002
DELIVER, DELIVER_RESP = 0x00000003, 0x80000003
ACTIVE_TEST, ACTIVE_TEST_RESP = 0x00000004, 0x80000004
EXIT, EXIT_RESP = 0x00000006, 0x80000006

LOGIN_SEND, LOGIN_RECEIVE, LOGIN_TRANSMIT = 0, 1, 2
FMT_ASCII, FMT_BINARY, FMT_UCS2, FMT_GBK = gwcodec.FMT_ASCII, gwcodec.FMT_BINARY, gwcodec.FMT_UCS2, gwcodec.FMT_GBK

TAG_TP_PID, TAG_TP_UDHI, TAG_LINK_ID = 0x0001, 0x0002, 0x0003
TAG_PK_TOTAL, TAG_PK_NUMBER = 0x0009, 0x000A


def authenticator_client(client_id: str, secret: str | bytes, timestamp: int) -> bytes:
    """MD5(ClientID + 7 NULs + secret + TimeStamp as 10 ASCII digits MMDDHHMMSS)."""
    key = secret.encode("ascii") if isinstance(secret, str) else secret
    return hashlib.md5(client_id.encode("ascii") + b"\0" * 7 + key + b"%010d" % timestamp).digest()


def msg_id_parts(msg_id: bytes) -> tuple[str, str, str]:
    """Split a 10-octet BCD MsgID into (SMGW code 6 digits, time MMDDHHMM, sequence 6 digits)."""
    if len(msg_id) != 10:
        raise ProtocolError(f"SMGP MsgID: needs 10 octets, got {len(msg_id)}")
    digits = msg_id.hex()
    return digits[:6], digits[6:14], digits[14:]


def pack_tlvs(pdu: str, tlvs: list[tuple[int, bytes]]) -> bytes:
    """Tag(2) Length(2) Value for each ``(tag, value)``, in order."""
    out = []
    for tag, value in tlvs:
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise ProtocolError(f"{pdu}: TLV tag 0x{tag:04X} or its length {len(value)} does not fit 2 octets")
        out.append(tag.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value)
    return b"".join(out)


def unpack_tlvs(r: FieldReader) -> list[tuple[int, bytes]]:
    """Read TLVs up to the end of the body; a cut-short TLV names its tag."""
    tlvs = []
    while r.pos < len(r.body):
        tag = r.uint(2, "TLV Tag")
        tlvs.append((tag, r.take(r.uint(2, f"TLV 0x{tag:04X} Length"), f"TLV 0x{tag:04X} Value")))
    return tlvs


def tlv_int(tlvs: list[tuple[int, bytes]], tag: int, default: int = 0) -> int:
    """The first TLV ``tag`` as a big-endian integer, or ``default``."""
    return next((int.from_bytes(v, "big") for t, v in tlvs if t == tag), default)


@dataclass
class Login(Fixed):
    """SMGP Login; build with ``Login.create`` to compute the authenticator."""
    client_id: str
    authenticator: bytes
    timestamp: int
    login_mode: int = LOGIN_TRANSMIT
    version: int = VERSION
    NAME, COMMAND_ID = "SMGP Login", LOGIN
    FIELDS = (("client_id", "ClientID", 8, str), ("authenticator", "AuthenticatorClient", 16, bytes),
              ("login_mode", "LoginMode", 1, int), ("timestamp", "TimeStamp", 4, int),
              ("version", "ClientVersion", 1, int))

    @classmethod
    def create(cls, client_id: str, secret: str | bytes, timestamp: int, login_mode: int = LOGIN_TRANSMIT) -> Login:
        """``timestamp`` is MMDDHHMMSS as an int, given by the caller."""
        return cls(client_id, authenticator_client(client_id, secret, timestamp), timestamp, login_mode)


@dataclass
class LoginResp(Fixed):
    """SMGP Login_Resp; Status 0 is success."""
    status: int
    authenticator: bytes = b"\0" * 16
    version: int = VERSION
    NAME, COMMAND_ID = "SMGP Login_Resp", LOGIN_RESP
    FIELDS = (("status", "Status", 4, int), ("authenticator", "AuthenticatorServer", 16, bytes),
              ("version", "ServerVersion", 1, int))


@dataclass
class Submit(Fixed):
    """SMGP Submit; ``msg_content`` is already encoded per ``msg_format`` (UDH included)."""
    dest_term_ids: list[str]
    msg_content: bytes
    src_term_id: str
    service_id: str = ""
    msg_format: int = FMT_UCS2
    need_report: int = 1
    msg_type: int = 6  # 6 = MT to a mobile
    priority: int = 0
    fee_type: str = "00"
    fee_code: str = "000000"
    fixed_fee: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    charge_term_id: str = ""
    reserve: bytes = b"\0" * 8
    tlvs: list[tuple[int, bytes]] = field(default_factory=list)
    NAME, COMMAND_ID = "SMGP Submit", SUBMIT
    FIELDS = (("msg_type", "MsgType", 1, int), ("need_report", "NeedReport", 1, int),
              ("priority", "Priority", 1, int), ("service_id", "ServiceID", 10, str),
              ("fee_type", "FeeType", 2, str), ("fee_code", "FeeCode", 6, str), ("fixed_fee", "FixedFee", 6, str),
              ("msg_format", "MsgFormat", 1, int), ("valid_time", "ValidTime", 17, str),
              ("at_time", "AtTime", 17, str), ("src_term_id", "SrcTermID", 21, str),
              ("charge_term_id", "ChargeTermID", 21, str), ("dest_term_ids", "DestTermIDCount/DestTermID", 21, list),
              ("msg_content", "MsgLength/MsgContent", 0, COUNTED), ("reserve", "Reserve", 8, bytes))

    def pack(self) -> bytes:
        return super().pack() + pack_tlvs(self.NAME, self.tlvs)

    @classmethod
    def unpack(cls, r: FieldReader) -> Submit:
        return cls(**unpack_fields(r, cls.FIELDS), tlvs=unpack_tlvs(r))


@dataclass
class SubmitResp(Fixed):
    """SMGP Submit_Resp; Status 0 is success. Also the shape of Deliver_Resp."""
    msg_id: bytes
    status: int = 0
    NAME, COMMAND_ID = "SMGP Submit_Resp", SUBMIT_RESP
    FIELDS = (("msg_id", "MsgID", 10, bytes), ("status", "Status", 4, int))


_REPORT_RE = re.compile(
    rb"\s*sub:(?P<sub>\S*)\s+dlvrd:(?P<dlvrd>\S*)\s+submit[ _]date:(?P<submit>\S*)\s+"
    rb"done[ _]date:(?P<done>\S*)\s+stat:(?P<stat>\S*)\s+err:(?P<err>\S*)\s*(?:text:(?P<text>.*))?",
    re.IGNORECASE | re.DOTALL)
_HEX_ID = re.compile(rb"[0-9A-Fa-f]{20}\s+sub:", re.IGNORECASE)


@dataclass
class Report:
    """The status report text a Deliver with IsReport = 1 carries.

    ``id:`` is followed by the 10 binary octets of the MsgID, so it is cut by
    offset; the rest is matched loosely because gateways vary in key case and
    in ``Submit_date`` versus ``submit date``.
    """

    msg_id: bytes
    sub: str
    dlvrd: str
    submit_date: str
    done_date: str
    stat: str
    err: str
    text: bytes = b""

    def pack(self) -> bytes:
        return (b"id:" + octets(self.msg_id, 10, "SMGP Deliver report", "id")
                + (f" sub:{self.sub} dlvrd:{self.dlvrd} Submit_date:{self.submit_date} "
                   f"done_date:{self.done_date} Stat:{self.stat} err:{self.err} Text:").encode("ascii")
                + self.text[:20].ljust(20, b"\0"))  # Text: the first 20 octets of the message

    @classmethod
    def parse(cls, content: bytes) -> Report:
        """Decode the MsgContent of a report Deliver; ``text`` keeps raw octets, NULs stripped."""
        if content[:3].lower() != b"id:" or len(content) < 13:
            raise ProtocolError(f"SMGP Deliver report: field id missing at offset 0: {content[:13]!r}")
        end, msg_id = 13, content[3:13]
        if _HEX_ID.match(content, 3):  # some gateways write the MsgID as 20 hex digits instead
            end, msg_id = 23, bytes.fromhex(content[3:23].decode("ascii"))
        m = _REPORT_RE.match(content, end)
        if m is None:
            raise ProtocolError(f"SMGP Deliver report: unreadable after id at offset {end}: {content[end:60]!r}")
        g = {k: (v or b"").decode("latin-1") for k, v in m.groupdict().items() if k != "text"}
        return cls(msg_id, g["sub"], g["dlvrd"], g["submit"], g["done"], g["stat"], g["err"],
                   (m.group("text") or b"").rstrip(b"\0"))


@dataclass
class Deliver(Fixed):
    """SMGP Deliver: a mobile-originated message, or a status report when ``is_report`` = 1."""
    msg_id: bytes
    src_term_id: str
    dest_term_id: str
    msg_content: bytes
    recv_time: str = ""
    msg_format: int = FMT_ASCII
    is_report: int = 0
    reserve: bytes = b"\0" * 8
    tlvs: list[tuple[int, bytes]] = field(default_factory=list)
    report: Report | None = field(default=None, compare=False)
    NAME, COMMAND_ID = "SMGP Deliver", DELIVER
    FIELDS = (("msg_id", "MsgID", 10, bytes), ("is_report", "IsReport", 1, int),
              ("msg_format", "MsgFormat", 1, int), ("recv_time", "RecvTime", 14, str),
              ("src_term_id", "SrcTermID", 21, str), ("dest_term_id", "DestTermID", 21, str),
              ("msg_content", "MsgLength/MsgContent", 0, COUNTED), ("reserve", "Reserve", 8, bytes))

    def __post_init__(self) -> None:
        if self.report is not None and not self.msg_content:
            self.msg_content = self.report.pack()  # built from a report: it is the content
        elif self.is_report == 1 and self.report is None:
            self.report = Report.parse(self.msg_content)

    def text(self) -> str:
        """MsgContent decoded per MsgFormat (latin-1 for binary or unknown formats)."""
        return content_text(self.msg_content, self.msg_format)

    def pack(self) -> bytes:
        return super().pack() + pack_tlvs(self.NAME, self.tlvs)

    @classmethod
    def unpack(cls, r: FieldReader) -> Deliver:
        return cls(**unpack_fields(r, cls.FIELDS), tlvs=unpack_tlvs(r))


@dataclass
class DeliverResp(SubmitResp):
    """SMGP Deliver_Resp: MsgID of the Deliver and Status (0 is success)."""
    NAME, COMMAND_ID = "SMGP Deliver_Resp", DELIVER_RESP


ActiveTest = bodyless("ActiveTest", "SMGP Active_Test", ACTIVE_TEST)
ActiveTestResp = bodyless("ActiveTestResp", "SMGP Active_Test_Resp", ACTIVE_TEST_RESP)
Exit = bodyless("Exit", "SMGP Exit", EXIT)
ExitResp = bodyless("ExitResp", "SMGP Exit_Resp", EXIT_RESP)
_PDUS = (Login, LoginResp, Submit, SubmitResp, Deliver, DeliverResp, ActiveTest, ActiveTestResp, Exit, ExitResp)
_CLASSES = {c.COMMAND_ID: c for c in _PDUS}


def encode(pdu: Fixed, sequence_id: int) -> bytes:
    """Return the whole PDU: header (with PacketLength) and body."""
    return gwcodec.encode(pdu, sequence_id)


def decode(frame: bytes) -> tuple[int, Fixed]:
    """Parse exactly one whole PDU; return ``(sequence_id, pdu)``."""
    return gwcodec.decode_frame("SMGP", _CLASSES, frame)


class Decoder(gwcodec.Decoder):
    """Cut an SMGP byte stream into ``(sequence_id, pdu)``; see ``gwcodec.Decoder``."""

    def __init__(self, max_length: int = MAX_PDU_LENGTH) -> None:
        super().__init__(decode, "SMGP", max_length)


def long_submits(template: Submit, text: str, ref: int) -> list[Submit]:
    """One UCS2 Submit per 67-character part of ``text``, UDH in MsgContent, TP_udhi/PkTotal/PkNumber TLVs."""
    parts = gwcodec.split_ucs2(text, ref, Submit.NAME)
    if len(parts) == 1:
        return [replace(template, msg_content=parts[0], msg_format=FMT_UCS2)]
    return [replace(template, msg_content=p, msg_format=FMT_UCS2,
                    tlvs=[*template.tlvs, (TAG_TP_UDHI, b"\x01"), (TAG_PK_TOTAL, bytes([len(parts)])),
                          (TAG_PK_NUMBER, bytes([i]))])
            for i, p in enumerate(parts, 1)]
