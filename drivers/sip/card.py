"""The SIP card: a SIP trunk's channels and the agents' IP phones as card ports, like any other card.

Ports: ``trunk_channels`` trunk ports ("SIP 1".., span 1: the trunk), then one
seat per extension ("IP 801"..), which the core treats as it treats analog
seats. Each tick ``poll`` hands what the transport received to the user agent
(``drivers.sip.ua``), runs the timers of the transactions, the registrar (phones'
expiry and OPTIONS qualify), the trunk's registration and its OPTIONS health,
starts and stops the RTP ports the calls negotiated, and sends what the stack
has to send. ``read``/``write`` move one A-law frame per port through its RTP
port. A phone that is not registered, or stops answering OPTIONS, puts its seat
out of service (``PortFault``); a trunk that fails to register or stops
answering raises the span alarm ``REGFAIL`` or ``UNREACHABLE``.

Phones are challenged with MD5 unless ``algorithms`` says otherwise: a SHA-256
challenge beside the MD5 one (RFC 8760) makes some phones give up instead of
picking the one they know (baresip 1.0's libre fails with ENOSYS), so SHA-256
is for boxes whose phones are known to support it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Callable

import numpy as np

from appliance.errors import DriverError

from ..base import Alarm, CardEvent, Digit, PortFault, PortInfo, PortKind, check_frames
from .media import PortPool
from .registrar import Registrar, SourceBlocked
from .trunk import TrunkHealth, TrunkRegistration
from .ua import SipCalls

log = logging.getLogger(__name__)
IDLE = 0xD5
TRUNK_SPAN = 1


class _RtpPorts:
    """The local RTP port of a card port, bound on first use (``SipCalls`` asks when it writes SDP)."""

    def __init__(self, pool: PortPool) -> None:
        self.pool = pool

    def __getitem__(self, port: int) -> int:
        return self.pool.acquire(port).local_port


class SipCard:
    def __init__(self, *, trunk_channels: int, seats: dict[str, str], host: str, port: int = 5060,
                 bind: str | None = None, rtp_range: tuple[int, int] = (10000, 20000), domain: str | None = None,
                 trunk: dict | None = None, network: Any = None, secret: bytes | None = None,
                 qualify_every: float = 30.0, algorithms: tuple[str, ...] = ("MD5",)) -> None:
        self.host, self.bind, self.port = host, bind or host, port
        trunk_ports = list(range(trunk_channels))
        seat_ports = {trunk_channels + i: ext for i, ext in enumerate(seats)}
        self.ports = tuple([PortInfo(p, PortKind.TRUNK, f"SIP {p + 1}", TRUNK_SPAN) for p in trunk_ports]
                           + [PortInfo(p, PortKind.FXS, f"IP {ext}") for p, ext in seat_ports.items()])
        self.pool = PortPool(len(self.ports), host, rtp_range)
        self.registrar = Registrar(domain or host, dict(seats), secret=secret or secrets.token_bytes(32),
                                   sent_by=f"{host}:{port}", qualify_every=qualify_every,
                                   algorithms=algorithms) if seats else None
        self.trunk = trunk
        self.calls = SipCalls(local=(host, port), media_host=host, rtp_ports=_RtpPorts(self.pool),
                              trunk_ports=trunk_ports, seats=seat_ports, trunk=trunk, registrar=self.registrar)
        self.network = network
        self.reg = self.health = None
        if trunk is not None:
            t_port = trunk.get("port", 5060)
            if trunk.get("register", True):
                self.reg = TrunkRegistration(f"sip:{trunk['host']}:{t_port}", trunk["username"], trunk["password"],
                                             local_host=host, local_port=port, domain=trunk.get("domain"),
                                             transport=trunk.get("transport", "UDP"),
                                             auth_username=trunk.get("auth_username"))
            self.health = TrunkHealth() if trunk.get("options", True) else None
        self.now = 0.0
        self._active: set[int] = set()  # ports with running media
        self._seat_ok = {p: True for p in seat_ports}  # what we last told the core
        self._trunk_alarms: frozenset[str] = frozenset()
        self._reg_started = False
        self._out: list[CardEvent] = []
        self.blocked: dict[str, float] = {}  # source IP -> blocked until (for the status page)

    @classmethod
    def from_config(cls, cfg: dict, *, trunk_channels: int | None = None, phones: bool = True) -> "SipCard":
        """The SIP card ``cfg`` describes: ``card.trunk_channels`` SIP trunk ports when ``sip.trunk_host``
        is set (``trunk_channels`` overrides), and with ``phones`` the seats as IP phones."""
        sip = cfg["sip"]
        trunk = None
        if sip["trunk_host"]:
            trunk = {"host": sip["trunk_host"], "port": sip["trunk_port"], "transport": sip["trunk_transport"].upper(),
                     "domain": sip["trunk_domain"] or None, "username": sip["trunk_username"],
                     "password": sip["trunk_password"], "register": sip["trunk_register"],
                     "number": cfg["system"]["box_number"]}
        n = trunk_channels if trunk_channels is not None else (cfg["card"]["trunk_channels"] if trunk else 0)
        seats = {s["extension"]: s["sip_password"] for s in cfg["seats"]} if phones else {}
        algorithms = {"md5": ("MD5",), "sha-256": ("SHA-256",), "both": ("SHA-256", "MD5")}[sip["auth"]]
        return cls(trunk_channels=n, seats=seats, host=sip["address"], port=sip["port"],
                   rtp_range=(sip["rtp_min"], sip["rtp_max"]), trunk=trunk, algorithms=algorithms)

    # --- the network ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Bind the SIP port (UDP and TCP) on the running loop, unless a network was given."""
        if self.network is None:
            from .transport import SipTransport
            self.network = SipTransport(self.bind, self.port)
            await self.network.start()

    def attach(self, loop: Any, on_ready: Callable[[], None] | None = None) -> bool:
        """The host clock paces the tick (returns False); the network is bound by ``open``, which the
        core awaits at start."""
        return False

    def _send_all(self) -> None:
        if self.network is None:
            return
        for out in self.calls.messages_to_send():
            self.network.send(out)

    # --- each tick ----------------------------------------------------------------------------------

    def poll(self, now: float) -> list[CardEvent]:
        self.now = now
        calls = self.calls
        calls.freed_now.clear()
        if self.network is not None:
            for data, source, transport in self.network.take():
                calls.receive(data, source, now, transport)
            for addr, reason in getattr(self.network, "errors", lambda: [])():
                log.warning("SIP: cannot reach %s:%s: %s", addr[0], addr[1], reason)
        if (due := calls.next_deadline()) is not None and now >= due:
            calls.handle_timer(now)
        self._registrar(now)
        self._trunk(now)
        while (ev := calls.next_event()) is not None:
            self._out.append(ev)
        self._media(now)
        self._send_all()
        out, self._out = self._out, []
        return out

    def _registrar(self, now: float) -> None:
        r = self.registrar
        if r is None:
            return
        if (due := r.next_deadline()) is not None and now >= due:
            r.handle_timer(now)
        for req, addr, transport in r.options_due(now):
            self.calls.send_other(req, addr, now, transport,
                                  lambda resp, t, cid=req.call_id: r.options_result(cid, resp is not None, t))
        while (ev := r.next_event()) is not None:
            if isinstance(ev, SourceBlocked):
                self.blocked[ev.source_ip] = ev.until
                log.warning("SIP: %s failed authentication too often; blocked until %.0f", ev.source_ip, ev.until)
        for port, ext in self.calls.seats.items():
            ok = r.reachable(ext, now)
            if ok != self._seat_ok[port]:
                self._seat_ok[port] = ok
                reason = "" if ok else ("IP phone unreachable" if r.bindings(ext, now) else "IP phone not registered")
                self._out.append(PortFault(port, ok, reason))

    def _trunk(self, now: float) -> None:
        if self.trunk is None:
            return
        if self.reg is not None:
            if not self._reg_started:
                self._reg_started = True
                self._trunk_send(self.reg.start(now), now, self._reg_result)
            elif (due := self.reg.next_deadline()) is not None and now >= due:
                req = self.reg.handle_timer(now)
                if req is not None:
                    self._trunk_send(req, now, self._reg_result)
        if self.health is not None and self.health.due(now):
            req = self.health.request(f"sip:{self.trunk['host']}:{self.trunk.get('port', 5060)}", self.host,
                                      self.port, now, transport=self.trunk.get("transport", "UDP"))
            self._trunk_send(req, now, lambda resp, t: self.health.result(resp is not None, t))
        while self.health is not None and self.health.next_event() is not None:
            pass
        alarms = set()
        if self.reg is not None and self.reg.state == "failed":
            alarms.add("REGFAIL")
        if self.health is not None and self.health.up is False:
            alarms.add("UNREACHABLE")
        if frozenset(alarms) != self._trunk_alarms:
            self._trunk_alarms = frozenset(alarms)
            self._out.append(Alarm(TRUNK_SPAN, self._trunk_alarms))

    def _trunk_send(self, req, now: float, on_result) -> None:
        t = self.trunk
        self.calls.send_other(req, (t["host"], t.get("port", 5060)), now, t.get("transport", "UDP"), on_result)

    def _reg_result(self, resp, now: float) -> None:
        if resp is None:
            self.reg.timed_out(now)
            return
        again = self.reg.on_response(resp, now)
        if again is not None:
            self._trunk_send(again, now, self._reg_result)

    def _media(self, now: float) -> None:
        for port, negotiated in self.calls.media_changes():
            try:
                if negotiated is None:
                    self._active.discard(port)
                    self.pool.release(port)
                elif port in self._active:
                    self.pool.acquire(port).update(negotiated, now)
                else:
                    self._active.add(port)
                    self.pool.acquire(port).start(negotiated, now)
            except DriverError as exc:  # the RTP port refused the far end's address: no call without media
                log.warning("SIP: media for port %d failed (%s): clearing the call", port, exc)
                self._active.discard(port)
                self.calls.hangup(port, 47, now)
        for port in self._active:
            self._out += [Digit(port, d) for d in self.pool.acquire(port).digits()]

    def box_alarms(self) -> dict[str, str]:
        """Alarms for the dashboard: each source blocked for guessing passwords, until when."""
        self.blocked = {ip: until for ip, until in self.blocked.items() if until > self.now}
        return {f"sip.blocked {ip}": f"{until - self.now:.0f} s left" for ip, until in sorted(self.blocked.items())}

    def next_deadline(self) -> float | None:
        times = [t for t in (self.calls.next_deadline(),
                             self.registrar.next_deadline() if self.registrar else None,
                             self.reg.next_deadline() if self.reg else None,
                             self.health.next_deadline() if self.health else None) if t is not None]
        return min(times) if times else None

    # --- frames ---------------------------------------------------------------------------------------

    def read(self, out: np.ndarray) -> None:
        check_frames(out, len(self.ports), "read")
        out[:] = IDLE
        for port in self._active:
            out[port] = self.pool.acquire(port).read(self.now)

    def write(self, frames: np.ndarray) -> None:
        check_frames(frames, len(self.ports), "write")
        for port in self._active:
            self.pool.acquire(port).write(frames[port], self.now)

    # --- commands ----------------------------------------------------------------------------------------

    def _port(self, port: int) -> int:
        if not isinstance(port, (int, np.integer)) or not 0 <= port < len(self.ports):
            raise DriverError(f"port {port!r} does not exist; this card has ports 0..{len(self.ports) - 1}")
        return int(port)

    def answer(self, port: int) -> None:
        self.calls.answer_call(self._port(port), self.now)
        self._media(self.now)
        self._send_all()

    def hangup(self, port: int, cause: int = 16) -> None:
        self.calls.hangup(self._port(port), cause, self.now)
        self._media(self.now)
        self._send_all()

    def dial(self, port: int, number: str) -> None:
        self.calls.dial(self._port(port), number, self.now)
        self._send_all()

    def ring(self, port: int, caller: str | None) -> None:
        self.calls.ring(self._port(port), caller, self.now)
        self._send_all()

    def stop_ring(self, port: int) -> None:
        self.calls.stop_ring(self._port(port), self.now)
        self._send_all()

    def bridge(self, a: int, b: int | None) -> None:
        """Nothing to do: the runtime's switch mixes the audio."""
        self._port(a)
        if b is not None:
            self._port(b)

    def close(self) -> None:
        """Release the RTP ports and the SIP port (idempotent)."""
        if self.network is not None:
            try:
                self.network.close()
            except RuntimeError:  # its loop is closed already, and its sockets with it
                pass
        self.pool.close()
