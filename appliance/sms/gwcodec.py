"""What CMPP and SMGP frames have in common: the header, fixed-size fields, the stream cutter, UCS2 parts.

Both carriers' gateway protocols frame a PDU as ``Length(4) Command(4)
Sequence(4)`` (big-endian, the length counting the header) followed by a body
of fixed-size fields: integers big-endian, strings NUL-padded ASCII, some
contents led by a one-octet count. A PDU class lists its ``FIELDS`` and
inherits ``pack``/``unpack`` from ``Fixed``; ``cmpp`` and ``smgp`` keep only
their own PDUs, command ids and authenticators. Sans-I/O, bytes in and out.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from appliance.errors import ProtocolError

HEADER = struct.Struct(">III")
MAX_PDU_LENGTH = 8192  # a SUBMIT to 100 numbers is about 2.5 kB
COUNTED = "counted"  # field kind: octets led by their length in one octet

# Msg_Fmt (CMPP) and MsgFormat (SMGP) take the same values, those of the GSM data coding scheme
FMT_ASCII, FMT_BINARY, FMT_UCS2, FMT_GBK = 0, 4, 8, 15
UCS2_PART_CHARS = 67  # 140 octets minus the 6-octet UDH, in UCS2 characters
_CODECS = {FMT_ASCII: "ascii", FMT_UCS2: "utf-16-be", FMT_GBK: "gbk"}


def content_text(content: bytes, fmt: int) -> str:
    """Message content decoded per its format (latin-1 for binary or unknown formats); never raises."""
    return content.decode(_CODECS.get(fmt, "latin-1"), errors="replace")


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


class Fixed:
    """Base of PDUs whose ``FIELDS`` are (attribute, wire name, size, int | str | bytes | list | COUNTED)."""

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


def bodyless(cls_name: str, name: str, command_id: int) -> type[Fixed]:
    """A dataclass PDU made of the header alone (e.g. ACTIVE_TEST, TERMINATE)."""
    attrs = {"NAME": name, "COMMAND_ID": command_id, "__doc__": f"{name}: header only, no body."}
    return dataclass(type(cls_name, (Fixed,), attrs))


def encode(pdu: Fixed, sequence_id: int) -> bytes:
    """Return the whole PDU: header (with the total length and ``pdu.COMMAND_ID``) and body."""
    body = pdu.pack()
    return HEADER.pack(HEADER.size + len(body), pdu.COMMAND_ID, sequence_id & 0xFFFFFFFF) + body


def decode_body(cls: type, body: bytes) -> Fixed:
    """Unpack ``body`` as a ``cls`` PDU, refusing octets left over."""
    reader = FieldReader(cls.NAME, body)
    pdu = cls.unpack(reader)
    if reader.pos != len(body):
        raise ProtocolError(f"{cls.NAME}: {len(body) - reader.pos} unexpected octets at body offset {reader.pos}")
    return pdu


def decode_frame(proto: str, classes: dict[int, type], frame: bytes) -> tuple[int, Fixed]:
    """Check the header of one whole frame and unpack its body by command id; ``proto`` names it in errors."""
    if len(frame) < HEADER.size:
        raise ProtocolError(f"{proto}: header needs {HEADER.size} octets, got {len(frame)}")
    length, command, seq = HEADER.unpack_from(frame)
    if length != len(frame):
        raise ProtocolError(f"{proto}: length field says {length} octets, frame has {len(frame)}")
    if command not in classes:
        raise ProtocolError(f"{proto}: unknown command id 0x{command:08X} (sequence {seq})")
    return seq, decode_body(classes[command], frame[HEADER.size:])


class Decoder:
    """Cut a byte stream into PDUs: a bad length breaks it for good, a bad body drops only that PDU.

    ``parse`` decodes one whole frame into ``(sequence_id, pdu)``; ``proto`` names the stream in errors.
    """

    def __init__(self, parse: Callable[[bytes], tuple], proto: str, max_length: int = MAX_PDU_LENGTH) -> None:
        self.max_length, self.proto, self._decode = max_length, proto, parse
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


def split_ucs2(text: str, ref: int, pdu: str = "Submit") -> list[bytes]:
    """UCS2 parts of ``text``: one without UDH up to 70 characters, else 67 a part after ``05 00 03 ref total n``.

    ``pdu`` names the Submit in the error when ``text`` needs more than 255 parts.
    """
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
        raise ProtocolError(f"{pdu}: text needs {len(chunks)} parts, at most 255")
    return [bytes([5, 0, 3, ref & 0xFF, len(chunks), i]) + c for i, c in enumerate(chunks, 1)]
