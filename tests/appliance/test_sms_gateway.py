"""CMPP 2.0 and SMGP 3.0 gateway clients against simulated gateways on localhost TCP.

Protocol time is a fixed ``now`` the tests move by hand (timeouts, keep-alives,
backoff); real time only bounds how long a test waits for bytes.
"""
from __future__ import annotations

import socket
import time
from datetime import datetime

import pytest

from appliance.sms import cmpp, smgp
from appliance.sms.gateway import CHINA, LINK_LOST, WINDOW, Credentials, GatewaySession
from appliance.sms.gatewaylink import GatewayLink
from appliance.sms.transport import Accepted, Down, Inbound, NotSent, Rejected, Report, Up
from tests.appliance.simgateway import SECRET, SimGateway

T0 = 1000.0
WALL = datetime(2026, 11, 28, 19, 23, 45, tzinfo=CHINA).timestamp()
ACCOUNTS = {"cmpp": "901234", "smgp": "12345678"}
CHINESE = "您好，这是一条来自呼叫中心的测试短信，" * 8  # 19 characters * 8 = 152


@pytest.fixture(params=["cmpp", "smgp"])
def gw(request):
    server = SimGateway(request.param, ACCOUNTS[request.param])
    link = GatewayLink("127.0.0.1", server.port, request.param,
                       Credentials(ACCOUNTS[request.param], SECRET, "10690001"), clock=lambda: WALL)
    yield server, link
    link.close()
    server.close()
    assert server.errors == []


def pump(link, now, until, timeout=5.0):
    """Poll at ``now`` until ``until(events)`` holds; ``timeout`` real seconds is only an upper bound."""
    events: list = []
    end = time.monotonic() + timeout
    while True:
        events += link.poll(now)
        if until(events):
            return events
        assert time.monotonic() < end, f"gave up waiting; events so far: {events}"
        link.wait(0.05)


def has(cls, n=1):
    return lambda events: sum(isinstance(e, cls) for e in events) >= n


def up(link, now=T0):
    assert pump(link, now, has(Up)) == [Up()]


def test_login_ok_timestamp_and_authenticator(gw):
    server, link = gw
    up(link)
    assert server.logins == 1
    login = server.received[0]
    assert login.timestamp == 1128192345  # MMDDHHMMSS of WALL in Beijing time; the server checked the MD5
    assert link.next_deadline() == T0 + 180.0  # the idle active test


@pytest.mark.parametrize("protocol,status,reason", [
    ("cmpp", 2, "bad source address"), ("cmpp", 3, "authentication failed"), ("cmpp", 4, "version too high"),
    ("smgp", 21, "authentication failed"), ("smgp", 22, "version too high")])
def test_login_refused_names_reason(protocol, status, reason):
    server = SimGateway(protocol, ACCOUNTS[protocol])
    server.login_status = status
    link = GatewayLink("127.0.0.1", server.port, protocol, Credentials(ACCOUNTS[protocol], SECRET, "1069"),
                       clock=lambda: WALL)
    try:
        events = pump(link, T0, has(Down))
        assert len(events) == 1 and reason in events[0].reason and f"status {status}" in events[0].reason
        assert link.next_deadline() == T0 + 5.0  # retried after the backoff
    finally:
        link.close()
        server.close()


def test_submit_accepted_and_report_matched(gw):
    server, link = gw
    up(link)
    link.submit("m1", "13800138000", "hello", T0)
    events = pump(link, T0, has(Accepted))
    assert events == [Accepted("m1", server.refs[0])]
    assert server.submits[0][1].msg_content == "hello".encode("utf-16-be")
    server.send_report(server.refs[0], "DELIVRD")
    server.send_report(server.refs[0], "UNDELIV")
    events = pump(link, T0, has(Report, 2))
    assert events == [Report(server.refs[0], "DELIVRD", True), Report(server.refs[0], "UNDELIV", False)]
    assert server.wait_for(lambda: server.count(server.codec.DeliverResp) == 2)


def test_long_chinese_message_three_parts(gw):
    server, link = gw
    up(link)
    link.submit("long", "13800138000", CHINESE, T0)
    events = pump(link, T0, has(Accepted))
    assert events == [Accepted("long", server.refs[0])]  # once, with the first part's id
    assert len(server.submits) == 3
    contents = [p.msg_content for _, p in server.submits]
    ref = contents[0][3]
    assert [c[:6] for c in contents] == [bytes([5, 0, 3, ref, 3, n]) for n in (1, 2, 3)]
    assert b"".join(c[6:] for c in contents).decode("utf-16-be") == CHINESE
    # later parts: a delivered one adds nothing, a failed one is reported under the first part's ref
    server.send_report(server.refs[2], "DELIVRD")
    server.send_report(server.refs[1], "EXPIRED")
    events = pump(link, T0, has(Report))
    assert events == [Report(server.refs[0], "EXPIRED", False)]


