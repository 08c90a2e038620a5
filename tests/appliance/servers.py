"""Real servers for tests: a local HTTP server standing in for a business system, and a core's control API served
on its Unix socket by a loop thread, as the core process serves it."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import threading
from typing import Iterator

from appliance.client import ControlClient


class Answering(http.server.BaseHTTPRequestHandler):
    """A request handler with ``answer`` and no log lines; subclasses write ``do_GET``."""

    def answer(self, kind: str, body: bytes, status: int = 200) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting: as some tests intend
            pass

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@contextlib.contextmanager
def control_api(core, timeout: float = 5.0) -> Iterator[ControlClient]:
    """The core's control API on its socket, served by a loop thread; yields a client. The test's thread runs
    the runtime between calls."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(core.server.start(), loop).result(5)
    client = ControlClient(str(core.data.socket), timeout=timeout)
    try:
        yield client
    finally:
        client.close()
        asyncio.run_coroutine_threadsafe(core.server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
