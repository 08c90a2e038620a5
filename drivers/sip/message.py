"""SIP messages (RFC 3261 §7): ``Request``, ``Response``, ``parse`` for a datagram, ``StreamParser`` for TCP.

Sans-I/O: bytes in, objects out, ``serialize()`` back to bytes. A parsed message
keeps its start line and each header field as received, so ``serialize()`` of an
untouched message gives the received bytes (leading CRLFs and octets past
Content-Length excepted); a changed header or start line is written afresh and
Content-Length always follows the body. Built messages get their Content-Length
on ``serialize()``.

Every parsed message is checked (``validate``): the mandatory headers (requests:
To, From, CSeq, Call-ID, Max-Forwards, Via; responses: Via, From, To, Call-ID,
CSeq), one each of From/To/Call-ID/CSeq/Max-Forwards/Content-Length, the syntax
of Via, From, To, Contact, CSeq, Max-Forwards and Content-Length, and the CSeq
method against the request method. Limits that protect the box: 64 KiB a
message, 100 header fields, 8 KiB a header field (folded lines counted
together) or start line. A datagram body shorter than Content-Length is an
error, a longer one is cut to it (RFC 3261 §18.3). Any failure is a
``ProtocolError`` that names the line, the header, the position and what was
expected. The typed header accessors (``via``, ``cseq``, ``from_``, ``to``,
``contacts``, ...) live on ``Message`` in ``message_base``.
"""

from __future__ import annotations

import re

from appliance.errors import ProtocolError

from .grammar import clip, is_token
from .headers import Field, Headers, canonical, parse_uint, unfold
from .message_base import MAX_MESSAGE, HeaderItems, Message
from .status import reason_for
from .uri import SipUri

MAX_HEADERS = 100
MAX_LINE = 8192
REQUEST_MANDATORY = ("To", "From", "CSeq", "Call-ID", "Max-Forwards", "Via")
RESPONSE_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
_DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
_STATUS_RE = re.compile(r"[1-6][0-9][0-9]")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.I)


class Request(Message):
    """A request: ``Request("INVITE", "sip:801@10.0.0.2", headers=[("Via", ...), ...], body=b"...")``."""

    MANDATORY = REQUEST_MANDATORY

    def __init__(self, method: str, uri: SipUri | str, headers: HeaderItems = (), body: bytes = b"",
                 version: str = "SIP/2.0") -> None:
        if not is_token(method):
            raise ProtocolError(f"request method {method!r} is not a token")
        super().__init__(headers, body)
        self.method = method
        self.uri = uri if isinstance(uri, SipUri) else SipUri.parse(uri, "Request-URI")
        self.version = version

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def _key(self) -> tuple[object, ...]:
        return (self.method, str(self.uri), self.version)

    def _kind(self) -> str:
        return f"{self.method} request"

    def validate(self) -> None:
        """``Message.validate`` and the CSeq method equal to the request method."""
        super().validate()
        cseq = self.cseq
        if cseq.method != self.method:
            raise ProtocolError(f"{self._required('CSeq').where}: method {cseq.method!r} does not match "
                                f"the request method {self.method!r}")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} headers={len(self.headers)} body={len(self.body)}B>"


