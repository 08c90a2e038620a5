"""RTCP (RFC 3550 §6) for one call, sans-I/O: SR, RR, SDES and BYE packets and the periodic reporter.

`parse_compound` splits a compound datagram into packet objects (APP and the feedback
types come back as `RtcpUnknown`); each object's ``serialize()`` gives its bytes and
`build_compound` joins them. Padding is accepted on the last packet only (§6.4.1, A.2);
we do not insist on SR/RR first (RFC 5506 reduced-size RTCP).

`RtcpReporter` sends our reports: an SR while we are sending (§6.4: data sent since the
report before last), else an RR, with one report block per source heard since the last
report, then SDES CNAME. Intervals follow §6.2/§6.3.1 for a two-party call at 64 kbit/s,
where the 5 s minimum always dominates: the first report after half of it, each interval
times a uniform 0.5..1.5 from the injected random source (no timer reconsideration, hence
no 1.21828 compensation). From received reports it keeps the peer's view of our stream and
the round-trip time (§6.4.1: arrival - LSR - DLSR, in NTP middle-32-bit units). ``now`` is
monotonic seconds; ``ntp`` is the wall clock as NTP seconds (since 1900), both passed in.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from appliance.errors import ProtocolError
from drivers.sip.rtp import CLOCK_RATE, RtpReceiver, RtpSender

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
CNAME = 1
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


def ntp_timestamp(seconds: float) -> int:
    """NTP seconds since 1900 as the 64-bit fixed-point timestamp of an SR."""
    return int(round(seconds * (1 << 32))) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp64: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp (LSR, and the arrival time for the RTT)."""
    return (ntp64 >> 16) & 0xFFFFFFFF


def _header(pt: int, count: int, body_len: int) -> bytes:
    if count > 31:
        raise ProtocolError(f"RTCP packet type {pt} holds at most 31 items, got {count}")
    return struct.pack("!BBH", 0x80 | count, pt, (body_len + 4) // 4 - 1)


@dataclass(frozen=True)
class ReportBlock:
    """One reception report block (§6.4.1)."""
    ssrc: int
    fraction_lost: int  # 0..255 (x256)
    cumulative_lost: int  # 24-bit signed
    highest_seq: int  # extended highest sequence number received
    jitter: int  # timestamp units
    lsr: int = 0  # middle 32 bits of the last SR's NTP timestamp, 0 for none
    dlsr: int = 0  # delay since that SR, 1/65536 s

    def serialize(self) -> bytes:
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise ProtocolError(f"RTCP cumulative lost must fit 24 bits signed, got {self.cumulative_lost}")
        if not 0 <= self.fraction_lost <= 255:
            raise ProtocolError(f"RTCP fraction lost must be 0..255, got {self.fraction_lost}")
        return struct.pack("!IIIIII", self.ssrc, (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF),
                           self.highest_seq, self.jitter, self.lsr, self.dlsr)

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        ssrc, lost_word, high, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, lost_word >> 24, lost, high, jitter, lsr, dlsr)


def _blocks(body: bytes, offset: int, count: int, kind: str) -> tuple[list[ReportBlock], bytes]:
    if len(body) < offset + 24 * count:
        raise ProtocolError(f"RTCP {kind} with {count} report blocks needs {4 + offset + 24 * count} bytes,"
                            f" got {4 + len(body)}")
    blocks = [ReportBlock.parse(body, offset + 24 * i) for i in range(count)]
    return blocks, body[offset + 24 * count:]


@dataclass
class SenderReport:
    """SR (PT 200): sender info and report blocks; ``extension`` is the profile-specific tail."""
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP fixed point
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""

    def serialize(self) -> bytes:
        body = struct.pack("!IQIII", self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count,
                           self.octet_count) + b"".join(b.serialize() for b in self.reports) + self.extension
        return _header(SR, len(self.reports), len(body)) + body

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> SenderReport:
        if len(body) < 24:
            raise ProtocolError(f"RTCP SR needs at least 28 bytes, got {4 + len(body)}")
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
        blocks, ext = _blocks(body, 24, count, "SR")
        return cls(ssrc, ntp, rtp_ts, packets, octets, blocks, ext)


@dataclass
class ReceiverReport:
    """RR (PT 201): the reporter's SSRC and report blocks."""
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(b.serialize() for b in self.reports) + self.extension
        return _header(RR, len(self.reports), len(body)) + body

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> ReceiverReport:
        if len(body) < 4:
            raise ProtocolError(f"RTCP RR needs at least 8 bytes, got {4 + len(body)}")
        blocks, ext = _blocks(body, 4, count, "RR")
        return cls(struct.unpack_from("!I", body)[0], blocks, ext)


@dataclass
class SdesChunk:
    """The items of one source: (type, value) pairs, type 1 CNAME .. 8 PRIV."""
    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass
