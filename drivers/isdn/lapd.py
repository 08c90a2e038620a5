"""Q.921 (LAPD) data link for the PRI D-channel, sans-I/O: SAPI 0, TEI 0, modulo 128.

One `Lapd` is one end of the point-to-point link of an E1 30B+D span; the network and
the user side differ only in C/R (network commands carry C/R=1, user commands 0, responses
the opposite). Frames carry no flags or FCS: the hardware and the DAHDI glue do those. No
clock is read: every call gets ``now`` (s); `next_deadline` says when `handle_timer` is
due. States as in Q.921: 4 TEI assigned (down), 5 awaiting establishment, 6 awaiting
release, 7 multiple frame established, 8 timer recovery.

Where Q.921 leaves room, or where we depart from it on purpose:

- The link comes back by itself: after `start` (or `send`) a failed establishment (no
  UA after N200 retransmissions of SABME, or DM) reports `LinkDown` once and tries
  again RETRY_DELAY x T200 later, until `stop`; failed retries are not reported again.
  A link nobody started still accepts the peer's SABME; after `stop` we answer DM.
- As Q.921 5.7.2 says (and libpri does), a reset (peer SABME, our error recovery) or
  a failure discards the I queue: a message that may or may not have arrived is not
  sent twice; Q.931 recovers with its own timers and status enquiry. Messages queued
  while the link is down go out once it is up. `deactivate` is the physical layer
  going away (a span alarm): down at once, nothing kept, retrying.
- Invalid frames (2.9: too short, bad EA bits, another SAPI or TEI) are discarded and
  counted; so are frame rejection conditions (5.8.5: undefined control field, S or U
  frame of wrong length, I frame over N201), which also re-establish a link that is up.
  XID is not supported (counted, ignored). UI frames deliver their information as `Data`.
- SABME collision: the peer's SABME in state 5 gets UA and establishes at once (Q.921
  waits for the UA to ours; if our SABME was lost that costs a needless reset).
- We acknowledge at once (RR when no I frame can carry N(R)) and are never busy (no RNR);
  timer recovery polls with an RR command P=1 and retransmits from V(A) after F=1.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from appliance.errors import ProtocolError

MOD = 128  # extended (modulo 128) sequence numbers
N201 = 260  # most octets of information in an I or UI frame
SAPI = 0  # call control (Q.931); TEI management (63) does not exist on a PRI
TEI = 0  # point-to-point PRI: fixed TEI
RETRY_DELAY = 1.0  # seconds between a failed establishment and the next attempt (scaled by T200)

I = 0x00  # noqa: E741 - control field values with P/F clear; an I frame has bit 1 = 0
RR, RNR, REJ = 0x01, 0x05, 0x09
SABME, DM, UI, DISC, UA, FRMR, XID = 0x6F, 0x0F, 0x03, 0x43, 0x63, 0x87, 0xAF
PF = 0x10  # P/F bit of a U frame

TEI_ASSIGNED, AWAITING_EST, AWAITING_REL, ESTABLISHED, TIMER_RECOVERY = 4, 5, 6, 7, 8  # Q.921


@dataclass(frozen=True)
class LinkUp:
    """Multiple-frame established: our SABME got UA, or we answered the peer's SABME."""


@dataclass(frozen=True)
class LinkDown:
    """The link was released or failed; ``reason`` is a short English phrase."""
    reason: str


@dataclass(frozen=True)
class LinkReset:
    """The link was re-established while up (peer SABME or our error recovery); calls survive."""
    reason: str


@dataclass(frozen=True)
class Data:
    """One layer-3 message (I or UI frame information), in order, each once."""
    payload: bytes


Event = LinkUp | LinkDown | LinkReset | Data


@dataclass(frozen=True)
class Frame:
    """One decoded frame as this side sees it (``command`` already worked out from C/R)."""
    kind: int  # I, RR, RNR, REJ or a U frame value without P/F
    command: bool
    pf: bool
    ns: int = 0
    nr: int = 0
    info: bytes = b""


