"""What the card asks of the SIP user agent: answer, hang up, dial, ring, stop ringing, hold.

A mixin of ``drivers.sip.ua.SipCalls`` (which keeps the legs, the transaction
layer and the events); here are the requests we start: INVITE to the carrier or
to an agent's phone, CANCEL, BYE with a Q.850 Reason, and the re-INVITE that
puts a call on hold (a=sendonly) or takes it off.
"""

from __future__ import annotations

import logging
import secrets

from appliance.errors import DriverError, ProtocolError

from .dialog import new_branch, new_tag
from .legs import ALLOW, DIALLABLE, Leg, response_for_cause
from .message import Request, Response
from .sdp import SessionDescription, negotiated, offer
from .transaction import Address

log = logging.getLogger(__name__)


class CardCommands:
    def answer_call(self, port: int, now: float) -> None:
        leg = self.legs.get(port)
        if leg is None or not leg.incoming or leg.seat or leg.state != "early":
            raise DriverError(f"no inbound call to answer on SIP port {port}")
        self._answer(leg, now)

    def hangup(self, port: int, cause: int, now: float) -> None:
        leg = self.legs.get(port)
        if leg is None or leg.state in ("ending", "ended"):
            return
        leg.cause = cause
        if leg.state in ("answered", "confirmed"):
            self._bye(leg, cause, now)
            self._free(leg)
        elif leg.incoming:
            self._respond(leg.key, Response.for_request(leg.invite, response_for_cause(cause), to_tag=leg.local_tag),
                          now)
            self._free(leg)
        else:
            self._cancel(leg, cause, now)

    def _bye(self, leg: Leg, cause: int, now: float) -> None:
        try:
            req, _ = leg.dialog.request("BYE", self._via(leg.transport), extra=[("Reason", f"Q.850;cause={cause}")])
        except ProtocolError as exc:  # a route or target we cannot address: the call ends here all the same
            log.warning("SIP: no BYE for the call on port %d: %s", leg.port, exc)
            return
        self.tx.send_request(req, leg.remote, now, leg.transport)

    def _cancel(self, leg: Leg, cause: int, now: float) -> None:
        inv = leg.invite
        headers = [("Via", inv.headers.find("Via")[0].value), ("Max-Forwards", "70"), ("From", inv.headers.get("From")),
                   ("To", inv.headers.get("To")), ("Call-ID", inv.call_id), ("CSeq", f"{inv.cseq.seq} CANCEL"),
                   ("Reason", f"Q.850;cause={cause}")]
        headers += [("Route", r) for r in inv.headers.get_all("Route")]
        self.tx.send_request(Request("CANCEL", inv.uri, headers), leg.remote, now, leg.transport)
        leg.cancel_sent, leg.state = True, "ending"

    def dial(self, port: int, number: str, now: float) -> None:
        if port not in self.trunk_ports:
            raise DriverError(f"cannot dial on SIP port {port}: outbound calls go on trunk ports")
        if self.trunk is None:
            raise DriverError("cannot dial: no SIP trunk is configured (sip.trunk_host)")
        if port in self.legs:
            raise DriverError(f"SIP port {port} is busy")
        if not number or not set(number) <= DIALLABLE:
            raise DriverError(f"cannot dial {number!r}: a number is one or more of 0-9 * #")
        t = self.trunk
        domain = t.get("domain") or t["host"]
        caller = t.get("number") or t["username"]
        uri = f"sip:{number}@{domain}"
        self._invite(port, False, uri, (t["host"], t.get("port", 5060)), t.get("transport", "UDP"),
                     from_=f"<sip:{caller}@{domain}>", extra=[("P-Asserted-Identity", f"<sip:{caller}@{domain}>")],
                     now=now)

    def ring(self, port: int, caller: str | None, now: float) -> None:
        ext = self.seats.get(port)
        if ext is None:
            raise DriverError(f"cannot ring SIP port {port}: only IP-phone seats ring")
        if port in self.legs:
            raise DriverError(f"cannot ring {ext}: the phone is busy")
        bindings = self.registrar.bindings(ext, now) if self.registrar else []
        if not bindings:
            raise DriverError(f"cannot ring extension {ext}: its phone is not registered")
        b = bindings[0]
        name = f'"{caller}" <sip:{caller}@{self.local[0]}>' if caller else '"anonymous" <sip:anonymous@anonymous.invalid>'
        self._invite(port, True, str(b.contact), b.source, b.transport, from_=name, extra=[], now=now)

    def stop_ring(self, port: int, now: float) -> None:
        leg = self.legs.get(port)
        if leg is not None and leg.seat and not leg.incoming and leg.state in ("calling", "early"):
            self._cancel(leg, 16, now)

    def _invite(self, port: int, seat: bool, uri: str, remote: Address, transport: str, *, from_: str,
                extra: list, now: float) -> None:
        leg = Leg(port, seat, False, None, remote, transport, local_tag=new_tag())  # type: ignore[arg-type]
        leg.offer = self._sdp_offer(leg)
        headers = [("Via", f"{self._via(transport)};branch={new_branch()}"), ("Max-Forwards", "70"),
                   ("From", f"{from_};tag={leg.local_tag}"), ("To", f"<{uri}>"),
                   ("Call-ID", f"{secrets.token_hex(10)}@{self.local[0]}"), ("CSeq", "1 INVITE"),
                   ("Contact", self._contact()), ("Allow", ALLOW), *extra, ("Content-Type", "application/sdp")]
        leg.invite = Request("INVITE", uri, headers, leg.offer)
        leg.key = self.tx.send_request(leg.invite, remote, now, transport)
        self.legs[port] = leg
        self._by_key[leg.key] = leg
        self._by_call[leg.invite.call_id] = leg

    def hold(self, port: int, on: bool, now: float) -> None:
        """Put the answered call on ``port`` on hold (re-INVITE, a=sendonly) or take it off (sendrecv)."""
        leg = self.legs.get(port)
        if leg is None or leg.dialog is None or leg.state not in ("answered", "confirmed"):
            raise DriverError(f"no answered call on SIP port {port} to {'hold' if on else 'resume'}")
        leg.sdp_version += 1
        body = offer(self.media_host, self.rtp_ports[port], direction="sendonly" if on else "sendrecv",
                     session_id=self._session + port, version=leg.sdp_version).serialize()
        req, _ = leg.dialog.request("INVITE", self._via(leg.transport), body=body, content_type="application/sdp")
        key = self.tx.send_request(req, leg.remote, now, leg.transport)
        leg.extra["reinvite"] = (key, req)

    def _on_reinvite_response(self, leg: Leg, resp: Response, now: float) -> None:
        key, req = leg.extra.pop("reinvite")
        if resp.status >= 300:
            log.info("SIP: the re-INVITE on port %d was refused (%d); the call goes on as it was", leg.port,
                     resp.status)
            return
        ack, _ = leg.dialog.ack(req.cseq.seq, self._via(leg.transport))
        self.tx.send_request(ack, leg.remote, now, leg.transport)
        leg.dialog.refresh_target(resp)
        try:
            leg.media = negotiated(SessionDescription.parse(req.body), SessionDescription.parse(resp.body),
                                   we_offered=True)
        except Exception as exc:
            log.info("SIP: unusable answer to our re-INVITE on port %d: %s", leg.port, exc)
            return
        self._media.append((leg.port, leg.media))
