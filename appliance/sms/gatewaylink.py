"""The TCP link to a CMPP or SMGP gateway: moves bytes between a socket and a :class:`GatewaySession`.

Poll-driven and select-based rather than a thread or asyncio: :class:`SmsTransport`
is already a poll interface (the outbox sender calls ``poll(now)`` and sleeps
until ``next_deadline``), so a non-blocking socket read on each poll is all the
I/O needed; :meth:`GatewayLink.wait` lets a loop sleep until bytes or a deadline.
"""
from __future__ import annotations

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
        if self.session.reconnect_due(now):
            events += self._open(now)
        if self._sock is not None:
            events += self._read(now)
        events += self.session.poll(now)
        if self.session.state == "down" and self._sock is not None:
            self._drop()  # the session gave up on this connection (timeout, refused login, bad stream)
        self._flush(now)
        return events

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def wait(self, timeout: float) -> None:
        """Block until the gateway sends something or ``timeout`` seconds pass."""
        if self._sock is None:
            time.sleep(max(0.0, timeout))  # nothing to watch until the reconnect
            return
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
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            return self.session.connection_lost(now, f"cannot connect to {self.host}:{self.port}: {exc}")
        sock.setblocking(False)
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
        if self._sock is not None:
            self._sock.close()
        self._sock, self._pending = None, b""