class SourceDescription:
    """SDES (PT 202)."""
    chunks: list[SdesChunk] = field(default_factory=list)

    def serialize(self) -> bytes:
        parts = []
        for chunk in self.chunks:
            raw = struct.pack("!I", chunk.ssrc)
            for kind, value in chunk.items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise ProtocolError(f"SDES item type must be 1..255 and at most 255 bytes, got {kind}"
                                        f" with {len(value)}")
                raw += bytes([kind, len(value)]) + bytes(value)
            raw += bytes(4 - len(raw) % 4)  # the null item, then padding to 32 bits (1..4 bytes)
            parts.append(raw)
        body = b"".join(parts)
        return _header(SDES, len(self.chunks), len(body)) + body

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> SourceDescription:
        chunks, pos = [], 0
        for _ in range(count):
            if len(body) < pos + 4:
                raise ProtocolError(f"RTCP SDES truncated: chunk {len(chunks) + 1} of {count} has no SSRC")
            chunk = SdesChunk(struct.unpack_from("!I", body, pos)[0])
            pos += 4
            while True:
                if pos >= len(body):
                    raise ProtocolError(f"RTCP SDES chunk for SSRC {chunk.ssrc:#010x} has no terminating null item")
                kind = body[pos]
                if kind == 0:
                    pos = (pos + 4) & ~3  # the null octet and the padding to the next 32-bit boundary
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise ProtocolError(f"RTCP SDES item type {kind} truncated")
                chunk.items.append((kind, body[pos + 2:pos + 2 + body[pos + 1]]))
                pos += 2 + body[pos + 1]
            chunks.append(chunk)
        return cls(chunks)


@dataclass
class Bye:
    """BYE (PT 203): the sources leaving, and an optional reason."""
    ssrcs: list[int] = field(default_factory=list)
    reason: str = ""

    def serialize(self) -> bytes:
        body = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        if self.reason:
            text = self.reason.encode("utf-8")[:255]
            body += bytes([len(text)]) + text
            body += bytes(-len(body) % 4)
        return _header(BYE, len(self.ssrcs), len(body)) + body

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> Bye:
        if len(body) < 4 * count:
            raise ProtocolError(f"RTCP BYE with {count} sources needs {4 + 4 * count} bytes, got {4 + len(body)}")
        ssrcs = list(struct.unpack_from(f"!{count}I", body))
        reason = ""
        if len(body) > 4 * count:
            n = body[4 * count]
            if 4 * count + 1 + n > len(body):
                raise ProtocolError(f"RTCP BYE reason of {n} bytes truncated")
            reason = body[4 * count + 1:4 * count + 1 + n].decode("utf-8", "replace")
        return cls(ssrcs, reason)


@dataclass
class RtcpUnknown:
    """Any other packet type (APP, feedback, XR), kept as is."""
    packet_type: int
    count: int
    body: bytes

    def serialize(self) -> bytes:
        return _header(self.packet_type, self.count, len(self.body)) + self.body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | RtcpUnknown
