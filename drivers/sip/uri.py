"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) and name-addr values (RFC 3261 §20.10).

``SipUri.parse("sip:801@10.0.0.2:5062;transport=udp")`` keeps each part as written
(escapes included, so ``str()`` gives the text back); IPv6 hosts keep their
brackets (``"[2001:db8::1]"``). A ``#`` in the user part is taken as written,
though RFC 3261 wants it escaped (``%23``): phones send the ``#`` of a dialled
feature code so (baresip: ``INVITE sip:*11001*1234#@box``), and refusing that
INVITE leaves the agent at a dead phone. ``NameAddr`` is a display name, a URI
and header parameters (``tag``): the value of From, To, Contact, Route and
Record-Route. Errors are ``ProtocolError`` naming the header (``where``), the
position and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from appliance.errors import ProtocolError

from .grammar import (PASSWORD, SCHEME_RE, TOKEN, URI_HEADER, URI_PARAM, USER, WS, Params, Scanner, clip,
                      parse_params, quote, split_commas, unquote)

_TEL_NUMBER = frozenset("0123456789abcdefABCDEF*#+-.()")
_DIALLED_USER = USER | frozenset("#")  # a user part as phones send it


@dataclass(kw_only=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI; a tel URI keeps its number in ``user``, ``host`` empty."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, where: str = "URI") -> SipUri:
        match = SCHEME_RE.match(text)
        if not match:
            raise ProtocolError(f"{where}: expected a URI starting with 'sip:', 'sips:' or 'tel:' "
                                f"(no '<>', no spaces), found {clip(text)!r}")
        scheme = match.group()[:-1].lower()
        if scheme not in ("sip", "sips", "tel"):
            raise ProtocolError(f"{where}: URI scheme {match.group()[:-1]!r} is not supported "
                                f"(expected sip, sips or tel) in {clip(text)!r}")
        sc = Scanner(text, where, match.end())
        uri = cls(scheme=scheme)
        if scheme == "tel":
            uri.user = sc.take(_TEL_NUMBER, "a telephone number")
        else:
            if "@" in text:
                uri.user = sc.take_escaped(_DIALLED_USER, "a user name before '@'")
                if sc.accept(":"):
                    uri.password = sc.take_escaped(PASSWORD, "a password", minimum=0)
                sc.expect("@", "'@' after the user part")
            uri.host = sc.host()
            if sc.accept(":"):
                uri.port = sc.port()
        while sc.accept(";"):
            name_pos = sc.pos
            name = sc.take_escaped(URI_PARAM, "a URI parameter name")
            value = sc.take_escaped(URI_PARAM, f"a value for URI parameter {name!r}") if sc.accept("=") else None
            if name in uri.params:
                raise sc.error(f"no second {name!r} URI parameter", name_pos)
            uri.params[name] = value
        if scheme != "tel" and sc.accept("?"):
            while True:
                name = sc.take_escaped(URI_HEADER, "a URI header name")
                sc.expect("=", f"'=' after URI header name {name!r}")
                uri.headers[name] = sc.take_escaped(URI_HEADER, "a URI header value", minimum=0)
                if not sc.accept("&"):
                    break
        if not sc.at_end():
            raise sc.error("';' parameters, '?' headers or the end of the URI")
        return uri

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower case, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{self.params}"
        text = f"{self.scheme}:"
        if self.user is not None:
            text += self.user + ("" if self.password is None else f":{self.password}") + "@"
        text += self.host + ("" if self.port is None else f":{self.port}") + str(self.params)
        if self.headers:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.headers.items())
        return text


@dataclass
class NameAddr:
    """``"Display" <uri>;param=value``: ``display`` unescaped (None when absent), ``params`` header parameters."""

    uri: SipUri
    display: str | None = None
    params: Params = field(default_factory=Params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.params.pop("tag", None)
        else:
            self.params["tag"] = value

    @classmethod
    def parse(cls, text: str, where: str = "name-addr") -> NameAddr:
        """Either ``[display-name] <URI> *(;param)`` or a bare URI whose ``;`` parameters belong to the header."""
        sc = Scanner(text, where)
        sc.skip_ws()
        display: str | None = None
        c = sc.peek()
        if c == '"':
            display = unquote(sc.quoted_string())
            sc.skip_ws()
            sc.expect("<", "'<' after the display name")
            uri = _angle_uri(sc)
        elif c == "<":
            sc.pos += 1
            uri = _angle_uri(sc)
        else:
            start = sc.pos
            end = start
            while end < len(text) and text[end] not in WS + "<":
                end += 1
            scheme = SCHEME_RE.match(text, start)
            if scheme and scheme.end() <= end:
                uri = _bare_uri(sc)
            else:
                while True:
                    sc.take(TOKEN, "a display-name token, a quoted display name or '<'")
                    last = sc.pos
                    sc.skip_ws()
                    if sc.accept("<"):
                        break
                    if sc.at_end():
                        raise sc.error("'<' after the display name")
                display = text[start:last]
                uri = _angle_uri(sc)
        return cls(uri=uri, display=display, params=parse_params(sc))

    def __str__(self) -> str:
        display = "" if self.display is None else quote(self.display) + " "
        return f"{display}<{self.uri}>{self.params}"


def _angle_uri(sc: Scanner) -> SipUri:
    """The URI after ``<`` up to ``>``; no white space inside the brackets (RFC 3261 LAQUOT/RAQUOT)."""
    start = sc.pos
    end = sc.text.find(">", start)
    if end < 0:
        raise sc.error("'>' closing the URI", len(sc.text))
    inner = sc.text[start:end]
    if inner[:1] in tuple(WS):
        raise sc.error("the URI right after '<' (no white space)", start)
    if inner[-1:] in tuple(WS):
        raise sc.error("'>' right after the URI (no white space)", end - 1)
    uri = SipUri.parse(inner, f"{sc.where}, URI at position {start}")
    sc.pos = end + 1
    return uri


def _bare_uri(sc: Scanner) -> SipUri:
    """An addr-spec without ``<>``: it ends at ``;`` or white space and may hold no ``?``, ``,`` or ``;``."""
    start = sc.pos
    end = start
    while end < len(sc.text) and sc.text[end] not in WS + ";":
        if sc.text[end] in "?,":
            raise sc.error("'<...>' around a URI that holds '?' or ',' (RFC 3261 §20)", end)
        end += 1
    uri = SipUri.parse(sc.text[start:end], f"{sc.where}, URI at position {start}")
    sc.pos = end
    return uri


def parse_contacts(value: str, where: str = "Contact header") -> list[NameAddr] | Literal["*"]:
    """A Contact value: ``"*"`` (only alone) or one or more name-addr values."""
    items = split_commas(value, where)
    if items == ["*"]:
        return "*"
    if not items:
        raise ProtocolError(f"{where}: expected '*' or at least one address, found an empty value")
    result = []
    for n, item in enumerate(items, 1):
        if item == "*":
            raise ProtocolError(f"{where}: '*' must be the only Contact value, found it as value {n} of "
                                f"{len(items)}")
        result.append(NameAddr.parse(item, where if len(items) == 1 else f"{where}, value {n}"))
    return result
