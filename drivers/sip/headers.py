"""SIP header fields (RFC 3261 §7.3, §20): the ordered header list and the typed values Via and CSeq.

``Headers`` keeps every field in order with its name as written (``v``, ``TO``)
and, for a parsed field, its exact bytes, so an untouched message serializes to
what was received. Look-ups take any spelling: full or compact name, any case
(``get("Via")`` finds ``v:`` fields). Values are unfolded (a CRLF followed by
white space counts as one space) and stripped. ``values(name)`` splits
comma-separated list headers (Via, Contact, Route, Allow, ...); use ``get_all``
for headers whose values hold commas of their own (WWW-Authenticate,
Authorization, Date).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from appliance.errors import ProtocolError

from .grammar import TOKEN, WS, Params, Scanner, clip, is_number, is_token, parse_params, split_commas

COMPACT_FORMS = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
    "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "o": "Event", "r": "Refer-To",
    "b": "Referred-By", "u": "Allow-Events", "x": "Session-Expires", "a": "Accept-Contact",
    "j": "Reject-Contact", "d": "Request-Disposition", "y": "Identity", "n": "Identity-Info",
}
_CANONICAL = {short: full.lower() for short, full in COMPACT_FORMS.items()}
_FOLD_RE = re.compile(r"[ \t]*\r\n[ \t]+")


def canonical(name: str) -> str:
    """The lower-case full name of a header: ``canonical("v") == canonical("VIA") == "via"``."""
    lower = name.lower()
    return _CANONICAL.get(lower, lower)


def unfold(text: str) -> str:
    """A raw header value with line folding replaced by one space, stripped."""
    return _FOLD_RE.sub(" ", text).strip(WS)


@dataclass(frozen=True)
class Field:
    """One header field: ``name`` as written, unfolded ``value``; ``raw`` its bytes when parsed, else None."""

    name: str
    value: str
    raw: bytes | None = field(default=None, repr=False)
    line: int | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        """``"Via header (line 7)"``: the start of an error message about this field."""
        return f"{self.name} header" + ("" if self.line is None else f" (line {self.line})")

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return f"{self.name}: {self.value}".encode("utf-8", "surrogateescape")


def _checked(name: str, value: object) -> Field:
    if not is_token(name):
        raise ProtocolError(f"header name {name!r} is not a token (RFC 3261 §25)")
    text = str(value)
    if "\r" in text or "\n" in text:
        raise ProtocolError(f"{name} header: value {clip(text)!r} holds a CR or LF")
    return Field(name, text.strip(WS))


class Headers:
    """The header fields of a message, in order, repetitions kept.

    Values given to ``set``/``add`` may be strings or typed values (``NameAddr``,
    ``Via``, ``CSeq``, ``SipUri``, ``int``): they are stored as ``str(value)``.
    """

    def __init__(self, items: Iterable[tuple[str, object]] = ()) -> None:
        self._fields: list[Field] = []
        for name, value in items:
            self.add(name, value)

    @classmethod
    def from_fields(cls, fields: Iterable[Field]) -> Headers:
        headers = cls()
        headers._fields = list(fields)
        return headers

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((f.name, f.value) for f in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(canonical(f.name) == canonical(name) for f in self._fields)

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def find(self, name: str) -> list[Field]:
        """The fields of header ``name`` (any spelling), in order."""
        key = canonical(name)
        return [f for f in self._fields if canonical(f.name) == key]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field of ``name``, or ``default``."""
        found = self.find(name)
        return found[0].value if found else default

    def get_all(self, name: str) -> list[str]:
        """The value of each field of ``name``, one per header line, unsplit."""
        return [f.value for f in self.find(name)]

    def values(self, name: str) -> list[str]:
        """Every comma-separated element of every field of ``name``, in order."""
        return [item for f in self.find(name) for item in split_commas(f.value, f.where)]

    def set(self, name: str, value: object) -> None:
        """One field ``name: value`` in place of the first field of that header; the others go."""
        new = _checked(name, value)
        key = canonical(name)
        for i, f in enumerate(self._fields):
            if canonical(f.name) == key:
                self._fields[i] = new
                self._fields[i + 1:] = [g for g in self._fields[i + 1:] if canonical(g.name) != key]
                return
        self._fields.append(new)

    def add(self, name: str, value: object, *, top: bool = False) -> None:
        """Append a field; with ``top``, put it before the first field of that header (a new Via)."""
        new = _checked(name, value)
        if top:
            key = canonical(name)
            for i, f in enumerate(self._fields):
                if canonical(f.name) == key:
                    self._fields.insert(i, new)
                    return
        self._fields.append(new)

    def remove(self, name: str) -> int:
        """Remove every field of ``name``; returns how many there were."""
        key = canonical(name)
        before = len(self._fields)
        self._fields = [f for f in self._fields if canonical(f.name) != key]
        return before - len(self._fields)

    def copy(self) -> Headers:
        return Headers.from_fields(self._fields)


