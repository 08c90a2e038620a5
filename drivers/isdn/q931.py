"""Q.931 (ETSI EN 300 403) messages for an E1 PRI: bytes <-> ``Message``, no state machine.

A message (Q.931 §4) is the protocol discriminator 0x08, the call reference (a length
octet 0..2, then the flag bit and the call reference value), the message type, then the
information elements: single-octet ones (0x80..0xFF) and variable-length ones
(identifier, length, contents). Codeset shifts (§4.5.2-4.5.4) are decoded; IEs of
codesets 4..7 stay ``RawIE`` with their codeset and are sent back after one locking
shift per codeset, in ascending codeset order.

The IEs call control reads become fields of ``Message``; every other IE, a second
occurrence of an IE, and an IE whose (well-formed) contents the field classes cannot
express go to ``Message.others`` in the order received. ``decode`` raises
``ProtocolError`` for malformed bytes; ``encode`` raises ``ValueError`` for field values
that have no coding. ``decode(encode(m)) == m`` holds when ``m.others`` is in the order
``encode`` writes it (codeset 0 by identifier, then codesets 4..7).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from appliance.errors import ProtocolError
from drivers.isdn.ies import (BearerCapability, CallState, Cause, ChannelId, Display, Keypad,
                              PartyNumber, ProgressIndicator, RawIE, RestartIndicator, ie_name)

__all__ = ["MT", "BearerCapability", "ChannelId", "Cause", "PartyNumber", "ProgressIndicator",
           "RestartIndicator", "Display", "RawIE", "CallState", "Keypad", "Message", "decode",
           "encode", "CAUSES", "PROTOCOL_DISCRIMINATOR"]

PROTOCOL_DISCRIMINATOR = 0x08  # Q.931 user-network call control messages
SENDING_COMPLETE = 0xA1


class MT(enum.IntEnum):
    """Message types, Q.931 Table 4-2 (FACILITY and the hold/retrieve/register set from Q.932)."""

    ALERTING = 0x01
    CALL_PROCEEDING = 0x02
    PROGRESS = 0x03
    SETUP = 0x05
    CONNECT = 0x07
    SETUP_ACKNOWLEDGE = 0x0D
    CONNECT_ACKNOWLEDGE = 0x0F
    USER_INFORMATION = 0x20
    SUSPEND_REJECT = 0x21
    RESUME_REJECT = 0x22
    HOLD = 0x24
    SUSPEND = 0x25
    RESUME = 0x26
    HOLD_ACKNOWLEDGE = 0x28
    SUSPEND_ACKNOWLEDGE = 0x2D
    RESUME_ACKNOWLEDGE = 0x2E
    HOLD_REJECT = 0x30
    RETRIEVE = 0x31
    RETRIEVE_ACKNOWLEDGE = 0x33
    RETRIEVE_REJECT = 0x37
    DISCONNECT = 0x45
    RESTART = 0x46
    RELEASE = 0x4D
    RESTART_ACKNOWLEDGE = 0x4E
    RELEASE_COMPLETE = 0x5A
    SEGMENT = 0x60
    FACILITY = 0x62
    REGISTER = 0x64
    NOTIFY = 0x6E
    STATUS_ENQUIRY = 0x75
    CONGESTION_CONTROL = 0x79
    INFORMATION = 0x7B
    STATUS = 0x7D


CAUSES: dict[int, str] = {  # Q.850 Table 1, for logs
    1: "unallocated number", 2: "no route to specified transit network", 3: "no route to destination",
    4: "send special information tone", 5: "misdialled trunk prefix", 6: "channel unacceptable",
    7: "call awarded and being delivered in an established channel", 8: "preemption",
    9: "preemption - circuit reserved for reuse",
    16: "normal call clearing", 17: "user busy", 18: "no user responding",
    19: "no answer from user (user alerted)", 20: "subscriber absent", 21: "call rejected",
    22: "number changed", 23: "redirection to new destination", 25: "exchange routing error",
    26: "non-selected user clearing", 27: "destination out of order", 28: "invalid number format",
    29: "facility rejected", 30: "response to STATUS ENQUIRY", 31: "normal, unspecified",
    34: "no circuit/channel available", 38: "network out of order",
    39: "permanent frame mode connection out of service",
    40: "permanent frame mode connection operational", 41: "temporary failure",
    42: "switching equipment congestion", 43: "access information discarded",
    44: "requested circuit/channel not available", 46: "precedence call blocked",
    47: "resource unavailable, unspecified", 49: "quality of service not available",
    50: "requested facility not subscribed", 53: "outgoing calls barred within CUG",
    55: "incoming calls barred within CUG", 57: "bearer capability not authorized",
    58: "bearer capability not presently available",
    62: "inconsistency in designated outgoing access information and subscriber class",
    63: "service or option not available, unspecified", 65: "bearer capability not implemented",
    66: "channel type not implemented", 69: "requested facility not implemented",
    70: "only restricted digital information bearer capability is available",
    79: "service or option not implemented, unspecified", 81: "invalid call reference value",
    82: "identified channel does not exist",
    83: "a suspended call exists, but this call identity does not", 84: "call identity in use",
    85: "no call suspended", 86: "call having the requested call identity has been cleared",
    87: "user not member of CUG", 88: "incompatible destination", 90: "non-existent CUG",
    91: "invalid transit network selection", 95: "invalid message, unspecified",
    96: "mandatory information element is missing",
    97: "message type non-existent or not implemented",
    98: "message not compatible with call state or message type non-existent or not implemented",
    99: "information element/parameter non-existent or not implemented",
    100: "invalid information element contents", 101: "message not compatible with call state",
    102: "recovery on timer expiry", 103: "parameter non-existent or not implemented, passed on",
    110: "message with unrecognized parameter, discarded", 111: "protocol error, unspecified",
    127: "interworking, unspecified",
}


@dataclass
class Message:
    type: MT
    cref: int  # call reference value (0 = global / dummy)
    from_destination: bool = False  # flag bit: False when sent by the side that originated the CR
    bearer: BearerCapability | None = None
    channel: ChannelId | None = None
    cause: Cause | None = None
    calling: PartyNumber | None = None
    called: PartyNumber | None = None
    progress: ProgressIndicator | None = None
    restart: RestartIndicator | None = None
    display: Display | None = None
    call_state: CallState | None = None
    keypad: str | None = None
    sending_complete: bool = False
    others: list[RawIE] = field(default_factory=list)
    cref_len: int = 2  # call reference length as received / to send (0 for the dummy CR)


# codeset 0 IEs that become fields: identifier -> (attribute, class); ascending identifiers
_FIELDS = {0x04: ("bearer", BearerCapability), 0x08: ("cause", Cause), 0x14: ("call_state", CallState),
           0x18: ("channel", ChannelId), 0x1E: ("progress", ProgressIndicator),
           0x28: ("display", Display), 0x2C: ("keypad", Keypad), 0x6C: ("calling", PartyNumber),
           0x70: ("called", PartyNumber), 0x79: ("restart", RestartIndicator)}


def _parse_field(ident: int, body: bytes):
    cls = _FIELDS[ident][1]
    if cls is PartyNumber:
        return PartyNumber.from_contents(body, ident)
    value = cls.from_contents(body)
    return value.digits if isinstance(value, Keypad) else value


def _header(data: bytes) -> tuple[Message, int]:
    if not data:
        raise ProtocolError("Q.931 message is empty")
    if data[0] != PROTOCOL_DISCRIMINATOR:
        raise ProtocolError(f"protocol discriminator 0x{data[0]:02X}, expected 0x08 "
                            "(Q.931 user-network call control)")
    if len(data) < 2:
        raise ProtocolError("Q.931 message truncated after the protocol discriminator: "
                            "no call reference length octet")
    length = data[1]
    if length & 0xF0:
        raise ProtocolError(f"call reference length octet 0x{length:02X} has spare bits 8-5 set")
    if length > 2:
        raise ProtocolError(f"call reference length {length} is over the limit: a PRI uses 0..2 octets")
    if len(data) < 3 + length:
        raise ProtocolError(f"Q.931 message truncated: {len(data)} octets, the header needs {3 + length} "
                            f"(call reference of {length} octets, then the message type)")
    cref = int.from_bytes(data[2:2 + length], "big")
    flag = bool(length and data[2] & 0x80)
    if flag:
        cref &= ~(0x80 << (8 * (length - 1)))
    code = data[2 + length]
    try:
        kind = MT(code)
    except ValueError:
        what = "escape to nationally specific message types" if code == 0 else "unknown message type"
        raise ProtocolError(f"{what} 0x{code:02X} (octet {3 + length} of the message)") from None
    return Message(kind, cref, flag, cref_len=length), 3 + length


def decode(data: bytes) -> Message:
    """Parse one Q.931 message (the contents of a Q.921 I-frame)."""
    data = bytes(data)
    msg, pos = _header(data)
    locked, pending, seen = 0, None, set()  # pending: codeset of a non-locking shift
    while pos < len(data):
        start, ident = pos, data[pos]
        pos += 1
        codeset = locked if pending is None else pending
        if ident & 0xF0 == 0x90:  # shift, recognised in every codeset
            new = ident & 0x07
            if new in (1, 2, 3):
                raise ProtocolError(f"shift IE 0x{ident:02X} at offset {start} names the reserved codeset {new}")
            if ident & 0x08:
                pending = new
                continue
            if new <= locked:
                raise ProtocolError(f"locking shift IE 0x{ident:02X} at offset {start} goes from codeset "
                                    f"{locked} to codeset {new}; a locking shift only goes to a higher codeset")
            locked, pending = new, None  # a locking after a non-locking shift counts alone (§4.5.4)
            continue
        pending = None
        if ident & 0x80:  # single-octet IE
            if codeset == 0 and ident == SENDING_COMPLETE and not msg.sending_complete:
                msg.sending_complete = True
            else:
                msg.others.append(RawIE(ident, b"", codeset))
            continue
        if pos >= len(data):
            raise ProtocolError(f"{ie_name(ident, codeset)} at offset {start} of a {msg.type.name} is "
                                "truncated: the message ends before its length octet")
        length, pos = data[pos], pos + 1
        if pos + length > len(data):
            raise ProtocolError(f"{ie_name(ident, codeset)} at offset {start} of a {msg.type.name}: length "
                                f"{length} runs past the end of the message ({len(data) - pos} octets left)")
        body, pos = data[pos:pos + length], pos + length
        if codeset == 0 and ident in _FIELDS and ident not in seen:
            seen.add(ident)
            try:
                value = _parse_field(ident, body)
            except ProtocolError as exc:
                raise ProtocolError(f"{exc} ({ie_name(ident)} at offset {start} of a "
                                    f"{msg.type.name})") from None
            if value is not None:
                setattr(msg, _FIELDS[ident][0], value)
                continue
        msg.others.append(RawIE(ident, body, codeset))
    return msg


def _ie(ident: int, contents: bytes) -> bytes:
    if len(contents) > 255:
        raise ValueError(f"{ie_name(ident)}: {len(contents)} octets of contents, at most 255 fit")
    return bytes([ident, len(contents)]) + contents


def _call_reference(msg: Message) -> bytes:
    length, cref = msg.cref_len, msg.cref
    if length == 0:
        if cref or msg.from_destination:
            raise ValueError("the dummy call reference (cref_len 0) has no value and no flag")
        return b"\x00"
    if length not in (1, 2) or not isinstance(cref, int) or not 0 <= cref < 1 << (8 * length - 1):
        raise ValueError(f"call reference {cref!r} does not fit cref_len {length!r} (0, 1 or 2)")
    flag = 0x80 << (8 * (length - 1)) if msg.from_destination else 0
    return bytes([length]) + (flag | cref).to_bytes(length, "big")


def encode(msg: Message) -> bytes:
    """Build the octets of ``msg``: sending complete first, codeset 0 IEs in ascending
    order (a repeat indicator just before the IEs it repeats), then codesets 4..7."""
    out = bytearray([PROTOCOL_DISCRIMINATOR]) + _call_reference(msg)
    out.append(MT(msg.type))
    items: list[tuple[tuple[int, int, int], bytes]] = []
    if msg.sending_complete:
        items.append(((-1, 0, 0), bytes([SENDING_COMPLETE])))
    for ident, (attr, cls) in _FIELDS.items():
        value = getattr(msg, attr)
        if value is None:
            continue
        if cls is Keypad:
            value = Keypad(value)
        contents = value.contents(ident) if cls is PartyNumber else value.contents()
        items.append(((ident, 0, 0), _ie(ident, contents)))
    upper: dict[int, list[bytes]] = {}
    for seq, raw in enumerate(msg.others):
        if raw.codeset not in (0, 4, 5, 6, 7) or not 0 <= raw.ident <= 0xFF:
            raise ValueError(f"{raw!r}: codeset must be 0 or 4..7 and the identifier one octet")
        if raw.ident & 0xF0 == 0x90:
            raise ValueError(f"{raw!r}: shift IEs are written by encode, not passed in others")
        if raw.ident & 0x80:
            if raw.contents:
                raise ValueError(f"{raw!r}: a single-octet IE has no contents")
            octets = bytes([raw.ident])
        else:
            octets = _ie(raw.ident, bytes(raw.contents))
        if raw.codeset:
            upper.setdefault(raw.codeset, []).append(octets)
        elif not raw.ident & 0x80:
            items.append(((raw.ident, 1, seq), octets))
        elif raw.ident & 0xF0 == 0xD0:  # repeat indicator: before the IE that follows it
            following = [r.ident for r in msg.others[seq + 1:] if not r.codeset and r.ident < 0x80]
            items.append(((following[0] if following else 0x100, -1, seq), octets))
        else:
            items.append(((-1, 1, seq), octets))
    for _key, octets in sorted(items, key=lambda item: item[0]):
        out += octets
    for codeset in sorted(upper):
        out.append(0x90 | codeset)  # locking shift
        out += b"".join(upper[codeset])
    return bytes(out)