_PARSERS = {SR: SenderReport, RR: ReceiverReport, SDES: SourceDescription, BYE: Bye}


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Split and parse a compound RTCP datagram; ProtocolError names the first defect."""
    data = bytes(data)
    packets: list[RtcpPacket] = []
    pos = 0
    if not data:
        raise ProtocolError("RTCP datagram is empty")
    while pos < len(data):
        if len(data) - pos < 4:
            raise ProtocolError(f"RTCP packet header truncated: {len(data) - pos} bytes at offset {pos}")
        b0, pt, words = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != 2:
            raise ProtocolError(f"RTCP version {b0 >> 6} at offset {pos}, expected 2")
        end = pos + 4 * (words + 1)
        if end > len(data):
            raise ProtocolError(f"RTCP packet type {pt} at offset {pos} claims {4 * (words + 1)} bytes,"
                                f" only {len(data) - pos} left")
        body = data[pos + 4:end]
        if b0 & 0x20:
            if end != len(data):
                raise ProtocolError(f"RTCP padding on packet type {pt} at offset {pos}, allowed on the last only")
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body):
                raise ProtocolError(f"RTCP padding count {pad} invalid for a {len(body)}-byte body")
            body = body[:-pad]
        count = b0 & 0x1F
        parser = _PARSERS.get(pt)
        packets.append(parser.parse_body(count, body) if parser else RtcpUnknown(pt, count, body))
        pos = end
    return packets


def build_compound(packets: list[RtcpPacket]) -> bytes:
    return b"".join(p.serialize() for p in packets)


@dataclass(frozen=True)
class RemoteReport:
    """What a peer last reported about our stream."""
    reporter: int  # the peer's SSRC
    fraction_lost: float  # 0..1, over the peer's last interval
    cumulative_lost: int
    highest_seq: int
    jitter: float  # seconds
    rtt: float | None  # seconds; None when the peer has had no SR from us
    at: float  # our ``now`` when the report arrived


class RtcpReporter:
    """Periodic RTCP of one call and the statistics the peer's reports give back."""

    def __init__(self, ssrc: int, cname: str, sender: RtpSender | None = None, receiver: RtpReceiver | None = None,
                 *, interval: float = 5.0, rng: random.Random | None = None, now: float = 0.0,
                 clock_rate: int = CLOCK_RATE):
        self.ssrc = ssrc
        self.cname = cname
        self.sender = sender
        self.receiver = receiver
        self.interval = interval
        self.clock_rate = clock_rate
        self._rng = rng if rng is not None else random.Random()
        self._next = now + interval / 2 * (0.5 + self._rng.random())  # §6.2: the first report at half
        self._sent_counts = [0, 0]  # our packet count at the report before last, and at the last
        self._lsr: dict[int, tuple[int, float]] = {}  # peer SSRC -> (middle 32 bits of its SR, our now)
        self.peer_sr: dict[int, SenderReport] = {}
        self.remote: dict[int, RemoteReport] = {}
        self.rtt: float | None = None
        self.byes: set[int] = set()
        self.malformed = 0
        self.reports_sent = 0

    def next_deadline(self) -> float:
        return self._next

    def poll(self, now: float, ntp: float) -> bytes | None:
        """A compound report when one is due at ``now``, else None."""
        if now < self._next:
            return None
        self._next = now + self.interval * (0.5 + self._rng.random())
        return self.build(now, ntp)

    def packets(self, now: float, ntp: float) -> list[RtcpPacket]:
        """SR or RR with our report blocks, then SDES CNAME (counts as a report sent)."""
        blocks = []
        for r in (self.receiver.reports() if self.receiver else [])[:31]:
            lsr, dlsr = 0, 0
            if r.ssrc in self._lsr:
                lsr, at = self._lsr[r.ssrc]
                dlsr = max(0, min(0xFFFFFFFF, int((now - at) * 65536)))
            blocks.append(ReportBlock(r.ssrc, r.fraction_lost, r.cumulative_lost, r.extended_max_seq, r.jitter,
                                      lsr, dlsr))
        count = self.sender.packet_count if self.sender else 0
        if self.sender is not None and count != self._sent_counts[0]:
            first: RtcpPacket = SenderReport(self.ssrc, ntp_timestamp(ntp), self.sender.rtp_time(now, self.clock_rate),
                                             count, self.sender.octet_count, blocks)
        else:
            first = ReceiverReport(self.ssrc, blocks)
        self._sent_counts = [self._sent_counts[1], count]
        self.reports_sent += 1
        return [first, SourceDescription([SdesChunk(self.ssrc, [(CNAME, self.cname.encode("utf-8"))])])]

    def build(self, now: float, ntp: float) -> bytes:
        return build_compound(self.packets(now, ntp))

    def bye(self, now: float, ntp: float, reason: str = "") -> bytes:
        """The last compound of the call: report, CNAME and BYE."""
        return build_compound(self.packets(now, ntp) + [Bye([self.ssrc], reason)])

    def receive(self, data: bytes, now: float, ntp: float) -> list[RtcpPacket]:
        """A compound from the peer arrived at ``now`` (wall clock ``ntp``); [] and counted when malformed."""
        try:
            packets = parse_compound(data)
        except ProtocolError:
            self.malformed += 1
            return []
        arrival = ntp_middle(ntp_timestamp(ntp))
        for p in packets:
            if isinstance(p, SenderReport):
                self._lsr[p.ssrc] = (ntp_middle(p.ntp_timestamp), now)
                self.peer_sr[p.ssrc] = p
            if isinstance(p, (SenderReport, ReceiverReport)):
                for b in p.reports:
                    if b.ssrc == self.ssrc:
                        self.remote[p.ssrc] = self._remote(p.ssrc, b, arrival, now)
            elif isinstance(p, Bye):
                for s in p.ssrcs:
                    self.byes.add(s)
                    self._lsr.pop(s, None)
                    if self.receiver is not None:
                        self.receiver.forget(s)
        return packets

    def _remote(self, reporter: int, b: ReportBlock, arrival: int, now: float) -> RemoteReport:
        rtt = None
        if b.lsr:
            delay = (arrival - b.lsr - b.dlsr) & 0xFFFFFFFF
            if delay < 1 << 31:  # a negative delay means clocks or the peer are off: no estimate
                rtt = self.rtt = delay / 65536
        return RemoteReport(reporter, b.fraction_lost / 256, b.cumulative_lost, b.highest_seq,
                            b.jitter / self.clock_rate, rtt, now)
