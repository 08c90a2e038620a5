"""Delivery reports an HTTP SMS gateway pushes, end to end: a whole core sending through a real HTTP gateway on
localhost, the reports pushed with ``sms.http_report`` on the control socket and through the web app's public
``/sms/report/<token>`` on a real port."""

from __future__ import annotations

import http.client
import http.server
import json

import pytest

from appliance.client import subscribe
from tests.appliance.smsbox import Box, HttpSmsGateway
from webui.app import make_app
from webui.server import serve

TOKEN = "r3port-Token_0123456789"
WRONG = "wrong-Token_0123456789"


@pytest.fixture
def gateway():
    gw = HttpSmsGateway(ids=("A1B2", "C3D4", "E5F6", "G7H8"))
    yield gw
    gw.close()


def state_event(events, msg_id: str) -> dict:
    for ev in events:
        assert ev is not None, f"no sms.state event for {msg_id}"
        if ev["event"] == "sms.state" and ev["data"]["id"] == msg_id:
            return ev["data"]
    raise AssertionError("the subscription ended")


def test_reports_pushed_on_the_control_api(tmp_path, gateway):
    box = Box(tmp_path / "data", gateway.config(http_report_token=TOKEN, http_report_delivered="DELIVRD,0,success"))
    try:
        first = box.sent("13800138000", "您好，工单已受理")
        assert first["transport_ref"] == "A1B2"
        assert gateway.sends == [("/send", {"to": "13800138000", "msg": "您好，工单已受理"})]
        with subscribe(box.socket, ["sms.state"], timeout=10) as events:
            assert box.call("sms.http_report", token=TOKEN, body="msgid=A1B2&status=DELIVRD") == \
                {"reports": 1, "matched": 1}
            assert state_event(events, first["id"]) == {
                "id": first["id"], "state": "delivered", "via": "http", "to": "13800138000", "reason": None,
                "tries": 0, "transport_ref": "A1B2"}
        m = box.call("sms.status", msg_id=first["id"])["message"]
        assert (m["state"], m["reason"]) == ("delivered", None)

        second, third = box.sent("13900139000", "二"), box.sent("13700137000", "三")
        assert (second["transport_ref"], third["transport_ref"]) == ("C3D4", "E5F6")
        with subscribe(box.socket, ["sms.state"], timeout=10) as events:
            # the gateway repeats a report: matched, the message stays as it was, and no event says otherwise
            assert box.call("sms.http_report", token=TOKEN, body="msgid=A1B2&status=UNDELIV") == \
                {"reports": 1, "matched": 1}
            assert box.call("sms.status", msg_id=first["id"])["message"] == m
            # SUCCESS is delivered because sms.http_report_delivered says so (the outbox alone would fail it)
            body = json.dumps([{"msgid": "C3D4", "status": "SUCCESS"}, {"msgid": "E5F6", "status": "UNDELIV"}])
            assert box.call("sms.http_report", token=TOKEN, body=body) == {"reports": 2, "matched": 2}
            seen = [next(events) for _ in range(2)]
            assert [(e["data"]["id"], e["data"]["state"], e["data"]["reason"]) for e in seen] == [
                (second["id"], "delivered", None), (third["id"], "failed", "delivery report: UNDELIV")]
        m2 = box.call("sms.status", msg_id=second["id"])["message"]
        m3 = box.call("sms.status", msg_id=third["id"])["message"]
        assert (m2["state"], m2["reason"]) == ("delivered", None)
        assert (m3["state"], m3["reason"]) == ("failed", "delivery report: UNDELIV")

        # a ref no message has is counted, not refused
        assert box.call("sms.http_report", token=TOKEN, body="msgid=ZZ99&status=DELIVRD") == \
            {"reports": 1, "matched": 0}

        fourth = box.sent("13600136000", "四")
        assert fourth["transport_ref"] == "G7H8"
        e = box.refused("sms.http_report", token=WRONG, body="msgid=G7H8&status=DELIVRD")
        assert (e.code, e.message) == ("forbidden", "the report URL's token does not match sms.http_report_token")
        e = box.refused("sms.http_report", token="", body="msgid=G7H8&status=DELIVRD")
        assert e.code == "forbidden"
        e = box.refused("sms.http_report", token=TOKEN, body="msgid=G7H8")
        assert (e.code, e.message) == ("bad_argument", "body: delivery report has no 'status' field: msgid=G7H8")
        e = box.refused("sms.http_report", token=TOKEN, body='[{"msgid": "G7H8", "status": "DELIVRD"}, {"stat')
        assert e.code == "bad_argument" and e.message.startswith("body: delivery report is not valid JSON: ")
        e = box.refused("sms.http_report", token=TOKEN, body='[{"status": "DELIVRD"}]')
        assert (e.code, e.message) == ("bad_argument",
                                       "body: delivery report has no 'msgid' field: [{\"status\": \"DELIVRD\"}]")
        assert box.call("sms.status", msg_id=fourth["id"])["message"] == fourth  # nothing was applied
    finally:
        box.stop()


