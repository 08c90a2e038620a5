"""The SMS pump (outbox -> transports -> outbox) and its worker thread, with a real outbox file and simulated
CMPP/SMGP gateways on localhost TCP: claimed and handed over before the first byte, sent, delivered, refused,
unknown after a lost link and never re-sent blindly, nothing given to a transport that is down."""

from __future__ import annotations

import threading
import time

import pytest

from appliance.sms import smgp
from appliance.sms.gateway import Credentials
from appliance.sms.gatewaylink import GatewayLink
from appliance.sms.outbox import Outbox
from appliance.sms.service import SmsService
from appliance.sms.worker import SmsWorker
from tests.appliance.simgateway import SECRET, SimGateway
from tests.appliance.smsbox import HttpSmsGateway

WALL0 = 1764300000.0
ACCOUNT = "12345678"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL0 + self.t


@pytest.fixture
def rig(tmp_path):
    server = SimGateway("smgp", ACCOUNT)
    link = GatewayLink("127.0.0.1", server.port, "smgp", Credentials(ACCOUNT, SECRET, "10690001"),
                       clock=lambda: WALL0)
    outbox = Outbox(tmp_path / "outbox.sqlite", backoff_s=30.0, max_tries=3)
    inbound: list = []

    def keep(sender, text, when, via, wall):
        inbound.append((sender, text, via))
        return {"id": len(inbound), "from": sender, "text": text, "via": via}

    service = SmsService(outbox, {"smgp": link}, inbound=keep)
    yield server, service, outbox, inbound
    link.close()
    outbox.close()
    server.close()
    assert server.errors == []


def run(service, clock, until, timeout=5.0):
    """Step at ``clock``'s time until ``until(events)``; ``timeout`` real seconds only bounds the wait for bytes."""
    events: list = []
    end = time.monotonic() + timeout
    while not until(events):
        assert time.monotonic() < end, f"gave up waiting; events so far: {events}"
        events += service.step(clock.now(), clock.wall())
        time.sleep(0.01)
    return events


def states(events, msg_id):
    return [d["state"] for t, d in events if t == "sms.state" and d["id"] == msg_id]


def has_state(msg_id, state):
    return lambda events: state in states(events, msg_id)


def test_message_sent_and_delivered(rig):
    server, service, outbox, _ = rig
    clock = Clock()
    msg = outbox.add("13800138000", "您的快递已发出", "smgp", clock.wall())
    events = run(service, clock, has_state(msg, "sent"))
    assert events[0] == ("sms.transport", {"via": "smgp", "up": True, "reason": None})
    assert states(events, msg) == ["sending", "sent"]
    sub = server.submits[0][1]
    assert isinstance(sub, smgp.Submit) and sub.dest_term_ids == ["13800138000"]
    assert sub.msg_content.decode("utf-16-be") == "您的快递已发出" and sub.src_term_id == "10690001"
    m = outbox.get(msg)
    assert m.transport_ref == server.refs[0] and m.handed_over_at == clock.wall() and m.tries == 0
    server.send_report(server.refs[0], "DELIVRD")
    events = run(service, clock, has_state(msg, "delivered"))
    assert outbox.get(msg).state == "delivered" and outbox.get(msg).reason is None


def test_nothing_is_handed_to_a_transport_that_is_down(rig, tmp_path):
    server, service, outbox, _ = rig
    server.login_status = 21  # authentication failed
    clock = Clock()
    msg = outbox.add("13800138000", "hello", "smgp", clock.wall())
    events = run(service, clock, lambda ev: server.logins >= 1 and service.why_down["smgp"] != "not connected yet")
    assert "authentication failed" in service.why_down["smgp"] and service.up["smgp"] is False
    assert states(events, msg) == []
    m = outbox.get(msg)
    assert (m.state, m.tries, m.handed_over_at) == ("queued", 0, None)  # no try spent while it was down
    assert server.submits == []
    server.login_status = 0
    clock.t += 5.0  # the session's first reconnect backoff
    run(service, clock, has_state(msg, "sent"))
    assert len(server.submits) == 1


def test_link_lost_before_the_answer_makes_the_message_unknown_and_it_is_not_resent(rig):
    server, service, outbox, _ = rig
    clock = Clock()
    run(service, clock, lambda ev: service.up["smgp"])
    server.answer_submits = False
    msg = outbox.add("13800138000", "hello", "smgp", clock.wall())
    run(service, clock, lambda ev: len(server.submits) == 1)
    assert outbox.get(msg).state == "sending"
    server.drop()
    events = run(service, clock, has_state(msg, "unknown"))
    assert ("sms.transport", {"via": "smgp", "up": False, "reason": events[0][1]["reason"]}) in events
    assert "handed over" in outbox.get(msg).reason
    server.answer_submits = True
    clock.t += 5.0
    run(service, clock, lambda ev: service.up["smgp"])
    for _ in range(20):  # passes with the link up: the unknown message stays unknown
        service.step(clock.now(), clock.wall())
    assert len(server.submits) == 1 and outbox.get(msg).state == "unknown"
    outbox.resolve(msg, True, clock.wall())  # a person decides to send it again
    run(service, clock, has_state(msg, "sent"))
    assert len(server.submits) == 2


