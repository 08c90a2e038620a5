"""A generic HTTP SMS gateway (the many "短信平台" with a send URL): one request per message, off the tick.

``HttpGateway(config)`` is an ``SmsTransport``. Each ``submit`` fills the URL (and
body) template and hands the request to ``OffTick``; ``poll(now)`` turns the
answers into events:

* 2xx and the success pattern matches: ``Accepted(msg_id, ref)`` (``ref`` from the
  pattern's named group ``ref``, else the msg_id itself);
* 408 and 429 (rate limits, common on these platforms): ``Rejected(retryable=True)``;
* other 4xx, the failure pattern matches, or a 2xx that matches neither pattern:
  ``Rejected(retryable=False)`` -- an unrecognised answer may still have sent the
  message, and a customer texted twice is worse than one lost message;
* the request never went whole (refused, DNS, connect timeout, an error while
  writing it: ``httpfetch.Reply.sent`` False) and 503 (the gateway says it did
  not take it): ``Rejected(retryable=True)``;
* the request went and its answer is lost (read timeout, connection reset or
  closed, a broken answer) and the other 5xx (500, 502, 504: the gateway, or the
  server behind a proxy, may have taken it): ``Uncertain`` -- the message may have
  gone, so it is never sent again by itself.

Every failure but 408 and 429 counts towards ``Down``: ``down_after`` in a row add
it, and the next ``Accepted`` is preceded by ``Up``.

``parse_report`` reads the delivery reports a gateway pushes to the web process.

Threads come from ``offtick.OffTick`` (``threads=0``: each request runs inside
``submit``, deterministic for tests and virtual time); the request itself, with
its size limit and UTF-8-then-GBK decoding, is ``httpfetch.request``, as for the
IVR lookups.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field

from appliance import httpfetch
from appliance.errors import ConfigError, ProtocolError
from appliance.offtick import OffTick
from appliance.sms.transport import Accepted, Down, Rejected, Report, SmsTransport, Uncertain, Up

__all__ = ["HttpGatewayConfig", "HttpGateway", "ReportFields", "parse_report", "fill"]

PLACEHOLDERS = ("number", "text", "msg_id", "sender", "account", "password")
BODY_KINDS = ("form", "json", "text")
EXCERPT = 120  # characters of an answer quoted in a reason: enough to read the gateway's error code
RETRY_LATER = (408, 429)  # the 4xx that mean "not now" rather than "never"
NOT_TAKEN = 503  # the one 5xx that says the request was not processed; the others may follow a processed one
POLL_INTERVAL = 0.1  # while requests are out, how soon poll should look for their answers
USER_AGENT = "callcentre-appliance/sms"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")  # word characters only, so JSON's own braces ({"a":...}) are left alone
_CONTENT_TYPES = {"form": "application/x-www-form-urlencoded; charset=utf-8",
                  "json": "application/json; charset=utf-8", "text": "text/plain; charset=utf-8"}


@dataclass(frozen=True)
class HttpGatewayConfig:
    """How to talk to one gateway; checked by ``validate`` (``HttpGateway`` calls it).

    Parameters
    ----------
    url : str
        URL template, e.g. ``http://gw/send?u={account}&p={password}&to={number}&msg={text}``;
        values are percent-encoded (UTF-8).
    success : str
        Regex searched in the answer body of a 2xx; an optional named group ``ref`` is the gateway's id.
    method : str
        ``GET`` or ``POST``.
    body : str
        Body template (POST only); values encoded as ``body_kind`` needs.
    body_kind : str
        ``form`` (values form-encoded), ``json`` (values JSON-escaped: write ``"{text}"`` in quotes) or
        ``text`` (values as they are).
    headers : dict
        Extra request headers; a Content-Type for ``body_kind`` is added unless given.
    failure : str
        Optional regex for a permanent refusal inside a 2xx answer (checked before ``success``).
    timeout_s : float
        Connect and read timeout of one request.
    down_after : int
        Failures in a row (refused, timed out, 5xx) that make the gateway ``Down``.
    sender, account, password : str
        Values of the placeholders of the same names.
    """

    url: str
    success: str
    method: str = "GET"
    body: str = ""
    body_kind: str = "form"
    headers: dict = field(default_factory=dict)
    failure: str = ""
    timeout_s: float = 10.0
    down_after: int = 3
    sender: str = ""
    account: str = ""
    password: str = ""

    @classmethod
    def from_mapping(cls, data: dict) -> HttpGatewayConfig:
        """Build from a configuration section (e.g. ``[sms.http]``); ConfigError names an unknown or missing key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"sms http has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        missing = [key for key in ("url", "success") if key not in data]
        if missing:
            raise ConfigError(f"sms http needs the key(s) {', '.join(missing)}")
        config = cls(**data)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError naming the first wrong field."""
        if self.method not in ("GET", "POST"):
            raise ConfigError(f"sms http method {self.method!r} must be GET or POST")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"sms http url {self.url[:80]!r} must start with http:// or https://")
        if self.body_kind not in BODY_KINDS:
            raise ConfigError(f"sms http body_kind {self.body_kind!r} must be one of {', '.join(BODY_KINDS)}")
        if self.body and self.method != "POST":
            raise ConfigError("sms http body is only sent with method POST")
        for name, template in (("url", self.url), ("body", self.body)):
            for found in _PLACEHOLDER.findall(template):
                if found not in PLACEHOLDERS:
                    raise ConfigError(f"sms http {name} has unknown placeholder {{{found}}}; "
                                      f"allowed: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        for name in ("success", "failure"):
            pattern = getattr(self, name)
            if not pattern and name == "failure":
                continue
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"sms http {name} pattern {pattern!r} is not a valid regex: {exc}") from None
            if not pattern:
                raise ConfigError("sms http success pattern is empty; it must match the gateway's OK answer")
            if name == "success" and compiled.groupindex.keys() - {"ref"}:
                raise ConfigError(f"sms http success pattern may only name the group 'ref', not "
                                  f"{sorted(compiled.groupindex.keys() - {'ref'})}")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) or self.timeout_s <= 0:
            raise ConfigError(f"sms http timeout_s {self.timeout_s!r} must be a number of seconds > 0")
        if isinstance(self.down_after, bool) or not isinstance(self.down_after, int) or self.down_after < 1:
            raise ConfigError(f"sms http down_after {self.down_after!r} must be an integer >= 1")
        for key, value in self.headers.items():
            if not isinstance(key, str) or not isinstance(value, str) or "\n" in key + value or "\r" in key + value:
                raise ConfigError(f"sms http header {key!r} must be a one-line text name and value")


def _encoder(kind: str):
    if kind == "url":
        return lambda v: urllib.parse.quote(v, safe="")
    if kind == "form":
        return lambda v: urllib.parse.quote_plus(v, safe="")
    if kind == "json":
        return lambda v: json.dumps(v, ensure_ascii=False)[1:-1]  # the template supplies the quotes
    return lambda v: v


def fill(template: str, values: dict[str, str], kind: str) -> str:
    """Fill ``template``'s placeholders with ``values`` encoded for ``kind`` (url, form, json, text)."""
    encode = _encoder(kind)
    return _PLACEHOLDER.sub(lambda m: encode(values[m.group(1)]) if m.group(1) in values else m.group(0),
                            template)