class Response(Message):
    """A response: ``Response(180)`` (reason from the standard table) or ``Response.for_request(req, 200)``."""

    MANDATORY = RESPONSE_MANDATORY

    def __init__(self, status: int, reason: str | None = None, headers: HeaderItems = (), body: bytes = b"",
                 version: str = "SIP/2.0") -> None:
        if not 100 <= status <= 699:
            raise ProtocolError(f"status code {status} is outside 100-699")
        super().__init__(headers, body)
        self.status = status
        self.reason = reason_for(status) if reason is None else reason
        self.version = version

    @classmethod
    def for_request(cls, request: Request, status: int, reason: str | None = None, *,
                    to_tag: str | None = None) -> Response:
        """A response with Via (all, in order), From, To, Call-ID and CSeq of ``request`` (RFC 3261 §8.2.6.2).

        ``to_tag`` goes on To when the request's To has no tag, except on 100.
        A 100 also copies Timestamp (§8.2.6.1); a 101-299 response to a request
        that can create a dialog copies Record-Route (§12.1.1).
        """
        response = cls(status, reason)
        add = response.headers.add
        for f in request.headers.find("Via"):
            add("Via", f.value)
        add("From", request._required("From").value)
        to = request._required("To").value
        if to_tag is not None and status != 100 and request.to.tag is None:
            to = f"{to};tag={to_tag}"
        add("To", to)
        add("Call-ID", request._required("Call-ID").value)
        add("CSeq", request._required("CSeq").value)
        if status == 100:
            for value in request.headers.get_all("Timestamp"):
                add("Timestamp", value)
        if 100 < status < 300 and request.method in _DIALOG_METHODS:
            for value in request.headers.get_all("Record-Route"):
                add("Record-Route", value)
        return response

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def _key(self) -> tuple[object, ...]:
        return (self.version, self.status, self.reason)

    def _kind(self) -> str:
        return f"{self.status} response"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} headers={len(self.headers)} body={len(self.body)}B>"


def parse(data: bytes) -> Request | Response:
    """The message in one datagram (or one already framed message); leading CRLFs are skipped."""
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(data)} bytes is larger than the {MAX_MESSAGE}-byte limit")
    start = len(data) - len(data.lstrip(b"\r\n"))
    if start == len(data):
        raise ProtocolError("no SIP message: the datagram is empty or holds only CR/LF (a keep-alive)")
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise ProtocolError("no empty line (CRLF CRLF) ends the header section")
    message, length = _parse_head(data[start:end])
    body = data[end + 4:]
    if length is not None:
        if len(body) < length:
            raise ProtocolError(f"the body has {len(body)} bytes, fewer than Content-Length {length}")
        body = body[:length]
    return _finish(message, body)


