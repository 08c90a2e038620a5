"""The SIP user agent's trunk channels, message by message: what the carrier sends, what we answer, what the card hears."""

from __future__ import annotations

import pytest

from appliance.errors import DriverError
from drivers.base import Alerting, Connected, Released, Seized
from drivers.sip.message import Request, Response, parse
from drivers.sip.sdp import SessionDescription, offer
from drivers.sip.ua import SipCalls

CARRIER = ("198.51.100.1", 5060)
BOX = ("192.0.2.10", 5060)
TRUNK = {"host": CARRIER[0], "port": 5060, "domain": "ims.example.cn", "username": "4008001234", "password": "pw"}


def carrier_offer(codecs=("PCMA",)) -> bytes:
    return offer("198.51.100.7", 30000, codecs=codecs, session_id=1, version=1).serialize()


def carrier_invite(caller="13912345678", did="4008001234", extra=(), body=None, branch="z9hG4bKc1"):
    body = carrier_offer() if body is None else body
    return Request("INVITE", f"sip:{did}@192.0.2.10", [
        ("Via", f"SIP/2.0/UDP 198.51.100.1:5060;branch={branch}"), ("Max-Forwards", "70"),
        ("From", f"<sip:{caller}@ims.example.cn>;tag=car1"), ("To", f"<sip:{did}@ims.example.cn>"),
        ("Call-ID", "call-1@198.51.100.1"), ("CSeq", "10 INVITE"), ("Contact", "<sip:gw@198.51.100.1:5060>"),
        *extra, ("Content-Type", "application/sdp")], body)


def make() -> SipCalls:
    return SipCalls(local=BOX, media_host=BOX[0], rtp_ports={0: 10000, 1: 10002}, trunk_ports=[0, 1], seats={},
                    trunk=TRUNK)


def out(ua):
    return [parse(o.data) for o in ua.messages_to_send()]


def events(ua):
    found = []
    while (e := ua.next_event()) is not None:
        found.append(e)
    return found


def statuses(msgs):
    return [m.status if isinstance(m, Response) else m.method for m in msgs]


def test_inbound_call_seized_answered_and_cleared_by_the_carrier():
    ua = make()
    inv = carrier_invite()
    ua.receive(inv.serialize(), CARRIER, 0.0)
    assert statuses(out(ua)) == [100]
    assert events(ua) == [Seized(0, "13912345678", "4008001234")]
    ua.answer_call(0, 0.5)
    [ok] = out(ua)
    assert ok.status == 200 and ok.to.tag and ok.media_type == "application/sdp"
    sdp = SessionDescription.parse(ok.body)
    assert sdp.media[0].port == 10000 and sdp.media[0].formats[0] == "8"  # PCMA on port 0's RTP port
    [(port, media)] = ua.media_changes()
    assert (port, media.codec, media.remote_address, media.remote_port) == (0, "PCMA", "198.51.100.7", 30000)
    tag = ok.to.tag
    ack = Request("ACK", "sip:box@192.0.2.10:5060", [
        ("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKack"), ("Max-Forwards", "70"),
        ("From", "<sip:13912345678@ims.example.cn>;tag=car1"), ("To", f"<sip:4008001234@ims.example.cn>;tag={tag}"),
        ("Call-ID", "call-1@198.51.100.1"), ("CSeq", "10 ACK")])
    ua.receive(ack.serialize(), CARRIER, 0.6)
    assert ua.legs[0].state == "confirmed"
    bye = Request("BYE", "sip:box@192.0.2.10:5060", [
        ("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKbye"), ("Max-Forwards", "70"),
        ("From", "<sip:13912345678@ims.example.cn>;tag=car1"), ("To", f"<sip:4008001234@ims.example.cn>;tag={tag}"),
        ("Call-ID", "call-1@198.51.100.1"), ("CSeq", "11 BYE"), ("Reason", "Q.850;cause=31;text=\"x\"")])
    ua.receive(bye.serialize(), CARRIER, 5.0)
    assert statuses(out(ua)) == [200]
    assert events(ua) == [Released(0, 31)] and ua.media_changes() == [(0, None)] and 0 not in ua.legs


