"""RTP and RTCP for one card port on plain non-blocking UDP sockets, driven by the 20 ms media tick.

``MediaPort`` owns an RTP socket on an even port and its RTCP socket on the next,
bound on ``host`` within ``port_range``. Each tick calls ``read(now)`` (drain the
sockets, at most 50 RTP datagrams, into the RtpReceiver, JitterBuffer and RFC 4733
receiver; returns the tick's 160 A-law samples) and ``write(frame, now)`` (one RTP
packet, a telephone-event packet instead while a digit is sent, RTCP when due).
Neither blocks nor reads a clock: RTCP's NTP time is ``wall`` (epoch seconds)
when given, else ``now + wall_offset``.

Latching (symmetric RTP, RFC 4961): after ``start`` the port takes the source of
the first valid RTP packet (RTP version 2, payload type PCMA, PCMU or the
negotiated event type) as the peer, ignores every other source (``foreign``) and
sends to it: a phone behind NAT sends from, and listens on, another port or
address than its SDP says. A packet from the SDP's address itself always wins.
``latch=False`` accepts the SDP's address only. RTCP latches alike to a source
on the peer's address; until then it goes to the RTP destination's port + 1.

Direction is ours, as in ``sdp.Negotiated`` (RFC 3264): we send in sendrecv/sendonly
(not to 0.0.0.0 or port 0), play what arrives in sendrecv/recvonly, else ``read``
gives A-law silence: the held side (recvonly) sends nothing, the holder may send music.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from appliance.errors import DriverError, ProtocolError

from .jitter import JitterBuffer, SILENCE_FRAME
from .rtcp import NTP_UNIX_OFFSET, RtcpReporter
from .rtp import FRAME_SAMPLES, PCMA, PCMU, RtpPacket, RtpReceiver, RtpSender
from .sdp import Negotiated
from .telephone_event import TelephoneEventReceiver, TelephoneEventSender

log = logging.getLogger(__name__)

Address = tuple[str, int]
MAX_READ = 50  # RTP datagrams drained per read (per tick)
MAX_RTCP_READ = 8
RECV_SIZE = 2048
SENDING, RECEIVING = ("sendrecv", "sendonly"), ("sendrecv", "recvonly")


@dataclass(frozen=True)
class MediaStats:
    """Counts of the current (or last) call; RTCP fields are None until the peer reported."""

    packets_in: int  # RTP datagrams accepted from the peer
    packets_out: int  # RTP packets sent (a drop hook's packets count: the "network" lost them)
    lost: int  # RFC 3550 A.3 cumulative loss of the peer's stream
    jitter_ms: float  # A.8 interarrival jitter of the peer's stream
    concealed: int  # frames the jitter buffer concealed
    late: int
    duplicates: int
    foreign: int  # datagrams from sources other than the peer's
    malformed: int
    digits_in: int
    rtcp_in: int
    rtcp_out: int
    send_errors: int
    latched: Address | None
    remote_fraction_lost: float | None  # the peer's view of our stream, from its RTCP
    remote_lost: int | None
    remote_jitter_ms: float | None
    rtt_ms: float | None


def _family(host: str) -> int:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        raise DriverError(f"RTP: host {host!r} is not an IP address") from None


@functools.lru_cache(maxsize=256)
def _norm_host(host: str) -> str:
    ip = ipaddress.ip_address(host.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _norm(addr: tuple) -> Address:
    """The canonical form of a packet's source (cached: every RTP packet asks, from a few peers)."""
    return _norm_host(addr[0]), int(addr[1])


