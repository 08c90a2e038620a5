"""Fuzzing the SIP stack: hypothesis properties of the parsers, then mangled traffic against the box's live port.

Properties (hypothesis, derandomized, no example database): whatever bytes arrive,
the parsers return a value or raise ``ProtocolError``, nothing else; well-formed
generated messages survive parse/serialize unchanged; the typed accessors of a
parsed message work or raise ``ProtocolError``; the transaction layer never
raises and counts what it drops. Mutations start from real messages (an INVITE
with SDP, a REGISTER with Authorization, a 200 OK): byte flips, insertions,
deletions, truncation, duplicated or removed lines, huge values, random header
names, non-UTF-8 bytes, CR/LF mixing, compact forms, tricky values.

The live test runs a real ``SipCard`` on 127.0.0.1 with a real ``SipTransport``,
sends it a few thousand mangled datagrams and some TCP garbage, then checks that
it still answers OPTIONS and that SIPp completes three normal calls into its trunk.

What the fuzzing found (and what was fixed for it) is pinned down at the end, in
explicit time on an in-memory network: INVITEs that could make no usable dialog
refused before they are offered, media at a host name refused, a port never taken
twice in one poll, an answer never acknowledged ending with a BYE.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from appliance.errors import DriverError, ProtocolError
from drivers.base import Released, Seized
from drivers.sip import digest
from drivers.sip.card import SipCard
from drivers.sip.digest import Challenge, Credentials
from drivers.sip.grammar import HOSTNAME, PASSWORD, TOKEN, URI_HEADER, URI_PARAM, USER, is_number
from drivers.sip.headers import COMPACT_FORMS, canonical
from drivers.sip.message import Request, Response, StreamParser, parse
from drivers.sip.sdp import SessionDescription, answer, negotiated
from drivers.sip.transaction import RequestReceived, TransactionLayer
from drivers.sip.uri import NameAddr, SipUri
from tests.drivers.sip.test_sip_card import Net
from tests.tools import require_tool

HOST = "127.0.0.1"

# Hypothesis's pytest plugin writes a cache of constants while it collects, into ./.hypothesis unless told
# otherwise; keep it (and anything else hypothesis stores) out of the checkout. No example database at all:
# every property below says database=None.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "callcentre-appliance-hypothesis")


def fuzz_settings(examples: int) -> settings:
    """Reproducible (derandomized), no example database in the checkout, no per-example deadline."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# --- real messages to start from -----------------------------------------------------------------------------------

def wire(lines: list[str], body: bytes = b"") -> bytes:
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


SDP = ("v=0\r\no=- 20008 20008 IN IP4 10.0.0.21\r\ns=SDP data\r\nc=IN IP4 10.0.0.21\r\nt=0 0\r\n"
       "m=audio 11800 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
       "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n").encode()
AUTHORIZATION = ('Digest username="801", realm="callcentre", nonce="6f1d2c3b4a59", uri="sip:10.0.0.1", '
                 'response="0a4f113b2f8e1d9c5b6a7e8f9d0c1b2a", algorithm=MD5, qop=auth, nc=00000001, '
                 'cnonce="0a4f113b"')
WWW_AUTHENTICATE = 'Digest realm="callcentre", nonce="6f1d2c3b4a59", algorithm=MD5, qop="auth", opaque="x"'


def invite(port: int = 5060, host: str = "10.0.0.21", body: bytes = SDP) -> bytes:
    return wire([
        "INVITE sip:400@10.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK1833413052;rport",
        'From: "Agent 801" <sip:801@10.0.0.1>;tag=2087467896',
        "To: <sip:400@10.0.0.1>",
        f"Call-ID: 1650287425@{host}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:801@{host}:{port}>",
        "Record-Route: <sip:10.0.0.9;lr>, <sip:10.0.0.8;lr>",
        "Content-Type: application/sdp",
        "Allow: INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER",
        "Max-Forwards: 70",
        "P-Asserted-Identity: <sip:13912345678@10.0.0.1>",
        "Supported: replaces",
        f"Content-Length: {len(body)}",
    ], body)


def register(port: int = 5060, host: str = "10.0.0.21") -> bytes:
    return wire([
        "REGISTER sip:10.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK2110529345;rport",
        'From: "Agent 801" <sip:801@10.0.0.1>;tag=1317458066',
        'To: "Agent 801" <sip:801@10.0.0.1>',
        f"Call-ID: 0_3431281424@{host}",
        "CSeq: 2 REGISTER",
        f'Contact: <sip:801@{host}:{port}>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-805EC0A1B2C3>";reg-id=1',
        "Authorization: " + AUTHORIZATION,
        "Max-Forwards: 70",
        "Expires: 3600",
        "Content-Length: 0",
    ])


def ok_200(port: int = 5060, host: str = "10.0.0.21", body: bytes = SDP) -> bytes:
    return wire([
        "SIP/2.0 200 OK",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK1833413052;rport=5060;received=10.0.0.21",
        'From: "Agent 801" <sip:801@10.0.0.1>;tag=2087467896',
        "To: <sip:400@10.0.0.1>;tag=as5c1e7e2a",
        f"Call-ID: 1650287425@{host}",
        "CSeq: 1 INVITE",
        "Contact: <sip:400@10.0.0.1:5060>",
        "Record-Route: <sip:10.0.0.9;lr>",
        "WWW-Authenticate: " + WWW_AUTHENTICATE,
        "Expires: 60",
        "Content-Type: application/sdp",
        f"Content-Length: {len(body)}",
    ], body)


def in_dialog(method: str, port: int = 5060, host: str = "10.0.0.21", cseq: int = 2) -> bytes:
    """OPTIONS, BYE, ACK or CANCEL of the INVITE above's call."""
    to = "<sip:400@10.0.0.1>" + ("" if method in ("OPTIONS", "CANCEL") else ";tag=as5c1e7e2a")
    seq = 1 if method in ("ACK", "CANCEL") else cseq
    branch = "z9hG4bK1833413052" if method == "CANCEL" else f"z9hG4bK{method.lower()}{seq}"
    return wire([
        f"{method} sip:400@10.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
        "Max-Forwards: 70",
        'From: "Agent 801" <sip:801@10.0.0.1>;tag=2087467896',
        f"To: {to}",
        f"Call-ID: 1650287425@{host}",
        f"CSeq: {seq} {method}",
        "Reason: Q.850;cause=16",
        "Content-Length: 0",
    ])


SEEDS = [invite(), register(), ok_200()]


def local_sdp(rtp_port: int) -> bytes:
    """The seed SDP pointing at ``127.0.0.1:rtp_port``: any RTP the box sends lands on our own socket."""
    return SDP.replace(b"10.0.0.21", HOST.encode()).replace(b"11800", str(rtp_port).encode())

