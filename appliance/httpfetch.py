"""One HTTP request that never raises: the status and the decoded answer, or what went wrong.

Shared by the IVR lookups (``lookup.fetch``) and the HTTP SMS gateway
(``sms.httpgw``), which both call business systems that answer in UTF-8 or, often
enough in China, GBK. It blocks: call it from a worker thread (``OffTick``),
never from the tick.

Whether the request reached the server is told apart (``Reply.sent``) for the SMS
gateway, which must not send a message twice. In ``urllib.request``'s
``AbstractHTTPHandler.do_open`` an ``OSError`` while connecting or writing the
request (``h.request``) comes wrapped in ``URLError``; what fails while waiting for
or reading the answer (``h.getresponse``, ``read``) comes raw (``OSError``,
``TimeoutError``, ``http.client.HTTPException``). A bad URL or header fails before
a byte goes (``ValueError``, ``http.client.InvalidURL``). Once any answer came (a
redirect's too) the request certainly went. When unsure (a proxy's broken answer to
an HTTPS CONNECT comes raw too) it counts as sent: the safe side.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass

MAX_BODY = 64 * 1024
USER_AGENT = "callcentre-appliance"


@dataclass(frozen=True)
class Reply:
    """What one request gave.

    Parameters
    ----------
    status : int or None
        The HTTP status, also of a 4xx/5xx; None when no answer came (refused, DNS, timeout, bad URL).
    text : str
        The body decoded as UTF-8, else GBK, else latin-1; at most ``max_body`` bytes of it. Empty when
        ``status`` is None.
    error : str
        Empty when the answer is whole text; else why not: no answer (the exception, when ``status`` is None),
        ``answer larger than N bytes`` (``text`` is then cut) or ``answer is neither UTF-8 nor GBK text``.
    reason : str
        The status line's reason phrase (``Not Found``).
    content_type : str
        The media type without parameters (``application/json``), or empty.
    sent : bool
        False only when the request certainly did not reach the server whole (a bad URL, DNS, refused, a
        connect timeout, an error while writing it); True once it was written (the answer may then be lost).
    """

    status: int | None
    text: str = ""
    error: str = ""
    reason: str = ""
    content_type: str = ""
    sent: bool = True


def _decode(body: bytes) -> tuple[str, bool]:
    """``(text, True)`` for UTF-8 or GBK, else ``(latin-1 text, False)``: a stray byte never raises."""
    for encoding in ("utf-8", "gbk"):
        try:
            return body.decode(encoding), True
        except UnicodeDecodeError:
            continue
    return body.decode("latin-1"), False


def decode_text(body: bytes) -> str:
    """``body`` as text: UTF-8, else GBK, else latin-1."""
    return _decode(body)[0]


def _reply(status: int, reason: str, content_type: str, body: bytes, max_body: int) -> Reply:
    text, readable = _decode(body[:max_body])
    error = ""
    if len(body) > max_body:
        error = f"answer larger than {max_body} bytes"
    elif not readable:
        error = "answer is neither UTF-8 nor GBK text"
    return Reply(status, text, error, reason, content_type)


class _Answered(urllib.request.BaseHandler):
    """Notes that an answer came: before ``HTTPErrorProcessor`` (order 1000) acts on it, so also for a redirect
    whose next request then fails."""

    def __init__(self) -> None:
        self.answered = False

    def http_response(self, request, response):
        self.answered = True
        return response

    https_response = http_response


def _error(exc: BaseException, sent: bool) -> Reply:
    reason = getattr(exc, "reason", exc)  # a URLError's wrapped exception says what happened
    return Reply(None, error=f"{type(reason).__name__}: {reason}"[:200], sent=sent)


def request(url: str, timeout_s: float, *, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None, max_body: int = MAX_BODY) -> Reply:
    """Send one request to an http(s) ``url`` and read up to ``max_body`` bytes of the answer. Never raises.

    ``headers`` are added to a ``User-Agent`` (which they may replace); ``timeout_s`` bounds the connect and
    each read.
    """
    if not url.startswith(("http://", "https://")):
        return Reply(None, error=f"not an http(s) URL: {url[:80]}", sent=False)
    answered = _Answered()
    try:
        req = urllib.request.Request(url, data=body, method=method,
                                     headers={"User-Agent": USER_AGENT, **(headers or {})})
        # the default handlers, as urlopen uses, and the marker
        with urllib.request.build_opener(answered).open(req, timeout=timeout_s) as resp:
            return _reply(resp.status, resp.reason, resp.headers.get_content_type(), resp.read(max_body + 1),
                          max_body)
    except urllib.error.HTTPError as exc:  # 4xx/5xx: the body usually says why
        try:
            data = exc.read(max_body + 1)
        except (OSError, http.client.HTTPException):
            data = b""
        kind = exc.headers.get_content_type() if exc.headers is not None else ""
        return _reply(exc.code, str(exc.reason), kind, data, max_body)
    except (urllib.error.URLError, ValueError, http.client.InvalidURL) as exc:  # before the request was written
        return _error(exc, answered.answered)
    except (OSError, http.client.HTTPException) as exc:  # after: timeout, reset or closed, a broken answer
        return _error(exc, True)
