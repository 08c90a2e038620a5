"""The dashboard in a real browser (Debian's chromium driven by Playwright): what a supervisor sees.

The page comes from the real web app after a real login; /api/status and the
event stream are served by the test, so the browser's rendering of every part of
the status is checked exactly, with no script errors.
"""

from __future__ import annotations

import copy
import json
import os

import webtest

from appliance.users import ensure_admin
from tests.webui.test_app import SNAPSHOT
from webui.app import make_app

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(os.path.dirname(os.path.dirname(HERE)), "webui", "static")


def dashboard_html(tmp_path) -> str:
    config = str(tmp_path / "config.json")
    password = ensure_admin(config)
    app = webtest.TestApp(make_app(config, str(tmp_path / "none.sock"), clock=lambda: 0.0))
    app.post("/login", {"user": "admin", "password": password})
    return app.get("/").text


def show(browser, tmp_path, status: dict):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    html = dashboard_html(tmp_path)
    def serve(body: str, kind: str, status: int = 200):
        return lambda route: route.fulfill(body=body, content_type=kind, status=status)

    for name, kind in (("dashboard.js", "application/javascript"), ("style.css", "text/css")):
        with open(os.path.join(STATIC, name), encoding="utf-8") as f:
            page.route(f"**/static/{name}", serve(f.read(), kind))
    page.route("**/api/status", serve(json.dumps(status), "application/json"))
    page.route("**/events*", serve("", "text/event-stream", 204))
    page.route("http://box.test/", serve(html, "text/html; charset=utf-8"))
    page.goto("http://box.test/")
    page.wait_for_function("document.getElementById('today-offered').textContent !== '-'")
    return page, errors


def test_dashboard_shows_alarms_and_out_of_service_seats(browser, tmp_path):
    status = copy.deepcopy(SNAPSHOT)
    status["alarms"] = {"spans": {"1": ["LOS", "RED"]}, "ports": {"FXS 2": "no frames"},
                        "box": {"card.removed": "Digium TE131"}}
    status["trunks"][5]["state"] = "alarm"
    status["seats"][1].update(state="out_of_service", caller=None, call_id=None)
    page, errors = show(browser, tmp_path, status)
    assert errors == []
    assert page.inner_text("#alarms").splitlines() == [
        "中继 1 告警 Span 1 alarm: LOS, RED",
        "端口停用 Port out of service: FXS 2 - no frames",
        "语音卡已拔出 Voice card removed: Digium TE131",
    ]
    assert page.inner_text("#seat-rows tr:nth-child(2) td:nth-child(3)") == "故障停用 Out of service"
    assert "alarm" in page.get_attribute("#trunk-grid .cell:nth-child(6)", "class")
    assert page.inner_text("#today-offered") == "10"
    page.close()


def test_no_alarm_no_banner(browser, tmp_path):
    status = copy.deepcopy(SNAPSHOT)
    status["alarms"] = {"spans": {}, "ports": {}, "box": {}}
    page, errors = show(browser, tmp_path, status)
    assert errors == [] and page.eval_on_selector("#alarms", "e => e.hidden") is True
    page.close()
