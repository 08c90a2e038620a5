"""The box as the carrier's client: trunk registration, INVITE authorization, OPTIONS keepalive; explicit time.

The carrier's answers are written as bytes; the box's credentials are checked
with hashlib, independently of the digest module. The last tests put our own
registrar and a TrunkRegistration back to back through two TransactionLayers.
"""

from __future__ import annotations

import hashlib

import pytest

from appliance.errors import ConfigError, ProtocolError
from drivers.sip.digest import Credentials
from drivers.sip.message import Request, Response, parse
from drivers.sip.registrar import Reachability, Registered, Registrar
from drivers.sip.transaction import RequestReceived, ResponseReceived, TimedOut, TransactionLayer
from drivers.sip.trunk import HealthChanged, TrunkHealth, TrunkRegistration, authorize

CARRIER = "sip:ims.example.cn"
USER, PASSWORD = "02788886666", "Tr0nk-pw"
NONCE = "MTcwMDAwMDAwMDAwMDpiYjQ1ZTk5"
T0 = 5_000.0


def trunk(**kw) -> TrunkRegistration:
    return TrunkRegistration(CARRIER, USER, PASSWORD, local_host="192.0.2.10", local_port=5060, **kw)


def carrier(req: Request, status: int, *extra: str, reason: str | None = None) -> Response:
    """The carrier's response to ``req`` as bytes off the wire (Via stamped as a real server does)."""
    via = req.headers.get("Via").replace(";rport", ";rport=5060;received=192.0.2.10")
    text = reason or Response(status).reason
    lines = [f"SIP/2.0 {status} {text}", f"Via: {via}", f"From: {req.headers.get('From')}",
             f"To: {req.headers.get('To')};tag=sbc-{req.cseq.seq}", f"Call-ID: {req.call_id}",
             f"CSeq: {req.cseq.seq} {req.method}", *extra, "Server: Huawei SoftX3000", "Content-Length: 0"]
    return parse("\r\n".join(lines).encode() + b"\r\n\r\n")


def www(algorithm="MD5", nonce=NONCE, stale=False, header="WWW-Authenticate") -> str:
    return (f'{header}: Digest realm="ims.example.cn", nonce="{nonce}", opaque="5ccc069c403ebaf9f0171e9517f40e41", '
            f'algorithm={algorithm}, qop="auth"' + (", stale=true" if stale else ""))


def expected_response(cred: Credentials, password=PASSWORD, method="REGISTER", algorithm="MD5") -> str:
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def hx(text):
        return h(text.encode()).hexdigest()

    ha1, ha2 = hx(f"{cred.username}:{cred.realm}:{password}"), hx(f"{method}:{cred.uri}")
    return hx(f"{ha1}:{cred.nonce}:{cred.nc}:{cred.cnonce}:auth:{ha2}")


def registered(t: TrunkRegistration, now=T0, granted="Expires: 3600") -> Request:
    """Register through one 401 challenge; the authorized REGISTER."""
    first = t.start(now)
    again = t.on_response(carrier(first, 401, www()), now + 0.1)
    assert t.on_response(carrier(again, 200, f"Contact: <sip:{USER}@192.0.2.10:5060>;expires=3600", granted),
                         now + 0.2) is None
    return again


# --- registering -----------------------------------------------------------------------------------------------

def test_the_register_we_send():
    t = trunk()
    req = t.start(T0)
    assert t.state == "registering" and t.next_deadline() is None
    assert str(req.uri) == "sip:ims.example.cn" and req.method == "REGISTER"
    via = req.via[0]
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.10", 5060)
    assert via.wants_rport and via.branch.startswith("z9hG4bK")
    assert str(req.from_.uri) == str(req.to.uri) == f"sip:{USER}@ims.example.cn"
    assert req.from_.tag and req.to.tag is None
    assert req.headers.get("Contact") == f"<sip:{USER}@192.0.2.10:5060>"
    assert req.expires == 3600 and req.cseq.seq == 1 and req.max_forwards == 70
    assert "Authorization" not in req.headers
    assert parse(req.serialize()).serialize() == req.serialize()  # valid on the wire


