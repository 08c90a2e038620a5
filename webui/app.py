"""The Bottle app factory: login, the live dashboard, the status relay and the SSE event stream."""

from __future__ import annotations

import html
import json
import os
import threading
import time
from typing import Callable, Iterator

import bottle

from appliance.client import ApiError, ApiUnavailable, ControlClient, subscribe
from appliance.errors import ProtocolError
from appliance.messages import LANGS, text
from appliance.users import check_password

from .auth import Sessions
from .sms import sms_app

COOKIE = "cc_session"
HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "templates")
STATIC = os.path.join(HERE, "static")
TRUNK_STATES = ("idle", "ringing", "ivr", "queued", "agent", "external", "voicemail", "alarm")
SEAT_STATES = ("available", "ringing", "talking", "wrap_up", "busy", "logged_out", "out_of_service")
REASONS = ("other", "rest", "meal", "meeting", "training", "paperwork", "no_answer", "supervisor", "off_hook")
LABELS = ("web.trunks", "web.seats", "web.queue", "web.queue.empty", "web.today", "web.live", "web.offline",
          "web.col.seat", "web.col.extension", "web.col.state", "web.col.caller", "web.col.since",
          "web.col.position", "web.col.waiting", "web.alarm.port", "web.alarm.card.removed",
          "web.alarm.recording.disk_full", "web.alarm.recording.write_failed", "web.alarm.sms.down")
REPORT_MAX = 64 * 1024  # bytes of one pushed delivery report (the control API's line is no longer either)
REPORT_STATUS = {"forbidden": 403, "bad_argument": 400, "bad_request": 413, "unavailable": 503}


def _json(obj: dict, status: int = 200) -> bottle.HTTPResponse:
    body = json.dumps(obj, ensure_ascii=False)
    return bottle.HTTPResponse(body, status, {"Content-Type": "application/json; charset=utf-8",
                                              "Cache-Control": "no-store"})


def _plain(body: str, status: int = 200) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(body, status, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})


def _sse(type_: str, data: dict, seq: int | None = None) -> str:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {type_}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class LoginRequired:
    """Bottle plugin: routes are private unless ``access='public'``; ``access='api'`` answers 401, pages 303."""

    name = "login_required"
    api = 2

    def __init__(self, sessions: Sessions, lang: str) -> None:
        self.sessions, self.lang = sessions, lang

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        access = route.config.get("access", "page")
        if access == "public":
            return callback

        def wrapper(*args, **kwargs):
            user = self.sessions.user(bottle.request.get_cookie(COOKIE))
            if user is None:
                if access == "page":
                    bottle.redirect(bottle.request.script_name + "login", 303)
                return _json({"error": "login_required", "message": text("web.login.required", "en")}, 401)
            bottle.request.environ["webui.user"] = user
            return callback(*args, **kwargs)
        return wrapper


def _since(header: str | None) -> int | None:
    """The browser's Last-Event-ID as a seq; anything else means 'from now'."""
    h = (header or "").strip()
    return int(h) if h.isascii() and h.isdigit() and len(h) < 19 else None


def event_stream(socket_path: str, since: int | None, heartbeat_s: float, stopping: threading.Event,
                 poll_s: float = 1.0) -> Iterator[str]:
    """SSE text relayed from a control-API subscription; ends when the core goes away (the browser retries)."""
    try:
        sub = subscribe(socket_path, ("*",), since, timeout=min(poll_s, heartbeat_s))
    except (ApiUnavailable, ApiError) as e:
        yield "retry: 3000\n\n" + _sse("unavailable", {"message": str(e)})
        return
    with sub:
        # the first chunk sends the headers: once the browser has it, no event can slip by
        yield "retry: 3000\n\n"
        if sub.missed:
            yield _sse("resync", {"seq": sub.seq})  # events were lost: the page reloads the snapshot
        idle = 0.0
        try:
            for event in sub:
                if stopping.is_set():
                    return
                if event is None:
                    idle += min(poll_s, heartbeat_s)
                    if idle >= heartbeat_s:
                        idle = 0.0
                        yield ": heartbeat\n\n"  # also how a dead browser is found: the write fails
                    continue
                idle = 0.0
                yield _sse(event["event"], event["data"], event["seq"])
        except (ApiUnavailable, ProtocolError) as e:
            yield _sse("unavailable", {"message": str(e)})


