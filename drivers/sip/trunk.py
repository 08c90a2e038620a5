"""The box as a client of the carrier's SIP trunk: registration (RFC 3261 §10.2), call authorization (§22.2)
and an OPTIONS keepalive, sans-I/O.

``TrunkRegistration`` builds the REGISTER requests (one Call-ID for its whole
life, CSeq counting up, a fresh Via branch each time) and reacts to the answers
the caller feeds it (``on_response``, ``timed_out``, ``handle_timer``); each
method may return the next REGISTER to send through the transaction layer.
States: "idle", "registering", "registered", "failed" (``reason`` says why; a
retry is scheduled with backoff 30, 60, 120, ... 600 s), "unregistering" and
"stopped". Refreshes carry the credentials of the last challenge again (nonce
count + 1), so most refreshes need no extra round trip; a 401 to such a refresh
is simply answered, while a second 401 to credentials that answered a fresh
challenge, not stale, means a wrong password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from appliance.errors import ConfigError, ProtocolError

from .dialog import new_branch, new_tag
from .digest import ALGORITHMS, Challenge, parse_params
from .headers import Field, Headers, Via, canonical
from .message import Request, Response
from .uri import SipUri
from .grammar import is_number

BACKOFF_FIRST, BACKOFF_MAX = 30.0, 600.0
MAX_ROUNDS = 4  # challenges answered in a row without success before we give up (stale loops)
_AUTH = {401: ("WWW-Authenticate", "Authorization"), 407: ("Proxy-Authenticate", "Proxy-Authorization")}


def pick_challenge(values: list[str]) -> Challenge | None:
    """The first challenge we can answer (Digest, MD5 or SHA-256, qop auth or none; RFC 8760 §2.4)."""
    for value in values:
        try:
            challenge = Challenge.parse(value)
        except ProtocolError:
            continue
        if challenge.algorithm in ALGORITHMS and (not challenge.qop or "auth" in challenge.qop):
            return challenge
    return None


def authorize(request: Request, response: Response, username: str, password: str, nc: int = 1) -> Request:
    """``request`` again with credentials for the 401/407 ``response``: CSeq + 1, a new Via branch (§22.2).

    Credentials for other realms already on the request stay; those for the
    challenged realm are replaced. ProtocolError when there is no challenge we can answer.
    """
    if response.status not in _AUTH:
        raise ProtocolError(f"a {response.status} response does not ask for credentials")
    asks, answers = _AUTH[response.status]
    challenge = pick_challenge(response.headers.get_all(asks))
    if challenge is None:
        raise ProtocolError(f"the {response.status} has no {asks} challenge we can answer (Digest MD5/SHA-256)")
    credentials = challenge.answer(username, password, request.method, str(request.uri), nc=nc)
    fields, top = [], True
    for f in request.headers.fields:
        key = canonical(f.name)
        if key == "via" and top:
            vias = Via.parse_all(f.value, f.where)
            vias[0].branch = new_branch()
            f, top = Field(f.name, ", ".join(str(v) for v in vias)), False
        elif key == "cseq":
            f = Field(f.name, f"{request.cseq.seq + 1} {request.method}")
        elif key == answers.lower() and _realm(f.value) == challenge.realm:
            continue
        fields.append(f)
    headers = Headers.from_fields(fields)
    headers.add(answers, credentials.header())
    return Request(request.method, SipUri.parse(str(request.uri), "Request-URI"), headers, request.body)


def _realm(value: str) -> str | None:
    try:
        return parse_params(value)[1].get("realm")
    except ProtocolError:
        return None


class TrunkRegistration:
    def __init__(self, registrar_uri: str, username: str, password: str, *, local_host: str, local_port: int,
                 transport: str = "UDP", expires: int = 3600, auth_username: str | None = None,
                 domain: str | None = None) -> None:
        try:
            self.registrar_uri = SipUri.parse(registrar_uri, "registrar_uri")
        except ProtocolError as exc:
            raise ConfigError(f"registrar_uri: {exc}") from None
        if self.registrar_uri.scheme not in ("sip", "sips") or self.registrar_uri.user is not None:
            raise ConfigError(f"registrar_uri: {registrar_uri!r}; expected sip:host[:port] without a user part")
        if not username or any(c in username for c in " \t<>@;:,\""):
            raise ConfigError(f"username: {username!r} is not a SIP user name")
        if transport.upper() not in ("UDP", "TCP", "TLS"):
            raise ConfigError(f"transport: {transport!r}; allowed UDP, TCP, TLS")
        if not 0 < local_port < 65536:
            raise ConfigError(f"local_port: {local_port}; allowed 1-65535")
        if not 1 <= expires <= 2**31:
            raise ConfigError(f"expires: {expires}; must be 1 or more seconds")
        self.username, self.password = username, password
        self.auth_username = auth_username or username
        self.domain = domain or self.registrar_uri.host
        self.local_host, self.local_port, self.transport = local_host, local_port, transport.upper()
        self.expires = expires  # what we ask for; a 423 raises it
        self.aor = f"sip:{username}@{self.domain}"
        suffix = "" if self.transport == "UDP" else f";transport={self.transport.lower()}"
        self.contact = SipUri.parse(f"sip:{username}@{local_host}:{local_port}{suffix}", "contact")
        self.call_id = f"{secrets.token_hex(12)}@{local_host}"
        self.state, self.reason = "idle", ""
        self.granted: int | None = None  # the expiry the registrar granted on the last 200
        self.registered_until: float | None = None
        self._tag, self._cseq, self._asked = new_tag(), 0, expires
        self._deadline: float | None = None
        self._waiting = False  # a REGISTER is out, its answer not in yet
        self._challenges: dict[str, Challenge] = {}  # Authorization / Proxy-Authorization -> challenge
        self._nc: dict[str, int] = {}  # nonce -> last nonce count used
        self._fresh: set[str] = set()  # headers whose challenge came in the answer to the previous REGISTER
        self._rounds = 0
        self._failures = 0

    # --- requests --------------------------------------------------------------------------------------------

    def start(self, now: float) -> Request:
        """The first REGISTER (also: register again from scratch)."""
        self.state, self._failures, self._deadline = "registering", 0, None
        self._challenges.clear()
        self._nc.clear()
        return self._send(self.expires, fresh=False)

    def stop(self, now: float) -> Request:
        """A REGISTER with Expires 0; the state goes "unregistering", "stopped" when answered (or not)."""
        self.state, self._deadline = "unregistering", None
        return self._send(0, fresh=False)

    def _send(self, expires: int, fresh: bool) -> Request:
        self._cseq += 1
        self._asked, self._waiting = expires, True
        if not fresh:
            self._fresh, self._rounds = set(), 0
        headers = [("Via", f"SIP/2.0/{self.transport} {self.local_host}:{self.local_port};rport;"
                           f"branch={new_branch()}"), ("Max-Forwards", "70"),
                   ("From", f"<{self.aor}>;tag={self._tag}"), ("To", f"<{self.aor}>"), ("Call-ID", self.call_id),
                   ("CSeq", f"{self._cseq} REGISTER"), ("Contact", f"<{self.contact}>"), ("Expires", str(expires))]
        uri = str(self.registrar_uri)
        for name, challenge in self._challenges.items():
            nc = self._nc[challenge.nonce] = self._nc.get(challenge.nonce, 0) + 1
            headers.append((name, challenge.answer(self.auth_username, self.password, "REGISTER", uri,
                                                   nc=nc).header()))
        return Request("REGISTER", uri, headers)

    # --- answers and time --------------------------------------------------------------------------------------

    def on_response(self, response: Response, now: float) -> Request | None:
        """React to a response to our REGISTER; the next REGISTER to send now, if any.

        Responses to an earlier REGISTER (another CSeq or Call-ID) are ignored.
        """
        cseq = response.cseq
        if (not self._waiting or response.call_id != self.call_id or cseq.method != "REGISTER"
                or cseq.seq != self._cseq or response.status < 200):
            return None
        self._waiting = False
        try:
            return self._on_final(response, now)
        except ProtocolError as exc:  # a 200 with a broken Contact or Expires, say: not a registration
            return self._fail(f"{response.status} {response.reason} that we cannot read: {exc}", now)

    def _on_final(self, response: Response, now: float) -> Request | None:
        status = response.status
        if status in _AUTH:
            return self._on_challenge(response, now)
        if status == 423:
            value = response.headers.get("Min-Expires", "")
            if self.state != "unregistering" and is_number(value) and int(value) > self._asked:
                self.expires = int(value)
                return self._send(self.expires, fresh=False)
            return self._fail(f"423 Interval Too Brief without a usable Min-Expires ({value or 'none'})", now)
        if 200 <= status < 300:
            return self._on_ok(response, now)
        retry_after = response.headers.get("Retry-After", "").split(";")[0].split("(")[0].strip()
        return self._fail(f"{status} {response.reason}", now, int(retry_after) if is_number(retry_after) else None)

    def _on_challenge(self, response: Response, now: float) -> Request | None:
        asks, answers = _AUTH[response.status]
        challenge = pick_challenge(response.headers.get_all(asks))
        if challenge is None:
            return self._fail(f"{response.status} without a challenge we can answer (Digest MD5/SHA-256)", now)
        if answers in self._fresh and not challenge.stale:
            return self._fail(f"{response.status} {response.reason}: wrong user name or password "
                              f"(as {self.auth_username} for realm {challenge.realm})", now)
        self._rounds += 1
        if self._rounds > MAX_ROUNDS:
            return self._fail(f"{response.status} {response.reason}: still challenged after {MAX_ROUNDS} answers",
                              now)
        old = self._challenges.get(answers)
        if old is not None and old.nonce != challenge.nonce:
            self._nc.pop(old.nonce, None)
        self._challenges[answers] = challenge
        self._fresh.add(answers)
        return self._send(self._asked, fresh=True)

    def _on_ok(self, response: Response, now: float) -> None:
        if self.state == "unregistering":
            self.state, self.reason, self.registered_until = "stopped", "", None
            return None
        granted = None
        contacts = response.contacts
        for c in contacts if contacts != "*" else []:
            u = c.uri
            if (u.user, u.host.lower(), u.port) == (self.contact.user, self.contact.host.lower(), self.contact.port):
                value = c.params.get("expires")
                granted = int(value) if value and is_number(value) else None
                break
        if granted is None:
            granted = response.expires if response.expires is not None else self._asked
        if granted <= 0:
            return self._fail("200 OK without our contact: the registrar kept no binding", now)
        self.state, self.reason, self._failures = "registered", "", 0
        self.granted, self.registered_until = granted, now + granted
        self._deadline = now + granted / 2
        return None

    def timed_out(self, now: float) -> None:
        """Our REGISTER got no answer (the transaction timed out): retry later with backoff."""
        if self._waiting:
            self._waiting = False
            self._fail("no answer from the registrar", now)

    def _fail(self, reason: str, now: float, retry_after: int | None = None) -> None:
        self.reason = reason
        self._challenges.clear()
        self._nc.clear()
        if self.state == "unregistering":
            self.state, self._deadline = "stopped", None
            return None
        self.state = "failed"
        delay = min(BACKOFF_FIRST * 2 ** self._failures, BACKOFF_MAX)
        self._failures += 1
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), 3600.0))
        self._deadline = now + delay
        return None

    def handle_timer(self, now: float) -> Request | None:
        """The refresh or the retry when its time has come."""
        if self._deadline is None or self._waiting or now < self._deadline - 1e-9:
            return None
        self._deadline = None
        if self.state == "failed":
            self.state = "registering"
        return self._send(self.expires, fresh=False)

    def next_deadline(self) -> float | None:
        return None if self._waiting else self._deadline


@dataclass(frozen=True)
class HealthChanged:
    """The trunk answered again (``up``) or missed ``misses`` OPTIONS in a row."""

    up: bool
    at: float


class TrunkHealth:
    """OPTIONS keepalive toward the carrier: ``up`` is None until known, then True/False.

    When ``due(now)``, send ``request(...)`` through the transaction layer and report
    with ``result(ok, now)``: any response is ok, a timeout is a miss; ``misses``
    misses in a row make the trunk down, one answer makes it up.
    """

    def __init__(self, interval: float = 30.0, misses: int = 3) -> None:
        if not interval > 0:
            raise ConfigError(f"interval: {interval} s; must be more than 0")
        if misses < 1:
            raise ConfigError(f"misses: {misses}; must be 1 or more")
        self.interval, self.misses = interval, misses
        self.up: bool | None = None
        self.missed = 0  # misses in a row
        self._next = 0.0
        self._waiting = False
        self._events: list[HealthChanged] = []

    def due(self, now: float) -> bool:
        return not self._waiting and now >= self._next - 1e-9

    def request(self, uri: str, local_host: str, local_port: int, now: float, *, transport: str = "UDP",
                from_uri: str | None = None) -> Request:
        """The OPTIONS to send to ``uri`` (e.g. "sip:ims.example.cn"); the next one is due ``interval`` later."""
        self._waiting, self._next = True, now + self.interval
        return Request("OPTIONS", uri, [
            ("Via", f"SIP/2.0/{transport.upper()} {local_host}:{local_port};rport;branch={new_branch()}"),
            ("Max-Forwards", "70"), ("From", f"<{from_uri or f'sip:{local_host}'}>;tag={new_tag()}"),
            ("To", f"<{uri}>"), ("Call-ID", f"{secrets.token_hex(10)}@{local_host}"), ("CSeq", "1 OPTIONS"),
            ("Accept", "application/sdp")])

    def result(self, ok: bool, now: float) -> None:
        self._waiting = False
        if ok:
            self.missed = 0
            if self.up is not True:
                self.up = True
                self._events.append(HealthChanged(True, now))
            return
        self.missed += 1
        if self.missed >= self.misses and self.up is not False:
            self.up = False
            self._events.append(HealthChanged(False, now))

    def next_deadline(self) -> float | None:
        return None if self._waiting else self._next

    def next_event(self) -> HealthChanged | None:
        return self._events.pop(0) if self._events else None
