"""The HTTP SMS gateway against a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appliance.errors import ConfigError, ProtocolError
from appliance.sms.httpgw import HttpGateway, HttpGatewayConfig, ReportFields, fill, parse_report
from appliance.sms.transport import Accepted, Down, Rejected, Report, Uncertain, Up


class Gateway:
    """A local gateway: records (method, path, headers, body) and answers from ``answers``: (status, body) or
    (status, body, headers); ``HOLD`` answers only once ``release`` is set, ``CLOSE`` hangs up without a word."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.answers: list[tuple] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                status, text, *more = outer.answers.pop(0) if outer.answers else (200, "OK")
                if status == CLOSE:
                    self.close_connection = True
                    return
                if status == HOLD:
                    outer.release.wait(10.0)  # bounded: a broken test must not hang the server
                    status = 200
                data = text if isinstance(text, bytes) else text.encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (more[0] if more else {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (HOLD)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


HOLD, CLOSE = "hold", "close"


@pytest.fixture
def gw():
    server = Gateway()
    yield server
    server.release.set()
    server.close()


def make(url: str, threads: int = 0, **kwargs) -> HttpGateway:
    kwargs.setdefault("success", r"^OK(:(?P<ref>\w+))?")
    kwargs.setdefault("timeout_s", 2.0)
    return HttpGateway(HttpGatewayConfig(url=url, **kwargs), threads=threads)


def send(t: HttpGateway, msg_id: str = "m1", number: str = "13800138000", text: str = "hi") -> list:
    t.submit(msg_id, number, text, 0.0)
    return t.poll(0.0)


def test_get_url_percent_encodes_chinese(gw):
    t = make(gw.base + "/send?u={account}&p={password}&to={number}&msg={text}&id={msg_id}&from={sender}",
             account="acme", password="p&w=1", sender="10690001")
    assert send(t, text="您好 张三，订单已发货&") == [Accepted("m1", "m1")]
    method, path, _, body = gw.requests[0]
    assert method == "GET" and body == b""
    assert path == ("/send?u=acme&p=p%26w%3D1&to=13800138000"
                    "&msg=%E6%82%A8%E5%A5%BD%20%E5%BC%A0%E4%B8%89%EF%BC%8C"
                    "%E8%AE%A2%E5%8D%95%E5%B7%B2%E5%8F%91%E8%B4%A7%26"
                    "&id=m1&from=10690001")


def test_post_json_body_escapes(gw):
    t = make(gw.base + "/api", method="POST", body_kind="json",
             body='{"to":"{number}","content":"{text}"}', headers={"X-Key": "k1"})
    text = '他说"好"\\ 换行\n结束'
    assert send(t, text=text) == [Accepted("m1", "m1")]
    _, path, headers, body = gw.requests[0]
    assert path == "/api" and headers["X-Key"] == "k1"
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body.decode("utf-8")) == {"to": "13800138000", "content": text}
    assert "他说".encode() in body  # UTF-8, not \\u escapes


def test_post_form_body(gw):
    t = make(gw.base + "/f", method="POST", body="to={number}&msg={text}")
    send(t, text="退订 回复TD+1")
    _, _, headers, body = gw.requests[0]
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert body == b"to=13800138000&msg=%E9%80%80%E8%AE%A2+%E5%9B%9E%E5%A4%8DTD%2B1"


def test_success_with_ref(gw):
    gw.answers.append((200, "OK:gw12345\n"))
    assert send(gw_t := make(gw.base + "/s?t={text}")) == [Accepted("m1", "gw12345")]
    gw_t.close()


def test_json_success_pattern_and_failure_pattern(gw):
    t = make(gw.base + "/s", success=r'"code":\s*0.*"id":\s*"(?P<ref>[^"]+)"', failure=r'"code":\s*(4\d|1)\b')
    gw.answers += [(200, '{"code": 0, "id": "A1"}'), (200, '{"code": 41, "msg": "号码格式错误"}'),
                   (200, "<html>maintenance</html>")]
    assert send(t, "a") == [Accepted("a", "A1")]
    [r] = send(t, "b")
    assert r.msg_id == "b" and not r.retryable and "failure pattern" in r.reason and "号码格式错误" in r.reason
    [r] = send(t, "c")
    assert not r.retryable and "not recognised" in r.reason


def test_4xx_is_permanent_with_status_and_excerpt(gw):
    gw.answers.append((400, "bad number " + "x" * 500))
    [r] = send(make(gw.base + "/s"))
    assert isinstance(r, Rejected) and not r.retryable
    assert r.reason.startswith("HTTP 400: bad number") and len(r.reason) < 200


def test_503_is_retryable(gw):
    gw.answers.append((503, "busy"))
    assert send(make(gw.base + "/s")) == [Rejected("m1", "HTTP 503: busy", retryable=True)]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_is_uncertain_and_sent_once(gw, status):
    gw.answers.append((status, "oops"))
    assert send(make(gw.base + "/s")) == [Uncertain("m1", f"HTTP {status}: oops")]
    assert len(gw.requests) == 1


def test_404_is_permanent(gw):
    gw.answers.append((404, "no such API"))
    assert send(make(gw.base + "/s")) == [Rejected("m1", "HTTP 404: no such API", retryable=False)]


def test_429_is_retryable_and_not_a_failure(gw):
    t = make(gw.base + "/s", down_after=1)
    gw.answers.append((429, "too many requests"))
    assert send(t) == [Rejected("m1", "HTTP 429: too many requests", retryable=True)]  # no Down


def test_answer_after_the_timeout_is_uncertain_and_the_request_went_once(gw):
    gw.answers.append((HOLD, "OK:late"))  # the gateway takes the request and answers after our timeout
    [r] = send(make(gw.base + "/s", timeout_s=0.2))
    assert isinstance(r, Uncertain) and r.msg_id == "m1"
    assert r.reason == "no answer after the request went: TimeoutError: timed out"
    gw.release.set()
    assert len(gw.requests) == 1


def test_closed_without_an_answer_is_uncertain(gw):
    gw.answers.append((CLOSE, ""))
    [r] = send(make(gw.base + "/s"))
    assert isinstance(r, Uncertain) and "RemoteDisconnected" in r.reason
    assert len(gw.requests) == 1


def test_answer_never_read_from_a_silent_listener_is_uncertain():
    silent = socket.socket()  # connections complete in its backlog: the request is written, never answered
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        t = make(f"http://127.0.0.1:{silent.getsockname()[1]}/s", timeout_s=0.2)
        [r] = send(t)
        assert isinstance(r, Uncertain) and "timed out" in r.reason
    finally:
        silent.close()


def test_connect_timeout_is_retryable():
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the accept queue: later SYNs are dropped
    try:
        [r] = send(make(f"http://127.0.0.1:{port}/s", timeout_s=0.2))
        assert r == Rejected("m1", "TimeoutError: timed out", retryable=True)
    finally:
        filler.close()
        full.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused_is_retryable():
    [r] = send(make(f"http://127.0.0.1:{free_port()}/s"))
    assert isinstance(r, Rejected) and r.retryable and "Refused" in r.reason


def test_a_redirect_then_refused_is_uncertain(gw):
    gw.answers.append((302, "moved", {"Location": f"http://127.0.0.1:{free_port()}/s"}))
    [r] = send(make(gw.base + "/s"))  # the gateway had the request: whatever fails next, it may have it
    assert isinstance(r, Uncertain) and "Refused" in r.reason
    assert len(gw.requests) == 1


def test_down_after_n_failures_and_up_after_success(gw):
    t = make(gw.base + "/s", down_after=3)
    gw.answers += [(500, "e1"), (503, "e2"), (502, "e3"), (500, "e4"), (200, "OK:r5"), (200, "OK:r6")]
    assert send(t, "1") == [Uncertain("1", "HTTP 500: e1")]
    assert send(t, "2") == [Rejected("2", "HTTP 503: e2", True)]
    ev = send(t, "3")
    assert ev[0] == Uncertain("3", "HTTP 502: e3")
    assert isinstance(ev[1], Down) and "3 failures" in ev[1].reason and "e3" in ev[1].reason
    assert send(t, "4") == [Uncertain("4", "HTTP 500: e4")]  # Down once only
    assert send(t, "5") == [Up(), Accepted("5", "r5")]
    assert send(t, "6") == [Accepted("6", "r6")]


def test_refused_and_timed_out_count_towards_down(gw):
    t = make(f"http://127.0.0.1:{free_port()}/s", down_after=2)
    send(t, "1")
    ev = send(t, "2")
    assert isinstance(ev[0], Rejected) and isinstance(ev[1], Down) and "2 failures" in ev[1].reason
    t = make(gw.base + "/s", down_after=1, timeout_s=0.2)
    gw.answers.append((HOLD, "OK"))
    ev = send(t, "3")
    assert isinstance(ev[0], Uncertain) and isinstance(ev[1], Down)


def test_4xx_neither_counts_nor_resets_failures(gw):
    t = make(gw.base + "/s", down_after=2)
    gw.answers += [(500, "e"), (400, "bad"), (500, "e")]
    send(t, "1")
    send(t, "2")
    assert isinstance(send(t, "3")[-1], Down)


def test_threaded_worker_answers_through_poll(gw):
    t = make(gw.base + "/s?t={text}", threads=2)
    gw.answers += [(200, "OK:a"), (200, "OK:b")]
    t.submit("1", "1", "x", 10.0)
    t.submit("2", "2", "y", 10.0)
    assert t.next_deadline() == pytest.approx(10.1)
    assert t.wait(5.0)
    events = t.poll(10.1)
    assert sorted(e.msg_id for e in events) == ["1", "2"] and all(isinstance(e, Accepted) for e in events)
    assert t.next_deadline() is None
    t.close()


@pytest.mark.parametrize("kwargs, words", [
    ({"method": "PUT"}, "method"),
    ({"url": "ftp://x/{text}"}, "url"),
    ({"url": "http://x/?m={message}"}, "{message}"),
    ({"method": "POST", "body": "to={phone}"}, "body has unknown placeholder {phone}"),
    ({"body": "a={text}"}, "POST"),
    ({"body_kind": "xml", "method": "POST"}, "body_kind"),
    ({"success": "OK(("}, "success pattern"),
    ({"success": ""}, "success pattern is empty"),
    ({"success": "OK(?P<id>\\d+)"}, "'ref'"),
    ({"failure": "[oops"}, "failure pattern"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"down_after": 0}, "down_after"),
    ({"headers": {"X": "a\r\nEvil: 1"}}, "header"),
])
def test_config_errors_name_the_field(kwargs, words):
    kwargs = {"url": "http://gw/s?m={text}", "success": "OK", **kwargs}
    with pytest.raises(ConfigError, match=words.replace("{", r"\{").replace("(", r"\(").replace("?", r"\?")):
        HttpGateway(HttpGatewayConfig(**kwargs), threads=0)