@pytest.mark.parametrize("extra, caller, expected", [
    ([("Privacy", "id")], "13912345678", (None, "private")),
    ([], "anonymous", (None, "private")),
    ([("P-Asserted-Identity", "<sip:+8613800138000@ims.example.cn>")], "unknown", ("+8613800138000", None)),
    ([], "abc", (None, "unavailable")),
])
def test_calling_number_from_pai_from_and_privacy(extra, caller, expected):
    ua = make()
    ua.receive(carrier_invite(caller=caller, extra=extra).serialize(), CARRIER, 0.0)
    [seized] = events(ua)
    assert (seized.calling, seized.withheld) == expected


def test_outbound_call_alerts_connects_and_we_clear_it_with_a_reason():
    ua = make()
    ua.dial(1, "13800138000", 0.0)
    [inv] = out(ua)
    assert (inv.method, str(inv.uri)) == ("INVITE", "sip:13800138000@ims.example.cn")
    assert inv.headers.get("P-Asserted-Identity") == "<sip:4008001234@ims.example.cn>"
    ringing = Response.for_request(inv, 180, to_tag="far1")
    ua.receive(ringing.serialize(), CARRIER, 0.2)
    ok = Response.for_request(inv, 200, to_tag="far1")
    ok.headers.add("Contact", "<sip:13800138000@198.51.100.1:5060>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = carrier_offer()  # an answer is an SDP like any other here
    ua.receive(ok.serialize(), CARRIER, 3.0)
    [ack] = out(ua)
    assert (ack.method, ack.cseq.seq, ack.to.tag) == ("ACK", 1, "far1")
    assert events(ua) == [Alerting(1), Connected(1)]
    assert [p for p, _ in ua.media_changes()] == [1]
    ua.receive(ok.serialize(), CARRIER, 3.5)  # our ACK was lost: the 2xx again, the ACK again
    assert statuses(out(ua)) == ["ACK"]
    ua.hangup(1, 16, 10.0)
    [bye] = out(ua)
    assert (bye.method, str(bye.uri), bye.headers.get("Reason")) == ("BYE", "sip:13800138000@198.51.100.1:5060",
                                                                     "Q.850;cause=16")
    assert events(ua) == [] and 1 not in ua.legs


@pytest.mark.parametrize("status, cause", [(486, 17), (404, 1), (480, 18), (503, 34), (603, 21)])
def test_outbound_refusals_map_to_q850(status, cause):
    ua = make()
    ua.dial(0, "110", 0.0)
    [inv] = out(ua)
    ua.receive(Response.for_request(inv, status, to_tag="x").serialize(), CARRIER, 0.5)
    assert statuses(out(ua)) == ["ACK"]  # the transaction ACKs a failure itself
    assert events(ua) == [Released(0, cause)] and 0 not in ua.legs


def test_hangup_before_the_answer_cancels():
    ua = make()
    ua.dial(0, "110", 0.0)
    [inv] = out(ua)
    ua.receive(Response.for_request(inv, 180, to_tag="x").serialize(), CARRIER, 0.5)
    ua.hangup(0, 16, 1.0)
    [cancel] = out(ua)
    assert (cancel.method, cancel.cseq.seq, cancel.via[0].branch) == ("CANCEL", 1, inv.via[0].branch)
    ua.receive(Response.for_request(inv, 487, to_tag="x").serialize(), CARRIER, 1.1)
    assert events(ua) == [Alerting(0)] and 0 not in ua.legs


def test_caller_cancels_before_the_answer():
    ua = make()
    inv = carrier_invite()
    ua.receive(inv.serialize(), CARRIER, 0.0)
    out(ua), events(ua)
    cancel = Request("CANCEL", inv.uri, [("Via", inv.headers.get("Via")), ("Max-Forwards", "70"),
                                         ("From", inv.headers.get("From")), ("To", inv.headers.get("To")),
                                         ("Call-ID", inv.call_id), ("CSeq", "10 CANCEL")])
    ua.receive(cancel.serialize(), CARRIER, 2.0)
    assert sorted(statuses(out(ua))) == [200, 487]
    assert events(ua) == [Released(0, 16)]


def test_busy_span_unusable_offer_and_strangers():
    ua = make()
    ua.receive(carrier_invite(body=carrier_offer(("PCMU",))).serialize(), CARRIER, 0.0)  # PCMU is fine
    ua.receive(carrier_invite(branch="z9hG4bKc2").serialize(), CARRIER, 0.0)
    ua.receive(carrier_invite(branch="z9hG4bKc3").serialize(), CARRIER, 0.0)  # no third trunk port
    assert statuses(out(ua)) == [100, 100, 100, 503]
    g729 = b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 30000 RTP/AVP 18\r\n"
    ua2 = make()
    ua2.receive(carrier_invite(body=g729).serialize(), CARRIER, 0.0)
    assert statuses(out(ua2)) == [100, 488] and events(ua2) == []
    ua3 = make()
    ua3.receive(carrier_invite().serialize(), ("203.0.113.66", 5060), 0.0)  # not the carrier, no registrar
    assert statuses(out(ua3)) == [100] and events(ua3) == [] and not ua3.legs


def test_commands_that_cannot_work_say_why():
    ua = make()
    with pytest.raises(DriverError, match="no inbound call to answer on SIP port 0"):
        ua.answer_call(0, 0.0)
    with pytest.raises(DriverError, match=r"cannot dial '1a': a number is one or more of 0-9 \* #"):
        ua.dial(0, "1a", 0.0)
    with pytest.raises(DriverError, match="cannot ring SIP port 0: only IP-phone seats ring"):
        ua.ring(0, None, 0.0)
    no_trunk = SipCalls(local=BOX, media_host=BOX[0], rtp_ports={0: 10000}, trunk_ports=[0], seats={})
    with pytest.raises(DriverError, match="no SIP trunk is configured"):
        no_trunk.dial(0, "110", 0.0)


def test_we_put_a_call_on_hold_and_take_it_off():
    ua = make()
    ua.dial(0, "13800138000", 0.0)
    [inv] = out(ua)
    ok = Response.for_request(inv, 200, to_tag="far1")
    ok.headers.add("Contact", "<sip:13800138000@198.51.100.1:5060>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = carrier_offer()
    ua.receive(ok.serialize(), CARRIER, 1.0)
    out(ua), events(ua), ua.media_changes()
    for on, ours, theirs in ((True, "sendonly", "recvonly"), (False, "sendrecv", "sendrecv")):
        ua.hold(0, on, 5.0)
        [re] = out(ua)
        assert (re.method, re.cseq.method) == ("INVITE", "INVITE") and re.to.tag == "far1"
        assert SessionDescription.parse(re.body).direction_of(SessionDescription.parse(re.body).media[0]) == ours
        reply = Response.for_request(re, 200)
        reply.headers.add("Content-Type", "application/sdp")
        reply.body = offer("198.51.100.7", 30000, direction=theirs, session_id=1, version=2).serialize()
        ua.receive(reply.serialize(), CARRIER, 5.1)
        [ack] = out(ua)
        assert (ack.method, ack.cseq.seq) == ("ACK", re.cseq.seq)
        [(port, media)] = ua.media_changes()
        assert (port, media.direction) == (0, ours)
    with pytest.raises(DriverError, match="no answered call on SIP port 1 to hold"):
        ua.hold(1, True, 6.0)


def test_a_challenged_invite_is_sent_again_with_credentials_once():
    from drivers.sip.digest import Credentials
    ua = make()
    ua.dial(0, "110", 0.0)
    [inv] = out(ua)
    challenge = Response.for_request(inv, 407, to_tag="x")
    challenge.headers.add("Proxy-Authenticate", 'Digest realm="ims.example.cn", nonce="n1", algorithm=MD5, qop="auth"')
    ua.receive(challenge.serialize(), CARRIER, 0.1)
    ack, again = out(ua)
    assert ack.method == "ACK" and again.method == "INVITE"
    assert again.cseq.seq == inv.cseq.seq + 1 and again.call_id == inv.call_id
    assert again.via[0].branch != inv.via[0].branch
    cred = Credentials.parse(again.headers.get("Proxy-Authorization"))
    assert cred.username == "4008001234" and cred.check("pw", "INVITE")
    ua.receive(Response.for_request(again, 407, to_tag="y").serialize(), CARRIER, 0.2)  # refused again: give up
    assert events(ua) == [Released(0, 21)] and 0 not in ua.legs
