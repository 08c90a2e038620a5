"""RFC 4733 telephone-events: DTMF digits and hook flash as RTP packets, sent and received.

Payload (RFC 4733 §2.3): event (8 bits), E (end), R (reserved), volume (6 bits, -dBm0),
duration (16 bits, timestamp units). Events 0-9 are the digits, 10 ``*``, 11 ``#``, 12-15
``A``-``D``, 16 hook flash (``"flash"``); receivers ignore (and count) any other event.

`TelephoneEventSender` shares the call's `RtpSender` (same SSRC, sequence numbers and
clock): a key press replaces the audio of its ticks; every packet of the event carries the
timestamp of the tick it started in, the duration grows by one frame (160) per 20 ms
tick, the first packet has the marker bit, and the final packet (E bit) goes out three
times, one tick apart (§2.5.1.4). Audio resumes after that, with the marker bit.

`TelephoneEventReceiver` reports each key press once, as ``EventDigit(digit, duration_ms)``
when it ends: at its first end packet, when a packet of a newer event arrives, or
``timeout`` seconds after its last packet (every end packet lost). Events are told apart
by (SSRC, timestamp), so a repeated digit is a new press and retransmitted end packets
are not; packets of an event already reported are counted as ``duplicates``. Multi-event
packets and long-event segments (§2.5.1.3, presses over 8 s) are not supported.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from appliance.errors import ProtocolError
from drivers.sip.rtp import CLOCK_RATE, RtpPacket, RtpSender, signed32

TELEPHONE_EVENT_PT = 101  # the usual dynamic payload type; the SDP decides
FLASH = 16
DIGITS = "0123456789*#ABCD"
DEFAULT_VOLUME = 10  # -10 dBm0
END_REPEATS = 3


def event_code(digit: str | int) -> int:
    """The event number of ``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``, ``"flash"``, or an int 0..255."""
    if isinstance(digit, int) and not isinstance(digit, bool):
        if 0 <= digit <= 255:
            return digit
    elif isinstance(digit, str):
        if digit.lower() == "flash":
            return FLASH
        if len(digit) == 1 and digit.upper() in DIGITS:
            return DIGITS.index(digit.upper())
    raise ProtocolError(f"telephone-event digit must be one of {DIGITS!r}, 'flash' or 0..255, got {digit!r}")


class TelephoneEvent(NamedTuple):
    """One decoded event payload."""
    event: int
    end: bool
    volume: int  # 0..63, power in -dBm0
    duration: int  # timestamp units

    @property
    def digit(self) -> str | None:
        """``"0"``..``"D"`` or ``"flash"``; None for an event we do not handle."""
        if self.event < len(DIGITS):
            return DIGITS[self.event]
        return "flash" if self.event == FLASH else None


class EventDigit(NamedTuple):
    """A key press as the receiver reports it."""
    digit: str
    duration_ms: int


def encode_event(digit: str | int, end: bool = False, volume: int = DEFAULT_VOLUME, duration: int = 0) -> bytes:
    """The 4-byte payload of one event report (R bit zero)."""
    code = event_code(digit)
    if not isinstance(volume, int) or not 0 <= volume <= 63:
        raise ProtocolError(f"telephone-event volume must be 0..63 (-dBm0), got {volume!r}")
    if not isinstance(duration, int) or not 0 <= duration <= 0xFFFF:
        raise ProtocolError(f"telephone-event duration must be 0..65535 timestamp units, got {duration!r}")
    return struct.pack("!BBH", code, (0x80 if end else 0) | volume, duration)


def decode_event(payload: bytes) -> TelephoneEvent:
    """Decode a 4-byte event payload; the R bit is ignored, as §2.3.3 asks."""
    if len(payload) != 4:
        raise ProtocolError(f"telephone-event payload must be 4 bytes, got {len(payload)}")
    code, flags, duration = struct.unpack("!BBH", bytes(payload))
    return TelephoneEvent(code, bool(flags & 0x80), flags & 0x3F, duration)


class TelephoneEventSender:
    """Our outgoing key presses and audio, one `tick` per 20 ms, through the call's `RtpSender`."""

    def __init__(self, rtp: RtpSender, payload_type: int = TELEPHONE_EVENT_PT, volume: int = DEFAULT_VOLUME):
        if not isinstance(payload_type, int) or not 96 <= payload_type <= 127:
            raise ProtocolError(f"telephone-event payload type must be dynamic (96..127), got {payload_type!r}")
        encode_event(0, volume=volume)  # validates the volume
        self.rtp = rtp
        self.payload_type = payload_type
        self.volume = volume
        self._queue: list[tuple[int, int]] = []  # (event code, frames)
        self._plan: list[tuple[int, bool, bool]] = []  # (duration, end, marker) per tick still to send
        self._code = 0
        self._timestamp = 0

    def press(self, digit: str | int, duration_ms: int = 100) -> None:
        """Queue a key press of ``duration_ms`` (rounded up to 20 ms ticks); it starts at the next free tick."""
        code = event_code(digit)
        if not isinstance(duration_ms, int) or not 0 < duration_ms <= 8000:
            raise ProtocolError(f"key press duration must be 1..8000 ms, got {duration_ms!r}")
        frames = -(-duration_ms * CLOCK_RATE // 1000 // self.rtp.samples_per_frame)
        self._queue.append((code, max(1, frames)))

    @property
    def busy(self) -> bool:
        """An event is being sent or queued: `tick` will not send audio."""
        return bool(self._plan or self._queue)

    def tick(self, frame: np.ndarray | bytes | None, now: float | None = None) -> list[RtpPacket]:
        """This tick's packets: the event's when a press is on, else the audio ``frame`` (None: silence)."""
        if not self._plan and self._queue:
            self._start(*self._queue.pop(0))
        if not self._plan:
            if frame is None:
                self.rtp.skip()
                return []
            return [self.rtp.frame(frame, now)]
        duration, end, marker = self._plan.pop(0)
        volume = 0 if self._code == FLASH else self.volume
        payload = encode_event(self._code, end, volume, duration)
        pkt = self.rtp.packet_at(payload, self._timestamp, self.payload_type, marker)
        self.rtp.skip()  # the audio clock runs on; audio resumes with the marker bit
        return [pkt]

    def _start(self, code: int, frames: int) -> None:
        step = self.rtp.samples_per_frame
        self._code, self._timestamp = code, self.rtp.timestamp
        self._plan = [(step * (i + 1), False, i == 0) for i in range(frames - 1)]
        self._plan += [(step * frames, True, frames == 1 and r == 0) for r in range(END_REPEATS)]


class _Current:
    __slots__ = ("ssrc", "timestamp", "event", "duration", "last")

    def __init__(self, ssrc: int, timestamp: int, event: int, duration: int, last: float):
        self.ssrc, self.timestamp, self.event, self.duration, self.last = ssrc, timestamp, event, duration, last


class TelephoneEventReceiver:
    """Incoming RFC 4733 packets to key presses, each reported once; never raises on bad packets."""

    def __init__(self, payload_type: int = TELEPHONE_EVENT_PT, clock_rate: int = CLOCK_RATE, timeout: float = 0.5):
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.timeout = timeout
        self._cur: _Current | None = None
        self._done: OrderedDict[tuple[int, int], None] = OrderedDict()
        self.malformed = 0  # payload not 4 bytes
        self.ignored = 0  # events other than 0-16
        self.duplicates = 0  # packets of an event already reported
        self.late = 0  # packets of an event older than the current one, never seen before
        self.digits = 0

    def receive(self, packet: RtpPacket, now: float) -> list[EventDigit]:
        """One RTP packet of the telephone-event payload type arrived at ``now`` (s)."""
        if packet.payload_type != self.payload_type:
            return []
        try:
            ev = decode_event(packet.payload)
        except ProtocolError:
            self.malformed += 1
            return []
        if ev.digit is None:
            self.ignored += 1
            return []
        key = (packet.ssrc, packet.timestamp)
        if key in self._done:
            self.duplicates += 1
            return []
        out: list[EventDigit] = []
        cur = self._cur
        if cur is not None and (cur.ssrc, cur.timestamp) == key:
            cur.duration = max(cur.duration, ev.duration)
            cur.last = now
        else:
            if cur is not None:
                if cur.ssrc == packet.ssrc and signed32(packet.timestamp - cur.timestamp) < 0:
                    self.late += 1
                    return []
                out.append(self._finish())
            cur = self._cur = _Current(packet.ssrc, packet.timestamp, ev.event, ev.duration, now)
        if ev.end:
            out.append(self._finish())
        return out

    def poll(self, now: float) -> list[EventDigit]:
        """Ends a press whose end packets were all lost, ``timeout`` s after its last packet."""
        if self._cur is not None and now - self._cur.last >= self.timeout:
            return [self._finish()]
        return []

    def next_deadline(self) -> float | None:
        return None if self._cur is None else self._cur.last + self.timeout

    def _finish(self) -> EventDigit:
        cur, self._cur = self._cur, None
        self._done[(cur.ssrc, cur.timestamp)] = None
        if len(self._done) > 32:
            self._done.popitem(last=False)
        self.digits += 1
        digit = TelephoneEvent(cur.event, True, 0, cur.duration).digit
        return EventDigit(digit, round(cur.duration * 1000 / self.clock_rate))