def _request(method: str, url: str, body: bytes | None, headers: dict, timeout_s: float) -> httpfetch.Reply:
    """One request; never raises."""
    try:
        return httpfetch.request(url, timeout_s, method=method, body=body,
                                 headers={"User-Agent": USER_AGENT, **headers})
    except Exception as exc:  # noqa: BLE001 (a bug must still answer, or the message waits forever; it may have gone)
        return httpfetch.Reply(None, error=f"{type(exc).__name__}: {exc}"[:200], sent=True)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


class HttpGateway(SmsTransport):
    """An ``SmsTransport`` over a gateway's HTTP send API.

    Parameters
    ----------
    config : HttpGatewayConfig
        Validated here (ConfigError naming the field).
    threads : int
        Requests at once; 0 sends inside ``submit`` (tests and virtual time: deterministic, but it blocks).
    """

    name = "http"

    def __init__(self, config: HttpGatewayConfig, threads: int = 2) -> None:
        config.validate()
        self.config = config
        self._success = re.compile(config.success)
        self._failure = re.compile(config.failure) if config.failure else None
        self._headers = dict(config.headers)
        if config.method == "POST" and not any(k.lower() == "content-type" for k in self._headers):
            self._headers["Content-Type"] = _CONTENT_TYPES[config.body_kind]
        self._work = OffTick("sms-http", threads)
        self._outstanding = 0
        self._last_now: float | None = None
        self._failures = 0  # failures in a row (see the module's docstring)
        self._down = False

    def submit(self, msg_id: str, number: str, text: str, now: float) -> None:
        self._last_now = now
        c = self.config
        values = {"number": number, "text": text, "msg_id": msg_id, "sender": c.sender,
                  "account": c.account, "password": c.password}
        url = fill(c.url, values, "url")
        body = fill(c.body, values, c.body_kind).encode("utf-8") if c.method == "POST" else None
        self._outstanding += 1
        self._work.submit(lambda: (msg_id, _request(c.method, url, body, self._headers, c.timeout_s)))

    def poll(self, now: float) -> list:
        self._last_now = now
        events: list = []
        for msg_id, reply in self._work.results():
            self._outstanding -= 1
            events.extend(self._classify(msg_id, reply))
        return events

    def _classify(self, msg_id: str, reply: httpfetch.Reply) -> list:
        status, text = reply.status, reply.text
        if status is None and not reply.sent:
            return self._failed(Rejected(msg_id, reply.error, retryable=True))
        if status is None:
            return self._failed(Uncertain(msg_id, f"no answer after the request went: {reply.error}"))
        if status == NOT_TAKEN:
            return self._failed(Rejected(msg_id, f"HTTP {status}: {_excerpt(text)}", retryable=True))
        if status >= 500:
            return self._failed(Uncertain(msg_id, f"HTTP {status}: {_excerpt(text)}"))
        if status in RETRY_LATER:  # the gateway is alive but busy: try again, without counting towards Down
            return [Rejected(msg_id, f"HTTP {status}: {_excerpt(text)}", retryable=True)]
        if not 200 <= status < 300:
            return [Rejected(msg_id, f"HTTP {status}: {_excerpt(text)}", retryable=False)]
        if self._failure is not None and self._failure.search(text):
            return [Rejected(msg_id, f"HTTP {status}, failure pattern matched: {_excerpt(text)}", retryable=False)]
        match = self._success.search(text)
        if match is None:
            return [Rejected(msg_id, f"HTTP {status}, answer not recognised: {_excerpt(text)}", retryable=False)]
        ref = match.groupdict().get("ref") or msg_id
        self._failures = 0
        out = []
        if self._down:
            self._down = False
            out.append(Up())
        out.append(Accepted(msg_id, ref))
        return out

    def _failed(self, event: Rejected | Uncertain) -> list:
        self._failures += 1
        if self._failures < self.config.down_after or self._down:
            return [event]
        self._down = True
        return [event, Down(f"{self._failures} failures in a row, last: {event.reason}")]

    def next_deadline(self) -> float | None:
        # Answers arrive on worker threads; while any are out, poll soon to collect them.
        if self._outstanding and self._last_now is not None:
            return self._last_now + POLL_INTERVAL
        return None

    def wait(self, timeout: float | None = None) -> bool:
        """Virtual time and tests only: block until every request has its answer."""
        return self._work.wait(timeout)

    def close(self) -> None:
        self._work.close()


