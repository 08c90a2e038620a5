"""The control API on a real Unix socket: commands, schema errors, subscriptions, overflow, socket lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import tempfile
import threading
import time

import pytest

from appliance.client import ApiError, ApiUnavailable, ControlClient, subscribe
from appliance.control import Bool, CommandError, ControlServer, Enum, EventBus, Int, List, Str
from appliance.errors import ApplianceError

T0 = 1764300000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        self.t += 0.5
        return self.t


class Loop:
    """An asyncio loop in a background thread, as the core runs it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 5.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args):
        async def wrap():
            return fn(*args)
        return self.run(wrap())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def sockdir():
    with tempfile.TemporaryDirectory(prefix="cc-") as d:  # short: AF_UNIX paths are limited to 107 bytes
        yield d


@pytest.fixture
def env(sockdir):
    loop = Loop()
    bus = EventBus(Clock(), capacity=16)
    path = os.path.join(sockdir, "core.sock")
    server = ControlServer(path, bus, queue_size=8)

    @server.command("agent.state", seat=Int(1, 6), state=Enum("available", "busy"), note=Str(10, required=False, default=""))
    def agent_state(seat, state, note):
        return {"seat": seat, "state": state, "note": note}

    @server.command("lookup", call_id=Str(20), tags=List(Str(5), 3, required=False, default=[]), loud=Bool(required=False, default=False))
    def lookup(call_id, tags, loud):
        if call_id == "busy":
            raise CommandError("conflict", "call busy is already being transferred")
        raise CommandError("not_found", f"call_id: no call {call_id}")

    server.register("boom", lambda: {"x": 1 // 0})
    loop.run(server.start())
    yield loop, bus, server, path
    loop.run(server.close())
    loop.stop()


def talk(path: str, *lines: bytes, expect: int | None = None) -> list[dict]:
    """Send raw lines on one connection and read back one answer per line (or ``expect`` lines)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(3)
        s.connect(path)
        s.sendall(b"".join(lines))
        f = s.makefile("rb")
        return [json.loads(f.readline()) for _ in range(expect or len(lines))]


def req(**kw) -> bytes:
    return json.dumps(kw).encode() + b"\n"


def test_ping_and_registered_command(env):
    _, _, _, path = env
    answers = talk(path, req(id=1, cmd="ping"), req(id="a", cmd="agent.state", seat=2, state="available"),
                   req(id=3, cmd="agent.state", seat=6, state="busy", note="lunch"))
    assert answers == [
        {"id": 1, "ok": True, "pong": True},
        {"id": "a", "ok": True, "seat": 2, "state": "available", "note": ""},
        {"id": 3, "ok": True, "seat": 6, "state": "busy", "note": "lunch"},
    ]


@pytest.mark.parametrize("line, code, message", [
    (req(id=4, cmd="agent.state", seat=9, state="busy"), "bad_argument", "seat: 9 is out of range; allowed 1..6"),
    (req(id=4, cmd="agent.state", seat="2", state="busy"), "bad_argument", 'seat: "2" is not an integer; allowed 1..6'),
    (req(id=4, cmd="agent.state", seat=True, state="busy"), "bad_argument", "seat: true is not an integer; allowed 1..6"),
    (req(id=4, cmd="agent.state", seat=1, state="gone"), "bad_argument",
     'state: "gone" is not one of them; allowed available, busy'),
    (req(id=4, cmd="agent.state", seat=1), "bad_argument",
     "state: required argument is missing; allowed available, busy"),
    (req(id=4, cmd="agent.state", seat=1, state="busy", colour="red"), "bad_argument",
     "colour: unknown argument; allowed seat, state, note"),
    (req(id=4, cmd="agent.state", seat=1, state="busy", note="x" * 11), "bad_argument",
     'note: "xxxxxxxxxxx" is 11 characters long; allowed a string of at most 10 characters'),
    (req(id=4, cmd="lookup", call_id="c1", tags=["ok", "toolong"]), "bad_argument",
     'tags[1]: "toolong" is 7 characters long; allowed a string of at most 5 characters'),
    (req(id=4, cmd="lookup", call_id="c1", loud="yes"), "bad_argument", 'loud: "yes" is not a boolean; allowed true, false'),
    (req(id=4, cmd="ping", x=1), "bad_argument", "x: unknown argument; allowed none"),
    (req(id=4, cmd="lookup", call_id="c9"), "not_found", "call_id: no call c9"),
    (req(id=4, cmd="lookup", call_id="busy"), "conflict", "call busy is already being transferred"),
    (req(id=4, cmd="dance"), "unknown_command", 'unknown command "dance"; send {"cmd": "commands"} for the list'),
    (req(id=4, cmd="boom"), "internal", "command boom failed: ZeroDivisionError: integer division or modulo by zero"),
    (req(id=4, cmd=""), "bad_request", 'cmd: "" is not valid; allowed a command name string'),
    (req(id=4), "bad_request", "cmd: null is not valid; allowed a command name string"),
])
def test_error_codes_and_messages(env, line, code, message):
    _, _, _, path = env
    # the same connection keeps serving after every kind of error
    assert talk(path, line, req(id=5, cmd="ping")) == [
        {"id": 4, "ok": False, "error": code, "message": message}, {"id": 5, "ok": True, "pong": True}]


@pytest.mark.parametrize("line, message", [
    (b"{not json\n", "request is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b"[1, 2]\n", "request is a JSON list, expected an object"),
    (b'{"cmd": "ping"}\n', "id: null is not valid; allowed an integer or a string"),
    (b'{"id": true, "cmd": "ping"}\n', "id: true is not valid; allowed an integer or a string"),
    (b'{"id": 1, "cmd": "ping"\xff}\n', "request is not UTF-8"),
])
def test_bad_requests(env, line, message):
    _, _, _, path = env
    assert talk(path, line, req(id=5, cmd="ping")) == [
        {"id": None, "ok": False, "error": "bad_request", "message": message}, {"id": 5, "ok": True, "pong": True}]


def test_long_line_is_refused_and_connection_closed(env):
    _, _, _, path = env
    ok_line = b'{"id": 1, "cmd": "ping", "pad": "' + b"x" * (65536 - 35) + b'"}'
    assert len(ok_line) == 65536  # the limit itself is allowed (and then fails on the unknown argument)
    assert talk(path, ok_line + b"\n")[0]["message"] == "pad: unknown argument; allowed none"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(3)
        s.connect(path)
        s.sendall(ok_line[:-2] + b'x"}\n' + req(id=2, cmd="ping"))
        f = s.makefile("rb")
        assert json.loads(f.readline()) == {"id": None, "ok": False, "error": "bad_request",
                                            "message": "request line is longer than 65536 bytes"}
        assert f.readline() == b""


def test_commands_lists_schemas(env):
    _, _, _, path = env
    cmds = talk(path, req(id=1, cmd="commands"))[0]["commands"]
    assert sorted(cmds) == ["agent.state", "boom", "commands", "lookup", "ping", "subscribe"]
    assert cmds["agent.state"]["seat"] == {"type": "int", "required": True, "allowed": "1..6"}
    assert cmds["agent.state"]["state"]["values"] == ["available", "busy"]
    assert cmds["agent.state"]["note"] == {"type": "str", "required": False, "default": "",
                                           "allowed": "a string of at most 10 characters"}


def read_events(sub, n):
    out = []
    while len(out) < n:
        ev = next(sub)
        assert ev is not None, f"timed out after {out}"
        out.append(ev)
    return out


def test_subscribe_filters_patterns_in_seq_order(env):
    loop, bus, _, path = env
    with subscribe(path, patterns=["call.*", "queue.*"], timeout=3) as sub:
        assert (sub.seq, sub.missed) == (0, False)
        for type_, data in [("call.offered", {"call_id": "c1", "caller": "13800138000", "called": "4008001234", "port": 1}),
                            ("agent.state", {"seat": 1, "state": "busy"}),
                            ("queue.length", {"length": 1}),
                            ("call.ended", {"call_id": "c1", "disposition": "abandoned", "talk_s": 0, "wait_s": 3.5})]:
            loop.call(bus.publish, type_, data)
        got = read_events(sub, 3)
    assert got == [
        {"event": "call.offered", "seq": 1, "time": T0 + 0.5,
         "data": {"call_id": "c1", "caller": "13800138000", "called": "4008001234", "port": 1}},
        {"event": "queue.length", "seq": 3, "time": T0 + 1.5, "data": {"length": 1}},
        {"event": "call.ended", "seq": 4, "time": T0 + 2.0,
         "data": {"call_id": "c1", "disposition": "abandoned", "talk_s": 0, "wait_s": 3.5}},
    ]


def test_since_replays_exactly_the_missed_events_then_streams(env):
    loop, bus, _, path = env
    for i in range(1, 6):
        loop.call(bus.publish, "call.queued" if i % 2 else "agent.state", {"i": i})
    with subscribe(path, patterns=["call.*"], since=1, timeout=0.5) as sub:
        assert (sub.seq, sub.missed) == (5, False)
        assert [e["seq"] for e in read_events(sub, 2)] == [3, 5]
        loop.call(bus.publish, "call.queued", {"i": 6})
        assert read_events(sub, 1)[0]["data"] == {"i": 6}
        assert next(sub) is None  # idle: the timeout wakes the reader without an event
    with subscribe(path, since=6, timeout=0.2) as sub:
        assert (sub.seq, sub.missed) == (6, False)
        assert next(sub) is None


def test_missed_when_the_buffer_was_overrun(env):
    loop, bus, _, path = env
    for i in range(1, 21):  # capacity 16: seqs 1..4 are gone
        loop.call(bus.publish, "call.queued", {"i": i})
    with subscribe(path, since=3, timeout=3) as sub:
        assert (sub.seq, sub.missed) == (20, True)
        assert [e["seq"] for e in read_events(sub, 16)] == list(range(5, 21))
    with subscribe(path, since=4, timeout=3) as sub:
        assert sub.missed is False  # exactly the oldest kept one follows
    with subscribe(path, since=99, timeout=3) as sub:  # a seq from before a core restart
        assert sub.missed is True
        assert read_events(sub, 1)[0]["seq"] == 5


def test_slow_subscriber_is_cut_off_without_blocking_publish(env):
    loop, bus, _, path = env
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(path)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(req(id=1, cmd="subscribe", patterns=["call.*"]))
    seen = []
    bus.listen(seen.append)
    with subscribe(path, patterns=["agent.*"], timeout=3) as other:

        async def flood():
            await asyncio.sleep(0.05)  # let the subscribe land
            t = time.perf_counter()
            for i in range(300):
                bus.publish("call.offered", {"i": i, "pad": "x" * 2000})
                await asyncio.sleep(0)
            return time.perf_counter() - t

        assert loop.run(flood()) < 2.0
        loop.call(bus.publish, "agent.state", {"seat": 1, "state": "available"})
        assert read_events(other, 1)[0]["seq"] == 301  # the others are still served
    assert len(seen) == 301
    slow.settimeout(3)
    f = slow.makefile("rb")
    assert json.loads(f.readline()) == {"id": 1, "ok": True, "seq": 0, "missed": False}
    lines = [json.loads(x) for x in f]  # up to EOF: the server hung up
    slow.close()
    *events, last = lines
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert 8 <= len(events) < 300
    assert last["event"] == "overflow"
    assert last["data"] == {"last_seq": len(events), "queue_size": 8}


def test_second_server_on_the_same_path_fails_while_the_first_runs(env):
    loop, bus, _, path = env
    with pytest.raises(ApplianceError) as e:
        loop.run(ControlServer(path, bus).start())
    assert str(e.value) == f"control socket {path} is in use by another process"
    assert talk(path, req(id=1, cmd="ping")) == [{"id": 1, "ok": True, "pong": True}]


def test_stale_socket_file_is_replaced_and_removed_on_close(sockdir):
    path = os.path.join(sockdir, "core.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # the file stays, nobody listens: a core that crashed
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    loop = Loop()
    try:
        server = ControlServer(path, EventBus(Clock()))
        loop.run(server.start())
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert talk(path, req(id=1, cmd="ping")) == [{"id": 1, "ok": True, "pong": True}]
        loop.run(server.close())
        assert not os.path.exists(path)
    finally:
        loop.stop()


def test_a_regular_file_in_the_way_is_not_deleted(sockdir):
    path = os.path.join(sockdir, "core.sock")
    with open(path, "w") as f:
        f.write("keep")
    with pytest.raises(ApplianceError, match=f"^control socket path {path} exists and is not a socket$"):
        asyncio.run(ControlServer(path, EventBus(Clock())).start())
    assert open(path).read() == "keep"


def test_client_missing_socket_names_the_path(sockdir):
    path = os.path.join(sockdir, "nothing.sock")
    with pytest.raises(ApiUnavailable) as e:
        ControlClient(path).call("ping")
    assert str(e.value) == f"control socket {path} does not answer (No such file or directory): the core is not running"
    with pytest.raises(ApiUnavailable, match="the core is not running"):
        subscribe(path)


def test_client_calls_errors_and_reconnects_after_restart(env):
    loop, bus, server, path = env
    with ControlClient(path, timeout=3) as c:
        assert c.call("agent.state", seat=3, state="busy") == {"seat": 3, "state": "busy", "note": ""}
        with pytest.raises(ApiError) as e:
            c.call("agent.state", seat=0, state="busy")
        assert (e.value.code, e.value.message) == ("bad_argument", "seat: 0 is out of range; allowed 1..6")
        loop.run(server.close())  # the core restarts
        fresh = ControlServer(path, bus)
        loop.run(fresh.start())
        try:
            assert c.call("ping") == {"pong": True}
        finally:
            loop.run(fresh.close())
        with pytest.raises(ApiUnavailable, match="the core is not running"):
            c.call("ping")
    loop.run(server.start())  # so the fixture can close it


def test_client_is_thread_safe(env):
    _, _, _, path = env
    c = ControlClient(path, timeout=3)
    results, errors = [], []

    def work(seat):
        try:
            for _ in range(20):
                results.append(c.call("agent.state", seat=seat, state="available")["seat"] == seat)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    c.close()
    assert errors == [] and results == [True] * 120


def test_event_bus_in_process():
    clock = Clock()
    bus = EventBus(clock, capacity=3)
    got = []
    bus.listen(got.append)
    assert [bus.publish("call.offered", {"n": n}) for n in range(4)] == [1, 2, 3, 4]
    bus.unlisten(got.append)
    bus.publish("agent.state", {"seat": 1})
    assert [e["seq"] for e in got] == [1, 2, 3, 4]
    assert got[0] == {"event": "call.offered", "seq": 1, "time": T0 + 0.5, "data": {"n": 0}}
    assert bus.since(2, ["call.*"]) == ([{"event": "call.offered", "seq": 3, "time": T0 + 1.5, "data": {"n": 2}},
                                         {"event": "call.offered", "seq": 4, "time": T0 + 2.0, "data": {"n": 3}}], False)
    assert bus.since(1, ["agent.*"])[1] is True
    assert bus.since(5, ["*"]) == ([], False)