def test_a_401_is_answered_with_md5_credentials_and_200_registers():
    t = trunk()
    first = t.start(T0)
    assert t.on_response(carrier(first, 100), T0) is None
    again = t.on_response(carrier(first, 401, www()), T0 + 0.1)
    assert again.call_id == first.call_id and again.cseq.seq == 2 and again.via[0].branch != first.via[0].branch
    assert again.from_.tag == first.from_.tag
    cred = Credentials.parse(again.headers.get("Authorization"))
    assert (cred.username, cred.realm, cred.nonce, cred.uri, cred.algorithm, cred.qop, cred.nc) == (
        USER, "ims.example.cn", NONCE, "sip:ims.example.cn", "MD5", "auth", "00000001")
    assert cred.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert cred.response == expected_response(cred) and cred.check(PASSWORD, "REGISTER")
    ok = carrier(again, 200, f"Contact: <sip:{USER}@192.0.2.10:5060>;expires=1800", "Expires: 3600")
    assert t.on_response(ok, T0 + 0.2) is None
    assert (t.state, t.reason, t.granted) == ("registered", "", 1800)  # our contact's expires wins
    assert t.next_deadline() == T0 + 0.2 + 900


def test_auth_username_differs_from_the_number():
    t = trunk(auth_username="auth-77", domain="ims.example.cn")
    again = t.on_response(carrier(t.start(T0), 401, www("SHA-256")), T0)
    cred = Credentials.parse(again.headers.get("Authorization"))
    assert cred.username == "auth-77" and cred.algorithm == "SHA-256"
    assert cred.response == expected_response(cred, algorithm="SHA-256")
    assert str(again.from_.uri) == f"sip:{USER}@ims.example.cn"


def test_the_first_challenge_we_support_is_answered():
    t = trunk()
    first = t.start(T0)
    resp = carrier(first, 401, www("SHA-512-256"), www("SHA-256"), www("MD5"))
    cred = Credentials.parse(t.on_response(resp, T0).headers.get("Authorization"))
    assert cred.algorithm == "SHA-256" and cred.response == expected_response(cred, algorithm="SHA-256")


def test_a_407_is_answered_with_proxy_authorization():
    t = trunk()
    again = t.on_response(carrier(t.start(T0), 407, www(header="Proxy-Authenticate")), T0)
    assert "Authorization" not in again.headers
    cred = Credentials.parse(again.headers.get("Proxy-Authorization"))
    assert cred.response == expected_response(cred)


def test_refresh_at_half_the_expiry_reuses_the_nonce_with_the_next_count():
    t = trunk()
    again = registered(t, granted="Expires: 600")  # the Contact says 3600 and wins over Expires
    assert t.next_deadline() == T0 + 0.2 + 1800
    assert t.handle_timer(T0 + 1800) is None
    refresh = t.handle_timer(T0 + 1800.2)
    assert refresh.call_id == again.call_id and refresh.cseq.seq == 3 and t.state == "registered"
    cred = Credentials.parse(refresh.headers.get("Authorization"))
    assert (cred.nonce, cred.nc) == (NONCE, "00000002") and cred.response == expected_response(cred)
    assert t.next_deadline() is None  # waiting for the answer
    # the carrier wants a new nonce: answered at once, not taken for a wrong password
    fresh = t.on_response(carrier(refresh, 401, www(nonce="bmV3LW5vbmNl")), T0 + 1800.3)
    cred = Credentials.parse(fresh.headers.get("Authorization"))
    assert (cred.nonce, cred.nc, fresh.cseq.seq) == ("bmV3LW5vbmNl", "00000001", 4)
    t.on_response(carrier(fresh, 200, "Expires: 1200"), T0 + 1800.4)
    assert t.granted == 1200 and t.next_deadline() == pytest.approx(T0 + 1800.4 + 600)


def test_a_second_401_that_is_not_stale_means_a_wrong_password():
    t = trunk()
    again = t.on_response(carrier(t.start(T0), 401, www()), T0)
    assert t.on_response(carrier(again, 401, www(nonce="b3RoZXI=")), T0 + 0.1) is None
    assert t.state == "failed" and "wrong user name or password" in t.reason
    assert t.next_deadline() == T0 + 0.1 + 30
    retry = t.handle_timer(T0 + 30.1)
    assert retry.cseq.seq == 3 and "Authorization" not in retry.headers and t.state == "registering"