@dataclass(kw_only=True)
class Via:
    """One via-parm: ``SIP/2.0/UDP host:port;branch=...``; protocol and transport in upper case."""

    host: str
    port: int | None = None
    transport: str = "UDP"
    protocol: str = "SIP/2.0"
    params: Params = field(default_factory=Params)

    @classmethod
    def parse(cls, text: str, where: str = "Via header") -> Via:
        sc = Scanner(text, where)
        sc.skip_ws()
        name = sc.take(TOKEN, "a protocol name (SIP)")
        sc.skip_ws()
        sc.expect("/", "'/' after the protocol name")
        sc.skip_ws()
        version = sc.take(TOKEN, "a protocol version (2.0)")
        sc.skip_ws()
        sc.expect("/", "'/' after the protocol version")
        sc.skip_ws()
        transport = sc.take(TOKEN, "a transport (UDP, TCP, TLS, ...)")
        if not sc.skip_ws():
            raise sc.error("white space before the sent-by host")
        host = sc.host()
        port = None
        sc.skip_ws()
        if sc.accept(":"):
            sc.skip_ws()
            port = sc.port()
        via = cls(host=host, port=port, transport=transport.upper(), protocol=f"{name}/{version}".upper(),
                  params=parse_params(sc))
        for key in ("rport", "ttl"):
            value = via.params.get(key)
            if value is not None and not (is_number(value) and len(value) <= 5 and int(value) <= 65535):
                raise ProtocolError(f"{where}: parameter {key}={value!r} is not a number 0-65535")
        return via

    @classmethod
    def parse_all(cls, value: str, where: str = "Via header") -> list[Via]:
        """Every via-parm of a Via value, in order."""
        items = split_commas(value, where)
        if not items:
            raise ProtocolError(f"{where}: expected at least one via-parm, found an empty value")
        return [cls.parse(item, where if len(items) == 1 else f"{where}, value {n}")
                for n, item in enumerate(items, 1)]

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @branch.setter
    def branch(self, value: str) -> None:
        self.params["branch"] = value

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The port in ``rport=N``; None when absent or valueless (see ``wants_rport``)."""
        value = self.params.get("rport")
        return None if value is None else int(value)

    @property
    def wants_rport(self) -> bool:
        """True when the ``rport`` parameter is present, with or without a value (RFC 3581)."""
        return "rport" in self.params

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.params}"


_CSEQ_RE = re.compile(r"(\d+)[ \t]+(\S+)")


@dataclass(frozen=True)
class CSeq:
    """``CSeq: 4711 INVITE``; the number 0 to 2**32-1."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str, where: str = "CSeq header") -> CSeq:
        match = _CSEQ_RE.fullmatch(text.strip(WS))
        if not match or not is_token(match.group(2)):
            raise ProtocolError(f"{where}: expected a sequence number and a method ('4711 INVITE'), "
                                f"found {clip(text)!r}")
        seq = parse_uint(match.group(1), where, 2**32 - 1)
        return cls(seq, match.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_uint(text: str, where: str, maximum: int) -> int:
    """A decimal number 0..``maximum`` (``1*DIGIT``), or a ProtocolError naming ``where``."""
    digits = text.strip(WS)
    if not is_number(digits):
        raise ProtocolError(f"{where}: expected a non-negative decimal number, found {clip(digits)!r}")
    if len(digits.lstrip("0")) > len(str(maximum)) or int(digits) > maximum:
        raise ProtocolError(f"{where}: {clip(digits)} is larger than the maximum {maximum}")
    return int(digits)