def test_window_holds_the_seventeenth(gw):
    server, link = gw
    up(link)
    server.answer_submits = False
    for i in range(17):
        link.submit(f"m{i}", "13800138000", f"text {i}", T0)
    link.poll(T0)
    assert server.wait_for(lambda: len(server.submits) == 16)
    assert (link.session.in_flight, link.session.queued) == (16, 1)
    server.answer_submits = True
    server.answer_pending()
    events = pump(link, T0, has(Accepted, 17))
    assert [e.msg_id for e in events] == [f"m{i}" for i in range(17)]
    assert len(server.submits) == 17 and len(set(server.refs)) == 17


def test_active_test_both_ways(gw):
    server, link = gw
    up(link)
    server.send_active_test()
    pump(link, T0, lambda _: server.count(server.codec.ActiveTestResp) == 1)
    assert link.poll(T0 + 179.0) == [] and server.count(server.codec.ActiveTest) == 0
    link.poll(T0 + 180.0)  # idle: we test the link
    assert server.wait_for(lambda: server.count(server.codec.ActiveTest) == 1)
    pump(link, T0 + 180.0, lambda _: link.next_deadline() == T0 + 360.0)  # answered: idle timer restarts
    assert link.poll(T0 + 241.0) == []


def test_active_test_unanswered_breaks_link():
    s = GatewaySession("cmpp", Credentials("901234", SECRET, "1069"))
    s.connect(T0, WALL)
    assert s.feed(cmpp.encode(cmpp.ConnectResp(0), 1), T0) == [Up()]
    s.outgoing()
    assert s.poll(T0 + 180.0) == []
    assert cmpp.decode(s.outgoing())[1] == cmpp.ActiveTest()
    assert s.poll(T0 + 240.0) == [Down("no active test response in 60 s")]


def test_inbound_messages(gw):
    server, link = gw
    up(link)
    fmt = server.codec
    server.send_inbound("13900139000", [b"hi there"], fmt=fmt.FMT_ASCII)
    server.send_inbound("13900139000", ["你好".encode("utf-16-be")], fmt=fmt.FMT_UCS2)
    raw = CHINESE.encode("utf-16-be")
    parts = [bytes([5, 0, 3, 77, 3, n]) + raw[(n - 1) * 134:n * 134] for n in (1, 3, 2)]  # out of order
    server.send_inbound("13700137000", parts, fmt=fmt.FMT_UCS2, udhi=True)
    events = pump(link, T0, has(Inbound, 3))
    assert events == [Inbound("13900139000", "hi there", WALL), Inbound("13900139000", "你好", WALL),
                      Inbound("13700137000", CHINESE, WALL)]
    assert server.wait_for(lambda: server.count(fmt.DeliverResp) == 5)


def test_drop_mid_window_then_reconnect(gw):
    server, link = gw
    up(link)
    server.answer_submits = False
    for i in range(3):
        link.submit(f"m{i}", "13800138000", "x", T0)
    assert server.wait_for(lambda: len(server.submits) == 3)
    server.drop()
    events = pump(link, T0 + 1, has(Rejected, 3))
    assert events[0] == Down("the gateway closed the connection")
    assert sorted(events[1:], key=lambda e: e.msg_id) == [Rejected(f"m{i}", LINK_LOST, True) for i in range(3)]
    link.submit("later", "13800138000", "y", T0 + 2)  # while down: given back, not kept across the outage
    assert link.poll(T0 + 5.9) == [NotSent("later", "not sent: the gateway closed the connection")]
    assert server.logins == 1
    server.answer_submits = True
    assert pump(link, T0 + 6.0, has(Up)) == [Up()]  # backoff 5 s after the loss at T0 + 1
    assert server.logins == 2 and len(server.submits) == 3
    link.submit("later", "13800138000", "y", T0 + 6)  # the outbox hands it out again
    assert pump(link, T0 + 6.0, has(Accepted)) == [Accepted("later", server.refs[-1])]
    assert len(server.submits) == 4


