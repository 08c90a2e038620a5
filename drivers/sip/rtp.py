"""RTP (RFC 3550) for G.711 calls, sans-I/O: the packet format, a sender and a receiver with statistics.

`RtpPacket` parses and serializes the fixed header, the CSRC list, the header extension
and padding. `RtpSender` turns the box's 20 ms A-law frames into packets (PCMU when the
call negotiated payload type 0) and keeps the counts an RTCP sender report needs.
`RtpReceiver` validates each source as RFC 3550 appendix A.1 says and keeps, per SSRC, the
reception statistics of A.3 (loss) and A.8 (interarrival jitter) for RTCP receiver reports.
No clock is read: arrival times come in as ``now`` (seconds, monotonic).

Where we depart from the appendix on purpose:

- Probation packets are held, not thrown away: when the second packet in sequence
  validates a new source, both are delivered and both counted (base = the first one).
  The same holds after a big sequence jump: the packet that caused it is held and
  delivered with the next one if that confirms the restart.
- The jitter estimate skips packets carrying the same timestamp as the previous one
  (RFC 4733 event updates sample one instant, their spread in arrival is not jitter), and
  starts afresh after a restart.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from appliance.errors import ProtocolError
from dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

PCMU, PCMA = 0, 8  # RFC 3551 static payload types, 8000 Hz
CLOCK_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz, one byte per sample in G.711

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000  # A.1: a forward jump up to this many is a gap, not a restart
MAX_MISORDER = 100  # A.1: this far behind is a late packet, not a restart
MIN_SEQUENTIAL = 2  # A.1: packets in sequence before a new source is valid

_CODES = np.arange(256, dtype=np.uint8)
ULAW_TO_ALAW = alaw_encode(ulaw_decode(_CODES))  # 256-entry transcoding tables, uint8 -> uint8
ALAW_TO_ULAW = ulaw_encode(alaw_decode(_CODES))
ULAW_TO_ALAW.flags.writeable = False
ALAW_TO_ULAW.flags.writeable = False


def signed32(x: int) -> int:
    """A 32-bit difference (mod 2**32) as a signed value in [-2**31, 2**31)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _check_range(name: str, value: int, top: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= top:
        raise ProtocolError(f"RTP {name} must be an integer 0..{top}, got {value!r}")


@dataclass
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1); the version is always 2.

    ``padding`` is the number of padding octets (0: P bit clear; the last one holds the
    count, the others serialize as zeros). ``extension_profile`` is None without a header
    extension (X bit clear); ``extension_data`` is its body, a multiple of 4 bytes.
    """
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension_data: bytes = b""
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; ProtocolError names what is wrong with a malformed one."""
        data = bytes(data)
        n = len(data)
        if n < 12:
            raise ProtocolError(f"RTP packet too short: {n} bytes, the fixed header needs 12")
        b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        if b0 >> 6 != 2:
            raise ProtocolError(f"RTP version {b0 >> 6}, expected 2")
        cc = b0 & 0x0F
        pos = 12 + 4 * cc
        if n < pos:
            raise ProtocolError(f"RTP packet truncated in the CSRC list: {cc} CSRCs need {pos} bytes, got {n}")
        csrc = struct.unpack_from(f"!{cc}I", data, 12)
        profile, ext = None, b""
        if b0 & 0x10:
            if n < pos + 4:
                raise ProtocolError(f"RTP packet truncated in the extension header: need {pos + 4} bytes, got {n}")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if n < pos + 4 * words:
                raise ProtocolError(f"RTP header extension of {words} words needs {pos + 4 * words} bytes, got {n}")
            ext = data[pos:pos + 4 * words]
            pos += 4 * words
        pad = 0
        if b0 & 0x20:
            pad = data[-1]
            if pad == 0 or pos + pad > n:
                raise ProtocolError(f"RTP padding count {pad} is invalid with {n - pos} bytes after the header")
        return cls(b1 & 0x7F, seq, ts, ssrc, data[pos:n - pad], bool(b1 & 0x80), csrc, profile, ext, pad)

    def serialize(self) -> bytes:
        """The packet as bytes on the wire; ProtocolError for a field out of range."""
        _check_range("payload type", self.payload_type, 127)
        _check_range("sequence number", self.sequence_number, 0xFFFF)
        _check_range("timestamp", self.timestamp, 0xFFFFFFFF)
        _check_range("SSRC", self.ssrc, 0xFFFFFFFF)
        _check_range("padding", self.padding, 255)
        if len(self.csrc) > 15:
            raise ProtocolError(f"RTP CSRC list holds at most 15 entries, got {len(self.csrc)}")
        for c in self.csrc:
            _check_range("CSRC", c, 0xFFFFFFFF)
        b0 = 0x80 | len(self.csrc) | (0x20 if self.padding else 0)
        parts = [struct.pack("!BBHII", b0 | (0x10 if self.extension_profile is not None else 0),
                             (0x80 if self.marker else 0) | self.payload_type,
                             self.sequence_number, self.timestamp, self.ssrc),
                 struct.pack(f"!{len(self.csrc)}I", *self.csrc)]
        if self.extension_profile is not None:
            _check_range("extension profile", self.extension_profile, 0xFFFF)
            if len(self.extension_data) % 4 or len(self.extension_data) > 4 * 0xFFFF:
                raise ProtocolError(f"RTP header extension must be a multiple of 4 bytes up to {4 * 0xFFFF},"
                                    f" got {len(self.extension_data)}")
            parts += [struct.pack("!HH", self.extension_profile, len(self.extension_data) // 4),
                      bytes(self.extension_data)]
        parts.append(bytes(self.payload))
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


class RtpSender:
    """Our outgoing stream: one packet per 20 ms tick, in one SSRC and sequence space.

    Frames given to `frame` are the box's A-law (160 uint8 samples); with payload type 0
    (PCMU) they are transcoded, any other type is sent as given. The first packet, and the
    first after `skip` (silence or an RFC 4733 event), has the marker bit. The timestamp
    advances ``samples_per_frame`` per tick, sent or skipped. ``packet_count`` and
    ``octet_count`` (payload octets) are the SR sender-info counts.
    """

    def __init__(self, ssrc: int, payload_type: int = PCMA, initial_seq: int = 0, initial_ts: int = 0,
                 samples_per_frame: int = FRAME_SAMPLES):
        _check_range("SSRC", ssrc, 0xFFFFFFFF)
        _check_range("payload type", payload_type, 127)
        _check_range("sequence number", initial_seq, 0xFFFF)
        _check_range("timestamp", initial_ts, 0xFFFFFFFF)
        if not isinstance(samples_per_frame, int) or samples_per_frame <= 0:
            raise ProtocolError(f"samples_per_frame must be a positive integer, got {samples_per_frame!r}")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.seq = initial_seq  # of the next packet
        self.timestamp = initial_ts  # of the next frame
        self.samples_per_frame = samples_per_frame
        self.packet_count = 0
        self.octet_count = 0
        self.reference: tuple[float, int] | None = None  # (now, timestamp) of the last frame sent with a time
        self._marker = True

    def frame(self, payload: bytes | np.ndarray, now: float | None = None) -> RtpPacket:
        """The packet for this tick's frame; ``now`` (s) ties the timestamp to time for RTCP."""
        if isinstance(payload, np.ndarray):
            if self.payload_type == PCMU:
                payload = ALAW_TO_ULAW[payload.astype(np.uint8, copy=False)]
            payload = payload.astype(np.uint8, copy=False).tobytes()
        elif self.payload_type == PCMU:
            payload = ALAW_TO_ULAW[np.frombuffer(payload, np.uint8)].tobytes()
        if now is not None:
            self.reference = (now, self.timestamp)
        pkt = self.packet_at(payload, self.timestamp, self.payload_type, self._marker)
        self._marker = False
        self.timestamp = (self.timestamp + self.samples_per_frame) & 0xFFFFFFFF
        return pkt

    def skip(self, frames: int = 1) -> None:
        """Ticks with nothing sent: the clock runs on and the next frame starts a talkspurt."""
        self.timestamp = (self.timestamp + frames * self.samples_per_frame) & 0xFFFFFFFF
        self._marker = True

    def packet_at(self, payload: bytes, timestamp: int, payload_type: int, marker: bool = False) -> RtpPacket:
        """A packet in our SSRC and sequence space at a given timestamp (RFC 4733 events); counted."""
        pkt = RtpPacket(payload_type, self.seq, timestamp, self.ssrc, bytes(payload), marker)
        self.seq = (self.seq + 1) & 0xFFFF
        self.packet_count = (self.packet_count + 1) & 0xFFFFFFFF
        self.octet_count = (self.octet_count + len(pkt.payload)) & 0xFFFFFFFF
        return pkt

    def rtp_time(self, now: float, clock_rate: int = CLOCK_RATE) -> int:
        """The RTP timestamp of the instant ``now`` (for an SR); the next frame's without a reference."""
        if self.reference is None:
            return self.timestamp
        t0, ts0 = self.reference
        return (ts0 + round((now - t0) * clock_rate)) & 0xFFFFFFFF


@dataclass(frozen=True)
class ReceptionReport:
    """What an RTCP report block says about one source (RFC 3550 §6.4.1), without LSR/DLSR."""
    ssrc: int
    fraction_lost: int  # 0..255, lost / expected since the last report, x256
    cumulative_lost: int  # clamped to the 24-bit signed field; negative with duplicates
    extended_max_seq: int  # cycles << 16 | highest sequence number
    jitter: int  # timestamp units


class RtpSource:
    """Reception state of one SSRC: A.1 validation, A.3 loss and A.8 jitter."""

    def __init__(self, ssrc: int, clock_rate: int = CLOCK_RATE):
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.probation = MIN_SEQUENTIAL
        self.max_seq = 0
        self.cycles = 0  # count of sequence wraps, shifted: a multiple of 65536
        self.base_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1  # never equal to a sequence number
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter_estimate = 0.0  # timestamp units, as a float
        self.discarded = 0  # packets dropped by probation or as a suspected restart
        self.restarts = 0
        self.last_heard: float | None = None
        self._held: list[tuple[RtpPacket, float]] = []
        self._last: tuple[float, int] | None = None  # (arrival in timestamp units, timestamp)

    @property
    def valid(self) -> bool:
        return self.probation == 0

    @property
    def extended_max_seq(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max_seq - self.base_seq + 1 if self.valid else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3): negative when duplicates outnumber losses."""
        return self.expected - self.received

    @property
    def jitter(self) -> int:
        return int(self.jitter_estimate)

    def update(self, pkt: RtpPacket, now: float) -> list[RtpPacket]:
        """Account one packet arriving at ``now`` (s); returns the packets to deliver, in order."""
        self.last_heard = now
        seq = pkt.sequence_number
        if self.probation:
            if self._held and seq == (self.max_seq + 1) & 0xFFFF:
                self._held.append((pkt, now))
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    return self._start(seq)
            else:
                self.discarded += len(self._held)
                self._held = [(pkt, now)]
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return []
        udelta = (seq - self.max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:  # in order, maybe with a gap
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:  # a big jump: restarted source, or a stray
            if seq == self.bad_seq:
                self._held = [h for h in self._held if h[0].sequence_number == (seq - 1) & 0xFFFF]
                self._held.append((pkt, now))
                self.restarts += 1
                return self._start(seq)
            self.discarded += len(self._held)
            self._held = [(pkt, now)]
            self.bad_seq = (seq + 1) & 0xFFFF
            return []
        # else: a duplicate or a reordered packet, counted and delivered
        self.received += 1
        self._update_jitter(pkt, now)
        return [pkt]

    def _start(self, seq: int) -> list[RtpPacket]:
        held, self._held = self._held, []
        self.base_seq = held[0][0].sequence_number
        self.max_seq = seq
        self.cycles = 0
        if self.base_seq > seq:  # the held packets straddle a wrap
            self.cycles = RTP_SEQ_MOD
        self.bad_seq = RTP_SEQ_MOD + 1
        self.received = len(held)
        self.expected_prior = self.received_prior = 0
        self._last = None
        for p, t in held:
            self._update_jitter(p, t)
        return [p for p, _ in held]

    def _update_jitter(self, pkt: RtpPacket, now: float) -> None:
        arrival = now * self.clock_rate
        last, self._last = self._last, (arrival, pkt.timestamp)
        if last is None:
            return
        if pkt.timestamp == last[1]:
            self._last = last  # same sampling instant: keep the first arrival as the reference
            return
        d = (arrival - last[0]) - signed32(pkt.timestamp - last[1])
        self.jitter_estimate += (abs(d) - self.jitter_estimate) / 16

    @property
    def heard_since_report(self) -> bool:
        return self.valid and self.received != self.received_prior

    def report(self) -> ReceptionReport:
        """The report block values now; starts a new interval for the fraction lost."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lost = max(-0x800000, min(0x7FFFFF, self.lost))
        return ReceptionReport(self.ssrc, fraction, lost, self.extended_max_seq & 0xFFFFFFFF, self.jitter)


class RtpReceiver:
    """Incoming RTP of one call: parses, validates each SSRC, delivers good packets, keeps stats.

    Never raises on what the network sends: unparsable packets and RTCP that arrived on the
    RTP port count in ``malformed``. At most ``max_sources`` SSRCs are tracked; a new one
    beyond that replaces the one heard least recently.
    """

    def __init__(self, clock_rate: int = CLOCK_RATE, max_sources: int = 4):
        self.clock_rate = clock_rate
        self.max_sources = max_sources
        self.sources: dict[int, RtpSource] = {}
        self.malformed = 0
        self.evicted = 0

    def receive(self, data: bytes | RtpPacket, now: float) -> list[RtpPacket]:
        """One datagram arrived at ``now`` (s): the packets now valid for playout (0, 1 or more)."""
        if isinstance(data, RtpPacket):
            pkt = data
        else:
            try:
                pkt = RtpPacket.parse(data)
            except ProtocolError:
                self.malformed += 1
                return []
        if 72 <= pkt.payload_type <= 76:  # RTCP SR..APP when multiplexed (RFC 5761)
            self.malformed += 1
            return []
        src = self.sources.get(pkt.ssrc)
        if src is None:
            if len(self.sources) >= self.max_sources:
                oldest = min(self.sources.values(), key=lambda s: s.last_heard)
                del self.sources[oldest.ssrc]
                self.evicted += 1
            src = self.sources[pkt.ssrc] = RtpSource(pkt.ssrc, self.clock_rate)
        return src.update(pkt, now)

    def forget(self, ssrc: int) -> None:
        """Drop a source (it sent an RTCP BYE)."""
        self.sources.pop(ssrc, None)

    def reports(self) -> list[ReceptionReport]:
        """Report values for every valid source heard since the last call, and a new interval."""
        return [s.report() for s in self.sources.values() if s.heard_since_report]
