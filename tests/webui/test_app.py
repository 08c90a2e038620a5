"""The web app in process (webtest) against a real control server: login, access control, status relay."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
import webtest

from appliance.control import CommandError, ControlServer, EventBus
from tests.appliance.test_control import Clock, Loop
from webui.app import COOKIE, make_app
from appliance.users import ensure_admin

SNAPSHOT = {
    "time": 1764300000.0,
    "box": {"name": "呼叫中心", "number": "4008001234"},
    "trunks": [{"port": p - 1, "channel": p, "name": f"E1 1/{p}", "state": "idle", "caller": None, "call_id": None} for p in range(1, 31)],
    "seats": [{"seat": s, "name": f"坐席{s}", "extension": f"80{s}", "state": "available", "caller": None,
               "call_id": None, "since": 1764299000.0} for s in range(1, 7)],
    "queue": [{"call_id": "c7", "caller": "13800138000", "position": 1, "waiting_s": 12.3}],
    "today": {"offered": 10, "answered": 8, "abandoned": 1, "in_progress": 1},
}
SNAPSHOT["trunks"][0].update(state="agent", caller="13900139000", call_id="c5")
SNAPSHOT["trunks"][1].update(state="queued", caller="13800138000", call_id="c7")
SNAPSHOT["seats"][1].update(state="talking", caller="13900139000", call_id="c5")


@pytest.fixture
def core():
    """A control server serving ``status``; yields (loop, bus, server, socket path, config path)."""
    with tempfile.TemporaryDirectory(prefix="cc-") as d:
        loop = Loop()
        bus = EventBus(Clock())
        path = os.path.join(d, "core.sock")
        server = ControlServer(path, bus)
        broken = []

        @server.command("status")
        def status():
            if broken:
                raise CommandError("conflict", broken[0])
            return SNAPSHOT

        server.broken = broken
        loop.run(server.start())
        config = os.path.join(d, "config.json")
        password = ensure_admin(config)
        yield loop, bus, server, path, config, password
        loop.run(server.close())
        loop.stop()


@pytest.fixture
def web(core):
    _, _, _, path, config, password = core
    now = [0.0]
    app = make_app(config, path, clock=lambda: now[0])
    return webtest.TestApp(app), password, now


def login(app, password, user="admin", status=303):
    return app.post("/login", {"user": user, "password": password}, status=status)


@pytest.mark.parametrize("url", ["/", "/logout"])
def test_pages_redirect_to_login(web, url):
    app, _, _ = web
    assert app.get(url, status=303).headers["Location"] == "http://localhost:80/login"


def test_static_cannot_leave_its_folder(web):
    app, _, _ = web
    assert "Access denied." in app.get("/static/../app.py", status=403).text


@pytest.mark.parametrize("url", ["/api/status", "/events"])
def test_api_and_events_answer_401(web, url):
    app, _, _ = web
    r = app.get(url, status=401)
    assert r.content_type == "application/json"
    assert r.json == {"error": "login_required", "message": "Please sign in first"}


def test_login_page_and_static_are_public(web):
    app, _, _ = web
    page = app.get("/login", status=200)
    assert "登录" in page.text and "Sign in" in page.text and 'name="password"' in page.text
    assert page.headers["Content-Security-Policy"] == "default-src 'self'"
    js = app.get("/static/dashboard.js", status=200)
    assert 'new EventSource("events")' in js.text
    assert app.get("/static/style.css", status=200).content_type == "text/css"


@pytest.mark.parametrize("user, password", [("admin", "wrong"), ("ghost", None), ("", None), ("admin", "")])
def test_wrong_passwords_are_refused(web, user, password):
    app, real, _ = web
    if password is None:
        password = real  # the right password for a user that does not exist
    r = login(app, password, user=user, status=401)
    assert "用户名或密码错误" in r.text and "Wrong user name or password" in r.text
    assert "Set-Cookie" not in r.headers
    app.get("/api/status", status=401)


def test_login_status_relay_and_logout(web):
    app, password, _ = web
    r = login(app, password)
    assert r.headers["Location"] == "http://localhost:80/"
    cookie = r.headers["Set-Cookie"]
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40 and cookie == f"{COOKIE}={token}; HttpOnly; Path=/; SameSite=strict"

    page = app.get("/", status=200)
    assert "中继通道" in page.text and "Trunk channels" in page.text and 'src="static/dashboard.js"' in page.text
    i18n = json.loads(page.html.find("script", id="i18n").string)
    assert i18n["states"]["agent"] == ["通话", "With agent"]

    r = app.get("/api/status", status=200)
    assert r.content_type == "application/json"
    assert r.json == SNAPSHOT
    assert json.loads(r.body.decode("utf-8")) == SNAPSHOT and "呼叫中心".encode() in r.body

    r = app.post("/logout", status=303)
    assert r.headers["Location"] == "http://localhost:80/login"
    app.get("/api/status", status=401)
    app.set_cookie(COOKIE, token)  # the old token is dead on the server side too
    app.get("/api/status", status=401)
    app.get("/", status=303)


def test_session_expires_after_idle(web):
    app, password, now = web
    login(app, password)
    now[0] += 7 * 3600
    assert app.get("/api/status", status=200).json == SNAPSHOT  # use renews the idle timer
    now[0] += 8 * 3600 + 1
    assert app.get("/api/status", status=401).json["error"] == "login_required"


def test_core_down_gives_503_naming_the_socket(core, web):
    loop, _, server, path, _, _ = core
    app, password, _ = web
    login(app, password)
    app.get("/api/status", status=200)
    loop.run(server.close())
    r = app.get("/api/status", status=503)
    assert r.json["error"] == "core_unavailable"
    assert path in r.json["message"] and "the core is not running" in r.json["message"]
    r = app.get("/events", status=200)
    assert r.content_type == "text/event-stream"
    assert r.text.startswith("retry: 3000\n\nevent: unavailable\ndata: {")
    assert path in r.text and r.text.endswith("}\n\n")
    loop.run(server.start())
    assert app.get("/api/status", status=200).json == SNAPSHOT  # the client reconnects by itself


def test_core_error_is_relayed_as_502(core, web):
    app, password, _ = web
    core[2].broken.append("status is being rebuilt")
    login(app, password)
    assert app.get("/api/status", status=502).json == {"error": "conflict", "message": "status is being rebuilt"}