# values that have broken parsers elsewhere: unicode digits, floats, brackets, escapes, empties
TRICKY = ["", " ", "0", "-1", "+1", "00000000000000000000001", "99999999999999999999", "4294967296", "65536",
          "\u00b2", "\u0661\u0662", "\uff11", "1.5", "1e9", "inf", "nan", "<", ">", "<>", '"', '"\\', "\\",
          "<sip:", "sip:", "sip:[::1", "sip:[zz]:5060", "sips:a@[::1]:99999", "tel:", "tel:+1;x=", ",", ",,", "*",
          "*, <sip:a@b>", ";", ";;", ";tag", ";tag=", "a@b@c", "%", "%zz", "%4", "\x00", "\x7f", "\u00e9",
          "\udcff", "SIP/2.0/UDP", "SIP/2.0/UDP [::1", "SIP/2.0/UDP h;rport=\u00b2", "SIP/2.0/UDP h;branch",
          "z9hG4bK", "1 INVITE", "1  INVITE", "\u00b2 INVITE", "Digest", 'Digest realm="', "Digest a=b,,c=d",
          'Digest realm="r", nonce="n", qop="auth-int"', "application/sdp", "a" * 9000]
COMPACT = {full.lower(): short for short, full in COMPACT_FORMS.items()}


# --- mutations (a random.Random picks them: hypothesis's own in the properties, a seeded one live) -------------

def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), (sep + body)


def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def _flip(rng, data):
    if not data:
        return data
    i = rng.randrange(len(data))
    value = data[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.6 else rng.randrange(256)
    return data[:i] + bytes([value]) + data[i + 1:]


def _insert(rng, data):
    i = _pos(rng, data)
    junk = rng.choice([bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17))),
                       rng.choice([b":", b";", b",", b"<", b">", b'"', b"@", b" ", b"\t", b"=", b"%", b"\x00"])])
    return data[:i] + junk + data[i:]


def _delete(rng, data):
    i = _pos(rng, data)
    return data[:i] + data[i + rng.randrange(1, 40):]


def _truncate(rng, data):
    return data[:_pos(rng, data)]


def _duplicate_line(rng, data):
    lines, rest = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return b"\r\n".join(lines) + rest


def _remove_line(rng, data):
    lines, rest = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\r\n".join(lines) + rest


def _huge(rng, data):
    lines, rest = _lines(data)
    size = rng.choice([1000, 8180, 8200, 20000, 70000])
    if rng.random() < 0.5 and len(lines) > 1:  # an existing header grows
        i = rng.randrange(1, len(lines))
        lines[i] += b"x" * size
    else:
        lines.insert(rng.randrange(1, len(lines) + 1), b"X-Huge: " + b"a" * size)
    if rng.random() < 0.2:
        lines[1:1] = [b"X-Many: %d" % n for n in range(rng.choice([50, 99, 101, 150]))]
    return b"\r\n".join(lines) + rest


def _header_name(rng, data):
    lines, rest = _lines(data)
    name = rng.choice([
        "".join(rng.choice(sorted(TOKEN)) for _ in range(rng.randrange(1, 12))).encode(),
        bytes(rng.randrange(256) for _ in range(rng.randrange(0, 8))),
        rng.choice([b"v", b"f", b"t", b"i", b"m", b"l", b"c", b"VIA", b"cSeQ", b"Content-Length", b"Expires",
                    b"Max-Forwards", b"Contact", b"Route", b"Record-Route", b"Call-ID", b"From", b"To"])])
    value = rng.choice(TRICKY).encode("utf-8", "surrogateescape")
    sep = rng.choice([b": ", b":", b" : ", b"\t:\t", b""])
    lines.insert(rng.randrange(1, len(lines) + 1), name + sep + value)
    return b"\r\n".join(lines) + rest


def _non_utf8(rng, data):
    i = _pos(rng, data)
    junk = rng.choice([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80\x80",
                       b"\xc2\xb2", b"\xef\xbc\x91"])
    return data[:i] + junk + data[i:]


def _crlf(rng, data):
    spots = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\r\n"]
    if not spots:
        return data + b"\r\n"
    i = rng.choice(spots)
    new = rng.choice([b"\n", b"\r", b"\n\r", b"\r\r\n", b"\r\n\r\n", b"\r\n ", b"\r\n\t", b""])
    return data[:i] + new + data[i + 2:]


def _compact(rng, data):
    lines, rest = _lines(data)
    out = [lines[0]]
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        text = name.decode("latin-1")
        if colon and rng.random() < 0.5:
            full = canonical(text.strip())
            text = COMPACT.get(full) if full in COMPACT and rng.random() < 0.6 else \
                "".join((c.upper() if rng.random() < 0.5 else c.lower()) if c.isascii() else c for c in text)
            if rng.random() < 0.2:
                text += rng.choice([" ", "\t", "  "])
        out.append(text.encode("latin-1") + colon + value)
    return b"\r\n".join(out) + rest


def _tricky_value(rng, data):
    lines, rest = _lines(data)
    i = rng.randrange(len(lines))
    value = rng.choice(TRICKY).encode("utf-8", "surrogateescape")
    if i == 0:  # the start line
        parts = lines[0].split(b" ")
        parts[rng.randrange(len(parts))] = value
        lines[0] = rng.choice([b" ".join(parts), rng.choice([
            b"SIP/2.0 999 Bad", b"SIP/3.0 200 OK", b"SIP/2.0 200", b"SIP/2.0  200 OK", b"sip/2.0 100 x",
            b"INVITE  sip:a@b SIP/2.0", b"INVITE sip:a@b SIP/2.0 ", b"INVITE sip:a@b?x=y SIP/2.0",
            b"IN\xffVITE sip:a@b SIP/2.0", b"INVITE tel:+123 SIP/2.0", b"X sips:[::1]:5061 SIP/2.0"])])
    else:
        name, colon, old = lines[i].partition(b":")
        if rng.random() < 0.5 and old:  # replace a piece of the value, keep the rest
            a = rng.randrange(len(old))
            lines[i] = name + colon + old[:a] + value + old[a + rng.randrange(0, 8):]
        else:
            lines[i] = name + b": " + value
    return b"\r\n".join(lines) + rest


def _content_length(rng, data):
    lines, rest = _lines(data)
    value = rng.choice([b"0", b"1", b"-1", b"65536", b"65537", b"99999999999999999", b" 5 ", b"\xc2\xb2",
                        str(max(0, len(rest) - 4 + rng.randrange(-3, 4))).encode()])
    lines = [ln for ln in lines if not ln.lower().startswith((b"content-length", b"l:"))]
    lines.append(rng.choice([b"Content-Length: ", b"l: "]) + value)
    return b"\r\n".join(lines) + rest