def test_a_stale_nonce_is_answered_again():
    t = trunk()
    again = t.on_response(carrier(t.start(T0), 401, www()), T0)
    third = t.on_response(carrier(again, 401, www(nonce="c3RhbGU=", stale=True)), T0 + 0.1)
    assert Credentials.parse(third.headers.get("Authorization")).nonce == "c3RhbGU="
    t.on_response(carrier(third, 200, "Expires: 3600"), T0 + 0.2)
    assert t.state == "registered"


def test_failures_back_off_30_60_120_up_to_600_and_success_resets():
    t = trunk()
    now, req, delays = T0, t.start(T0), []
    answers = [403, 404, 500, None, 503, 480, 603]
    for status in answers:
        if status is None:
            t.timed_out(now)  # no answer at all
        else:
            assert t.on_response(carrier(req, status), now) is None
        assert t.state == "failed" and t.reason
        delays.append(t.next_deadline() - now)
        now = t.next_deadline()
        req = t.handle_timer(now)
    assert delays == [30, 60, 120, 240, 480, 600, 600]
    again = t.on_response(carrier(req, 401, www()), now)
    t.on_response(carrier(again, 200, "Expires: 3600"), now)
    t.timed_out(now + 1)  # nothing is waiting: ignored
    assert t.state == "registered"
    refresh = t.handle_timer(now + 1800)
    t.on_response(carrier(refresh, 403), now + 1800)
    assert t.next_deadline() == now + 1830 and t.reason == "403 Forbidden"


def test_retry_after_of_a_503_is_respected():
    t = trunk()
    t.on_response(carrier(t.start(T0), 503, "Retry-After: 300 (maintenance)"), T0)
    assert t.next_deadline() == T0 + 300


def test_423_raises_our_expiry_to_min_expires():
    t = trunk(expires=60)
    first = t.start(T0)
    again = t.on_response(carrier(first, 423, "Min-Expires: 600"), T0)
    assert again.expires == 600 and again.cseq.seq == 2 and t.expires == 600
    t.on_response(carrier(again, 200), T0 + 0.1)  # no Contact, no Expires: what we asked for
    assert t.granted == 600 and t.next_deadline() == T0 + 0.1 + 300
    assert t.handle_timer(T0 + 300.1).expires == 600


def test_423_without_a_higher_min_expires_fails():
    t = trunk()
    assert t.on_response(carrier(t.start(T0), 423, "Min-Expires: 60"), T0) is None
    assert t.state == "failed" and "423" in t.reason


def test_a_200_we_cannot_read_is_a_failure():
    t = trunk()
    assert t.on_response(carrier(t.start(T0), 200, "Expires: soon"), T0) is None
    assert t.state == "failed" and "cannot read" in t.reason and t.next_deadline() == T0 + 30


def test_answers_to_an_earlier_register_are_ignored():
    t = trunk()
    first = t.start(T0)
    second = t.on_response(carrier(first, 401, www()), T0)
    assert t.on_response(carrier(first, 200), T0) is None and t.state == "registering"
    assert t.on_response(carrier(second, 200), T0) is None and t.state == "registered"


def test_stop_unregisters_through_a_challenge():
    t = trunk()
    registered(t)
    bye = t.stop(T0 + 10)
    assert bye.expires == 0 and t.state == "unregistering" and t.next_deadline() is None
    assert Credentials.parse(bye.headers.get("Authorization")).nc == "00000002"
    again = t.on_response(carrier(bye, 401, www(nonce="bmV3")), T0 + 10.1)
    assert again.expires == 0 and Credentials.parse(again.headers.get("Authorization")).nonce == "bmV3"
    t.on_response(carrier(again, 200), T0 + 10.2)
    assert t.state == "stopped" and t.next_deadline() is None and t.handle_timer(T0 + 9999) is None


@pytest.mark.parametrize("kw, setting", [
    (dict(registrar_uri="sip:box@ims.example.cn"), "registrar_uri"), (dict(registrar_uri="http://x"), "registrar_uri"),
    (dict(username=""), "username"), (dict(transport="SCTP"), "transport"), (dict(local_port=0), "local_port"),
    (dict(expires=0), "expires"),
])
def test_bad_trunk_settings(kw, setting):
    args = dict(registrar_uri=CARRIER, username=USER, password=PASSWORD, local_host="192.0.2.10",
                local_port=5060) | kw
    with pytest.raises(ConfigError, match=setting):
        TrunkRegistration(args.pop("registrar_uri"), args.pop("username"), args.pop("password"), **args)