def bind_pair(host: str, port_range: tuple[int, int] = (10000, 20000), first: int | None = None
              ) -> tuple[socket.socket, socket.socket]:
    """Non-blocking UDP sockets on a free even port and the odd one above it, scanning from ``first``."""
    low, high = port_range
    evens = list(range(low + (low & 1), high, 2))  # p and p + 1 both within [low, high]
    if not (0 < low <= high <= 65535) or not evens:
        raise DriverError(f"RTP: port range {low}-{high} holds no even/odd port pair")
    start = 0 if first is None else max(0, min(len(evens), (first - evens[0] + 1) // 2)) % len(evens)
    family = _family(host)
    for port in evens[start:] + evens[:start]:
        socks = []
        try:
            for p in (port, port + 1):
                socks.append(sock := socket.socket(family, socket.SOCK_DGRAM))
                sock.setblocking(False)
                sock.bind((host, p))
            return socks[0], socks[1]
        except OSError as exc:
            for sock in socks:
                sock.close()
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise DriverError(f"RTP: cannot bind {host} port {p}: {exc.strerror or exc}") from exc
    raise DriverError(f"RTP: no free even/odd port pair on {host} in {low}-{high} ({len(evens)} pairs tried)")


class MediaPort:
    """The RTP/RTCP endpoint of one card port; ``start`` a call, ``read``/``write`` each tick, ``stop``."""

    def __init__(self, host: str = "127.0.0.1", port_range: tuple[int, int] = (10000, 20000), *,
                 first: int | None = None, wall_offset: float = 0.0, latch: bool = True, jitter_depth: int = 3,
                 rtcp_interval: float = 5.0, cname: str | None = None, rng: random.Random | None = None) -> None:
        self.host, self.wall_offset, self.latch = host, wall_offset, latch
        self.jitter_depth, self.rtcp_interval = jitter_depth, rtcp_interval
        self._rtp, self._rtcp = bind_pair(host, port_range, first)
        self._family = self._rtp.family
        self.local_port: int = self._rtp.getsockname()[1]
        self.cname = cname or f"port{self.local_port}@{host}"
        self.drop_hook: Callable[[RtpPacket], bool] | None = None  # test hook: True = "lose" this packet
        self._rng = rng or random.Random()
        self._running = self._closed = False
        self._digits: list[str] = []
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._in = self._out = self._foreign = self._malformed = self._digits_in = 0
        self._rtcp_in = self._rtcp_out = self._send_errors = self._concealed_before = 0
        self._receiver, self._jitter = RtpReceiver(), self._new_jitter()
        self._reporter: RtcpReporter | None = None
        self._latched: Address | None = None
        self._rtcp_latched: Address | None = None

    def _new_jitter(self) -> JitterBuffer:
        return JitterBuffer(depth_frames=self.jitter_depth, max_frames=max(50, self.jitter_depth + 1))

    def filenos(self) -> tuple[int, int]:
        """The RTP and RTCP sockets' descriptors, for a loop that waits on them."""
        return self._rtp.fileno(), self._rtcp.fileno()

    def start(self, negotiated: Negotiated, now: float, *, ssrc: int | None = None) -> None:
        """Start a call's media as ``negotiated`` says: fresh sender, receiver and jitter buffer."""
        if self._closed:
            raise DriverError(f"RTP port {self.local_port} is closed")
        self._check(negotiated)
        self._drain_stale()
        self._reset_counts()
        ssrc = self._rng.getrandbits(32) if ssrc is None else ssrc
        self._sender = RtpSender(ssrc, negotiated.payload_type, initial_seq=self._rng.getrandbits(16),
                                 initial_ts=self._rng.getrandbits(32))
        self._reporter = RtcpReporter(ssrc, self.cname, self._sender, self._receiver, interval=self.rtcp_interval,
                                      rng=self._rng, now=now)
        self._te_pt = self._te_sender = self._te_receiver = None
        self._remote = (negotiated.remote_address, negotiated.remote_port)
        self._running = True
        self.update(negotiated, now)

    def update(self, negotiated: Negotiated, now: float) -> None:
        """A re-INVITE's outcome: hold/resume (direction), a new remote address, codec or event type."""
        if not self._running:
            return self.start(negotiated, now)
        self._check(negotiated)
        self._sender.payload_type = negotiated.payload_type
        remote = (negotiated.remote_address, negotiated.remote_port)
        if remote != self._remote:
            self._remote, self._latched, self._rtcp_latched = remote, None, None
        te = negotiated.telephone_event
        if te != self._te_pt:
            try:
                self._te_sender = None if te is None else TelephoneEventSender(self._sender, te)
            except ProtocolError as exc:
                log.info("RTP port %d: no telephone-events: %s", self.local_port, exc)
                self._te_sender, te = None, None
            self._te_pt = te
            self._te_receiver = None if te is None else TelephoneEventReceiver(te)
        playing = getattr(self, "_direction", "inactive") in RECEIVING
        self._direction = negotiated.direction
        if self._direction in RECEIVING and not playing:  # resume: start playout afresh
            self._concealed_before += self._jitter.concealed
            self._jitter = self._new_jitter()
        hold_address = remote[1] == 0 or remote[0] in ("0.0.0.0", "::")
        self._sending = self._direction in SENDING and not hold_address

    def _check(self, negotiated: Negotiated) -> None:
        if negotiated.payload_type not in (PCMA, PCMU):
            raise DriverError(f"RTP port {self.local_port}: payload type {negotiated.payload_type} "
                              f"({negotiated.codec}) is not PCMA (8) or PCMU (0)")
        if _family(negotiated.remote_address) != self._family and negotiated.remote_address != "0.0.0.0":
            raise DriverError(f"RTP port {self.local_port} on {self.host} cannot reach "
                              f"{negotiated.remote_address}: another address family")

    def stop(self, now: float | None = None, *, wall: float | None = None) -> None:
        """End the call's media; with ``now`` an RTCP BYE goes out. Stats stay until the next ``start``."""
        if self._running and now is not None and not self._closed and self._rtcp_target()[1]:
            self._send_to(self._rtcp, self._reporter.bye(now, self._ntp(now, wall)), self._rtcp_target())
        self._running = False

    def close(self) -> None:
        if not self._closed:
            self.stop()
            self._closed = True
            self._rtp.close()
            self._rtcp.close()

    def __enter__(self) -> MediaPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the tick --------------------------------------------------------------------------------

    def read(self, now: float, wall: float | None = None) -> np.ndarray:
        """Drain the sockets and return this tick's frame: (160,) uint8 A-law (silence when not playing)."""
        if self._closed:
            return SILENCE_FRAME.copy()
        for sock, limit, handle in ((self._rtp, MAX_READ, self._on_rtp), (self._rtcp, MAX_RTCP_READ, self._on_rtcp)):
            for _ in range(limit):
                data, source = self._recv(sock)
                if data is None:
                    break
                if self._running and source is not None:
                    handle(data, source, now, wall)
        if self._running and self._te_receiver is not None:
            self._add_digits(self._te_receiver.poll(now))
        if not self._running or self._direction not in RECEIVING:
            return SILENCE_FRAME.copy()
        return self._jitter.get()[0]

    def write(self, frame: np.ndarray | bytes, now: float, wall: float | None = None) -> None:
        """Send this tick's frame (160 A-law samples), or the digit being sent; RTCP when due."""
        if not self._running or self._closed:
            return
        if len(frame) != FRAME_SAMPLES:
            raise DriverError(f"RTP port {self.local_port}: a frame holds {FRAME_SAMPLES} samples, got {len(frame)}")
        if self._sending:
            target = self._latched or self._remote
            packets = (self._te_sender.tick(frame, now) if self._te_sender is not None
                       else [self._sender.frame(frame, now)])
            for packet in packets:
                self._out += 1
                if self.drop_hook is None or not self.drop_hook(packet):
                    self._send_to(self._rtp, packet.serialize(), target)
        else:
            self._sender.skip()
        report = self._reporter.poll(now, self._ntp(now, wall))
        if report is not None and self._rtcp_target()[1]:
            self._send_to(self._rtcp, report, self._rtcp_target())
            self._rtcp_out += 1

    def send_digit(self, digit: str, duration_ms: int = 100) -> None:
        """Queue an RFC 4733 key press; it replaces the audio of its ticks."""
        if not self._running or self._te_sender is None:
            raise DriverError(f"RTP port {self.local_port}: cannot send digit {digit!r}: "
                              f"{'no call' if not self._running else 'no telephone-event negotiated'}")
        try:
            self._te_sender.press(digit, duration_ms)
        except ProtocolError as exc:
            raise DriverError(f"RTP port {self.local_port}: {exc}") from exc

    def digits(self) -> list[str]:
        """RFC 4733 key presses received since the last call, each once."""
        out, self._digits = self._digits, []
        return out

    def _recv(self, sock: socket.socket) -> tuple[bytes | None, Address | None]:
        try:
            data, source = sock.recvfrom(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return None, None
        except OSError as exc:  # an ICMP error queued on the socket: count, read on
            self._send_errors += 1
            log.debug("RTP port %d: %s", self.local_port, exc)
            return b"", None
        return data, _norm(source)

    def _drain_stale(self) -> None:
        for sock in (self._rtp, self._rtcp):
            for _ in range(1000):
                if self._recv(sock)[0] is None:
                    break

    def _on_rtp(self, data: bytes, source: Address, now: float, wall: float | None) -> None:
        try:
            packet = RtpPacket.parse(data)
        except ProtocolError:
            self._malformed += 1
            return
        if source != self._latched and (source == self._remote or self._latched is None and self.latch
                                        and packet.payload_type in (PCMA, PCMU, self._te_pt)):
            self._latched = source
            if source != self._remote:
                log.info("RTP port %d: latched to %s:%d (SDP: %s:%d)", self.local_port, *source, *self._remote)
        if source != self._latched:
            self._foreign += 1
            return
        self._in += 1
        receiving = self._direction in RECEIVING
        for p in self._receiver.receive(packet, now):
            if p.payload_type == self._te_pt:
                if receiving and self._te_receiver is not None:
                    self._add_digits(self._te_receiver.receive(p, now))
            elif receiving:
                self._jitter.put(p, now)

    def _add_digits(self, events: list) -> None:
        self._digits += [event.digit for event in events]
        self._digits_in += len(events)

    def _on_rtcp(self, data: bytes, source: Address, now: float, wall: float | None) -> None:
        if self._rtcp_latched is None:
            expected = (self._remote[0], self._remote[1] + 1)
            peers = {self._remote[0]} | ({self._latched[0]} if self._latched else set())
            if source == expected or (self.latch and source[0] in peers):
                self._rtcp_latched = source
        if source != self._rtcp_latched:
            self._foreign += 1
            return
        self._rtcp_in += 1
        self._reporter.receive(data, now, self._ntp(now, wall))

    def _rtcp_target(self) -> Address:
        if self._rtcp_latched is not None:
            return self._rtcp_latched
        host, port = self._latched or self._remote
        return host, port + 1 if port else 0

    def _send_to(self, sock: socket.socket, data: bytes, addr: Address) -> None:
        if self._family == socket.AF_INET6 and ":" not in addr[0]:
            addr = (f"::ffff:{addr[0]}", addr[1])
        try:
            sock.sendto(data, addr)
        except OSError as exc:  # a full buffer (EAGAIN) drops the packet, as the network would
            self._send_errors += 1
            log.debug("RTP port %d: send to %s:%d failed: %s", self.local_port, *addr, exc)

    def _ntp(self, now: float, wall: float | None) -> float:
        return (now + self.wall_offset if wall is None else wall) + NTP_UNIX_OFFSET

    def stats(self) -> MediaStats:
        sources = [s for s in self._receiver.sources.values() if s.valid]
        source = max(sources, key=lambda s: s.received, default=None)
        reporter = self._reporter
        remote = max(reporter.remote.values(), key=lambda r: r.at, default=None) if reporter else None
        rtt = reporter and reporter.rtt
        return MediaStats(
            packets_in=self._in, packets_out=self._out, lost=max(0, sum(s.lost for s in sources)),
            jitter_ms=source.jitter / 8 if source else 0.0,
            concealed=self._concealed_before + self._jitter.concealed, late=self._jitter.late,
            duplicates=self._jitter.duplicates, foreign=self._foreign,
            malformed=self._malformed + self._receiver.malformed, digits_in=self._digits_in, rtcp_in=self._rtcp_in,
            rtcp_out=self._rtcp_out, send_errors=self._send_errors, latched=self._latched,
            remote_fraction_lost=remote.fraction_lost if remote else None,
            remote_lost=remote.cumulative_lost if remote else None,
            remote_jitter_ms=remote.jitter * 1000 if remote else None, rtt_ms=None if rtt is None else rtt * 1000)


class PortPool:
    """The MediaPorts of ``count`` card ports: ``acquire(i)`` binds one (or gives the bound one), ``release(i)``."""

    def __init__(self, count: int, host: str = "127.0.0.1", port_range: tuple[int, int] = (10000, 20000),
                 **options: object) -> None:
        self.host, self.port_range, self.options = host, port_range, options
        self._ports: list[MediaPort | None] = [None] * count
        self._next = port_range[0]  # scan from after the last pair bound: a freed port is not reused at once

    def acquire(self, index: int) -> MediaPort:
        port = self._ports[index]
        if port is None:
            port = MediaPort(self.host, self.port_range, first=self._next, **self.options)
            self._ports[index] = port
            self._next = port.local_port + 2 if port.local_port + 3 <= self.port_range[1] else self.port_range[0]
        return port

    def get(self, index: int) -> MediaPort | None:
        return self._ports[index]

    def release(self, index: int) -> None:
        port, self._ports[index] = self._ports[index], None
        if port is not None:
            port.close()

    def close(self) -> None:
        for index in range(len(self._ports)):
            self.release(index)

    def __enter__(self) -> PortPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
