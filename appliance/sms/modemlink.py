"""The GSM modem as an :class:`SmsTransport`: a serial port, found by probing or named, driving an :class:`AtModem`.

Poll-driven like :class:`~appliance.sms.gatewaylink.GatewayLink`: no thread and no
sleep. Each :meth:`ModemLink.poll` reads what the port has (pyserial with
``timeout=0``), feeds it to the AT dialogue, writes what the dialogue wants
written, and turns the dialogue's events into the transport's: ``Ready`` ->
``Up``; a failed set-up (no SIM, PIN required, not registered) -> ``Down`` with
the modem's words, the port closed and opened again after ``reopen_s``; a serial
error (the modem unplugged: EIO) -> ``Down``, and with a named port a reopen
every ``reopen_s``, with ``"auto"`` a wait for the hotplug layer's next
:meth:`ModemLink.plugged`.

With ``port="auto"`` the AT port is found among the ttys hotplug reported: a USB
modem shows 2-4 (diagnostics, NMEA, AT, PPP) and only one or two answer
``AT``. Each is opened in turn, sent ``AT\\r`` and given ``probe_timeout_s`` to
answer ``OK``; the first that does is used, the others are skipped. When none
answers (a modem still booting), all are tried again after ``reopen_s``.

Exactly-once (``appliance.sms.outbox``): a message is accepted only when every
part has its TP-MR (``Accepted.ref`` = the MRs joined by ``,``, the same string
its ``Report`` carries). A refusal before any part went is ``Rejected`` with
``retryable`` from :data:`CMS_RETRYABLE`; once a part went, a refusal of a later
part is final (a retry would send the first parts twice). A message submitted
while the modem is not ready is ``NotSent``, without a byte written. When the
port is lost (or the modem stops answering ``AT+CMGS``) the messages in flight of
which no PDU was written (queued behind others, or waiting for the ``> `` prompt)
are ``NotSent`` before the ``Down``: the outbox queues them again without a try.
The others get nothing: the message may have gone, and the ``Down`` makes the
outbox mark them unknown (rule 5). :meth:`ModemLink.unsent` takes back, at a stop,
the messages still queued in the AT dialogue; one whose ``AT+CMGS`` line has gone
and waits for the prompt is left to finish (the dialogue cannot take it back
without cancelling at the prompt) and is not reported.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import serial

from appliance.errors import ProtocolError
from appliance.sms.atmodem import AtModem, Delivered, ModemError, Ready, Received, SendFailed, Sent
from appliance.sms.pdu import split_text
from appliance.sms.transport import Accepted, Down, Inbound, NotSent, Rejected, Report, SmsTransport, Up

__all__ = ["ModemLink", "CMS_RETRYABLE", "retryable"]

log = logging.getLogger(__name__)

REPORT_KEEP_S = 3 * 24 * 3600.0  # how long a sent message waits for the delivery reports of all its parts
_READ_CHUNK = 4096
_IO_ERRORS = (serial.SerialException, OSError)

# +CMS ERROR codes as answers to AT+CMGS (3GPP TS 27.005 3.2.5; 0-127 are RP-causes of TS 24.011 E.2,
# 128-255 TP-FCS of TS 23.040 9.2.3.22): True when the condition is temporary (the network or the modem
# may take the same message later), False when this message is refused (it would be refused again).
# A code not listed counts as temporary: the outbox's try limit bounds the retries, and a message is not
# failed for good on a code nobody judged.
CMS_RETRYABLE: dict[int, bool] = {
    # refusals of this message: its number, its subscriber, the message itself
    1: False,    # unassigned (unallocated) number
    8: False,    # operator determined barring
    10: False,   # call barred
    21: False,   # short message transfer rejected
    27: False,   # destination out of service
    28: False,   # unidentified subscriber
    29: False,   # facility rejected
    30: False,   # unknown subscriber
    50: False,   # requested facility not subscribed
    69: False,   # requested facility not implemented
    81: False,   # invalid short message transfer reference value
    95: False,   # invalid message, unspecified
    96: False,   # invalid mandatory information
    97: False,   # message type non-existent or not implemented
    98: False,   # message not compatible with the short message protocol state
    99: False,   # information element non-existent or not implemented
    111: False,  # protocol error, unspecified
    127: False,  # interworking, unspecified
    0x80: False, 0x81: False, 0x82: False, 0x8F: False,  # TP-PID errors
    0x90: False, 0x91: False, 0x9F: False,  # TP-DCS errors
    0xB0: False,  # TPDU not supported
    0xC1: False,  # no SC subscription
    0xC3: False,  # invalid SME address
    0xC4: False,  # destination SME barred
    0xC5: False,  # SM rejected: duplicate SM (the centre has it already)
    0xC6: False, 0xC7: False,  # TP-VPF / TP-VP not supported
    303: False,  # operation not supported
    304: False,  # invalid PDU mode parameter
    305: False,  # invalid text mode parameter
    # temporary: the network, the service centre, the modem or its SIM
    22: True,    # memory capacity exceeded (at the destination)
    38: True,    # network out of order
    41: True,    # temporary failure
    42: True,    # congestion
    47: True,    # resources unavailable, unspecified
    0xC0: True,  # SC busy
    0xC2: True,  # SC system failure
    0xD4: True,  # SIM application toolkit busy
    0xFF: True,  # unspecified error cause
    300: True,   # ME failure
    301: True,   # SMS service of ME reserved
    302: True,   # operation not allowed (the modem's state)
    310: True, 311: True, 312: True, 313: True, 314: True, 315: True, 316: True,  # SIM conditions
    320: True,   # memory failure
    322: True,   # memory full
    330: True,   # SMSC address unknown (the SIM's setting, not the message)
    331: True,   # no network service
    332: True,   # network timeout (the modem got no RP-ACK: see the note in retryable)
    500: True,   # unknown error
}
_CMS = re.compile(r"\+CMS ERROR (\d+)\b")
_CMGS_TIMEOUT = "no answer to AT+CMGS"  # AtModem's SendFailed reason when AT+CMGS times out


def retryable(reason: str) -> bool:
    """Whether a ``SendFailed`` reason from :class:`AtModem` (``+CMS ERROR n: name``, ``+CME ERROR n: ...``,
    ``ERROR``) is temporary.

    ``+CMS ERROR`` codes go by :data:`CMS_RETRYABLE`; ``+CME ERROR`` (the modem's or SIM's state) and a bare
    ``ERROR`` are temporary. Code 332 is taken as temporary as the modem reports it as not sent, although
    the service centre may in rare cases have the message.
    """
    m = _CMS.match(reason)
    if m is not None:
        return CMS_RETRYABLE.get(int(m.group(1)), True)
    return True


@dataclass
class _Message:
    parts: int
    since: float  # when submitted, then when accepted (the reports' age is counted from then)
    mrs: dict[int, int] = field(default_factory=dict)  # part -> TP-MR
    outcomes: dict[int, tuple[int, bool]] = field(default_factory=dict)  # part -> (TP-ST, delivered)
    accepted: bool = False

    def ref(self) -> str:
        return ",".join(str(self.mrs[p]) for p in sorted(self.mrs))


def _dev(name: str) -> str:
    return name if name.startswith("/") else f"/dev/{name}"


def _short(path: str) -> str:
    return path[5:] if path.startswith("/dev/") else path


class ModemLink(SmsTransport):
    """A USB GSM modem as the ``modem`` transport.

    Parameters
    ----------
    port : str, optional
        The AT port, e.g. ``/dev/ttyUSB2`` (opened at the first :meth:`poll`), or ``"auto"``: found
        by probing the ttys :meth:`plugged` reports.
    baudrate : int, optional
        Line speed; USB modems ignore it.
    reopen_s : float, optional
        After a failure, seconds until the port is opened again (a named port, or the AT port
        found earlier after the modem refused set-up) or the ttys are probed again (none answered).
    probe_timeout_s : float, optional
        How long a tty has to answer ``AT`` with ``OK`` before it is skipped.
    report_keep_s : float, optional
        How long a sent message waits for the status reports of all its parts before it is forgotten.
    opener : callable, optional
        ``opener(path)`` returns an open, non-blocking pyserial-like port; by default
        ``serial.Serial(path, baudrate, timeout=0, write_timeout=0)``.
    **at_kwargs
        Passed to :class:`AtModem` (``ack_reports``, ``reassembly_age``).

    The caller polls at :meth:`next_deadline` (AT command timeouts, probe timeouts, reopen
    times) and, while a port is open, often anyway (the modem's bytes come at no deadline):
    the SMS worker polls every 0.1 s.
    """

    name = "modem"

    def __init__(self, port: str = "auto", *, baudrate: int = 115200, reopen_s: float = 5.0,
                 probe_timeout_s: float = 2.0, report_keep_s: float = REPORT_KEEP_S,
                 opener: Callable[[str], Any] | None = None, **at_kwargs) -> None:
        self.auto = port == "auto"
        self.configured = None if self.auto else port
        self.reopen_s, self.probe_timeout_s, self.report_keep_s = reopen_s, probe_timeout_s, report_keep_s
        self._opener = opener or (lambda path: serial.Serial(path, baudrate, timeout=0, write_timeout=0))
        self._at_kwargs = at_kwargs
        self._state = "absent"  # absent | probing | starting | ready | down
        self._closed = False
        self._ser: Any = None  # the AT port in use (starting, ready)
        self._at: AtModem | None = None
        self._pending = b""  # written by the dialogue, not yet taken by the port
        self._port: str | None = None  # the AT port in use, or found before a failure
        self._ttys: tuple[str, ...] = ()  # what hotplug last reported, as /dev paths
        self._candidates: list[str] = []  # probing: still to try, in order
        self._tried: list[str] = []  # probing: tried already
        self._probe: list | None = None  # probing: [port, path, deadline, bytes read]
        self._probe_notes: list[str] = []  # probing: why each tty was skipped
        self._reopen_at: float | None = None if self.auto else 0.0  # a named port opens at the first poll
        self._reason: str | None = None  # why not ready
        self._last_down: str | None = None  # the reason of the last Down since the last Up (no repeats)
        self._up = False
        self._signal: int | None = None
        self._registration: str | None = None
        self._events: list = []
        self._wake: float | None = None  # events are waiting for a poll since then
        self._msgs: dict[str, _Message] = {}  # in flight and waiting for reports, oldest first
        self._unwritten: set[str] = set()  # timed out before their PDU was written (for _go_down)

    # --- hotplug ------------------------------------------------------------------------------------------

    def plugged(self, ttys: tuple[str, ...], now: float) -> None:
        """A GSM modem appeared, or gained ttys; ``ttys`` are its serial nodes (``ttyUSB2`` or ``/dev/ttyUSB2``)."""
        if self._closed:
            return
        paths = tuple(_dev(t) for t in ttys)
        self._ttys = paths
        if not self.auto:
            if self._state in ("absent", "down"):
                self._reopen_at, self._wake = now, now  # the named port may be back: try at once
            return
        if self._state in ("starting", "ready"):
            return  # more ttys of the modem in use
        if self._state == "probing":
            self._candidates += [p for p in paths if p not in self._candidates and p not in self._tried]
            return
        if paths:
            self._start_probe(now)

    def unplugged(self, now: float) -> None:
        """The modem went away: the port is closed, ``Down`` comes at the next :meth:`poll`."""
        if self._closed:
            return
        where = self._port or (self._probe[1] if self._probe else None)
        if self._state in ("probing", "starting", "ready"):
            self._go_down(f"GSM modem{_on(where)}: unplugged", now, reopen=not self.auto)
            self._wake = now
        if self.auto:
            self._state, self._port, self._ttys, self._reopen_at = "absent", None, (), None
            self._candidates, self._tried, self._probe_notes = [], [], []

    # --- SmsTransport -------------------------------------------------------------------------------------

    def submit(self, msg_id: str, number: str, text: str, now: float) -> None:
        if self._state != "ready" or self._at is None:
            self._emit(NotSent(msg_id, f"GSM modem not ready: {self._why()}"), now)
            return
        try:
            parts = len(split_text(text)[1])
        except ProtocolError:
            parts = 1  # AtModem.send refuses it at once, with the reason
        self._msgs.pop(msg_id, None)
        self._msgs[msg_id] = _Message(parts, now)
        self._handle(self._at.send(number, text, msg_id, now), now, direct=True)
        self._flush(now)

    def unsent(self) -> list[str]:
        """At a stop: the messages of which nothing was written, taken back (see the module's docstring)."""
        taken = [ev.msg_id for ev in self._events if isinstance(ev, NotSent)]  # not polled yet: given here instead
        self._events = [ev for ev in self._events if not isinstance(ev, NotSent)]
        if self._at is not None:
            for msg_id in [m for m, o in self._msgs.items() if not o.accepted and not o.mrs]:
                if self._at.take_back(msg_id):
                    del self._msgs[msg_id]
                    taken.append(msg_id)
        return taken

    def poll(self, now: float) -> list:
        if not self._closed:
            if self._ser is None and self._reopen_at is not None and now >= self._reopen_at:
                self._reopen(now)
            if self._state == "probing":
                self._probe_step(now)
            if self._ser is not None and self._at is not None:
                self._io(now)
            self._forget_old(now)
        events, self._events, self._wake = self._events, [], None
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`poll` is due even if no byte arrives: events waiting, an AT timeout, a probe
        timeout, a reopen. While a port is open the caller polls often anyway (see the class)."""
        times = [t for t in (self._wake, self._reopen_at if self._ser is None else None,
                             self._probe[2] if self._probe else None,
                             self._at.next_deadline() if self._at is not None else None) if t is not None]
        return min(times, default=None)

    def close(self) -> None:
        self._closed = True
        self._drop()
        self._state, self._reopen_at = "absent", None

    def status(self) -> dict:
        """For the control API: state (absent, probing, starting, ready, down), the AT port, signal and
        registration as at the last set-up, and why not ready."""
        ready = self._state == "ready"
        return {"state": self._state, "port": self._port or (self._probe[1] if self._probe else None),
                "signal_dbm": self._signal if ready else None,
                "registration": self._registration if ready else None,
                "reason": None if ready else self._why()}

    # --- the port -----------------------------------------------------------------------------------------

    def _reopen(self, now: float) -> None:
        self._reopen_at = None
        if self.configured is not None:
            self._open(self.configured, now)
        elif self._port is not None:
            self._open(self._port, now)  # the AT port found before the modem refused set-up
        elif self._ttys:
            self._start_probe(now)  # no tty answered last time

    def _open(self, path: str, now: float) -> None:
        try:
            ser = self._opener(path)
        except _IO_ERRORS as exc:
            # a named port is tried again; in auto mode the node went away: wait for hotplug
            self._port = path
            self._go_down(f"GSM modem on {path}: cannot open: {exc}", now, reopen=not self.auto)
            return
        self._start_on(ser, path, now)

    def _start_on(self, ser: Any, path: str, now: float) -> None:
        self._ser, self._port, self._pending = ser, path, b""
        self._at = AtModem(**self._at_kwargs)
        self._state = "starting"
        self._reason = f"setting up the modem on {path}"
        self._handle(self._at.start(now), now)
        self._flush(now)

    def _io(self, now: float) -> None:
        try:
            data = _read_all(self._ser)
        except _IO_ERRORS as exc:
            self._lost(exc, now)
            return
        if data:
            self._handle(self._at.feed(data, now), now)
        if self._at is not None:
            self._handle(self._at.poll(now), now)
        self._flush(now)

    def _flush(self, now: float) -> None:
        if self._ser is None or self._at is None:
            return
        self._pending += self._at.outgoing()
        if not self._pending:
            return
        try:
            n = _write(self._ser, self._pending)
        except _IO_ERRORS as exc:
            self._lost(exc, now)
            return
        self._pending = self._pending[n:]

    def _lost(self, exc: BaseException, now: float) -> None:
        self._go_down(f"GSM modem on {self._port}: unplugged or failed: {exc}", now, reopen=not self.auto)

    def _drop(self) -> None:
        for port in (self._ser, self._probe[0] if self._probe else None):
            if port is not None:
                try:
                    port.close()
                except _IO_ERRORS:
                    pass  # gone already
        self._ser, self._at, self._probe, self._pending = None, None, None, b""

    def _go_down(self, reason: str, now: float, *, reopen: bool) -> None:
        """Close the port. A message in flight of which nothing was written to the modem (no part sent, no PDU
        after a prompt) is NotSent before the Down: it cannot have reached the network. The others get nothing:
        the Down makes them unknown (the outbox's rule 5)."""
        for msg_id in [m for m, o in self._msgs.items() if not o.accepted]:
            msg = self._msgs.pop(msg_id)
            if not msg.mrs and (msg_id in self._unwritten or (self._at is not None and not self._at.written(msg_id))):
                self._emit(NotSent(msg_id, f"not sent: {reason}"), now)
        self._unwritten.clear()
        self._drop()
        self._state, self._reason, self._up = "down", reason, False
        self._signal = self._registration = None
        self._candidates = []
        self._reopen_at = now + self.reopen_s if reopen else None
        if reason != self._last_down:
            self._last_down = reason
            self._emit(Down(reason), now)
            log.warning("%s", reason)
        else:
            log.debug("%s (again)", reason)

    # --- probing ------------------------------------------------------------------------------------------

    def _start_probe(self, now: float) -> None:
        self._state, self._candidates, self._tried, self._probe_notes = "probing", list(self._ttys), [], []
        self._port = None
        self._reason = "looking for the AT port among " + ", ".join(_short(p) for p in self._ttys)
        self._reopen_at, self._wake = None, now

    def _probe_step(self, now: float) -> None:
        while True:
            if self._probe is None:
                if not self._candidates:
                    notes = "; ".join(self._probe_notes) or "no ttys"
                    self._go_down(f"GSM modem: no tty answered AT ({notes})", now, reopen=True)
                    return
                path = self._candidates.pop(0)
                self._tried.append(path)
                try:
                    port = self._opener(path)
                except _IO_ERRORS as exc:
                    self._probe_notes.append(f"{_short(path)}: {exc}")
                    continue
                self._probe = [port, path, now + self.probe_timeout_s, b""]
                try:
                    _write(port, b"AT\r")
                except _IO_ERRORS as exc:
                    self._skip(f"{_short(path)}: {exc}")
                    continue
            port, path, deadline, got = self._probe
            try:
                got += _read_all(port)
            except _IO_ERRORS as exc:
                self._skip(f"{_short(path)}: {exc}")
                continue
            self._probe[3] = got[-1024:]  # a GPS tty chatters: the answer to AT is in the last lines
            if b"OK" in (line.strip() for line in re.split(rb"[\r\n]", got)):
                self._probe = None
                self._start_on(port, path, now)
                return
            if now < deadline:
                return
            self._skip(f"{_short(path)}: no OK within {self.probe_timeout_s:g} s")

    def _skip(self, note: str) -> None:
        self._probe_notes.append(note)
        try:
            self._probe[0].close()
        except _IO_ERRORS:
            pass
        self._probe = None

    # --- the dialogue's events ----------------------------------------------------------------------------

    def _handle(self, events: list, now: float, *, direct: bool = False) -> None:
        fatal: str | None = None
        for ev in events:
            if isinstance(ev, Ready):
                self._state, self._reason = "ready", None
                self._signal, self._registration = ev.signal_dbm, ev.registration
                if not self._up:
                    self._up, self._last_down = True, None
                    self._emit(Up(), now)
            elif isinstance(ev, ModemError):
                if self._at is not None and self._at.state == "failed":
                    fatal = ev.reason  # set-up failed: the last one is the cause
                else:
                    log.warning("GSM modem on %s: %s", self._port, ev.reason)
            elif isinstance(ev, Sent):
                self._sent(ev, now)
            elif isinstance(ev, SendFailed):
                if ev.reason.startswith(_CMGS_TIMEOUT):
                    # the modem stopped answering, and a hung modem is best reset: the port goes down and is
                    # opened again. With the PDU written the message's fate is unknown: nothing said (rule 5);
                    # without, nothing went and a retry cannot duplicate it (_go_down's NotSent, before its Down)
                    fatal = ev.reason
                    if ev.written:
                        self._msgs.pop(ev.msg_id, None)
                    else:
                        self._unwritten.add(ev.msg_id)
                else:
                    self._send_failed(ev, now, direct)
            elif isinstance(ev, Delivered):
                self._delivered(ev, now)
            elif isinstance(ev, Received):
                if not ev.complete:
                    log.warning("GSM modem: long message from %s came incomplete", ev.sender)
                self._emit(Inbound(ev.sender, ev.text, ev.timestamp.timestamp()), now)
        if fatal is not None:
            self._go_down(f"GSM modem on {self._port}: {fatal}", now, reopen=True)

    def _sent(self, ev: Sent, now: float) -> None:
        msg = self._msgs.get(ev.msg_id)
        if msg is None or msg.accepted:
            return
        msg.mrs[ev.part] = ev.mr
        if len(msg.mrs) >= msg.parts:
            msg.accepted, msg.since = True, now
            self._msgs[ev.msg_id] = self._msgs.pop(ev.msg_id)  # keep the oldest first
            self._emit(Accepted(ev.msg_id, msg.ref()), now)
            self._maybe_report(ev.msg_id, msg, now)

    def _send_failed(self, ev: SendFailed, now: float, direct: bool) -> None:
        msg = self._msgs.pop(ev.msg_id, None)
        if msg is None or msg.accepted:
            return
        if msg.mrs:
            went = sorted(msg.mrs)
            reason = (f"part{'s' if len(went) > 1 else ''} {','.join(map(str, went))} of {msg.parts} sent "
                      f"(TP-MR {msg.ref()}), then: {ev.reason}; not retried: the sent parts would go twice")
            self._emit(Rejected(ev.msg_id, reason, False), now)
        elif direct:
            self._emit(Rejected(ev.msg_id, ev.reason, False), now)  # a bad number or text: refused before sending
        else:
            self._emit(Rejected(ev.msg_id, ev.reason, retryable(ev.reason)), now)

    def _delivered(self, ev: Delivered, now: float) -> None:
        if ev.outcome == "pending":
            return
        msg_id, part = ev.msg_id, ev.part
        if not msg_id:  # a TP-MR the modem's dialogue does not know: sent before the port was opened again
            msg_id, part = next(((i, p) for i, m in self._msgs.items() if m.accepted
                                 for p, mr in m.mrs.items() if mr == ev.mr), ("", 0))
        msg = self._msgs.get(msg_id)
        if msg is None:
            # sent before the core started: a one-part message's ref is its TP-MR, so the outbox can still match
            # it (a part of a longer one cannot be told apart; its message stays sent)
            self._emit(Report(str(ev.mr), str(ev.status), ev.outcome == "delivered"), now)
            return
        msg.outcomes[part] = (ev.status, ev.outcome == "delivered")
        self._maybe_report(msg_id, msg, now)

    def _maybe_report(self, msg_id: str, msg: _Message, now: float) -> None:
        if not msg.accepted or len(msg.outcomes) < msg.parts:
            return
        failed = [msg.outcomes[p][0] for p in sorted(msg.outcomes) if not msg.outcomes[p][1]]
        del self._msgs[msg_id]
        self._emit(Report(msg.ref(), str(failed[0]) if failed else "0", not failed), now)

    def _forget_old(self, now: float) -> None:
        limit, old = now - self.report_keep_s, []
        for msg_id, msg in self._msgs.items():  # accepted ones are in the order they were accepted
            if msg.accepted:
                if msg.since >= limit:
                    break
                old.append(msg_id)
        for msg_id in old:
            del self._msgs[msg_id]

    # --- helpers ------------------------------------------------------------------------------------------

    def _emit(self, event: Any, now: float) -> None:
        self._events.append(event)
        if self._wake is None:
            self._wake = now

    def _why(self) -> str:
        if self._state == "absent":
            return "no modem plugged in" if self.auto else f"{self.configured} not opened yet"
        return self._reason or self._state


def _on(path: str | None) -> str:
    return f" on {path}" if path else ""


def _write(port: Any, data: bytes) -> int:
    """Write what the port takes now, never waiting: pyserial's own write spins while the
    tty's buffer is full (a stalled modem), so the file descriptor is written directly."""
    fileno = getattr(port, "fileno", None)
    if fileno is None:
        return port.write(data) or 0  # a test double
    try:
        return os.write(fileno(), data)
    except BlockingIOError:
        return 0


def _read_all(port: Any) -> bytes:
    """What the port has now, without waiting; a hung-up tty raises (EIO, or readable with no data)."""
    data = b""
    while True:
        chunk = port.read(_READ_CHUNK)
        data += chunk
        if len(chunk) < _READ_CHUNK:
            return data