def test_json_template_braces_are_not_placeholders():
    body = '{"a":{"b":"{text}"},"c":{}}'
    HttpGateway(HttpGatewayConfig(url="http://gw/s", success="OK", method="POST", body_kind="json",
                                  body=body), threads=0).close()  # accepted: only {text} is a placeholder
    assert fill(body, {"text": '说"hi"'}, "json") == '{"a":{"b":"说\\"hi\\""},"c":{}}'


def test_from_mapping_names_unknown_and_missing_keys():
    config = HttpGatewayConfig.from_mapping({"url": "http://gw/s?m={text}", "success": "OK", "down_after": 5})
    assert config.down_after == 5
    with pytest.raises(ConfigError, match="unknown key\\(s\\) pattern"):
        HttpGatewayConfig.from_mapping({"url": "http://gw/s", "success": "OK", "pattern": "x"})
    with pytest.raises(ConfigError, match="needs the key\\(s\\) success"):
        HttpGatewayConfig.from_mapping({"url": "http://gw/s"})
    with pytest.raises(ConfigError, match="down_after"):
        HttpGatewayConfig.from_mapping({"url": "http://gw/s", "success": "OK", "down_after": "3"})


def test_password_never_in_reasons():
    t = make(f"http://127.0.0.1:{free_port()}/s?p={{password}}", password="s3cret")
    [r] = send(t)
    assert "s3cret" not in r.reason