NUMBERS = [b"\xc2\xb2", b"\xd9\xa1\xd9\xa2", b"\xef\xbc\x91", b"-1", b"+1", b"1.5", b"1e3", b"0x10", b"", b" ",
           b"99999999999999999999", b"4294967296", b"65536", b"256", b"007", b"1 2", b"inf"]
NUMERIC = [(rb"CSeq: \d+", b"CSeq: "), (rb"Content-Length: \d+", b"Content-Length: "), (rb"Expires: \d+", b"Expires: "),
           (rb"Max-Forwards: \d+", b"Max-Forwards: "), (rb"rport=\d+", b"rport="), (rb"(UDP [^:;]+):\d+", None),
           (rb"(<sip:[^>]*):\d+>", None), (rb"nc=\d+", b"nc="), (rb"reg-id=\d+", b"reg-id="), (rb"\d+ RTP/AVP", b"")]


def _numeric(rng, data):
    """A number the parsers read (CSeq, Content-Length, Expires, Max-Forwards, ports, rport, ...) made strange."""
    candidates = [(pattern, prefix) for pattern, prefix in NUMERIC if re.search(pattern, data)]
    if not candidates:
        return data
    pattern, prefix = rng.choice(candidates)
    number = rng.choice(NUMBERS)
    if prefix is None:  # host:port: keep the host
        return re.sub(pattern, lambda m: m.group(1) + b":" + number + (b">" if m.group(0).endswith(b">") else b""),
                      data, count=1)
    return re.sub(pattern, lambda m: prefix + number + (b" RTP/AVP" if m.group(0).endswith(b"RTP/AVP") else b""),
                  data, count=1)


def _body(rng, data):
    """Mangle a line of the body (SDP) and fix Content-Length, so the message still parses and the body gets read."""
    lines, rest = _lines(data)
    body = rest[4:]
    sdp = body.split(b"\r\n")
    i = rng.randrange(len(sdp))
    word = rng.choice([b"\xc2\xb2", b"\xd9\xa1", b"inf", b"nan", b"-1", b"99999", b"", b" ", b"=", b"/", b"x"])
    if rng.random() < 0.3:
        sdp[i] = rng.choice([b"a=ptime:", b"m=audio ", b"a=rtpmap:", b"o=- ", b"c=IN IP4 ", b"a=fmtp:"]) + word
    elif sdp[i]:
        a = rng.randrange(len(sdp[i]))
        sdp[i] = sdp[i][:a] + word + sdp[i][a + rng.randrange(0, 4):]
    body = b"\r\n".join(sdp)
    lines = [ln for ln in lines if not ln.lower().startswith(b"content-length")]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


MUTATIONS = [_flip, _insert, _delete, _truncate, _duplicate_line, _remove_line, _huge, _header_name, _non_utf8,
             _crlf, _compact, _tricky_value, _content_length, _body, _numeric, _numeric]


def mutate(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    """``data`` after ``rounds`` mutations (by default one to four, mostly one: more rarely still parse)."""
    for _ in range(rng.choice([1, 1, 1, 2, 3, 4]) if rounds is None else rounds):
        data = rng.choice(MUTATIONS)(rng, data)
    return data


randoms = st.randoms(use_true_random=False, note_method_calls=False)


@st.composite
def mangled(draw, seeds=SEEDS) -> bytes:
    """A real message with one to four mutations."""
    rng = draw(randoms)
    data = mutate(rng, rng.choice(seeds))
    note(f"input: {data!r}")
    return data


def only_protocol_errors(call, *args):
    """``call(*args)``; a ProtocolError is an answer too. Anything else propagates and fails the property."""
    try:
        return call(*args)
    except ProtocolError:
        return None


any_message = st.one_of(st.binary(max_size=600), mangled())

# --- parse, StreamParser ------------------------------------------------------------------------------------------


@fuzz_settings(400)
@given(any_message)
@example(b"")
@example(b"\r\n\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\n\r\n")
@example(b"x" * 70000)
def test_parse_returns_a_message_or_raises_protocol_error(data):
    msg = only_protocol_errors(parse, data)
    assert msg is None or isinstance(msg, (Request, Response))


@fuzz_settings(250)
@given(st.lists(any_message, min_size=1, max_size=4), st.data())
def test_stream_parser_over_random_chunks_returns_messages_or_raises_protocol_error(messages, data):
    stream = b"".join(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts"))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    parser = StreamParser()
    for chunk in chunks:
        try:
            got = parser.feed(chunk)
        except ProtocolError as exc:
            assert all(isinstance(m, (Request, Response)) for m in getattr(exc, "messages", []))
            with pytest.raises(ProtocolError):  # a broken stream stays broken
                parser.feed(b"\r\n")
            return
        assert all(isinstance(m, (Request, Response)) for m in got)


def test_stream_parser_refuses_an_endless_header_section():
    parser = StreamParser()
    parser.feed(b"INVITE sip:a@b SIP/2.0\r\nX-Endless: ")
    with pytest.raises(ProtocolError, match="no end of the header section"):
        for _ in range(100):
            parser.feed(b"a" * 1000)


# --- URIs, name-addr, SDP, digest ------------------------------------------------------------------------------


def text_from(seeds: list[str]):
    """Arbitrary text, or a seed string with a few characters changed, inserted or removed."""
    @st.composite
    def mutated(draw):
        rng = draw(randoms)
        text = rng.choice(seeds)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text) + 1)
            op = rng.randrange(3)
            piece = rng.choice(TRICKY + list("<>@:;=?&%,\" []\\"))[:20]
            text = text[:i] + (piece if op else "") + text[i + (op != 1):]
        return text
    return st.one_of(st.text(max_size=80), mutated())


URIS = ["sip:801@10.0.0.1:5060;transport=udp;lr", "sips:alice:secret@[2001:db8::1]:5061;maddr=x?subject=hi&x=%20",
        "tel:+86-139-1234-5678;phone-context=+86", "sip:10.0.0.1", "sip:%61lice@example.com;user=phone"]
NAME_ADDRS = ['"Agent \\"801\\"" <sip:801@10.0.0.1>;tag=2087467896', "Bob <sips:bob@[::1]>;expires=60",
              "sip:801@10.0.0.1;tag=x", '<sip:a@b?x=y>;+sip.instance="<urn:uuid:1>"', "A B C <tel:123>"]


