"""Helpers for SMS tests through the whole box: a core in real time with its control socket served on a thread of
its own, waiting on its SMS worker's passes, and a small HTTP SMS gateway on localhost."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import urllib.parse

import pytest

from appliance.client import ApiError, ControlClient
from appliance.clock import RealClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from drivers.sim import SimCard


class Box:
    """A core in real time whose asyncio loop (control socket, events) runs on a thread of its own."""

    def __init__(self, root, sms: dict, hotplug=None) -> None:
        self.data = DataDir.open(root, create=True)
        self.cfg = validate({"card": {"trunk_channels": 2, "seats": 1}, "sms": sms})
        prompts = render_prompts(PromptLibrary(self.data.prompts, espeak=None, warn=lambda m: None), self.cfg)
        self.core = Core(self.data, self.cfg, RealClock(), card=SimCard(2, 1, media=False), prompts=prompts,
                         media=False, hotplug=hotplug)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.core.start(), self.loop).result(10)
        self.socket = str(self.data.socket)
        self.stopped = False

    def call(self, cmd: str, **args):
        with ControlClient(self.socket, timeout=10) as c:
            return c.call(cmd, **args)

    def refused(self, cmd: str, **args) -> ApiError:
        with pytest.raises(ApiError) as e:
            self.call(cmd, **args)
        return e.value

    def on_loop(self, fn, *args):
        async def wrap():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(10)

    def wait_state(self, msg_id: str, *wanted: str, timeout: float = 10.0) -> dict:
        end = time.monotonic() + timeout
        while True:
            m = self.call("sms.status", msg_id=msg_id)["message"]
            if m["state"] in wanted:
                return m
            assert time.monotonic() < end, f"{msg_id} still {m['state']} ({m['reason']}), wanted {wanted}"
            time.sleep(0.05)

    def sent(self, to: str, text: str) -> dict:
        """Send and wait for the transport's answer: the message, sent, with its ref."""
        return self.wait_state(self.call("sms.send", to=to, text=text)["message"]["id"], "sent")

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        asyncio.run_coroutine_threadsafe(self.core.stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def passes(core, n: int = 3) -> None:
    """Let the core's SMS worker make at least ``n`` whole passes (a job runs between two passes)."""
    for _ in range(n + 1):
        core.sms_worker.call(lambda now, wall: None).result(10)


class HttpSmsGateway:
    """An HTTP SMS gateway on localhost: a GET per message, answered ``{"code":0,"msgid":...}`` with the next of
    ``ids`` (``M<n>`` when they run out), or with ``status`` and a short body while ``status`` is not 200."""

    SUCCESS = r'"code":0,"msgid":"(?P<ref>\w+)"'

    def __init__(self, ids=()) -> None:
        self.ids, self.sends, self.lock = list(ids), [], threading.Lock()
        self.status = 200
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                with gateway.lock:
                    gateway.sends.append((url.path, dict(urllib.parse.parse_qsl(url.query))))
                    status = gateway.status
                    msgid = gateway.ids.pop(0) if gateway.ids else f"M{len(gateway.sends)}"
                body = b"busy" if status != 200 else \
                    json.dumps({"code": 0, "msgid": msgid}, separators=(",", ":")).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send?to={{number}}&msg={{text}}"

    def config(self, **more) -> dict:
        """The box's ``sms`` section sending through this gateway."""
        return {"via": "http", "http_url": self.url, "http_success": self.SUCCESS, "retry_s": 1, **more}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