def test_refusal_retries_with_backoff_then_fails_and_a_permanent_one_fails_at_once(rig):
    server, service, outbox, _ = rig
    clock = Clock()
    run(service, clock, lambda ev: service.up["smgp"])
    server.submit_status = 1  # system busy: worth another try
    msg = outbox.add("13800138000", "hello", "smgp", clock.wall())
    run(service, clock, has_state(msg, "queued"))
    m = outbox.get(msg)
    assert (m.tries, m.next_try_at, m.reason) == (1, clock.wall() + 30.0, "SMGP submit refused: system busy (result 1)")
    for _ in range(5):  # not due yet: no second submit
        service.step(clock.now(), clock.wall())
    assert len(server.submits) == 1
    clock.t += 30.0
    run(service, clock, lambda ev: len(server.submits) == 2 and outbox.get(msg).tries == 2)
    clock.t += 60.0
    run(service, clock, has_state(msg, "failed"))
    assert outbox.get(msg).reason == "SMGP submit refused: system busy (result 1) (after 3 tries)"
    server.submit_status = 40  # bad destination number: never worth another try
    bad = outbox.add("13800138001", "hello", "smgp", clock.wall())
    run(service, clock, has_state(bad, "failed"))
    assert (outbox.get(bad).tries, len(server.submits)) == (1, 4)


def test_inbound_is_filed_and_published(rig):
    server, service, outbox, inbound = rig
    clock = Clock()
    run(service, clock, lambda ev: service.up["smgp"])
    server.send_inbound("13900139000", ["TD".encode("utf-16-be")])
    events = run(service, clock, lambda ev: any(t == "sms.inbound" for t, _ in ev))
    assert inbound == [("13900139000", "TD", "smgp")]
    assert ("sms.inbound", {"id": 1, "from": "13900139000", "text": "TD", "via": "smgp"}) in events


def test_worker_runs_jobs_between_passes_and_publishes(rig):
    server, service, outbox, _ = rig
    published: list = []
    got = threading.Event()

    def publish(type_, data):
        published.append((type_, data))
        if type_ == "sms.state" and data["state"] == "sent":
            got.set()

    class Real:
        def now(self):
            return time.monotonic()

        def wall(self):
            return time.time()

    worker = SmsWorker(service, Real(), publish)
    worker.start()
    try:
        msg = worker.call(lambda now, wall: outbox.add("13800138000", "hi", "smgp", wall)).result(5)
        assert got.wait(5), published
        assert [d["state"] for t, d in published if t == "sms.state"] == ["sending", "sent"]
        assert worker.call(lambda now, wall: outbox.get(msg).state).result(5) == "sent"
        with pytest.raises(Exception, match="is not in the sms outbox"):
            worker.call(lambda now, wall: outbox.get("nope")).result(5)
    finally:
        worker.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        worker.call(lambda now, wall: None).result(1)


def test_an_http_gateway_that_fails_is_down_but_still_tried_and_comes_back_up(tmp_path):
    from appliance.sms.httpgw import HttpGateway, HttpGatewayConfig
    web = HttpSmsGateway()
    web.status = 503  # busy: the gateway did not take it
    gw = HttpGateway(HttpGatewayConfig(url=web.url, success=web.SUCCESS, down_after=2))
    outbox = Outbox(tmp_path / "outbox.sqlite", backoff_s=10.0, max_tries=5)
    service = SmsService(outbox, {"http": gw})
    clock = Clock()
    try:
        msg = outbox.add("13800138000", "hello", "http", clock.wall())
        run(service, clock, lambda ev: len(web.sends) == 1 and outbox.get(msg).state == "queued")
        clock.t += 10.0
        events = run(service, clock, lambda ev: any(t == "sms.transport" for t, _ in ev))
        assert ("sms.transport", {"via": "http", "up": False, "reason": "2 failures in a row, last: HTTP 503: busy"}
                ) in events and outbox.get(msg).tries == 2
        web.status = 200
        clock.t += 20.0  # the message's own backoff: tried again although the gateway is down
        events = run(service, clock, has_state(msg, "sent"))
        assert ("sms.transport", {"via": "http", "up": True, "reason": None}) in events
        m = outbox.get(msg)
        assert (m.transport_ref, m.tries, len(web.sends)) == ("M3", 2, 3)
    finally:
        gw.close()
        outbox.close()
        web.close()