def test_reports_are_refused_until_a_token_is_set(tmp_path, gateway):
    box = Box(tmp_path / "data", gateway.config())
    try:
        m = box.sent("13800138000", "hello")
        e = box.refused("sms.http_report", token="", body="msgid=A1B2&status=DELIVRD")
        assert (e.code, e.message) == ("forbidden", "pushed delivery reports are off: set sms.http_report_token")
        e = box.refused("sms.http_report", token=TOKEN, body="msgid=A1B2&status=DELIVRD")
        assert (e.code, e.message) == ("forbidden", "pushed delivery reports are off: set sms.http_report_token")
        assert box.call("sms.status", msg_id=m["id"])["message"] == m
    finally:
        box.stop()


def request(port: int, method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    """One request on a fresh connection: (status, Content-Type, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode("utf-8")
    finally:
        conn.close()


def test_reports_pushed_to_the_web_endpoint(tmp_path, gateway):
    box = Box(tmp_path / "data", gateway.config(http_report_token=TOKEN))
    web = serve(make_app(tmp_path / "config.json", box.socket), "127.0.0.1", 0)
    plain = "text/plain; charset=utf-8"
    try:
        first, second = box.sent("13800138000", "一"), box.sent("13900139000", "二")
        # no session cookie: the token in the URL is the gateway's key
        assert request(web.port, "GET", f"/sms/report/{TOKEN}?msgid=A1B2&status=UNDELIV") == (200, plain, "OK")
        m = box.call("sms.status", msg_id=first["id"])["message"]
        assert (m["state"], m["reason"]) == ("failed", "delivery report: UNDELIV")

        body = json.dumps({"msgid": "C3D4", "status": "DELIVRD"}).encode()
        assert request(web.port, "POST", f"/sms/report/{TOKEN}", body, {"Content-Type": "application/json"}) == \
            (200, plain, "OK")
        assert box.call("sms.status", msg_id=second["id"])["message"]["state"] == "delivered"

        third = box.sent("13700137000", "三")
        assert request(web.port, "GET", f"/sms/report/{WRONG}?msgid=E5F6&status=DELIVRD") == \
            (403, plain, "the report URL's token does not match sms.http_report_token")
        assert request(web.port, "GET", f"/sms/report/{'x' * 65}?msgid=E5F6&status=DELIVRD") == \
            (403, plain, "forbidden")
        assert request(web.port, "GET", f"/sms/report/{TOKEN}?msgid=E5F6") == \
            (400, plain, "body: delivery report has no 'status' field: msgid=E5F6")
        big = b"msgid=E5F6&status=DELIVRD&pad=" + b"x" * (64 * 1024)
        assert request(web.port, "POST", f"/sms/report/{TOKEN}", big,
                       {"Content-Type": "application/x-www-form-urlencoded"}) == \
            (413, plain, "report larger than 65536 bytes")
        assert box.call("sms.status", msg_id=third["id"])["message"] == third

        form = b"msgid=E5F6&status=DELIVRD"
        box.stop()
        assert request(web.port, "POST", f"/sms/report/{TOKEN}", form,
                       {"Content-Type": "application/x-www-form-urlencoded"}) == \
            (503, plain, "the call centre is not running; try again later")
    finally:
        web.stop()
        box.stop()
