"""The control API server: JSON lines on a Unix socket, declared argument schemas, and the event bus."""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import inspect
import json
import logging
import os
import stat
from typing import Any, Awaitable, Callable, Iterable

from .apischema import Arg, Bool, CommandError, Enum, Int, List, Str, show as _show, validate
from .errors import ApplianceError

__all__ = ["Arg", "Bool", "CommandError", "ControlServer", "Enum", "EventBus", "Int", "List", "Str", "validate"]

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024  # bytes of one request line, without its newline


# ---------------------------------------------------------------- event bus


class _Subscriber:
    """One streaming connection's bounded queue; ``None`` in the queue means stop."""

    def __init__(self, patterns: list[str], size: int, on_overflow: Callable[["_Subscriber"], None]) -> None:
        self.patterns = patterns
        self.queue: asyncio.Queue = asyncio.Queue(size)
        self.on_overflow = on_overflow
        self.last_seq = 0  # last seq handed to the queue or written by replay

    def wants(self, type_: str) -> bool:
        return any(fnmatch.fnmatchcase(type_, p) for p in self.patterns)


class EventBus:
    """Numbered events in a ring buffer, fanned out to socket subscribers and in-process listeners.

    ``publish`` runs on the asyncio loop thread (the 20 ms tick calls it): it never
    blocks and never awaits; a subscriber whose queue is full is cut off instead.
    ``clock`` returns wall-clock epoch seconds (virtual in virtual time).
    """

    def __init__(self, clock: Callable[[], float], capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be at least 1")
        self._clock = clock
        self._ring: collections.deque[dict] = collections.deque(maxlen=capacity)
        self._seq = 0
        self._subs: list[_Subscriber] = []
        self._listeners: list[Callable[[dict], None]] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, type: str, data: dict) -> int:
        """Number, store and fan out one event; ``data`` must not be mutated afterwards."""
        self._seq += 1
        event = {"event": type, "seq": self._seq, "time": self._clock(), "data": data}
        self._ring.append(event)
        for sub in list(self._subs):
            if sub.wants(type):
                try:
                    sub.queue.put_nowait(event)
                    sub.last_seq = self._seq
                except asyncio.QueueFull:
                    self._subs.remove(sub)
                    sub.on_overflow(sub)
        for cb in list(self._listeners):
            try:
                cb(event)
            except Exception:  # a broken listener must not stop the tick
                log.exception("event listener %r failed on %s", cb, type)
        return self._seq

    def since(self, seq: int, patterns: Iterable[str]) -> tuple[list[dict], bool]:
        """Buffered events after ``seq`` matching ``patterns``, and whether some were already dropped.

        A ``seq`` beyond the last one comes from before a core restart: everything
        buffered is replayed and ``missed`` is true.
        """
        pats = list(patterns)
        if seq > self._seq:
            seq, missed = 0, True
        else:
            oldest = self._ring[0]["seq"] if self._ring else self._seq + 1
            missed = seq < oldest - 1
        events = [e for e in self._ring if e["seq"] > seq and any(fnmatch.fnmatchcase(e["event"], p) for p in pats)]
        return events, missed

    def listen(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(event)`` synchronously on every publish."""
        self._listeners.append(callback)

    def unlisten(self, callback: Callable[[dict], None]) -> None:
        self._listeners.remove(callback)

    def _add(self, sub: _Subscriber) -> None:
        self._subs.append(sub)

    def _remove(self, sub: _Subscriber) -> None:
        if sub in self._subs:
            self._subs.remove(sub)


# ---------------------------------------------------------------- server

Handler = Callable[..., dict]


def _line(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _error(id_: Any, code: str, message: str) -> dict:
    return {"id": id_, "ok": False, "error": code, "message": " ".join(message.split())}


class ControlServer:
    """Serve commands and event subscriptions on the Unix socket ``path``."""

    def __init__(self, path: str | os.PathLike, bus: EventBus, *, queue_size: int = 1024) -> None:
        self.path = os.fspath(path)
        self.bus = bus
        self.queue_size = queue_size
        self._commands: dict[str, tuple[Handler, dict[str, Arg]]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.register("ping", lambda: {"pong": True}, {})
        self.register("commands", self._list_commands, {})
        self._subscribe_schema = {"patterns": List(Str(64), 32, required=False, default=["*"]),
                                  "since": Int(0, None, required=False)}

    def register(self, name: str, handler: Handler, schema: dict[str, Arg] | None = None) -> None:
        if name in self._commands or name == "subscribe":
            raise ValueError(f"command {name!r} is already registered")
        self._commands[name] = (handler, dict(schema or {}))

    def command(self, name: str, **schema: Arg) -> Callable[[Handler], Handler]:
        """Decorator form of ``register``: ``@server.command("agent.state", seat=Int(1, 6))``."""
        def deco(fn: Handler) -> Handler:
            self.register(name, fn, schema)
            return fn
        return deco

    def _list_commands(self) -> dict:
        cmds = {name: {a: arg.describe() for a, arg in schema.items()} for name, (_, schema) in self._commands.items()}
        cmds["subscribe"] = {a: arg.describe() for a, arg in self._subscribe_schema.items()}
        return {"commands": dict(sorted(cmds.items()))}

    # -- request handling (sync, runs on the loop)

    def parse(self, raw: bytes) -> tuple[Any, str, dict] | dict:
        """Decode one line into (id, cmd, args), or return the error response."""
        try:
            req = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return _error(None, "bad_request", "request is not UTF-8")
        except ValueError as e:
            return _error(None, "bad_request", f"request is not JSON: {e}")
        if not isinstance(req, dict):
            return _error(None, "bad_request", f"request is a JSON {type(req).__name__}, expected an object")
        id_ = req.pop("id", None)
        if not (isinstance(id_, (int, str)) and not isinstance(id_, bool)):
            return _error(None, "bad_request", f"id: {_show(id_)} is not valid; allowed an integer or a string")
        cmd = req.pop("cmd", None)
        if not isinstance(cmd, str) or not cmd:
            return _error(id_, "bad_request", f"cmd: {_show(cmd)} is not valid; allowed a command name string")
        return id_, cmd, req

    def execute(self, id_: Any, cmd: str, args: dict) -> dict:
        """Run a registered command and build its response."""
        entry = self._commands.get(cmd)
        if entry is None:
            return _error(id_, "unknown_command", f"unknown command {_show(cmd)}; send {{\"cmd\": \"commands\"}} for the list")
        handler, schema = entry
        try:
            result = handler(**validate(schema, args))
            if inspect.isawaitable(result):  # a command with slow work off the loop: answered when it is done
                return self._finish(id_, cmd, result)
            return self._respond(id_, cmd, result)
        except CommandError as e:
            return _error(id_, e.code, e.message)
        except Exception as e:
            log.exception("control command %s failed", cmd)
            return _error(id_, "internal", f"command {cmd} failed: {type(e).__name__}: {e}")

    async def _finish(self, id_: Any, cmd: str, pending: Awaitable) -> dict:
        try:
            return self._respond(id_, cmd, await pending)
        except CommandError as e:
            return _error(id_, e.code, e.message)
        except Exception as e:
            log.exception("control command %s failed", cmd)
            return _error(id_, "internal", f"command {cmd} failed: {type(e).__name__}: {e}")

    @staticmethod
    def _respond(id_: Any, cmd: str, result: Any) -> dict:
        if not isinstance(result, dict) or "id" in result or "ok" in result:
            raise TypeError(f"handler returned {type(result).__name__}, expected a dict without id/ok")
        response = {"id": id_, "ok": True, **result}
        json.dumps(response)  # fail here, as internal, rather than mid-write
        return response

    # -- connections

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        sub: _Subscriber | None = None
        pump: asyncio.Task | None = None
        try:
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:  # longer than the stream limit
                    writer.write(_line(_error(None, "bad_request", f"request line is longer than {MAX_LINE} bytes")))
                    break
                if not raw:
                    break
                if not raw.strip():
                    continue
                parsed = self.parse(raw)
                if isinstance(parsed, dict):
                    writer.write(_line(parsed))
                elif parsed[1] == "subscribe":
                    if sub is not None:
                        writer.write(_line(_error(parsed[0], "conflict", "this connection is already subscribed")))
                    else:
                        sub = self._subscribe(writer, *parsed)
                        if sub is not None:
                            pump = asyncio.create_task(self._pump(sub, writer))
                else:
                    response = self.execute(*parsed)
                    if inspect.isawaitable(response):
                        response = await response
                    writer.write(_line(response))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            if sub is not None:
                self.bus._remove(sub)
            if pump is not None:
                pump.cancel()
            self._writers.discard(writer)
            writer.close()

    def _subscribe(self, writer: asyncio.StreamWriter, id_: Any, _cmd: str, args: dict) -> _Subscriber | None:
        """Answer, replay and register in one synchronous step, so no event falls in between."""
        try:
            a = validate(self._subscribe_schema, args)
        except CommandError as e:
            writer.write(_line(_error(id_, e.code, e.message)))
            return None
        events, missed = self.bus.since(a["since"], a["patterns"]) if a["since"] is not None else ([], False)
        writer.write(_line({"id": id_, "ok": True, "seq": self.bus.last_seq, "missed": missed}))
        for e in events:
            writer.write(_line(e))
        sub = _Subscriber(a["patterns"], self.queue_size, lambda s: self._overflow(s, writer))
        sub.last_seq = self.bus.last_seq
        self.bus._add(sub)
        return sub

    def _overflow(self, sub: _Subscriber, writer: asyncio.StreamWriter) -> None:
        """Flush what was queued, say why, and hang up (abort if the peer does not read)."""
        while not sub.queue.empty():
            writer.write(_line(sub.queue.get_nowait()))
        writer.write(_line({"event": "overflow", "seq": None, "time": self.bus._clock(),
                            "data": {"last_seq": sub.last_seq, "queue_size": self.queue_size}}))
        sub.queue.put_nowait(None)
        writer.close()
        asyncio.get_running_loop().call_later(2.0, writer.transport.abort)

    async def _pump(self, sub: _Subscriber, writer: asyncio.StreamWriter) -> None:
        try:
            while (event := await sub.queue.get()) is not None:
                writer.write(_line(event))
                await writer.drain()
        except ConnectionError:
            self.bus._remove(sub)

    # -- lifecycle

    async def start(self) -> None:
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise ApplianceError(f"control socket path {self.path} exists and is not a socket")
            try:
                _, w = await asyncio.wait_for(asyncio.open_unix_connection(self.path), 2.0)
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(self.path)  # stale: left by a core that died
            except (OSError, asyncio.TimeoutError) as e:
                raise ApplianceError(f"control socket {self.path} cannot be checked: {e}") from None
            else:
                w.close()
                raise ApplianceError(f"control socket {self.path} is in use by another process")
        self._server = await asyncio.start_unix_server(self._connection, self.path, limit=MAX_LINE)
        os.chmod(self.path, 0o660)
        self._inode = os.stat(self.path).st_ino

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()
        self._server = None
        try:
            if os.stat(self.path).st_ino == self._inode:  # never remove a successor's socket
                os.unlink(self.path)
        except FileNotFoundError:
            pass
