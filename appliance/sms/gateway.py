"""CMPP 2.0 and SMGP 3.0 client sessions with a carrier's SMS gateway: sans-I/O.

:class:`GatewaySession` takes the gateway's bytes and ``now`` (monotonic
seconds) and returns transport events; the bytes to write come from
:meth:`GatewaySession.outgoing`, and the caller wakes it at
:meth:`GatewaySession.next_deadline` with :meth:`GatewaySession.poll`. The
socket is moved by :mod:`appliance.sms.gatewaylink`. The session never reads
the clock: the login timestamp comes from the wall-clock value given to
:meth:`GatewaySession.connect`.

Outcomes. When the link breaks (or a login fails) every message of which no part
was written yet comes back as ``NotSent`` before the ``Down`` (the outbox queues it
again without a try: it must not wait here, across an outage the outbox cannot
see, and go out later while the outbox has already made it ``unknown``); a submit
while the session is down or closed is ``NotSent`` at the next :meth:`poll`. A
message with a part written and not answered (or answered, and more parts to go)
comes back after the ``Down`` as ``Rejected(retryable=True, "link lost before the
gateway answered")``: the gateway may or may not have it, the ``Down`` has made it
``unknown`` and the outbox finds it no longer sending, so the ``Rejected`` changes
nothing; its parts not yet written are dropped. :meth:`GatewaySession.unsent`
takes back, at a stop, the messages of which nothing was written.

Long messages are several submits; the message is ``Accepted`` when every part
is, with the first part's Msg_Id as ``ref``. Reports of later parts are mapped
to that ref only when they say "not delivered" (a delivered later part adds
nothing); the map lives in memory, so after a restart later parts' reports
carry their own id and the outbox ignores them. If a later part is refused, or
the link breaks before every part is answered, the whole message is
``Rejected`` (parts already accepted may still reach the phone: a retry can
duplicate them). Inbound long messages are joined by their UDH (8- or 16-bit
reference), at most ``_MAX_PARTIAL`` unfinished ones kept, the oldest dropped.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from appliance.errors import ConfigError, ProtocolError
from appliance.sms import cmpp, smgp
from appliance.sms.transport import Accepted, Down, Inbound, NotSent, Rejected, Report, Up

WINDOW = 16
RESPONSE_TIMEOUT = 60.0
IDLE_TEST = 180.0
BACKOFF = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0)
CHINA = timezone(timedelta(hours=8))  # gateways check the timestamp in Beijing time
LINK_LOST = "link lost before the gateway answered"
_MAX_ALIASES = 10000  # part refs of long messages kept for report mapping
_MAX_PARTIAL = 256  # unfinished inbound long messages kept (a lost part must not leak memory)

CMPP_LOGIN = {1: "bad message structure", 2: "bad source address", 3: "authentication failed",
              4: "version too high"}
SMGP_LOGIN = {1: "system busy", 2: "too many connections", 10: "bad message structure", 20: "bad IP address",
              21: "authentication failed", 22: "version too high"}
CMPP_SUBMIT = {1: "bad message structure", 2: "bad command word", 3: "duplicate sequence number",
               4: "bad message length", 5: "bad fee code", 6: "message too long", 7: "bad service id",
               8: "flow control: too fast"}
SMGP_SUBMIT = {1: "system busy", 2: "too many connections", 10: "bad message structure", 23: "bad message type",
               27: "bad message format", 29: "bad message length", 32: "routing error", 36: "bad service id",
               39: "bad source number", 40: "bad destination number", 42: "bad SP code"}
_RETRYABLE = {"cmpp": {8}, "smgp": {1, 2}}


@dataclass
class Credentials:
    """Account at the gateway: ``account`` is Source_Addr (CMPP, 6) or ClientID (SMGP, 8); ``src_id`` our number."""
    account: str
    secret: str
    src_id: str
    service_id: str = ""


@dataclass
class _Message:
    msg_id: str
    parts: int
    refs: dict[int, str] = field(default_factory=dict)  # part number -> gateway Msg_Id text


def _udh_concat(content: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """``((ref, total, number), body)`` of a UDH with 8- or 16-bit concatenation, else ``(None, content)``."""
    if not content:
        return None, content
    end = 1 + content[0]
    pos, concat = 1, None
    while pos + 2 <= min(end, len(content)):
        iei, size = content[pos], content[pos + 1]
        data = content[pos + 2:pos + 2 + size]
        if iei == 0 and size == 3:
            concat = (data[0], data[1], data[2])
        elif iei == 8 and size == 4:
            concat = ((data[0] << 8) | data[1], data[2], data[3])
        pos += 2 + size
    return concat, content[end:]


class GatewaySession:
    """One login session with a CMPP 2.0 or SMGP 3.0 gateway (``protocol`` "cmpp" or "smgp").

    Parameters
    ----------
    protocol : str
        "cmpp" or "smgp".
    credentials : Credentials
        Account, shared secret, our source number.
    window : int, optional
        Most submits written and not yet answered; more wait in a queue.
    response_timeout : float, optional
        Seconds a login, submit or active test may go unanswered before the link counts as broken.
    idle_test : float, optional
        Seconds without a PDU from the gateway before we send an active test.
    backoff : tuple of float, optional
        Reconnect delays after each consecutive failure; the last one repeats.
    """

    def __init__(self, protocol: str, credentials: Credentials, *, window: int = WINDOW,
                 response_timeout: float = RESPONSE_TIMEOUT, idle_test: float = IDLE_TEST,
                 backoff: tuple[float, ...] = BACKOFF, tz: timezone = CHINA) -> None:
        if protocol not in ("cmpp", "smgp"):
            raise ConfigError(f"sms gateway protocol must be cmpp or smgp, got {protocol!r}")
        self.protocol, self.cred, self.window = protocol, credentials, window
        self.response_timeout, self.idle_test, self.backoff, self.tz = response_timeout, idle_test, backoff, tz
        self.codec = cmpp if protocol == "cmpp" else smgp
        self.state = "closed"  # closed -> login -> ready -> down (-> login on reconnect)
        self._decoder = self.codec.Decoder()
        self._out = bytearray()
        self._seq = 0
        self._queue: deque[tuple[str, int, object]] = deque()  # (msg_id, part number, Submit PDU)
        self._inflight: dict[int, tuple[str, int, float]] = {}  # seq -> (msg_id, part, deadline)
        self._messages: dict[str, _Message] = {}
        self._aliases: OrderedDict[str, str] = OrderedDict()  # later part ref -> first part ref
        self._partial: dict[tuple, dict[int, bytes]] = {}  # inbound long messages by (sender, ref, total)
        self._login_deadline: float | None = None
        self._test_deadline: float | None = None  # our active test awaiting its response
        self._last_rx = 0.0
        self._failures = 0
        self._outage = False  # Down sent and no Up since
        self._reconnect_at: float | None = None
        self._long_ref = 0
        self._refused: list[NotSent] = []  # submits while down or closed, said at the next poll
        self._why_down = "the session is not started"

    # -- link life -------------------------------------------------------------------------------------------------
    def connect(self, now: float, wall: float) -> bytes:
        """Start a login on a fresh connection; return the login PDU to write first (not in :meth:`outgoing`)."""
        stamp = int(datetime.fromtimestamp(wall, self.tz).strftime("%m%d%H%M%S"))
        if self.protocol == "cmpp":
            pdu = cmpp.Connect.create(self.cred.account, self.cred.secret, stamp)
        else:
            pdu = smgp.Login.create(self.cred.account, self.cred.secret, stamp)
        self.state, self._reconnect_at = "login", None
        self._decoder, self._out = self.codec.Decoder(), bytearray()
        self._login_deadline, self._test_deadline, self._last_rx = now + self.response_timeout, None, now
        return self.codec.encode(pdu, self._next_seq())

    def connection_lost(self, now: float, reason: str) -> list:
        """The socket broke or could not be opened: unwritten messages NotSent, Down (once per outage), messages
        with a part written Rejected (see the module's docstring), a reconnect after the next backoff step."""
        return self._down(now, reason)

    def reconnect_due(self, now: float) -> bool:
        """True when the driver should open a new connection and call :meth:`connect`."""
        return self.state in ("down", "closed") and self._reconnect_at is not None and now >= self._reconnect_at

    def start(self, now: float) -> None:
        """Ask for the first connection at ``now``."""
        self._reconnect_at = now

    def close(self) -> bytes:
        """Log out politely (Terminate / Exit); return the bytes to write before closing."""
        frame = b""
        if self.state == "ready":
            bye = cmpp.Terminate() if self.protocol == "cmpp" else smgp.Exit()
            frame = self.codec.encode(bye, self._next_seq())
        self.state, self._reconnect_at, self._why_down = "closed", None, "the session is closed"
        return frame

    # -- the transport face --------------------------------------------------------------------------------------
    def submit(self, msg_id: str, number: str, text: str, now: float) -> None:
        """Queue ``text`` to ``number`` as one or more submits; the outcome comes from :meth:`poll`/:meth:`feed`.
        While the session is down or closed nothing is queued: ``NotSent`` comes at the next :meth:`poll`."""
        connecting = self.state == "closed" and self._reconnect_at is not None  # the first connection is due
        if self.state not in ("login", "ready") and not connecting:
            self._refused.append(NotSent(msg_id, f"not sent: {self._why_down}"))
            return
        if self.protocol == "cmpp":
            template = cmpp.Submit([number], b"", self.cred.src_id, service_id=self.cred.service_id,
                                   msg_src=self.cred.account)
        else:
            template = smgp.Submit([number], b"", self.cred.src_id, service_id=self.cred.service_id)
        self._long_ref = (self._long_ref + 1) & 0xFF
        parts = self.codec.long_submits(template, text, self._long_ref)
        self._messages[msg_id] = _Message(msg_id, len(parts))
        self._queue.extend((msg_id, i, p) for i, p in enumerate(parts, 1))
        self._pump(now)

    def unsent(self) -> list[str]:
        """At a stop: the messages of which no part was written, taken back (never written after this)."""
        taken = [ev.msg_id for ev in self._refused] + self._unwritten()
        self._refused = []
        for msg_id in taken:
            self._messages.pop(msg_id, None)
        gone = set(taken)
        self._queue = deque(q for q in self._queue if q[0] not in gone)
        return taken

    def outgoing(self) -> bytes:
        """Bytes to write to the gateway, taken once."""
        out, self._out = bytes(self._out), bytearray()
        return out

    def feed(self, data: bytes, now: float, wall: float | None = None) -> list:
        """Bytes from the gateway; ``wall`` (default ``now``) stamps inbound messages."""
        try:
            pdus = self._decoder.feed(data)
        except ProtocolError as exc:
            return self._down(now, f"{self.protocol.upper()} stream broken: {exc}")
        events: list = []
        self._last_rx = now
        for seq, pdu in pdus:
            events += self._handle(seq, pdu, now, now if wall is None else wall)
        self._pump(now)
        return events

    def poll(self, now: float) -> list:
        """Timeouts and keep-alives at ``now``; the NotSent of submits while down."""
        events: list = self._refused
        self._refused = []
        if self.state == "login" and self._login_deadline is not None and now >= self._login_deadline:
            return events + self._down(now, f"no login response in {self.response_timeout:g} s")
        if self.state != "ready":
            return events
        late = [s for s, (_, _, d) in self._inflight.items() if now >= d]
        if late:
            return events + self._down(now, f"no submit response in {self.response_timeout:g} s "
                                            f"(sequence {min(late)})")
        if self._test_deadline is not None and now >= self._test_deadline:
            return events + self._down(now, f"no active test response in {self.response_timeout:g} s")
        if self._test_deadline is None and now >= self._last_rx + self.idle_test:
            self._out += self.codec.encode(self.codec.ActiveTest(), self._next_seq())
            self._test_deadline = now + self.response_timeout
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`poll` is next needed even if no byte arrives."""
        times = [d for _, _, d in self._inflight.values()]
        if self.state == "login" and self._login_deadline is not None:
            times.append(self._login_deadline)
        if self.state == "ready":
            times.append(self._test_deadline if self._test_deadline is not None else self._last_rx + self.idle_test)
        if self.state in ("down", "closed") and self._reconnect_at is not None:
            times.append(self._reconnect_at)
        return min(times) if times else None

    @property
    def in_flight(self) -> int:
        """Submits written and not yet answered."""
        return len(self._inflight)

    @property
    def queued(self) -> int:
        """Submit PDUs waiting for room in the window."""
        return len(self._queue)

    # -- inside --------------------------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    def _pump(self, now: float) -> None:
        while self.state == "ready" and self._queue and len(self._inflight) < self.window:
            msg_id, part, pdu = self._queue.popleft()
            seq = self._next_seq()
            self._out += self.codec.encode(pdu, seq)
            self._inflight[seq] = (msg_id, part, now + self.response_timeout)

    def _unwritten(self) -> list[str]:
        """Messages of which every part is still queued, in the order submitted."""
        queued: dict[str, int] = {}
        for msg_id, _, _ in self._queue:
            queued[msg_id] = queued.get(msg_id, 0) + 1
        return [m for m, n in queued.items() if m in self._messages and n == self._messages[m].parts]

    def _down(self, now: float, reason: str) -> list:
        # NotSent before the Down: the outbox queues them again before the Down makes the rest unknown
        events: list = self._refused + [NotSent(m, f"not sent: {reason}") for m in self._unwritten()]
        self._refused = []
        if not self._outage:  # one Down per outage, not per failed retry
            events.append(Down(reason))
        self._outage, self._why_down = True, reason
        not_sent = {ev.msg_id for ev in events if isinstance(ev, NotSent)}
        # a part written (answered or not): the gateway may have it, and the parts left must not go out alone
        events += [Rejected(m, LINK_LOST, True) for m in sorted(set(self._messages) - not_sent)]
        self._messages.clear()
        self._queue.clear()
        self._inflight.clear()
        delay = self.backoff[min(self._failures, len(self.backoff) - 1)]
        self._failures += 1
        self.state, self._reconnect_at, self._test_deadline = "down", now + delay, None
        return events

    def _handle(self, seq: int, pdu: object, now: float, wall: float) -> list:
        c = self.codec
        if isinstance(pdu, (cmpp.ConnectResp, smgp.LoginResp)):
            return self._login_resp(pdu, now)
        if isinstance(pdu, (cmpp.DeliverResp, smgp.DeliverResp)):
            return []  # we never send a Deliver; a stray response is harmless
        if isinstance(pdu, (cmpp.SubmitResp, smgp.SubmitResp)):
            return self._submit_resp(seq, pdu)
        if isinstance(pdu, c.Deliver):
            return self._deliver(seq, pdu, wall)
        if isinstance(pdu, c.ActiveTest):
            self._out += c.encode(c.ActiveTestResp(), seq)
        elif isinstance(pdu, c.ActiveTestResp):
            self._test_deadline = None
        elif isinstance(pdu, (cmpp.Terminate, smgp.Exit)):
            self._out += c.encode(cmpp.TerminateResp() if self.protocol == "cmpp" else smgp.ExitResp(), seq)
            return self._down(now, "the gateway ended the session")
        return []

    def _login_resp(self, pdu: object, now: float) -> list:
        if self.state != "login":
            return []
        table = CMPP_LOGIN if self.protocol == "cmpp" else SMGP_LOGIN
        if pdu.status != 0:
            reason = table.get(pdu.status, "refused")
            return self._down(now, f"{self.protocol.upper()} login refused: {reason} (status {pdu.status})")
        self.state, self._failures, self._login_deadline, self._outage = "ready", 0, None, False
        return [Up()]

    def _submit_resp(self, seq: int, pdu: object) -> list:
        entry = self._inflight.pop(seq, None)
        if entry is None:
            return []  # answer to a submit of an earlier link, already rejected
        msg_id, part, _ = entry
        msg = self._messages.get(msg_id)
        if msg is None:
            return []
        code = pdu.result if self.protocol == "cmpp" else pdu.status
        if code != 0:
            del self._messages[msg_id]
            self._queue = deque(q for q in self._queue if q[0] != msg_id)  # the rest would be useless
            table = CMPP_SUBMIT if self.protocol == "cmpp" else SMGP_SUBMIT
            reason = f"{self.protocol.upper()} submit refused: {table.get(code, 'error')} (result {code})"
            return [Rejected(msg_id, reason, code in _RETRYABLE[self.protocol])]
        msg.refs[part] = self._ref(pdu.msg_id)
        if len(msg.refs) < msg.parts:
            return []
        del self._messages[msg_id]
        first = msg.refs[1]
        for n in range(2, msg.parts + 1):
            self._aliases[msg.refs[n]] = first
        while len(self._aliases) > _MAX_ALIASES:
            self._aliases.popitem(last=False)
        return [Accepted(msg_id, first)]

    def _ref(self, msg_id: int | bytes) -> str:
        """Msg_Id as text: decimal for CMPP's 64-bit integer, 20 hex digits for SMGP's 10 BCD octets."""
        return str(msg_id) if isinstance(msg_id, int) else msg_id.hex()

    def _deliver(self, seq: int, pdu: object, wall: float) -> list:
        c = self.codec
        self._out += c.encode(c.DeliverResp(pdu.msg_id, 0), seq)  # acknowledge first: the gateway retries otherwise
        if pdu.report is not None:
            ref = self._ref(pdu.report.msg_id)
            stat = pdu.report.stat.strip()
            delivered = stat.upper() == "DELIVRD"
            if ref in self._aliases:
                if delivered:
                    return []
                ref = self._aliases[ref]
            return [Report(ref, stat, delivered)]
        if self.protocol == "cmpp":
            sender, fmt, udhi = pdu.src_terminal_id, pdu.msg_fmt, pdu.tp_udhi
        else:
            sender, fmt, udhi = pdu.src_term_id, pdu.msg_format, smgp.tlv_int(pdu.tlvs, smgp.TAG_TP_UDHI)
        content = pdu.msg_content
        if udhi:
            concat, content = _udh_concat(content)
            if concat is not None and concat[1] > 1:
                key = (sender, concat[0], concat[1])
                got = self._partial.setdefault(key, {})
                while len(self._partial) > _MAX_PARTIAL:
                    del self._partial[next(iter(self._partial))]
                got[concat[2]] = content
                if len(got) < concat[1]:
                    return []
                del self._partial[key]
                content = b"".join(got[n] for n in sorted(got))
        codec = {c.FMT_ASCII: "ascii", c.FMT_UCS2: "utf-16-be", c.FMT_GBK: "gbk"}.get(fmt, "latin-1")
        return [Inbound(sender, content.decode(codec, errors="replace"), wall)]
