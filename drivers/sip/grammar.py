"""RFC 3261 §25 grammar pieces the URI, header and message parsers share.

Character sets, a ``Scanner`` whose errors name the place, the position and what
was expected, comma splitting that respects quoted strings and ``<...>``, quoted
strings with their backslash escapes, and ``Params``: a parameter list with
case-insensitive names that keeps the spelling and order it was given in.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Iterable, Iterator, Mapping, MutableMapping

from appliance.errors import ProtocolError

ALPHANUM = frozenset(string.ascii_letters + string.digits)
DIGITS = frozenset(string.digits)
HEX = frozenset(string.hexdigits)
TOKEN = ALPHANUM | frozenset("-.!%*_+`'~")
UNRESERVED = ALPHANUM | frozenset("-_.!~*'()")
USER = UNRESERVED | frozenset("&=+$,;?/")
PASSWORD = UNRESERVED | frozenset("&=+$,")
URI_PARAM = UNRESERVED | frozenset("[]/:&+$")
URI_HEADER = UNRESERVED | frozenset("[]/?:+$")
HOSTNAME = ALPHANUM | frozenset("-._")
GEN_VALUE = TOKEN | frozenset("[]:")  # token / host / IPv6 reference
WS = " \t"
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)


def clip(text: str, limit: int = 160) -> str:
    """``text`` cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


def is_token(text: str) -> bool:
    return bool(text) and all(c in TOKEN for c in text)


def quote(text: str) -> str:
    """``text`` as a quoted-string: backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(quoted: str) -> str:
    """The content of a quoted-string (with its quotes) with each quoted-pair resolved."""
    return _UNESCAPE_RE.sub(r"\1", quoted[1:-1])


class Scanner:
    """A cursor over ``text``; ``where`` (e.g. ``"To header (line 3)"``) starts every error."""

    __slots__ = ("text", "pos", "where")

    def __init__(self, text: str, where: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos
        self.where = where

    def error(self, expected: str, pos: int | None = None) -> ProtocolError:
        pos = self.pos if pos is None else pos
        found = repr(self.text[pos]) if pos < len(self.text) else "the end"
        return ProtocolError(f"{self.where}: at position {pos} expected {expected}, found {found}, "
                             f"in {clip(self.text)!r}")

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in WS:
            self.pos += 1
        return self.pos > start

    def accept(self, char: str) -> bool:
        if self.peek() == char:
            self.pos += 1
            return True
        return False

    def expect(self, char: str, expected: str) -> None:
        if not self.accept(char):
            raise self.error(expected)

    def take(self, allowed: frozenset[str], expected: str) -> str:
        """One or more characters from ``allowed``."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        if self.pos == start:
            raise self.error(expected)
        return self.text[start:self.pos]

    def take_escaped(self, allowed: frozenset[str], expected: str, minimum: int = 1) -> str:
        """Characters from ``allowed`` or ``%`` HEX HEX escapes, as written."""
        start = self.pos
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c == "%":
                if not (self.pos + 2 < len(text) and text[self.pos + 1] in HEX and text[self.pos + 2] in HEX):
                    raise self.error("two hex digits after '%'", self.pos + 1)
                self.pos += 3
            elif c in allowed:
                self.pos += 1
            else:
                break
        if self.pos - start < minimum:
            raise self.error(expected)
        return text[start:self.pos]

    def quoted_string(self) -> str:
        """A quoted-string at the cursor, returned with its quotes and escapes as written."""
        start = self.pos
        if self.peek() != '"':
            raise self.error("'\"' opening a quoted string")
        i = start + 1
        text = self.text
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
            elif c == '"':
                self.pos = i + 1
                return text[start:self.pos]
            else:
                i += 1
        raise self.error(f"'\"' closing the quoted string opened at position {start}", len(text))

    def host(self) -> str:
        """A host: hostname, IPv4 address or IPv6 reference (kept with its brackets)."""
        if self.peek() == "[":
            start = self.pos
            end = self.text.find("]", start)
            if end < 0:
                raise self.error("']' closing the IPv6 address", len(self.text))
            try:
                ipaddress.IPv6Address(self.text[start + 1:end])
            except ValueError:
                raise self.error("an IPv6 address inside '[...]'", start + 1) from None
            self.pos = end + 1
            return self.text[start:self.pos]
        return self.take(HOSTNAME, "a host name or IPv4 address")

    def port(self) -> int:
        start = self.pos
        digits = self.take(DIGITS, "a port number")
        if len(digits) > 5 or int(digits) > 65535:
            raise self.error("a port number 0-65535", start)
        return int(digits)


def split_commas(text: str, where: str) -> list[str]:
    """Elements of a comma-separated header value; commas in quotes and ``<...>`` do not split.

    An empty value gives ``[]``; an empty element in a non-empty list raises.
    """
    parts: list[str] = []
    start = i = 0
    angle = False
    while i < len(text):
        c = text[i]
        if c == '"':
            scanner = Scanner(text, where, i)
            scanner.quoted_string()
            i = scanner.pos
            continue
        if c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    items = [p.strip(WS) for p in parts]
    if items == [""]:
        return []
    for n, item in enumerate(items):
        if not item:
            raise ProtocolError(f"{where}: element {n + 1} of the comma-separated list is empty "
                                f"in {clip(text)!r}")
    return items


class Params(MutableMapping[str, "str | None"]):
    """Parameters in order; names compare case-insensitively and keep their first spelling.

    A valueless parameter (``;lr``) has the value None. Values are kept as written,
    quoted strings with their quotes.
    """

    def __init__(self, items: Mapping[str, str | None] | Iterable[tuple[str, str | None]] = ()) -> None:
        self._items: dict[str, tuple[str, str | None]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self[name] = value

    def __getitem__(self, name: str) -> str | None:
        return self._items[name.lower()][1]

    def __setitem__(self, name: str, value: str | None) -> None:
        old = self._items.get(name.lower())
        self._items[name.lower()] = (old[0] if old else name, value)

    def __delitem__(self, name: str) -> None:
        del self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return {k: v for k, (_, v) in self._items.items()} == {k: v for k, (_, v) in other._items.items()}

    def __str__(self) -> str:
        return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self._items.values())

    def __repr__(self) -> str:
        return f"Params({dict(self.items())!r})"

    def copy(self) -> Params:
        return Params(self.items())


def parse_params(scanner: Scanner, stop: str = "") -> Params:
    """``*( SEMI generic-param )`` with optional white space, up to the end or a ``stop`` character."""
    params = Params()
    while True:
        scanner.skip_ws()
        if scanner.at_end() or (stop and scanner.peek() in stop):
            return params
        scanner.expect(";", "';' or the end of the value")
        scanner.skip_ws()
        name_pos = scanner.pos
        name = scanner.take(TOKEN, "a parameter name")
        scanner.skip_ws()
        value = None
        if scanner.accept("="):
            scanner.skip_ws()
            if scanner.peek() == '"':
                value = scanner.quoted_string()
            else:
                value = scanner.take(GEN_VALUE, f"a value for parameter {name!r}")
        if name in params:
            raise scanner.error(f"no second {name!r} parameter", name_pos)
        params[name] = value


def is_number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²" and the like, which ``int`` then refuses."""
    return text.isascii() and text.isdigit()
