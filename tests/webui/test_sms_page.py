"""The SMS page and its JSON API over real HTTP, against a whole core in real time sending through a local HTTP SMS
gateway; and the page in a real browser (Debian's chromium driven by Playwright), updated live over SSE."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
import webtest

from appliance.users import ensure_admin
from tests.appliance.smsbox import Box, HttpSmsGateway
from tests.webui.test_http import login, request
from webui.app import make_app
from webui.server import serve

NUMBER = "13800138000"


@pytest.fixture
def gateway():
    gw = HttpSmsGateway(ids=["G100", "G101", "G102"])
    yield gw
    gw.close()


@pytest.fixture
def site(tmp_path, gateway):
    """(web server, core box, session cookie, admin password)."""
    box = Box(tmp_path / "data", gateway.config(allowed_hours="00:00-24:00"))
    config = str(tmp_path / "config.json")
    password = ensure_admin(config)
    server = serve(make_app(config, box.socket, heartbeat_s=0.5), "127.0.0.1", 0)
    try:
        yield server, box, login(server, password), password
    finally:
        server.stop()
        box.stop()


def api(server, cookie, method, url, body=None):
    """(status, JSON answer) of one call; ``body`` is sent as JSON."""
    headers = {"Cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    conn, r = request(server, method, url, data, headers, timeout=40)
    try:
        assert r.getheader("Content-Type") == "application/json; charset=utf-8"
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def until(fn, what, timeout=15.0):
    """Poll ``fn`` until it returns something true; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < end, f"still waiting for {what}"
        time.sleep(0.05)


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def test_send_appears_in_the_outbox_and_reaches_sent_with_the_gateway_ref(site, gateway):
    server, _, cookie, _ = site
    status, body = api(server, cookie, "POST", "/api/sms/send", {"to": NUMBER, "text": "您好，您的工单已受理。"})
    assert status == 200 and body["message"]["to"] == NUMBER and body["message"]["via"] == "http"
    msg_id = body["message"]["id"]

    def sent():
        status, body = api(server, cookie, "GET", "/api/sms/messages?state=sent&limit=50")
        assert status == 200
        return [m for m in body["messages"] if m["id"] == msg_id]
    (m,) = until(sent, f"message {msg_id} to be sent")
    assert (m["state"], m["transport_ref"], m["text"]) == ("sent", "G100", "您好，您的工单已受理。")
    assert gateway.sends == [("/send", {"to": NUMBER, "msg": "您好，您的工单已受理。"})]
    status, body = api(server, cookie, "GET", "/api/sms/messages")
    assert status == 200 and [x["id"] for x in body["messages"]] == [msg_id] and body["counts"]["sent"] == 1


