"""CMPP 2.0 (China Mobile) PDU codec: sans-I/O, bytes in and bytes out.

A PDU is a header ``Total_Length(4) Command_Id(4) Sequence_Id(4)`` (big-endian)
and fixed-size fields; strings are NUL-padded ASCII. ``encode`` builds a PDU,
``decode`` parses one, ``Decoder`` cuts a stream. The framing and the field
machinery, shared with SMGP, live in ``gwcodec``; this module holds CMPP's own
PDUs, command ids, Msg_Id and authenticator.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from appliance.errors import ProtocolError
from appliance.sms import gwcodec
from appliance.sms.gwcodec import COUNTED, Fixed, bodyless, content_text, decode_body

VERSION = 0x20
MAX_PDU_LENGTH = gwcodec.MAX_PDU_LENGTH
FMT_ASCII, FMT_BINARY, FMT_UCS2, FMT_GBK = gwcodec.FMT_ASCII, gwcodec.FMT_BINARY, gwcodec.FMT_UCS2, gwcodec.FMT_GBK

CONNECT, CONNECT_RESP = 0x00000001, 0x80000001
TERMINATE, TERMINATE_RESP = 0x00000002, 0x80000002
SUBMIT, SUBMIT_RESP = 0x00000004, 0x80000004
DELIVER, DELIVER_RESP = 0x00000005, 0x80000005
ACTIVE_TEST, ACTIVE_TEST_RESP = 0x00000008, 0x80000008


def authenticator_source(source_addr: str, secret: str | bytes, timestamp: int) -> bytes:
    """MD5(Source_Addr + 9 NULs + secret + Timestamp as 10 ASCII digits MMDDHHMMSS)."""
    key = secret.encode("ascii") if isinstance(secret, str) else secret
    data = source_addr.encode("ascii") + b"\0" * 9 + key + b"%010d" % timestamp
    return hashlib.md5(data).digest()


@dataclass(frozen=True)
class MsgId:
    """The 64-bit Msg_Id: month 4 bits, day 5, hour 5, minute 6, second 6, gateway 22, sequence 16."""
    month: int
    day: int
    hour: int
    minute: int
    second: int
    gateway_id: int
    sequence: int
    _BITS = (("month", 4), ("day", 5), ("hour", 5), ("minute", 6), ("second", 6), ("gateway_id", 22), ("sequence", 16))

    @classmethod
    def from_int(cls, value: int) -> MsgId:
        parts, shift = {}, 64
        for name, bits in cls._BITS:
            shift -= bits
            parts[name] = (value >> shift) & ((1 << bits) - 1)
        return cls(**parts)

    def to_int(self) -> int:
        value = 0
        for name, bits in self._BITS:
            part = getattr(self, name)
            if not 0 <= part < (1 << bits):
                raise ProtocolError(f"CMPP Msg_Id: part {name} does not fit {bits} bits: {part}")
            value = (value << bits) | part
        return value


@dataclass
class Connect(Fixed):
    """CMPP_CONNECT; build with ``Connect.create`` to compute the authenticator."""
    source_addr: str
    authenticator: bytes
    timestamp: int
    version: int = VERSION
    NAME, COMMAND_ID = "CMPP_CONNECT", CONNECT
    FIELDS = (("source_addr", "Source_Addr", 6, str), ("authenticator", "AuthenticatorSource", 16, bytes),
              ("version", "Version", 1, int), ("timestamp", "Timestamp", 4, int))

    @classmethod
    def create(cls, source_addr: str, secret: str | bytes, timestamp: int) -> Connect:
        """``timestamp`` is MMDDHHMMSS as an int (e.g. 1128111500), given by the caller."""
        return cls(source_addr, authenticator_source(source_addr, secret, timestamp), timestamp)


@dataclass
class ConnectResp(Fixed):
    """CMPP_CONNECT_RESP; Status 0 is success (CMPP 2.0 carries it in one octet)."""
    status: int
    authenticator: bytes = b"\0" * 16
    version: int = VERSION
    NAME, COMMAND_ID = "CMPP_CONNECT_RESP", CONNECT_RESP
    FIELDS = (("status", "Status", 1, int), ("authenticator", "AuthenticatorISMG", 16, bytes),
              ("version", "Version", 1, int))


@dataclass
class Submit(Fixed):
    """CMPP_SUBMIT; ``msg_content`` is already encoded per ``msg_fmt`` (UDH included)."""
    dest_terminal_ids: list[str]
    msg_content: bytes
    src_id: str
    service_id: str = ""
    msg_src: str = ""
    msg_fmt: int = FMT_UCS2
    registered_delivery: int = 1
    msg_id: int = 0
    pk_total: int = 1
    pk_number: int = 1
    msg_level: int = 0
    fee_user_type: int = 0
    fee_terminal_id: str = ""
    tp_pid: int = 0
    tp_udhi: int = 0
    fee_type: str = "01"
    fee_code: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    reserve: bytes = b"\0" * 8
    NAME, COMMAND_ID = "CMPP_SUBMIT", SUBMIT
    FIELDS = (("msg_id", "Msg_Id", 8, int), ("pk_total", "Pk_total", 1, int), ("pk_number", "Pk_number", 1, int),
              ("registered_delivery", "Registered_Delivery", 1, int), ("msg_level", "Msg_level", 1, int),
              ("service_id", "Service_Id", 10, str), ("fee_user_type", "Fee_UserType", 1, int),
              ("fee_terminal_id", "Fee_terminal_Id", 21, str), ("tp_pid", "TP_pId", 1, int),
              ("tp_udhi", "TP_udhi", 1, int), ("msg_fmt", "Msg_Fmt", 1, int), ("msg_src", "Msg_src", 6, str),
              ("fee_type", "FeeType", 2, str), ("fee_code", "FeeCode", 6, str),
              ("valid_time", "ValId_Time", 17, str), ("at_time", "At_Time", 17, str), ("src_id", "Src_Id", 21, str),
              ("dest_terminal_ids", "DestUsr_tl/Dest_terminal_Id", 21, list),
              ("msg_content", "Msg_Length/Msg_Content", 0, COUNTED), ("reserve", "Reserve", 8, bytes))


@dataclass
class SubmitResp(Fixed):
    """CMPP_SUBMIT_RESP; Result 0 is success. Also the shape of DELIVER_RESP."""
    msg_id: int
    result: int = 0
    NAME, COMMAND_ID = "CMPP_SUBMIT_RESP", SUBMIT_RESP
    FIELDS = (("msg_id", "Msg_Id", 8, int), ("result", "Result", 1, int))


@dataclass
class StatusReport(Fixed):
    """The 60-octet status report carried in a DELIVER with Registered_Delivery = 1."""
    msg_id: int
    stat: str
    submit_time: str
    done_time: str
    dest_terminal_id: str
    smsc_sequence: int
    NAME = "CMPP_DELIVER report"
    FIELDS = (("msg_id", "Msg_Id", 8, int), ("stat", "Stat", 7, str), ("submit_time", "Submit_time", 10, str),
              ("done_time", "Done_time", 10, str), ("dest_terminal_id", "Dest_terminal_Id", 21, str),
              ("smsc_sequence", "SMSC_sequence", 4, int))


@dataclass
class Deliver(Fixed):
    """CMPP_DELIVER: a mobile-originated message, or a status report when registered_delivery = 1."""
    msg_id: int
    dest_id: str
    src_terminal_id: str
    msg_content: bytes
    msg_fmt: int = FMT_ASCII
    service_id: str = ""
    tp_pid: int = 0
    tp_udhi: int = 0
    registered_delivery: int = 0
    reserve: bytes = b"\0" * 8
    report: StatusReport | None = field(default=None, compare=False)
    NAME, COMMAND_ID = "CMPP_DELIVER", DELIVER
    FIELDS = (("msg_id", "Msg_Id", 8, int), ("dest_id", "Dest_Id", 21, str), ("service_id", "Service_Id", 10, str),
              ("tp_pid", "TP_pid", 1, int), ("tp_udhi", "TP_udhi", 1, int), ("msg_fmt", "Msg_Fmt", 1, int),
              ("src_terminal_id", "Src_terminal_Id", 21, str),
              ("registered_delivery", "Registered_Delivery", 1, int),
              ("msg_content", "Msg_Length/Msg_Content", 0, COUNTED), ("reserve", "Reserve", 8, bytes))

    def __post_init__(self) -> None:
        if self.report is not None and not self.msg_content:
            self.msg_content = self.report.pack()  # built from a report: it is the content
        elif self.registered_delivery == 1 and self.report is None:
            self.report = decode_body(StatusReport, self.msg_content)  # exactly 60 octets

    def text(self) -> str:
        """Msg_Content decoded per Msg_Fmt (latin-1 for binary or unknown formats)."""
        return content_text(self.msg_content, self.msg_fmt)


@dataclass
class DeliverResp(SubmitResp):
    """CMPP_DELIVER_RESP: Msg_Id of the DELIVER and Result (0 is success)."""
    NAME, COMMAND_ID = "CMPP_DELIVER_RESP", DELIVER_RESP


@dataclass
class ActiveTestResp(Fixed):
    """CMPP_ACTIVE_TEST_RESP carries one Reserved octet."""
    reserved: int = 0
    NAME, COMMAND_ID = "CMPP_ACTIVE_TEST_RESP", ACTIVE_TEST_RESP
    FIELDS = (("reserved", "Reserved", 1, int),)


ActiveTest = bodyless("ActiveTest", "CMPP_ACTIVE_TEST", ACTIVE_TEST)
Terminate = bodyless("Terminate", "CMPP_TERMINATE", TERMINATE)
TerminateResp = bodyless("TerminateResp", "CMPP_TERMINATE_RESP", TERMINATE_RESP)
_PDUS = (Connect, ConnectResp, Submit, SubmitResp, Deliver, DeliverResp, ActiveTest, ActiveTestResp, Terminate,
         TerminateResp)
_CLASSES = {c.COMMAND_ID: c for c in _PDUS}


def encode(pdu: Fixed, sequence_id: int) -> bytes:
    """Return the whole PDU: header (with Total_Length) and body."""
    return gwcodec.encode(pdu, sequence_id)


def decode(frame: bytes) -> tuple[int, Fixed]:
    """Parse exactly one whole PDU; return ``(sequence_id, pdu)``."""
    return gwcodec.decode_frame("CMPP", _CLASSES, frame)


class Decoder(gwcodec.Decoder):
    """Cut a CMPP byte stream into ``(sequence_id, pdu)``; see ``gwcodec.Decoder``."""

    def __init__(self, max_length: int = MAX_PDU_LENGTH) -> None:
        super().__init__(decode, "CMPP", max_length)


def split_ucs2(text: str, ref: int) -> list[bytes]:
    """UCS2 parts of ``text`` for Submits; see ``gwcodec.split_ucs2``."""
    return gwcodec.split_ucs2(text, ref, Submit.NAME)


def long_submits(template: Submit, text: str, ref: int) -> list[Submit]:
    """One UCS2 Submit per part of ``text``, with TP_udhi, Pk_total and Pk_number set."""
    parts = split_ucs2(text, ref)
    return [replace(template, msg_content=p, msg_fmt=FMT_UCS2, tp_udhi=int(len(parts) > 1), pk_total=len(parts),
                    pk_number=i) for i, p in enumerate(parts, 1)]
