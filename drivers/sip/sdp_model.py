"""SDP session descriptions (RFC 4566): parse, typed access, serialize.

A ``SessionDescription`` keeps its session-level lines and each ``Media`` its own
lines (c, b, k, a and any other) as ``(type, value)`` pairs in order, unknown
ones included, so ``serialize()`` of well-formed input gives it back exactly.
Typed access (origin, connection, rtpmap, fmtp, ptime, direction) reads those
lines. Import from ``drivers.sip.sdp``, which adds offer/answer (RFC 3264).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import ProtocolError

from .grammar import clip, is_number

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
HOLD_ADDRESSES = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>``."""

    username: str
    session_id: int
    session_version: int
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, value: str, where: str = "SDP o= line") -> Origin:
        parts = value.split(" ")
        if len(parts) != 6 or not is_number(parts[1]) or not is_number(parts[2]) or not all(parts):
            raise ProtocolError(f"{where}: expected '<username> <sess-id> <sess-version> IN IP4 <address>' "
                                f"with numeric id and version, found {clip(value)!r}")
        return cls(parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4], parts[5])

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} {self.nettype} {self.addrtype} "
                f"{self.address}")


@dataclass(frozen=True)
class Connection:
    """``c=IN IP4 192.0.2.1``; ``address`` as written (a multicast TTL stays attached)."""

    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, value: str, where: str = "SDP c= line") -> Connection:
        parts = value.split(" ")
        if len(parts) != 3 or not all(parts):
            raise ProtocolError(f"{where}: expected '<nettype> <addrtype> <address>' ('IN IP4 192.0.2.1'), "
                                f"found {clip(value)!r}")
        return cls(*parts)

    @classmethod
    def for_address(cls, address: str) -> Connection:
        return cls("IN", "IP6" if ":" in address else "IP4", address)

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]``."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def parse(cls, value: str, where: str = "SDP a=rtpmap") -> RtpMap:
        pt, _, rest = value.partition(" ")
        parts = rest.strip().split("/")
        if (not is_number(pt) or int(pt) > 127 or len(parts) not in (2, 3)
                or not all(is_number(p) for p in parts[1:])):
            raise ProtocolError(f"{where}: expected '<payload type 0-127> <encoding>/<clock rate>[/<channels>]', "
                                f"found {clip(value)!r}")
        return cls(int(pt), parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else None)

    def __str__(self) -> str:
        channels = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{channels}"


# RFC 3551 static payload types a peer may offer without an rtpmap.
STATIC_PAYLOADS = {pt: RtpMap(pt, name, 8000) for pt, name in
                   ((0, "PCMU"), (3, "GSM"), (4, "G723"), (8, "PCMA"), (9, "G722"), (13, "CN"), (18, "G729"))}


class Media:
    """One media description: the m= line's fields and the lines under it, as ``(type, value)``."""

    def __init__(self, media: str, port: int, proto: str, formats: list[str], *, port_count: int | None = None,
                 lines: list[tuple[str, str]] | None = None) -> None:
        self.media = media
        self.port = port
        self.port_count = port_count
        self.proto = proto
        self.formats = list(formats)
        self.lines = list(lines or [])

    @classmethod
    def parse(cls, value: str, where: str = "SDP m= line") -> Media:
        parts = value.split(" ")
        port, _, count = parts[1].partition("/") if len(parts) > 1 else ("", "", "")
        if (len(parts) < 4 or not all(parts) or not is_number(port) or int(port) > 65535
                or (count and not is_number(count))):
            raise ProtocolError(f"{where}: expected '<media> <port 0-65535>[/<count>] <proto> <format> ...', "
                                f"found {clip(value)!r}")
        return cls(parts[0], int(port), parts[2], parts[3:], port_count=int(count) if count else None)

    def m_line(self) -> str:
        count = "" if self.port_count is None else f"/{self.port_count}"
        return f"{self.media} {self.port}{count} {self.proto} {' '.join(self.formats)}"

    @property
    def connection(self) -> Connection | None:
        """This media's own c= line, or None (see ``SessionDescription.connection_for``)."""
        return next((Connection.parse(v) for t, v in self.lines if t == "c"), None)

    @property
    def attributes(self) -> list[tuple[str, str | None]]:
        """Every a= line as ``(name, value)``; a property attribute (``a=sendrecv``) has value None."""
        return _attributes(self.lines)

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:value``, or None (also for a property attribute)."""
        return next((v for n, v in self.attributes if n == name), None)

    def has_attribute(self, name: str) -> bool:
        return any(n == name for n, _ in self.attributes)

    def add_attribute(self, name: str, value: object = None) -> None:
        self.lines.append(("a", name if value is None else f"{name}:{value}"))

    @property
    def rtpmap(self) -> dict[int, RtpMap]:
        maps = (RtpMap.parse(v) for n, v in self.attributes if n == "rtpmap" and v is not None)
        return {m.payload_type: m for m in maps}

    @property
    def fmtp(self) -> dict[int, str]:
        """``a=fmtp:<pt> <parameters>`` by payload type."""
        result = {}
        for name, value in self.attributes:
            if name == "fmtp" and value:
                pt, _, params = value.partition(" ")
                if is_number(pt):
                    result[int(pt)] = params.strip()
        return result

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        try:
            return None if value is None else round(float(value))
        except (ValueError, OverflowError):  # "abc", or "inf"
            raise ProtocolError(f"SDP a=ptime: expected a number of milliseconds, found {clip(value)!r}") from None

    @property
    def direction(self) -> str | None:
        """This media's own direction attribute, or None (see ``SessionDescription.direction_of``)."""
        return next((n for n, v in self.attributes if n in DIRECTIONS and v is None), None)

    def codec(self, payload_type: int) -> RtpMap | None:
        """The rtpmap of ``payload_type``, or the static one (RFC 3551) when it has none."""
        return self.rtpmap.get(payload_type) or STATIC_PAYLOADS.get(payload_type)

    def __repr__(self) -> str:
        return f"<Media {self.m_line()!r} lines={len(self.lines)}>"


