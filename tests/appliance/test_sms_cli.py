"""`python -m appliance.sms` against a real control server on a Unix socket, with handlers playing the core's part."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading

import pytest

from appliance.control import CommandError, ControlServer, Enum, EventBus, Str
from appliance.sms.__main__ import main

POLL = 0.05  # seconds between sms.status checks in these tests


class FakeCore:
    """The SMS commands of the core, scripted per test.

    ``during_send`` events are published inside sms.send (before its answer), ``after_send`` ones in order
    just after it, each ``(message id, state, reason)``; ``status`` holds the successive sms.status answers
    ``(state, reason)``, the last one repeating. The message sms.send queues is always m17.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.during_send: list[tuple[str, str, str | None]] = []
        self.after_send: list[tuple[str, str, str | None]] = []
        self.status: list[tuple[str, str | None]] = [("queued", None)]
        self.refuse: tuple[str, str] | None = None
        self.calls: list[tuple[str, dict]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.bus = EventBus(lambda: 1764300000.0)
        self.server = ControlServer(path, self.bus)
        self.server.register("sms.send", self.send, {"to": Str(20), "text": Str(500),
                                                     "via": Enum("modem", "smgp", "cmpp", "http", required=False)})
        self.server.register("sms.status", self.get_status, {"msg_id": Str(40)})

    def message(self, state: str, reason: str | None) -> dict:
        return {"id": "m17", "to": "13800138000", "via": "smgp", "state": state, "parts": 1, "reason": reason,
                "tries": 1, "transport_ref": None if state == "queued" else "0611281115"}

    def publish(self, msg_id: str, state: str, reason: str | None) -> None:
        self.bus.publish("sms.state", {"id": msg_id, "state": state, "reason": reason, "via": "smgp"})

    def send(self, to: str, text: str, via: str | None) -> dict:
        self.calls.append(("sms.send", {"to": to, "text": text, "via": via}))
        if self.refuse:
            raise CommandError(*self.refuse)
        for event in self.during_send:
            self.publish(*event)
        for event in self.after_send:
            asyncio.get_running_loop().call_soon(self.publish, *event)
        return {"message": self.message("queued", None)}

    def get_status(self, msg_id: str) -> dict:
        self.calls.append(("sms.status", {"msg_id": msg_id}))
        if msg_id != "m17":
            raise CommandError("not_found", f"msg_id: no message {msg_id}")
        state, reason = self.status.pop(0) if len(self.status) > 1 else self.status[0]
        return {"message": self.message(state, reason)}

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="cc-")  # short: AF_UNIX paths are limited to 107 bytes
    yield d
    shutil.rmtree(d)


@pytest.fixture
def core(sockdir):
    fake = FakeCore(os.path.join(sockdir, "control.sock"))
    fake.start()
    yield fake
    fake.stop()


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv), poll_s=POLL)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def send(core, capsys, *extra: str) -> tuple[int, list[str], str]:
    return run(capsys, "send", "--to", "13800138000", "--text", "您的工单已受理", "--socket", core.path, *extra)


def test_delivered_after_events(core, capsys):
    core.after_send = [("m17", "sending", None), ("m17", "sent", None), ("m17", "delivered", None)]
    assert send(core, capsys, "--via", "smgp") == (0, ["id: m17", "status: delivered"], "")
    assert core.calls[0] == ("sms.send", {"to": "13800138000", "text": "您的工单已受理", "via": "smgp"})


def test_events_published_before_send_answers_are_not_missed(core, capsys):
    core.during_send = [("m17", "sent", None), ("m17", "delivered", None)]
    # sms.status would say queued for ever and is not asked in time: only the events can end this
    assert main(["send", "--to", "13800138000", "--text", "hi", "--socket", core.path, "--timeout", "5"],
                poll_s=60) == 0
    assert capsys.readouterr().out.splitlines() == ["id: m17", "status: delivered"]
    assert [c for c, _ in core.calls] == ["sms.send"]


def test_failed_prints_the_reason_and_exits_1(core, capsys):
    core.after_send = [("m17", "sending", None), ("m17", "failed", "gateway refused: Status 9 (number barred)")]
    assert send(core, capsys) == (1, ["id: m17", "status: failed: gateway refused: Status 9 (number barred)"], "")
    assert core.calls[0][1]["via"] is None  # no --via: the core picks


def test_unknown_exits_1(core, capsys):
    core.after_send = [("m17", "sent", None), ("m17", "unknown", "no report after 48 h")]
    assert send(core, capsys) == (1, ["id: m17", "status: unknown: no report after 48 h"], "")


