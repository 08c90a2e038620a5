"""Caller-ID messages: SDMF and MDMF bytes with their checksum, and DTMF caller-ID key strings."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import DspError


SDMF, MDMF = 0x04, 0x80
P_DATETIME, P_NUMBER, P_NUMBER_ABSENT, P_NAME, P_NAME_ABSENT = 0x01, 0x02, 0x04, 0x07, 0x08
ABSENT_REASONS = {"O": "unavailable", "P": "private"}
FORMATS = ("mdmf", "sdmf", "dtmf")
# ETSI EN 300 659-1 annex B special information after 'B' (spandsp's adsi.h says it both ways; this is
# ETSI's: 00 not available, 10 restricted); the '#'-terminated variant uses 'D' + one digit
_DTMF_B_CODES = {"00": "O", "10": "P"}
_DTMF_D_CODES = {"1": "P", "2": "O", "3": "O"}  # private, international (no number), not available


@dataclass(frozen=True)
class CallerId:
    """One caller-ID message.

    number : str, the calling number ('' when absent); name : str ('' when absent)
    datetime : (month, day, hour, minute) or None
    number_absent_reason, name_absent_reason : 'O' (unavailable), 'P' (private), other codes kept as sent, or None
    format : 'mdmf', 'sdmf' or 'dtmf'
    """

    number: str = ""
    name: str = ""
    datetime: tuple[int, int, int, int] | None = None
    number_absent_reason: str | None = None
    name_absent_reason: str | None = None
    format: str = "mdmf"

    def fields(self) -> list[tuple[str, str]]:
        """The fields present, as (name, value) text for display, in a fixed order."""
        out = [("format", self.format)]
        if self.number:
            out.append(("number", self.number))
        if self.number_absent_reason:
            out.append(("number_absent", ABSENT_REASONS.get(self.number_absent_reason, self.number_absent_reason)))
        if self.name:
            out.append(("name", self.name))
        if self.name_absent_reason:
            out.append(("name_absent", ABSENT_REASONS.get(self.name_absent_reason, self.name_absent_reason)))
        if self.datetime:
            out.append(("datetime", "{:02d}-{:02d} {:02d}:{:02d}".format(*self.datetime)))
        return out


def checksum(data: bytes) -> int:
    """The byte that makes the sum of ``data`` and itself 0 modulo 256 (two's complement of the sum)."""
    return -sum(data) & 0xFF


def _datetime_digits(dt) -> bytes:
    if dt is None or len(dt) != 4:
        raise DspError(f"datetime must be (month, day, hour, minute), got {dt!r}")
    month, day, hour, minute = (int(v) for v in dt)
    if not (1 <= month <= 12 and 1 <= day <= 31 and 0 <= hour <= 23 and 0 <= minute <= 59):
        raise DspError(f"datetime {dt!r} is out of range (month 1-12, day 1-31, hour 0-23, minute 0-59)")
    return b"%02d%02d%02d%02d" % (month, day, hour, minute)


def _number_bytes(number: str) -> bytes:
    if not (number.isascii() and number.isdigit() and 1 <= len(number) <= 32):
        raise DspError(f"number must be 1 to 32 digits 0-9, got {number!r}")
    return number.encode("ascii")


def _reason(value: str | None, what: str) -> bytes:
    if value not in ABSENT_REASONS:
        raise DspError(f"{what} must be 'O' (unavailable) or 'P' (private), got {value!r}")
    return value.encode("ascii")


def encode_message(cid: CallerId, fmt: str | None = None) -> bytes:
    """The whole SDMF or MDMF message of ``cid``: type, length, parameters, checksum.

    ``fmt`` ('sdmf' or 'mdmf') overrides ``cid.format``. A number, or a reason for its
    absence, is required; SDMF also needs the date-time and carries no name.
    """
    fmt = fmt or cid.format
    if cid.number and cid.number_absent_reason:
        raise DspError(f"give a number or a reason for its absence, not both: {cid.number!r}, "
                       f"{cid.number_absent_reason!r}")
    number = _number_bytes(cid.number) if cid.number else _reason(cid.number_absent_reason, "number_absent_reason")
    if fmt == "sdmf":
        if cid.name or cid.name_absent_reason:
            raise DspError("SDMF carries no name; use MDMF for a name or a reason for its absence")
        body = _datetime_digits(cid.datetime) + number
        kind = SDMF
    elif fmt == "mdmf":
        params = []
        if cid.datetime is not None:
            params.append((P_DATETIME, _datetime_digits(cid.datetime)))
        params.append((P_NUMBER, number) if cid.number else (P_NUMBER_ABSENT, number))
        if cid.name:
            try:
                name = cid.name.encode("gbk")
            except UnicodeEncodeError as exc:
                raise DspError(f"name {cid.name!r} has {cid.name[exc.start]!r}, which GBK cannot encode") from None
            params.append((P_NAME, name))
        elif cid.name_absent_reason:
            params.append((P_NAME_ABSENT, _reason(cid.name_absent_reason, "name_absent_reason")))
        size = sum(2 + len(v) for _, v in params)
        if size > 255:
            raise DspError(f"MDMF parameters take {size} bytes; at most 255 fit (shorten the name)")
        body = b"".join(bytes((kind_, len(v))) + v for kind_, v in params)
        kind = MDMF
    else:
        raise DspError(f"FSK message format must be 'sdmf' or 'mdmf', got {fmt!r}")
    msg = bytes((kind, len(body))) + body
    return msg + bytes((checksum(msg),))


def _parse_datetime(value: bytes) -> tuple[int, int, int, int] | None:
    # a malformed date-time loses the date, never the number
    if len(value) != 8 or not value.isdigit():
        return None
    return tuple(int(value[i:i + 2]) for i in range(0, 8, 2))  # type: ignore[return-value]


def _text(value: bytes) -> str:
    return value.decode("gbk", errors="replace")


def parse_message(msg: bytes) -> CallerId:
    """Decode a whole SDMF or MDMF message (type, length, parameters, checksum).

    Raises DspError saying why: truncated, bad checksum, malformed parameter, or not caller ID.
    Unknown MDMF parameters are skipped (GR-30); trailing bytes after the checksum are ignored.
    """
    msg = bytes(msg)
    if len(msg) < 3:
        raise DspError(f"truncated message: {len(msg)} bytes, need at least type, length and checksum")
    kind, length = msg[0], msg[1]
    if len(msg) < length + 3:
        raise DspError(f"truncated message: type 0x{kind:02x} declares {length} bytes of parameters, "
                       f"got {len(msg) - 2} of the {length + 1} with the checksum")
    msg = msg[:length + 3]
    if sum(msg) & 0xFF:
        raise DspError(f"bad checksum: message type 0x{kind:02x} of {length} bytes ends in 0x{msg[-1]:02x}, "
                       f"its bytes need 0x{checksum(msg[:-1]):02x}")
    body = msg[2:-1]
    if kind == SDMF:
        if length < 9:
            raise DspError(f"malformed SDMF: {length} bytes, need 8 of date-time and a number")
        rest = body[8:]
        absent = rest.decode("ascii", "replace") if rest in (b"O", b"P") else None
        return CallerId(number="" if absent else _text(rest), datetime=_parse_datetime(body[:8]),
                        number_absent_reason=absent, format="sdmf")
    if kind != MDMF:
        raise DspError(f"message type 0x{kind:02x} is not caller ID (0x04 SDMF, 0x80 MDMF)")
    fields: dict[str, object] = {}
    i = 0
    while i < len(body):
        if i + 2 > len(body) or i + 2 + body[i + 1] > len(body):
            raise DspError(f"malformed MDMF: parameter 0x{body[i]:02x} at byte {i} runs past the "
                           f"{len(body)} bytes of parameters")
        ptype, value = body[i], body[i + 2:i + 2 + body[i + 1]]
        i += 2 + len(value)
        if ptype == P_DATETIME:
            fields["datetime"] = _parse_datetime(value)
        elif ptype == P_NUMBER:
            fields["number"] = _text(value)
        elif ptype == P_NUMBER_ABSENT:
            fields["number_absent_reason"] = _text(value)
        elif ptype == P_NAME:
            fields["name"] = _text(value)
        elif ptype == P_NAME_ABSENT:
            fields["name_absent_reason"] = _text(value)
    return CallerId(format="mdmf", **fields)  # type: ignore[arg-type]


def dtmf_keys(cid: CallerId, start: str = "A", end: str = "C") -> str:
    """DTMF caller-ID keys: ``start`` + number + ``end``, or a reason for absence.

    With ``end`` 'C' absence is 'B00C' (unavailable) or 'B10C' (private); with '#'
    it is 'D3#' (unavailable) or 'D1#' (private).
    """
    if start not in ("A", "D") or end not in ("C", "#"):
        raise DspError(f"start must be 'A' or 'D' and end 'C' or '#', got {start!r}, {end!r}")
    if cid.number:
        return start + _number_bytes(cid.number).decode() + end
    reason = _reason(cid.number_absent_reason, "number_absent_reason").decode()
    if end == "C":
        return "B" + {v: k for k, v in _DTMF_B_CODES.items()}[reason] + "C"
    return "D" + {"P": "1", "O": "3"}[reason] + "#"


def parse_dtmf_keys(keys: str) -> CallerId:
    """Decode DTMF caller-ID keys ending in 'C' or '#'.

    Accepted: A<number>C, D<number>C, A<number>#, <number>#, <number>C,
    A<number>D<redirected>B<info>C (the caller's number kept), B00C / B10C,
    D1# / D2# / D3#.
    """
    if not keys or keys[-1] not in "C#":
        raise DspError(f"DTMF caller ID {keys!r} has no end key (C or #)")
    body, end = keys[:-1], keys[-1]
    fields: dict[str, str] = {}
    key, i = "A", 0  # digits before any letter are the number
    if body and not body[0].isdigit():
        key, i = body[0], 1
    while i <= len(body):
        j = i
        while j < len(body) and body[j].isdigit():
            j += 1
        digits = body[i:j]
        if key not in fields:
            fields[key] = digits
        if j == len(body):
            break
        key, i = body[j], j + 1
    if fields.get("A"):
        return CallerId(number=fields["A"], format="dtmf")
    if fields.get("B") in _DTMF_B_CODES:
        return CallerId(number_absent_reason=_DTMF_B_CODES[fields["B"]], format="dtmf")
    if end == "#" and fields.get("D") in _DTMF_D_CODES:
        return CallerId(number_absent_reason=_DTMF_D_CODES[fields["D"]], format="dtmf")
    if fields.get("D"):
        return CallerId(number=fields["D"], format="dtmf")
    raise DspError(f"DTMF caller ID {keys!r} carries no number and no known absence code")