# --- calls to the trunk ----------------------------------------------------------------------------------------

def outbound_invite() -> Request:
    return Request("INVITE", "sip:013912345678@ims.example.cn", [
        ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport"), ("Max-Forwards", "70"),
        ("From", f"<sip:{USER}@ims.example.cn>;tag=box1"), ("To", "<sip:013912345678@ims.example.cn>"),
        ("Call-ID", "c1@192.0.2.10"), ("CSeq", "1 INVITE"), ("Contact", f"<sip:{USER}@192.0.2.10:5060>"),
        ("Content-Type", "application/sdp")], b"v=0\r\n")


@pytest.mark.parametrize("status, asks, answers", [(401, "WWW-Authenticate", "Authorization"),
                                                   (407, "Proxy-Authenticate", "Proxy-Authorization")])
def test_authorize_an_invite(status, asks, answers):
    inv = outbound_invite()
    again = authorize(inv, carrier(inv, status, www("SHA-256", header=asks)), USER, PASSWORD)
    assert again.method == "INVITE" and str(again.uri) == str(inv.uri) and again.body == inv.body
    assert again.cseq.seq == 2 and again.call_id == inv.call_id and again.from_.tag == "box1"
    assert again.via[0].branch != "z9hG4bKinv1" and again.via[0].branch.startswith("z9hG4bK")
    assert again.via[0].wants_rport and len(again.via) == 1
    cred = Credentials.parse(again.headers.get(answers))
    assert (cred.uri, cred.nc) == ("sip:013912345678@ims.example.cn", "00000001")
    assert cred.response == expected_response(cred, method="INVITE", algorithm="SHA-256")
    assert inv.cseq.seq == 1 and answers not in inv.headers  # the original is untouched
    # a second challenge of the same realm replaces the credentials, it does not add to them
    third = authorize(again, carrier(again, status, www(nonce="MjI=", header=asks)), USER, PASSWORD, nc=2)
    [value] = third.headers.get_all(answers)
    assert Credentials.parse(value).nonce == "MjI=" and Credentials.parse(value).nc == "00000002"


def test_authorize_needs_a_challenge_we_can_answer():
    inv = outbound_invite()
    with pytest.raises(ProtocolError):
        authorize(inv, carrier(inv, 401, 'WWW-Authenticate: Basic realm="x"'), USER, PASSWORD)
    with pytest.raises(ProtocolError):
        authorize(inv, carrier(inv, 486), USER, PASSWORD)


# --- keepalive -------------------------------------------------------------------------------------------------

def test_trunk_health_goes_down_after_three_misses_and_up_on_an_answer():
    h = TrunkHealth(interval=30.0, misses=3)
    assert h.up is None and h.due(T0)
    req = h.request(CARRIER, "192.0.2.10", 5060, T0, from_uri=f"sip:{USER}@ims.example.cn")
    assert req.method == "OPTIONS" and str(req.uri) == CARRIER and req.via[0].wants_rport
    assert not h.due(T0 + 40) and h.next_deadline() is None
    h.result(True, T0 + 0.1)
    assert h.up is True and h.next_event() == HealthChanged(True, T0 + 0.1) and h.next_event() is None
    assert not h.due(T0 + 29.9) and h.due(T0 + 30) and h.next_deadline() == T0 + 30
    now = T0 + 30
    for n in range(3):
        h.request(CARRIER, "192.0.2.10", 5060, now)
        now += 32
        h.result(False, now)
        assert h.up is (n < 2)
    assert h.next_event() == HealthChanged(False, T0 + 126) and h.next_event() is None
    h.request(CARRIER, "192.0.2.10", 5060, now)
    h.result(True, now + 0.05)
    assert h.up is True and h.missed == 0 and h.next_event() == HealthChanged(True, now + 0.05)


def test_trunk_health_settings():
    with pytest.raises(ConfigError, match="interval"):
        TrunkHealth(interval=0)
    with pytest.raises(ConfigError, match="misses"):
        TrunkHealth(misses=0)


