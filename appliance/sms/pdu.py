"""SMS TPDUs in PDU mode (3GPP TS 23.040): SMS-SUBMIT out, SMS-DELIVER and SMS-STATUS-REPORT
in, long messages split and joined by the concatenation UDH.  Sans-I/O; callers pass ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from appliance.errors import ProtocolError
from appliance.sms import gsm7

DCS_GSM7, DCS_8BIT, DCS_UCS2 = 0x00, 0x04, 0x08  # TP-DCS, general data coding group
MAX_PARTS = 255
_GSM7_SINGLE, _GSM7_PART = 160, 153  # a 6-octet UDH costs 7 septets
_UCS2_SINGLE, _UCS2_PART = 70, 67  # ... or 3 UTF-16 code units
_TON_INTERNATIONAL, _TON_ALPHANUMERIC = 1, 5
_SEMI = "0123456789*#abc"  # semi-octet values 0..14; 15 is the fill


def split_text(text: str) -> tuple[int, list[str]]:
    """Choose the alphabet and split the text into the parts of one message.

    Parameters
    ----------
    text : str
        The whole message text.

    Returns
    -------
    tuple[int, list[str]]
        TP-DCS (``DCS_GSM7`` if every character encodes, else ``DCS_UCS2``) and the
        part texts: one of up to 160 septets / 70 UTF-16 units, else parts of 153
        septets / 67 units, never splitting an escape or a surrogate pair.
        ProtocolError when more than 255 parts are needed.
    """
    if gsm7.can_encode(text):
        dcs, single, size = DCS_GSM7, _GSM7_SINGLE, _GSM7_PART
        units = [gsm7.septet_count(ch) for ch in text]
    else:
        dcs, single, size = DCS_UCS2, _UCS2_SINGLE, _UCS2_PART
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    if sum(units) <= single:
        return dcs, [text]
    parts, start, used = [], 0, 0
    for i, n in enumerate(units):
        if used + n > size:
            parts.append(text[start:i])
            start, used = i, 0
        used += n
    parts.append(text[start:])
    if len(parts) > MAX_PARTS:
        raise ProtocolError(f"message needs {len(parts)} parts, at most {MAX_PARTS} allowed")
    return dcs, parts


def _encode_address(number: str) -> bytes:
    """TP-DA: length in digits, type (0x91 after '+', else 0x81), swapped BCD with F fill."""
    digits, toa = (number[1:], 0x91) if number.startswith("+") else (number, 0x81)
    if not digits or len(digits) > 20 or not all(c in "0123456789" for c in digits):
        raise ProtocolError(f"bad phone number {number!r}: want an optional '+' and 1..20 digits")
    padded = digits + "F" * (len(digits) % 2)
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return bytes([len(digits), toa]) + bytes.fromhex(swapped)


def _relative_validity(period: timedelta) -> int:
    """TP-VP, relative format (TS 23.040 9.2.3.12.1): the shortest coded period >= ``period``."""
    minutes = period.total_seconds() / 60
    if minutes <= 0 or minutes > 63 * 7 * 1440:
        raise ProtocolError(f"validity period {period} is outside 5 minutes..63 weeks")
    if minutes <= 720:
        return max(0, math.ceil(minutes / 5) - 1)
    if minutes <= 1440:
        return 143 + math.ceil((minutes - 720) / 30)
    if minutes <= 30 * 1440:
        return 166 + math.ceil(minutes / 1440)
    return 192 + math.ceil(minutes / (7 * 1440))


def encode_submit(
    number: str, text: str, *, ref: int, mr: int = 0, request_report: bool = True,
    validity: timedelta | None = timedelta(days=1),
) -> list[bytes]:
    """Encode a message as SMS-SUBMIT TPDUs (without the SMSC address).

    Parameters
    ----------
    number : str
        Destination: ``+8613912345678`` (international) or ``13912345678`` (national).
    text : str
        Message text, any length up to 255 parts.
    ref : int
        Concatenation reference 0..255, shared by the parts of a long message.
    mr : int, optional
        TP-MR of the first part; part *i* gets ``(mr + i) % 256``.
    request_report : bool, optional
        Set TP-SRR to ask for a status report.
    validity : timedelta or None, optional
        Relative validity period; None leaves TP-VP out.

    Returns
    -------
    list[bytes]
        One TPDU per part; ProtocolError for a bad number, ref, mr, validity or
        a text of more than 255 parts.
    """
    if not 0 <= ref <= 255 or not 0 <= mr <= 255:
        raise ProtocolError(f"ref {ref} / mr {mr} must be in 0..255")
    dcs, parts = split_text(text)
    address = _encode_address(number)
    vp = b"" if validity is None else bytes([_relative_validity(validity)])
    first = 0x01 | (0x10 if vp else 0) | (0x20 if request_report else 0)
    tpdus = []
    for seq, part in enumerate(parts, 1):
        udh = b"" if len(parts) == 1 else bytes([5, 0x00, 3, ref, len(parts), seq])
        if dcs == DCS_GSM7:
            septets, (fill, skip) = gsm7.encode_septets(part), gsm7.header_septets(len(udh))
            udl, ud = skip + len(septets), udh + gsm7.pack(septets, fill)
        else:
            ud = udh + part.encode("utf-16-be", "surrogatepass")
            udl = len(ud)
        head = bytes([first | (0x40 if udh else 0), (mr + seq - 1) % 256])
        tpdus.append(head + address + bytes([0x00, dcs]) + vp + bytes([udl]) + ud)
    return tpdus


def at_cmgs_pdus(number: str, text: str, **kwargs) -> list[tuple[int, str]]:
    """The ``AT+CMGS=<length>`` argument and hex PDU (with an empty SMSC) per part.

    Parameters
    ----------
    number, text, **kwargs
        As for :func:`encode_submit`.

    Returns
    -------
    list[tuple[int, str]]
        ``(TPDU octets, "00" + upper-case hex TPDU)``: the SMSC octet is not counted.
    """
    return [(len(t), "00" + t.hex().upper()) for t in encode_submit(number, text, **kwargs)]


class _Reader:
    """A cursor over a PDU that names the field and offset when the PDU runs short."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            left = len(self.data) - self.pos
            raise ProtocolError(f"PDU truncated: {what} needs {n} octets at offset {self.pos}, only {left} left")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]