class SessionDescription:
    """An SDP body: session-level ``lines`` (v, o, s, ... in order) and ``media`` sections."""

    def __init__(self, lines: list[tuple[str, str]] | None = None, media: list[Media] | None = None,
                 eol: str = "\r\n") -> None:
        self.lines = list(lines or [])
        self.media = list(media or [])
        self.eol = eol

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body; v=0 first, o= and s= required, each line ``<letter>=<value>``."""
        text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
        eol = "\r\n" if "\r\n" in text else "\n"
        sdp = cls(eol=eol)
        current: Media | None = None
        first = True
        for number, line in enumerate(text.split(eol), 1):
            if not line:
                continue
            if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
                raise ProtocolError(f"SDP line {number}: expected '<letter>=<value>', found {clip(line)!r}")
            kind, value = line[0], line[2:]
            where = f"SDP line {number}"
            if first and line != "v=0":
                raise ProtocolError(f"{where}: expected 'v=0' first, found {clip(line)!r}")
            first = False
            if kind == "m":
                current = Media.parse(value, where)
                sdp.media.append(current)
                continue
            if kind == "c":
                Connection.parse(value, where)
            elif kind == "o" and current is None:
                Origin.parse(value, where)
            (sdp.lines if current is None else current.lines).append((kind, value))
        if first:
            raise ProtocolError("SDP: empty body, expected 'v=0' first")
        for kind, name in (("o", "origin"), ("s", "session name")):
            if sdp.value(kind) is None:
                raise ProtocolError(f"SDP: no {kind}= line ({name}); it is mandatory (RFC 4566 §5)")
        return sdp

    def serialize(self) -> bytes:
        return str(self).encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        out = [f"{kind}={value}" for kind, value in self.lines]
        for media in self.media:
            out.append(f"m={media.m_line()}")
            out.extend(f"{kind}={value}" for kind, value in media.lines)
        return self.eol.join(out) + self.eol

    def value(self, kind: str) -> str | None:
        """The value of the first session-level line of type ``kind``, or None."""
        return next((v for k, v in self.lines if k == kind), None)

    @property
    def origin(self) -> Origin:
        return Origin.parse(self.value("o") or "")

    @property
    def session_name(self) -> str | None:
        return self.value("s")

    @property
    def connection(self) -> Connection | None:
        """The session-level c= line, or None."""
        value = self.value("c")
        return None if value is None else Connection.parse(value)

    @property
    def times(self) -> list[str]:
        return [v for k, v in self.lines if k == "t"]

    @property
    def attributes(self) -> list[tuple[str, str | None]]:
        return _attributes(self.lines)

    @property
    def direction(self) -> str | None:
        """The session-level direction attribute, or None."""
        return next((n for n, v in self.attributes if n in DIRECTIONS and v is None), None)

    def connection_for(self, media: Media) -> Connection | None:
        """The media's c= line, else the session's."""
        return media.connection or self.connection

    def direction_of(self, media: Media) -> str:
        """The media's direction, else the session's, else sendrecv (RFC 4566 §6)."""
        return media.direction or self.direction or "sendrecv"

    @property
    def audio(self) -> Media | None:
        """The first audio stream that is not rejected (port 0), or None."""
        return next((m for m in self.media if m.media == "audio" and m.port != 0), None)

    @property
    def on_hold(self) -> bool:
        """True when the audio stream is sendonly or inactive, or its address is 0.0.0.0 (RFC 2543 hold)."""
        media = self.audio
        if media is None:
            return False
        connection = self.connection_for(media)
        return (self.direction_of(media) in ("sendonly", "inactive")
                or (connection is not None and connection.address in HOLD_ADDRESSES))

    def __repr__(self) -> str:
        return f"<SessionDescription {self.value('o')!r} media={[m.m_line() for m in self.media]}>"


def _attributes(lines: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    result: list[tuple[str, str | None]] = []
    for kind, value in lines:
        if kind == "a":
            name, colon, rest = value.partition(":")
            result.append((name, rest if colon else None))
    return result