# --- back to back: our trunk client registers with our registrar ---------------------------------------------

BOX_A, BOX_B = ("192.0.2.10", 5060), ("192.0.2.99", 5062)  # A registers (client), B is the registrar


def pump(a: TransactionLayer, b: TransactionLayer, now: float) -> None:
    """Deliver everything both layers want to send, both ways, until quiet."""
    while True:
        moved = False
        for src, dst, src_addr in ((a, b, BOX_A), (b, a, BOX_B)):
            for out in src.messages_to_send():
                dst.receive(out.data, src_addr, now, out.transport)
                moved = True
        if not moved:
            return


def test_trunk_registration_against_our_registrar_through_two_transaction_layers():
    registrar = Registrar("pbx.example", {"801": "pw-801"}, secret=b"b2b-secret-0123456789abcdef",
                          algorithms=("SHA-256", "MD5"))
    client = TrunkRegistration("sip:pbx.example", "801", "pw-801", local_host=BOX_A[0], local_port=BOX_A[1],
                               expires=400)
    a, b = TransactionLayer(), TransactionLayer()
    seen: list[int] = []

    def converse(first: Request, now: float) -> None:
        """Send ``first`` and play both sides until nobody has anything left to say."""
        a.send_request(first, BOX_B, now)
        busy = True
        while busy:
            pump(a, b, now)
            busy = False
            for ev in iter(b.next_event, None):
                assert isinstance(ev, RequestReceived) and ev.request.method == "REGISTER"
                b.respond(ev.key, registrar.handle_register(ev.request, ev.source, ev.transport, now), now)
                busy = True
            pump(a, b, now)
            for ev in iter(a.next_event, None):
                assert isinstance(ev, ResponseReceived)
                seen.append(ev.response.status)
                nxt = client.on_response(ev.response, now)
                if nxt is not None:
                    a.send_request(nxt, BOX_B, now)
                busy = True

    now = 100.0
    converse(client.start(now), now)  # REGISTER -> 401 -> REGISTER with SHA-256 credentials -> 200
    assert seen == [401, 200] and client.state == "registered" and client.granted == 400
    [binding] = registrar.bindings("801", now)
    assert binding.contact == "sip:801@192.0.2.10:5060" and binding.source == BOX_A and binding.transport == "UDP"
    assert registrar.next_event() == Registered("801", "sip:801@192.0.2.10:5060")

    now = client.next_deadline()  # 300: the nonce of 100 is 200 s old, still good: no new challenge
    assert now == pytest.approx(300.0)
    converse(client.handle_timer(now), now)
    assert seen[2:] == [200] and registrar.bindings("801", now)[0].expires_at == pytest.approx(now + 400)

    now = client.next_deadline()  # 500: that nonce is stale now; the registrar says so, the client answers
    converse(client.handle_timer(now), now)
    assert seen[3:] == [401, 200] and client.state == "registered"
    assert registrar.bindings("801", now)[0].cseq == 5 and registrar.next_event() is None

    # qualify: the registrar's OPTIONS reaches the client's side, which answers; then the client goes silent
    [(options, addr, transport)] = registrar.options_due(now + 30)
    key = b.send_request(options, addr, now + 30, transport)
    for o in b.messages_to_send():
        a.receive(o.data, BOX_B, now + 30, o.transport)
    [ev] = [e for e in iter(a.next_event, None)]
    assert isinstance(ev, RequestReceived) and ev.request.method == "OPTIONS"
    a.respond(ev.key, Response.for_request(ev.request, 200, to_tag="t1"), now + 30)
    pump(a, b, now + 30)
    [answered] = [e for e in iter(b.next_event, None)]
    assert isinstance(answered, ResponseReceived) and answered.key == key
    registrar.options_result(answered.key, True, now + 30)

    t = now + 60
    for _ in range(2):  # two OPTIONS lost: timer F fires after 32 s each
        [(options, addr, transport)] = registrar.options_due(t)
        b.send_request(options, addr, t, transport)
        b.messages_to_send()
        t += 32
        b.handle_timer(t)
        [timeout] = [e for e in iter(b.next_event, None)]
        assert isinstance(timeout, TimedOut)
        registrar.options_result(timeout.key, False, t)
    assert not registrar.reachable("801", t) and registrar.next_event() == Reachability("801", False)
