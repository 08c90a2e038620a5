"""The AT command dialogue with a GSM modem in PDU mode (3GPP TS 27.005 / 27.007).

Sans-I/O: :class:`AtModem` takes the modem's bytes and ``now`` and returns events;
the bytes to write come from :meth:`AtModem.outgoing`, and the caller wakes it at
:meth:`AtModem.next_deadline` with :meth:`AtModem.poll` so that commands time out.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Union

from appliance.errors import ProtocolError
from appliance.sms.pdu import Reassembler, at_cmgs_pdus, decode_deliver, decode_status_report

COMMAND_TIMEOUT = 5.0
CMGS_TIMEOUT = 60.0  # the network may take long to accept a submit

CMS_ERRORS = {
    1: "unassigned number", 8: "operator determined barring", 21: "short message transfer rejected",
    27: "destination out of service", 28: "unidentified subscriber", 29: "facility rejected",
    38: "network out of order", 41: "temporary failure", 42: "congestion",
    50: "requested facility not subscribed", 96: "invalid mandatory information",
    300: "ME failure", 302: "operation not allowed", 303: "operation not supported",
    304: "invalid PDU mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
    313: "SIM failure", 321: "invalid memory index", 322: "SIM memory full",
    330: "SMSC address unknown", 331: "no network service", 332: "network timeout",
    340: "no +CNMA acknowledgement expected", 500: "unknown error"}
CME_ERRORS = {
    3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
    11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure", 14: "SIM busy",
    15: "SIM wrong", 16: "incorrect password", 30: "no network service", 31: "network timeout",
    100: "unknown error"}
REGISTRATION = {0: "not registered", 1: "registered (home)", 2: "searching", 3: "denied",
                4: "unknown", 5: "registered (roaming)"}


@dataclass(frozen=True)
class Ready:
    """The modem is set up: signal in dBm (None when the modem says 99, unknown)."""

    signal_dbm: int | None
    registration: str


@dataclass(frozen=True)
class ModemError:
    """The modem failed or cannot be used; ``reason`` says why in words."""

    reason: str


@dataclass(frozen=True)
class Sent:
    """Part ``part`` (1-based) of ``msg_id`` was accepted by the network with TP-MR ``mr``."""

    msg_id: str
    part: int
    mr: int


@dataclass(frozen=True)
class SendFailed:
    """The message could not be sent; the parts not yet sent are dropped. ``written``: a PDU of it had gone to
    the modem (a timeout then leaves its fate unknown); False: nothing of it can have reached the network."""

    msg_id: str
    reason: str
    written: bool = False


@dataclass(frozen=True)
class Delivered:
    """A status report for one part: TP-ST and its outcome (delivered/pending/failed). ``msg_id`` is "" and
    ``part`` 0 for a TP-MR this dialogue did not send (before a reset or a restart): ``mr`` says which."""

    msg_id: str
    part: int
    status: int
    outcome: str
    mr: int = -1


@dataclass(frozen=True)
class Received:
    """An inbound message, long ones joined; ``complete`` is False for one whose
    missing parts did not come within the reassembly age (the text has what came)."""

    sender: str
    text: str
    timestamp: datetime
    complete: bool = True


Event = Union[Ready, ModemError, Sent, SendFailed, Delivered, Received]


@dataclass
class _Command:
    text: str
    timeout: float
    on_line: Callable[[str], None] = lambda line: None
    on_done: Callable[[str | None], None] = lambda error: None  # error text or None on OK
    pdu: str | None = None  # for +CMGS: hex written after the "> " prompt
    msg_id: str | None = None
    lines: list[str] = field(default_factory=list)


def error_text(line: str) -> str | None:
    """Name a final error line (``ERROR``, ``+CME ERROR: n``, ``+CMS ERROR: n``); None if not one."""
    if line == "ERROR":
        return "ERROR"
    for prefix, table in (("+CME ERROR:", CME_ERRORS), ("+CMS ERROR:", CMS_ERRORS)):
        if line.startswith(prefix):
            code = line[len(prefix):].strip()
            name = table.get(int(code), "unknown error") if code.isdigit() else code
            return f"{prefix[:-1]} {code}: {name}"
    return None


class AtModem:
    """The AT dialogue: one command at a time, unsolicited results handled in between.

    Parameters
    ----------
    ack_reports : bool, optional
        Select phase 2+ (``AT+CSMS=1``) so that each ``+CDS`` must be acknowledged
        with ``AT+CNMA``; off by default, when the modem acknowledges by itself.
    reassembly_age : float, optional
        Seconds a long inbound message may wait for its missing parts.
    """

    def __init__(self, *, ack_reports: bool = False, reassembly_age: float = 24 * 3600.0) -> None:
        self.ack_reports = ack_reports
        self.state = "idle"  # idle -> init -> ready | failed
        self._queue: deque[_Command] = deque()
        self._current: _Command | None = None
        self._last: _Command | None = None  # the command that just finished, for on_done
        self._registration = "unknown"
        self._deadline: float | None = None
        self._await_prompt = False
        self._out, self._buf = bytearray(), bytearray()
        self._events: list[Event] = []
        self._pdu_for: Callable[[str], None] | None = None  # the next line is a PDU for this
        self._sent: dict[int, tuple[str, int]] = {}  # TP-MR -> (msg_id, part)
        self._written: set[str] = set()  # messages with a PDU given to the modem (after its "> " prompt)
        self._ref, self._signal = 0, None  # concatenation reference; dBm from +CSQ
        self._reassembler = Reassembler(reassembly_age)
        self._partial: dict[tuple[str, int, int], tuple[float, datetime]] = {}  # first seen, stamp

    # --- the caller's side ------------------------------------------------------------

    def start(self, now: float) -> list[Event]:
        """Queue the init sequence; :class:`Ready` or :class:`ModemError` follows."""
        self.state = "init"
        steps: list[tuple[str, Callable[[str], None] | None, Callable[[str | None], None] | None]] = [
            ("ATE0", None, None), ("AT+CMEE=1", None, None),
            ("AT+CPIN?", None, self._cpin_done), ("AT+CSQ", self._csq_line, None),
            ("AT+CREG?", None, self._creg_done), ("AT+CMGF=0", None, None),
        ]
        if self.ack_reports:
            steps.append(("AT+CSMS=1", None, None))
        steps.append(("AT+CNMI=2,1,0,1,0", None, self._init_done))
        for text, on_line, on_done in steps:
            self._queue.append(_Command(text, COMMAND_TIMEOUT, on_line or (lambda line: None),
                                        self._init_step(text, on_done)))
        return self._run(now)

    def send(self, number: str, text: str, msg_id: str, now: float) -> list[Event]:
        """Queue a message, one ``AT+CMGS`` per part, each asking for a status report.

        Parameters
        ----------
        number, text, msg_id : str
            Destination (``+8613912345678`` or national), whole text, the caller's id.
        now : float
            The caller's clock.

        Returns
        -------
        list[Event]
            Events due now: SendFailed at once for a bad number or text or an
            unusable modem; later :meth:`feed` gives Sent per part, or one
            SendFailed that drops the parts not yet sent.
        """
        if self.state == "failed":
            return [SendFailed(msg_id, "modem not usable")]
        try:
            parts = at_cmgs_pdus(number, text, ref=self._ref)
        except ProtocolError as exc:
            return [SendFailed(msg_id, str(exc))]
        self._ref = (self._ref + 1) % 256
        for seq, (length, hexpdu) in enumerate(parts, 1):
            cmd = _Command(f"AT+CMGS={length}", CMGS_TIMEOUT, pdu=hexpdu, msg_id=msg_id)
            cmd.on_line = self._cmgs_line(msg_id, seq)
            cmd.on_done = self._cmgs_done(msg_id)
            self._queue.append(cmd)
        return self._run(now)

    def feed(self, data: bytes, now: float) -> list[Event]:
        """Take bytes read from the modem.

        Parameters
        ----------
        data, now : bytes, float
            Any chunk (lines may be split anywhere); the caller's clock.

        Returns
        -------
        list[Event]
            The events these bytes complete; garbled answers and unreadable PDUs
            come as ModemError events, never as exceptions, so the dialogue goes on.
        """
        self._buf += data
        while True:
            while self._buf[:1] in (b"\r", b"\n"):
                del self._buf[0]
            if self._await_prompt and self._buf[:1] == b">":
                del self._buf[: 2 if self._buf[1:2] == b" " else 1]
                self._await_prompt = False
                self._out += self._current.pdu.encode() + b"\x1a"
                self._written.add(self._current.msg_id)
                continue
            end = min((i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0), default=-1)
            if end < 0:
                break
            line = self._buf[:end].decode("ascii", "replace").strip()
            del self._buf[: end + 1]
            if line:
                self._line(line, now)
        return self._run(now)

    def poll(self, now: float) -> list[Event]:
        """Time out the current command, and give up long messages missing parts, if due."""
        for lost in self._reassembler.expire(now):
            _, stamp = self._partial.pop((lost.sender, lost.ref, lost.total))
            text = "".join(lost.parts[i] for i in sorted(lost.parts))
            self._events.append(Received(lost.sender, text, stamp, complete=False))
        cmd = self._current
        if cmd is not None and self._deadline is not None and now >= self._deadline:
            self._current, self._deadline, self._await_prompt = None, None, False
            self._last = cmd
            if cmd.pdu is not None:
                self._out += b"\x1b"  # leave PDU entry so that the next command is heard
            cmd.on_done(f"no answer to {cmd.text} within {cmd.timeout:g} s")
        return self._run(now)

    def written(self, msg_id: str) -> bool:
        """True once a PDU of ``msg_id`` has gone out after the modem's prompt: from then on the network may have
        it. Before that (the ``AT+CMGS`` line written, no prompt yet) nothing of it can have been sent."""
        return msg_id in self._written

    def take_back(self, msg_id: str) -> bool:
        """Drop the queued ``AT+CMGS`` of ``msg_id`` if none of them has been written: True when taken back (no
        PDU of it is written from now on). False when one is the current command (its line went, the prompt may
        come), a PDU of it went, or nothing of it is queued."""
        if msg_id in self._written or (self._current is not None and self._current.msg_id == msg_id):
            return False
        kept = deque(c for c in self._queue if c.msg_id != msg_id)
        if len(kept) == len(self._queue):
            return False
        self._queue = kept
        return True

    def outgoing(self) -> bytes:
        """The bytes to write to the modem now (taken; the next call returns only new ones)."""
        out, self._out = bytes(self._out), bytearray()
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`poll` must be called next, on the caller's clock; None if nothing waits."""
        # Reassembler.expire drops only what is strictly older than max_age.
        times = [math.nextafter(t + self._reassembler.max_age, math.inf) for t, _ in self._partial.values()]
        return min(times + ([] if self._deadline is None else [self._deadline]), default=None)

    # --- internals --------------------------------------------------------------------

    def _run(self, now: float) -> list[Event]:
        if self._current is None and self._queue:
            self._current = cmd = self._queue.popleft()
            self._deadline = now + cmd.timeout
            self._await_prompt = cmd.pdu is not None
            self._out += cmd.text.encode() + b"\r"
        events, self._events = self._events, []
        return events

    def _line(self, line: str, now: float) -> None:
        if self._pdu_for is not None:
            handler, self._pdu_for = self._pdu_for, None
            if line != "OK" and error_text(line) is None:  # else the PDU line never came
                handler(line)
                return
        if line.startswith("+CMTI:"):
            index = line.split(",")[-1].strip()
            cmd = _Command(f"AT+CMGR={index}", COMMAND_TIMEOUT)
            cmd.on_line = lambda ln: self._cmgr_line(ln, now)
            cmd.on_done = lambda err, i=index: self._cmgr_done(err, i)
            self._queue.append(cmd)
            return
        if line.startswith("+CDS:"):
            self._pdu_for = self._status_report
            return
        cmd = self._current
        if cmd is None:
            return  # an unsolicited line we do not use (RING, +CREG: n, ...)
        if line == cmd.text:
            return  # echo, before ATE0 takes effect
        error = error_text(line)
        if line == "OK" or error is not None:
            self._current, self._deadline, self._await_prompt = None, None, False
            self._last = cmd
            cmd.on_done(error)
            return
        cmd.lines.append(line)
        try:
            cmd.on_line(line)
        except (ValueError, IndexError):
            self._events.append(ModemError(f"garbled answer {line!r} to {cmd.text}"))

    def _init_step(self, text: str, then: Callable[[str | None], None] | None) -> Callable[[str | None], None]:
        def done(error: str | None) -> None:
            if self.state != "init":
                return
            if error is not None:
                self._fail(f"{text} failed: {error}")
            elif then is not None:
                then(None)
        return done

    def _fail(self, reason: str) -> None:
        self.state = "failed"
        self._events.append(ModemError(reason))
        failed = dict.fromkeys(c.msg_id for c in self._queue if c.msg_id is not None)
        self._events += [SendFailed(m, f"modem not usable: {reason}") for m in failed]
        self._queue.clear()

    def _cpin_done(self, _: str | None) -> None:
        answer = next(iter(self._last.lines), "")
        status = answer.partition(":")[2].strip()
        if status != "READY":
            self._fail({"SIM PIN": "PIN required", "SIM PUK": "PUK required"}.get(
                status, f"SIM not ready: {status or 'no answer'}"))

    def _csq_line(self, line: str) -> None:
        if line.startswith("+CSQ:"):
            rssi = int(line[5:].split(",")[0])
            self._signal = None if rssi == 99 else -113 + 2 * min(rssi, 31)

    def _creg_done(self, _: str | None) -> None:
        answer = next(iter(self._last.lines), "")
        try:
            stat = int(answer.partition(":")[2].split(",")[1])
        except (IndexError, ValueError):
            self._fail(f"garbled registration answer {answer!r}")
            return
        self._registration = REGISTRATION.get(stat, f"status {stat}")
        if stat not in (1, 5):
            signal = "" if self._signal is not None else ", signal unknown"
            self._fail(f"{self._registration}{signal}")

    def _init_done(self, _: str | None) -> None:
        self.state = "ready"
        self._events.append(Ready(self._signal, self._registration))

    def _cmgs_line(self, msg_id: str, seq: int) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            if line.startswith("+CMGS:"):
                mr = int(line[6:].split(",")[0])
                self._sent[mr] = (msg_id, seq)
                self._events.append(Sent(msg_id, seq, mr))
        return on_line

    def _cmgs_done(self, msg_id: str) -> Callable[[str | None], None]:
        def on_done(error: str | None) -> None:
            written = msg_id in self._written
            if error is not None or not any(c.msg_id == msg_id for c in self._queue):
                self._written.discard(msg_id)  # finished: its outcome is known
            if error is not None:
                self._queue = deque(c for c in self._queue if c.msg_id != msg_id)
                self._events.append(SendFailed(msg_id, error, written))
        return on_done

    def _cmgr_line(self, line: str, now: float) -> None:
        if line.startswith("+CMGR:"):
            self._pdu_for = lambda pdu: self._deliver(pdu, now)

    def _deliver(self, pdu: str, now: float) -> None:
        try:
            part = decode_deliver(pdu)
        except ProtocolError as exc:
            self._events.append(ModemError(f"unreadable stored message: {exc}"))
            return
        key = None if part.concat is None else (part.sender, part.concat.ref, part.concat.total)
        if key is not None:
            self._partial.setdefault(key, (now, part.timestamp))
        text = self._reassembler.feed(part, now)
        if text is not None:
            stamp = part.timestamp if key is None else self._partial.pop(key)[1]
            self._events.append(Received(part.sender, text, stamp))

    def _cmgr_done(self, error: str | None, index: str) -> None:
        if error is not None:
            self._events.append(ModemError(f"AT+CMGR={index} failed: {error}"))
        # Delete even after a failed read: a stuck message would fill the SIM.
        self._queue.appendleft(_Command(f"AT+CMGD={index}", COMMAND_TIMEOUT, on_done=self._report_error))

    def _report_error(self, error: str | None) -> None:
        self._events += [ModemError(error)] if error is not None else []

    def _status_report(self, pdu: str) -> None:
        if self.ack_reports:
            self._queue.appendleft(_Command("AT+CNMA", COMMAND_TIMEOUT, on_done=self._report_error))
        try:
            report = decode_status_report(pdu)
        except ProtocolError as exc:
            self._events.append(ModemError(f"unreadable status report: {exc}"))
            return
        sent = self._sent.get(report.mr)
        if sent is not None and report.outcome != "pending":
            del self._sent[report.mr]
        msg_id, part = sent if sent is not None else ("", 0)
        self._events.append(Delivered(msg_id, part, report.status, report.outcome, report.mr))