@fuzz_settings(300)
@given(text_from(URIS))
def test_sip_uri_parse_returns_a_uri_or_raises_protocol_error(text):
    uri = only_protocol_errors(SipUri.parse, text)
    if uri is not None:
        assert SipUri.parse(str(uri)) == uri  # what it writes, it reads back


@fuzz_settings(300)
@given(text_from(NAME_ADDRS))
def test_name_addr_parse_returns_a_name_addr_or_raises_protocol_error(text):
    addr = only_protocol_errors(NameAddr.parse, text)
    if addr is not None:
        assert NameAddr.parse(str(addr)) == addr


@st.composite
def mangled_sdp(draw) -> bytes:
    rng = draw(randoms)
    lines = SDP.split(b"\r\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        word = rng.choice([b"\xc2\xb2", b"\xd9\xa1", b"inf", b"nan", b"-1", b"99999", b"", b" ", b"=", b"/", b"x",
                           b"\xff", b"\n", b"\r"])
        op = rng.randrange(4)
        if op == 0:
            lines[i] = rng.choice([b"a=ptime:", b"m=audio ", b"a=rtpmap:", b"o=- ", b"c=IN IP4 ", b"a=fmtp:",
                                   b"m=audio 4000 RTP/AVP ", b"a=rtpmap:8 ", b"v=", b"X="]) + word
        elif op == 1 and lines[i]:
            a = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:a] + word + lines[i][a + rng.randrange(0, 4):]
        elif op == 2:
            del lines[i]
        else:
            lines.insert(i, lines[rng.randrange(len(lines))])
    data = rng.choice([b"\r\n", b"\n"]).join(lines)
    note(f"SDP: {data!r}")
    return data


@fuzz_settings(300)
@given(st.one_of(st.binary(max_size=300), mangled_sdp()))
@example(b"v=0\r\no=- \xc2\xb2 1 IN IP4 10.0.0.1\r\ns=-\r\n")  # o= session id "²"
@example(b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nm=audio \xc2\xb2 RTP/AVP 8\r\n")  # m= port "²"
def test_sdp_parse_returns_a_description_or_raises_protocol_error(data):
    only_protocol_errors(SessionDescription.parse, data)


def use_sdp(sdp: SessionDescription) -> None:
    """Every typed access the UA makes on an offer: what it says, and our answer to it."""
    sdp.origin, sdp.connection, sdp.direction, sdp.on_hold, sdp.audio, sdp.times, sdp.serialize()
    for m in sdp.media:
        m.connection, m.rtpmap, m.fmtp, m.ptime, m.direction, m.m_line()
        for fmt in m.formats:
            if is_number(fmt):
                m.codec(int(fmt))
    ours = answer(sdp, "10.0.0.1", 4000, session_id=1, version=1)
    negotiated(sdp, ours, we_offered=False)


@fuzz_settings(300)
@given(mangled_sdp())
@example(SDP.replace(b"a=ptime:20", b"a=ptime:inf"))
@example(SDP.replace(b"a=rtpmap:8 ", b"a=rtpmap:\xc2\xb2 "))
def test_sdp_typed_access_and_answer_work_or_raise_protocol_error(data):
    try:
        sdp = SessionDescription.parse(data)
    except ProtocolError:
        return
    only_protocol_errors(use_sdp, sdp)


DIGEST = [AUTHORIZATION, WWW_AUTHENTICATE, 'Digest realm="a\\"b", nonce=x, stale=TRUE', "Basic abc=="]


@fuzz_settings(300)
@given(text_from(DIGEST))
def test_digest_parsers_return_values_or_raise_protocol_error(text):
    only_protocol_errors(digest.parse_params, text)
    only_protocol_errors(Challenge.parse, text)
    credentials = only_protocol_errors(Credentials.parse, text)
    if credentials is not None:
        credentials.check("pw", "REGISTER")  # what the registrar does with them: True or False, no exception


# --- round trip of well-formed generated messages ------------------------------------------------------------------


def chars(allowed) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(allowed))


@st.composite
def escaped(draw, allowed, min_size=1, max_size=10) -> str:
    """Characters of ``allowed``, sometimes with a %HH escape among them."""
    text = draw(st.text(chars(allowed), min_size=min_size, max_size=max_size))
    if "%" in allowed or draw(st.integers(0, 3)):
        return text
    i = draw(st.integers(0, len(text)))
    return text[:i] + draw(st.sampled_from(["%20", "%41", "%3b", "%3B", "%c3%a9", "%00"])) + text[i:]


tokens = st.text(chars(TOKEN), min_size=1, max_size=10)
hosts = st.one_of(st.text(chars(HOSTNAME), min_size=1, max_size=20), st.ip_addresses(v=4).map(str),
                  st.ip_addresses(v=6).map(lambda a: f"[{a}]"))
ports = st.one_of(st.none(), st.integers(0, 65535))
header_values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40)


def unique_names(names):
    return st.lists(names, max_size=3, unique_by=str.lower)


@st.composite
def uri_params(draw) -> str:
    out = ""
    for name in draw(unique_names(escaped(URI_PARAM, max_size=6))):
        value = draw(st.none() | escaped(URI_PARAM, max_size=8))
        out += f";{name}" + ("" if value is None else f"={value}")
    return out


@st.composite
def sip_uris(draw, headers: bool = True) -> str:
    if draw(st.integers(0, 9)) == 0:
        return "tel:" + draw(st.text(chars("0123456789*#+-.()abcdef"), min_size=1, max_size=12)) + draw(uri_params())
    text = draw(st.sampled_from(["sip:", "sips:", "SIP:"]))
    if draw(st.booleans()):
        text += draw(escaped(USER))
        if draw(st.integers(0, 4)) == 0:
            text += ":" + draw(escaped(PASSWORD, min_size=0))
        text += "@"
    text += draw(hosts)
    port = draw(ports)
    text += "" if port is None else f":{port}"
    text += draw(uri_params())
    if headers and draw(st.integers(0, 3)) == 0:
        pairs = draw(st.lists(st.tuples(escaped(URI_HEADER), escaped(URI_HEADER, min_size=0)), min_size=1,
                              max_size=2))
        text += "?" + "&".join(f"{k}={v}" for k, v in pairs)
    return text


@st.composite
def header_params(draw, tag: bool = False) -> str:
    out = f";tag={draw(tokens)}" if tag else ""
    for name in draw(unique_names(tokens.filter(lambda n: n.lower() != "tag"))):
        value = draw(st.none() | tokens | header_values.map(lambda v: '"' + v.replace("\\", "\\\\")
                                                                  .replace('"', '\\"') + '"'))
        out += f";{name}" + ("" if value is None else f"={value}")
    return out


