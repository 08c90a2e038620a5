"""The web app over real HTTP on cheroot: login with the cookie, the SSE stream, Last-Event-ID, port in use."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest

from appliance.errors import ApplianceError
from tests.webui.test_app import SNAPSHOT, core  # noqa: F401  (the fixture)
from webui.app import make_app
from webui.server import serve

OFFERED = {"call_id": "c1", "caller": "13800138000", "called": "4008001234", "port": 3}


@pytest.fixture
def site(core):  # noqa: F811
    loop, bus, _, path, config, password = core
    server = serve(make_app(config, path, heartbeat_s=0.5), "127.0.0.1", 0)
    yield server, loop, bus, password
    server.stop()


def request(server, method, url, body=None, headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    conn.request(method, url, body=body, headers=headers or {})
    return conn, conn.getresponse()


def login(server, password) -> str:
    form = urllib.parse.urlencode({"user": "admin", "password": password})
    conn, r = request(server, "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 303 and r.getheader("Location") == f"http://127.0.0.1:{server.port}/"
    cookie = r.getheader("Set-Cookie").split(";")[0]
    conn.close()
    return cookie


def sse_blocks(resp, n):
    """Read ``n`` SSE blocks (up to a blank line each) from a streaming response."""
    blocks, lines = [], []
    while len(blocks) < n:
        line = resp.readline()
        assert line, "stream ended"
        line = line.decode("utf-8").rstrip("\n")
        if line:
            lines.append(line)
        elif lines:
            blocks.append(lines)
            lines = []
    return blocks


def test_login_over_http_with_the_cookie(site):
    server, _, _, password = site
    assert server.url == f"http://127.0.0.1:{server.port}/"
    conn, r = request(server, "GET", "/api/status")
    assert r.status == 401
    conn.close()
    cookie = login(server, password)
    conn, r = request(server, "GET", "/api/status", headers={"Cookie": cookie})
    assert r.status == 200 and r.getheader("Content-Type") == "application/json; charset=utf-8"
    assert json.loads(r.read()) == SNAPSHOT
    conn.close()


def test_events_stream_live_then_replay_with_last_event_id(site):
    server, loop, bus, password = site
    cookie = login(server, password)
    loop.call(bus.publish, "agent.state", {"seat": 1, "state": "available"})  # seq 1, before the stream
    conn, r = request(server, "GET", "/events", headers={"Cookie": cookie})
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert r.getheader("Cache-Control") == "no-cache"
    assert sse_blocks(r, 1) == [["retry: 3000"]]
    seq = loop.call(bus.publish, "call.offered", OFFERED)
    assert seq == 2
    assert sse_blocks(r, 1) == [["id: 2", "event: call.offered", "data: " + json.dumps(OFFERED)]]
    t = time.monotonic()
    assert sse_blocks(r, 1) == [[": heartbeat"]]  # nothing happened for heartbeat_s
    assert 0.3 < time.monotonic() - t < 3
    conn.close()  # the browser goes away...

    loop.call(bus.publish, "call.queued", {"call_id": "c1", "position": 1})  # ...and misses seq 3
    conn, r = request(server, "GET", "/events", headers={"Cookie": cookie, "Last-Event-ID": "2"})
    assert sse_blocks(r, 2) == [["retry: 3000"],
                                ["id: 3", "event: call.queued", "data: " + json.dumps({"call_id": "c1", "position": 1})]]
    conn.close()


def test_events_after_a_buffer_overrun_ask_for_resync(site):
    server, loop, bus, password = site
    cookie = login(server, password)
    conn, r = request(server, "GET", "/events", headers={"Cookie": cookie, "Last-Event-ID": "99"})
    assert sse_blocks(r, 2) == [["retry: 3000"], ["event: resync", 'data: {"seq": 0}']]
    conn.close()


def test_stop_ends_open_streams_and_port_in_use(core):  # noqa: F811
    _, _, _, path, config, password = core
    server = serve(make_app(config, path), "127.0.0.1", 0)
    try:
        with pytest.raises(ApplianceError) as e:
            serve(make_app(config, path), "127.0.0.1", server.port)
        assert str(e.value) == f"port {server.port} on 127.0.0.1 is already in use"
        cookie = login(server, password)
        conn, r = request(server, "GET", "/events", headers={"Cookie": cookie})
        assert sse_blocks(r, 1) == [["retry: 3000"]]
    finally:
        t = time.monotonic()
        server.stop()
        assert time.monotonic() - t < 4
    assert r.read() == b""  # the stream was ended, not left hanging
    conn.close()
