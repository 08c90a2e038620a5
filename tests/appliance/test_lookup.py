"""IVR HTTP lookups against a real HTTP server on 127.0.0.1: JSON fields, text, GBK, and every failure named."""

from __future__ import annotations

import json
import time

import pytest

from appliance.lookup import MAX_BODY, LookupWorker, fetch
from tests.appliance.servers import Answering, http_server


class Handler(Answering):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        path = self.path
        if path.startswith("/orders/2026113"):
            self.answer("application/json", json.dumps({"status": "已发货", "eta": 2, "items": ["a"]},
                                                       ensure_ascii=False).encode())
        elif path == "/hours":
            self.answer("text/plain; charset=gbk", "周一至周五 9:00-18:00".encode("gbk"))
        elif path == "/slow":
            time.sleep(1.0)
            self.answer("text/plain", b"late")
        elif path == "/big":
            self.answer("text/plain", b"x" * (MAX_BODY + 1))
        elif path == "/broken":
            self.answer("application/json", b"{not json")
        else:
            self.answer("text/plain", b"no", status=404)


@pytest.fixture(scope="module")
def server():
    with http_server(Handler) as url:
        yield url


def test_a_json_answer_becomes_string_fields(server):
    ok, fields = fetch(f"{server}/orders/2026113?caller=13912345678", 2.0)
    assert ok and fields == {"status": "已发货", "eta": "2", "items": '["a"]'}


def test_a_text_answer_in_gbk_is_the_text_field(server):
    assert fetch(f"{server}/hours", 2.0) == (True, {"text": "周一至周五 9:00-18:00"})


@pytest.mark.parametrize("path, error", [
    ("/missing", "HTTP 404 Not Found"),
    ("/slow", "timed out"),
    ("/big", f"answer larger than {MAX_BODY} bytes"),
    ("/broken", "answer is not valid JSON"),
])
def test_failures_say_what_happened(server, path, error):
    ok, fields = fetch(f"{server}{path}", 0.3)
    assert not ok and error in fields["error"]


def test_refused_and_wrong_scheme():
    assert fetch("ftp://example.cn/x", 1.0) == (False, {"error": "not an http(s) URL: ftp://example.cn/x"})
    ok, fields = fetch("http://127.0.0.1:1/x", 1.0)
    assert not ok and "ConnectionRefusedError" in fields["error"]


def test_the_worker_answers_off_the_tick(server):
    worker = LookupWorker(threads=2)
    try:
        started = time.monotonic()
        worker.submit(("c1", 3), f"{server}/orders/2026113", 2.0)
        worker.submit(("c2", 4), f"{server}/missing", 2.0)
        assert time.monotonic() - started < 0.05  # submit returns at once
        results = []
        for _ in range(100):
            results += worker.results()
            if len(results) == 2:
                break
            time.sleep(0.02)
        assert sorted((k, ok) for k, ok, _ in results) == [(("c1", 3), True), (("c2", 4), False)]
    finally:
        worker.close()