def make_app(config_path: str | os.PathLike, socket_path: str | os.PathLike, *, lang: str = "zh",
             clock: Callable[[], float] = time.monotonic, heartbeat_s: float = 15.0) -> bottle.Bottle:
    """Build the web app for the box whose config file and control socket are given."""
    if lang not in LANGS:
        raise ValueError(f"lang {lang!r} is not one of {', '.join(LANGS)}")
    config_path, socket_path = os.fspath(config_path), os.fspath(socket_path)
    other = next(x for x in LANGS if x != lang)
    app = bottle.Bottle()
    sessions = Sessions(clock)
    client = ControlClient(socket_path)
    stopping = threading.Event()
    app.config["webui.stopping"] = stopping  # set by webui.server on stop, so SSE streams end promptly
    templates = {n: bottle.SimpleTemplate(name=n, lookup=[TEMPLATES]) for n in ("login", "dashboard", "sms")}
    login_required = LoginRequired(sessions, lang)
    app.install(login_required)

    def both(key: str, **fields) -> tuple[str, str]:
        return text(key, lang, **fields), text(key, other, **fields)

    def bi(key: str, **fields) -> str:
        """Safe HTML: the page language, then the other one beside it."""
        a, b = both(key, **fields)
        return f'{html.escape(a)} <span class="alt">{html.escape(b)}</span>'

    def render(name: str, **kw) -> str:
        return templates[name].render(lang=lang, both=both, bi=bi, **kw)

    @app.hook("after_request")
    def _headers():
        h = bottle.response.headers
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Content-Security-Policy"] = "default-src 'self'"

    @app.get("/login", access="public")
    def login_form():
        return render("login", error=None, user="")

    @app.post("/login", access="public")
    def login():
        user = bottle.request.forms.getunicode("user", default="") or ""
        password = bottle.request.forms.getunicode("password", default="") or ""
        if not (user and password and len(user) <= 64 and len(password) <= 256
                and check_password(config_path, user, password)):
            bottle.response.status = 401
            return render("login", error=both("web.login.failed"), user=user[:64])
        sessions.drop(bottle.request.get_cookie(COOKIE))  # never reuse a token from before login
        token = sessions.create(user)
        bottle.response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=bottle.request.script_name)
        bottle.redirect(bottle.request.script_name, 303)

    @app.route("/logout", method=["GET", "POST"])
    def logout():
        sessions.drop(bottle.request.get_cookie(COOKIE))
        bottle.response.delete_cookie(COOKIE, path=bottle.request.script_name)
        bottle.redirect(bottle.request.script_name + "login", 303)

    @app.get("/static/<filename:path>", access="public")
    def static(filename):
        return bottle.static_file(filename, root=STATIC)

    @app.get("/")
    def dashboard():
        i18n = {
            "labels": {**{k: both(k) for k in LABELS}, "web.alarm.span": both("web.alarm.span", span="{span}")},
            "states": {s: both(f"web.state.{s}") for s in sorted(set(TRUNK_STATES + SEAT_STATES))},
            "reasons": {r: both(f"web.reason.{r}") for r in REASONS},
            "today": {k: both(f"web.today.{k}") for k in ("offered", "answered", "abandoned", "in_progress")},
        }
        blob = json.dumps(i18n, ensure_ascii=False).replace("<", "\\u003c")
        return render("dashboard", i18n=blob, trunk_states=TRUNK_STATES, user=bottle.request.environ["webui.user"],
                      nav="dashboard")

    @app.get("/api/status", access="api")
    def status():
        try:
            return _json(client.call("status"))
        except ApiUnavailable as e:
            return _json({"error": "core_unavailable", "message": str(e)}, 503)
        except ApiError as e:
            return _json({"error": e.code, "message": e.message}, 502)

    @app.route("/sms/report/<token>", method=["GET", "POST"], access="public")
    def sms_report(token):
        """The HTTP SMS gateway pushes delivery reports here: it has no session, the token in the URL is the key
        (checked by the core). GET: the query string is the report; POST: the body (form or JSON)."""
        if len(token) > 64:  # cannot match; refused here so the core's argument check never quotes it
            return _plain("forbidden", 403)
        if bottle.request.method == "GET":
            raw = bottle.request.query_string.encode("latin-1", "replace")
        else:
            if (bottle.request.content_length or 0) > REPORT_MAX:
                return _plain(f"report larger than {REPORT_MAX} bytes", 413)
            raw = bottle.request.body.read(REPORT_MAX + 1)
            if len(raw) > REPORT_MAX:  # chunked, without a length
                return _plain(f"report larger than {REPORT_MAX} bytes", 413)
        try:  # Chinese gateways send UTF-8 or GBK
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            body = raw.decode("gb18030", "replace")
        try:
            client.call("sms.http_report", token=token, body=body)
        except ApiUnavailable:  # the gateway retries later; the socket's path is none of its business
            return _plain("the call centre is not running; try again later", 503)
        except ApiError as e:
            status = REPORT_STATUS.get(e.code, 502)
            return _plain(e.message if status != 502 else e.code, status)
        return _plain("OK")

    @app.get("/events", access="api")
    def events():
        bottle.response.content_type = "text/event-stream; charset=utf-8"
        bottle.response.headers["Cache-Control"] = "no-cache"
        bottle.response.headers["X-Accel-Buffering"] = "no"
        since = _since(bottle.request.get_header("Last-Event-ID"))
        return event_stream(socket_path, since, heartbeat_s, stopping)

    # merged into this app's routes (a Bottle app mounted at a prefix ending in "/"): no second path decoding
    app.mount("/", sms_app(socket_path, login_required, render, both))
    return app