class Scripted:
    """A transport whose events the test writes: what the pump does with each kind of answer."""

    name = "modem"

    def __init__(self) -> None:
        self.events: list = []
        self.submitted: list[str] = []
        self.back: list[str] = []

    def submit(self, msg_id, number, text, now):
        self.submitted.append(msg_id)

    def poll(self, now):
        out, self.events = self.events, []
        return out

    def next_deadline(self):
        return None

    def unsent(self):
        return self.back

    def close(self):
        pass


def scripted_service(tmp_path, inbound=None):
    from appliance.sms.transport import Up
    t = Scripted()
    outbox = Outbox(tmp_path / "outbox.sqlite", backoff_s=30.0)
    service = SmsService(outbox, {"modem": t}, inbound=inbound)
    t.events.append(Up())
    return t, outbox, service


def test_not_sent_is_queued_again_without_a_try_and_uncertain_is_unknown(tmp_path):
    from appliance.sms.transport import Down, NotSent, Uncertain, Up
    t, outbox, service = scripted_service(tmp_path)
    a = outbox.add("13800138000", "a", "modem", WALL0)
    b = outbox.add("13800138001", "b", "modem", WALL0)
    service.step(1.0, WALL0)
    assert t.submitted == [a, b]
    t.events += [NotSent(a, "not sent: unplugged"), Down("unplugged")]  # b's PDU had gone
    events = service.step(2.0, WALL0 + 1)
    assert [(d["id"], d["state"]) for k, d in events if k == "sms.state"] == [(a, "queued"), (b, "unknown")]
    assert outbox.get(a).tries == 0 and t.submitted == [a, b]  # not handed out while down
    t.events.append(Up())
    service.step(3.0, WALL0 + 2)
    assert t.submitted == [a, b, a]
    t.events.append(Uncertain(a, "no answer after the request went"))
    service.step(4.0, WALL0 + 3)
    assert (outbox.get(a).state, outbox.get(a).reason) == ("unknown", "no answer after the request went")
    outbox.close()


def test_an_event_that_could_not_be_filed_is_filed_at_the_next_step(tmp_path, monkeypatch):
    import sqlite3

    from appliance.sms.transport import Accepted, Report
    t, outbox, service = scripted_service(tmp_path)
    a = outbox.add("13800138000", "a", "modem", WALL0)
    service.step(1.0, WALL0)
    t.events += [Accepted(a, "41"), Report("41", "0", True)]
    real = outbox.sent

    def disk_error(*args):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(outbox, "sent", disk_error)
    with pytest.raises(sqlite3.OperationalError):
        service.step(2.0, WALL0 + 1)
    monkeypatch.setattr(outbox, "sent", real)
    events = service.step(3.0, WALL0 + 2)  # the transport gives nothing new: the kept events are filed
    assert [d["state"] for k, d in events if k == "sms.state"] == ["sent", "delivered"]
    outbox.close()


def test_an_opt_out_reply_withdraws_the_campaign_messages_still_queued(tmp_path):
    from appliance.sms.store import SmsStore
    from appliance.sms.transport import Down, Inbound
    store = SmsStore(tmp_path / "sms.sqlite")
    t, outbox, service = scripted_service(tmp_path, inbound=store.add_inbound)
    t.events = [Down("no SIM")]  # nothing goes out meanwhile
    outbox.add("13900139000", "sale", "modem", WALL0, msg_id="c-1-1-0", campaign_id="1")
    outbox.add("13900139000", "your order", "modem", WALL0, msg_id="api")
    service.step(1.0, WALL0)
    t.events.append(Inbound("+8613900139000", "TD", WALL0 + 5))
    events = service.step(2.0, WALL0 + 6)
    assert events[0][0] == "sms.inbound" and events[0][1]["opt_out"] is True
    assert events[1] == ("sms.state", {"id": "c-1-1-0", "state": "failed", "via": "modem", "to": "13900139000",
                                       "reason": "opted out by reply", "tries": 0, "transport_ref": None})
    assert outbox.get("api").state == "queued" and store.is_opted_out("13900139000")
    outbox.close()
    store.close()


def test_a_stop_takes_back_what_was_not_written(tmp_path):
    t, outbox, service = scripted_service(tmp_path)
    a = outbox.add("13800138000", "a", "modem", WALL0)
    b = outbox.add("13800138001", "b", "modem", WALL0)
    service.step(1.0, WALL0)
    t.back = [b]  # a went to the modem, b was still waiting behind it
    events = service.stop(WALL0 + 1)
    assert [(d["id"], d["state"]) for _, d in events] == [(b, "queued")]
    assert outbox.get(b).reason == "taken back at a stop" and outbox.get(a).state == "sending"
    assert outbox.recover(WALL0 + 2) == {"requeued": [], "unknown": [a]}
    outbox.close()
