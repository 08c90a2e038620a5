"""SIP dialogs (RFC 3261 §12): the state two user agents share, and the requests sent inside one.

A dialog is made from an INVITE and the response that answered it, on either
side: ``Dialog.uac(invite, response)`` for calls we place, ``Dialog.uas(invite,
local_tag, contact)`` for calls we take. It keeps the route set (Record-Route,
reversed on the UAC side), the remote target (the peer's Contact, refreshed by
re-INVITEs), the tags and both CSeq counters, and builds in-dialog requests
(BYE, re-INVITE, REFER, INFO, the ACK for a 2xx) with loose routing (§16.12),
falling back to strict routing for a first route without ``lr``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from appliance.errors import ProtocolError

from .message import Request, Response
from .uri import NameAddr, SipUri

MAX_FORWARDS = "70"


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From value (without the tag) on requests we send
    remote_uri: str  # their address, the To value (without the tag)
    remote_target: SipUri  # the peer's Contact: where in-dialog requests go
    route_set: list[str] = field(default_factory=list)  # Route values, in the order they are sent
    local_seq: int = 0
    remote_seq: int | None = None
    contact: str = ""  # our Contact, for target-refresh requests

    @property
    def id(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def uac(cls, invite: Request, response: Response) -> "Dialog":
        """The dialog our INVITE created, from a 101-199 with a To tag or the 2xx (§12.1.2)."""
        tag = response.to.tag
        if tag is None:
            raise ProtocolError(f"a {response.status} to our INVITE has no To tag: it makes no dialog")
        return cls(invite.call_id, invite.from_.tag or "", tag, _untagged(invite.headers.get("From")),
                   _untagged(invite.headers.get("To")), _target(response),
                   list(reversed(response.headers.values("Record-Route"))), invite.cseq.seq, None,
                   invite.headers.get("Contact", ""))

    @classmethod
    def uas(cls, invite: Request, local_tag: str, contact: str) -> "Dialog":
        """The dialog we create by answering ``invite`` with To tag ``local_tag`` (§12.1.1)."""
        tag = invite.from_.tag
        if tag is None:
            raise ProtocolError("the INVITE's From has no tag: it cannot make a dialog (RFC 3261 §8.1.1.3)")
        return cls(invite.call_id, local_tag, tag, _untagged(invite.headers.get("To")),
                   _untagged(invite.headers.get("From")), _target(invite),
                   invite.headers.values("Record-Route"), 0, invite.cseq.seq, contact)

    def matches(self, msg: Request | Response, incoming: bool = True) -> bool:
        """Whether ``msg`` belongs to this dialog (an incoming request: From tag theirs, To tag ours)."""
        ours, theirs = (msg.to.tag, msg.from_.tag) if incoming else (msg.from_.tag, msg.to.tag)
        return msg.call_id == self.call_id and ours == self.local_tag and theirs == self.remote_tag

    def receive(self, request: Request) -> bool:
        """Check an in-dialog request's CSeq (§12.2.2); False: it is out of order (answer 500)."""
        seq = request.cseq.seq
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        if request.method == "INVITE" and request.headers.get("Contact"):
            self.remote_target = _target(request)  # a target refresh
        return True

    def refresh_target(self, response: Response) -> None:
        """A 2xx to our re-INVITE may carry a new Contact (§12.2.1.2)."""
        if response.headers.get("Contact"):
            self.remote_target = _target(response)

    def request(self, method: str, via: str, *, body: bytes = b"", content_type: str | None = None,
                extra: list[tuple[str, str]] | None = None, seq: int | None = None) -> tuple[Request, SipUri]:
        """A request inside the dialog and the URI of its next hop (§12.2.1.1).

        ``via`` is our sent-by with transport, e.g. ``"SIP/2.0/UDP 192.0.2.10:5060"``; a new
        branch is added. ACK takes the INVITE's ``seq``; other methods take the next number.
        """
        if seq is None:
            self.local_seq += 1
            seq = self.local_seq
        routes = list(self.route_set)
        uri, hop = self.remote_target, self.remote_target
        if routes:
            first = NameAddr.parse(routes[0], "Route")
            hop = first.uri
            if "lr" not in first.uri.params:  # strict routing: the first route becomes the Request-URI
                uri = first.uri
                routes = routes[1:] + [f"<{self.remote_target}>"]
        headers = [("Via", f"{via};branch={new_branch()}"), ("Max-Forwards", MAX_FORWARDS),
                   ("From", f"{self.local_uri};tag={self.local_tag}"), ("To", f"{self.remote_uri};tag={self.remote_tag}"),
                   ("Call-ID", self.call_id), ("CSeq", f"{seq} {method}")]
        headers += [("Route", r) for r in routes]
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER") and self.contact:
            headers.append(("Contact", self.contact))
        headers += extra or []
        if content_type and body:
            headers.append(("Content-Type", content_type))
        return Request(method, SipUri.parse(str(uri), "remote target"), headers, body), hop

    def ack(self, invite_seq: int, via: str, body: bytes = b"") -> tuple[Request, SipUri]:
        """The ACK for a 2xx to our INVITE with CSeq ``invite_seq`` (§13.2.2.4): a transaction of its own."""
        return self.request("ACK", via, body=body, content_type="application/sdp" if body else None, seq=invite_seq)


def _untagged(value: str | None) -> str:
    if value is None:
        raise ProtocolError("a dialog needs From and To")
    addr = NameAddr.parse(value, "From/To")
    addr.tag = None
    return str(addr)


def _target(msg: Request | Response) -> SipUri:
    contacts = msg.contacts
    if contacts == "*" or not contacts:
        raise ProtocolError(f"{'an INVITE' if isinstance(msg, Request) else f'a {msg.status}'} that makes a "
                            "dialog needs one Contact")
    return contacts[0].uri
