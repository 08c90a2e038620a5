"""What the SIP user agent keeps per call leg, and the translations between SIP and the card's world.

Causes follow RFC 3398 §7.2.4.1 / §8.2.6.1 (Q.850 to SIP and back) and travel in
``Reason: Q.850;cause=N`` headers (RFC 3326) when the peer sends one. Calling
numbers come from P-Asserted-Identity before From (RFC 3325), and are withheld
for ``Privacy: id`` or an anonymous From.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from appliance.errors import ProtocolError

from .dialog import Dialog
from .message import Request, Response
from .sdp import Negotiated
from .transaction import Address
from .uri import NameAddr

# SIP final response -> Q.850 cause (RFC 3398 §8.2.6.1, with RFC 4497's refinements)
SIP_TO_Q850 = {400: 41, 401: 21, 402: 21, 403: 21, 404: 1, 405: 63, 406: 79, 407: 21, 408: 102, 410: 22,
               413: 127, 414: 127, 415: 79, 416: 127, 420: 127, 421: 127, 423: 127, 480: 18, 481: 41, 482: 25,
               483: 25, 484: 28, 485: 1, 486: 17, 487: 127, 488: 127, 500: 41, 501: 79, 502: 38, 503: 34,
               504: 102, 505: 127, 580: 47, 600: 17, 603: 21, 604: 1, 606: 58}
# Q.850 cause -> the final response that refuses a call not yet answered (RFC 3398 §7.2.4.1)
Q850_TO_SIP = {1: 404, 2: 404, 3: 404, 16: 480, 17: 486, 18: 408, 19: 480, 20: 480, 21: 603, 22: 410, 26: 404,
               27: 502, 28: 484, 29: 501, 31: 480, 34: 503, 38: 503, 41: 503, 42: 503, 44: 503, 47: 503, 55: 403,
               57: 403, 58: 503, 65: 488, 69: 501, 79: 501, 88: 488, 102: 504, 111: 500, 127: 500}
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO"
DIALLABLE = frozenset("0123456789*#")
_REASON = re.compile(r"Q\.850\s*;\s*cause\s*=\s*(\d+)", re.I)


@dataclass
class Leg:
    """One call on one card port: a trunk channel or an IP phone seat."""

    port: int
    seat: bool  # an IP phone seat (else a trunk channel)
    incoming: bool  # the peer sent the INVITE
    invite: Request
    remote: Address
    transport: str
    key: tuple | None = None  # the INVITE's transaction
    state: str = "calling"  # calling | early | answered | confirmed | ending | ended
    dialog: Dialog | None = None
    local_tag: str = ""
    offer: bytes = b""  # the SDP offer (theirs when incoming, ours when outgoing)
    answer_sdp: bytes = b""
    media: Negotiated | None = None
    authorized: bool = False  # our INVITE already answered one 401/407
    alerted: bool = False
    cancel_sent: bool = False
    cause: int = 16
    refer_to: str | None = None
    sdp_version: int = 0
    extra: dict = field(default_factory=dict)


def cause_of(msg: Request | Response, default: int) -> int:
    """The Q.850 cause in a Reason header, else ``default``."""
    for value in msg.headers.get_all("Reason"):
        m = _REASON.search(value)
        if m and 1 <= int(m.group(1)) <= 127:
            return int(m.group(1))
    return default


def response_for_cause(cause: int) -> int:
    return Q850_TO_SIP.get(cause, 480)


def cause_for_response(status: int) -> int:
    return SIP_TO_Q850.get(status, {4: 41, 5: 38, 6: 31}.get(status // 100, 31))


def calling_party(invite: Request) -> tuple[str | None, str | None]:
    """The calling number of ``invite`` and, when there is none, why ("private" or "unavailable")."""
    privacy = {p.strip().lower() for v in invite.headers.get_all("Privacy") for p in v.split(";")}
    pai = invite.headers.get("P-Asserted-Identity")
    try:
        who = NameAddr.parse(pai.split(",")[0], "P-Asserted-Identity") if pai else invite.from_
    except ProtocolError:
        who = invite.from_
    user = who.uri.user or ""
    if "id" in privacy or "user" in privacy or user.lower() == "anonymous" or "anonymous.invalid" in who.uri.host:
        return None, "private"
    digits = user.removeprefix("tel:")
    if not digits or not all(c in "0123456789+*#" for c in digits):
        return None, "unavailable"
    return digits, None


def called_number(invite: Request) -> str:
    """The number dialled: the Request-URI's user part (the DID on a trunk), else To's."""
    return dialled(invite.uri.user or invite.to.uri.user)


def dialled(user: str | None) -> str:
    """A URI's user part as the digits dialled: escapes resolved (``*2%23`` is ``*2#``)."""
    return urllib.parse.unquote(user or "", errors="replace")


def en_bloc(number: str) -> str:
    """The digits of a number a phone sent whole, ending a feature code with its ``#``: a phone whose ``#`` key
    means "dial now" (a common default) sends ``*11001*1234#`` as ``*11001*1234``, and nothing follows it."""
    return number + "#" if number.startswith("*") and not number.endswith("#") else number
