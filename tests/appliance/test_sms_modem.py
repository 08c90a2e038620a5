"""The GSM modem's AT dialogue, against the simulated modem on a pty and on its own."""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime, timezone

import pytest

from appliance.errors import DriverError
from appliance.sms.atmodem import (
    AtModem, Delivered, ModemError, Ready, Received, SendFailed, Sent, error_text,
)
from appliance.sms.serialmodem import SerialModem
from tests.appliance.simmodem import SimModem, deliver_pdus, parse_submit

INIT = ["ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CSQ", "AT+CREG?", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0"]
CHINESE = ("您好，这是呼叫中心的测试短信。" * 11)[:150]


@pytest.fixture
def sim():
    s = SimModem()
    yield s
    s.close()
    assert not s.errors


@pytest.fixture
def clock():
    return [1000.0]


@pytest.fixture
def modem(sim, clock):
    m = SerialModem(sim.port, clock=lambda: clock[0])
    yield m
    m.close()


def run_until(modem, done, limit=5.0):
    """Step the driver until ``done(events)``; the limit only bounds a broken test."""
    events, end = [], time.monotonic() + limit
    while not done(events):
        assert time.monotonic() < end, f"gave up waiting; events so far: {events}"
        events += modem.step(0.05)
    return events


def of(kind):
    return lambda events: any(isinstance(e, kind) for e in events)


def started(modem):
    modem.start()
    events = run_until(modem, lambda ev: of(Ready)(ev) or of(ModemError)(ev))
    assert isinstance(events[-1], Ready), events
    return events[-1]


def test_init_sends_the_exact_sequence_and_reports_signal(sim, modem):
    ready = started(modem)
    assert sim.commands == INIT
    assert ready == Ready(signal_dbm=-73, registration="registered (home)")


@pytest.mark.parametrize("setup, reason", [
    (dict(cpin="NOSIM"), "AT+CPIN? failed: +CME ERROR 10: SIM not inserted"),
    (dict(cpin="SIM PIN"), "PIN required"),
    (dict(creg=0), "not registered"),
    (dict(creg=2), "searching"),
    (dict(creg=3), "denied"),
    (dict(creg=0, csq=99), "not registered, signal unknown"),
])
def test_init_failures_are_clear_errors(sim, modem, setup, reason):
    for key, value in setup.items():
        setattr(sim, key, value)
    modem.start()
    events = run_until(modem, of(ModemError))
    assert events == [ModemError(reason)]
    assert "AT+CMGF=0" not in sim.commands  # setup stops at the failure
    assert modem.send("+8613912345678", "hi", "m1") == [SendFailed("m1", "modem not usable")]


def test_unknown_signal_is_none_when_registered(sim, modem):
    sim.csq = 99
    assert started(modem) == Ready(None, "registered (home)")


def test_long_chinese_message_goes_out_as_three_numbered_parts(sim, modem):
    started(modem)
    modem.send("+8613912345678", CHINESE, "m1")
    events = run_until(modem, lambda ev: sum(isinstance(e, Sent) for e in ev) == 3)
    assert [(e.msg_id, e.part) for e in events] == [("m1", 1), ("m1", 2), ("m1", 3)]
    assert [s.concat[1:] for s in sim.submits] == [(3, 1), (3, 2), (3, 3)]
    assert len({s.concat[0] for s in sim.submits}) == 1  # one reference for all parts
    assert all(s.number == "+8613912345678" and s.dcs == 0x08 and s.srr for s in sim.submits)
    assert "".join(s.text for s in sim.submits) == CHINESE
    sends = sim.commands[len(INIT):]  # the sim checks each length against its PDU
    assert len(sends) == 3 and all(c.startswith("AT+CMGS=") for c in sends)


def test_delivery_reports_are_matched_to_the_message(sim, modem):
    started(modem)
    modem.send("+8613912345678", CHINESE, "m1")
    modem.send("13800000000", "short one", "m2")
    sent = [e for e in run_until(modem, lambda ev: sum(isinstance(e, Sent) for e in ev) == 4)
            if isinstance(e, Sent)]
    assert sim.submits[3].text == "short one" and sim.submits[3].concat is None
    by_mr = {(e.msg_id, e.part): e.mr for e in sent}
    sim.report(by_mr[("m2", 1)], 0x00)
    sim.report(by_mr[("m1", 2)], 0x20)  # still trying
    sim.report(by_mr[("m1", 1)], 0x41)
    sim.report(77, 0x00)  # a TP-MR this dialogue never sent (a message from before a restart)
    events = run_until(modem, lambda ev: len(ev) == 4)
    assert events == [Delivered("m2", 1, 0x00, "delivered", by_mr[("m2", 1)]),
                      Delivered("m1", 2, 0x20, "pending", by_mr[("m1", 2)]),
                      Delivered("m1", 1, 0x41, "failed", by_mr[("m1", 1)]), Delivered("", 0, 0x00, "delivered", 77)]


def test_reports_are_acknowledged_when_asked(sim, clock):
    m = SerialModem(sim.port, clock=lambda: clock[0], ack_reports=True)
    try:
        started(m)
        assert "AT+CSMS=1" in sim.commands
        m.send("+8613912345678", "hello", "m1")
        mr = run_until(m, of(Sent))[-1].mr
        sim.report(mr)
        assert run_until(m, of(Delivered)) == [Delivered("m1", 1, 0, "delivered", mr)]
        run_until(m, lambda ev: "AT+CNMA" in sim.commands and m.at.next_deadline() is None)
    finally:
        m.close()


def test_inbound_long_message_is_read_deleted_and_joined(sim, modem):
    started(modem)
    text = "来电回拨：" + "请尽快联系客户服务中心。" * 15
    indexes = sim.inject("+8613512345678", text)
    assert len(indexes) == 3
    events = run_until(modem, of(Received))
    assert len(events) == 1
    got = events[0]
    assert (got.sender, got.text) == ("+8613512345678", text)
    assert got.timestamp.isoformat() == "2026-11-28T11:20:05+08:00"
    run_until(modem, lambda ev: sorted(sim.deleted) == indexes)
    assert sim.store == {}
    reads = [c for c in sim.commands if c.startswith(("AT+CMGR", "AT+CMGD"))]
    assert reads == [f"AT+{op}={i}" for i in indexes for op in ("CMGR", "CMGD")]


def test_cms_error_on_one_part_fails_the_message_with_its_reason(sim, modem):
    started(modem)
    sim.cms_on_submit = {2: 38}
    modem.send("+8613912345678", CHINESE, "m1")
    modem.send("+8613912345678", "next", "m2")
    events = run_until(modem, lambda ev: of(SendFailed)(ev) and sum(isinstance(e, Sent) for e in ev) == 2)
    assert events == [Sent("m1", 1, events[0].mr),
                      SendFailed("m1", "+CMS ERROR 38: network out of order", written=True),
                      Sent("m2", 1, events[2].mr)]
    assert [s.text for s in sim.submits][-1] == "next"
    assert len(sim.submits) == 3  # part 3 of m1 was never tried


def test_command_timeout_is_a_clear_error(sim, modem, clock):
    sim.silent = {"AT+CSQ"}
    modem.start()
    run_until(modem, lambda ev: "AT+CSQ" in sim.commands)
    assert modem.at.next_deadline() == clock[0] + 5.0
    assert modem.step(0.01) == []
    clock[0] += 5.0
    assert run_until(modem, of(ModemError)) == [ModemError("AT+CSQ failed: no answer to AT+CSQ within 5 s")]


def test_cmgs_timeout_cancels_pdu_entry_and_fails_the_message():
    at, now = AtModem(), 0.0
    at.start(now)
    for answer in [b"OK\r\n", b"OK\r\n", b"+CPIN: READY\r\n\r\nOK\r\n", b"+CSQ: 31,0\r\nOK\r\n",
                   b"+CREG: 0,5\r\nOK\r\n", b"OK\r\n"]:
        at.outgoing()
        assert at.feed(answer, now) == []
    assert at.outgoing() == b"AT+CNMI=2,1,0,1,0\r"
    assert at.feed(b"\r\nOK\r\n", now) == [Ready(-51, "registered (roaming)")]
    at.send("+8613912345678", "hi", "m1", now)
    cmd = at.outgoing()
    assert cmd.startswith(b"AT+CMGS=") and at.next_deadline() == 60.0
    at.feed(b"\r\n> ", now)
    pdu = at.outgoing()
    assert pdu.endswith(b"\x1a") and parse_submit(pdu[:-1].decode()).text == "hi"
    assert at.poll(59.9) == []
    assert at.poll(60.0) == [SendFailed("m1", f"no answer to {cmd[:-1].decode()} within 60 s", written=True)]
    assert at.outgoing() == b"\x1b" and at.next_deadline() is None
    at.send("+8613912345678", "again", "m2", 70.0)  # this time the modem never prompts: nothing of it went
    assert at.outgoing().startswith(b"AT+CMGS=") and not at.written("m2")
    assert at.poll(130.0) == [SendFailed("m2", "no answer to AT+CMGS=20 within 60 s", written=False)]


def test_echo_and_split_reads_are_handled():
    at = AtModem()
    at.start(0.0)
    assert at.outgoing() == b"ATE0\r"
    for byte in b"ATE0\r\r\nOK\r\n":  # echo still on, bytes one at a time
        assert at.feed(bytes([byte]), 0.0) == []
    assert at.outgoing() == b"AT+CMEE=1\r"


def test_error_names():
    assert error_text("+CMS ERROR: 330") == "+CMS ERROR 330: SMSC address unknown"
    assert error_text("+CMS ERROR: 500") == "+CMS ERROR 500: unknown error"
    assert error_text("+CME ERROR: 11") == "+CME ERROR 11: SIM PIN required"
    assert error_text("OK") is None


def test_garbled_answers_are_reported_and_the_dialogue_goes_on():
    at = AtModem()
    at.start(0.0)
    for answer in [b"OK\r\n", b"OK\r\n", b"+CPIN: READY\r\nOK\r\n"]:
        at.outgoing()
        at.feed(answer, 0.0)
    assert at.outgoing() == b"AT+CSQ\r"
    assert at.feed(b"+CSQ: lots\r\nOK\r\n", 0.0) == [ModemError("garbled answer '+CSQ: lots' to AT+CSQ")]
    assert at.outgoing() == b"AT+CREG?\r"
    assert at.feed(b"+CREG: 0\r\nOK\r\n", 0.0) == [ModemError("garbled registration answer '+CREG: 0'")]
    assert at.state == "failed"


def test_unsolicited_lines_between_commands_are_ignored_and_bad_pdus_reported():
    at = AtModem()
    at.feed(b"\r\nRING\r\n+CREG: 1\r\n", 0.0)
    assert at.outgoing() == b""
    events = at.feed(b"\r\n+CDS: 25\r\n0006ZZ\r\n", 0.0)
    assert len(events) == 1 and events[0].reason.startswith("unreadable status report")


def test_bad_port_is_a_driver_error():
    with pytest.raises(DriverError, match="cannot open GSM modem port /dev/nonexistent-modem"):
        SerialModem("/dev/nonexistent-modem")


def test_read_loop_in_a_thread(sim):
    modem, events = SerialModem(sim.port), queue.Queue()
    worker = threading.Thread(target=modem.run, args=(events.put,), daemon=True)
    worker.start()
    try:
        modem.start()
        assert isinstance(events.get(timeout=5), Ready)
        modem.send("+8613912345678", "from another thread", "m9")
        assert events.get(timeout=5) == Sent("m9", 1, sim.submits[0].mr)
    finally:
        modem.stop()
        worker.join(timeout=5)
        modem.close()
    assert not worker.is_alive()


def test_long_message_missing_a_part_is_given_up_at_its_deadline():
    at = AtModem(reassembly_age=600.0)
    at.feed(b'\r\n+CMTI: "SM",4\r\n', 10.0)
    assert at.outgoing() == b"AT+CMGR=4\r"
    pdu = deliver_pdus("+8613512345678", "长" * 100, datetime(2026, 11, 28, 11, 0, tzinfo=timezone.utc))[0]
    assert at.feed(f"+CMGR: 0,,{len(pdu) // 2 - 9}\r\n{pdu}\r\nOK\r\n".encode(), 10.0) == []
    assert at.outgoing() == b"AT+CMGD=4\r"
    assert at.feed(b"OK\r\n", 10.0) == []
    deadline = at.next_deadline()
    assert 610.0 < deadline < 610.001
    assert at.poll(610.0) == []
    assert at.poll(deadline) == [Received("+8613512345678", "长" * 67,
                                          datetime(2026, 11, 28, 11, 0, tzinfo=timezone.utc), complete=False)]
    assert at.next_deadline() is None