class StreamParser:
    """Frames messages on a stream (TCP, TLS) by Content-Length, mandatory there (RFC 3261 §18.3).

    CR/LF between messages (keep-alives, RFC 5626 §4.4.1) are skipped. A bad
    message breaks the stream: ``feed`` raises ProtocolError whose ``messages``
    attribute holds the messages completed before it in that call, and every
    later ``feed`` raises too: close the connection.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: tuple[Request | Response, int, int] | None = None  # message, header end, total
        self._scanned = 0  # bytes already searched for the end of the header section
        self._error: ProtocolError | None = None

    def feed(self, data: bytes) -> list[Request | Response]:
        """The messages completed by ``data``, in order."""
        if self._error is not None:
            raise ProtocolError(f"the stream failed earlier: {self._error}")
        self._buffer += data
        messages: list[Request | Response] = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except ProtocolError as error:
            self._error = error
            error.messages = messages  # type: ignore[attr-defined]
            raise
        return messages

    def _next(self) -> Request | Response | None:
        buffer = self._buffer
        if self._pending is None:
            skip = 0
            while skip < len(buffer) and buffer[skip] in b"\r\n":
                skip += 1
            if skip:
                del buffer[:skip]
                self._scanned = 0
            end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3), MAX_MESSAGE)
            if end < 0:
                if len(buffer) >= MAX_MESSAGE:
                    raise ProtocolError(f"no end of the header section within {MAX_MESSAGE} bytes")
                self._scanned = len(buffer)
                return None
            self._scanned = 0
            message, length = _parse_head(bytes(buffer[:end]))
            if length is None:
                raise ProtocolError("no Content-Length header; it is mandatory on stream transports "
                                    "(RFC 3261 §18.3)")
            total = end + 4 + length
            if total > MAX_MESSAGE:
                raise ProtocolError(f"message of {total} bytes is larger than the {MAX_MESSAGE}-byte limit")
            self._pending = (message, end, total)
        message, end, total = self._pending
        if len(buffer) < total:
            return None
        body = bytes(buffer[end + 4:total])
        del buffer[:total]
        self._pending = None
        return _finish(message, body)


def _parse_head(head: bytes) -> tuple[Request | Response, int | None]:
    """The start line and header fields (without the final CRLF CRLF); the Content-Length value or None."""
    lines = head.split(b"\r\n")
    start_raw = lines[0]
    if len(start_raw) > MAX_LINE:
        raise ProtocolError(f"start line is {len(start_raw)} bytes long; the limit is {MAX_LINE}")
    fields: list[Field] = []
    group: list[bytes] = []
    group_line = 0
    for number, line in enumerate(lines, 1):
        if b"\r" in line or b"\n" in line:
            raise ProtocolError(f"line {number}: a bare CR or LF; lines end with CRLF")
        if number == 1:
            continue
        if line[:1] in (b" ", b"\t"):
            if not group:
                raise ProtocolError(f"line {number}: a continuation line (leading white space) "
                                    f"before any header field")
            group.append(line)
            continue
        if group:
            fields.append(_field(group, group_line, len(fields)))
        group, group_line = [line], number
    if group:
        fields.append(_field(group, group_line, len(fields)))
    message = _start(start_raw, Headers.from_fields(fields))
    lengths = [f for f in fields if canonical(f.name) == "content-length"]
    if len(lengths) > 1:
        raise ProtocolError(f"{lengths[1].where}: a second Content-Length header")
    length = parse_uint(lengths[0].value, lengths[0].where, MAX_MESSAGE) if lengths else None
    return message, length


def _field(group: list[bytes], line: int, count: int) -> Field:
    if count >= MAX_HEADERS:
        raise ProtocolError(f"line {line}: more than {MAX_HEADERS} header fields")
    raw = b"\r\n".join(group)
    if len(raw) > MAX_LINE:
        raise ProtocolError(f"line {line}: header field of {len(raw)} bytes; the limit is {MAX_LINE}")
    text = raw.decode("utf-8", "surrogateescape")
    colon = text.find(":")
    if colon < 0:
        raise ProtocolError(f"line {line}: expected 'Name: value', found no ':' in {clip(text)!r}")
    name = unfold(text[:colon])
    if not is_token(name):
        raise ProtocolError(f"line {line}: header name {clip(name)!r} is not a token")
    return Field(name, unfold(text[colon + 1:]), raw, line)


def _start(raw: bytes, headers: Headers) -> Request | Response:
    text = raw.decode("utf-8", "surrogateescape")
    if text[:4].upper() == "SIP/":
        version, _, rest = text.partition(" ")
        _check_version(version, "status line")
        code, _, reason = rest.partition(" ")
        if not _STATUS_RE.fullmatch(code):
            raise ProtocolError(f"status line: expected a three-digit status code 100-699 after "
                                f"{version!r}, found {clip(code)!r}")
        message: Request | Response = Response(int(code), reason, headers, version=version)
    else:
        parts = text.split(" ")
        if len(parts) != 3 or not all(parts):
            if text != text.rstrip(" \t"):
                raise ProtocolError(f"request line: white space at the end of {clip(text)!r}")
            if "  " in text:
                raise ProtocolError(f"request line: more than one space at position {text.find('  ')} of "
                                    f"{clip(text)!r}; elements are separated by single spaces")
            raise ProtocolError(f"request line: expected 'METHOD Request-URI SIP/2.0', found "
                                f"{len(parts)} space-separated elements in {clip(text)!r}")
        method, uri_text, version = parts
        if not is_token(method):
            raise ProtocolError(f"request line: method {clip(method)!r} is not a token")
        _check_version(version, "request line")
        uri = SipUri.parse(uri_text, "Request-URI")
        if uri.headers:
            raise ProtocolError(f"Request-URI {clip(uri_text)!r}: headers ('?') are not allowed in a "
                                f"Request-URI (RFC 3261 §19.1.1)")
        message = Request(method, uri, headers, version=version)
    message._raw_start = raw
    message._start_key = message._key()
    return message


def _check_version(version: str, where: str) -> None:
    if version.upper() != "SIP/2.0":
        if _VERSION_RE.fullmatch(version):
            raise ProtocolError(f"{where}: SIP version {version!r} is not supported (expected SIP/2.0)")
        raise ProtocolError(f"{where}: expected the SIP version SIP/2.0, found {clip(version)!r}")


def _finish(message: Request | Response, body: bytes) -> Request | Response:
    message.body = body
    message._parsed_body = body
    message.validate()
    return message