def test_bad_input_gets_the_cores_error_naming_the_argument(site, gateway):
    server, _, cookie, _ = site
    status, body = api(server, cookie, "POST", "/api/sms/send", {"to": "12ab", "text": "测试"})
    assert status == 400 and body["error"] == "bad_argument" and body["message"].startswith("to: "), body
    status, body = api(server, cookie, "POST", "/api/sms/send", {"text": "测试"})
    assert status == 400 and body["message"].startswith("to: required argument is missing"), body
    status, body = api(server, cookie, "GET", "/api/sms/messages?state=lost")
    assert status == 400 and body["message"].startswith("state: "), body
    status, body = api(server, cookie, "GET", "/api/sms/messages?limit=many")
    assert (status, body) == (400, {"error": "bad_argument", "message": "limit: 'many' is not a whole number"})
    status, body = api(server, cookie, "POST", "/api/sms/messages/nope/resolve", {"resend": True})
    assert status == 404 and body["error"] == "not_found", body
    # the browser cannot set the core's own request fields
    status, body = api(server, cookie, "POST", "/api/sms/optouts", {"cmd": "sms.send", "id": 1, "number": NUMBER})
    assert status == 200 and body["optout"]["number"] == NUMBER
    conn, r = request(server, "POST", "/api/sms/send", "to=1&text=x",
                      {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415 and json.loads(r.read())["message"].startswith("Content-Type: ")
    conn.close()
    conn, r = request(server, "POST", "/api/sms/send", "[1]", {"Cookie": cookie, "Content-Type": "application/json"})
    assert r.status == 400 and json.loads(r.read())["message"] == "body: the request body is not a JSON object"
    conn.close()
    assert gateway.sends == []


def test_templates_save_list_and_delete_by_chinese_name(site):
    server, _, cookie, _ = site
    name = "生日祝福"
    status, body = api(server, cookie, "POST", "/api/sms/templates", {"name": name, "text": "{客户姓名}您好，祝您生日快乐！"})
    assert status == 200 and body["template"]["name"] == name and body["template"]["fields"] == ["客户姓名"]
    status, body = api(server, cookie, "GET", "/api/sms/templates")
    assert status == 200 and [(t["name"], t["text"]) for t in body["templates"]] == [(name, "{客户姓名}您好，祝您生日快乐！")]
    status, body = api(server, cookie, "POST", "/api/sms/templates", {"name": "坏的", "text": "{姓名}您好"})
    assert status == 400 and "姓名" in body["message"], body

    status, body = api(server, cookie, "DELETE", "/api/sms/templates/" + quoted(name))
    assert (status, body) == (200, {"deleted": name})
    assert api(server, cookie, "GET", "/api/sms/templates") == (200, {"templates": []})
    status, body = api(server, cookie, "DELETE", "/api/sms/templates/" + quoted(name))
    assert status == 404 and body["error"] == "not_found" and name in body["message"], body


def test_campaign_to_two_numbers_created_listed_run_and_cancel(site, gateway):
    server, _, cookie, _ = site
    assert api(server, cookie, "POST", "/api/sms/templates", {"name": "到货", "text": "您好，{产品}已到货。"})[0] == 200
    spec = {"name": "到货通知", "template": "到货", "recipients": {"numbers": [NUMBER, "13900139000"]},
            "schedule": {"kind": "now"}, "values": {"product": "空调"}}
    status, body = api(server, cookie, "POST", "/api/sms/campaigns", spec)
    assert status == 200 and body["campaign"]["name"] == "到货通知", body
    status, body = api(server, cookie, "POST", "/api/sms/campaigns", spec)
    assert status == 409 and body["error"] == "conflict", body

    def done():
        status, body = api(server, cookie, "GET", "/api/sms/campaigns")
        assert status == 200
        (c,) = body["campaigns"]
        return c if c["state"] == "done" else None
    c = until(done, "the campaign to be done")
    assert (c["name"], c["template"], c["recipients"], c["counts"]["total"]["added"]) == (
        "到货通知", "到货", {"numbers": 2}, 2)
    until(lambda: len(gateway.sends) == 2, "both messages at the gateway")
    assert sorted(s[1]["to"] for s in gateway.sends) == [NUMBER, "13900139000"]
    assert all(s[1]["msg"].startswith("您好，空调已到货。") for s in gateway.sends)

    later = {**spec, "name": "元旦问候", "schedule": {"kind": "date", "at": "2099-01-01 09:00"}}
    assert api(server, cookie, "POST", "/api/sms/campaigns", later)[0] == 200
    status, body = api(server, cookie, "POST", f"/api/sms/campaigns/{quoted('元旦问候')}/cancel", {})
    assert status == 200 and body["campaign"]["state"] == "cancelled", body
    status, body = api(server, cookie, "POST", f"/api/sms/campaigns/{quoted('元旦问候')}/cancel", {})
    assert status == 409 and body["error"] == "conflict", body


def test_optouts_add_list_remove(site):
    server, _, cookie, _ = site
    status, body = api(server, cookie, "POST", "/api/sms/optouts", {"number": NUMBER})
    assert status == 200 and body["optout"]["number"] == NUMBER and body["optout"]["source"] == "manual"
    status, body = api(server, cookie, "GET", "/api/sms/optouts")
    assert status == 200 and [(o["number"], o["source"]) for o in body["optouts"]] == [(NUMBER, "manual")]
    assert api(server, cookie, "DELETE", f"/api/sms/optouts/{NUMBER}") == (200, {"removed": NUMBER})
    assert api(server, cookie, "GET", "/api/sms/optouts") == (200, {"optouts": []})
    status, body = api(server, cookie, "DELETE", f"/api/sms/optouts/{NUMBER}")
    assert status == 404 and body["error"] == "not_found", body


def test_transports_inbound_and_the_page(site):
    server, _, cookie, _ = site
    status, body = api(server, cookie, "GET", "/api/sms/transports")
    assert status == 200 and body["default"] == "http" and body["transports"]["http"]["up"] is True, body
    assert api(server, cookie, "GET", "/api/sms/inbound") == (200, {"messages": []})
    conn, r = request(server, "GET", "/sms", headers={"Cookie": cookie})
    page = r.read().decode("utf-8")
    assert r.status == 200 and 'src="static/sms.js"' in page and "发件箱" in page and "Outbox" in page
    assert '<a href="./">' in page and '<a href="sms" aria-current="page">' in page
    conn.close()
    conn, r = request(server, "GET", "/", headers={"Cookie": cookie})
    assert '<a href="sms">' in r.read().decode("utf-8")
    conn.close()


@pytest.mark.parametrize("method, url", [
    ("GET", "/api/sms/messages"), ("POST", "/api/sms/send"), ("GET", "/api/sms/templates"),
    ("DELETE", "/api/sms/templates/" + quoted("生日祝福")), ("POST", "/api/sms/campaigns/x/cancel"),
    ("GET", "/api/sms/optouts"), ("DELETE", f"/api/sms/optouts/{NUMBER}"), ("GET", "/api/sms/transports"),
])
def test_api_answers_401_without_a_session(site, method, url):
    server, _, _, _ = site
    status, body = api(server, None, method, url, {"to": NUMBER, "text": "x"} if method == "POST" else None)
    assert (status, body) == (401, {"error": "login_required", "message": "Please sign in first"})
    conn, r = request(server, "GET", "/sms")
    assert r.status == 303 and r.getheader("Location") == f"http://127.0.0.1:{server.port}/login"
    conn.close()


def test_core_not_running_is_503(tmp_path):
    config = str(tmp_path / "config.json")
    password = ensure_admin(config)
    app = webtest.TestApp(make_app(config, str(tmp_path / "none.sock")))
    app.post("/login", {"user": "admin", "password": password})
    r = app.get("/api/sms/templates", status=503)
    assert r.json["error"] == "core_unavailable" and "none.sock" in r.json["message"]


# --- the page in a real browser ------------------------------------------------------------------------------


def test_send_from_the_page_shows_sent_in_the_outbox(browser, site):
    server, box, _, password = site
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(20000)
    page.goto(server.url + "login")
    page.fill("input[name=user]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url)
    page.goto(server.url + "sms")
    page.wait_for_function("document.getElementById('link').classList.contains('up')")  # the SSE stream is open
    assert page.inner_text("#outbox-rows") == "没有短信 No messages"
    page.fill("#send-to", NUMBER)
    page.fill("#send-text", "您好，网页发送。")
    assert page.inner_text("#send-count") == "8 字，约 1 条 8 characters, about 1 part(s)"
    page.click("#send-form button[type=submit]")
    # the outbox reloads on the core's sms.state events until the gateway's answer makes it sent
    page.wait_for_function("""() => {
        const c = document.querySelectorAll('#outbox-rows tr.msg.sent td');
        return c.length > 0 && c[4].textContent === '已发送 Sent';
    }""")
    cells = page.eval_on_selector_all("#outbox-rows tr td", "tds => tds.map(td => td.textContent)")
    assert cells[1:6] == [NUMBER, "您好，网页发送。", "HTTP 网关 HTTP gateway", "已发送 Sent", ""]
    # a message the page did not send (the core's own API) shows up by the event stream alone
    box.call("sms.send", to="13900139000", text="另一条")
    page.wait_for_function("""() => Array.from(document.querySelectorAll('#outbox-rows tr.msg.sent td:nth-child(2)'))
        .some(td => td.textContent === '13900139000')""")
    assert page.inner_text("#sms-error") == "" and errors == []
    page.close()
