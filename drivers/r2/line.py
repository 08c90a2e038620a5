"""China No.1 / ITU-T Q.421 digital line signalling on one E1 channel's CAS bits, either side, sans-I/O.

Only bits a and b carry the line state; c and d are constant (``cd_bits``,
0b01 by default: the DAHDI ABCD nibble is a b c d, a the most significant).
Forward bits (af, bf) go from the outgoing side, backward (ab, bb) from the
incoming side (Q.421 table 1; the same codes in China's GF 001-9001):

===========================  =======  =======
state                        af bf    ab bb
===========================  =======  =======
idle / released              1 0      1 0
seized                       0 0      1 0
seizure acknowledged         0 0      1 1
answered                     0 0      0 1
clear-back                   0 0      1 1
clear-forward                1 0      0 1 or 1 1
release guard (then idle)    1 0      1 0
blocked                      1 0      1 1
===========================  =======  =======

``R2Line`` is one channel: ``rx(ab)`` takes the far end's a/b bits and returns
what they mean (a ``LineEvent``), the commands set what we send (``tx``).
Timers (``next_deadline``/``handle_timer``): the seizure acknowledgement
(``seize_ack``) and the release guard after our clear-forward (``release_guard``).
"""

from __future__ import annotations

import enum

from appliance.errors import DriverError

IDLE, SEIZE, ACK, ANSWER, CLEAR_BACK, BLOCK = 0b10, 0b00, 0b11, 0b01, 0b11, 0b11
TIMERS = {"seize_ack": 8.0, "release_guard": 10.0}


class State(enum.Enum):
    IDLE = "idle"
    BLOCKED = "blocked"  # the far end blocks the channel (it sends 11 while we send idle)
    LOCAL_BLOCKED = "local-blocked"  # we block it
    OUT_SEIZED = "out-seized"  # we sent seizure; waiting for its acknowledgement
    OUT_ACKED = "out-acked"  # seizure acknowledged: register signalling, then waiting for the answer
    OUT_ANSWERED = "out-answered"
    OUT_CLEARING = "out-clearing"  # we sent clear-forward; waiting for the release guard (idle)
    IN_SEIZED = "in-seized"  # we acknowledged a seizure
    IN_ANSWERED = "in-answered"
    IN_CLEARED_BACK = "in-cleared-back"  # we sent clear-back; waiting for clear-forward


class LineEvent(enum.Enum):
    SEIZED = "seized"  # (incoming) the far end seized the channel; we acknowledged
    SEIZE_ACK = "seize-ack"  # (outgoing) our seizure is acknowledged: start the register signalling
    ANSWERED = "answered"  # (outgoing) the called party answered
    CLEAR_BACK = "clear-back"  # (outgoing) the called party hung up; we sent clear-forward
    CLEAR_FORWARD = "clear-forward"  # (incoming) the caller released; we sent release guard: idle
    RELEASED = "released"  # (outgoing) the release guard came: the channel is idle again
    BLOCKED = "blocked"
    UNBLOCKED = "unblocked"
    GLARE = "glare"  # we seized and so did they: our call lost, theirs acknowledged
    FAILED = "failed"  # (outgoing) the incoming side went idle in the middle of a call


_FORWARD = {State.IDLE: IDLE, State.BLOCKED: IDLE, State.OUT_SEIZED: SEIZE, State.OUT_ACKED: SEIZE,
            State.OUT_ANSWERED: SEIZE, State.OUT_CLEARING: IDLE}
_BACKWARD = {State.LOCAL_BLOCKED: BLOCK, State.IN_SEIZED: ACK, State.IN_ANSWERED: ANSWER,
             State.IN_CLEARED_BACK: CLEAR_BACK}


