"""The SIP user agent behind the SIP card: trunk channels and IP-phone seats as card ports, sans-I/O.

``SipCalls`` turns SIP into the card's events and the card's commands into SIP:

- a trunk channel: an INVITE from the carrier is ``Seized`` (caller from
  P-Asserted-Identity or From, the DID from the Request-URI), ``answer`` sends
  200 with our SDP answer, ``dial`` sends an INVITE to the carrier (answering
  its 401/407 once), 18x is ``Alerting``, 200 ``Connected``, a failure
  ``Released`` with the Q.850 cause of RFC 3398; BYE either way;
- an IP-phone seat works as an analog seat does: ``ring`` sends an INVITE to
  the agent's registered phone, its 200 is ``OffHook`` and its BYE ``OnHook``;
  the agent dialling from the phone is ``OffHook`` then a ``Digit`` per digit
  (``%23`` or a bare ``#`` in the Request-URI is ``#``; a feature code ``*...``
  sent without its ``#`` gets it, as the number came whole);
  a blind transfer (REFER) is ``Flash`` then the target's digits; hold and
  resume (re-INVITE) change the media and are ``Hold(port, on)``.

Media changes come out of ``media_changes`` (port, Negotiated or None) for the
card's RTP ports; messages out of ``messages_to_send``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from appliance.errors import ProtocolError

from ..base import CardEvent, Digit, Flash, Hold, OffHook, OnHook, Released, Seized
from .commands import CardCommands
from .dialog import Dialog, new_tag
from .legs import ALLOW, DIALLABLE, Leg, called_number, calling_party, cause_of, dialled, en_bloc
from .message import Request, Response
from .responses import Responses, usable_media
from .sdp import SessionDescription, answer, negotiated, offer
from .transaction import (Address, Outgoing, RequestReceived, ResponseReceived, TimedOut, TransactionLayer)
from .uri import NameAddr

log = logging.getLogger(__name__)


class SipCalls(CardCommands, Responses):
    """SIP for ``trunk_ports`` (port indexes) and ``seats`` (port index -> extension).

    ``rtp_ports`` gives each port's local RTP port for SDP; ``trunk`` is
    ``{"host", "port", "domain", "username", "password", "number"}`` or None;
    ``registrar`` checks phones (``drivers.sip.registrar.Registrar``) or is None.
    """

    def __init__(self, *, local: Address, media_host: str, rtp_ports: Any, trunk_ports: list[int],
                 seats: dict[int, str], trunk: dict | None = None, registrar: Any = None,
                 transactions: TransactionLayer | None = None) -> None:
        self.local, self.media_host, self.rtp_ports = local, media_host, rtp_ports
        self.trunk_ports, self.seats, self.trunk, self.registrar = list(trunk_ports), dict(seats), trunk, registrar
        self.seat_of = {ext: port for port, ext in seats.items()}
        self.tx = transactions or TransactionLayer()
        self.legs: dict[int, Leg] = {}  # port -> its call
        self._by_key: dict[tuple, Leg] = {}  # INVITE or CANCEL/BYE transaction -> leg
        self._by_call: dict[str, Leg] = {}  # Call-ID -> leg (in-dialog requests find their call by it)
        self._events: list[CardEvent] = []
        self._media: list[tuple[int, Any]] = []
        self._out: list[Outgoing] = []
        self._session = secrets.randbelow(2**31)
        self.freed_now: set[int] = set()  # ports freed since the card's poll began: not taken again in it
        self._others: dict[tuple, Any] = {}  # REGISTER/OPTIONS we sent for others -> callback(response or None)

    # --- plumbing ----------------------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float, transport: str = "UDP") -> None:
        self.tx.receive(data, source, now, transport)
        self._drain(now)

    def handle_timer(self, now: float) -> None:
        self.tx.handle_timer(now)
        self._drain(now)

    def next_deadline(self) -> float | None:
        return self.tx.next_deadline()

    def messages_to_send(self) -> list[Outgoing]:
        out, self._out = self._out + self.tx.messages_to_send(), []
        return out

    def send_other(self, request: Request, addr: Address, now: float, transport: str, on_result) -> None:
        """Send a request outside any call (trunk REGISTER, OPTIONS pings); ``on_result(response or None
        for a timeout, now)`` hears its final response."""
        self._others[self.tx.send_request(request, addr, now, transport)] = on_result

    def next_event(self) -> CardEvent | None:
        return self._events.pop(0) if self._events else None

    def media_changes(self) -> list[tuple[int, Any]]:
        out, self._media = self._media, []
        return out

    def _drain(self, now: float) -> None:
        while (ev := self.tx.next_event()) is not None:
            try:
                if isinstance(ev, RequestReceived):
                    self._on_request(ev, now)
                elif isinstance(ev, ResponseReceived):
                    self._on_response(ev.key, ev.response, now)
                elif isinstance(ev, TimedOut):
                    self._on_timeout(ev.key, now)
            except ProtocolError as exc:
                log.info("SIP: %s", exc)

    def _via(self, transport: str = "UDP") -> str:
        return f"SIP/2.0/{transport} {self.local[0]}:{self.local[1]};rport"

    def _contact(self, user: str = "box") -> str:
        return f"<sip:{user}@{self.local[0]}:{self.local[1]}>"

    def _sdp_offer(self, leg: Leg) -> bytes:
        leg.sdp_version += 1
        return offer(self.media_host, self.rtp_ports[leg.port], session_id=self._session + leg.port,
                     version=leg.sdp_version).serialize()

    def _sdp_answer(self, leg: Leg, their: bytes) -> bytes:
        leg.sdp_version += 1
        theirs = SessionDescription.parse(their)
        ours = answer(theirs, self.media_host, self.rtp_ports[leg.port], session_id=self._session + leg.port,
                      version=leg.sdp_version)
        leg.media = usable_media(negotiated(theirs, ours, we_offered=False))  # ProtocolError etc: 488
        return ours.serialize()

    # --- requests from the network --------------------------------------------------------------------

    def _on_request(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        if req.method == "REGISTER":
            if self.registrar is None:
                self._respond(ev.key, Response.for_request(req, 405, to_tag=new_tag()), now)
            elif (resp := self.registrar.handle_register(req, ev.source, ev.transport, now)) is not None:
                self._respond(ev.key, resp, now)  # None: a blocked source, which hears nothing
            return
        leg = self._dialog_leg(req)
        if req.method == "ACK":
            if leg is not None and leg.state == "answered":
                leg.state = "confirmed"
                if leg.media is None and req.body:
                    self._answer_in_ack(leg, req.body, now)
            return
        if req.method == "CANCEL":
            self._on_cancel(ev, now)
            return
        if leg is not None:
            self._in_dialog(leg, ev, now)
        elif req.method == "INVITE" and req.to.tag is None:
            self._new_call(ev, now)
        elif req.method == "OPTIONS":
            resp = Response.for_request(req, 200, to_tag=new_tag())
            resp.headers.add("Allow", ALLOW)
            resp.headers.add("Accept", "application/sdp")
            self._respond(ev.key, resp, now)
        else:
            self._respond(ev.key, Response.for_request(req, 481 if req.to.tag else 405), now)

    def _respond(self, key: tuple, resp: Response, now: float) -> None:
        self.tx.respond(key, resp, now)

    def _from_trunk(self, source: Address) -> bool:
        return self.trunk is not None and source[0] == self.trunk["host"]

    def _new_call(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        if self._from_trunk(ev.source):
            port = next((p for p in self.trunk_ports if p not in self.legs and p not in self.freed_now), None)
            if port is None:
                self._respond(ev.key, Response.for_request(req, 503, to_tag=new_tag()), now)
                return
            leg = self._take(port, False, req, ev, now)
            if leg is not None:
                calling, withheld = calling_party(req)
                self._events.append(Seized(port, calling, called_number(req), withheld))
            return
        ext = self.registrar.check_request(req, ev.source, now) if self.registrar else None
        if isinstance(ext, Response) or ext is None:
            if ext is not None:
                self._respond(ev.key, ext, now)
            return  # a blocked or unknown source: nothing reaches a trunk or a seat
        port = self.seat_of.get(ext)
        number = called_number(req)
        if port is None or port in self.legs or port in self.freed_now or not number or not set(number) <= DIALLABLE:
            self._respond(ev.key, Response.for_request(req, 486 if port in self.legs else 404, to_tag=new_tag()), now)
            return
        leg = self._take(port, True, req, ev, now)
        if leg is not None:  # the agent lifted the phone and dialled: answer, then the digits
            self._answer(leg, now)
            self._events += [OffHook(port)] + [Digit(port, d) for d in en_bloc(number)]

    def _take(self, port: int, seat: bool, req: Request, ev: RequestReceived, now: float) -> Leg | None:
        leg = Leg(port, seat, True, req, ev.source, ev.transport, ev.key, "early", local_tag=new_tag(),
                  offer=req.body)
        try:  # the dialog it would make (From tag, Contact, a route set we can use), before anything else
            leg.extra["dialog"] = Dialog.uas(req, leg.local_tag, self._contact())
            for route in leg.extra["dialog"].route_set:
                NameAddr.parse(route, "Record-Route")
        except ProtocolError as exc:
            log.info("SIP: refusing a call from %s:%s: %s", *ev.source, exc)
            self._respond(ev.key, Response.for_request(req, 400, to_tag=leg.local_tag), now)
            return None
        try:
            leg.answer_sdp = self._sdp_answer(leg, req.body) if req.body else b""
        except Exception as exc:  # no codec in common, or a broken offer
            log.info("SIP: refusing a call from %s:%s: %s", *ev.source, exc)
            self._respond(ev.key, Response.for_request(req, 488, to_tag=leg.local_tag), now)
            return None
        self.legs[port] = leg
        self._by_key[ev.key] = leg
        self._by_call[req.call_id] = leg
        return leg

    def _answer(self, leg: Leg, now: float) -> None:
        resp = Response.for_request(leg.invite, 200, to_tag=leg.local_tag)
        resp.headers.add("Contact", self._contact())
        resp.headers.add("Allow", ALLOW)
        if not leg.answer_sdp:  # an INVITE without an offer: ours goes in the 200, theirs in the ACK
            leg.answer_sdp = self._sdp_offer(leg)
        resp.headers.add("Content-Type", "application/sdp")
        resp.body = leg.answer_sdp
        self._respond(leg.key, resp, now)
        leg.dialog = leg.extra.pop("dialog")
        leg.state = "answered"
        if leg.media is not None:
            self._media.append((leg.port, leg.media))

    def _answer_in_ack(self, leg: Leg, body: bytes, now: float) -> None:
        """An INVITE without an offer: ours went in the 200, the answer comes in the ACK (RFC 3261 §13.2.1);
        an answer we cannot use ends the call (BYE)."""
        try:
            leg.media = usable_media(negotiated(SessionDescription.parse(leg.answer_sdp), SessionDescription.parse(body),
                                           we_offered=True))
        except Exception as exc:
            log.info("SIP: the answer in the ACK on port %d is unusable (%s): hanging up", leg.port, exc)
            self._bye(leg, 47, now)
            self._ended(leg, 47)
            return
        self._media.append((leg.port, leg.media))

    def _dialog_leg(self, req: Request) -> Leg | None:
        leg = self._by_call.get(req.call_id)
        return leg if leg is not None and leg.dialog is not None and leg.dialog.matches(req) else None

    def _in_dialog(self, leg: Leg, ev: RequestReceived, now: float) -> None:
        req = ev.request
        if not leg.dialog.receive(req):
            self._respond(ev.key, Response.for_request(req, 500), now)
            return
        if req.method == "BYE":
            self._respond(ev.key, Response.for_request(req, 200), now)
            self._ended(leg, cause_of(req, 16))
        elif req.method == "INVITE":  # hold, resume, a new address: a new offer
            resp = Response.for_request(req, 200)
            resp.headers.add("Contact", self._contact())
            held = leg.media is not None and leg.media.remote_hold
            try:
                resp.body = self._sdp_answer(leg, req.body) if req.body else self._sdp_offer(leg)
            except Exception:
                self._respond(ev.key, Response.for_request(req, 488), now)
                return
            resp.headers.add("Content-Type", "application/sdp")
            self._respond(ev.key, resp, now)
            self._media.append((leg.port, leg.media))
            if leg.seat and leg.media is not None and leg.media.remote_hold != held:  # the agent's hold key
                self._events.append(Hold(leg.port, leg.media.remote_hold))
        elif req.method == "REFER" and leg.seat:
            target = dialled(NameAddr.parse(req.headers.get("Refer-To") or "<sip:invalid>", "Refer-To").uri.user)
            if not target or not set(target) <= DIALLABLE:
                self._respond(ev.key, Response.for_request(req, 400), now)
                return
            self._respond(ev.key, Response.for_request(req, 202), now)
            self._notify(leg, "SIP/2.0 200 OK", now)
            self._events += [Flash(leg.port)] + [Digit(leg.port, d) for d in target]
        elif req.method == "INFO" and (req.media_type or "") == "application/dtmf-relay":
            self._respond(ev.key, Response.for_request(req, 200), now)
            for line in req.body.decode(errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip().lower() == "signal" and value.strip() in DIALLABLE:
                    self._events.append(Digit(leg.port, value.strip()))
        else:
            self._respond(ev.key, Response.for_request(req, 200 if req.method in ("NOTIFY", "INFO") else 405), now)

    def _notify(self, leg: Leg, sipfrag: str, now: float) -> None:
        req, hop = leg.dialog.request("NOTIFY", self._via(leg.transport), body=sipfrag.encode(),
                                      content_type="message/sipfrag;version=2.0",
                                      extra=[("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")])
        self.tx.send_request(req, leg.remote, now, leg.transport)

    def _on_cancel(self, ev: RequestReceived, now: float) -> None:
        req = ev.request
        key = self.tx.invite_for_cancel(req)
        leg = self._by_key.get(key) if key else None
        self._respond(ev.key, Response.for_request(req, 200 if leg else 481), now)
        if leg is not None and leg.state == "early":
            self._respond(leg.key, Response.for_request(leg.invite, 487, to_tag=leg.local_tag), now)
            self._ended(leg, cause_of(req, 16))

    def _ended(self, leg: Leg, cause: int) -> None:
        """The far side ended the call: tell the card in its own terms, free the port."""
        if leg.state == "ended":
            return
        if leg.seat:
            if leg.state in ("answered", "confirmed"):
                self._events.append(OnHook(leg.port))
        else:
            self._events.append(Released(leg.port, cause))
        self._free(leg)

    def _free(self, leg: Leg) -> None:
        leg.state = "ended"
        self.freed_now.add(leg.port)
        if leg.invite is not None and self._by_call.get(leg.invite.call_id) is leg:
            del self._by_call[leg.invite.call_id]
        if self.legs.get(leg.port) is leg:
            del self.legs[leg.port]
            self._media.append((leg.port, None))
        for key in [k for k, v in self._by_key.items() if v is leg]:
            del self._by_key[key]