@dataclass(frozen=True)
class ReportFields:
    """Where a gateway's pushed delivery report keeps the id and status, and which statuses mean delivered.

    Parameters
    ----------
    ref : str
        Field of the gateway's id (as in ``Accepted.ref``), e.g. ``msgid``.
    status : str
        Field of the status, e.g. ``stat``.
    delivered : tuple[str, ...]
        Status values meaning delivered (compared case-insensitively), e.g. ``("DELIVRD", "0")``.
    """

    ref: str
    status: str
    delivered: tuple[str, ...] = ("DELIVRD",)


def parse_report(query_or_body: str | bytes, fields: ReportFields) -> list[Report]:
    """The reports in one push: a query/form string (one report) or a JSON object or list of objects.

    ProtocolError (naming the field) when a report lacks the id or the status, or the JSON is broken.
    """
    if isinstance(query_or_body, bytes):
        query_or_body = httpfetch.decode_text(query_or_body)
    text = query_or_body.strip()
    if text.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProtocolError(f"delivery report is not valid JSON: {exc}") from None
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in items):
            raise ProtocolError("delivery report JSON must be an object or a list of objects")
    else:
        items = [{k: v[0] for k, v in urllib.parse.parse_qs(text.lstrip("?"), keep_blank_values=True).items()}]
    delivered = {value.casefold() for value in fields.delivered}
    reports = []
    for item in items:
        for name in (fields.ref, fields.status):
            if item.get(name) in (None, ""):
                raise ProtocolError(f"delivery report has no {name!r} field: {_excerpt(text)}")
        status = str(item[fields.status])
        reports.append(Report(str(item[fields.ref]), status, status.casefold() in delivered))
    return reports
