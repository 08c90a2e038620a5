"""The part requests and responses share: headers, body, typed header accessors, validation, serialization.

``drivers.sip.message`` builds ``Request`` and ``Response`` on ``Message``; import
them from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from appliance.errors import ProtocolError

from .grammar import clip, is_number
from .headers import CSeq, Field, Headers, Via, canonical, parse_uint
from .uri import NameAddr, parse_contacts

MAX_MESSAGE = 65536
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")

HeaderItems = Headers | Iterable[tuple[str, object]]


class Message:
    """What requests and responses share: ``headers``, ``body`` and typed header accessors.

    The accessors parse on each use and raise ProtocolError for a bad value;
    those of mandatory headers also raise when the header is missing, the others
    give None (or an empty list).
    """

    MANDATORY: tuple[str, ...] = ()  # the headers ``validate`` requires

    def __init__(self, headers: HeaderItems, body: bytes) -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)
        self._raw_start: bytes | None = None
        self._start_key: tuple[object, ...] | None = None
        self._parsed_body: bytes | None = None

    def start_line(self) -> str:
        raise NotImplementedError

    def _key(self) -> tuple[object, ...]:
        raise NotImplementedError

    def _kind(self) -> str:
        raise NotImplementedError

    def _one(self, name: str) -> Field | None:
        found = self.headers.find(name)
        if len(found) > 1:
            raise ProtocolError(f"{found[1].where}: a second {name} header; only one is allowed")
        return found[0] if found else None

    def _required(self, name: str) -> Field:
        found = self._one(name)
        if found is None:
            raise ProtocolError(f"{self._kind()} has no {name} header")
        return found

    @property
    def call_id(self) -> str:
        f = self._required("Call-ID")
        if not f.value or any(c in f.value for c in " \t"):
            raise ProtocolError(f"{f.where}: expected word[@word] without white space, found {clip(f.value)!r}")
        return f.value

    @property
    def cseq(self) -> CSeq:
        f = self._required("CSeq")
        return CSeq.parse(f.value, f.where)

    @property
    def from_(self) -> NameAddr:
        f = self._required("From")
        return NameAddr.parse(f.value, f.where)

    @property
    def to(self) -> NameAddr:
        f = self._required("To")
        return NameAddr.parse(f.value, f.where)

    @property
    def via(self) -> list[Via]:
        """Every Via value, top (most recent hop) first, across all Via fields."""
        return [via for f in self.headers.find("Via") for via in Via.parse_all(f.value, f.where)]

    @property
    def contacts(self) -> list[NameAddr] | Literal["*"]:
        """The Contact addresses in order, ``"*"`` for the wildcard, ``[]`` without Contact."""
        fields = self.headers.find("Contact")
        result: list[NameAddr] = []
        for f in fields:
            parsed = parse_contacts(f.value, f.where)
            if parsed == "*":
                if len(fields) > 1:
                    raise ProtocolError(f"{f.where}: '*' must be the only Contact value, "
                                        f"found {len(fields)} Contact headers")
                return "*"
            result.extend(parsed)
        return result

    def _name_addrs(self, name: str) -> list[NameAddr]:
        result = []
        for f in self.headers.find(name):
            parsed = parse_contacts(f.value, f.where)
            if parsed == "*":
                raise ProtocolError(f"{f.where}: '*' is only allowed in Contact")
            result.extend(parsed)
        return result

    @property
    def routes(self) -> list[NameAddr]:
        return self._name_addrs("Route")

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._name_addrs("Record-Route")

    @property
    def max_forwards(self) -> int | None:
        f = self._one("Max-Forwards")
        return None if f is None else parse_uint(f.value, f.where, 255)

    @property
    def expires(self) -> int | None:
        f = self._one("Expires")
        return None if f is None else parse_uint(f.value, f.where, 2**32 - 1)

    @property
    def content_length(self) -> int | None:
        """The Content-Length header's value (not the body's length), or None."""
        f = self._one("Content-Length")
        return None if f is None else parse_uint(f.value, f.where, MAX_MESSAGE)

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as written, parameters included."""
        f = self._one("Content-Type")
        return None if f is None else f.value

    @property
    def media_type(self) -> str | None:
        """``type/subtype`` of Content-Type in lower case, without parameters (``"application/sdp"``)."""
        value = self.content_type
        return None if value is None else value.split(";", 1)[0].strip().lower()

    def validate(self) -> None:
        """Check the mandatory headers and the syntax of those this stack relies on."""
        mandatory = self.MANDATORY
        missing = [name for name in mandatory if name not in self.headers]
        if missing:
            raise ProtocolError(f"{self._kind()} lacks the mandatory header{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)}")
        for name in _SINGLE:
            self._one(name)
        self.via
        self.from_
        self.to
        self.call_id
        self.cseq
        self.max_forwards
        self.contacts
        self.content_length

    def serialize(self) -> bytes:
        """The message as bytes, with a Content-Length that matches the body."""
        if self._raw_start is not None and self._start_key == self._key():
            start = self._raw_start
        else:
            start = self.start_line().encode("utf-8", "surrogateescape")
        fields = list(self.headers.fields)
        length = str(len(self.body))
        found = [i for i, f in enumerate(fields) if canonical(f.name) == "content-length"]
        if found:
            first = fields[found[0]]
            if not (is_number(first.value) and int(first.value) == len(self.body)):
                fields[found[0]] = Field(first.name, length)
            for i in reversed(found[1:]):
                del fields[i]
        elif self._parsed_body is None or self._parsed_body != self.body:
            fields.append(Field("Content-Length", length))
        return b"\r\n".join([start, *(f.encode() for f in fields)]) + b"\r\n\r\n" + self.body