@st.composite
def name_addrs(draw, tag: bool = False) -> str:
    uri = draw(sip_uris())
    form = draw(st.integers(0, 2))
    if form == 0:
        display = '"' + draw(header_values).replace("\\", "\\\\").replace('"', '\\"') + '" '
    elif form == 1:
        display = " ".join(draw(st.lists(tokens, min_size=1, max_size=3))) + " "
    else:
        display = ""
    return f"{display}<{uri}>" + draw(header_params(tag))


@st.composite
def vias(draw) -> str:
    port = draw(ports)
    params = f";branch=z9hG4bK{draw(tokens)}"
    params += draw(st.sampled_from(["", ";rport", f";rport={draw(st.integers(0, 65535))}"]))
    params += draw(st.sampled_from(["", f";received={draw(st.ip_addresses(v=4))}"]))
    transport = draw(st.sampled_from(["UDP", "TCP", "tls", "SCTP", "WS"]))
    return f"SIP/2.0/{transport} {draw(hosts)}{'' if port is None else f':{port}'}{params}"


_CHECKED = {"via", "from", "to", "call-id", "cseq", "max-forwards", "contact", "content-length", "expires"}


def spelled(draw, name: str) -> str:
    """``name`` as written by some phone: compact, lower or upper case."""
    short = COMPACT.get(name.lower())
    return draw(st.sampled_from([name, name.lower(), name.upper()] + ([short] if short else [])))


@st.composite
def messages(draw) -> Request | Response:
    method = draw(st.one_of(st.sampled_from(["INVITE", "REGISTER", "OPTIONS", "BYE", "ACK", "CANCEL", "INFO"]),
                            tokens))
    fields = [("Via", ", ".join(draw(st.lists(vias(), min_size=1, max_size=2))))
              for _ in range(draw(st.integers(1, 2)))]
    fields += [("From", draw(name_addrs(tag=True))), ("To", draw(name_addrs(tag=draw(st.booleans())))),
               ("Call-ID", draw(tokens) + draw(st.sampled_from(["", "@"])) + draw(st.text(chars(TOKEN), max_size=8))),
               ("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {method}"),
               ("Max-Forwards", str(draw(st.integers(0, 255))))]
    if draw(st.booleans()):
        fields.append(("Contact", draw(st.one_of(st.just("*"), st.lists(name_addrs(), min_size=1, max_size=2)
                                                 .map(", ".join)))))
    if draw(st.booleans()):
        fields.append(("Expires", str(draw(st.integers(0, 2**32 - 1)))))
    extra_names = tokens.filter(lambda n: canonical(n) not in _CHECKED)
    fields += draw(st.lists(st.tuples(extra_names, header_values), max_size=4))
    fields = [(spelled(draw, name), value) for name, value in draw(st.permutations(fields))]
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        return Request(method, draw(sip_uris(headers=False)), fields, body)
    return Response(draw(st.integers(100, 699)), draw(header_values), fields, body)


@fuzz_settings(150)
@given(messages(), st.data())
def test_well_formed_messages_round_trip(msg, data):
    wire_bytes = msg.serialize()
    note(f"serialized: {wire_bytes!r}")
    parsed = parse(wire_bytes)
    assert parsed.serialize() == wire_bytes
    assert parsed.body == msg.body and parsed.start_line() == msg.start_line()
    assert list(parsed.headers) == list(msg.headers) + ([] if "Content-Length" in msg.headers else
                                                         [("Content-Length", str(len(msg.body)))])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire_bytes)), max_size=5), label="cuts"))
    parser, got = StreamParser(), []
    for a, b in zip([0, *cuts], [*cuts, len(wire_bytes)]):
        got += parser.feed(b"\r\n" + wire_bytes[a:b] if a == 0 else wire_bytes[a:b])
    assert [m.serialize() for m in got] == [wire_bytes]


# --- typed accessors ---------------------------------------------------------------------------------------------


def use_message(msg: Request | Response) -> None:
    """Every typed accessor, and what the stack reads off the values they give."""
    for via in msg.via:
        via.branch, via.received, via.rport, via.wants_rport, str(via)
    msg.cseq, msg.call_id, msg.max_forwards, msg.expires, msg.content_length, msg.content_type, msg.media_type
    for addr in (msg.from_, msg.to):
        addr.tag, str(addr), addr.uri.transport
    contacts = msg.contacts
    if contacts != "*":
        [(str(c), c.params.get("expires")) for c in contacts]
    msg.routes, msg.record_routes
    msg.serialize()


@fuzz_settings(400)
@given(mangled())
def test_typed_accessors_of_a_parsed_message_work_or_raise_protocol_error(data):
    msg = only_protocol_errors(parse, data)
    if msg is not None:
        only_protocol_errors(use_message, msg)


# --- the transaction layer ---------------------------------------------------------------------------------------


def drain(layer: TransactionLayer) -> list:
    out = []
    while (ev := layer.next_event()) is not None:
        out.append(ev)
    return out


@fuzz_settings(400)
@given(any_message)
def test_transaction_layer_drops_and_counts_what_it_cannot_use(data):
    layer = TransactionLayer()
    layer.receive(data, ("10.0.0.21", 5060), 0.0)
    events = drain(layer)
    try:
        parse(data)
        parsed = True
    except ProtocolError:
        parsed = False
    assert layer.discarded + len(events) == 1  # each datagram is either handed on or counted as dropped
    assert parsed or layer.discarded == 1
    layer.messages_to_send()


OUR_OPTIONS = in_dialog("OPTIONS", host="10.0.0.1")  # what the layer sends in the property below
ITS_ANSWERS = [Response.for_request(parse(OUR_OPTIONS), status, to_tag="x").serialize() for status in (100, 200, 404)]


@fuzz_settings(150)
@given(st.lists(mangled(SEEDS + ITS_ANSWERS + [in_dialog(m) for m in ("OPTIONS", "BYE", "ACK", "CANCEL")]),
                max_size=12))
def test_transaction_layer_with_live_transactions_never_raises(datagrams):
    """A server INVITE and a client OPTIONS transaction, then mangled requests, retransmissions and responses."""
    layer = TransactionLayer()
    source, now = ("10.0.0.21", 5060), 0.0
    layer.receive(invite(), source, now)  # a server INVITE transaction in Proceeding
    layer.send_request(parse(OUR_OPTIONS), source, now)  # a client one
    invite_key = drain(layer)[0].key
    unparsable = 0
    for n, data in enumerate(datagrams):
        now += 0.3
        try:
            parse(data)
        except ProtocolError:
            unparsable += 1
        layer.receive(data, source, now)
        for ev in drain(layer):
            if isinstance(ev, RequestReceived) and ev.request.method not in ("ACK",):
                layer.respond(ev.key, Response.for_request(ev.request, 200 if n % 2 else 486, to_tag="t"), now)
        if n == 3:
            layer.respond(invite_key, Response.for_request(parse(invite()), 200, to_tag="as5c1e7e2a"), now)
        layer.handle_timer(now)
        layer.messages_to_send()
    assert layer.discarded >= unparsable
    layer.handle_timer(now + 100)
    drain(layer)
    assert layer.next_deadline() is None  # every transaction ended


