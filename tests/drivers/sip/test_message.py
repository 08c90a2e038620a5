"""SIP message parsing and serialization: real phone traffic, RFC 4475 torture messages, framing, limits."""

from __future__ import annotations

import pytest

from appliance.errors import ProtocolError
from drivers.sip.grammar import Params, split_commas
from drivers.sip.headers import CSeq, Headers, Via, canonical
from drivers.sip.message import MAX_MESSAGE, Request, Response, StreamParser, parse
from drivers.sip.uri import NameAddr, SipUri


def wire(lines: list[str], body: bytes = b"") -> bytes:
    """Header lines joined with CRLF, the empty line, then the body."""
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def sdp(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def torture_sdp(address: str, t: str = "0 0") -> bytes:
    """The SDP body most RFC 4475 messages carry."""
    return sdp("v=0", f"o=mhandley 29739 7272939 IN IP4 {address}", "s=-", f"c=IN IP4 {address}", f"t={t}",
               "m=audio 49217 RTP/AVP 0 12", "m=video 3227 RTP/AVP 31", "a=rtpmap:31 LPC")


def error_of(data: bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        parse(data)
    return str(info.value)


# --- real traffic ------------------------------------------------------------------------------------------------

YEALINK_SDP = sdp("v=0", "o=- 20008 20008 IN IP4 10.0.0.21", "s=SDP data", "c=IN IP4 10.0.0.21", "t=0 0",
                  "m=audio 11800 RTP/AVP 8 0 18 9 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
                  "a=rtpmap:18 G729/8000", "a=fmtp:18 annexb=no", "a=rtpmap:9 G722/8000", "a=fmtp:101 0-15",
                  "a=rtpmap:101 telephone-event/8000", "a=ptime:20", "a=sendrecv")
YEALINK_INVITE = wire([
    "INVITE sip:400@10.0.0.1 SIP/2.0",
    "Via: SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bK1833413052;rport",
    'From: "Agent 801" <sip:801@10.0.0.1>;tag=2087467896',
    "To: <sip:400@10.0.0.1>",
    "Call-ID: 1650287425@10.0.0.21",
    "CSeq: 1 INVITE",
    "Contact: <sip:801@10.0.0.21:5060>",
    "Content-Type: application/sdp",
    "Allow: INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER, PUBLISH, UPDATE, "
    "MESSAGE",
    "Max-Forwards: 70",
    "User-Agent: Yealink SIP-T46S 66.86.0.15",
    "Allow-Events: talk,hold,conference,refer,check-sync",
    "Supported: replaces",
    "Content-Length: 300",
], YEALINK_SDP)

BARESIP_SDP = sdp("v=0", "o=- 1975181172 1106161735 IN IP4 10.0.0.31", "s=-", "c=IN IP4 10.0.0.31", "t=0 0",
                  "a=tool:baresip 1.0.0", "m=audio 10002 RTP/AVP 8 0 101", "a=rtpmap:8 PCMA/8000",
                  "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=sendrecv",
                  "a=label:1", "a=rtcp-rsize", "a=ssrc:2736692082 cname:sip:2001@10.0.0.1", "a=ptime:20")
BARESIP_INVITE_TCP = wire([
    "INVITE sip:400@10.0.0.1:5060;transport=tcp SIP/2.0",
    "Via: SIP/2.0/TCP 10.0.0.31:38561;branch=z9hG4bK0a94555cd2c228dd;alias;rport",
    "Contact: <sip:2001-0x55dc09027150@10.0.0.31:38561;transport=tcp>",
    "Max-Forwards: 70",
    "To: <sip:400@10.0.0.1:5060;transport=tcp>",
    "From: <sip:2001@10.0.0.1>;tag=f9595791e9191927",
    "Call-ID: 8a1b3c5d7e9f0a2b",
    "CSeq: 59280 INVITE",
    "User-Agent: baresip v1.0.0 (x86_64/linux)",
    "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER",
    "Supported: replaces,norefersub",
    "Content-Type: application/sdp",
    "Content-Length: 322",
], BARESIP_SDP)

AUTHORIZATION = ('Digest username="801", realm="callcentre", nonce="6f1d2c3b4a59", uri="sip:10.0.0.1", '
                 'response="0a4f113b2f8e1d9c5b6a7e8f9d0c1b2a", algorithm=MD5')
REGISTER = wire([
    "REGISTER sip:10.0.0.1 SIP/2.0",
    "Via: SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bK2110529345;rport",
    'From: "Agent 801" <sip:801@10.0.0.1>;tag=1317458066',
    'To: "Agent 801" <sip:801@10.0.0.1>',
    "Call-ID: 0_3431281424@10.0.0.21",
    "CSeq: 2 REGISTER",
    'Contact: <sip:801@10.0.0.21:5060>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-805EC0A1B2C3>";reg-id=1',
    "Authorization: " + AUTHORIZATION,
    "Max-Forwards: 70",
    "User-Agent: Yealink SIP-T46S 66.86.0.15",
    "Expires: 3600",
    "Content-Length: 0",
])

WWW_AUTHENTICATE = 'Digest realm="callcentre", nonce="6f1d2c3b4a59", algorithm=MD5, qop="auth"'
UNAUTHORIZED = wire([
    "SIP/2.0 401 Unauthorized",
    "Via: SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bK1790813011;rport=5060;received=10.0.0.21",
    'From: "Agent 801" <sip:801@10.0.0.1>;tag=1317458066',
    'To: "Agent 801" <sip:801@10.0.0.1>;tag=as5c1e7e2a',
    "Call-ID: 0_3431281424@10.0.0.21",
    "CSeq: 1 REGISTER",
    "WWW-Authenticate: " + WWW_AUTHENTICATE,
    "Server: callcentre-appliance",
    "Content-Length: 0",
])


def test_yealink_invite_fields_and_exact_round_trip():
    msg = parse(YEALINK_INVITE)
    assert isinstance(msg, Request)
    assert (msg.method, str(msg.uri), msg.version) == ("INVITE", "sip:400@10.0.0.1", "SIP/2.0")
    (via,) = msg.via
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "10.0.0.21", 5060)
    assert (via.branch, via.wants_rport, via.rport, via.received) == ("z9hG4bK1833413052", True, None, None)
    assert (msg.from_.display, str(msg.from_.uri), msg.from_.tag) == ("Agent 801", "sip:801@10.0.0.1", "2087467896")
    assert (msg.to.display, str(msg.to.uri), msg.to.tag) == (None, "sip:400@10.0.0.1", None)
    assert msg.call_id == "1650287425@10.0.0.21"
    assert msg.cseq == CSeq(1, "INVITE")
    assert [str(c) for c in msg.contacts] == ["<sip:801@10.0.0.21:5060>"]
    assert msg.contacts[0].uri.port == 5060
    assert (msg.max_forwards, msg.content_length, msg.expires) == (70, 300, None)
    assert (msg.content_type, msg.media_type) == ("application/sdp", "application/sdp")
    assert msg.headers.values("Allow")[:3] == ["INVITE", "INFO", "PRACK"]
    assert len(msg.headers.values("Allow")) == 14
    assert msg.headers.values("Allow-Events") == ["talk", "hold", "conference", "refer", "check-sync"]
    assert msg.headers.get("user-agent") == "Yealink SIP-T46S 66.86.0.15"
    assert msg.body == YEALINK_SDP
    assert msg.serialize() == YEALINK_INVITE


def test_register_keeps_authorization_raw_and_parses_contact_params():
    msg = parse(REGISTER)
    assert msg.method == "REGISTER"
    assert msg.headers.get("Authorization") == AUTHORIZATION
    assert msg.headers.get_all("authorization") == [AUTHORIZATION]
    (contact,) = msg.contacts
    assert contact.params["+sip.instance"] == '"<urn:uuid:00000000-0000-1000-8000-805EC0A1B2C3>"'
    assert contact.params["REG-ID"] == "1"
    assert msg.expires == 3600
    assert msg.body == b""
    assert msg.serialize() == REGISTER


def test_401_keeps_www_authenticate_raw():
    msg = parse(UNAUTHORIZED)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (401, "Unauthorized")
    assert msg.headers.get("WWW-Authenticate") == WWW_AUTHENTICATE
    (via,) = msg.via
    assert (via.rport, via.received) == (5060, "10.0.0.21")
    assert msg.to.tag == "as5c1e7e2a"
    assert msg.cseq == CSeq(1, "REGISTER")
    assert msg.serialize() == UNAUTHORIZED


def test_responses_for_an_invite_copy_the_transaction_headers():
    invite = parse(YEALINK_INVITE)
    trying = Response.for_request(invite, 100, to_tag="ignored-on-100")
    assert trying.serialize() == wire([
        "SIP/2.0 100 Trying",
        "Via: SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bK1833413052;rport",
        'From: "Agent 801" <sip:801@10.0.0.1>;tag=2087467896',
        "To: <sip:400@10.0.0.1>",
        "Call-ID: 1650287425@10.0.0.21",
        "CSeq: 1 INVITE",
        "Content-Length: 0",
    ])
    ringing = Response.for_request(invite, 180, to_tag="a1b2c3")
    ringing.headers.add("Contact", NameAddr(SipUri.parse("sip:400@10.0.0.1:5060")))
    assert ringing.serialize() == wire([
        "SIP/2.0 180 Ringing",
        "Via: SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bK1833413052;rport",
        'From: "Agent 801" <sip:801@10.0.0.1>;tag=2087467896',
        "To: <sip:400@10.0.0.1>;tag=a1b2c3",
        "Call-ID: 1650287425@10.0.0.21",
        "CSeq: 1 INVITE",
        "Contact: <sip:400@10.0.0.1:5060>",
        "Content-Length: 0",
    ])
    body = sdp("v=0", "o=- 7 7 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0",
               "m=audio 20000 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
               "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv")
    ok = Response.for_request(invite, 200, to_tag="a1b2c3")
    ok.headers.add("Contact", "<sip:400@10.0.0.1:5060>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = body
    data = ok.serialize()
    assert data == wire([
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bK1833413052;rport",
        'From: "Agent 801" <sip:801@10.0.0.1>;tag=2087467896',
        "To: <sip:400@10.0.0.1>;tag=a1b2c3",
        "Call-ID: 1650287425@10.0.0.21",
        "CSeq: 1 INVITE",
        "Contact: <sip:400@10.0.0.1:5060>",
        "Content-Type: application/sdp",
        "Content-Length: 188",
    ], body)
    assert len(body) == 188
    again = parse(data)
    assert (again.status, again.to.tag, again.body) == (200, "a1b2c3", body)


def test_for_request_copies_every_via_in_order_and_keeps_an_existing_to_tag():
    bye = parse(wire([
        "BYE sip:801@10.0.0.21:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKproxy1, SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bKphone",
        "v: SIP/2.0/TCP 10.0.0.9;branch=z9hG4bKfirst",
        "f: <sip:400@10.0.0.1>;tag=a1b2c3",
        "t: <sip:801@10.0.0.1>;tag=2087467896",
        "i: 1650287425@10.0.0.21",
        "CSeq: 2 BYE",
        "Max-Forwards: 69",
        "Timestamp: 54",
        "l: 0",
    ]))
    ok = Response.for_request(bye, 200, to_tag="other")
    assert [v.branch for v in ok.via] == ["z9hG4bKproxy1", "z9hG4bKphone", "z9hG4bKfirst"]
    assert ok.headers.get_all("Via") == [
        "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKproxy1, SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bKphone",
        "SIP/2.0/TCP 10.0.0.9;branch=z9hG4bKfirst"]
    assert ok.to.tag == "2087467896"
    assert "Timestamp" not in ok.headers
    assert Response.for_request(bye, 100).headers.get("Timestamp") == "54"
    assert Response.for_request(bye, 486).reason == "Busy Here"
    assert Response.for_request(bye, 499).reason == "Client Error"
    assert Response.for_request(bye, 403, "Not Today").reason == "Not Today"


# --- building messages -------------------------------------------------------------------------------------------

def test_built_request_gets_content_length_and_header_editing():
    body = b"v=0\r\n"
    req = Request("INVITE", SipUri.parse("sip:801@10.0.0.2"), headers=[
        ("Via", Via(host="10.0.0.1", port=5060, params=Params({"branch": "z9hG4bKabc", "rport": None}))),
        ("Max-Forwards", 70),
        ("From", NameAddr(SipUri(user="400", host="10.0.0.1"), display='Queue "A"', params=Params({"tag": "x1"}))),
        ("To", "<sip:801@10.0.0.2>"),
        ("Call-ID", "c1@10.0.0.1"),
        ("CSeq", CSeq(1, "INVITE")),
    ], body=body)
    req.headers.add("Via", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKtop", top=True)
    req.headers.add("Subject", "call")
    req.headers.set("Max-Forwards", 69)
    assert req.headers.remove("subject") == 1
    req.validate()
    assert req.serialize() == wire([
        "INVITE sip:801@10.0.0.2 SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKtop",
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport",
        "Max-Forwards: 69",
        'From: "Queue \\"A\\"" <sip:400@10.0.0.1>;tag=x1',
        "To: <sip:801@10.0.0.2>",
        "Call-ID: c1@10.0.0.1",
        "CSeq: 1 INVITE",
        "Content-Length: 5",
    ], body)
    assert parse(req.serialize()).from_.display == 'Queue "A"'


def test_headers_set_replaces_every_field_of_a_name_in_place():
    headers = Headers([("Via", "a"), ("To", "t"), ("v", "b"), ("VIA", "c")])
    headers.set("Via", "z")
    assert list(headers) == [("Via", "z"), ("To", "t")]
    headers.set("Contact", "<sip:x@y>")
    assert list(headers) == [("Via", "z"), ("To", "t"), ("Contact", "<sip:x@y>")]
    assert headers.get("m") == "<sip:x@y>" and headers.get("Route") is None and "CONTACT" in headers
    with pytest.raises(ProtocolError, match=r"Subject header: value 'a\\r\\nVia: x' holds a CR or LF"):
        headers.add("Subject", "a\r\nVia: x")
    with pytest.raises(ProtocolError, match=r"header name 'Bad Name' is not a token"):
        headers.add("Bad Name", "x")


def test_editing_a_parsed_message_rewrites_only_what_changed():
    msg = parse(YEALINK_INVITE)
    msg.headers.set("Max-Forwards", 69)
    msg.body = b"v=0\r\n"
    msg.uri.params["transport"] = "udp"
    out = msg.serialize()
    assert out.startswith(b"INVITE sip:400@10.0.0.1;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.21:5060;")
    assert b"\r\nMax-Forwards: 69\r\n" in out and b"Max-Forwards: 70" not in out
    assert out.endswith(b"\r\nSupported: replaces\r\nContent-Length: 5\r\n\r\nv=0\r\n")


def test_requests_and_responses_refuse_bad_construction():
    with pytest.raises(ProtocolError, match=r"request method 'IN VITE' is not a token"):
        Request("IN VITE", "sip:a@b")
    with pytest.raises(ProtocolError, match=r"status code 700 is outside 100-699"):
        Response(700)
    with pytest.raises(ProtocolError, match=r"INVITE request lacks the mandatory headers To, From, CSeq, "
                                            r"Call-ID, Max-Forwards, Via"):
        Request("INVITE", "sip:a@b").validate()


# --- URIs, name-addr, Via, lists ---------------------------------------------------------------------------------

def test_sip_uri_parts_and_str():
    uri = SipUri.parse("sips:alice:secret@Example.COM:5061;transport=TLS;lr;Maddr=239.255.255.1?subject=hi&x=")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sips", "alice", "secret",
                                                                        "Example.COM", 5061)
    assert list(uri.params.items()) == [("transport", "TLS"), ("lr", None), ("Maddr", "239.255.255.1")]
    assert uri.params["maddr"] == "239.255.255.1" and "LR" in uri.params and uri.transport == "tls"
    assert uri.headers == {"subject": "hi", "x": ""}
    assert str(uri) == "sips:alice:secret@Example.COM:5061;transport=TLS;lr;Maddr=239.255.255.1?subject=hi&x="
    assert str(SipUri(user="801", host="10.0.0.2", port=5062)) == "sip:801@10.0.0.2:5062"
    tel = SipUri.parse("tel:+86-10-6552-1234;phone-context=+86")
    assert (tel.scheme, tel.user, tel.host, tel.params["phone-context"]) == ("tel", "+86-10-6552-1234", "", "+86")
    assert str(tel) == "tel:+86-10-6552-1234;phone-context=+86"


def test_ipv6_hosts():
    uri = SipUri.parse("sip:801@[2001:db8::21]:5070;transport=tcp")
    assert (uri.host, uri.port, str(uri)) == ("[2001:db8::21]", 5070, "sip:801@[2001:db8::21]:5070;transport=tcp")
    via = Via.parse("SIP/2.0/UDP [2001:db8::21]:5060;branch=z9hG4bKv6;received=[2001:db8::99]")
    assert (via.host, via.port, via.received) == ("[2001:db8::21]", 5060, "[2001:db8::99]")
    assert str(via) == "SIP/2.0/UDP [2001:db8::21]:5060;branch=z9hG4bKv6;received=[2001:db8::99]"
    with pytest.raises(ProtocolError, match=r"URI: at position 9 expected an IPv6 address inside '\[\.\.\.\]', "
                                            r"found 'z'"):
        SipUri.parse("sip:801@[zz::1]")
    with pytest.raises(ProtocolError, match=r"URI: at position 13 expected a port number 0-65535, found '7'"):
        SipUri.parse("sip:10.0.0.1:70000")


def test_display_names_with_escaped_quotes_and_backslashes():
    addr = NameAddr.parse(r'"Wang \"Xiao\" Ming \\ Sales" <sip:802@10.0.0.1>;tag=9a')
    assert addr.display == 'Wang "Xiao" Ming \\ Sales'
    assert str(addr) == r'"Wang \"Xiao\" Ming \\ Sales" <sip:802@10.0.0.1>;tag=9a'
    assert NameAddr.parse(str(addr)) == addr
    token = NameAddr.parse("Agent  801<sip:801@10.0.0.1;user=phone>")
    assert (token.display, token.uri.params["user"]) == ("Agent  801", "phone")
    bare = NameAddr.parse("sip:801@10.0.0.1;tag=77")
    assert (bare.display, bare.uri.params, bare.tag) == (None, Params(), "77")
    bare.tag = None
    assert str(bare) == "<sip:801@10.0.0.1>"
    with pytest.raises(ProtocolError, match=r"From: at position 18 expected a parameter name, found ';'"):
        NameAddr.parse('"Joe" <sip:joe@x>;;', "From")


def test_comma_splitting_respects_quotes_and_angle_brackets():
    value = '"Doe, John" <sip:a@example.com;x=1>, <sip:b,c@example.com?h=1>;q=0.5 , sip:c@example.com'
    assert split_commas(value, "Contact") == ['"Doe, John" <sip:a@example.com;x=1>',
                                              "<sip:b,c@example.com?h=1>;q=0.5", "sip:c@example.com"]
    assert split_commas("", "Supported") == []
    with pytest.raises(ProtocolError, match=r"Allow: element 2 of the comma-separated list is empty in "
                                            r"'INVITE, , BYE'"):
        split_commas("INVITE, , BYE", "Allow")
    msg = parse(wire(["REGISTER sip:10.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.21;branch=z9hG4bKr",
                      "From: <sip:801@10.0.0.1>;tag=1", "To: <sip:801@10.0.0.1>", "Call-ID: r1", "CSeq: 3 REGISTER",
                      "Max-Forwards: 70", "Contact: " + value, "Content-Length: 0"]))
    assert [c.display for c in msg.contacts] == ["Doe, John", None, None]
    assert [c.params.get("q") for c in msg.contacts] == [None, "0.5", None]


def test_contact_star_and_its_misuse():
    base = ["REGISTER sip:10.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.21;branch=z9hG4bKr",
            "From: <sip:801@10.0.0.1>;tag=1", "To: <sip:801@10.0.0.1>", "Call-ID: r1", "CSeq: 3 REGISTER",
            "Max-Forwards: 70", "Expires: 0"]
    assert parse(wire(base + ["Contact: *", "l: 0"])).contacts == "*"
    assert error_of(wire(base + ["Contact: *, <sip:801@10.0.0.21>", "l: 0"])) == (
        "Contact header (line 9): '*' must be the only Contact value, found it as value 1 of 2")


def test_via_parameters_and_errors():
    via = Via.parse("SIP/2.0/tls  proxy.example.com : 5061 ; Branch = z9hG4bK77 ; rport=40000 ; ttl=16")
    assert (via.transport, via.host, via.port, via.branch, via.rport, via.wants_rport) == (
        "TLS", "proxy.example.com", 5061, "z9hG4bK77", 40000, True)
    assert str(via) == "SIP/2.0/TLS proxy.example.com:5061;Branch=z9hG4bK77;rport=40000;ttl=16"
    with pytest.raises(ProtocolError, match=r"Via header: at position 11 expected white space before the sent-by "
                                            r"host, found the end"):
        Via.parse("SIP/2.0/UDP")
    with pytest.raises(ProtocolError, match=r"Via header: parameter rport='x' is not a number 0-65535"):
        Via.parse("SIP/2.0/UDP h;rport=x")


def test_compact_forms_are_found_by_full_name_and_kept_on_output():
    data = wire([
        "SUBSCRIBE sip:801@10.0.0.21 SIP/2.0",
        "v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsub",
        "f: <sip:400@10.0.0.1>;tag=s1",
        "t: <sip:801@10.0.0.21>",
        "i: sub-1@10.0.0.1",
        "CSeq: 1 SUBSCRIBE",
        "Max-Forwards: 70",
        "m: <sip:400@10.0.0.1>",
        "o: dialog",
        "u: talk, hold",
        "k: replaces",
        "x: 1800;refresher=uac",
        "r: <sip:402@10.0.0.1>",
        "b: <sip:801@10.0.0.1>",
        "s: queue status",
        "e: gzip",
        "c: application/dialog-info+xml",
        "l: 0",
    ])
    msg = parse(data)
    assert [canonical(name) for name, _ in msg.headers] == [
        "via", "from", "to", "call-id", "cseq", "max-forwards", "contact", "event", "allow-events", "supported",
        "session-expires", "refer-to", "referred-by", "subject", "content-encoding", "content-type",
        "content-length"]
    assert msg.headers.get("Event") == "dialog" and msg.headers.values("Allow-Events") == ["talk", "hold"]
    assert msg.headers.get("Session-Expires") == "1800;refresher=uac"
    assert msg.call_id == "sub-1@10.0.0.1" and msg.media_type == "application/dialog-info+xml"
    assert (msg.headers.get("Referred-By"), msg.headers.get("Subject")) == ("<sip:801@10.0.0.1>", "queue status")
    assert msg.serialize() == data


def test_folded_headers_are_unfolded_for_parsing_and_kept_for_output():
    data = wire([
        "OPTIONS sip:10.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.21:5060",
        "\t;branch=z9hG4bKfold",
        "From: <sip:801@10.0.0.1>",
        " ;tag=f1",
        "To: <sip:10.0.0.1>",
        "Call-ID: fold-1",
        "CSeq: 7",
        "    OPTIONS",
        "Max-Forwards: 70",
        "Subject: first line",
        " \t second line",
        "Content-Length: 0",
    ])
    msg = parse(data)
    assert msg.via[0].branch == "z9hG4bKfold" and msg.from_.tag == "f1" and msg.cseq == CSeq(7, "OPTIONS")
    assert msg.headers.get("Subject") == "first line second line"
    assert msg.serialize() == data
    assert error_of(b"OPTIONS sip:a@b SIP/2.0\r\n continued\r\n\r\n") == (
        "line 2: a continuation line (leading white space) before any header field")


def test_body_length_rules_for_datagrams():
    head = ["MESSAGE sip:801@10.0.0.21 SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKm",
            "From: <sip:400@10.0.0.1>;tag=m1", "To: <sip:801@10.0.0.21>", "Call-ID: m-1", "CSeq: 1 MESSAGE",
            "Max-Forwards: 70", "Content-Type: text/plain"]
    longer = parse(wire(head + ["Content-Length: 5"], b"hello, world"))
    assert longer.body == b"hello"
    assert longer.serialize() == wire(head + ["Content-Length: 5"], b"hello")
    assert error_of(wire(head + ["Content-Length: 50"], b"hello")) == (
        "the body has 5 bytes, fewer than Content-Length 50")
    without = wire(head, b"all of the datagram")
    msg = parse(without)
    assert (msg.body, msg.content_length, msg.serialize()) == (b"all of the datagram", None, without)
    msg.body = b"changed"
    assert msg.serialize() == wire(head + ["Content-Length: 7"], b"changed")
    assert error_of(wire(head + ["Content-Length: 5", "l: 5"], b"hello")) == (
        "l header (line 10): a second Content-Length header")


def test_mandatory_headers_and_cseq_method():
    full = ["ACK sip:801@10.0.0.21 SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa", "From: <sip:a@b>;tag=1",
            "To: <sip:c@d>;tag=2", "Call-ID: ack-1", "CSeq: 1 ACK", "Max-Forwards: 70", "Content-Length: 0"]
    assert parse(wire(full)).method == "ACK"
    for index, name in [(1, "Via"), (2, "From"), (3, "To"), (4, "Call-ID"), (5, "CSeq"), (6, "Max-Forwards")]:
        lines = full[:index] + full[index + 1:]
        assert error_of(wire(lines)) == f"ACK request lacks the mandatory header {name}"
    assert error_of(wire(full[:5] + ["CSeq: 1 INVITE"] + full[6:])) == (
        "CSeq header (line 6): method 'INVITE' does not match the request method 'ACK'")
    assert error_of(wire(full + ["To: <sip:e@f>"])) == "To header (line 9): a second To header; only one is allowed"
    assert error_of(wire(full[:6] + ["Max-Forwards: 256"] + full[7:])) == (
        "Max-Forwards header (line 7): 256 is larger than the maximum 255")
    assert error_of(wire(full[:4] + ["Call-ID: two words"] + full[5:])) == (
        "Call-ID header (line 5): expected word[@word] without white space, found 'two words'")
    response = ["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa", "From: <sip:a@b>;tag=1",
                "To: <sip:c@d>;tag=2", "Call-ID: r-1", "CSeq: 1 OPTIONS"]
    assert parse(wire(response)).status == 200
    assert error_of(wire(response[:1] + response[2:])) == "200 response lacks the mandatory header Via"


def test_start_line_and_framing_errors():
    assert parse(b"\r\n\r\n" + REGISTER).serialize() == REGISTER
    assert error_of(b"") == "no SIP message: the datagram is empty or holds only CR/LF (a keep-alive)"
    assert error_of(b"\r\n\r\n") == "no SIP message: the datagram is empty or holds only CR/LF (a keep-alive)"
    assert error_of(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n") == "no empty line (CRLF CRLF) ends the header section"
    assert error_of(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\nTo: y\r\n\r\n") == (
        "line 2: a bare CR or LF; lines end with CRLF")
    assert error_of(b"OPTIONS sip:a@b SIP/2.0\r\nNo colon here\r\n\r\n") == (
        "line 2: expected 'Name: value', found no ':' in 'No colon here'")
    assert error_of(b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n") == (
        "request line: expected the SIP version SIP/2.0, found 'HTTP/1.1'")
    assert error_of(b"SIP/2.0 20 OK\r\n\r\n") == (
        "status line: expected a three-digit status code 100-699 after 'SIP/2.0', found '20'")
    assert error_of(b"IN<VITE sip:a@b SIP/2.0\r\n\r\n") == "request line: method 'IN<VITE' is not a token"


# --- limits ------------------------------------------------------------------------------------------------------

MANDATORY = ["OPTIONS sip:10.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.21;branch=z9hG4bKl", "From: <sip:a@b>;tag=1",
             "To: <sip:c@d>", "Call-ID: limit-1", "CSeq: 1 OPTIONS", "Max-Forwards: 70"]


def test_limits_message_size_header_count_and_line_length():
    big = wire(MANDATORY + [f"Content-Length: {MAX_MESSAGE}"], b"x" * MAX_MESSAGE)
    assert error_of(big) == f"message of {len(big)} bytes is larger than the 65536-byte limit"
    hundred = MANDATORY + [f"X-Pad-{n}: {n}" for n in range(93)]
    assert len(parse(wire(hundred)).headers) == 99
    assert len(parse(wire(hundred + ["Content-Length: 0"])).headers) == 100
    assert error_of(wire(hundred + ["X-One-Too-Many: 1", "Content-Length: 0"])) == (
        "line 102: more than 100 header fields")
    line = "Subject: " + "x" * (8192 - 9)
    assert parse(wire(MANDATORY + [line])).headers.get("Subject") == "x" * 8183
    assert error_of(wire(MANDATORY + [line + "y"])) == "line 8: header field of 8193 bytes; the limit is 8192"
    folded = ["Subject: " + "x" * 5000, " " + "y" * 3500]
    assert error_of(wire(MANDATORY + folded)) == "line 8: header field of 8512 bytes; the limit is 8192"
    assert error_of(("OPTIONS sip:" + "a" * 8200 + " SIP/2.0\r\n\r\n").encode()) == (
        "start line is 8220 bytes long; the limit is 8192")


# --- TCP framing -------------------------------------------------------------------------------------------------

def test_stream_message_split_across_feeds_byte_by_byte():
    parser = StreamParser()
    out = []
    for i in range(len(BARESIP_INVITE_TCP)):
        out += parser.feed(BARESIP_INVITE_TCP[i:i + 1])
        if i < len(BARESIP_INVITE_TCP) - 1:
            assert out == []
    (msg,) = out
    assert (msg.method, msg.uri.transport, msg.via[0].transport, msg.via[0].port) == ("INVITE", "tcp", "TCP", 38561)
    assert "alias" in msg.via[0].params and msg.body == BARESIP_SDP
    assert msg.serialize() == BARESIP_INVITE_TCP


def test_stream_two_messages_in_one_feed_with_keepalives():
    register = REGISTER
    parser = StreamParser()
    assert parser.feed(b"\r\n\r\n") == []
    first = parser.feed(BARESIP_INVITE_TCP + b"\r\n\r\n" + register)
    assert [m.method for m in first] == ["INVITE", "REGISTER"]
    assert first[1].serialize() == register
    assert parser.feed(b"\r\n") == []
    assert parser.feed(BARESIP_INVITE_TCP[:100]) == []
    (last,) = parser.feed(BARESIP_INVITE_TCP[100:])
    assert last.serialize() == BARESIP_INVITE_TCP


def test_stream_errors_break_the_stream_and_keep_earlier_messages():
    parser = StreamParser()
    no_length = wire(MANDATORY)
    with pytest.raises(ProtocolError) as info:
        parser.feed(REGISTER + no_length)
    assert str(info.value) == "no Content-Length header; it is mandatory on stream transports (RFC 3261 §18.3)"
    assert [m.method for m in info.value.messages] == ["REGISTER"]
    with pytest.raises(ProtocolError, match=r"^the stream failed earlier: no Content-Length header"):
        parser.feed(REGISTER)
    parser = StreamParser()
    with pytest.raises(ProtocolError, match=r"^message of 65726 bytes is larger than the 65536-byte limit$"):
        parser.feed(wire(MANDATORY + ["Content-Length: 65536"]))
    parser = StreamParser()
    assert parser.feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 6000) == []
    with pytest.raises(ProtocolError, match=r"^no end of the header section within 65536 bytes$"):
        parser.feed(b"X: y\r\n" * 5000)


# --- RFC 4475 §3.1.1: valid messages parse and serialize to the same bytes -------------------------------------

WSINV = (
    b'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n'
    b'TO :\r\n'
    b' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n'
    b'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n'
    b'  ;\r\n'
    b'  tag = 98asjd8\r\n'
    b'MaX-fOrWaRdS: 0068\r\n'
    b'Call-ID: wsinv.ndaksdj@192.0.2.1\r\n'
    b'Content-Length   : 150\r\n'
    b'cseq: 0009\r\n'
    b'  INVITE\r\n'
    b'Via  : SIP  /   2.0\r\n'
    b' /UDP\r\n'
    b'    192.0.2.2;branch=390skdjuw\r\n'
    b's :\r\n'
    b'NewFangledHeader:   newfangled value\r\n'
    b' continued newfangled value\r\n'
    b'UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n'
    b'Content-Type: application/sdp\r\n'
    b'Route:\r\n'
    b' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n'
    b'v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n'
    b'  branch  =   z9hG4bK9ikj8  ,\r\n'
    b' SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n'
    b' z9hG4bK30239\r\n'
    b'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n'
    b'      newvalue ;\r\n'
    b'  secondparam ; q = 0.33\r\n'
    b'\r\n') + torture_sdp("192.0.2.3").replace(b"c=IN IP4 192.0.2.3", b"c=IN IP4 192.0.2.4")


def test_rfc4475_wsinv_short_tortuous_invite():
    msg = parse(WSINV)
    assert str(msg.uri) == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert (str(msg.to.uri), msg.to.tag) == ("sip:vivekg@chair-dnrc.example.com", "1918181833n")
    assert (msg.from_.display, msg.from_.tag) == ('J Rosenberg \\"', "98asjd8")
    assert (msg.max_forwards, msg.cseq, msg.call_id) == (68, CSeq(9, "INVITE"), "wsinv.ndaksdj@192.0.2.1")
    assert [(v.transport, v.host, v.branch) for v in msg.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"), ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239")]
    (contact,) = msg.contacts
    assert contact.display == 'Quoted string ""'
    assert list(contact.params.items()) == [("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")]
    (route,) = msg.routes
    assert list(route.uri.params) == ["lr", "unknownwith", "unknown-no-value"]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert len(msg.headers) == 14 and len(msg.body) == 150
    assert msg.serialize() == WSINV


INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,"
    b"weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>\r\n'
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
    b'"\xd1\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9";tag=_token~1\'+`*%!-.\r\n'
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n")


def test_rfc4475_intmeth_wide_range_of_valid_characters():
    msg = parse(INTMETH)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert (msg.uri.user, msg.uri.password, msg.uri.host) == (
        "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*", "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)",
        "example.com")
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.via[0].branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert msg.serialize() == INTMETH


ESC01 = wire([
    "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
    "To: sip:%75se%72@example.com",
    "From: <sip:I%20have%20spaces@example.net>;tag=938",
    "Max-Forwards: 87",
    "i: esc01.239409asdfakjkn23onasd0-3234",
    "CSeq: 234234 INVITE",
    "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
    "C: application/sdp",
    "Contact:",
    "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
    "Content-Length: 150",
], torture_sdp("192.0.2.1"))
ESCNULL = wire([
    "REGISTER sip:example.com SIP/2.0",
    "To: sip:null-%00-null@example.com",
    "From: sip:null-%00-null@example.com;tag=839923423",
    "Max-Forwards: 70",
    "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
    "CSeq: 14398234 REGISTER",
    "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
    "Contact: <sip:%00@host5.example.com>",
    "Contact: <sip:%00%00@host5.example.com>",
    "L:0",
])
ESC02 = wire([
    "RE%47IST%45R sip:registrar.example.com SIP/2.0",
    'To: "%Z%45" <sip:resource@example.com>',
    'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23',
    "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
    "Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234",
    "CSeq: 29344 RE%47IST%45R",
    "Max-Forwards: 70",
    "Contact: <sip:alias1@host1.example.com>",
    "C%6Fntact: <sip:alias2@host2.example.com>",
    "Contact: <sip:alias3@host3.example.com>",
    "l: 0",
])
LWSDISP = wire([
    "OPTIONS sip:user@example.com SIP/2.0",
    "To: sip:user@example.com",
    "From: caller<sip:caller@example.com>;tag=323",
    "Max-Forwards: 70",
    "Call-ID: lwsdisp.1234abcd@funky.example.com",
    "CSeq: 60 OPTIONS",
    "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw",
    "l: 0",
])


def test_rfc4475_escapes_kept_as_written():
    esc01 = parse(ESC01)
    assert (esc01.uri.user, esc01.uri.host) == ("sips%3Auser%40example.com", "example.net")
    assert esc01.to.uri.user == "%75se%72" and esc01.from_.uri.user == "I%20have%20spaces"
    assert list(esc01.contacts[0].uri.params.items()) == [("%6C%72", None), ("n%61me", "v%61lue%25%34%31")]
    assert (esc01.call_id, esc01.media_type) == ("esc01.239409asdfakjkn23onasd0-3234", "application/sdp")
    assert esc01.serialize() == ESC01
    escnull = parse(ESCNULL)
    assert [c.uri.user for c in escnull.contacts] == ["%00", "%00%00"]
    assert (escnull.to.uri.user, escnull.content_length) == ("null-%00-null", 0)
    assert escnull.serialize() == ESCNULL
    esc02 = parse(ESC02)
    assert esc02.method == "RE%47IST%45R" and esc02.to.display == "%Z%45"
    assert [str(c.uri) for c in esc02.contacts] == ["sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]
    assert esc02.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert esc02.serialize() == ESC02
    lwsdisp = parse(LWSDISP)
    assert (lwsdisp.from_.display, str(lwsdisp.from_.uri), lwsdisp.from_.tag) == (
        "caller", "sip:caller@example.com", "323")
    assert lwsdisp.serialize() == LWSDISP


def longreq() -> bytes:
    vias = [f"Via: SIP/2.0/TCP sip{n}.example.com" for n in (33, 30)]
    vias[1:1] = ["v: SIP/2.0/TCP sip32.example.com", "V: SIP/2.0/TCP sip31.example.com"]
    spellings = ["ViA", "VIa", "VIA", "via", "viA", "vIa", "vIA"]
    vias += [f"{s}: SIP/2.0/TCP sip{29 - i}.example.com" for i, s in enumerate(spellings)]
    vias += ["V :  SIP/2.0/TCP sip22.example.com", "v :  SIP/2.0/TCP sip21.example.com",
             "V  : SIP/2.0/TCP sip20.example.com", "v  : SIP/2.0/TCP sip19.example.com",
             "Via : SIP/2.0/TCP sip18.example.com", "Via  : SIP/2.0/TCP sip17.example.com"]
    vias += [f"Via: SIP/2.0/TCP sip{n}.example.com" for n in range(16, 0, -1)]
    caller = "amazinglylongcallername" * 5
    return wire([
        "INVITE sip:user@example.com SIP/2.0",
        f'To: "I have a user name of {"extreme" * 10} proportion"<sip:user@example.com:6000;unknownparam1=very'
        f'{"long" * 20}value;longparam{"name" * 25}=shortvalue;very{"long" * 25}ParameterNameWithNoValue>',
        f'F: sip:{caller}@example.net;tag=12{"982" * 50}424;unknownheaderparam{"name" * 20}=unknowheaderparam'
        f'{"value" * 15};unknownValueless{"paramname" * 10}',
        f'Call-ID: longreq.one{"really" * 20}longcallid',
        "CSeq: 3882340 INVITE",
        f'Unknown-{"Long" * 20}-Name: unknown-{"long" * 20}-value; unknown-{"long" * 20}-parameter-name = '
        f'unknown-{"long" * 20}-parameter-value',
        *vias,
        f'Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{"long" * 50}branchvalue',
        "Max-Forwards: 70",
        f"Contact: <sip:{caller}@host5.example.net>",
        "Content-Type: application/sdp",
        "l: 150",
    ], torture_sdp("192.0.2.1"))


def test_rfc4475_longreq_long_values_and_34_vias():
    data = longreq()
    msg = parse(data)
    vias = msg.via
    assert len(vias) == 34 and len(msg.headers) == 43
    assert [v.host for v in vias[:3]] == ["sip33.example.com", "sip32.example.com", "sip31.example.com"]
    assert vias[-1].received == "192.0.2.5" and vias[-1].branch == f'very{"long" * 50}branchvalue'
    assert msg.to.display == f'I have a user name of {"extreme" * 10} proportion'
    assert (msg.to.uri.port, msg.to.uri.params[f'very{"long" * 25}ParameterNameWithNoValue']) == (6000, None)
    assert msg.from_.tag == f'12{"982" * 50}424'
    assert f'unknownValueless{"paramname" * 10}' in msg.from_.params
    assert msg.call_id == f'longreq.one{"really" * 20}longcallid'
    assert msg.serialize() == data


DBLREQ_REGISTER = wire([
    "REGISTER sip:example.com SIP/2.0",
    "To: sip:j.user@example.com",
    "From: sip:j.user@example.com;tag=43251j3j324",
    "Max-Forwards: 8",
    "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412",
    "Contact: sip:j.user@host.example.com",
    "CSeq: 8 REGISTER",
    "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492",
    "Content-Length: 0",
])
DBLREQ = DBLREQ_REGISTER + wire([
    "INVITE sip:joe@example.com SIP/2.0",
    "t: sip:joe@example.com",
    "From: sip:caller@example.net;tag=141334",
    "Max-Forwards: 8",
    "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15",
    "CSeq: 8 INVITE",
    "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234",
    "Content-Type: application/sdp",
    "Content-Length: 150",
], torture_sdp("192.0.2.15").replace(b"m=video", b"m =video"))


def test_rfc4475_dblreq_extra_octets_after_content_length_are_dropped():
    msg = parse(DBLREQ)
    assert (msg.method, msg.body, msg.call_id) == ("REGISTER", b"", "dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    assert [str(c.uri) for c in msg.contacts] == ["sip:j.user@host.example.com"]
    assert msg.serialize() == DBLREQ_REGISTER


SEMIURI = wire([
    "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
    "To: sip:j_user@example.com",
    "From: sip:caller@example.org;tag=33242",
    "Max-Forwards: 3",
    "Call-ID: semiuri.0ha0isndaksdj",
    "CSeq: 8 OPTIONS",
    "Accept: application/sdp, application/pkcs7-mime,",
    "        multipart/mixed, multipart/signed,",
    "        message/sip, message/sipfrag",
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw",
    "l: 0",
])
TRANSPORTS = wire([
    "OPTIONS sip:user@example.com SIP/2.0",
    "To: sip:user@example.com",
    "From: <sip:caller@example.com>;tag=323",
    "Max-Forwards: 70",
    "Call-ID:  transports.kijh4akdnaqjkwendsasfdj",
    "Accept: application/sdp",
    "CSeq: 60 OPTIONS",
    "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw",
    "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
    "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj",
    "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
    "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee",
    "l: 0",
])


def test_rfc4475_semiuri_and_transports():
    semi = parse(SEMIURI)
    assert (semi.uri.user, semi.uri.host, semi.uri.params) == ("user;par=u%40example.net", "example.com", Params())
    assert semi.headers.values("Accept") == ["application/sdp", "application/pkcs7-mime", "multipart/mixed",
                                             "multipart/signed", "message/sip", "message/sipfrag"]
    assert semi.serialize() == SEMIURI
    transports = parse(TRANSPORTS)
    assert [v.transport for v in transports.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert transports.call_id == "transports.kijh4akdnaqjkwendsasfdj"
    assert transports.serialize() == TRANSPORTS


MULTIPART_BODY = (b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                  b"Hello\r\n--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\n\r\n"
                  b"\x00\x01\xfe\xff\r\n\r\nINVITE sip:not-a-message SIP/2.0\r\n\r\n--7a9cbec02ceef655--\r\n")
MPART01 = wire([
    "MESSAGE sip:kumiko@example.org SIP/2.0",
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport",
    "Max-Forwards: 70",
    "Route: <sip:127.0.0.1:5080>",
    "Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSD"
    "IGCDB9i3fqDQwTsWCWoXXeejvVPAAYwtO4IsTn4cRUAcNA8w2mtmqy8s3RHq8Tm0bK1XxMQ=",
    "Contact: <sip:fluffy@127.0.0.1:5070>",
    "To: <sip:kumiko@example.org>",
    "From: <sip:fluffy@example.com>;tag=2fb0dcc9",
    "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
    "CSeq: 1 MESSAGE",
    "Content-Transfer-Encoding: binary",
    "Content-Type: multipart/mixed;boundary=7a9cbec02ceef655",
    "Date: Sat, 15 Oct 2005 04:44:56 GMT",
    "User-Agent: SIPimp.org/0.2.5 (curses)",
    f"Content-Length: {len(MULTIPART_BODY)}",
], MULTIPART_BODY)


def test_rfc4475_mpart01_binary_multipart_body_kept_byte_for_byte():
    msg = parse(MPART01)
    assert msg.body == MULTIPART_BODY and msg.content_length == 218
    assert msg.media_type == "multipart/mixed" and msg.headers.get("y").startswith("r5mwreLuyDRYBi")
    assert msg.headers.get("Date") == "Sat, 15 Oct 2005 04:44:56 GMT"
    assert msg.serialize() == MPART01
    (again,) = StreamParser().feed(MPART01)
    assert again.body == MULTIPART_BODY


UNREASON_PHRASE = "= 2**3 * 5**2 но сто девяносто девять - простое"
UNREASON = wire([
    "SIP/2.0 200 " + UNREASON_PHRASE,
    "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
    "Call-ID: unreason.1234ksdfak3j2erwedfsASdf",
    "CSeq: 35 INVITE",
    "From: sip:user@example.com;tag=11141343",
    "To: sip:user@example.edu;tag=2229",
    "Content-Length: 154",
    "Content-Type: application/sdp",
    "Contact: <sip:user@host198.example.com>",
], torture_sdp("192.0.2.198"))
NOREASON = wire([
    "SIP/2.0 100 ",
    "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
    "Call-ID: noreason.asndj203insdf99223ndf",
    "CSeq: 35 INVITE",
    "From: <sip:user@example.com>;tag=39ansfi3",
    "To: <sip:user@example.edu>;tag=902jndnke3",
    "Content-Length: 0",
    "Contact: <sip:user@host105.example.com>",
])


def test_rfc4475_unusual_and_empty_reason_phrases():
    unreason = parse(UNREASON)
    assert (unreason.status, unreason.reason, len(unreason.body)) == (200, UNREASON_PHRASE, 154)
    assert unreason.serialize() == UNREASON
    noreason = parse(NOREASON)
    assert (noreason.status, noreason.reason) == (100, "")
    assert noreason.serialize() == NOREASON
    noreason.reason = "Trying"
    assert noreason.serialize().startswith(b"SIP/2.0 100 Trying\r\nVia: ")


# --- RFC 4475 §3.1.2 and §3.3: invalid messages raise a precise ProtocolError -----------------------------------

INVALID = {
    "badinv01": (wire([
        "INVITE sip:user@example.com SIP/2.0", "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=134161461246", "Max-Forwards: 7",
        "Call-ID: badinv01.0ha0isndaksdjasdf3234nas", "CSeq: 8 INVITE", "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
        'Contact: "Joe" <sip:joe@example.org>;;;;', "Content-Length: 152", "Content-Type: application/sdp",
    ], torture_sdp("192.0.2.15")),
        "Via header (line 7): element 3 of the comma-separated list is empty in 'SIP/2.0/UDP 192.0.2.15;;,;,,'"),
    "badinv01 Contact": (wire([
        "INVITE sip:user@example.com SIP/2.0", "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=134161461246", "Max-Forwards: 7",
        "Call-ID: badinv01.0ha0isndaksdjasdf3234nas", "CSeq: 8 INVITE", "Via: SIP/2.0/UDP 192.0.2.15",
        'Contact: "Joe" <sip:joe@example.org>;;;;', "Content-Length: 0",
    ]), "Contact header (line 8): at position 28 expected a parameter name, found ';', "
        "in '\"Joe\" <sip:joe@example.org>;;;;'"),
    "clerr": (wire([
        "INVITE sip:user@example.com SIP/2.0", "Max-Forwards: 80", "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=93942939o2", "Contact: <sip:caller@hungry.example.net>",
        "Call-ID: clerr.0ha0isndaksdjweiafasdk3", "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523", "Content-Type: application/sdp",
        "Content-Length: 9999",
    ], torture_sdp("192.0.2.155")), "the body has 154 bytes, fewer than Content-Length 9999"),
    "ncl": (wire([
        "INVITE sip:user@example.com SIP/2.0", "Max-Forwards: 254", "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=32394234", "Call-ID: ncl.0ha0isndaksdj2193423r542w35", "CSeq: 0 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw", "Contact: <sip:caller@example53.example.net>",
        "Content-Type: application/sdp", "Content-Length: -999",
    ], torture_sdp("192.0.2.53")),
        "Content-Length header (line 10): expected a non-negative decimal number, found '-999'"),
    "scalar02": (wire([
        "REGISTER sip:example.com SIP/2.0", "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3",
        "To: <sip:user@example.com>", "From: <sip:user@example.com>;tag=239232jh3",
        "CSeq: 36893488147419103232 REGISTER", "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
        "Max-Forwards: 300", "Expires: 1" + "0" * 100, "Contact: <sip:user@host129.example.com>",
        "  ;expires=280297596632815", "Content-Length: 0",
    ]), "CSeq header (line 5): 36893488147419103232 is larger than the maximum 4294967295"),
    "scalarlg": (wire([
        "SIP/2.0 503 Service Unavailable",
        "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129",
        "To: <sip:user@example.com>", "From: <sip:other@example.net>;tag=2easdjfejw",
        "CSeq: 9292394834772304023312 OPTIONS", "Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r",
        "Retry-After: 949302838503028349304023988", 'Warning: 1812 overture "In Progress"', "Content-Length: 0",
    ]), "CSeq header (line 5): 9292394834772304023312 is larger than the maximum 4294967295"),
    "quotbal": (wire([
        "INVITE sip:user@example.com SIP/2.0", 'To: "Mr. J. User <sip:j.user@example.com>',
        "From: sip:caller@example.net;tag=93334", "Max-Forwards: 10", "Call-ID: quotbal.aksdj",
        "Contact: <sip:caller@host59.example.net>", "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234", "Content-Type: application/sdp",
        "Content-Length: 152",
    ], torture_sdp("192.0.2.15")), "To header (line 2): at position 37 expected '\"' closing the quoted string "
                                   "opened at position 0, found the end, in '\"Mr. J. User <sip:j.user@example.com>'"),
    "ltgtruri": (wire([
        "INVITE <sip:user@example.com> SIP/2.0", "To: sip:user@example.com", "From: sip:caller@example.net;tag=39291",
        "Max-Forwards: 23", "Call-ID: ltgtruri.1@192.0.2.5", "CSeq: 1 INVITE", "Via: SIP/2.0/UDP 192.0.2.5",
        "Contact: <sip:caller@host5.example.net>", "Content-Type: application/sdp", "Content-Length: 159",
    ], torture_sdp("192.0.2.5", "3149328700 0")),
        "Request-URI: expected a URI starting with 'sip:', 'sips:' or 'tel:' (no '<>', no spaces), "
        "found '<sip:user@example.com>'"),
    "lwsruri": (wire([
        "INVITE sip:user@example.com; lr SIP/2.0", "To: sip:user@example.com;tag=3xfe-9921883-z9f",
        "From: sip:caller@example.net;tag=231413434", "Max-Forwards: 5",
        "Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423", "CSeq: 2130706432 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395", "Contact: <sip:caller@host1.example.net>",
        "Content-Type: application/sdp", "Content-Length: 159",
    ], torture_sdp("192.0.2.1", "3149328700 0")),
        "request line: expected 'METHOD Request-URI SIP/2.0', found 4 space-separated elements in "
        "'INVITE sip:user@example.com; lr SIP/2.0'"),
    "lwsstart": (wire([
        "INVITE  sip:user@example.com  SIP/2.0", "Max-Forwards: 8", "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=8814", "Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com",
        "CSeq: 1893884 INVITE", "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923",
        "Contact: <sip:caller@host1.example.net>", "Content-Type: application/sdp", "Content-Length: 150",
    ], torture_sdp("192.0.2.1")),
        "request line: more than one space at position 6 of 'INVITE  sip:user@example.com  SIP/2.0'; "
        "elements are separated by single spaces"),
    "trws": (wire([
        "OPTIONS sip:remote-target@example.com SIP/2.0  ",
        "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK299342093", "To: <sip:remote-target@example.com>",
        "From: <sip:local-resource@example.com>;tag=329429089", "Call-ID: trws.oicu34958239neffasdhr2345r",
        "Accept: application/sdp", "CSeq: 238923 OPTIONS", "Max-Forwards: 70", "Content-Length: 0",
    ]), "request line: white space at the end of 'OPTIONS sip:remote-target@example.com SIP/2.0  '"),
    "escruri": (wire([
        "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0", "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=341518", "Max-Forwards: 7", "Contact: <sip:caller@host39923.example.net>",
        "Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5", "CSeq: 149209342 INVITE",
        "Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw", "Content-Type: application/sdp",
        "Content-Length: 150",
    ], torture_sdp("192.0.2.1")),
        "Request-URI 'sip:user@example.com?Route=%3Csip:example.com%3E': headers ('?') are not allowed in a "
        "Request-URI (RFC 3261 §19.1.1)"),
    "regbadct": (wire([
        "REGISTER sip:example.com SIP/2.0", "To: sip:user@example.com", "From: sip:user@example.com;tag=998332",
        "Max-Forwards: 70", "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1", "CSeq: 1 REGISTER",
        "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw",
        "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E", "l: 0",
    ]), "Contact header (line 8): at position 20 expected '<...>' around a URI that holds '?' or ',' "
        "(RFC 3261 §20), found '?', in 'sip:user@example.com?Route=%3Csip:sip.example.com%3E'"),
    "badaspec": (wire([
        "OPTIONS sip:user@example.org SIP/2.0", "Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234",
        "Max-Forwards: 70", 'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423',
        'To: "Watson, Thomas" < sip:t.watson@example.org >', "Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3",
        "Accept: application/sdp", "CSeq: 3923239 OPTIONS", "l: 0",
    ]), "To header (line 5): at position 18 expected the URI right after '<' (no white space), found ' ', "
        "in '\"Watson, Thomas\" < sip:t.watson@example.org >'"),
    "baddn": (wire([
        "OPTIONS sip:t.watson@example.org SIP/2.0", "Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw",
        "Max-Forwards:      70", "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        "To:      Watson, Thomas <sip:t.watson@example.org>", "Call-ID: baddn.31415@c.example.com",
        "Accept: application/sdp", "CSeq:    3923239 OPTIONS", "l: 0",
    ]), "From header (line 4): at position 4 expected a display-name token, a quoted display name or '<', "
        "found ',', in 'Bell, Alexander <sip:a.g.bell@example.com>;tag=43'"),
    "badvers": (wire([
        "OPTIONS sip:t.watson@example.org SIP/7.0", "Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",
        "Max-Forwards:     70", "From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe",
        "To:      T. Watson <sip:t.watson@example.org>", "Call-ID: badvers.31417@c.example.com",
        "CSeq:    1 OPTIONS", "l: 0",
    ]), "request line: SIP version 'SIP/7.0' is not supported (expected SIP/2.0)"),
    "mismatch01": (wire([
        "OPTIONS sip:user@example.com SIP/2.0", "To: sip:j.user@example.com", "From: sip:caller@example.net;tag=34525",
        "Max-Forwards: 6", "Call-ID: mismatch01.dj0234sxdfl3", "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw", "l: 0",
    ]), "CSeq header (line 6): method 'INVITE' does not match the request method 'OPTIONS'"),
    "mismatch02": (wire([
        "NEWMETHOD sip:user@example.com SIP/2.0", "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=34525", "Max-Forwards: 6", "Call-ID: mismatch02.dj0234sxdfl3",
        "CSeq: 8 INVITE", "Contact: <sip:caller@host.example.net>",
        "Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw", "Content-Type: application/sdp", "l: 138",
    ], sdp("v=0", "o=mhandley 29739 7272939 IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1", "m=audio 49217 RTP/AVP 0 12",
           "m=video 3227 RTP/AVP 31", "a=rtpmap:31 LPC")),
        "CSeq header (line 6): method 'INVITE' does not match the request method 'NEWMETHOD'"),
    "bigcode": (wire([
        "SIP/2.0 4294967301 better not break the receiver", "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
        "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i", "CSeq: 353494 INVITE",
        "From: <sip:user@example.com>;tag=39ansfi3", "To: <sip:user@example.edu>;tag=902jndnke3",
        "Content-Length: 0", "Contact: <sip:user@host105.example.com>",
    ]), "status line: expected a three-digit status code 100-699 after 'SIP/2.0', found '4294967301'"),
    "insuf": (wire([
        "INVITE sip:user@example.com SIP/2.0", "CSeq: 193942 INVITE",
        "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf", "Content-Type: application/sdp", "l: 152",
    ], torture_sdp("192.0.2.95")), "INVITE request lacks the mandatory headers To, From, Call-ID, Max-Forwards"),
    "unkscm": (wire([
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0", "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=384", "Max-Forwards: 3", "Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34",
        "CSeq: 3923423 OPTIONS", "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234", "Content-Length: 0",
    ]), "Request-URI: URI scheme 'nobodyKnowsThisScheme' is not supported (expected sip, sips or tel) in "
        "'nobodyKnowsThisScheme:totallyopaquecontent'"),
    "novelsc": (wire([
        "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0", "To: sip:user@example.com",
        "From: sip:caller@example.net;tag=384", "Max-Forwards: 3", "Call-ID: novelsc.asdfasser0q239nwsdfasdkl34",
        "CSeq: 3923423 OPTIONS", "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234", "Content-Length: 0",
    ]), "Request-URI: URI scheme 'soap.beep' is not supported (expected sip, sips or tel) in "
        "'soap.beep://192.0.2.103:3002'"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_rfc4475_invalid_messages(name):
    data, message = INVALID[name]
    assert error_of(data) == message


@pytest.mark.parametrize("name", ["badinv01", "clerr", "quotbal", "lwsstart", "bigcode", "insuf"])
def test_rfc4475_invalid_messages_on_a_stream(name):
    data, message = INVALID[name]
    if name == "clerr":
        assert StreamParser().feed(data) == []  # waits for the 9999 bytes it was promised
        return
    with pytest.raises(ProtocolError) as info:
        StreamParser().feed(data)
    assert str(info.value) == message