class R2Line:
    """The line signalling of one channel; ``timers`` override ``TIMERS`` (seconds)."""

    def __init__(self, cd_bits: int = 0b01, timers: dict[str, float] | None = None) -> None:
        if not 0 <= cd_bits <= 3:
            raise DriverError(f"cd_bits is two bits (0..3), got {cd_bits!r}")
        self.cd_bits = cd_bits
        self.timers = {**TIMERS, **(timers or {})}
        self.state = State.IDLE
        self.rx_ab = IDLE  # what the far end sends
        self.deadline: float | None = None

    # --- what we send ----------------------------------------------------------------------
    @property
    def tx_ab(self) -> int:
        if self.state in _BACKWARD:
            return _BACKWARD[self.state]
        return _FORWARD.get(self.state, IDLE)

    @property
    def tx(self) -> int:
        """The ABCD nibble to write (DAHDI_SETTXBITS)."""
        return self.tx_ab << 2 | self.cd_bits

    @property
    def idle(self) -> bool:
        return self.state is State.IDLE

    # --- commands ------------------------------------------------------------------------------
    def seize(self, now: float) -> None:
        if self.state is not State.IDLE:
            raise DriverError(f"the channel is not idle ({self.state.value})")
        self._enter(State.OUT_SEIZED, now, "seize_ack")

    def answer(self, now: float) -> None:
        if self.state is State.IN_SEIZED:
            self._enter(State.IN_ANSWERED, now)

    def clear(self, now: float) -> None:
        """Hang up our side: clear-forward (outgoing) or clear-back (incoming); nothing when idle."""
        if self.state in (State.OUT_SEIZED, State.OUT_ACKED, State.OUT_ANSWERED):
            self._enter(State.OUT_CLEARING, now, "release_guard")
        elif self.state in (State.IN_SEIZED, State.IN_ANSWERED):
            self._enter(State.IN_CLEARED_BACK, now)

    def block(self, now: float) -> None:
        if self.state is State.IDLE:
            self._enter(State.LOCAL_BLOCKED, now)

    def unblock(self, now: float) -> None:
        if self.state is State.LOCAL_BLOCKED:
            self._enter(State.IDLE, now)
            return self.rx(self.rx_ab, now, force=True)

    # --- the far end --------------------------------------------------------------------------
    def rx(self, ab: int, now: float, force: bool = False) -> LineEvent | None:
        """The far end's a/b bits (``abcd >> 2``); what they mean, if anything new."""
        ab &= 0b11
        if ab == self.rx_ab and not force:
            return None
        self.rx_ab = ab
        st = self.state
        if st is State.IDLE:
            if ab == SEIZE:
                self._enter(State.IN_SEIZED, now)
                return LineEvent.SEIZED
            if ab == BLOCK:
                self._enter(State.BLOCKED, now)
                return LineEvent.BLOCKED
        elif st is State.BLOCKED:
            if ab == IDLE:
                self._enter(State.IDLE, now)
                return LineEvent.UNBLOCKED
        elif st is State.OUT_SEIZED:
            if ab == ACK:
                self._enter(State.OUT_ACKED, now)
                return LineEvent.SEIZE_ACK
            if ab == SEIZE:  # dual seizure: the far end's call wins
                self._enter(State.IN_SEIZED, now)
                return LineEvent.GLARE
        elif st in (State.OUT_ACKED, State.OUT_ANSWERED):
            if ab == ANSWER and st is State.OUT_ACKED:
                self._enter(State.OUT_ANSWERED, now)
                return LineEvent.ANSWERED
            if ab == CLEAR_BACK and st is State.OUT_ANSWERED:
                self._enter(State.OUT_CLEARING, now, "release_guard")
                return LineEvent.CLEAR_BACK
            if ab == IDLE:  # the incoming side reset: clear forward, and the line is idle at once
                self._enter(State.IDLE, now)
                return LineEvent.FAILED
        elif st is State.OUT_CLEARING:
            if ab == IDLE:
                self._enter(State.IDLE, now)
                return LineEvent.RELEASED
        elif st in (State.IN_SEIZED, State.IN_ANSWERED, State.IN_CLEARED_BACK):
            if ab & 0b10:  # af = 1: clear-forward; we answer with the release guard (idle)
                self._enter(State.IDLE, now)
                return LineEvent.CLEAR_FORWARD
        return None

    # --- timers ---------------------------------------------------------------------------------
    def handle_timer(self, now: float) -> str | None:
        """The timer that expired (``seize_ack`` or ``release_guard``), if one did."""
        if self.deadline is None or now < self.deadline:
            return None
        if self.state is State.OUT_SEIZED:  # clear forward; the far end, still idle, owes no release guard
            self._enter(State.IDLE if self.rx_ab == IDLE else State.OUT_CLEARING, now,
                        None if self.rx_ab == IDLE else "release_guard")
            return "seize_ack"
        if self.state is State.OUT_CLEARING:  # no release guard: consider the channel free when it shows idle
            self._enter(State.IDLE, now)
            self.rx(self.rx_ab, now, force=True)
            return "release_guard"
        self.deadline = None
        return None

    def _enter(self, state: State, now: float, timer: str | None = None) -> None:
        self.state = state
        self.deadline = now + self.timers[timer] if timer else None
