"""CMPP 2.0 (China Mobile) PDU codec: sans-I/O, bytes in and bytes out.

A PDU is a header ``Total_Length(4) Command_Id(4) Sequence_Id(4)`` (big-endian)
and fixed-size fields; strings are NUL-padded ASCII. ``encode`` builds a PDU,
``decode`` parses one, ``Decoder`` cuts a stream. ``smgp`` reuses the field
machinery (``Fixed``, ``FieldReader``, ``decode_frame``, ``Decoder``).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace
from typing import Callable

from appliance.errors import ProtocolError

HEADER = struct.Struct(">III")
MAX_PDU_LENGTH = 8192  # a SUBMIT to 100 numbers is about 2.5 kB
VERSION = 0x20

CONNECT, CONNECT_RESP = 0x00000001, 0x80000001
TERMINATE, TERMINATE_RESP = 0x00000002, 0x80000002
SUBMIT, SUBMIT_RESP = 0x00000004, 0x80000004
DELIVER, DELIVER_RESP = 0x00000005, 0x80000005
ACTIVE_TEST, ACTIVE_TEST_RESP = 0x00000008, 0x80000008

FMT_ASCII, FMT_BINARY, FMT_UCS2, FMT_GBK = 0, 4, 8, 15
UCS2_PART_CHARS = 67  # 140 octets minus the 6-octet UDH, in UCS2 characters
_CODECS = {FMT_ASCII: "ascii", FMT_UCS2: "utf-16-be", FMT_GBK: "gbk"}
COUNTED = "counted"  # field kind: octets led by their length in one octet


class FieldReader:
    """Read fixed-size fields from the body of PDU ``pdu``, naming the field on a short read."""

    def __init__(self, pdu: str, body: bytes) -> None:
        self.pdu, self.body, self.pos = pdu, body, 0

    def take(self, size: int, name: str) -> bytes:
        end = self.pos + size
        if end > len(self.body):
            raise ProtocolError(f"{self.pdu}: truncated at field {name} (body offset {self.pos}, "
                                f"needs {size} octets, {len(self.body) - self.pos} left)")
        chunk, self.pos = self.body[self.pos:end], end
        return chunk

    def uint(self, size: int, name: str) -> int:
        return int.from_bytes(self.take(size, name), "big")

    def text(self, size: int, name: str) -> str:
        return self.take(size, name).rstrip(b"\0").decode("latin-1")  # latin-1: a stray byte never raises


def octets(value: str | bytes, size: int, pdu: str, name: str) -> bytes:
    """Pad ``value`` with NULs to ``size`` octets; refuse anything longer."""
    try:
        raw = value.encode("ascii") if isinstance(value, str) else bytes(value)
    except UnicodeEncodeError:
        raise ProtocolError(f"{pdu}: field {name} is not ASCII: {value!r}") from None
    if len(raw) > size:
        raise ProtocolError(f"{pdu}: field {name} is {len(raw)} octets, max {size}: {value!r}")
    return raw.ljust(size, b"\0")


def counted(content: bytes, pdu: str, name: str) -> bytes:
    """``content`` led by its length in one octet (Msg_Length, MsgLength)."""
    if len(content) > 0xFF:
        raise ProtocolError(f"{pdu}: field {name} out of range 0..255: {len(content)}")
    return bytes([len(content)]) + content


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


class Fixed:
    """Base of PDUs whose ``FIELDS`` are (attribute, wire name, size, int | str | bytes)."""

    NAME, COMMAND_ID, FIELDS = "", 0, ()

    def pack(self) -> bytes:
        return pack_fields(self, self.NAME, self.FIELDS)

    @classmethod
    def unpack(cls, r: FieldReader) -> Fixed:
        return cls(**unpack_fields(r, cls.FIELDS))


def pack_fields(obj: object, pdu: str, spec: tuple) -> bytes:
    """Pack the attributes of ``obj`` named in ``spec``, checking each fits its field; kinds ``list``
    (1..100 numbers of ``size`` octets) and ``COUNTED`` (content) lead with a count octet, named "COUNT/ITEM"."""
    out = []
    for attr, name, size, kind in spec:
        value = getattr(obj, attr)
        if kind is list:
            count, item = name.split("/")
            if not 1 <= len(value) <= 100:
                raise ProtocolError(f"{pdu}: field {count} must be 1..100: {len(value)}")
            out.append(bytes([len(value)]) + b"".join(octets(v, size, pdu, item) for v in value))
        elif kind == COUNTED:
            out.append(counted(value, pdu, name.split("/")[0]))
        elif kind is int:
            if not 0 <= value < 1 << (8 * size):
                raise ProtocolError(f"{pdu}: field {name} out of range for {size} octets: {value}")
            out.append(value.to_bytes(size, "big"))
        else:
            out.append(octets(value, size, pdu, name))
    return b"".join(out)


def unpack_fields(r: FieldReader, spec: tuple) -> dict:
    """Read the fields of ``spec`` into a dict of attribute values."""
    readers = {int: r.uint, str: r.text, bytes: r.take}
    out: dict = {}
    for attr, name, size, kind in spec:
        if kind is list:
            count, item = name.split("/")
            out[attr] = [r.text(size, item) for _ in range(r.uint(1, count))]
        elif kind == COUNTED:
            count, item = name.split("/")
            out[attr] = r.take(r.uint(1, count), item)
        else:
            out[attr] = readers[kind](size, name)
    return out


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
        return self.msg_content.decode(_CODECS.get(self.msg_fmt, "latin-1"), errors="replace")


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


def bodyless(cls_name: str, name: str, command_id: int) -> type[Fixed]:
    """A dataclass PDU made of the header alone (e.g. ACTIVE_TEST, TERMINATE)."""
    attrs = {"NAME": name, "COMMAND_ID": command_id, "__doc__": f"{name}: header only, no body."}
    return dataclass(type(cls_name, (Fixed,), attrs))


ActiveTest = bodyless("ActiveTest", "CMPP_ACTIVE_TEST", ACTIVE_TEST)
Terminate = bodyless("Terminate", "CMPP_TERMINATE", TERMINATE)
TerminateResp = bodyless("TerminateResp", "CMPP_TERMINATE_RESP", TERMINATE_RESP)
_PDUS = (Connect, ConnectResp, Submit, SubmitResp, Deliver, DeliverResp, ActiveTest, ActiveTestResp, Terminate,
         TerminateResp)
_CLASSES = {c.COMMAND_ID: c for c in _PDUS}


def encode(pdu: Fixed, sequence_id: int) -> bytes:
    """Return the whole PDU: header (with Total_Length) and body."""
    body = pdu.pack()
    return HEADER.pack(HEADER.size + len(body), pdu.COMMAND_ID, sequence_id & 0xFFFFFFFF) + body


def decode(frame: bytes) -> tuple[int, Fixed]:
    """Parse exactly one whole PDU; return ``(sequence_id, pdu)``."""
    return decode_frame("CMPP", _CLASSES, frame)


def decode_body(cls: type, body: bytes) -> Fixed:
    """Unpack ``body`` as a ``cls`` PDU, refusing octets left over."""
    reader = FieldReader(cls.NAME, body)
    pdu = cls.unpack(reader)
    if reader.pos != len(body):
        raise ProtocolError(f"{cls.NAME}: {len(body) - reader.pos} unexpected octets at body offset {reader.pos}")
    return pdu


def decode_frame(proto: str, classes: dict[int, type], frame: bytes) -> tuple[int, Fixed]:
    """Check the header of one whole frame and unpack its body by Command_Id."""
    if len(frame) < HEADER.size:
        raise ProtocolError(f"{proto}: header needs {HEADER.size} octets, got {len(frame)}")
    length, command, seq = HEADER.unpack_from(frame)
    if length != len(frame):
        raise ProtocolError(f"{proto}: length field says {length} octets, frame has {len(frame)}")
    if command not in classes:
        raise ProtocolError(f"{proto}: unknown command id 0x{command:08X} (sequence {seq})")
    return seq, decode_body(classes[command], frame[HEADER.size:])


class Decoder:
    """Cut a byte stream into PDUs: a bad length breaks it for good, a bad body drops only that PDU."""

    def __init__(self, max_length: int = MAX_PDU_LENGTH, parse: Callable[[bytes], tuple] | None = None,
                 proto: str = "CMPP") -> None:
        self.max_length, self.proto, self._decode = max_length, proto, parse or decode
        self._buf, self._offset = bytearray(), 0  # _offset: stream offset of _buf[0], for errors

    def feed(self, data: bytes) -> list[tuple]:
        """Buffer ``data``; return every PDU it completes."""
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            length = int.from_bytes(self._buf[:4], "big")
            if not HEADER.size <= length <= self.max_length:
                raise ProtocolError(f"{self.proto}: length field {length} outside "
                                    f"{HEADER.size}..{self.max_length} at stream offset {self._offset}")
            if len(self._buf) < length:
                break
            frame = bytes(self._buf[:length])
            del self._buf[:length]
            self._offset += length
            try:
                out.append(self._decode(frame))
            except ProtocolError:
                if not out:
                    raise
                self._buf[:0], self._offset = frame, self._offset - length  # raises on the next feed()
                break
        return out

    @property
    def pending(self) -> int:
        """Octets buffered that do not yet make a whole PDU."""
        return len(self._buf)


def split_ucs2(text: str, ref: int) -> list[bytes]:
    """UCS2 parts of ``text``: one without UDH up to 70 characters, else 67 a part after ``05 00 03 ref total n``."""
    raw = text.encode("utf-16-be")
    if len(raw) <= 140:
        return [raw]
    chunks, pos = [], 0
    while pos < len(raw):
        end = min(pos + UCS2_PART_CHARS * 2, len(raw))
        if end < len(raw) and 0xD8 <= raw[end - 2] <= 0xDB:
            end -= 2  # never split a surrogate pair across parts
        chunks.append(raw[pos:end])
        pos = end
    if len(chunks) > 255:
        raise ProtocolError(f"CMPP_SUBMIT: text needs {len(chunks)} parts, Pk_total max 255")
    return [bytes([5, 0, 3, ref & 0xFF, len(chunks), i]) + c for i, c in enumerate(chunks, 1)]


def long_submits(template: Submit, text: str, ref: int) -> list[Submit]:
    """One UCS2 Submit per part of ``text``, with TP_udhi, Pk_total and Pk_number set."""
    parts = split_ucs2(text, ref)
    return [replace(template, msg_content=p, msg_fmt=FMT_UCS2, tp_udhi=int(len(parts) > 1), pk_total=len(parts),
                    pk_number=i) for i, p in enumerate(parts, 1)]

