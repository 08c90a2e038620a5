"""SIP over UDP and TCP on asyncio (RFC 3261 §18): the I/O glue around the sans-I/O SIP cores.

``SipTransport`` binds UDP and a TCP listener on one (host, port) (port 0: one the
kernel picks, free for both). Arrivals are queued as ``(data, source, transport)``:
a UDP datagram as received, a TCP message as framed by its connection's
``StreamParser`` (a broken stream closes that connection only). The tick drains
the queue with ``take()``; ``wake`` (called on the loop's thread) says something
was queued. ``send(Outgoing)`` never blocks nor raises for the network's sake: UDP
goes out at once (a host name is resolved in the background), TCP is written to
the connection to or from that address, or a connection is opened in the
background and the data queued until it is up; failures come back from
``errors()`` as ``(addr, reason)``. From another thread ``send`` hands over with
``call_soon_threadsafe``. Limits, each drop counted in ``stats()``: datagrams over
65535 bytes, CR/LF-only datagrams (keep-alives), TCP connections beyond 64
(refused), connections idle 300 s (closed; the loop's clock), more than 1000
queued messages, a peer leaving 1 MiB unread (connection closed).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable

from appliance.errors import DriverError, ProtocolError

from .message import StreamParser
from .transaction import Outgoing

log = logging.getLogger(__name__)

Address = tuple[str, int]
Received = tuple[bytes, Address, str]

MAX_DATAGRAM = 65535
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 300.0
CONNECT_TIMEOUT = 10.0
MAX_QUEUE = 1000
MAX_WRITE_BUFFER = 1 << 20
_BIND_ATTEMPTS = 20  # port 0: UDP ports tried until TCP can have the same one


def normalize(addr: tuple) -> Address:
    """``(host, port)`` with an IP literal in canonical form (no brackets, IPv4-mapped IPv6 unmapped)."""
    host, port = str(addr[0]).strip("[]"), int(addr[1])
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host, port  # a host name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), port


def show(addr: tuple) -> str:
    """``host:port``, ``[v6]:port``."""
    return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"


def _is_ip(host: str) -> bool:
    try:
        return bool(ipaddress.ip_address(host))
    except ValueError:
        return False


def _drain(queue: deque) -> list:
    return [queue.popleft() for _ in range(len(queue))]  # not a swap: safe against appends from another thread


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.datagram_received, self.error_received = owner._on_datagram, owner._on_udp_error  # type: ignore


class _Connection(asyncio.Protocol):
    """One TCP connection; ``pending`` holds what was sent before an outgoing one was up."""

    def __init__(self, owner: SipTransport, addr: Address | None = None) -> None:
        self.owner, self.source, self.outgoing, self.refused = owner, addr, addr is not None, False
        self.keys: set[Address] = {addr} if addr else set()  # the addresses it is found under
        self.transport: asyncio.Transport | None = None
        self.parser, self.pending = StreamParser(), []
        self.last = owner._loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.owner._on_connected(self)

    def data_received(self, data: bytes) -> None:
        self.owner._on_stream(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.refused:
            self.owner._forget(self)


class SipTransport:
    """UDP and TCP on one (host, port); ``take()`` what arrived, ``send()`` what goes out, ``errors()`` what failed."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, wake: Callable[[], None] | None = None,
                 idle_timeout: float = IDLE_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, max_datagram: int = MAX_DATAGRAM,
                 max_queue: int = MAX_QUEUE) -> None:
        if not 0 <= port <= 65535:
            raise DriverError(f"SIP transport: port {port} is outside 0-65535")
        self.host, self.port = host.strip("[]"), port
        self.wake, self.idle_timeout, self.connect_timeout = wake, idle_timeout, connect_timeout
        self.max_connections, self.max_datagram, self.max_queue = max_connections, max_datagram, max_queue
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._local: Address | None = None
        self._thread, self._family, self._closed = 0, socket.AF_INET, False
        self._queue: deque[Received] = deque()
        self._errors: deque[tuple[Address, str]] = deque()
        self._conns: dict[Address, _Connection] = {}  # by peer address (and the address we connected to)
        self._all: set[_Connection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._reaper: asyncio.TimerHandle | None = None
        self._sending_to: Address | None = None  # set during a UDP send: error_received names it
        self.counts = dict.fromkeys(("udp_in", "tcp_in", "udp_out", "tcp_out", "oversize", "keepalives",
                                     "broken", "refused", "idle_closed", "overflow", "send_errors"), 0)

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind UDP and TCP on (host, port); DriverError says which address could not be bound and why."""
        if self._loop is not None:
            raise DriverError(f"SIP transport on {show((self.host, self.port))} is already started")
        self._loop = loop = loop or asyncio.get_running_loop()
        self._thread = threading.get_ident()
        for attempt in range(_BIND_ATTEMPTS if self.port == 0 else 1):
            try:
                udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self.port))
            except OSError as exc:
                self._loop = None
                raise DriverError(f"SIP transport cannot bind UDP {show((self.host, self.port))}: "
                                  f"{exc.strerror or exc}") from exc
            sock, port = udp.get_extra_info("socket"), udp.get_extra_info("sockname")[1]
            try:
                self._server = await loop.create_server(lambda: _Connection(self), self.host, port,
                                                        family=sock.family, reuse_address=True)
            except OSError as exc:
                udp.close()
                if self.port == 0 and exc.errno == errno.EADDRINUSE and attempt + 1 < _BIND_ATTEMPTS:
                    continue  # that UDP port is taken for TCP: let the kernel pick another
                self._loop = None
                raise DriverError(f"SIP transport cannot listen on TCP {show((self.host, port))}: "
                                  f"{exc.strerror or exc}") from exc
            self._udp, self._family = udp, sock.family
            self._local = normalize(udp.get_extra_info("sockname"))
            break
        self._sweep = max(0.05, min(self.idle_timeout / 4, 30.0))
        self._reaper = loop.call_later(self._sweep, self._reap)
        log.info("SIP transport listening on UDP and TCP %s", show(self._local))

    @property
    def local(self) -> Address:
        """The bound (host, port)."""
        if self._local is None:
            raise DriverError("SIP transport is not started: no local address yet")
        return self._local

    def close(self) -> None:
        """Close the sockets and every connection; what is still queued stays for ``take()``."""
        if self._closed:
            return
        self._closed = True
        for pending in (self._reaper, *self._tasks):
            if pending is not None:
                pending.cancel()
        for closable in (self._udp, self._server, *(conn.transport for conn in self._all)):
            if closable is not None:
                closable.close()

    async def wait_closed(self) -> None:
        """After ``close()``: wait until the sockets are really closed."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)

    # --- the tick's side -------------------------------------------------------------------------

    def take(self) -> list[Received]:
        """Everything received since the last call, oldest first: ``(data, (host, port), "UDP"|"TCP")``."""
        return _drain(self._queue)

    def errors(self) -> list[tuple[Address, str]]:
        """Sends that failed since the last call: ``((host, port), reason)``."""
        return _drain(self._errors)

    def stats(self) -> dict[str, int]:
        """Counters (received, sent, dropped, refused, ...) and the open connections."""
        return {**self.counts, "connections": len(self._all)}

    def send(self, out: Outgoing) -> None:
        """Send one message; never blocks. Failures come back through ``errors()``."""
        if self._loop is None:
            raise DriverError("SIP transport is not started: call start() before send()")
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._send, out)
        else:
            self._send(out)

    def _send(self, out: Outgoing) -> None:
        addr = normalize(out.addr)
        if self._closed:
            return self._error(addr, "the SIP transport is closed")
        if out.transport.upper() == "UDP":
            self._send_udp(out.data, addr)
        elif out.transport.upper() == "TCP":
            self._send_tcp(out.data, addr)
        else:
            self._error(addr, f"transport {out.transport!r} is not supported (UDP, TCP)")

    # --- UDP -------------------------------------------------------------------------------------

    def _send_udp(self, data: bytes, addr: Address) -> None:
        if len(data) > self.max_datagram:
            return self._error(addr, f"message of {len(data)} bytes is too large for UDP; use TCP "
                                     f"(RFC 3261 §18.1.1)")
        if not _is_ip(addr[0]):
            return self._spawn(self._resolve_and_send(data, addr))
        target = self._sockaddr(addr)
        if target is None:
            return self._error(addr, f"cannot reach an IPv{6 if ':' in addr[0] else 4} address from "
                                     f"{show(self.local)}")
        self._sending_to = addr
        try:
            self._udp.sendto(data, target)
        finally:
            self._sending_to = None
        self.counts["udp_out"] += 1

    async def _resolve_and_send(self, data: bytes, addr: Address) -> None:
        try:
            infos = await self._loop.getaddrinfo(addr[0], addr[1], family=self._family, type=socket.SOCK_DGRAM)
        except OSError as exc:
            return self._error(addr, f"cannot resolve {addr[0]!r}: {exc.strerror or exc}")
        if not self._closed:
            self._send_udp(data, normalize(infos[0][4]))

    def _sockaddr(self, addr: Address) -> Address | None:
        """The destination as our socket's family wants it; None when it cannot be reached from it."""
        v6 = ":" in addr[0]
        if v6 == (self._family == socket.AF_INET6):
            return addr
        return None if v6 else (f"::ffff:{addr[0]}", addr[1])

    def _on_datagram(self, data: bytes, addr: tuple) -> None:
        if len(data) > self.max_datagram or not data.strip(b"\r\n"):
            self.counts["oversize" if len(data) > self.max_datagram else "keepalives"] += 1
            return
        self.counts["udp_in"] += 1
        self._push((data, normalize(addr), "UDP"))

    def _on_udp_error(self, exc: Exception) -> None:
        if self._sending_to is not None:
            self._error(self._sending_to, f"UDP send failed: {getattr(exc, 'strerror', None) or exc}")
        else:
            self.counts["send_errors"] += 1
            log.info("SIP transport %s: UDP error %s", show(self.local), exc)

    # --- TCP -------------------------------------------------------------------------------------

    def _send_tcp(self, data: bytes, addr: Address) -> None:
        conn = self._conns.get(addr)
        if conn is not None:
            if conn.transport is None:
                conn.pending.append(data)
            else:
                self._write(conn, data)
            return
        if len(self._all) >= self.max_connections:
            self.counts["refused"] += 1
            return self._error(addr, f"no new TCP connection: already {len(self._all)} open "
                                     f"(limit {self.max_connections})")
        conn = _Connection(self, addr)
        conn.pending.append(data)
        self._conns[addr] = conn
        self._all.add(conn)
        self._spawn(self._connect(conn, addr))

    async def _connect(self, conn: _Connection, addr: Address) -> None:
        bind = self.local[0] not in ("0.0.0.0", "::") and _is_ip(addr[0])  # from our address, not another
        try:
            await asyncio.wait_for(self._loop.create_connection(lambda: conn, addr[0], addr[1],
                                                                local_addr=(self.local[0], 0) if bind else None),
                                   self.connect_timeout)
        except (asyncio.TimeoutError, OSError) as exc:
            conn.pending = []
            self._forget(conn)
            reason = (f"no TCP connection to {show(addr)} within {self.connect_timeout:g} s"
                      if isinstance(exc, asyncio.TimeoutError) else f"TCP connect to {show(addr)} failed: "
                      f"{exc.strerror or exc}")
            self._error(addr, reason)

    def _on_connected(self, conn: _Connection) -> None:
        peer = normalize(conn.transport.get_extra_info("peername"))
        if self._closed or (not conn.outgoing and len(self._all) >= self.max_connections):
            conn.refused = True
            if not self._closed:
                self.counts["refused"] += 1
                log.info("SIP transport %s: refused TCP from %s, %d connections open",
                         show(self.local), show(peer), len(self._all))
            conn.transport.close()
            return
        conn.source = peer
        conn.keys.add(peer)
        self._conns[peer] = conn
        self._all.add(conn)
        conn.last = self._loop.time()
        pending, conn.pending = conn.pending, []
        for data in pending:
            self._write(conn, data)

    def _write(self, conn: _Connection, data: bytes) -> None:
        if conn.transport.is_closing():
            return self._error(conn.source, "the TCP connection is closing")
        if conn.transport.get_write_buffer_size() + len(data) > MAX_WRITE_BUFFER:
            self._error(conn.source, f"TCP peer {show(conn.source)} does not read: more than "
                                     f"{MAX_WRITE_BUFFER} bytes unsent; connection closed")
            conn.transport.abort()
            return
        conn.transport.write(data)
        conn.last = self._loop.time()
        self.counts["tcp_out"] += 1

    def _on_stream(self, conn: _Connection, data: bytes) -> None:
        conn.last = self._loop.time()
        try:
            messages, broken = conn.parser.feed(data), None
        except ProtocolError as exc:
            messages, broken = getattr(exc, "messages", []), exc
        for message in messages:
            self.counts["tcp_in"] += 1
            self._push((message.serialize(), conn.source, "TCP"))
        if broken is not None:
            self.counts["broken"] += 1
            log.info("SIP transport %s: closing the TCP connection from %s: %s",
                     show(self.local), show(conn.source), broken)
            conn.transport.close()
            self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)
        for key in conn.keys:
            if self._conns.get(key) is conn:
                del self._conns[key]
        if conn.pending:
            self._error(conn.source, "the TCP connection closed before the message was sent")
            conn.pending = []

    def _reap(self) -> None:
        now = self._loop.time()
        for conn in list(self._all):
            if conn.transport is not None and now - conn.last >= self.idle_timeout:
                self.counts["idle_closed"] += 1
                log.debug("SIP transport %s: closing idle TCP connection %s", show(self.local), show(conn.source))
                conn.transport.close()
                self._forget(conn)
        if not self._closed:
            self._reaper = self._loop.call_later(self._sweep, self._reap)

    # --- queueing --------------------------------------------------------------------------------

    def _push(self, item: Received) -> None:
        if len(self._queue) >= self.max_queue:
            self.counts["overflow"] += 1
            return
        self._queue.append(item)
        self._wake()

    def _error(self, addr: Address | None, reason: str) -> None:
        self.counts["send_errors"] += 1
        log.info("SIP transport: cannot send to %s: %s", show(addr) if addr else "?", reason)
        self._errors.append((addr, reason))
        self._wake()

    def _wake(self) -> None:
        if self.wake is not None:
            try:
                self.wake()
            except Exception:  # the callback is not ours to crash on
                log.exception("SIP transport: wake callback failed")

    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
