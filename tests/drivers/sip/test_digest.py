"""Digest authentication: the RFCs' own examples, our nonces, and the guard against password guessing."""

from __future__ import annotations

import pytest

from appliance.errors import ProtocolError
from drivers.sip.digest import Challenge, Credentials, GuessingGuard, NonceIssuer, parse_params, response

RFC7616 = dict(username="Mufasa", realm="http-auth@example.org", password="Circle of Life", method="GET",
               uri="/dir/index.html", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop="auth",
               nc="00000001", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")


def test_rfc2617_example():
    assert response("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
                    "dcd98b7102dd2f0e8b11d0f600bfb0c093", "auth", "00000001",
                    "0a4f113b") == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("algorithm, expected", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_examples(algorithm, expected):
    v = RFC7616
    assert response(algorithm, v["username"], v["realm"], v["password"], v["method"], v["uri"], v["nonce"],
                    v["qop"], v["nc"], v["cnonce"]) == expected


def test_a_phones_authorization_header_parses_and_checks():
    header = ('Digest username="801",realm="cc.local",nonce="abc",uri="sip:cc.local",'
              'response="{}",algorithm=MD5,cnonce="0a4f113b",qop=auth,nc=00000001')
    good = response("MD5", "801", "cc.local", "s3cret", "REGISTER", "sip:cc.local", "abc", "auth", "00000001",
                    "0a4f113b")
    cred = Credentials.parse(header.format(good))
    assert (cred.username, cred.realm, cred.uri, cred.qop, cred.nc) == ("801", "cc.local", "sip:cc.local",
                                                                         "auth", "00000001")
    assert cred.check("s3cret", "REGISTER")
    assert not cred.check("s3cret", "INVITE") and not cred.check("guess", "REGISTER")
    assert Credentials.parse(cred.header()) == cred


def test_rfc2069_client_without_qop():
    r = response("MD5", "801", "cc.local", "pw", "INVITE", "sip:400@cc.local", "n1")
    cred = Credentials.parse(f'Digest username="801", realm="cc.local", nonce="n1", uri="sip:400@cc.local", '
                             f'response="{r.upper()}"')
    assert cred.qop is None and cred.check("pw", "INVITE")


def test_answering_a_carriers_challenge():
    ch = Challenge.parse('Digest realm="ims.chinatelecom.cn", nonce="Zm9v", algorithm=SHA-256, '
                         'qop="auth,auth-int", opaque="xyz"')
    assert (ch.realm, ch.algorithm, ch.qop, ch.opaque, ch.stale) == ("ims.chinatelecom.cn", "SHA-256",
                                                                     ("auth", "auth-int"), "xyz", False)
    cred = ch.answer("02788888888", "pw", "REGISTER", "sip:ims.chinatelecom.cn", nc=3, cnonce="c0ffee")
    assert (cred.nc, cred.cnonce, cred.qop, cred.opaque) == ("00000003", "c0ffee", "auth", "xyz")
    assert cred.check("pw", "REGISTER")
    h = cred.header()
    assert h.startswith('Digest username="02788888888", realm="ims.chinatelecom.cn", nonce="Zm9v"')
    assert "qop=auth, nc=00000003" in h and 'cnonce="c0ffee"' in h


def test_challenge_header_round_trip_and_quoting():
    ch = Challenge('cc "box"', "n0nce", "MD5", ("auth",), stale=True)
    assert ch.header() == 'Digest realm="cc \\"box\\"", nonce="n0nce", stale=true, algorithm=MD5, qop="auth"'
    assert Challenge.parse(ch.header()) == ch


@pytest.mark.parametrize("header, message", [
    ("", "authentication header is empty"),
    ('Basic realm="x"', "authentication scheme 'Basic' is not Digest"),
    ('Digest realm="x"', "digest challenge has no nonce"),
    ('Digest realm="x", nonce="y", algorithm=SHA-512', None),
    ('Digest realm="x" nonce="y"', "authentication parameters malformed"),
    ('Digest realm="x, nonce="y"', "authentication parameters malformed"),
])
def test_bad_challenges_are_refused_with_the_reason(header, message):
    if message is None:  # parses, but cannot be answered
        with pytest.raises(ProtocolError, match="digest algorithm 'SHA-512' is not supported"):
            Challenge.parse(header).answer("a", "b", "REGISTER", "sip:x")
        return
    with pytest.raises(ProtocolError, match=message):
        Challenge.parse(header)


def test_credentials_missing_fields_are_named():
    with pytest.raises(ProtocolError, match="digest credentials lack uri, response"):
        Credentials.parse('Digest username="1", realm="r", nonce="n"')
    with pytest.raises(ProtocolError, match="need nc and cnonce"):
        Credentials.parse('Digest username="1", realm="r", nonce="n", uri="u", response="0", qop=auth')


def test_parse_params_keeps_the_first_of_a_repeated_parameter():
    assert parse_params('Digest realm="a", REALM="b", nonce=x') == ("Digest", {"realm": "a", "nonce": "x"})


def test_nonces_are_ours_until_they_expire():
    issuer = NonceIssuer(b"0123456789abcdef", lifetime_s=300)
    n = issuer.issue(1000.0)
    assert issuer.check(n, 1000.0) == "ok" and issuer.check(n, 1299.0) == "ok"
    assert issuer.check(n, 1301.0) == "stale"
    other = NonceIssuer(b"fedcba9876543210").issue(1000.0)
    assert issuer.check(other, 1000.0) == "invalid"
    assert issuer.check("not base64!", 1000.0) == "invalid" and issuer.check("", 1000.0) == "invalid"
    tampered = n[:-4] + ("AAAA" if not n.endswith("AAAA") else "BBBB")
    assert issuer.check(tampered, 1000.0) == "invalid"
    with pytest.raises(ValueError):
        NonceIssuer(b"short")


def test_the_guard_blocks_a_guessing_source_for_a_while():
    g = GuessingGuard(max_failures=5, window_s=60, block_s=600)
    assert [g.failed("10.0.0.9", t) for t in (0, 10, 20, 30)] == [False] * 4
    assert g.failed("10.0.0.9", 40) is True  # the fifth within a minute: blocked, said once
    assert g.blocked("10.0.0.9", 41) and not g.blocked("10.0.0.8", 41)
    assert g.failed("10.0.0.9", 50) is False  # already blocked: not reported again
    assert g.blocked_sources(100) == {"10.0.0.9": 640}
    assert not g.blocked("10.0.0.9", 640) and g.blocked_sources(640) == {}


def test_slow_failures_and_successes_do_not_block():
    g = GuessingGuard(max_failures=3, window_s=60, block_s=600)
    assert not any(g.failed("p", t) for t in (0, 61, 122, 183))  # never 3 within a minute
    g.failed("q", 0)
    g.failed("q", 1)
    g.succeeded("q")  # the right password resets the count
    assert not g.failed("q", 2)
