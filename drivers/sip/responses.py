"""The user agent's answers to its own requests: final responses to INVITEs (answered, refused, redirected),
stray 2xx retransmissions, and timeouts (a part of ``drivers.sip.ua.SipCalls``)."""

from __future__ import annotations

import ipaddress
import logging

from appliance.errors import ProtocolError

from ..base import Alerting, Connected, OffHook
from .dialog import Dialog
from .legs import Leg, cause_for_response, cause_of
from .message import Response
from .sdp import SessionDescription, negotiated

log = logging.getLogger("drivers.sip.ua")

class Responses:
    def _on_response(self, key: tuple, resp: Response, now: float) -> None:
        if key in self._others:
            if resp.status >= 200:
                self._others.pop(key)(resp, now)
            return
        leg = self._by_key.get(key)
        if leg is None and resp.status >= 200:  # the final answer to a hold or resume of ours?
            held = next((lg for lg in self.legs.values() if lg.extra.get("reinvite", (None,))[0] == key), None)
            if held is not None:
                self._on_reinvite_response(held, resp, now)
                return
        if leg is None or resp.cseq.method != "INVITE":
            if resp.cseq.method == "INVITE" and 200 <= resp.status < 300:
                self._ack_stray(resp, now)
            return
        if leg.dialog is not None and 200 <= resp.status < 300:  # a repeat of the 2xx: our ACK was lost
            if "ack" in leg.extra:
                self.tx.send_request(leg.extra["ack"], leg.remote, now, leg.transport)
            return
        if resp.status < 200:
            if resp.status in (180, 183) and not leg.alerted and not leg.seat:
                leg.alerted = True
                self._events.append(Alerting(leg.port))
            return
        if resp.status in (401, 407) and not leg.authorized and self.trunk and not leg.seat:
            from .trunk import authorize
            leg.authorized = True
            again = authorize(leg.invite, resp, self.trunk.get("auth_username") or self.trunk["username"],
                              self.trunk["password"])
            leg.invite = again
            del self._by_key[key]
            leg.key = self.tx.send_request(again, leg.remote, now, leg.transport)
            self._by_key[leg.key] = leg
            return
        if resp.status >= 300:
            if leg.seat or leg.cancel_sent:
                self._free(leg)  # the phone declined or we cancelled: nothing to report
            else:
                self._ended(leg, cause_of(resp, cause_for_response(resp.status)))
            return
        self._confirm(leg, resp, now)

    def _confirm(self, leg: Leg, resp: Response, now: float) -> None:
        """A 2xx to our INVITE: the dialog, the ACK, the media; a 2xx after we hung up gets ACK and BYE."""
        try:
            leg.dialog = Dialog.uac(leg.invite, resp)
            ack, _ = leg.dialog.ack(leg.invite.cseq.seq, self._via(leg.transport))
        except ProtocolError as exc:  # a 2xx we cannot even acknowledge: the call is lost
            log.info("SIP: unusable 2xx on port %d: %s", leg.port, exc)
            if leg.seat:
                self._free(leg)
            else:
                self._ended(leg, 41)
            return
        self.tx.send_request(ack, leg.remote, now, leg.transport)
        leg.extra["ack"] = ack
        if leg.cancel_sent or leg.state == "ending":
            self._bye(leg, leg.cause, now)
            return
        try:
            leg.media = usable_media(negotiated(SessionDescription.parse(leg.offer), SessionDescription.parse(resp.body),
                                           we_offered=True))
        except Exception as exc:
            log.info("SIP: the answer to our offer is unusable (%s): hanging up", exc)
            self._bye(leg, 47, now)
            self._ended(leg, 47)
            return
        leg.state = "confirmed"
        self._media.append((leg.port, leg.media))
        self._events.append(OffHook(leg.port) if leg.seat else Connected(leg.port))

    def _ack_stray(self, resp: Response, now: float) -> None:
        for leg in self.legs.values():
            if leg.dialog is not None and leg.dialog.matches(resp, incoming=False) and "ack" in leg.extra:
                self.tx.send_request(leg.extra["ack"], leg.remote, now, leg.transport)

    def _on_timeout(self, key: tuple, now: float) -> None:
        if key in self._others:
            self._others.pop(key)(None, now)
            return
        leg = self._by_key.get(key)
        if leg is not None and leg.incoming and leg.state == "answered":  # our 2xx never got its ACK
            self._bye(leg, 102, now)
            self._ended(leg, 102)
        elif leg is not None and leg.state in ("calling", "early"):
            if leg.seat or leg.cancel_sent:
                self._free(leg)
            else:
                self._ended(leg, 102)  # recovery on timer expiry: the carrier never answered


def usable_media(media):
    """``media`` if its remote address is an IP address (RFC 4566 allows a host name; we do not resolve it)."""
    try:
        ipaddress.ip_address(media.remote_address)
    except ValueError:
        raise ProtocolError(f"SDP connection address {media.remote_address[:40]!r} is not an IP address") from None
    return media