def _to_bytes(pdu: str | bytes) -> bytes:
    if isinstance(pdu, (bytes, bytearray)):
        return bytes(pdu)
    try:
        return bytes.fromhex(pdu.strip())
    except ValueError as exc:
        raise ProtocolError(f"PDU is not valid hex: {pdu[:40]!r}") from exc


def _semi_octets(data: bytes, count: int) -> str:
    nibbles = [n for b in data for n in (b & 0x0F, b >> 4)][:count]
    return "".join(_SEMI[n] for n in nibbles if n != 0x0F)


def _read_address(r: _Reader, what: str) -> str:
    """Read TP-OA/TP-RA (length in semi-octets) or the SMSC prefix (length in octets, TOA included)."""
    n = r.byte(f"{what} length")
    if what == "SMSC" and n == 0:
        return ""
    toa = r.byte(f"{what} type")
    count = 2 * (n - 1) if what == "SMSC" else n
    raw = r.take((count + 1) // 2, what)
    if (toa >> 4) & 7 == _TON_ALPHANUMERIC:
        return gsm7.decode_septets(gsm7.unpack(raw, count * 4 // 7))
    return ("+" if (toa >> 4) & 7 == _TON_INTERNATIONAL else "") + _semi_octets(raw, count)


def _read_timestamp(r: _Reader, what: str) -> datetime:
    """Read a 7-octet TP-SCTS/TP-DT: swapped BCD date and time, zone in quarter hours."""
    offset, raw = r.pos, r.take(7, what)
    yy, mo, dd, hh, mi, ss = ((b & 0x0F) * 10 + (b >> 4) for b in raw[:6])
    quarters = (raw[6] & 0x07) * 10 + (raw[6] >> 4)  # bit 3 is the sign, in the tens digit
    try:
        tz = timezone(timedelta(minutes=(-15 if raw[6] & 0x08 else 15) * quarters))
        # Two-digit year: 90..99 are read as 199x so old published vectors decode sanely.
        return datetime((1900 if yy >= 90 else 2000) + yy, mo, dd, hh, mi, ss, tzinfo=tz)
    except ValueError as exc:
        raise ProtocolError(f"bad {what} {raw.hex().upper()} at offset {offset}: {exc}") from exc


def _alphabet(dcs: int) -> int:
    """Reduce a TP-DCS to DCS_GSM7, DCS_8BIT or DCS_UCS2 (TS 23.038 clause 4)."""
    if dcs < 0x80:  # general data coding groups 00xx, 01xx (automatic deletion)
        if dcs & 0x20:
            raise ProtocolError(f"compressed user data (TP-DCS 0x{dcs:02X}) is not supported")
        return (DCS_GSM7, DCS_8BIT, DCS_UCS2, DCS_GSM7)[(dcs >> 2) & 3]  # 11 is reserved
    # 1110 is UCS2 message waiting, 1111 the data coding/message class group; the rest is 7-bit.
    return {0xE: DCS_UCS2, 0xF: DCS_8BIT if dcs & 0x04 else DCS_GSM7}.get(dcs >> 4, DCS_GSM7)


@dataclass(frozen=True)
class Concat:
    """Concatenation IE of a part: reference (8 or 16 bit), number of parts, sequence (1-based)."""

    ref: int
    total: int
    seq: int


def _parse_udh(udh: bytes, offset: int) -> Concat | None:
    concat, i = None, 0
    while i < len(udh):
        if i + 2 > len(udh) or i + 2 + udh[i + 1] > len(udh):
            raise ProtocolError(f"UDH information element at offset {offset + i} overruns the header")
        iei, body = udh[i], udh[i + 2 : i + 2 + udh[i + 1]]
        i += 2 + len(body)
        if (iei, len(body)) in ((0x00, 3), (0x08, 4)):  # 8-bit and 16-bit reference
            c = Concat(int.from_bytes(body[:-2], "big"), body[-2], body[-1])
            if 1 <= c.seq <= c.total:  # TS 23.040: ignore an IE with a bad sequence
                concat = c
    return concat


def _read_user_data(r: _Reader, dcs: int, udhi: bool) -> tuple[bytes, Concat | None, str, bytes]:
    """Read TP-UDL and TP-UD; return the UDH, its concat IE, the text and the raw payload."""
    alphabet = _alphabet(dcs)
    udl, start = r.byte("TP-UDL"), r.pos  # r.pos is read after the length octet
    ud = r.take((udl * 7 + 7) // 8 if alphabet == DCS_GSM7 else udl, "TP-UD")
    udh, concat = b"", None
    if udhi:
        if not ud or 1 + ud[0] > len(ud):
            raise ProtocolError(f"UDH at offset {start} is longer than the user data")
        udh = ud[: 1 + ud[0]]
        concat = _parse_udh(udh[1:], start + 1)
    payload = ud[len(udh) :]
    if alphabet == DCS_GSM7:
        fill, skip = gsm7.header_septets(len(udh))
        text = gsm7.decode_septets(gsm7.unpack(payload, max(udl - skip, 0), fill))
    elif alphabet == DCS_UCS2:
        if len(payload) % 2:
            raise ProtocolError(f"UCS2 user data at offset {start} has odd length {len(payload)}")
        text = payload.decode("utf-16-be", "surrogatepass")
    else:
        text = ""
    return udh, concat, text, payload


@dataclass(frozen=True)
class Deliver:
    """An SMS-DELIVER as read from +CMGR/+CMGL/+CMT in PDU mode."""

    smsc: str
    sender: str
    timestamp: datetime
    pid: int
    dcs: int
    text: str
    payload: bytes = b""
    udh: bytes = b""
    concat: Concat | None = None
    status_report_indicated: bool = False


def decode_deliver(pdu: str | bytes) -> Deliver:
    """Decode an SMS-DELIVER with its SMSC prefix.

    Parameters
    ----------
    pdu : str or bytes
        Hex string or octets, starting with the SMSC length octet.

    Returns
    -------
    Deliver
        The message; ``text`` is empty for 8-bit data (see ``payload``).
        ProtocolError for bad hex, another message type, a truncated field (named,
        with its offset), a bad timestamp, compressed data or a broken UDH.
    """
    r = _Reader(_to_bytes(pdu))
    smsc = _read_address(r, "SMSC")
    first = r.byte("first octet")
    if first & 0x03 != 0x00:
        raise ProtocolError(f"not an SMS-DELIVER: first octet 0x{first:02X} at offset {r.pos - 1}")
    sender = _read_address(r, "TP-OA")
    pid, dcs = r.byte("TP-PID"), r.byte("TP-DCS")
    ts = _read_timestamp(r, "TP-SCTS")
    udh, concat, text, payload = _read_user_data(r, dcs, bool(first & 0x40))
    return Deliver(smsc, sender, ts, pid, dcs, text, payload, udh, concat, bool(first & 0x20))


@dataclass(frozen=True)
class StatusReport:
    """An SMS-STATUS-REPORT: which submit (TP-MR) reached whom, and how it ended."""

    smsc: str
    mr: int
    recipient: str
    sc_timestamp: datetime
    discharge_time: datetime
    status: int

    @property
    def outcome(self) -> str:
        """``"delivered"`` (TP-ST 0x00..0x1F, completed), ``"pending"`` (0x20..0x3F, the
        SC still tries) or ``"failed"`` (0x40.., permanent, or temporary and given up)."""
        return "delivered" if self.status < 0x20 else "pending" if self.status < 0x40 else "failed"

    delivered = property(lambda self: self.outcome == "delivered", doc="TP-ST says completed.")
    pending = property(lambda self: self.outcome == "pending", doc="TP-ST says the SC still tries.")
    failed = property(lambda self: self.outcome == "failed", doc="TP-ST says it will not arrive.")


def decode_status_report(pdu: str | bytes) -> StatusReport:
    """Decode an SMS-STATUS-REPORT with its SMSC prefix (optional trailing fields are ignored).

    Parameters
    ----------
    pdu : str or bytes
        Hex string or octets, starting with the SMSC length octet.

    Returns
    -------
    StatusReport
        The report; ProtocolError as for :func:`decode_deliver`.
    """
    r = _Reader(_to_bytes(pdu))
    smsc = _read_address(r, "SMSC")
    first = r.byte("first octet")
    if first & 0x03 != 0x02:
        raise ProtocolError(f"not an SMS-STATUS-REPORT: first octet 0x{first:02X} at offset {r.pos - 1}")
    mr, recipient = r.byte("TP-MR"), _read_address(r, "TP-RA")
    scts, dt = _read_timestamp(r, "TP-SCTS"), _read_timestamp(r, "TP-DT")
    return StatusReport(smsc, mr, recipient, scts, dt, r.byte("TP-ST"))


@dataclass
class Incomplete:
    """A long message that timed out: what arrived of it."""

    sender: str
    ref: int
    total: int
    parts: dict[int, str]


class Reassembler:
    """Join the parts of long messages, keyed by (sender, reference, total).

    Parameters
    ----------
    max_age : float
        Seconds, on the caller's clock, after the first part that a message may
        wait for its other parts before :meth:`expire` gives it up.
    """

    def __init__(self, max_age: float = 24 * 3600.0) -> None:
        self.max_age = max_age
        self._pending: dict[tuple[str, int, int], tuple[float, dict[int, str]]] = {}

    def feed(self, part: Deliver, now: float) -> str | None:
        """Add a part; return the whole text once all parts are in, else None.

        A message without a concatenation IE is returned at once; a repeated
        part is ignored.
        """
        if part.concat is None:
            return _join([part.text])
        c = part.concat
        key = (part.sender, c.ref, c.total)
        _, parts = self._pending.setdefault(key, (now, {}))
        parts.setdefault(c.seq, part.text)
        if len(parts) < c.total:
            return None
        del self._pending[key]
        return _join([parts[i] for i in range(1, c.total + 1)])

    def expire(self, now: float) -> list[Incomplete]:
        """Drop and return the messages whose first part is older than ``max_age``."""
        old = [k for k, (t0, _) in self._pending.items() if now - t0 > self.max_age]
        return [Incomplete(k[0], k[1], k[2], self._pending.pop(k)[1]) for k in old]

    def __len__(self) -> int:
        return len(self._pending)


def _join(texts: list[str]) -> str:
    # Other senders may split a surrogate pair across UCS2 parts: re-pair them.
    return "".join(texts).encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
