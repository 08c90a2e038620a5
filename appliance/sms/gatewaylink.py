"""The TCP link to a CMPP or SMGP gateway: moves bytes between a socket and a :class:`GatewaySession`.

Poll-driven and select-based rather than a thread or asyncio: :class:`SmsTransport`
is already a poll interface (the outbox sender calls ``poll(now)`` and sleeps
until ``next_deadline``), so a non-blocking socket read on each poll is all the
I/O needed; :meth:`GatewayLink.wait` lets a loop sleep until bytes or a deadline.
The TCP connect is non-blocking too (started in one poll, finished in a later one,
given up after ``CONNECT_TIMEOUT``): the SMS worker that polls also answers the
control API, and an unreachable gateway must not hold it. The host's name is
resolved when the link is made: give the gateway's address as numbers, as the
carriers do, to keep DNS out of the worker.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import time
from typing import Callable

from appliance.sms.gateway import Credentials, GatewaySession
from appliance.sms.transport import SmsTransport

CONNECT_TIMEOUT = 5.0  # upper bound on opening the TCP connection


class GatewayLink(SmsTransport):
    """An :class:`SmsTransport` over one TCP connection to ``host:port``.

    Parameters
    ----------
    host, port : str, int
        The gateway's address.
    protocol : str
        "cmpp" or "smgp"; also the transport's ``name``.
    credentials : Credentials
        Account, secret and source number.
    clock : callable, optional
        Wall-clock seconds, for the login timestamp and the time inbound messages arrive.
    **kwargs
        Passed to :class:`GatewaySession` (window, response_timeout, idle_test, backoff).
    """

    def __init__(self, host: str, port: int, protocol: str, credentials: Credentials, *,
                 clock: Callable[[], float] = time.time, **kwargs) -> None:
        self.host, self.port, self.name, self.clock = host, port, protocol, clock
        self.session = GatewaySession(protocol, credentials, **kwargs)
        self._sock: socket.socket | None = None
        self._connecting: tuple[socket.socket, float] | None = None  # a connect under way, and its deadline
        self._pending = b""  # written by the session, not yet taken by the socket
        self._started = False

    def submit(self, msg_id: str, number: str, text: str, now: float) -> None:
        self._start(now)
        self.session.submit(msg_id, number, text, now)
        self._flush(now)

    def unsent(self) -> list[str]:
        # only what the session has not encoded: bytes in _pending count as written (the safe side)
        return self.session.unsent()

    def poll(self, now: float) -> list:
        self._start(now)
        events: list = []
        if self._connecting is not None:
            events += self._connected(now)
        elif self.session.reconnect_due(now):
            events += self._open(now)
        if self._sock is not None:
            events += self._read(now)
        events += self.session.poll(now)
        if self.session.state == "down" and self._sock is not None:
            self._drop()  # the session gave up on this connection (timeout, refused login, bad stream)
        self._flush(now)
        return events

    def next_deadline(self) -> float | None:
        if self._connecting is not None:
            return self._connecting[1]
        return self.session.next_deadline()

    def wait(self, timeout: float) -> None:
        """Block until the gateway sends something or ``timeout`` seconds pass."""
        if self._connecting is not None:
            select.select([], [self._connecting[0]], [], max(0.0, timeout))
        elif self._sock is None:
            time.sleep(max(0.0, timeout))  # nothing to watch until the reconnect
        else:
            select.select([self._sock], [], [], max(0.0, timeout))

    def close(self) -> None:
        bye = self.session.close()
        if self._sock is not None:
            try:
                self._sock.sendall(self._pending + bye)
            except OSError:
                pass  # closing anyway
        self._drop()

    def _start(self, now: float) -> None:
        if not self._started:
            self._started = True
            self.session.start(now)

    def _open(self, now: float) -> list:
        """Start connecting; :meth:`_connected` finishes at a later poll."""
        sock = None
        try:
            family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            err = sock.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
        except OSError as exc:
            if sock is not None:
                sock.close()
            return self.session.connection_lost(now, f"cannot connect to {self.host}:{self.port}: {exc}")
        self._connecting = (sock, now + CONNECT_TIMEOUT)
        return self._connected(now)

    def _connected(self, now: float) -> list:
        """The connect under way: done (the session logs in), failed, timed out, or still going."""
        sock, deadline = self._connecting
        _, writable, _ = select.select([], [sock], [], 0)
        if not writable:
            if now < deadline:
                return []
            reason = f"timed out after {CONNECT_TIMEOUT:g} s"
        else:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            reason = None if err == 0 else str(OSError(err, os.strerror(err)))
        self._connecting = None
        if reason is not None:
            sock.close()
            return self.session.connection_lost(now, f"cannot connect to {self.host}:{self.port}: {reason}")
        self._sock = sock
        self._pending = self.session.connect(now, self.clock())
        self._flush(now)
        return []

    def _read(self, now: float) -> list:
        events: list = []
        while self._sock is not None:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                self._drop()
                return events + self.session.connection_lost(now, f"connection error: {exc}")
            if not data:
                self._drop()
                return events + self.session.connection_lost(now, "the gateway closed the connection")
            events += self.session.feed(data, now, self.clock())
            if self.session.state == "down":
                break  # the session gave up on this connection; poll() drops it
        return events

    def _flush(self, now: float) -> None:
        self._pending += self.session.outgoing()
        if self._sock is None or not self._pending:
            return
        try:
            sent = self._sock.send(self._pending)
        except BlockingIOError:
            return
        except OSError:
            return  # the next read sees the broken connection and reports it
        self._pending = self._pending[sent:]

    def _drop(self) -> None:
        for sock in (self._sock, self._connecting[0] if self._connecting else None):
            if sock is not None:
                sock.close()
        self._sock, self._connecting, self._pending = None, None, b""
