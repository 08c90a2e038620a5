"""Blocking client of the control API, for the web process and the serial console."""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
from typing import Any, Iterator

from .errors import ApplianceError, ProtocolError

MAX_LINE = 16 * 1024 * 1024  # a status snapshot is a few KB; anything this long is a broken peer


class ApiError(ProtocolError):
    """The core answered ``ok: false``; ``code`` is its error code (bad_argument, not_found, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ApiUnavailable(ApplianceError):
    """The control socket is missing, refuses, or the core went away mid-conversation."""


def _connect(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        sock.close()
        raise ApiUnavailable(f"control socket {path} does not answer ({e.strerror}): the core is not running") from None
    except OSError as e:
        sock.close()
        raise ApiUnavailable(f"control socket {path} cannot be reached: {e}") from None
    return sock


class _LineReader:
    """Split a socket's bytes into lines; a read timeout leaves the partial line intact."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock, self.path, self.buf = sock, path, b""

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                return line
            if len(self.buf) > MAX_LINE:
                raise ProtocolError(f"control socket {self.path} sent a line over {MAX_LINE} bytes")
            chunk = self.sock.recv(65536)  # socket.timeout propagates; buf is kept
            if not chunk:
                raise ApiUnavailable(f"control socket {self.path} closed the connection: the core stopped")
            self.buf += chunk


def _decode(line: bytes, path: str) -> dict:
    try:
        obj = json.loads(line.decode("utf-8"))
    except ValueError:
        raise ProtocolError(f"control socket {path} sent a line that is not JSON: {line[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"control socket {path} sent {type(obj).__name__}, expected an object")
    return obj


class ControlClient:
    """Request/response over one connection, shared by threads, reconnected once after a core restart."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader: _LineReader | None = None
        self._ids = itertools.count(1)

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None

    def _stale(self) -> bool:
        """True if the core closed our idle connection (it restarted): readable with EOF."""
        assert self._sock is not None
        readable, _, _ = select.select([self._sock], [], [], 0)
        if not readable:
            return False
        try:
            return self._sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _send(self, data: bytes) -> None:
        """Send on the current connection, reconnecting once if it is dead before the request left."""
        for attempt in (1, 2):
            if self._sock is not None and self._stale():
                self._drop()
            if self._sock is None:
                self._sock = _connect(self.path, self.timeout)
                self._reader = _LineReader(self._sock, self.path)
            try:
                self._sock.sendall(data)
                return
            except (BrokenPipeError, ConnectionResetError):
                self._drop()
                if attempt == 2:
                    raise ApiUnavailable(f"control socket {self.path} dropped the connection: the core is not running") from None

    def call(self, cmd: str, **args: Any) -> dict:
        """Run ``cmd`` with ``args``; return the result fields, or raise ApiError / ApiUnavailable."""
        if cmd == "subscribe":
            raise ValueError("use client.subscribe() for events: it needs its own connection")
        with self._lock:
            id_ = next(self._ids)
            data = json.dumps({"id": id_, "cmd": cmd, **args}, ensure_ascii=False).encode("utf-8") + b"\n"
            self._send(data)
            try:
                while True:
                    resp = _decode(self._reader.readline(), self.path)
                    if resp.get("id") == id_ or (resp.get("id") is None and resp.get("ok") is False):
                        break
            except socket.timeout:
                self._drop()  # a late answer would desynchronise the next call
                raise ApiUnavailable(f"control socket {self.path} did not answer {cmd} within {self.timeout} s") from None
            except (ApiUnavailable, ProtocolError, OSError):
                self._drop()
                raise
        if not resp.get("ok"):
            raise ApiError(str(resp.get("error")), str(resp.get("message")))
        return {k: v for k, v in resp.items() if k not in ("id", "ok")}

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscription:
    """Iterator over events on its own connection.

    ``seq`` and ``missed`` come from the subscribe answer. With a ``timeout`` the
    iterator yields ``None`` after that many idle seconds, so a relay can send a
    heartbeat or notice it should stop. A closed connection or an overflow raises
    ApiUnavailable: reconnect with ``since`` = the last seq seen.
    """

    def __init__(self, path: str, patterns=("*",), since: int | None = None, timeout: float | None = None) -> None:
        self.path = str(path)
        self._sock = _connect(self.path, 5.0)
        self._reader = _LineReader(self._sock, self.path)
        req = {"id": 1, "cmd": "subscribe", "patterns": list(patterns)}
        if since is not None:
            req["since"] = since
        try:
            self._sock.sendall(json.dumps(req).encode("utf-8") + b"\n")
            resp = _decode(self._reader.readline(), self.path)
        except socket.timeout:
            self.close()
            raise ApiUnavailable(f"control socket {self.path} did not answer subscribe") from None
        except (OSError, ApplianceError):
            self.close()
            raise
        if not resp.get("ok"):
            self.close()
            raise ApiError(str(resp.get("error")), str(resp.get("message")))
        self.seq: int = resp["seq"]
        self.missed: bool = resp["missed"]
        self._sock.settimeout(timeout)

    def __iter__(self) -> Iterator[dict | None]:
        return self

    def __next__(self) -> dict | None:
        if self._sock is None:
            raise StopIteration
        try:
            line = self._reader.readline()
        except socket.timeout:
            return None
        except OSError as e:
            self.close()
            raise ApiUnavailable(f"control socket {self.path} failed: {e}") from None
        except ApplianceError:
            self.close()
            raise
        event = _decode(line, self.path)
        if event.get("event") == "overflow":
            self.close()
            last = event.get("data", {}).get("last_seq")
            raise ApiUnavailable(f"control socket {self.path} cut this subscriber off: it fell behind after seq {last}")
        return event

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(path: str, patterns=("*",), since: int | None = None, timeout: float | None = None) -> Subscription:
    """Open a subscription (connects now, so ApiUnavailable is raised here); iterate it for events."""
    return Subscription(path, patterns, since, timeout)