def test_server_silence_times_out(gw):
    server, link = gw
    up(link)
    server.answer_submits = False
    link.submit("m1", "13800138000", "x", T0)
    assert server.wait_for(lambda: len(server.submits) == 1)
    assert link.poll(T0 + 59.0) == []
    events = link.poll(T0 + 60.0)
    assert events == [Down("no submit response in 60 s (sequence 2)"), Rejected("m1", LINK_LOST, True)]
    assert link.next_deadline() == T0 + 65.0
    assert server.wait_for(lambda: server._conn is None)  # we hung up


def test_backoff_grows_and_caps():
    s = GatewaySession("smgp", Credentials("12345678", SECRET, "1069"))
    now, delays = T0, []
    for _ in range(9):
        s.connect(now, WALL)
        events = s.connection_lost(now, "refused")
        delays.append(s.next_deadline() - now)
        now = s.next_deadline()
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    seq, login = smgp.decode(s.connect(now, WALL))
    assert isinstance(login, smgp.Login) and login.login_mode == smgp.LOGIN_TRANSMIT
    assert s.feed(smgp.encode(smgp.LoginResp(0), seq), now) == [Up()]
    assert events == []  # one Down per outage, not per failed retry


def test_submit_refused_by_result_code():
    s = GatewaySession("cmpp", Credentials("901234", SECRET, "1069"))
    s.connect(T0, WALL)
    s.feed(cmpp.encode(cmpp.ConnectResp(0), 1), T0)
    s.outgoing()
    s.submit("a", "138", "x", T0)
    s.submit("b", "138", "y", T0)
    seqs = [seq for seq, _ in cmpp.Decoder().feed(s.outgoing())]
    events = s.feed(cmpp.encode(cmpp.SubmitResp(0, 8), seqs[0]) + cmpp.encode(cmpp.SubmitResp(0, 7), seqs[1]), T0)
    assert events == [Rejected("a", "CMPP submit refused: flow control: too fast (result 8)", True),
                      Rejected("b", "CMPP submit refused: bad service id (result 7)", False)]


def test_simulator_catches_a_wrong_authenticator():
    server = SimGateway("cmpp", ACCOUNTS["cmpp"])
    link = GatewayLink("127.0.0.1", server.port, "cmpp", Credentials(ACCOUNTS["cmpp"], "wrong", "1069"),
                       clock=lambda: WALL)
    try:
        up(link)  # the simulator still answers, but records the bad MD5
        assert server.errors == ["login: authenticator or account wrong for '901234'"]
    finally:
        link.close()
        server.close()


def ready_session(window: int = WINDOW) -> GatewaySession:
    s = GatewaySession("cmpp", Credentials("901234", SECRET, "1069"), window=window)
    s.connect(T0, WALL)
    assert s.feed(cmpp.encode(cmpp.ConnectResp(0), 1), T0) == [Up()]
    s.outgoing()
    return s


def test_link_lost_rejects_partly_sent_long_message_and_gives_back_unsent():
    s = ready_session(window=2)
    s.submit("long", "138", CHINESE, T0)  # 3 parts: 2 go out, 1 waits for the window
    s.submit("short", "138", "x", T0)  # never written
    s.submit("short2", "138", "z", T0)  # never written
    seqs = [seq for seq, _ in cmpp.Decoder().feed(s.outgoing())]
    assert s.feed(cmpp.encode(cmpp.SubmitResp(111, 0), seqs[0]), T0) == []  # part 1 accepted, part 3 written
    assert (s.in_flight, s.queued) == (2, 2)
    assert s.connection_lost(T0, "reset") == [NotSent("short", "not sent: reset"), NotSent("short2", "not sent: reset"),
                                              Down("reset"), Rejected("long", LINK_LOST, True)]
    assert (s.in_flight, s.queued) == (0, 0)  # nothing waits across the outage
    seq, _ = cmpp.decode(s.connect(T0 + 5, WALL))
    assert s.feed(cmpp.encode(cmpp.ConnectResp(0), seq), T0 + 5) == [Up()]
    assert s.outgoing() == b""
    s.submit("short", "138", "x", T0 + 5)  # the outbox hands it out again
    (seq, pdu), = cmpp.Decoder().feed(s.outgoing())
    assert pdu.msg_content == "x".encode("utf-16-be")
    assert s.feed(cmpp.encode(cmpp.SubmitResp(222, 0), seq), T0 + 5) == [Accepted("short", "222")]


