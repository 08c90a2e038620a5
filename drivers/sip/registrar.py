"""The box's registrar for its extensions (RFC 3261 §10.3), with digest authentication (§22, RFC 8760), sans-I/O.

``handle_register`` answers a phone's REGISTER; ``check_request`` authenticates its other
requests (INVITE, REFER, ...) by a 407 challenge. A binding keeps the address the REGISTER
came from and its transport: the phone is reached there (NAT), not at its Contact. Every
``qualify_every`` s each binding gets an OPTIONS; ``qualify_misses`` lost in a row make it
unreachable. A ``GuessingGuard`` counts failed authentications per source IP; a blocked
source gets no answer at all (``None``). ``now`` comes with every call.

Order of the checks on a REGISTER: blocked source (silence), Require (420),
credentials (401; stale=true for an expired nonce of ours or a nonce count seen
before, a replay; a wrong password or unknown user name is counted by the guard
and challenged again), the To user (404 unknown, 403 not the authenticated user),
Contact/Expires (400, 423), the Call-ID/CSeq rule (500); nothing changes unless
the whole request is accepted. Only an authenticated phone learns that an
extension does not exist, so the extensions cannot be listed by scanning.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass

from appliance.errors import ConfigError, ProtocolError

from .dialog import new_branch, new_tag
from .digest import ALGORITHMS, Challenge, Credentials, GuessingGuard, NonceIssuer
from .grammar import USER, clip
from .message import Request, Response
from .uri import SipUri

Address = tuple[str, int]
MAX_BINDINGS = 10  # contacts one extension may hold at once
_NOT_IN_REASON = re.compile(r"[^\w .,:;=/+()'@*?!~%$&-]")  # RFC 3261 reason-phrase, minus a few


@dataclass(frozen=True)
class Binding:
    """One contact of an extension; ``source``/``transport``: where the REGISTER came from, where we send."""

    extension: str
    contact: str  # the contact URI as the phone wrote it
    source: Address
    transport: str
    expires_at: float
    user_agent: str | None = None
    call_id: str = ""
    cseq: int = 0
    params: str = ""  # the Contact's header parameters other than expires (";+sip.instance=...")

    def expires_in(self, now: float) -> int:
        """Seconds left, rounded up (what the 200 OK reports)."""
        return max(0, math.ceil(self.expires_at - now - 1e-6))


@dataclass(frozen=True)
class Registered:
    """A new contact was bound (not sent for refreshes)."""

    extension: str
    contact: str


@dataclass(frozen=True)
class Unregistered:
    """A binding went: ``reason`` "expired" or "removed" (by the phone); one event per contact."""

    extension: str
    reason: str
    contact: str = ""


@dataclass(frozen=True)
class Reachability:
    """A registered extension became unreachable (qualify) or reachable again."""

    extension: str
    reachable: bool


@dataclass(frozen=True)
class SourceBlocked:
    """A source IP failed authentication too often; it gets no answers until ``until``."""

    source_ip: str
    until: float


Event = Registered | Unregistered | Reachability | SourceBlocked


@dataclass
class _Entry:
    binding: Binding
    misses: int = 0
    up: bool = True
    next_qualify: float = 0.0
    pending: tuple[str, str] | None = None  # Call-ID and branch of the OPTIONS in flight


def _uri_key(uri: SipUri) -> tuple:
    """What makes two contact URIs equal (RFC 3261 §19.1.4, simplified: no escapes resolved)."""
    p = uri.params
    return (uri.scheme, uri.user, uri.host.lower(), uri.port, (p.get("transport") or "").lower(),
            (p.get("maddr") or "").lower(), p.get("user"))


class Registrar:
    def __init__(self, domain: str, users: dict[str, str], *, secret: bytes, min_expires: int = 60,
                 max_expires: int = 3600, default_expires: int = 3600,
                 algorithms: tuple[str, ...] = ("SHA-256", "MD5"), guard: GuessingGuard | None = None,
                 qualify_every: float = 30.0, qualify_misses: int = 2, sent_by: str | None = None) -> None:
        if not domain or any(c in domain for c in " \t\r\n<>;,\"@"):
            raise ConfigError(f"domain: {domain!r} is not a host name or address")
        for ext, password in users.items():
            if not ext or not all(c in USER for c in ext):
                raise ConfigError(f"users: extension {ext!r} is not a valid SIP user name")
            if not isinstance(password, str) or not password:
                raise ConfigError(f"users: extension {ext} needs a non-empty password")
        if not 1 <= min_expires <= default_expires <= max_expires:
            raise ConfigError(f"min_expires/default_expires/max_expires: need 1 <= {min_expires} <= "
                              f"{default_expires} <= {max_expires}")
        bad = [a for a in algorithms if a not in ALGORITHMS]
        if not algorithms or bad or len(set(algorithms)) != len(algorithms):
            raise ConfigError(f"algorithms: {algorithms!r}; allowed: one or more of {', '.join(ALGORITHMS)}")
        if not qualify_every > 0:
            raise ConfigError(f"qualify_every: {qualify_every} s; must be more than 0")
        if qualify_misses < 1:
            raise ConfigError(f"qualify_misses: {qualify_misses}; must be 1 or more")
        try:
            self._nonces = NonceIssuer(secret)
        except ValueError as exc:
            raise ConfigError(f"secret: {exc}") from None
        self.domain, self._users = domain, dict(users)
        self.min_expires, self.max_expires, self.default_expires = min_expires, max_expires, default_expires
        self.algorithms = tuple(algorithms)
        self.guard = guard if guard is not None else GuessingGuard()
        self.qualify_every, self.qualify_misses = qualify_every, qualify_misses
        self.sent_by = sent_by or domain  # host[:port] in the Via of our OPTIONS
        self._bindings: dict[str, dict[tuple, _Entry]] = {}
        self._events: list[Event] = []
        self._seen: dict[tuple, float] = {}  # (user, nonce, cnonce, nc) accepted -> when to forget it

    # --- REGISTER ------------------------------------------------------------------------------------

    def handle_register(self, request: Request, source: Address, transport: str, now: float) -> Response | None:
        """The final response to a REGISTER, or None: drop it (a blocked source)."""
        if request.method != "REGISTER":
            raise ValueError(f"handle_register got a {request.method}; use check_request")
        if self.guard.blocked(source[0], now):
            return None
        try:
            return self._register(request, source, transport.upper(), now)
        except ProtocolError as exc:
            return _reply(request, 400, f"Bad Request ({_NOT_IN_REASON.sub('', clip(str(exc), 100))})")

    def _register(self, request: Request, source: Address, transport: str, now: float) -> Response | None:
        required = request.headers.values("Require")
        if required:  # §10.3 step 2: we support no extension
            response = _reply(request, 420)
            response.headers.add("Unsupported", ", ".join(required))
            return response
        user = self._authenticate(request, source, now)
        if not isinstance(user, str):
            return user
        to = request.to.uri
        aor = to.user if to.scheme in ("sip", "sips") else None
        if aor not in self._users:
            return _reply(request, 404)
        if aor != user:
            return _reply(request, 403, f"Forbidden (user {user} may not register {aor})")
        contacts = request.contacts
        if contacts == "*":
            if request.expires != 0:
                return _reply(request, 400, "Bad Request (Contact: * needs Expires: 0)")
            return self._remove_all(request, aor, now)
        header_expires = request.expires
        plan: dict[tuple, tuple[SipUri, int, str]] = {}
        for contact in contacts:
            if contact.uri.scheme not in ("sip", "sips") or not contact.uri.host:
                return _reply(request, 400, f"Bad Request (Contact {clip(str(contact.uri), 60)} is not a SIP URI)")
            params = contact.params.copy()
            raw = params.pop("expires", None)
            if raw is not None and not (raw.isascii() and raw.isdigit()):
                return _reply(request, 400, f"Bad Request (Contact expires={clip(raw, 20)!r} is not a number)")
            expires = int(raw) if raw is not None else header_expires
            expires = self.default_expires if expires is None else expires
            if 0 < expires < self.min_expires:
                response = _reply(request, 423)
                response.headers.add("Min-Expires", str(self.min_expires))
                return response
            plan[_uri_key(contact.uri)] = (contact.uri, min(expires, self.max_expires), str(params))
        self._expire(aor, now)  # gone already, even if handle_timer has not run: a new binding, not a refresh
        entries = self._bindings.get(aor, {})
        call_id, seq = request.call_id, request.cseq.seq
        for key in plan:
            old = entries.get(key)
            if old is not None and old.binding.call_id == call_id and seq <= old.binding.cseq:
                return _reply(request, 500, "Server Internal Error (out-of-order REGISTER)")
        kept = {k for k in entries if k not in plan} | {k for k, (_, e, _) in plan.items() if e > 0}
        if len(kept) > MAX_BINDINGS:
            return _reply(request, 403, f"Forbidden (more than {MAX_BINDINGS} contacts)")
        before = self._aggregate(aor)
        agent = request.headers.get("User-Agent")
        for key, (uri, expires, params) in plan.items():
            old = self._bindings.get(aor, {}).get(key)
            if expires == 0:
                if old is not None:
                    self._drop(aor, key, "removed")
                continue
            binding = Binding(aor, str(uri), (source[0], source[1]), transport, now + expires, agent, call_id,
                              seq, params)
            self._bindings.setdefault(aor, {})[key] = _Entry(binding, next_qualify=now + self.qualify_every)
            if old is None:
                self._events.append(Registered(aor, binding.contact))
        self._reachability(aor, before)
        return self._ok(request, aor, now)

    def _remove_all(self, request: Request, aor: str, now: float) -> Response:
        entries = self._bindings.get(aor, {})
        call_id, seq = request.call_id, request.cseq.seq
        if any(e.binding.call_id == call_id and seq <= e.binding.cseq for e in entries.values()):
            return _reply(request, 500, "Server Internal Error (out-of-order REGISTER)")
        for key in list(entries):
            self._drop(aor, key, "removed")
        return self._ok(request, aor, now)

    def _ok(self, request: Request, aor: str, now: float) -> Response:
        response = _reply(request, 200)
        for b in self.bindings(aor, now):
            response.headers.add("Contact", f"<{b.contact}>{b.params};expires={b.expires_in(now)}")
        return response

    # --- authentication --------------------------------------------------------------------------------

    def check_request(self, request: Request, source: Address, now: float) -> str | Response | None:
        """The authenticated extension, a 407 challenge, a 403 (bad credentials), or None: drop it.

        For requests from phones outside a dialog (INVITE, REFER, MESSAGE, ...). ACK and
        CANCEL cannot be challenged (RFC 3261 §22.1): they give None; match them to
        their transaction or dialog before this.
        """
        if request.method == "REGISTER":
            raise ValueError("check_request got a REGISTER; use handle_register")
        if request.method in ("ACK", "CANCEL") or self.guard.blocked(source[0], now):
            return None
        try:
            return self._authenticate(request, source, now)
        except ProtocolError as exc:
            return _reply(request, 400, f"Bad Request ({_NOT_IN_REASON.sub('', clip(str(exc), 100))})")

    def _authenticate(self, request: Request, source: Address, now: float) -> str | Response | None:
        register = request.method == "REGISTER"
        name = "Authorization" if register else "Proxy-Authorization"
        creds = None
        for value in request.headers.get_all(name):
            parsed = Credentials.parse(value)
            if parsed.realm == self.domain:
                creds = parsed
                break
        if creds is None or creds.algorithm not in self.algorithms:
            return self._challenge(request, now)
        nonce = self._nonces.check(creds.nonce, now)
        if nonce == "invalid":  # not ours (an old secret, a made-up nonce): nothing to verify
            return self._challenge(request, now)
        if creds.uri != str(request.uri) and _uri_key(SipUri.parse(creds.uri, name + " uri")) != _uri_key(request.uri):
            return _reply(request, 400, "Bad Request (digest uri differs from the Request-URI)")
        password = self._users.get(creds.username)
        good = creds.check(password if password is not None else "\0", request.method)
        if not good or password is None:
            if self.guard.failed(source[0], now):
                until = self.guard.blocked_sources(now).get(source[0], now + self.guard.block_s)
                self._events.append(SourceBlocked(source[0], until))
                return None
            return self._challenge(request, now) if register else _reply(request, 403)
        if nonce == "stale" or not self._fresh_count(creds, now):
            return self._challenge(request, now, stale=True)
        self.guard.succeeded(source[0])
        return creds.username

    def _fresh_count(self, creds: Credentials, now: float) -> bool:
        """False for credentials accepted before (same user, nonce, cnonce and nc): a replay (RFC 7616 §5.9)."""
        self._seen = {k: t for k, t in self._seen.items() if t > now}
        key = (creds.username, creds.nonce, creds.cnonce, creds.nc)
        if key in self._seen:
            return False
        self._seen[key] = now + self._nonces.lifetime_s + 1.0  # the nonce is stale by then anyway
        return True

    def _challenge(self, request: Request, now: float, stale: bool = False) -> Response:
        """401 (REGISTER) or 407 with one challenge per algorithm, in our order (SHA-256 first, RFC 8760 §2.4)."""
        register = request.method == "REGISTER"
        response = _reply(request, 401 if register else 407)
        nonce = self._nonces.issue(now)
        for algorithm in self.algorithms:
            response.headers.add("WWW-Authenticate" if register else "Proxy-Authenticate",
                                 Challenge(self.domain, nonce, algorithm, ("auth",), None, stale).header())
        return response

    # --- bindings, expiry, events ------------------------------------------------------------------------

    def bindings(self, extension: str, now: float) -> list[Binding]:
        """The live bindings of ``extension``, oldest first."""
        return [e.binding for e in self._bindings.get(extension, {}).values() if e.binding.expires_at > now]

    def reachable(self, extension: str, now: float) -> bool:
        """Registered, and at least one binding not made unreachable by qualify."""
        return any(e.up for e in self._bindings.get(extension, {}).values() if e.binding.expires_at > now)

    def handle_timer(self, now: float) -> None:
        """Remove the bindings that expired by ``now``."""
        for ext in list(self._bindings):
            self._expire(ext, now)

    def _expire(self, ext: str, now: float) -> None:
        before = self._aggregate(ext)
        for key in [k for k, e in self._bindings.get(ext, {}).items() if e.binding.expires_at <= now]:
            self._drop(ext, key, "expired")
        self._reachability(ext, before)

    def next_deadline(self) -> float | None:
        """The next expiry or qualify time: call ``handle_timer`` and ``options_due`` then."""
        times = [t for entries in self._bindings.values() for e in entries.values()
                 for t in ((e.binding.expires_at,) if e.pending else (e.binding.expires_at, e.next_qualify))]
        return min(times) if times else None

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def _drop(self, ext: str, key: tuple, reason: str) -> None:
        entries = self._bindings[ext]
        entry = entries.pop(key)
        if not entries:
            del self._bindings[ext]
        self._events.append(Unregistered(ext, reason, entry.binding.contact))

    def _aggregate(self, ext: str) -> bool | None:
        entries = self._bindings.get(ext)
        return any(e.up for e in entries.values()) if entries else None

    def _reachability(self, ext: str, before: bool | None) -> None:
        """A Reachability event when a still registered extension changed (un)reachable."""
        after = self._aggregate(ext)
        if before is not None and after is not None and before != after:
            self._events.append(Reachability(ext, after))

    # --- qualify -----------------------------------------------------------------------------------------

    def options_due(self, now: float) -> list[tuple[Request, Address, str]]:
        """The OPTIONS to send now (request, address, transport); report each with ``options_result``."""
        out = []
        for entries in self._bindings.values():
            for entry in entries.values():
                b = entry.binding
                if entry.pending is None and b.expires_at > now and now >= entry.next_qualify - 1e-9:
                    request = self._options(b)
                    entry.pending = (request.call_id, request.via[0].branch or "")
                    entry.next_qualify = now + self.qualify_every
                    out.append((request, b.source, b.transport))
        return out

    def options_result(self, call_id_or_key: str | tuple, ok: bool, now: float) -> None:
        """An OPTIONS got a response (``ok``: any status) or timed out; by Call-ID or transaction key."""
        wanted = call_id_or_key[1] if isinstance(call_id_or_key, tuple) else call_id_or_key  # key: (c, branch, m)
        for ext, entries in self._bindings.items():
            entry = next((e for e in entries.values() if e.pending and wanted in e.pending), None)
            if entry is None:
                continue
            entry.pending = None
            before = self._aggregate(ext)
            if ok:
                entry.misses, entry.up = 0, True
            else:
                entry.misses += 1
                entry.up = entry.misses < self.qualify_misses
            self._reachability(ext, before)
            return

    def _options(self, b: Binding) -> Request:
        return Request("OPTIONS", b.contact, [
            ("Via", f"SIP/2.0/{b.transport} {self.sent_by};rport;branch={new_branch()}"), ("Max-Forwards", "70"),
            ("From", f"<sip:{self.domain}>;tag={new_tag()}"), ("To", f"<sip:{b.extension}@{self.domain}>"),
            ("Call-ID", f"{secrets.token_hex(10)}@{self.domain}"), ("CSeq", "1 OPTIONS"),
            ("Accept", "application/sdp")])


def _reply(request: Request, status: int, reason: str | None = None) -> Response:
    return Response.for_request(request, status, reason, to_tag=new_tag())