def test_events_of_other_messages_are_ignored(core, capsys):
    core.during_send = [("m16", "failed", "not ours")]
    core.after_send = [("m16", "unknown", "not ours"), ("m17", "sent", None), ("m15", "failed", "not ours"),
                       ("m17", "delivered", None)]
    assert send(core, capsys) == (0, ["id: m17", "status: delivered"], "")


def test_status_polling_alone_finds_the_final_state(core, capsys):
    core.status = [("sending", None), ("sent", None), ("delivered", None)]  # and no events at all
    assert send(core, capsys) == (0, ["id: m17", "status: delivered"], "")
    assert [c for c, _ in core.calls] == ["sms.send", "sms.status", "sms.status", "sms.status"]
    assert {a["msg_id"] for c, a in core.calls[1:]} == {"m17"}


def test_timeout_after_sent_exits_0(core, capsys):
    core.after_send = [("m17", "sending", None), ("m17", "sent", None)]
    core.status = [("sending", None)]  # a stale answer never moves the state back from sent
    assert send(core, capsys, "--timeout", "1") == (
        0, ["id: m17", "status: sent (no delivery report within 1 s)"], "")


def test_timeout_before_sent_exits_1(core, capsys):
    assert send(core, capsys, "--timeout", "0.3") == (1, ["id: m17", "status: queued (not sent within 0.3 s)"], "")


def test_no_wait_prints_id_and_queued(core, capsys):
    core.after_send = [("m17", "failed", "would not be waited for")]
    assert send(core, capsys, "--no-wait") == (0, ["id: m17", "status: queued"], "")
    assert [c for c, _ in core.calls] == ["sms.send"]


def test_refused_send_exits_2_with_the_core_message(core, capsys):
    core.refuse = ("bad_argument", "to: '12' is not a phone number")
    assert send(core, capsys) == (2, [], "sms: bad_argument: to: '12' is not a phone number\n")


def test_status_command(core, capsys):
    core.status = [("failed", "modem: +CMS ERROR: 38")]
    assert run(capsys, "status", "m17", "--socket", core.path) == (0, [
        "id: m17", "to: 13800138000", "via: smgp", "parts: 1", "tries: 1", "transport_ref: 0611281115",
        "status: failed: modem: +CMS ERROR: 38"], "")
    assert run(capsys, "status", "m99", "--socket", core.path) == (2, [], "sms: not_found: msg_id: no message m99\n")


def test_socket_found_from_the_data_dir(sockdir, capsys):
    fake = FakeCore(os.path.join(sockdir, "control.sock"))  # DataDir's socket name
    fake.start()
    try:
        fake.status = [("delivered", None)]
        assert run(capsys, "status", "m17", "--data-dir", sockdir)[0] == 0
        assert fake.calls == [("sms.status", {"msg_id": "m17"})]
    finally:
        fake.stop()


def test_no_core_exits_3(sockdir, capsys):
    path = os.path.join(sockdir, "control.sock")
    for argv in (["send", "--to", "13800138000", "--text", "hi"], ["status", "m17"]):
        code, out, err = run(capsys, *argv, "--socket", path)
        assert (code, out) == (3, [])
        assert err == f"sms: control socket {path} does not answer (No such file or directory): the core is not running\n"


@pytest.mark.parametrize("argv, words", [
    (["send", "--text", "hi"], "the following arguments are required: --to"),
    (["send", "--to", "1", "--text", "hi", "--via", "fax"], "argument --via: invalid choice: 'fax'"),
    (["send", "--to", "1", "--text", "hi", "--timeout", "0"], "argument --timeout: '0' must be a number of seconds"),
    (["send", "--to", "1", "--text", "hi", "--timeout", "soon"], "argument --timeout: 'soon' is not a number"),
    (["status"], "the following arguments are required: id"),
    ([], "the following arguments are required: command"),
])
def test_usage_errors_exit_2(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, []) and words in err


def test_timeout_before_sent_says_why_when_the_transport_is_down(core, capsys):
    core.server.register("sms.transports", lambda: {"transports": {"smgp": {"up": False, "reason":
                                                                           "SMGP login refused: authentication failed"}}},
                         {})
    assert send(core, capsys, "--timeout", "0.3") == (1, [
        "id: m17", "status: queued (not sent within 0.3 s): smgp is down: SMGP login refused: authentication failed"],
        "")