def test_gbk_answer_is_read(gw):
    t = make(gw.base + "/s", success="成功,(?P<ref>\\d+)")
    gw.answers.append((200, "成功,42".encode("gbk")))  # not UTF-8
    assert send(t) == [Accepted("m1", "42")]


FIELDS = ReportFields(ref="msgid", status="stat", delivered=("DELIVRD", "0"))


def test_parse_report_query_and_json():
    assert parse_report("msgid=gw1&stat=DELIVRD&mobile=138", FIELDS) == [Report("gw1", "DELIVRD", True)]
    assert parse_report(b"?msgid=gw2&stat=UNDELIV", FIELDS) == [Report("gw2", "UNDELIV", False)]
    body = json.dumps([{"msgid": "a", "stat": 0}, {"msgid": "b", "stat": "delivrd"}, {"msgid": "c", "stat": "EXPIRED"}])
    assert parse_report(body, FIELDS) == [Report("a", "0", True), Report("b", "delivrd", True),
                                          Report("c", "EXPIRED", False)]


@pytest.mark.parametrize("text, words", [
    ("stat=DELIVRD", "'msgid'"),
    ('{"msgid": "a"}', "'stat'"),
    ('{"msgid": ', "not valid JSON"),
    ("[1, 2]", "list of objects"),
])
def test_parse_report_errors(text, words):
    with pytest.raises(ProtocolError, match=words):
        parse_report(text, FIELDS)