def test_parts_answered_and_more_queued_at_the_loss_is_rejected_not_unsent():
    s = ready_session(window=2)
    s.submit("long", "138", CHINESE, T0)
    seqs = [seq for seq, _ in cmpp.Decoder().feed(s.outgoing())]
    # both parts answered, then the gateway ends the session before part 3 could go
    data = (cmpp.encode(cmpp.SubmitResp(1, 0), seqs[0]) + cmpp.encode(cmpp.SubmitResp(2, 0), seqs[1])
            + cmpp.encode(cmpp.Terminate(), 99))
    assert s.feed(data, T0) == [Down("the gateway ended the session"), Rejected("long", LINK_LOST, True)]
    assert s.queued == 0


def test_submit_while_down_or_closed_is_not_sent_at_the_next_poll():
    s = ready_session()
    assert s.connection_lost(T0, "reset") == [Down("reset")]
    s.submit("a", "138", "x", T0 + 1)
    assert s.queued == 0
    assert s.poll(T0 + 1) == [NotSent("a", "not sent: reset")]
    s.submit("b", "138", "x", T0 + 2)
    assert s.connection_lost(T0 + 2, "refused") == [NotSent("b", "not sent: reset")]  # first, and no second Down
    s.close()
    s.submit("c", "138", "x", T0 + 3)
    assert s.poll(T0 + 3) == [NotSent("c", "not sent: the session is closed")]


def test_unsent_takes_back_the_messages_not_written():
    s = ready_session(window=2)
    s.submit("long", "138", CHINESE, T0)  # parts 1-2 written, part 3 queued: not given back
    s.submit("a", "138", "x", T0)
    s.submit("b", "138", "y", T0)
    seqs = [seq for seq, _ in cmpp.Decoder().feed(s.outgoing())]
    assert s.unsent() == ["a", "b"]
    assert s.unsent() == []
    data = cmpp.encode(cmpp.SubmitResp(1, 0), seqs[0]) + cmpp.encode(cmpp.SubmitResp(2, 0), seqs[1])
    assert s.feed(data, T0) == []
    (seq, pdu), = cmpp.Decoder().feed(s.outgoing())  # only the long message's part 3
    assert pdu.msg_content[:6] == bytes([5, 0, 3, pdu.msg_content[3], 3, 3])
    assert s.feed(cmpp.encode(cmpp.SubmitResp(3, 0), seq), T0) == [Accepted("long", "1")]
    assert s.outgoing() == b""
    s.connection_lost(T0, "reset")
    s.submit("c", "138", "x", T0)  # while down: its NotSent is taken back with it
    assert s.unsent() == ["c"] and s.poll(T0) == []


def test_link_unsent_at_a_stop(gw):
    server, link = gw
    up(link)
    server.answer_submits = False
    for i in range(18):
        link.submit(f"m{i}", "13800138000", f"text {i}", T0)
    assert server.wait_for(lambda: len(server.submits) == 16)
    assert link.unsent() == ["m16", "m17"]
    server.answer_submits = True
    server.answer_pending()
    events = pump(link, T0, has(Accepted, 16))
    assert [e.msg_id for e in events] == [f"m{i}" for i in range(16)]
    assert link.session.queued == 0 and len(server.submits) == 16


def test_connection_refused_backs_off_with_one_down():
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    link = GatewayLink("127.0.0.1", port, "cmpp", Credentials("901234", SECRET, "1069"), clock=lambda: WALL)
    events = link.poll(T0)
    assert len(events) == 1 and isinstance(events[0], Down) and "cannot connect" in events[0].reason
    assert link.poll(T0 + 4.0) == [] and link.next_deadline() == T0 + 5.0
    assert link.poll(T0 + 5.0) == [] and link.next_deadline() == T0 + 15.0
    link.close()


def test_a_connect_that_hangs_never_blocks_the_poll_and_times_out():
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the accept queue: later SYNs are dropped
    link = GatewayLink("127.0.0.1", port, "smgp", Credentials(ACCOUNTS["smgp"], SECRET, "1069"), clock=lambda: WALL)
    try:
        assert link.poll(T0) == []  # the connect is under way: the poll does not wait for it
        assert link.poll(T0 + 4.9) == [] and link.next_deadline() == T0 + 5.0
        [down] = link.poll(T0 + 5.0)
        assert down == Down(f"cannot connect to 127.0.0.1:{port}: timed out after 5 s")
        assert link.next_deadline() == T0 + 5.0 + 5.0  # the first backoff step
    finally:
        link.close()
        filler.close()
        full.close()