# --- the live box --------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            try:
                t.bind((HOST, port))
            except OSError:
                continue
            return port


class Box:
    """The card ticked every 20 ms (poll, read, write) on the running loop, with a core that answers every
    Seized; while ``short_calls`` it hangs each up on its next tick (the fuzz caller says nothing).
    Exceptions out of ``poll`` or the card's commands are kept with the message being handled."""

    def __init__(self, card: SipCard) -> None:
        self.card = card
        self.events: list = []
        self.escaped: list[tuple[str, BaseException, bytes | None]] = []
        self.short_calls = True
        self.hangup_at: dict[int, float] = {}
        self.current: bytes | None = None
        self.t0 = time.monotonic()
        self._stop = False
        receive = card.calls.receive

        def tracked(data, *args):  # which message was being handled when something escaped
            self.current = data
            receive(data, *args)
            self.current = None
        card.calls.receive = tracked

    def now(self) -> float:
        return time.monotonic() - self.t0

    def tick(self) -> None:
        card, now = self.card, self.now()
        try:
            events = card.poll(now)
        except Exception as exc:  # noqa: BLE001 - exactly what this test looks for
            self.escaped.append(("poll", exc, self.current))
            events = []
        seized: set[int] = set()  # a port may be seized, released and seized again within one tick
        for ev in events:
            self.events.append(ev)
            if isinstance(ev, Seized):
                seized.add(ev.port)
            elif isinstance(ev, Released):
                seized.discard(ev.port)
                self.hangup_at.pop(ev.port, None)
        for port in sorted(seized):
            self.command("answer", port)
            if self.short_calls:
                self.hangup_at[port] = now
        for port, due in list(self.hangup_at.items()):
            if now >= due:
                del self.hangup_at[port]
                self.command("hangup", port, 16)
        frames = np.full((len(card.ports), 160), 0xD5, np.uint8)
        card.read(frames)
        card.write(frames)

    def command(self, name: str, port: int, *args) -> None:
        try:
            getattr(self.card, name)(port, *args)
        except Exception as exc:  # noqa: BLE001 - DriverError included: the core never asks for the impossible
            self.escaped.append((name, exc, None))

    async def run(self) -> None:
        while not self._stop:
            self.tick()
            await asyncio.sleep(0.02)

    async def until(self, done, timeout: float, step: float = 0.02) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if done():
                return True
            await asyncio.sleep(step)
        return done()

    def stop(self) -> None:
        self._stop = True


def harmless(data: bytes, port: int) -> bool:
    """Whether what the box does with ``data`` stays between it and our socket on ``port``.

    A request that parses must have our socket as its reply address (top Via with our port, or rport),
    and an SDP offer that parses must put its media at 127.0.0.1:``port`` (or 0): no answer and no RTP
    leaves for another program's port or another machine. What does not parse is harmless: the box
    drops it (or meets the same exception we do here)."""
    try:
        msg = parse(data)
        via = msg.via[0]
        if isinstance(msg, Request) and not via.wants_rport and (via.port or 5060) != port:
            return False
        if msg.body:
            sdp = SessionDescription.parse(msg.body)
            connections = [sdp.connection] + [m.connection for m in sdp.media]
            if any(c is not None and c.address != HOST for c in connections):
                return False
            if any(m.port not in (0, port) for m in sdp.media):
                return False
    except Exception:  # noqa: BLE001 - the box meets it the same way
        pass
    return True


def fresh(rng: random.Random, data: bytes) -> bytes:
    """``data`` as one of 300 calls: its branch, Call-ID and From tag from a small pool, so most INVITEs are new
    transactions and some CANCEL/ACK/BYE/responses meet an INVITE sent before them."""
    n = rng.randrange(300)
    return (data.replace(b"1833413052", b"%d" % n).replace(b"1650287425", b"fz%d" % n)
            .replace(b"2087467896", b"ft%d" % n))


def fuzz_datagrams(rng: random.Random, port: int, count: int) -> list[bytes]:
    """Mangled INVITE/REGISTER/OPTIONS/BYE/ACK/CANCEL and responses, random bytes, oversize ones (see ``harmless``)."""
    body = local_sdp(port)
    seeds = [invite(port, HOST, body), invite(port, HOST, body), register(port, HOST), ok_200(port, HOST, body)] + \
        [in_dialog(m, port, HOST) for m in ("OPTIONS", "BYE", "ACK", "CANCEL")]
    out: list[bytes] = []
    while len(out) < count:
        kind = rng.random()
        if kind < 0.07:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1500)))
        elif kind < 0.1:  # oversize: a long tail after the message, or one grown past the limits
            data = mutate(rng, fresh(rng, rng.choice(seeds))) + b"z" * rng.choice([9000, 30000, 65000]) \
                if rng.random() < 0.5 else _huge(rng, fresh(rng, rng.choice(seeds)))
        else:
            data = mutate(rng, fresh(rng, rng.choice(seeds)), rng.choice([0, 1, 1, 1, 2, 3]))
            if rng.random() < 0.05:
                data = rng.choice([b"SIP/2.0 200 OK\r\n", b"SIP/2.0 180 Ringing\r\n", b"SIP/2.0 401 x\r\n"]) + \
                    data.partition(b"\r\n")[2]  # a request's headers claiming to be a response
        data = data[:65507]  # the largest UDP payload over IPv4
        if harmless(data, port):
            out.append(data)
    return out


def udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.setblocking(False)
    return s


