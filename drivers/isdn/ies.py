"""Q.931 information elements of codeset 0 that call control reads, and their octet codecs.

Each IE class here has ``ident`` (its identifier), ``from_contents(body)`` that parses the
contents octets (octet 3 onwards) and ``contents()`` that builds them. ``from_contents``
raises ``ProtocolError`` naming the IE, the octet and the value when the contents break
Q.931 / Q.850, and returns ``None`` when they are well formed but say something these
classes cannot express (a slot map, a V.110 bearer, ...): the message codec then keeps
the IE as a ``RawIE``. ``contents()`` raises ``ValueError`` for field values that have no
coding. Octets are numbered as in the figures of Q.931 §4.5: octet 1 is the identifier,
octet 2 the length, the contents start at octet 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from appliance.errors import ProtocolError

IE_NAMES = {
    0x00: "segmented message", 0x04: "bearer capability", 0x08: "cause", 0x10: "call identity",
    0x14: "call state", 0x18: "channel identification", 0x1C: "facility",
    0x1E: "progress indicator", 0x20: "network-specific facilities",
    0x27: "notification indicator", 0x28: "display", 0x29: "date/time", 0x2C: "keypad facility",
    0x34: "signal", 0x40: "information rate", 0x4C: "connected number",
    0x6C: "calling party number", 0x6D: "calling party subaddress", 0x70: "called party number",
    0x71: "called party subaddress", 0x74: "redirecting number", 0x78: "transit network selection",
    0x79: "restart indicator", 0x7C: "low layer compatibility", 0x7D: "high layer compatibility",
    0x7E: "user-user", 0x7F: "escape for extension",
    0xA0: "more data", 0xA1: "sending complete",
}


def ie_name(ident: int, codeset: int = 0) -> str:
    """``"IE 0x18 (channel identification)"``; IEs of other codesets say their codeset."""
    if codeset:
        return f"IE 0x{ident:02X} of codeset {codeset}"
    if 0x90 <= ident <= 0x9F:
        return f"IE 0x{ident:02X} (shift)"
    if 0xB0 <= ident <= 0xBF:
        return f"IE 0x{ident:02X} (congestion level)"
    if 0xD0 <= ident <= 0xDF:
        return f"IE 0x{ident:02X} (repeat indicator)"
    return f"IE 0x{ident:02X} ({IE_NAMES.get(ident, 'unknown')})"


def _code(table: dict[str, int], value: object, what: str) -> int:
    try:
        return table[value]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"{what} {value!r} has no coding; one of {sorted(table)}") from None


def _reverse(table: dict[str, int]) -> dict[int, str]:
    return {code: name for name, code in table.items()}


def _range(value: int, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} {value!r} out of range {low}..{high}")
    return value


TRANSFER = {"speech": 0x00, "unrestricted": 0x08, "audio": 0x10}  # information transfer capability
LAYER1 = {"ulaw": 0x02, "alaw": 0x03}  # user information layer 1 protocol: G.711 mu-law, A-law
TYPE_OF_NUMBER = {"unknown": 0, "international": 1, "national": 2, "network": 3,
                  "subscriber": 4, "abbreviated": 6}
NUMBERING_PLAN = {"unknown": 0, "isdn": 1, "data": 3, "telex": 4, "national": 8, "private": 9}
PRESENTATION = {"allowed": 0, "restricted": 1, "unavailable": 2}
SCREENING = {"user-not-screened": 0, "user-passed": 1, "user-failed": 2, "network": 3}
RESTART_CLASS = {"indicated": 0, "single-interface": 6, "all-interfaces": 7}
DIGITS = frozenset(b"0123456789*#")
_R_TRANSFER, _R_LAYER1 = _reverse(TRANSFER), _reverse(LAYER1)
_R_TON, _R_NPI = _reverse(TYPE_OF_NUMBER), _reverse(NUMBERING_PLAN)
_R_PRES, _R_SCREEN, _R_RESTART = _reverse(PRESENTATION), _reverse(SCREENING), _reverse(RESTART_CLASS)


@dataclass(frozen=True)
class BearerCapability:
    """IE 0x04, circuit mode 64 kbit/s, ITU-T coding (Q.931 §4.5.5); anything else stays a RawIE."""

    ident: ClassVar[int] = 0x04
    transfer: str = "speech"  # "speech" (0x00), "unrestricted" (0x08, 64k digital), "audio" (3.1 kHz, 0x10)
    layer1: str | None = "alaw"  # user info layer 1: "alaw" (0x03), "ulaw" (0x02), None (octet 5 absent)

    @classmethod
    def from_contents(cls, body: bytes) -> BearerCapability | None:
        if len(body) < 2:
            raise ProtocolError(f"bearer capability: {len(body)} octet(s) of contents, "
                                "octets 3 (transfer capability) and 4 (mode, rate) are mandatory")
        transfer = _R_TRANSFER.get(body[0] & 0x7F)  # coding standard bits 7-6 must be 00 (ITU-T)
        layer1 = _R_LAYER1.get(body[2] & 0x1F) if len(body) > 2 else None
        if transfer is None or (len(body) > 2 and layer1 is None):
            return None
        ie = cls(transfer, layer1)
        return ie if ie.contents() == body else None  # other mode/rate, octets 5a.., 6, 7: raw

    def contents(self) -> bytes:
        octets = bytes([0x80 | _code(TRANSFER, self.transfer, "bearer capability transfer"),
                        0x90])  # octet 4: ext 1, circuit mode (00), 64 kbit/s (10000)
        if self.layer1 is not None:  # octet 5: ext 1, layer 1 identifier 01, protocol
            octets += bytes([0xA0 | _code(LAYER1, self.layer1, "bearer capability layer1")])
        return octets


@dataclass(frozen=True)
class ChannelId:
    """IE 0x18 on a primary rate interface, one B-channel by number (Q.931 §4.5.13).

    ``any_channel`` (an addition to the agreed interface) tells the two codings of "no
    channel number" apart when ``channel`` is None: True = "any channel" (selection 11),
    False = "no channel" (selection 00). It must stay True when ``channel`` is given.
    Slot maps, channel lists, H-channels and explicit interface identifiers stay RawIEs.
    """

    ident: ClassVar[int] = 0x18
    channel: int | None  # channel (E1 timeslot) number 1..31; None = "any channel" / no channel
    exclusive: bool = True  # True: exclusive (only this channel), False: preferred
    d_channel: bool = False
    any_channel: bool = True

    @classmethod
    def from_contents(cls, body: bytes) -> ChannelId | None:
        if not body:
            raise ProtocolError("channel identification: no contents, octet 3 is mandatory")
        o3 = body[0]
        if not o3 & 0x80:
            raise ProtocolError(f"channel identification: octet 3 (0x{o3:02X}) has extension bit 0")
        if o3 & 0x40:  # interface identifier present: octet 3.1 names the interface (NFAS)
            return None
        if not o3 & 0x20:
            raise ProtocolError(f"channel identification: octet 3 (0x{o3:02X}) has interface type "
                                "0 (basic interface); a PRI needs interface type 1 (primary rate)")
        exclusive, d_channel, selection = bool(o3 & 0x08), bool(o3 & 0x04), o3 & 0x03
        if selection == 2:
            raise ProtocolError(f"channel identification: octet 3 (0x{o3:02X}) has the reserved "
                                "information channel selection 10")
        if selection != 1:
            if len(body) > 1:
                raise ProtocolError(f"channel identification: octet 3 (0x{o3:02X}) selects "
                                    f"{'any' if selection == 3 else 'no'} channel, yet "
                                    f"{len(body) - 1} more octet(s) follow")
            return cls(None, exclusive, d_channel, any_channel=selection == 3)
        if len(body) < 3:
            raise ProtocolError(f"channel identification: octet 3 (0x{o3:02X}) says 'as indicated "
                                f"in the following octets' but octet 3.{len(body) + 1} is missing")
        o32, numbers = body[1], body[2:]
        if not o32 & 0x80:
            raise ProtocolError(f"channel identification: octet 3.2 (0x{o32:02X}) has extension bit 0")
        if o32 & 0x7F != 0x03 or len(numbers) != 1 or not numbers[0] & 0x80:
            return None  # other coding standard, slot map, H-channel or several channels
        number = numbers[0] & 0x7F
        if not 1 <= number <= 31:
            raise ProtocolError(f"channel identification: octet 3.3 (0x{numbers[0]:02X}) names "
                                f"channel {number}, an E1 PRI has channels 1..31")
        return cls(number, exclusive, d_channel)

    def contents(self) -> bytes:
        o3 = 0xA0 | (0x08 if self.exclusive else 0) | (0x04 if self.d_channel else 0)
        if self.channel is None:
            return bytes([o3 | (0x03 if self.any_channel else 0x00)])
        if not self.any_channel:
            raise ValueError("channel identification: any_channel=False only goes with channel=None")
        number = _range(self.channel, 1, 31, "channel identification channel")
        return bytes([o3 | 0x01, 0x83, 0x80 | number])  # 3.2: ITU-T, by number, B-channel units


@dataclass(frozen=True)
class Cause:
    """IE 0x08 (Q.850 §2). ``coding`` (an addition) is the coding standard: 0 ITU-T, 3 network."""

    ident: ClassVar[int] = 0x08
    value: int  # 1..127
    location: int = 0  # 0 user, 2 public network serving the local user, 4 remote public, ...
    diagnostic: bytes = b""
    coding: int = 0  # 0 ITU-T (Q.850 values), 1 ISO/IEC, 2 national, 3 network specific

    @classmethod
    def from_contents(cls, body: bytes) -> Cause:
        if not body:
            raise ProtocolError("cause: no contents, octets 3 (location) and 4 (cause value) are mandatory")
        o3, at = body[0], 1
        if not o3 & 0x80:  # octet 3a (recommendation) follows; dropped: Q.931 is the default
            at = 2
            if len(body) < 2:
                raise ProtocolError(f"cause: octet 3 (0x{o3:02X}) announces octet 3a, which is missing")
        if len(body) <= at:
            raise ProtocolError(f"cause: no cause value octet (octet 4) after octet "
                                f"{'3a' if at == 2 else '3'} (0x{body[at - 1]:02X})")
        o4 = body[at]
        if not o4 & 0x80:
            raise ProtocolError(f"cause: octet 4 (0x{o4:02X}) has extension bit 0")
        return cls(o4 & 0x7F, o3 & 0x0F, bytes(body[at + 1:]), (o3 >> 5) & 0x03)

    def contents(self) -> bytes:
        return bytes([0x80 | _range(self.coding, 0, 3, "cause coding") << 5
                      | _range(self.location, 0, 15, "cause location"),
                      0x80 | _range(self.value, 0, 127, "cause value")]) + bytes(self.diagnostic)


@dataclass(frozen=True)
class CallState:
    """IE 0x14, ITU-T coding standard: the call state value 0..63 (Q.931 §4.5.7)."""

    ident: ClassVar[int] = 0x14
    value: int

    @classmethod
    def from_contents(cls, body: bytes) -> CallState | None:
        if not body:
            raise ProtocolError("call state: no contents, octet 3 is mandatory")
        return cls(body[0] & 0x3F) if body[0] & 0xC0 == 0 else None  # other coding: raw

    def contents(self) -> bytes:
        return bytes([_range(self.value, 0, 63, "call state value")])


@dataclass(frozen=True)
class ProgressIndicator:
    """IE 0x1E (Q.931 §4.5.23). ``coding`` (an addition): 0 ITU-T, 2 national, 3 network."""

    ident: ClassVar[int] = 0x1E
    description: int  # 1 not end-to-end ISDN, 2 destination non-ISDN, 3 origination non-ISDN, 8 in-band
    location: int = 0
    coding: int = 0

    @classmethod
    def from_contents(cls, body: bytes) -> ProgressIndicator:
        if len(body) < 2:
            raise ProtocolError(f"progress indicator: {len(body)} octet(s) of contents, octets 3 "
                                "(location) and 4 (progress description) are mandatory")
        return cls(body[1] & 0x7F, body[0] & 0x0F, (body[0] >> 5) & 0x03)

    def contents(self) -> bytes:
        return bytes([0x80 | _range(self.coding, 0, 3, "progress coding") << 5
                      | _range(self.location, 0, 15, "progress location"),
                      0x80 | _range(self.description, 0, 127, "progress description")])


@dataclass(frozen=True)
class RestartIndicator:
    """IE 0x79 (Q.931 §4.5.25)."""

    ident: ClassVar[int] = 0x79
    klass: str  # "indicated" (0), "single-interface" (6), "all-interfaces" (7)

    @classmethod
    def from_contents(cls, body: bytes) -> RestartIndicator:
        if not body:
            raise ProtocolError("restart indicator: no contents, octet 3 (class) is mandatory")
        klass = _R_RESTART.get(body[0] & 0x07)
        if klass is None:
            raise ProtocolError(f"restart indicator: octet 3 (0x{body[0]:02X}) has the reserved "
                                f"class {body[0] & 0x07}")
        return cls(klass)

    def contents(self) -> bytes:
        return bytes([0x80 | _code(RESTART_CLASS, self.klass, "restart class")])


@dataclass(frozen=True)
class Display:
    """IE 0x28: the octets as sent (IA5 as a rule; some networks send GBK), never decoded here."""

    ident: ClassVar[int] = 0x28
    text: bytes

    @classmethod
    def from_contents(cls, body: bytes) -> Display:
        return cls(bytes(body))

    def contents(self) -> bytes:
        return bytes(self.text)


@dataclass(frozen=True)
class Keypad:
    """IE 0x2C: IA5 characters, e.g. digits from a keypad (Q.931 §4.5.18)."""

    ident: ClassVar[int] = 0x2C
    digits: str

    @classmethod
    def from_contents(cls, body: bytes) -> Keypad:
        for i, octet in enumerate(body):
            if octet & 0x80:
                raise ProtocolError(f"keypad facility: octet {3 + i} (0x{octet:02X}) is not an IA5 character")
        return cls(bytes(body).decode("ascii"))

    def contents(self) -> bytes:
        try:
            return self.digits.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"keypad facility {self.digits!r} is not IA5 (ASCII)") from None


@dataclass(frozen=True)
class PartyNumber:
    """Calling (IE 0x6C, §4.5.10) and called (IE 0x70, §4.5.8) party number."""

    digits: str  # IA5 digits 0-9 * #
    type: str = "unknown"  # type of number
    plan: str = "isdn"  # numbering plan identification
    presentation: str | None = None  # calling only (octet 3a); None -> octet 3a absent
    screening: str = "user-not-screened"

    @classmethod
    def from_contents(cls, body: bytes, ident: int = 0x6C) -> PartyNumber:
        name = IE_NAMES[ident]
        if not body:
            raise ProtocolError(f"{name}: no contents, octet 3 (type of number, numbering plan) is mandatory")
        o3 = body[0]
        kind, plan = _R_TON.get((o3 >> 4) & 0x07), _R_NPI.get(o3 & 0x0F)
        if kind is None:
            raise ProtocolError(f"{name}: octet 3 (0x{o3:02X}) has the reserved type of number {(o3 >> 4) & 7}")
        if plan is None:
            raise ProtocolError(f"{name}: octet 3 (0x{o3:02X}) has the reserved numbering plan {o3 & 0x0F}")
        presentation, screening, at = None, "user-not-screened", 1
        if not o3 & 0x80:
            if ident != 0x6C:
                raise ProtocolError(f"{name}: octet 3 (0x{o3:02X}) has extension bit 0, "
                                    f"but the {name} has no octet 3a")
            if len(body) < 2:
                raise ProtocolError(f"{name}: octet 3 (0x{o3:02X}) announces octet 3a, which is missing")
            o3a, at = body[1], 2
            presentation = _R_PRES.get((o3a >> 5) & 0x03)
            if not o3a & 0x80:
                raise ProtocolError(f"{name}: octet 3a (0x{o3a:02X}) has extension bit 0")
            if presentation is None:
                raise ProtocolError(f"{name}: octet 3a (0x{o3a:02X}) has the reserved presentation indicator 11")
            screening = _R_SCREEN[o3a & 0x03]
        for i, octet in enumerate(body[at:]):
            if octet not in DIGITS:
                raise ProtocolError(f"{name}: octet {4 + i} (0x{octet:02X}, {chr(octet)!r}) "
                                    "is not a digit 0-9, * or #")
        return cls(bytes(body[at:]).decode("ascii"), kind, plan, presentation, screening)

    def contents(self, ident: int = 0x6C) -> bytes:
        name = IE_NAMES[ident]
        o3 = _code(TYPE_OF_NUMBER, self.type, f"{name} type") << 4 | _code(NUMBERING_PLAN, self.plan, f"{name} plan")
        if any(c not in "0123456789*#" for c in self.digits):
            raise ValueError(f"{name} digits {self.digits!r}: only 0-9, * and # are allowed")
        if self.presentation is None:
            if self.screening != "user-not-screened":
                raise ValueError(f"{name}: screening {self.screening!r} needs a presentation (octet 3a)")
            head = bytes([0x80 | o3])
        elif ident != 0x6C:
            raise ValueError(f"{name}: presentation and screening exist only in the calling party number")
        else:
            head = bytes([o3, 0x80 | _code(PRESENTATION, self.presentation, f"{name} presentation") << 5
                          | _code(SCREENING, self.screening, f"{name} screening")])
        return head + self.digits.encode("ascii")


@dataclass(frozen=True)
class RawIE:
    """Any other IE, kept as received: the contents octets, or b"" for a single-octet IE
    (then ``ident`` is the whole octet, 0x80..0xFF); IEs of codesets 4..7 carry their codeset."""

    ident: int
    contents: bytes
    codeset: int = 0

    @property
    def comprehension_required(self) -> bool:
        """Q.931 §5.8.7.1: codeset 0 identifiers 0000 xxxx must be understood by the receiver."""
        return self.codeset == 0 and self.ident <= 0x0F

    @property
    def name(self) -> str:
        return ie_name(self.ident, self.codeset)
