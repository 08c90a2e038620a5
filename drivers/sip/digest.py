"""HTTP digest authentication as SIP uses it (RFC 3261 §22, RFC 7616, RFC 8760), both sides, sans-I/O.

The registrar challenges the box's phones; the trunk answers the carrier's
challenges. MD5 (what most phones still send) and SHA-256 (RFC 8760) with
``qop=auth``, or without qop for old RFC 2069 clients.

Nonces are stateless: ``NonceIssuer`` packs the issue time and an HMAC of it
under the box's secret, so any nonce can be checked without a table, and an
expired one is answered with ``stale=true`` (the phone retries without asking
its user). ``GuessingGuard`` blocks a source that fails too often.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass, field
from typing import Callable

from appliance.errors import ProtocolError

ALGORITHMS: dict[str, Callable[[bytes], "hashlib._Hash"]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_PARAM = re.compile(r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(,|$)')
_QUOTED = {"realm", "nonce", "uri", "response", "cnonce", "opaque", "username", "domain"}


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """``'Digest realm="x", nonce="y"'`` -> ``("Digest", {"realm": "x", "nonce": "y"})``; names lower-cased."""
    scheme, _, rest = value.strip().partition(" ")
    if not scheme:
        raise ProtocolError("authentication header is empty")
    params: dict[str, str] = {}
    pos, rest = 0, rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            raise ProtocolError(f"authentication parameters malformed at {rest[pos:pos + 20]!r}")
        name, raw = m.group(1).lower(), m.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(name, raw)  # a repeated parameter: the first counts
        pos = m.end()
    return scheme, params


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format(params: dict[str, str | None]) -> str:
    return "Digest " + ", ".join(f"{k}={_quote(v) if k in _QUOTED else v}" for k, v in params.items()
                                 if v is not None)


def _hash(algorithm: str, text: str) -> str:
    try:
        return ALGORITHMS[algorithm](text.encode()).hexdigest()
    except KeyError:
        raise ProtocolError(f"digest algorithm {algorithm!r} is not supported; expected MD5 or SHA-256") from None


def response(algorithm: str, username: str, realm: str, password: str, method: str, uri: str, nonce: str,
             qop: str | None = None, nc: str | None = None, cnonce: str | None = None) -> str:
    """The ``response`` value (RFC 7616 §3.4.1; without qop, RFC 2069's form)."""
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    if qop != "auth":
        raise ProtocolError(f"qop {qop!r} is not supported; expected auth")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


@dataclass(frozen=True)
class Challenge:
    """What a WWW-Authenticate / Proxy-Authenticate header asks."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> "Challenge":
        scheme, p = parse_params(value)
        if scheme.lower() != "digest":
            raise ProtocolError(f"authentication scheme {scheme!r} is not Digest")
        for need in ("realm", "nonce"):
            if need not in p:
                raise ProtocolError(f"digest challenge has no {need}")
        qop = tuple(q.strip() for q in p["qop"].split(",") if q.strip()) if "qop" in p else ()
        return cls(p["realm"], p["nonce"], p.get("algorithm", "MD5").upper(), qop, p.get("opaque"),
                   p.get("stale", "").lower() == "true")

    def header(self) -> str:
        return _format({"realm": self.realm, "nonce": self.nonce, "opaque": self.opaque,
                        "stale": "true" if self.stale else None, "algorithm": self.algorithm,
                        "qop": _quote(",".join(self.qop)) if self.qop else None})

    def answer(self, username: str, password: str, method: str, uri: str, *, nc: int = 1,
               cnonce: str | None = None) -> "Credentials":
        """Our Authorization for this challenge (trunk registration and calls)."""
        qop = "auth" if "auth" in self.qop else None
        if self.qop and qop is None:
            raise ProtocolError(f"digest challenge offers qop {','.join(self.qop)}; only auth is supported")
        cn = (cnonce or secrets.token_hex(8)) if qop else None
        ncs = f"{nc:08x}" if qop else None
        return Credentials(username, self.realm, self.nonce, uri,
                           response(self.algorithm, username, self.realm, password, method, uri, self.nonce,
                                    qop, ncs, cn),
                           self.algorithm, cn, ncs, qop, self.opaque)


@dataclass(frozen=True)
class Credentials:
    """What an Authorization / Proxy-Authorization header says."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> "Credentials":
        scheme, p = parse_params(value)
        if scheme.lower() != "digest":
            raise ProtocolError(f"authorization scheme {scheme!r} is not Digest")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            raise ProtocolError(f"digest credentials lack {', '.join(missing)}")
        if "qop" in p and not ("nc" in p and "cnonce" in p):
            raise ProtocolError("digest credentials with qop need nc and cnonce")
        return cls(p["username"], p["realm"], p["nonce"], p["uri"], p["response"].lower(),
                   p.get("algorithm", "MD5").upper(), p.get("cnonce"), p.get("nc"), p.get("qop"), p.get("opaque"))

    def header(self) -> str:
        return _format({"username": self.username, "realm": self.realm, "nonce": self.nonce, "uri": self.uri,
                        "response": self.response, "algorithm": self.algorithm, "cnonce": self.cnonce,
                        "opaque": self.opaque, "qop": self.qop, "nc": self.nc})

    def check(self, password: str, method: str) -> bool:
        """Whether ``response`` proves ``password`` (constant-time compare)."""
        try:
            want = response(self.algorithm, self.username, self.realm, password, method, self.uri, self.nonce,
                            self.qop, self.nc, self.cnonce)
        except ProtocolError:
            return False
        return hmac.compare_digest(want, self.response)


class NonceIssuer:
    """Stateless nonces: base64(issue time in ms | 8 random bytes | HMAC-SHA256 of both [:16]), valid ``lifetime_s``."""

    def __init__(self, secret: bytes, lifetime_s: float = 300.0) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        self._secret, self.lifetime_s = secret, lifetime_s

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp, hashlib.sha256).digest()[:16]

    def issue(self, now: float) -> str:
        stamp = struct.pack(">Q", int(now * 1000)) + secrets.token_bytes(8)  # two challenges never share one
        return base64.b64encode(stamp + self._mac(stamp)).decode()

    def check(self, nonce: str, now: float) -> str:
        """"ok", "stale" (ours, expired: answer with stale=true) or "invalid" (not ours)."""
        try:
            raw = base64.b64decode(nonce, validate=True)
        except ValueError:
            return "invalid"
        if len(raw) != 32 or not hmac.compare_digest(raw[16:], self._mac(raw[:16])):
            return "invalid"
        age = now - struct.unpack(">Q", raw[:8])[0] / 1000
        return "ok" if -1.0 <= age <= self.lifetime_s else "stale"


@dataclass
class GuessingGuard:
    """Blocks a source after ``max_failures`` failed authentications within ``window_s``, for ``block_s``.

    ``failed`` returns True when this failure blocked the source (the registrar logs
    it and raises an alarm); ``blocked`` says whether to drop a source's requests.
    """

    max_failures: int = 5
    window_s: float = 60.0
    block_s: float = 600.0
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    def failed(self, source: str, now: float) -> bool:
        times = [t for t in self._failures.get(source, []) if now - t < self.window_s] + [now]
        self._failures[source] = times
        if len(times) >= self.max_failures and not self.blocked(source, now):
            self._until[source] = now + self.block_s
            del self._failures[source]
            return True
        return False

    def succeeded(self, source: str) -> None:
        self._failures.pop(source, None)

    def blocked(self, source: str, now: float) -> bool:
        until = self._until.get(source)
        if until is not None and now >= until:
            del self._until[source]
            return False
        return until is not None

    def blocked_sources(self, now: float) -> dict[str, float]:
        """Sources blocked at ``now`` and until when (for the alarm and the status page)."""
        return {s: u for s, u in list(self._until.items()) if self.blocked(s, now)}