def drain_socket(s: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(s.recv(70000))
        except (BlockingIOError, ConnectionRefusedError):
            return got


async def tcp_garbage(box_port: int, rtp_port: int, rng: random.Random) -> dict:
    """Mangled messages on several connections, one endless header section, two half-open connections."""
    result = {}
    seeds = [invite(rtp_port, HOST, local_sdp(rtp_port)), register(rtp_port, HOST),
             in_dialog("OPTIONS", rtp_port, HOST), in_dialog("BYE", rtp_port, HOST)]
    seeds = [m.replace(b"/UDP", b"/TCP") for m in seeds]

    def one() -> bytes:
        while not harmless(data := mutate(rng, rng.choice(seeds)), rtp_port):
            pass
        return data
    for _ in range(12):  # mangled messages over random chunks; the box answers or closes
        reader, writer = await asyncio.open_connection(HOST, box_port)
        stream = b"".join(one() for _ in range(rng.randint(1, 4)))
        try:
            while stream and not reader.at_eof():
                n = rng.randint(1, 400)
                writer.write(stream[:n])
                stream = stream[n:]
                await writer.drain()
            await asyncio.sleep(0.05)
        except ConnectionError:  # the box closed a broken stream: what it should do
            pass
        finally:
            writer.close()
    # an endless header section: the box must give up on it at 64 KiB and close the connection
    reader, writer = await asyncio.open_connection(HOST, box_port)
    writer.write(b"INVITE sip:4008001234@127.0.0.1 SIP/2.0\r\nX-Endless: ")
    try:
        for _ in range(400):  # 400 KiB at most; the box should hang up after 64
            writer.write(b"a" * 1024)
            await writer.drain()
            await asyncio.sleep(0)
            if reader.at_eof() or writer.transport.is_closing():
                break
        closed = await asyncio.wait_for(reader.read(100), 2.0) == b""  # EOF: the box closed it
    except ConnectionError:  # reset: the box closed it while we wrote
        closed = True
    except asyncio.TimeoutError:  # still open and silent
        closed = False
    finally:
        writer.close()
    result["endless_closed"] = closed
    # half-open: one sends half a message and shuts its sending side; one connects and says nothing
    r1, w1 = await asyncio.open_connection(HOST, box_port)
    w1.write(seeds[0][:-40])
    await w1.drain()
    w1.write_eof()
    r2, w2 = await asyncio.open_connection(HOST, box_port)
    result["half_open"] = [w1, w2]
    return result


def sipp_command(sipp: str, port: int, tmp_path) -> list[str]:
    return [sipp, "-sn", "uac", f"{HOST}:{port}", "-s", "4008001234", "-i", HOST, "-p", str(free_port()),
            "-m", "3", "-l", "1", "-r", "2", "-d", "1000", "-nostdin", "-timeout", "20",
            "-trace_err", "-error_file", str(tmp_path / "err.log")]


def test_live_box_survives_fuzzing_and_still_takes_calls(tmp_path):
    sipp = require_tool("sipp")
    port = free_port()
    card = SipCard(trunk_channels=2, seats={"801": "pw801pw801"}, host=HOST, port=port,
                   trunk={"host": HOST, "port": free_port(), "username": "4008001234", "password": "x",
                          "register": False})
    rng = random.Random(20240611)
    stats: dict = {}

    async def scenario():
        await card.open()
        box = Box(card)
        ticking = asyncio.create_task(box.run())
        fuzz = udp_socket()
        fuzz_port = fuzz.getsockname()[1]
        half_open = []
        try:
            # 1. a few thousand mangled datagrams, as fast as the box's socket takes them in without loss
            phases = [time.monotonic()]
            datagrams = fuzz_datagrams(rng, fuzz_port, 3000)

            def arrived() -> int:
                c = card.network.stats()
                return c["udp_in"] + c["keepalives"] + c["oversize"]
            replies, sent, burst = 0, 0, 0
            for data in datagrams:
                cost = len(data) + 2304  # roughly what the kernel charges the receive buffer for it
                if burst + cost > 150_000:  # within the default 208 KiB receive buffer
                    await box.until(lambda: arrived() >= sent, 2.0, step=0.001)
                    replies += len(drain_socket(fuzz))
                    burst = 0
                fuzz.sendto(data, (HOST, port))
                sent += 1
                burst += cost
            await box.until(lambda: arrived() >= sent, 2.0, step=0.001)
            stats["arrived"] = arrived()
            phases.append(time.monotonic())
            # 2. garbage over TCP
            tcp = await tcp_garbage(port, fuzz_port, rng)
            half_open = tcp["half_open"]
            phases.append(time.monotonic())
            # 3. the fuzz's calls end: those the box took were answered and hung up by the core
            await box.until(lambda: not box.hangup_at and not card.calls.legs, 3.0)
            replies += len(drain_socket(fuzz))
            box.short_calls = False
            stats.update(sent=sent, replies=replies, legs_after_fuzz=dict(card.calls.legs),
                         transport=card.network.stats(), endless_closed=tcp["endless_closed"],
                         discarded=card.calls.tx.discarded,
                         fuzz_seized=sum(isinstance(e, Seized) for e in box.events))
            phases.append(time.monotonic())
            # 4. an OPTIONS gets its 200
            probe = udp_socket()
            probe_port = probe.getsockname()[1]
            probe.sendto(in_dialog("OPTIONS", probe_port, HOST).replace(b"1650287425", b"probe-options"),
                         (HOST, port))
            answers: list[bytes] = []
            await box.until(lambda: answers.extend(drain_socket(probe)) or answers, 3.0)
            probe.close()
            stats["options"] = [parse(a) for a in answers]
            phases.append(time.monotonic())
            # 5. SIPp places three normal calls into the trunk
            mark = len(box.events)
            proc = await asyncio.create_subprocess_exec(*sipp_command(sipp, port, tmp_path),
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL, cwd=tmp_path)
            try:
                stats["sipp_rc"] = await asyncio.wait_for(proc.wait(), 15.0)
            except asyncio.TimeoutError:
                proc.kill()
                stats["sipp_rc"] = await proc.wait()
            await box.until(lambda: not card.calls.legs, 2.0)
            phases.append(time.monotonic())
            stats["phases"] = [round(b - a, 2) for a, b in zip(phases, phases[1:])]
            stats["sipp_events"] = box.events[mark:]
            stats["legs_at_end"] = dict(card.calls.legs)
            stats["escaped"] = box.escaped
        finally:
            box.stop()
            await ticking
            fuzz.close()
            for w in half_open:
                w.close()
            card.close()
            await card.network.wait_closed()

    started = time.monotonic()
    try:
        asyncio.run(scenario())
    finally:
        card.close()
    stats["seconds"] = time.monotonic() - started
    print({k: v for k, v in stats.items() if k not in ("sipp_events", "options")})

    assert stats["arrived"] == stats["sent"] and stats["transport"]["overflow"] == 0  # the fuzz reached the stack
    assert stats["escaped"] == [], f"exceptions escaped SipCard.poll, answer or hangup: {stats['escaped']}"
    assert stats["legs_after_fuzz"] == {}, f"calls left up by the fuzz: {stats['legs_after_fuzz']}"
    assert stats["endless_closed"], "the box kept a connection whose header section never ends"
    assert stats["transport"]["broken"] >= 1
    assert [m.status for m in stats["options"] if isinstance(m, Response)] == [200], stats["options"]
    errors = (tmp_path / "err.log").read_text() if (tmp_path / "err.log").exists() else ""
    assert stats["sipp_rc"] == 0, f"SIPp reported failed calls:\n{errors}"
    seized = [e for e in stats["sipp_events"] if isinstance(e, Seized)]
    assert len(seized) == 3, stats["sipp_events"]
    assert [e for e in stats["sipp_events"] if isinstance(e, Released)] == [Released(s.port, 16) for s in seized]
    assert stats["legs_at_end"] == {}


# --- what the fuzzing found, pinned down in explicit time ---------------------------------------------------------


TRUNK = ("192.0.2.1", 5060)  # only a name here: Net carries nothing
QUIET_SDP = local_sdp(9)  # RTP to the discard port on this machine, if the card ever sent any


@pytest.fixture
def trunk_card():
    """A card with two trunk channels on the in-memory network; 192.0.2.1 is its carrier."""
    card = SipCard(trunk_channels=2, seats={}, host=HOST, port=5060, network=Net(),
                   trunk={"host": TRUNK[0], "port": TRUNK[1], "username": "4008001234", "password": "x",
                          "register": False})
    yield card
    card.close()


def replies(card: SipCard) -> list[int]:
    """The status of each response the card sent (its OPTIONS to the carrier aside)."""
    return [m.status for m in (parse(o.data) for o in card.network.sent) if isinstance(m, Response)]


def seize(card: SipCard, data: bytes, now: float) -> int:
    card.network.inbox.append((data, TRUNK, "UDP"))
    [seized] = [e for e in card.poll(now) if isinstance(e, Seized)]
    return seized.port


@pytest.mark.parametrize("data", [
    invite(body=QUIET_SDP).replace(b";tag=2087467896", b""),  # From without a tag (an RFC 2543 carrier, or mangled)
    invite(body=QUIET_SDP).replace(b"<sip:10.0.0.9;lr>, <sip:10.0.0.8;lr>", b"<sip:10.0.0.9;lr>,,"),  # empty element
    invite(body=QUIET_SDP).replace(b"Contact: <sip:801@10.0.0.21:5060>\r\n", b""),  # no Contact
    invite(body=QUIET_SDP).replace(b"<sip:10.0.0.9;lr>, <sip:10.0.0.8;lr>", b"<sig:10.0.0.9;lr>"),  # a route we
    invite(body=QUIET_SDP).replace(b"<sip:10.0.0.9;lr>, <sip:10.0.0.8;lr>", b"\xc3\xa9"),  # could never send a
    invite(body=QUIET_SDP).replace(b"<sip:10.0.0.9;lr>, <sip:10.0.0.8;lr>", b"<sip:10.0.0.9;lr> x"),  # BYE along
], ids=["from-without-tag", "empty-record-route-element", "no-contact", "sig-scheme", "not-a-route", "trailing"])
def test_an_invite_that_cannot_make_a_dialog_is_refused_before_it_is_offered(trunk_card, data):
    trunk_card.network.inbox.append((data, TRUNK, "UDP"))
    assert [e for e in trunk_card.poll(1.0) if isinstance(e, Seized)] == []
    assert replies(trunk_card) == [100, 400]
    assert trunk_card.calls.legs == {}


def answered_call(card: SipCard) -> tuple[int, str]:
    """A call from the carrier, answered; its port and our To tag."""
    port = seize(card, invite(body=QUIET_SDP), 1.0)
    card.answer(port)
    card.poll(1.1)
    [ok] = [parse(o.data) for o in card.network.sent if o.data.startswith(b"SIP/2.0 200")]
    return port, ok.to.tag


def test_an_offer_with_a_host_name_for_media_is_refused_before_it_is_offered(trunk_card):
    data = invite(body=QUIET_SDP.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 localhost"))
    trunk_card.network.inbox.append((data, TRUNK, "UDP"))
    assert [e for e in trunk_card.poll(1.0) if isinstance(e, Seized)] == []
    assert replies(trunk_card) == [100, 488]


def test_a_reinvite_with_a_host_name_for_media_is_refused_and_the_call_goes_on(trunk_card):
    port, tag = answered_call(trunk_card)
    reinvite = (invite(body=QUIET_SDP.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 -127.0.0.1"))
                .replace(b"To: <sip:400@10.0.0.1>", b"To: <sip:400@10.0.0.1>;tag=" + tag.encode())
                .replace(b"CSeq: 1 INVITE", b"CSeq: 2 INVITE").replace(b"z9hG4bK1833413052", b"z9hG4bKre2"))
    trunk_card.network.sent.clear()
    trunk_card.network.inbox.append((reinvite, TRUNK, "UDP"))
    trunk_card.poll(2.0)
    answers = [m for m in (parse(o.data) for o in trunk_card.network.sent) if isinstance(m, Response)]
    assert [m.status for m in answers if m.cseq.seq == 2] == [100, 488]  # (the first 200 OK may be repeated)
    assert trunk_card.calls.legs[port].state in ("answered", "confirmed")


def test_commands_for_an_event_never_reach_a_call_reported_later_in_the_same_poll(trunk_card):
    b = invite(body=QUIET_SDP).replace(b"1833413052", b"777").replace(b"1650287425", b"B").replace(b"2087467896", b"fb")
    trunk_card.network.inbox += [(invite(body=QUIET_SDP), TRUNK, "UDP"), (in_dialog("CANCEL"), TRUNK, "UDP"),
                                 (b, TRUNK, "UDP")]
    events = [e for e in trunk_card.poll(1.0) if isinstance(e, (Seized, Released))]
    first = events[0]
    assert isinstance(first, Seized)
    try:
        trunk_card.answer(first.port)  # what the runtime does on the first event, before it sees the others
    except DriverError:
        pass  # refusing is fine: that call is gone
    calls = trunk_card.calls.legs
    assert all(leg.state == "early" for leg in calls.values()), "a call the core has not been told of was answered"


def test_an_answered_call_never_acknowledged_is_ended(trunk_card):
    port = seize(trunk_card, invite(body=QUIET_SDP), 1.0)
    trunk_card.answer(port)
    events, t = [], 1.0
    while t < 60.0:  # 64*T1 = 32 s of 200 OK repeats, then the call must go
        t += 0.5
        events += trunk_card.poll(t)
    assert Released(port, 102) in events  # RFC 3261 §13.3.1.4: BYE; the core hears of a timer's expiry
    assert any(o.data.startswith(b"BYE ") for o in trunk_card.network.sent)
    assert trunk_card.calls.legs == {}
