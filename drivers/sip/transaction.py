"""SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state), client and server, sans-I/O.

``TransactionLayer`` takes datagrams and stream messages in (``receive``), sends
requests and responses for the transaction user (``send_request``,
``respond``), retransmits on UDP by timers A, E and G, times out by B, F and H,
absorbs retransmissions (D, I, J, K, L), and hands the TU events one at a time
(``next_event``). What to put on the wire comes out of ``messages_to_send`` as
``Outgoing`` (bytes, address, transport). It never reads a clock or a socket.

Matching follows §17.1.3 and §17.2.3: the top Via's branch (with the magic
cookie), its sent-by and the method, ACK matching the INVITE it acknowledges.
The ACK for a 2xx is a transaction of its own (§17.1.1.3): it reaches the TU as
a request, after it stopped the 2xx retransmissions of its INVITE (RFC 6026).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass, field

from appliance.errors import ProtocolError

from .headers import Field, Headers, Via, canonical
from .message import Request, Response, parse

log = logging.getLogger(__name__)

Address = tuple[str, int]
COOKIE = "z9hG4bK"  # RFC 3261 branch magic cookie


@dataclass(frozen=True)
class Outgoing:
    data: bytes
    addr: Address
    transport: str = "UDP"


@dataclass(frozen=True)
class RequestReceived:
    """A new request (a new server transaction, or an ACK for a 2xx); answer it with ``respond(key, ...)``."""

    key: tuple
    request: Request
    source: Address
    transport: str


@dataclass(frozen=True)
class ResponseReceived:
    """A response on one of our client transactions (every provisional, the first final, and 2xx repeats)."""

    key: tuple
    response: Response


@dataclass(frozen=True)
class TimedOut:
    """A client transaction got no final response (B, F), or a server one no ACK (H; L for a 2xx)."""

    key: tuple
    request: Request


Event = RequestReceived | ResponseReceived | TimedOut


class _Timers(dict):
    """A transaction's timers (name -> due); each one set also goes on the layer's heap, so the layer finds
    what is due without looking at every transaction (at 50 calls/s it keeps thousands for 32 s)."""

    def __init__(self, key: tuple, heap: list, counter: itertools.count) -> None:
        super().__init__()
        self.key, self.heap, self.counter = key, heap, counter

    def __setitem__(self, name: str, due: float) -> None:
        super().__setitem__(name, due)
        heapq.heappush(self.heap, (due, next(self.counter), self.key, name))


@dataclass
class _Tx:
    key: tuple
    request: Request
    addr: Address
    transport: str
    client: bool
    state: str
    last: bytes = b""  # client: the request (or its ACK); server: the last response sent
    timers: dict[str, float] = field(default_factory=dict)  # name -> due (a _Timers)
    interval: float = 0.0  # the current retransmission interval (A, E, G)
    final: Response | None = None  # server INVITE in Accepted: the 2xx to match ACKs against
    acked: bool = False  # server INVITE in Accepted: its 2xx was acknowledged

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


class TransactionLayer:
    def __init__(self, *, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> None:
        self.t1, self.t2, self.t4 = t1, t2, t4
        self._txs: dict[tuple, _Tx] = {}
        self._heap: list[tuple] = []  # (due, n, key, name); entries whose timer changed since are skipped
        self._count = itertools.count()
        self._accepted: dict[tuple, _Tx] = {}  # (Call-ID, CSeq, To tag) of a 2xx -> its INVITE transaction
        self._out: list[Outgoing] = []
        self._events: list[Event] = []
        self.discarded = 0  # unparsable or unmatched messages

    # --- the TU's side ------------------------------------------------------------------------

    def send_request(self, request: Request, addr: Address, now: float, transport: str = "UDP") -> tuple:
        """Start a client transaction; ``request`` carries its top Via with a fresh branch. Returns its key."""
        via = request.via[0]
        if not (via.branch or "").startswith(COOKIE):
            raise ProtocolError(f"request's top Via needs a branch starting with {COOKIE}")
        method = request.method
        key = ("c", via.branch, "INVITE" if method == "ACK" else method)
        data = request.serialize()
        self._out.append(Outgoing(data, addr, transport))
        if method == "ACK":  # no transaction: the ACK for a 2xx is sent and forgotten
            return key
        tx = _Tx(key, request, addr, transport, True, "calling" if method == "INVITE" else "trying", data,
                 self._timers(key))
        self._txs[key] = tx
        if not tx.reliable:
            tx.interval = self.t1
            tx.timers["A" if method == "INVITE" else "E"] = now + self.t1
        tx.timers["B" if method == "INVITE" else "F"] = now + 64 * self.t1
        return key

    def respond(self, key: tuple, response: Response, now: float) -> None:
        """Send ``response`` on server transaction ``key`` (gone already: nothing happens)."""
        tx = self._txs.get(key)
        if tx is None or tx.client:
            log.debug("SIP: response %d for a transaction that no longer exists", response.status)
            return
        tx.last = response.serialize()
        self._out.append(Outgoing(tx.last, tx.addr, tx.transport))
        if response.status < 200:
            if tx.state == "trying":
                tx.state = "proceeding"
            return
        tx.timers.clear()
        if tx.request.method != "INVITE":
            tx.state = "completed"
            self._later(tx, "J", 0 if tx.reliable else 64 * self.t1, now)
        elif response.status < 300:  # RFC 6026: absorb INVITE repeats, repeat the 2xx until its ACK
            tx.state, tx.final = "accepted", response
            self._accepted[(tx.request.call_id, tx.request.cseq.seq, response.to.tag)] = tx
            self._later(tx, "L", 64 * self.t1, now)
            if not tx.reliable:
                tx.interval = self.t1
                tx.timers["G"] = now + self.t1
        else:
            tx.state = "completed"
            self._later(tx, "H", 64 * self.t1, now)
            if not tx.reliable:
                tx.interval = self.t1
                tx.timers["G"] = now + self.t1

    def invite_for_cancel(self, cancel: Request) -> tuple | None:
        """The server INVITE transaction a CANCEL names (same branch), if it still runs."""
        key = ("s", cancel.via[0].branch, _sent_by(cancel), "INVITE")
        tx = self._txs.get(key)
        return key if tx is not None and tx.state in ("proceeding",) else None

    def state(self, key: tuple) -> str | None:
        tx = self._txs.get(key)
        return tx.state if tx else None

    # --- the network's side --------------------------------------------------------------------------

    def receive(self, data: bytes | Request | Response, source: Address, now: float, transport: str = "UDP") -> None:
        """One datagram (or a message a stream parser framed) from ``source``; bad ones are counted and dropped."""
        try:
            msg = parse(data) if isinstance(data, (bytes, bytearray)) else data
            msg.validate()
            if isinstance(msg, Response):
                self._on_response(msg, now)
            else:
                self._on_request(msg, source, transport, now)
        except ProtocolError as exc:
            self.discarded += 1
            log.info("SIP: dropped a message from %s:%s: %s", *source, exc)

    def _on_response(self, resp: Response, now: float) -> None:
        via = resp.via[0]
        tx = self._txs.get(("c", via.branch, resp.cseq.method))
        if tx is None:  # a stray: 2xx repeats for an INVITE whose transaction ended go to the TU (dialog)
            if resp.cseq.method == "INVITE" and 200 <= resp.status < 300:
                self._events.append(ResponseReceived(("c", via.branch, "INVITE"), resp))
            else:
                self.discarded += 1
            return
        invite = tx.request.method == "INVITE"
        if resp.status < 200:
            if tx.state in ("calling", "trying", "proceeding"):
                tx.state = "proceeding"
                tx.timers.pop("A", None)
                if "E" in tx.timers:  # §17.1.2.2: from now on every T2 (the running E stays as it is)
                    tx.interval = self.t2
                self._events.append(ResponseReceived(tx.key, resp))
            return
        if tx.state == "completed":  # a repeat of the final response
            if invite:
                self._out.append(Outgoing(tx.last, tx.addr, tx.transport))  # our ACK again
            return
        tx.timers.clear()
        self._events.append(ResponseReceived(tx.key, resp))
        if invite and resp.status < 300:  # the TU ACKs the 2xx itself; repeats arrive as strays
            self._drop(tx)
        elif invite:
            tx.state, tx.last = "completed", _ack_for(tx.request, resp).serialize()
            self._out.append(Outgoing(tx.last, tx.addr, tx.transport))
            self._later(tx, "D", 0 if tx.reliable else 32.0, now)
        else:
            tx.state = "completed"
            self._later(tx, "K", 0 if tx.reliable else self.t4, now)

    def _on_request(self, req: Request, source: Address, transport: str, now: float) -> None:
        via = req.via[0]
        branch = via.branch or ""
        if not branch.startswith(COOKIE):  # RFC 2543 peer: match on the request's identity instead
            branch = f"{req.call_id}|{req.from_.tag}|{req.cseq.seq}|{via}"
        method = "INVITE" if req.method == "ACK" else req.method
        key = ("s", branch, _sent_by(req), method)
        tx = self._txs.get(key)
        if req.method == "ACK":
            if tx is not None and tx.state == "completed":  # the ACK for our non-2xx final
                tx.state = "confirmed"
                tx.timers.clear()
                self._later(tx, "I", 0 if tx.reliable else self.t4, now)
                return
            accepted = self._accepted_for(req)
            if accepted is not None:
                accepted.timers.pop("G", None)  # the 2xx arrived: stop repeating it
                accepted.acked = True
            self._events.append(RequestReceived(("ack", branch), req, source, transport))
            return
        if tx is not None:  # a retransmission: repeat what we last said
            if tx.last and tx.state != "accepted":
                self._out.append(Outgoing(tx.last, tx.addr, tx.transport))
            return
        _stamp_via(req, source)
        tx = _Tx(key, req, _reply_address(req, source, transport), transport, False,
                 "proceeding" if req.method == "INVITE" else "trying", timers=self._timers(key))
        self._txs[key] = tx
        if req.method == "INVITE":  # §17.2.1: 100 Trying at once, the TU may take longer than 200 ms
            self.respond(key, Response.for_request(req, 100), now)
        self._events.append(RequestReceived(key, req, source, transport))

    def _accepted_for(self, ack: Request) -> _Tx | None:
        tx = self._accepted.get((ack.call_id, ack.cseq.seq, ack.to.tag))
        return tx if tx is not None and tx.state == "accepted" and tx.key in self._txs else None

    def _timers(self, key: tuple) -> _Timers:
        return _Timers(key, self._heap, self._count)

    def _drop(self, tx: _Tx) -> None:
        self._txs.pop(tx.key, None)
        if tx.final is not None:
            self._accepted.pop((tx.request.call_id, tx.request.cseq.seq, tx.final.to.tag), None)

    def _live(self, entry: tuple) -> _Tx | None:
        """The transaction a heap entry is for, if that timer is still set to that time."""
        due, _, key, name = entry
        tx = self._txs.get(key)
        return tx if tx is not None and tx.timers.get(name) == due else None

    # --- timers and output ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and self._live(heap[0]) is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now + 1e-9:
            entry = heapq.heappop(heap)
            tx = self._live(entry)
            if tx is not None:
                del tx.timers[entry[3]]
                self._fire(tx, entry[3], now)

    def _fire(self, tx: _Tx, name: str, now: float) -> None:
        if name in ("A", "E", "G"):  # retransmit, back off (A doubles without limit; E and G cap at T2)
            self._out.append(Outgoing(tx.last, tx.addr, tx.transport))
            tx.interval = tx.interval * 2 if name == "A" else min(tx.interval * 2, self.t2)
            tx.timers[name] = now + tx.interval
        elif name in ("B", "F", "H") or (name == "L" and not tx.acked):  # L unacked: RFC 3261 §13.3.1.4
            self._drop(tx)
            self._events.append(TimedOut(tx.key, tx.request))
        else:  # D, I, J, K, L: the transaction's quiet time is over
            self._drop(tx)

    def _later(self, tx: _Tx, name: str, delay: float, now: float) -> None:
        if delay <= 0:
            self._drop(tx)
        else:
            tx.timers[name] = now + delay

    def messages_to_send(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None


def _sent_by(req: Request) -> str:
    via = req.via[0]
    return f"{via.host}:{via.port or 5060}"


def _stamp_via(req: Request, source: Address) -> None:
    """Add ``received`` (and ``rport``'s value, RFC 3581) to the top Via, so responses carry them back."""
    fields = list(req.headers.fields)
    i = next(i for i, f in enumerate(fields) if canonical(f.name) == "via")
    vias = Via.parse_all(fields[i].value, fields[i].where)
    top = vias[0]
    if top.host != source[0] or top.wants_rport:
        top.params["received"] = source[0]
    if top.wants_rport:
        top.params["rport"] = str(source[1])
    fields[i] = Field(fields[i].name, ", ".join(str(v) for v in vias))
    req.headers = Headers.from_fields(fields)


def _reply_address(req: Request, source: Address, transport: str) -> Address:
    """Where responses go (RFC 3261 §18.2.2, RFC 3581): back on the connection a stream request came on;
    for UDP the source address, at its port when rport was asked, else at the Via's port."""
    if transport != "UDP" or req.via[0].wants_rport:
        return source
    return source[0], req.via[0].port or 5060


def _ack_for(invite: Request, resp: Response) -> Request:
    """The ACK a client INVITE transaction sends for a non-2xx final response (§17.1.1.3)."""
    headers = [("Via", invite.headers.find("Via")[0].value), ("Max-Forwards", "70"),
               ("From", invite.headers.get("From")), ("To", resp.headers.get("To")),
               ("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq.seq} ACK")]
    headers += [("Route", v) for v in invite.headers.get_all("Route")]
    return Request("ACK", invite.uri, headers)