class FrameError(ProtocolError):
    """A frame we cannot accept. ``code`` is the Q.921 MDL-ERROR letter of a frame rejection
    condition (5.8.5), None for an invalid frame (2.9) that is only discarded."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason if code is None else f"{reason} ({code})")
        self.code = code


def decode(frame: bytes, network: bool) -> Frame:
    """Decode a frame received by the ``network`` (or user) side; raise `FrameError` if bad."""
    if len(frame) < 3:
        raise FrameError("shorter than 3 octets")
    a1, a2, c = frame[0], frame[1], frame[2]
    if a1 & 1 or not a2 & 1:
        raise FrameError("bad address extension bits")
    if a1 >> 2 != SAPI:
        raise FrameError("wrong SAPI")
    if a2 >> 1 != TEI:
        raise FrameError("wrong TEI")
    command = bool(a1 & 2) != network  # the peer's commands carry the C/R value ours do not
    if c & 3 != 3:  # I or S frame: two control octets
        if len(frame) < 4:
            raise FrameError("I or S frame shorter than 4 octets")
        pf, nr = bool(frame[3] & 1), frame[3] >> 1
        if c & 1 == 0:
            if not command:
                raise FrameError("I frame sent as a response")
            if len(frame) - 4 > N201:
                raise FrameError("I frame too long", "O")
            return Frame(I, True, pf, c >> 1, nr, bytes(frame[4:]))
        if c not in (RR, RNR, REJ):
            raise FrameError("undefined control field", "L")
        if len(frame) != 4:
            raise FrameError("S frame of wrong length", "N")
        return Frame(c, command, pf, nr=nr)
    kind, pf = c & ~PF, bool(c & PF)
    if kind not in (SABME, DM, UI, DISC, UA, FRMR, XID):
        raise FrameError("undefined control field", "L")
    if kind in (SABME, DM, DISC, UA) and len(frame) != 3:
        raise FrameError("U frame of wrong length", "N")
    if (kind in (SABME, DISC, UI) and not command) or (kind in (UA, DM, FRMR) and command):
        raise FrameError("wrong C/R bit for the frame type")
    if len(frame) - 3 > N201:
        raise FrameError("U frame too long")
    return Frame(kind, command, pf, info=bytes(frame[3:]))


class Lapd:
    """One end of the Q.921 point-to-point data link (see the module docstring)."""

    def __init__(self, network: bool, *, t200: float = 1.0, t203: float = 10.0,
                 n200: int = 3, k: int = 7) -> None:
        if not (t200 > 0 and t203 > 0 and n200 >= 1 and 1 <= k < MOD):
            raise ValueError("need T200 > 0, T203 > 0, N200 >= 1 and 1 <= k <= 127")
        self.network = network
        self.t200, self.t203, self.n200, self.k = t200, t203, n200, k
        self.state = TEI_ASSIGNED
        self.discarded = 0  # bad frames discarded so far
        self.discard_reasons: Counter[str] = Counter()
        self.last_discard: str | None = None
        self._vs = self._va = self._vr = self._rc = 0  # rc: retransmission counter
        self._peer_busy = self._reject = self._ack_pending = False  # reject: our REJ is out
        self._queue: deque[bytes] = deque()  # unacknowledged: the first V(S)-V(A) sent, the rest wait
        self._t200_at: float | None = None
        self._t203_at: float | None = None
        self._retry_at: float | None = None
        # start()/send(): bring the link up and keep it up; stop(): answer a peer SABME with DM
        self._wanted = self._refuse = False
        self._told: str | None = None  # what layer 3 last heard: "up", "down" or nothing
        self._cause: str | None = None  # why we are re-establishing a link that was up
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()

    @property
    def up(self) -> bool:
        """Multiple-frame established (timer recovery included)."""
        return self.state in (ESTABLISHED, TIMER_RECOVERY)

    def start(self, now: float) -> None:
        """Bring the link up and keep it up; idempotent while up or establishing."""
        self._wanted, self._refuse = True, False
        if self.state == TEI_ASSIGNED:
            self._establish(now, None)

    def stop(self, now: float) -> None:
        """Release the link (DISC, then UA/DM or T200 x N200); queued messages are dropped."""
        self._wanted, self._refuse, self._retry_at = False, True, None
        self._queue.clear()
        if self.state in (AWAITING_EST, ESTABLISHED, TIMER_RECOVERY):
            self.state, self._rc = AWAITING_REL, 0
            self._u(DISC, True, True)
            self._t203_at, self._t200_at = None, now + self.t200

    def deactivate(self, now: float) -> None:
        """The physical layer is gone (span alarm): down now, queue dropped; establishment retries."""
        self._queue.clear()
        if self.state != TEI_ASSIGNED:
            self._down(now, "physical layer down")

    def send(self, payload: bytes, now: float) -> None:
        """Queue a layer-3 message; bring the link up first if it is down."""
        if len(payload) > N201:
            raise ProtocolError(f"layer-3 message of {len(payload)} octets exceeds N201={N201}")
        self._queue.append(bytes(payload))
        self.start(now)
        self._flush(now)

    def receive(self, frame: bytes, now: float) -> None:
        """Take one frame from the D-channel (FCS removed); bad frames are counted, never raised."""
        try:
            f = decode(frame, self.network)
        except FrameError as e:
            self._discard(str(e))
            if e.code is not None and self.up:
                self._establish(now, str(e))
        else:
            self._dispatch(f, now)
        self._flush(now)

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now`` (each restart lies after ``now``, so this ends)."""
        while True:
            if self._t200_at is not None and self._t200_at <= now:
                self._t200_at = None
                self._on_t200(now)
            elif self._t203_at is not None and self._t203_at <= now:
                self._t203_at = None
                self._enquire(now, 0)  # idle in state 7: is the peer still there?
            elif self._retry_at is not None and self._retry_at <= now:
                self._retry_at = None
                self._establish(now, None)  # set in state 4 only while the link is wanted
            else:
                break
        self._flush(now)

    def next_deadline(self) -> float | None:
        times = [t for t in (self._t200_at, self._t203_at, self._retry_at) if t is not None]
        return min(times) if times else None

    def frames_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def _addr(self, command: bool) -> bytes:
        cr = command == self.network  # network commands and user responses carry C/R=1
        return bytes((SAPI << 2 | cr << 1, TEI << 1 | 1))

    def _u(self, kind: int, command: bool, pf: bool) -> None:
        self._out.append(self._addr(command) + bytes((kind | (PF if pf else 0),)))

    def _s(self, kind: int, command: bool, pf: bool) -> None:
        self._out.append(self._addr(command) + bytes((kind, self._vr << 1 | pf)))
        self._ack_pending = False

    def _flush(self, now: float) -> None:
        """Send what the window allows, then acknowledge what no I frame carried back."""
        if self.state == ESTABLISHED:
            n = (self._vs - self._va) % MOD  # sent, not yet acknowledged
            while not self._peer_busy and n < min(self.k, len(self._queue)):
                self._out.append(self._addr(True) + bytes((self._vs << 1, self._vr << 1))
                                 + self._queue[n])
                self._vs, n = (self._vs + 1) % MOD, n + 1
                self._ack_pending = False
                if self._t200_at is None:
                    self._t203_at, self._t200_at = None, now + self.t200
        if self._ack_pending and self.up:
            self._s(RR, False, False)

    def _establish(self, now: float, cause: str | None) -> None:
        """Send SABME, enter state 5; ``cause`` says why, when a link that was up is re-established."""
        if cause is not None:
            self._queue.clear()
        self.state, self._rc, self._cause = AWAITING_EST, 0, cause
        self._peer_busy = self._reject = self._ack_pending = False
        self._retry_at = self._t203_at = None
        self._u(SABME, True, True)
        self._t200_at = now + self.t200

    def _established(self, now: float, reset_reason: str) -> None:
        """Enter state 7 with fresh sequence numbers; a reset of a link that was up drops the I queue."""
        if self.state in (ESTABLISHED, TIMER_RECOVERY):
            self._queue.clear()
        self.state, self._rc = ESTABLISHED, 0
        self._vs = self._va = self._vr = 0
        self._peer_busy = self._reject = self._ack_pending = False
        self._t200_at, self._t203_at, self._retry_at = None, now + self.t203, None
        self._events.append(LinkReset(reset_reason) if self._told == "up" else LinkUp())
        self._told, self._cause = "up", None

    def _down(self, now: float, reason: str) -> None:
        """Back to state 4, I queue dropped; tell layer 3 once, and try again later if the link is wanted."""
        self._queue.clear()
        self.state, self._cause = TEI_ASSIGNED, None
        self._peer_busy = self._reject = self._ack_pending = False
        self._t200_at = self._t203_at = None
        self._retry_at = now + RETRY_DELAY * self.t200 if self._wanted else None
        if self._told != "down":
            self._events.append(LinkDown(reason))
            self._told = "down"

    def _enquire(self, now: float, rc: int) -> None:
        """Poll the peer with an RR command P=1 and enter timer recovery (state 8)."""
        self._s(RR, True, True)
        self._rc = rc
        self.state, self._t203_at, self._t200_at = TIMER_RECOVERY, None, now + self.t200

    def _on_t200(self, now: float) -> None:
        if self.state in (AWAITING_EST, AWAITING_REL):
            est = self.state == AWAITING_EST
            if self._rc < self.n200:
                self._rc += 1
                self._u(SABME if est else DISC, True, True)
                self._t200_at = now + self.t200
            elif not est:
                self._down(now, "released (no answer to DISC)")
            else:
                c = self._cause
                self._down(now, f"{c}, then no answer to SABME" if c
                           else f"no answer to SABME after {self.n200} retries")
        elif self.state == ESTABLISHED:
            self._enquire(now, 1)
        elif self.state == TIMER_RECOVERY:
            if self._rc >= self.n200:
                self._establish(now, "N200 retries exceeded (I)")
            else:
                self._enquire(now, self._rc + 1)

    def _discard(self, reason: str) -> None:
        self.discarded += 1
        self.discard_reasons[reason] += 1
        self.last_discard = reason

    def _dispatch(self, f: Frame, now: float) -> None:
        k = f.kind
        if k == UI:  # unacknowledged transfer works in every state
            self._events.append(Data(f.info))
        elif k == XID:
            self._discard("XID not supported")
        elif self.state == TEI_ASSIGNED:
            if k == SABME and not self._refuse:
                self._u(UA, False, f.pf)
                self._established(now, "")
            elif k in (SABME, DISC):
                self._u(DM, False, f.pf)
            elif k == DM and not f.pf and not self._refuse:
                self._establish(now, None)  # the peer asks us to establish
            elif f.command and f.pf and k in (I, RR, RNR, REJ):
                self._u(DM, False, True)
        elif self.state in (AWAITING_EST, AWAITING_REL):
            est = self.state == AWAITING_EST
            if k in (SABME, DISC):  # a collision: UA to the command we sent too, else DM
                self._u(UA if (k == SABME) == est else DM, False, f.pf)
            if est and (k == SABME or k == UA and f.pf):
                self._established(now, self._cause or "")
            elif k in (UA, DM) and f.pf:
                self._down(now, "peer refused the link (DM)" if est else "released")
        elif k in (SABME, DISC):
            self._u(UA, False, f.pf)
            if k == SABME:
                self._established(now, "peer reset the link (SABME)")
            else:
                self._down(now, "DISC received")
        elif k == DM:
            if not (f.pf and self.state == ESTABLISHED):  # unsolicited DM F=1 (B) is ignored
                self._establish(now, "DM received (B)" if f.pf else "DM received (E)")
        elif k == FRMR:
            self._establish(now, "FRMR received (K)")
        elif k != UA:  # an unsolicited UA (C/D) is ignored
            self._sequenced(f, now)

    def _sequenced(self, f: Frame, now: float) -> None:
        """I, RR, RNR or REJ in state 7 or 8."""
        k = f.kind
        if k == I:
            self._take_i(f)
        else:
            self._peer_busy = k == RNR
            if f.command and f.pf:
                self._s(RR, False, True)  # enquiry response
        if (f.nr - self._va) % MOD > (self._vs - self._va) % MOD:
            self._establish(now, "N(R) error (J)")
            return
        moved = f.nr != self._va
        self._ack(f.nr)
        if self.state == TIMER_RECOVERY:
            if k != I and not f.command and f.pf:  # the answer to our poll
                if self._peer_busy:
                    self._t200_at = now + self.t200  # keep polling the busy peer
                else:
                    self._t200_at, self._t203_at = None, now + self.t203
                self._vs, self.state = self._va, ESTABLISHED  # retransmit from V(A)
        elif k == RNR:
            self._t203_at, self._t200_at = None, now + self.t200
        elif k == REJ or (f.nr == self._vs and not self._peer_busy):
            self._t200_at, self._t203_at = None, now + self.t203
            self._vs = self._va  # after REJ: retransmit from V(A); otherwise a no-op
        elif moved and not self._peer_busy:
            self._t200_at = now + self.t200

    def _take_i(self, f: Frame) -> None:
        if f.ns == self._vr:
            self._vr = (self._vr + 1) % MOD
            self._reject = False
            self._events.append(Data(f.info))
            if f.pf:
                self._s(RR, False, True)
            else:
                self._ack_pending = True  # piggybacked on our next I frame or an RR in _flush
        elif not self._reject:
            self._reject = True
            self._s(REJ, False, f.pf)
        elif f.pf:
            self._s(RR, False, True)

    def _ack(self, nr: int) -> None:
        """V(A) := N(R): the peer has every message before it."""
        for _ in range((nr - self._va) % MOD):
            self._queue.popleft()
        self._va = nr
