"""The agents' registrar: Yealink and baresip REGISTERs, digests by hashlib and by our module, explicit time."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from appliance.errors import ConfigError
from drivers.sip.digest import Challenge, GuessingGuard, response
from drivers.sip.message import Request, Response, parse
from drivers.sip.registrar import Binding, Reachability, Registered, Registrar, SourceBlocked, Unregistered

DOMAIN = "cc.local"
SECRET = b"registrar-test-secret-0123456789"
USERS = {str(n): f"pw-{n}" for n in range(801, 807)}
YEALINK_NAT = ("203.0.113.7", 40123)  # the phone's address as the box sees it (behind a NAT)
BARESIP = ("192.0.2.30", 5060)
C801 = "sip:801@192.168.1.21:5060"
T0 = 10_000.0
_branches = itertools.count(1)


def wire(lines: list[str]) -> bytes:
    return "\r\n".join(lines).encode() + b"\r\n\r\n"


def yealink(ext="801", cseq=1, *, to=None, contact=None, expires="3600", auth=None,
            call_id="0_3431281424@192.168.1.21", extra=()) -> Request:
    """A Yealink SIP-T46S REGISTER, field for field as the phone writes it (``contact=""``: none, a query)."""
    contact = f"<sip:{ext}@192.168.1.21:5060>" if contact is None else contact
    lines = [f"REGISTER sip:{DOMAIN} SIP/2.0",
             f"Via: SIP/2.0/UDP 192.168.1.21:5060;branch=z9hG4bK{2110529345 + next(_branches)};rport",
             f'From: "Agent {ext}" <sip:{ext}@{DOMAIN}>;tag=1317458066',
             f'To: "Agent {ext}" <sip:{to or ext}@{DOMAIN}>', f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER",
             *([f"Contact: {contact}"] if contact else []), *([f"Authorization: {auth}"] if auth else []),
             "Max-Forwards: 70", "User-Agent: Yealink SIP-T46S 66.86.0.15",
             *([f"Expires: {expires}"] if expires is not None else []),
             "Allow: INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER, PUBLISH, "
             "UPDATE, MESSAGE", *extra, "Content-Length: 0"]
    return parse(wire(lines))


def baresip(ext="802", cseq=1, *, auth=None, expires=600) -> Request:
    """baresip 2.x: Request-URI with transport, the expiry on the Contact, no Expires header."""
    lines = [f"REGISTER sip:{DOMAIN};transport=udp SIP/2.0",
             f"Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bK{next(_branches):08x}e1d2;rport",
             f"Contact: <sip:{ext}-0x55d1c0@192.0.2.30:5060;transport=udp>;expires={expires}", "Max-Forwards: 70",
             f"To: <sip:{ext}@{DOMAIN}>", f"From: <sip:{ext}@{DOMAIN}>;tag=6b2e9a1f0c3d4e5a",
             "Call-ID: 9f1e2d3c4b5a6978", f"CSeq: {cseq} REGISTER", "User-Agent: baresip v2.12.0 (x86_64/linux)",
             "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER",
             "Supported: replaces,norefersub", *([f"Authorization: {auth}"] if auth else []), "Content-Length: 0"]
    return parse(wire(lines))


def by_hashlib(algorithm, user, realm, password, method, uri, nonce, nc, cnonce) -> str:
    """RFC 7616 §3.4.1 with qop=auth, written out with hashlib alone."""
    def hx(text: str) -> str:
        return hashlib.new({"MD5": "md5", "SHA-256": "sha256"}[algorithm], text.encode()).hexdigest()

    return hx(f"{hx(f'{user}:{realm}:{password}')}:{nonce}:{nc}:{cnonce}:auth:{hx(f'{method}:{uri}')}")


def answer(resp: Response, ext="801", password=None, *, method="REGISTER", uri=f"sip:{DOMAIN}",
           algorithm="MD5", nc="00000001", cnonce=None, user=None) -> str:
    """The Authorization value a phone sends for the challenge of ``algorithm`` in ``resp`` (a new cnonce)."""
    cnonce = cnonce or f"{next(_branches):08x}"
    name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
    [challenge] = [c for c in map(Challenge.parse, resp.headers.get_all(name)) if c.algorithm == algorithm]
    user, password = user or ext, USERS.get(ext, "x") if password is None else password
    digest = by_hashlib(algorithm, user, challenge.realm, password, method, uri, challenge.nonce, nc, cnonce)
    assert digest == response(algorithm, user, challenge.realm, password, method, uri, challenge.nonce, "auth",
                              nc, cnonce)
    return (f'Digest username="{user}", realm="{challenge.realm}", nonce="{challenge.nonce}", uri="{uri}", '
            f'response="{digest}", algorithm={algorithm}, cnonce="{cnonce}", qop=auth, nc={nc}')


def make(**kw) -> Registrar:
    return Registrar(DOMAIN, USERS, secret=SECRET, **kw)


def events(reg: Registrar) -> list:
    return list(iter(reg.next_event, None))


def register(reg, ext="801", now=T0, source=YEALINK_NAT, cseq=1, password=None, transport="UDP", **kw) -> Response:
    """The full exchange: REGISTER, 401, REGISTER with credentials (CSeq + 1); the final response."""
    challenge = reg.handle_register(yealink(ext, cseq, **kw), source, transport, now)
    assert challenge.status == 401
    return reg.handle_register(yealink(ext, cseq + 1, auth=answer(challenge, ext, password), **kw), source,
                               transport, now)


def contact_expires(resp: Response) -> dict[str, str]:
    return {str(c.uri): c.params["expires"] for c in resp.contacts}


# --- challenge and credentials -------------------------------------------------------------------------------

def test_yealink_md5_registration_from_behind_a_nat():
    reg, first = make(), yealink()
    challenge = reg.handle_register(first, YEALINK_NAT, "UDP", T0)
    assert challenge.status == 401 and challenge.reason == "Unauthorized"
    assert challenge.call_id == first.call_id and challenge.cseq == first.cseq and challenge.to.tag
    sha, md5 = map(Challenge.parse, challenge.headers.get_all("WWW-Authenticate"))
    assert (sha.algorithm, md5.algorithm) == ("SHA-256", "MD5")  # RFC 8760 §2.4: SHA-256 first
    assert sha.realm == md5.realm == DOMAIN and sha.nonce == md5.nonce and sha.qop == ("auth",)
    assert not sha.stale and reg.bindings("801", T0) == [] and events(reg) == []
    ok = reg.handle_register(yealink(cseq=2, auth=answer(challenge)), YEALINK_NAT, "UDP", T0 + 0.2)
    assert ok.status == 200 and ok.to.tag
    assert ok.headers.get_all("Contact") == ["<sip:801@192.168.1.21:5060>;expires=3600"]
    [b] = reg.bindings("801", T0 + 1)
    assert b == Binding("801", "sip:801@192.168.1.21:5060", YEALINK_NAT, "UDP", T0 + 3600.2,
                        "Yealink SIP-T46S 66.86.0.15", "0_3431281424@192.168.1.21", 2, "")
    assert reg.reachable("801", T0 + 1) and not reg.reachable("802", T0 + 1)
    assert events(reg) == [Registered("801", "sip:801@192.168.1.21:5060")]


def test_baresip_sha256_with_the_expiry_on_its_contact():
    reg = make()
    challenge = reg.handle_register(baresip(), BARESIP, "UDP", T0)
    auth = answer(challenge, "802", algorithm="SHA-256", uri=f"sip:{DOMAIN};transport=udp", cnonce="b7c1d2e3f4a5")
    assert len(auth.split('response="')[1].split('"')[0]) == 64
    ok = reg.handle_register(baresip(cseq=2, auth=auth), BARESIP, "UDP", T0)
    assert ok.status == 200 and contact_expires(ok) == {"sip:802-0x55d1c0@192.0.2.30:5060;transport=udp": "600"}
    assert reg.bindings("802", T0)[0].user_agent == "baresip v2.12.0 (x86_64/linux)"


def test_an_expired_nonce_of_ours_gets_stale_true_and_no_failure_is_counted():
    reg = make(guard=(guard := GuessingGuard(max_failures=1)))
    challenge = reg.handle_register(yealink(), YEALINK_NAT, "UDP", T0)
    late = reg.handle_register(yealink(cseq=2, auth=answer(challenge)), YEALINK_NAT, "UDP", T0 + 301)
    assert late.status == 401
    assert [Challenge.parse(v).stale for v in late.headers.get_all("WWW-Authenticate")] == [True, True]
    ok = reg.handle_register(yealink(cseq=3, auth=answer(late)), YEALINK_NAT, "UDP", T0 + 301.5)
    assert ok.status == 200 and not guard.blocked(YEALINK_NAT[0], T0 + 302)


def test_credentials_that_cannot_be_verified_are_challenged_again_and_not_counted():
    reg = make(algorithms=("SHA-256",), guard=GuessingGuard(max_failures=1))
    fake = ('Digest username="801", realm="cc.local", nonce="bm90LW91cnM=", uri="sip:cc.local", '
            'response="00000000000000000000000000000000", algorithm=SHA-256, cnonce="1", qop=auth, nc=00000001')
    challenge = reg.handle_register(yealink(auth=fake), YEALINK_NAT, "UDP", T0)  # a nonce that is not ours
    assert challenge.status == 401 and not Challenge.parse(challenge.headers.get("WWW-Authenticate")).stale
    assert [Challenge.parse(v).algorithm for v in challenge.headers.get_all("WWW-Authenticate")] == ["SHA-256"]
    md5 = answer(challenge, algorithm="SHA-256").replace("algorithm=SHA-256", "algorithm=MD5")  # not offered
    assert reg.handle_register(yealink(cseq=2, auth=md5), YEALINK_NAT, "UDP", T0).status == 401
    other_uri = answer(challenge, uri="sip:elsewhere.example", algorithm="SHA-256")
    assert reg.handle_register(yealink(cseq=3, auth=other_uri), YEALINK_NAT, "UDP", T0).status == 400
    auth = answer(challenge, algorithm="SHA-256")
    assert reg.handle_register(yealink(cseq=4, auth=auth), YEALINK_NAT, "UDP", T0).status == 200
    replay = reg.handle_register(yealink(cseq=5, auth=auth), ("198.51.100.9", 5060), "UDP", T0 + 1)
    assert replay.status == 401 and Challenge.parse(replay.headers.get("WWW-Authenticate")).stale  # seen before
    assert reg.bindings("801", T0 + 1)[0].source == YEALINK_NAT  # the guard (1 failure blocks) saw none of this


# --- whose extension -----------------------------------------------------------------------------------------

def test_another_extension_is_forbidden_an_unknown_one_not_found_and_require_unsupported():
    reg = make()
    for to, status in (("802", 403), ("999", 404)):
        challenge = reg.handle_register(yealink("801", to=to), YEALINK_NAT, "UDP", T0)
        assert challenge.status == 401  # even for 999: an anonymous scanner cannot list the extensions
        final = reg.handle_register(yealink("801", 2, to=to, auth=answer(challenge, "801")), YEALINK_NAT, "UDP", T0)
        assert final.status == status and reg.bindings(to, T0) == [] and reg.bindings("801", T0) == []
    resp = reg.handle_register(yealink(extra=["Require: path, gruu"]), YEALINK_NAT, "UDP", T0)
    assert resp.status == 420 and resp.headers.get("Unsupported") == "path, gruu"  # §10.3 step 2


# --- contacts and expiry ---------------------------------------------------------------------------------------

INSTANCE = ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-805EC0A1B2C3>";reg-id=1'


@pytest.mark.parametrize("params, expires, granted", [
    ("", "1800", "1800"),                 # the Expires header
    (";expires=120", "1800", "120"),      # the contact's parameter wins
    ("", None, "3600"),                   # neither: the default
    ("", "86400", "3600"),                # capped at max_expires
    (";expires=60", None, "60"),          # the minimum itself is fine
    (INSTANCE, "600", "600"),             # other header parameters come back in the 200
    ("", "30", None),                     # too brief: 423
    (";expires=59", "3600", None),
])
def test_expiry_of_a_binding(params, expires, granted):
    reg = make()
    resp = register(reg, contact=f"<sip:801@192.168.1.21:5060>{params}", expires=expires)
    if granted is None:
        assert resp.status == 423 and resp.reason == "Interval Too Brief" and resp.headers.get("Min-Expires") == "60"
        assert reg.bindings("801", T0) == []
    else:
        kept = INSTANCE if params == INSTANCE else ""
        assert resp.status == 200
        assert resp.headers.get_all("Contact") == [f"<sip:801@192.168.1.21:5060>{kept};expires={granted}"]


def test_several_contacts_a_query_and_the_remaining_time():
    reg = make()
    two = "<sip:801@192.168.1.21:5060>;expires=600, <sip:801@192.168.1.22:5060>"
    assert register(reg, contact=two, expires="1200").status == 200
    query = reg.handle_register(yealink(cseq=3, contact="", auth=None), YEALINK_NAT, "UDP", T0 + 100)
    assert query.status == 401  # even a query must authenticate
    query = reg.handle_register(yealink(cseq=4, contact="", auth=answer(query)), YEALINK_NAT, "UDP", T0 + 100)
    assert query.status == 200
    assert contact_expires(query) == {"sip:801@192.168.1.21:5060": "500", "sip:801@192.168.1.22:5060": "1100"}
    assert [e.contact for e in events(reg)] == ["sip:801@192.168.1.21:5060", "sip:801@192.168.1.22:5060"]


def test_a_refresh_updates_the_nat_address_and_a_zero_expiry_removes_one_contact():
    reg = make()
    register(reg, contact="<sip:801@192.168.1.21:5060>, <sip:801@192.168.1.22:5060>")
    events(reg)
    moved = ("203.0.113.7", 40999)  # the NAT gave the phone a new port
    ok = register(reg, cseq=3, source=moved, now=T0 + 50,
                  contact="<sip:801@192.168.1.21:5060>;expires=0, <sip:801@192.168.1.22:5060>")
    assert contact_expires(ok) == {"sip:801@192.168.1.22:5060": "3600"}
    [b] = reg.bindings("801", T0 + 50)
    assert b.source == moved and b.expires_at == T0 + 3650 and b.cseq == 4
    assert events(reg) == [Unregistered("801", "removed", "sip:801@192.168.1.21:5060")]  # a refresh is no event


def test_out_of_order_cseq_for_the_same_call_id_is_500_and_changes_nothing():
    reg = make()
    register(reg, cseq=10)
    challenge = reg.handle_register(yealink(cseq=5, expires="0"), YEALINK_NAT, "UDP", T0 + 1)
    for seq in (6, 11):  # lower than the binding's 11, then equal
        late = reg.handle_register(yealink(cseq=seq, expires="0", auth=answer(challenge)), YEALINK_NAT, "UDP", T0 + 1)
        assert late.status == 500
    assert len(reg.bindings("801", T0 + 1)) == 1
    # a new Call-ID (the phone rebooted) may start low again
    ok = register(reg, cseq=1, call_id="1_77@192.168.1.21", now=T0 + 2)
    assert ok.status == 200 and reg.bindings("801", T0 + 2)[0].call_id == "1_77@192.168.1.21"


def test_wildcard_with_expires_zero_removes_all_bindings_misused_400_old_cseq_500():
    reg = make()
    register(reg, contact="<sip:801@192.168.1.21:5060>, <sip:801@192.168.1.22:5060>")
    events(reg)
    ok = register(reg, cseq=3, contact="*", expires="0", now=T0 + 5)
    assert ok.status == 200 and ok.headers.get("Contact") is None and reg.bindings("801", T0 + 5) == []
    assert events(reg) == [Unregistered("801", "removed", "sip:801@192.168.1.21:5060"),
                           Unregistered("801", "removed", "sip:801@192.168.1.22:5060")]
    assert not reg.reachable("801", T0 + 5) and reg.next_deadline() is None
    register(reg, cseq=10, now=T0 + 5)
    for contact, expires in (("*", "3600"), ("*", None)):
        assert register(reg, cseq=20, contact=contact, expires=expires).status == 400
    parsed = yealink(cseq=31, auth=answer(reg.handle_register(yealink(cseq=30), YEALINK_NAT, "UDP", T0)), expires="0")
    # ``parse`` already refuses '*' among addresses; a Request built in memory reaches the registrar
    headers = [(n, v) for n, v in parsed.headers if n != "Contact"] + [("Contact", "*"),
                                                                        ("Contact", "<sip:801@192.168.1.21>")]
    resp = reg.handle_register(Request("REGISTER", str(parsed.uri), headers), YEALINK_NAT, "UDP", T0)
    assert resp.status == 400 and "'*' must be the only Contact value" in resp.reason
    assert register(reg, cseq=3, contact="*", expires="0").status == 500  # CSeq 4 < 11 of the same Call-ID
    assert len(reg.bindings("801", T0)) == 1


def test_bindings_expire_at_their_time():
    reg = make()
    register(reg, expires="120")
    register(reg, "803", source=("203.0.113.8", 5060), expires="600")
    events(reg)
    assert reg.next_deadline() == T0 + 30  # the first qualify comes before any expiry
    reg.handle_timer(T0 + 119.9)
    assert reg.bindings("801", T0 + 119.9) and events(reg) == []
    assert reg.bindings("801", T0 + 120) == []  # already gone for a query at that time
    assert not reg.reachable("801", T0 + 120) and reg.reachable("803", T0 + 120)
    register(reg, cseq=3, now=T0 + 130)  # handle_timer has not run: still a new binding, not a refresh
    assert events(reg) == [Unregistered("801", "expired", C801), Registered("801", C801)]
    reg.handle_timer(T0 + 600)
    assert events(reg) == [Unregistered("803", "expired", "sip:803@192.168.1.21:5060")]


# --- qualify ---------------------------------------------------------------------------------------------------

def test_qualify_makes_an_extension_unreachable_and_reachable_again():
    reg = make()
    register(reg)
    events(reg)
    assert reg.options_due(T0 + 29.9) == []
    [(options, addr, transport)] = reg.options_due(T0 + 30)
    assert (addr, transport) == (YEALINK_NAT, "UDP")  # to where the REGISTER came from, not the Contact
    assert options.method == "OPTIONS" and str(options.uri) == "sip:801@192.168.1.21:5060"
    assert str(options.to.uri) == "sip:801@cc.local" and options.from_.tag and options.via[0].wants_rport
    assert options.via[0].branch.startswith("z9hG4bK")
    assert reg.options_due(T0 + 45) == []  # one in flight at a time
    reg.options_result(options.call_id, True, T0 + 30.1)
    assert reg.next_deadline() == T0 + 60
    [(first, _, _)] = reg.options_due(T0 + 60)
    reg.options_result(first.call_id, False, T0 + 92)  # timer F: no answer
    assert reg.reachable("801", T0 + 92) and events(reg) == []  # one miss is not enough
    [(second, _, _)] = reg.options_due(T0 + 92)
    key = ("c", second.via[0].branch, "OPTIONS")  # the transaction key works as well as the Call-ID
    reg.options_result(key, False, T0 + 124)
    assert not reg.reachable("801", T0 + 124) and reg.bindings("801", T0 + 124)
    assert events(reg) == [Reachability("801", False)]
    reg.options_result(key, True, T0 + 125)  # a late report for a finished probe changes nothing
    assert not reg.reachable("801", T0 + 125)
    [(third, _, _)] = reg.options_due(T0 + 124)
    reg.options_result(third.call_id, True, T0 + 124.3)  # any response, even a 404, proves it is there
    assert reg.reachable("801", T0 + 125) and events(reg) == [Reachability("801", True)]


def test_a_register_brings_an_unreachable_phone_back():
    reg = make(qualify_misses=1)
    register(reg)
    [(opt, _, _)] = reg.options_due(T0 + 30)
    reg.options_result(opt.call_id, False, T0 + 62)
    assert not reg.reachable("801", T0 + 62)
    register(reg, cseq=3, now=T0 + 70)
    assert reg.reachable("801", T0 + 70)
    assert events(reg)[-2:] == [Reachability("801", False), Reachability("801", True)]


def test_tcp_binding_is_qualified_over_tcp():
    reg = make()
    register(reg, source=("192.0.2.21", 49152), transport="tcp")
    assert reg.bindings("801", T0)[0].transport == "TCP"
    [(opt, addr, transport)] = reg.options_due(T0 + 30)
    assert addr == ("192.0.2.21", 49152) and transport == "TCP" and opt.via[0].transport == "TCP"


# --- password guessing -----------------------------------------------------------------------------------------

def test_five_wrong_passwords_block_the_source_and_another_ip_still_registers():
    reg = make()
    attacker = ("198.51.100.66", 5060)
    challenge = reg.handle_register(yealink(), attacker, "UDP", T0)
    for n, user in enumerate(["801", "admin", "801", "1000"]):  # wrong passwords and unknown user names
        auth = answer(challenge, password=f"guess{n}", user=user)
        challenge = reg.handle_register(yealink(cseq=2 + n, auth=auth), attacker, "UDP", T0 + n)
        assert challenge.status == 401  # challenged again: a wrong password looks like an unknown user
    assert reg.handle_register(yealink(cseq=6, auth=answer(challenge, password="guess4")), attacker, "UDP",
                               T0 + 4) is None
    assert events(reg) == [SourceBlocked("198.51.100.66", T0 + 4 + 600)]
    # silence after, even for the right password, and for calls
    assert reg.handle_register(yealink(cseq=7), attacker, "UDP", T0 + 5) is None
    assert reg.handle_register(yealink(cseq=8, auth=answer(challenge)), attacker, "UDP", T0 + 5) is None
    assert reg.check_request(invite(), attacker, T0 + 5) is None
    assert reg.bindings("801", T0 + 5) == []
    # the real phone, elsewhere, is not affected
    assert register(reg, source=YEALINK_NAT, cseq=20, now=T0 + 6).status == 200
    assert register(reg, source=attacker, cseq=30, now=T0 + 605).status == 200  # the block ends


# --- other requests from phones ------------------------------------------------------------------------------

def invite(auth=None, number="013912345678") -> Request:
    return parse(wire([f"INVITE sip:{number}@{DOMAIN} SIP/2.0",
                       "Via: SIP/2.0/UDP 192.168.1.21:5060;branch=z9hG4bK1234567;rport",
                       f'From: "Agent 801" <sip:801@{DOMAIN}>;tag=2876543210', f"To: <sip:{number}@{DOMAIN}>",
                       "Call-ID: 2_1234567@192.168.1.21", f"CSeq: {1 if auth is None else 2} INVITE",
                       "Contact: <sip:801@192.168.1.21:5060>", "Max-Forwards: 70",
                       "User-Agent: Yealink SIP-T46S 66.86.0.15",
                       *([f"Proxy-Authorization: {auth}"] if auth else []), "Content-Length: 0"]))


def test_a_call_from_a_phone_is_challenged_with_407_then_gives_the_extension():
    reg = make()
    challenge = reg.check_request(invite(), YEALINK_NAT, T0)
    assert isinstance(challenge, Response) and challenge.status == 407
    assert [Challenge.parse(v).algorithm for v in challenge.headers.get_all("Proxy-Authenticate")] == ["SHA-256",
                                                                                                         "MD5"]
    uri = f"sip:013912345678@{DOMAIN}"
    auth = answer(challenge, method="INVITE", uri=uri, algorithm="SHA-256")
    assert reg.check_request(invite(auth), YEALINK_NAT, T0 + 1) == "801"
    wrong = answer(challenge, password="nope", method="INVITE", uri=uri)
    denied = reg.check_request(invite(wrong), YEALINK_NAT, T0 + 1)
    assert isinstance(denied, Response) and denied.status == 403
    # credentials computed for REGISTER do not open INVITE
    as_register = answer(challenge, method="REGISTER", uri=uri)
    assert reg.check_request(invite(as_register), YEALINK_NAT, T0 + 1).status == 403


def test_ack_and_cancel_are_never_authenticated_here():
    reg = make()
    for method in ("ACK", "CANCEL"):
        req = parse(wire([f"{method} sip:013912345678@cc.local SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1",
                          "From: <sip:801@cc.local>;tag=1", "To: <sip:013912345678@cc.local>", "Call-ID: x",
                          f"CSeq: 1 {method}", "Max-Forwards: 70", "Content-Length: 0"]))
        assert reg.check_request(req, YEALINK_NAT, T0) is None
    with pytest.raises(ValueError):
        reg.check_request(yealink(), YEALINK_NAT, T0)
    with pytest.raises(ValueError):
        reg.handle_register(invite(), YEALINK_NAT, "UDP", T0)


@pytest.mark.parametrize("kw, setting", [
    (dict(min_expires=0), "min_expires"), (dict(min_expires=600, default_expires=300), "min_expires"),
    (dict(algorithms=("SHA-512",)), "algorithms"), (dict(algorithms=()), "algorithms"),
    (dict(secret=b"short"), "secret"), (dict(qualify_every=0), "qualify_every"),
    (dict(qualify_misses=0), "qualify_misses"), (dict(users={"801": ""}), "users"),
    (dict(users={"80 1": "x"}), "users"), (dict(domain=""), "domain"),
])
def test_bad_settings_name_the_setting(kw, setting):
    args = dict(domain=DOMAIN, users=USERS, secret=SECRET) | kw
    with pytest.raises(ConfigError, match=setting):
        Registrar(args.pop("domain"), args.pop("users"), **args)
