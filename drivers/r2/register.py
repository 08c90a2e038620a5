"""The compelled MFC register signalling of China No.1 (中国一号记发器信令), both sides, sans-I/O.

One object per call: ``IncomingRegister`` (the carrier calls us) or
``OutgoingRegister`` (we call). Each takes the far end's MF signal as the
receiver reports it (``on_signal(signal or None, now)``), says which MF signal
to send now (``tx``) and what happened (``events``); timers through
``deadline``/``handle_timer``. Compelled timing (Q.442): a forward signal stays
on until the backward signal that acknowledges it is recognised, then goes off;
the backward signal goes off when the end of the forward signal is recognised;
the next forward signal starts when the end of the backward one is recognised.
When the incoming side has nothing to acknowledge (the caller sent its last
digit and stays silent), it sends its next backward signal as a 150 ms pulse.

Signal meanings, China (GF 001-9001 as published in Chinese engineering texts;
ITU-T Q.441 where China keeps it):

- forward group I: 1..10 the digits 1..9, 0 (DNIS, ANI); KA (calling party's
  category, sent in answer to A-6) is also a group I position; I-15 ends the
  calling number (also taken as "no more digits" in the DNIS); I-12 in place
  of a calling number: withheld;
- forward group II: KD (the call's type), sent after A-3: 1 toll operator,
  2 toll automatic, 3 local subscriber call, 4 local fax/data, 5 semi-automatic
  with calling number check, 6 test call;
- backward group A: A-1 send the next digit (of the number being sent), A-2
  send again from the first digit, A-3 number complete, change to group B,
  A-4 congestion, A-5 vacant number, A-6 send KA and the calling number;
- backward group B: B-1 subscriber free, B-2 busy (local), B-3 busy (toll),
  B-4 congestion, B-5 vacant number. B-6/B-7 (ITU: free with/without charge)
  and B-8 (ITU: out of order) are understood when received, never sent.
"""

from __future__ import annotations

from collections import deque

A_NEXT, A_RESTART, A_COMPLETE, A_CONGESTION, A_VACANT, A_SEND_ANI = 1, 2, 3, 4, 5, 6
B_FREE, B_BUSY, B_BUSY_TOLL, B_CONGESTION, B_VACANT = 1, 2, 3, 4, 5
I_RESTRICTED, I_END = 12, 15
TIMERS = {"mf": 15.0, "digit": 3.0, "pulse": 0.15}
# Q.850 cause when a call ends on a backward signal
A_CAUSES = {A_CONGESTION: 42, A_VACANT: 1}
B_CAUSES = {B_BUSY: 17, B_BUSY_TOLL: 17, B_CONGESTION: 42, B_VACANT: 1, 8: 27}
B_FREE_SIGNALS = (B_FREE, 6, 7)
# Q.850 cause the card hangs up with -> the B signal that refuses the call
REFUSALS = {17: B_BUSY, 1: B_VACANT, 22: B_VACANT, 28: B_VACANT, 34: B_CONGESTION, 42: B_CONGESTION}
TIMEOUT_CAUSE = 102  # recovery on timer expiry
PROTOCOL_CAUSE = 111  # an A/B signal with no meaning here


def digit_signal(d: str) -> int:
    return 10 if d == "0" else int(d)


def signal_digit(s: int) -> str:
    return "0" if s == 10 else str(s)


class _Register:
    def __init__(self, timers: dict[str, float] | None) -> None:
        self.timers = {**TIMERS, **(timers or {})}
        self.tx: int | None = None  # MF signal we send now
        self.rx: int | None = None  # MF signal the far end sends now
        self.deadline: float | None = None
        self.events: deque[tuple] = deque()
        self.done = False

    def _arm(self, now: float, timer: str | None) -> None:
        self.deadline = now + self.timers[timer] if timer else None

    def _finish(self, *event) -> None:
        self.tx, self.deadline, self.done = None, None, True
        self.events.append(event)


class IncomingRegister(_Register):
    """We are called: collect the DNIS (up to ``max_dnis`` digits), ask for KA and the calling number with A-6
    after ``ani_after`` digits (None: once the DNIS is complete; 0: never), then A-3 and KD, then offer.

    Events: ``("offered", dnis, ani, withheld, ka, kd)`` once KD is in (the KD tone is held until
    ``decide``); ``("done", b_signal)`` when the B signal's cycle is over; ``("failed", cause)``.
    """

    def __init__(self, max_dnis: int, max_ani: int, ani_after: int | None = None,
                 timers: dict[str, float] | None = None) -> None:
        super().__init__(timers)
        self.max_dnis, self.max_ani = max_dnis, max_ani
        self.ani_after = max_dnis if ani_after is None else ani_after
        self.dnis = ""
        self.ani = ""
        self.withheld: str | None = None
        self.ka: int | None = None
        self.kd: int | None = None
        self.ani_done = self.ani_after == 0
        self.dnis_done = False
        self.expect = "dnis"  # what the next forward signal is: dnis, ka, ani, kd
        self.state = "wait"  # wait (for a forward signal), ack (we acknowledge one), hold (KD), pulse, b
        self.b_signal: int | None = None

    def start(self, now: float) -> None:
        self._arm(now, "mf")

    def on_signal(self, sig: int | None, now: float) -> None:
        self.rx = sig
        if self.done:
            return
        if sig is None:
            if self.state in ("ack", "b"):  # the forward signal ended: ours ends too
                self.tx = None
                if self.state == "b":
                    self._finish("done", self.b_signal)
                    return
                self.state = "wait"
                self._arm(now, "digit" if self.expect in ("dnis", "ani") else "mf")
            elif self.state == "hold":  # the caller gave up on KD before we decided
                self._finish("failed", TIMEOUT_CAUSE)
            return
        if self.state in ("wait", "pulse"):
            self.tx = None
            self._receive(sig, now)

    def decide(self, b_signal: int, now: float) -> None:
        """The card's answer to the offer: the B signal to send (B-1 free, B-2 busy, ...)."""
        if self.state == "hold":
            self.b_signal, self.tx, self.state = b_signal, b_signal, "b"
            self._arm(now, "mf")

    def _receive(self, sig: int, now: float) -> None:
        if self.expect == "dnis":
            if sig == I_END:
                self.dnis_done = True
            elif 1 <= sig <= 10:
                self.dnis += signal_digit(sig)
                self.dnis_done = len(self.dnis) >= self.max_dnis
            else:
                return self._finish("failed", PROTOCOL_CAUSE)
        elif self.expect == "ka":
            self.ka, self.expect = sig, "ani"
            return self._ack(A_NEXT, now)
        elif self.expect == "ani":
            if sig == I_END or sig == I_RESTRICTED:
                self.ani_done = True
                if sig == I_RESTRICTED or not self.ani:
                    self.withheld = "private" if sig == I_RESTRICTED else "unavailable"
            elif 1 <= sig <= 10:
                if len(self.ani) < self.max_ani:
                    self.ani += signal_digit(sig)
                return self._ack(A_NEXT, now)
            else:
                return self._finish("failed", PROTOCOL_CAUSE)
        elif self.expect == "kd":
            self.kd, self.state, self.tx = sig, "hold", None
            self._arm(now, "mf")
            self.events.append(("offered", self.dnis, self.ani if not self.withheld else None, self.withheld,
                                self.ka, self.kd))
            return
        self._ack(self._next_request(), now)

    def _next_request(self) -> int:
        """The A signal that asks for what we still need (the DNIS is in or not, the ANI asked for or not)."""
        if not self.ani_done and (len(self.dnis) >= self.ani_after or self.dnis_done):
            self.expect = "ka"
            return A_SEND_ANI
        if not self.dnis_done:
            self.expect = "dnis"
            return A_NEXT
        self.expect = "kd"
        return A_COMPLETE

    def _ack(self, a_signal: int, now: float) -> None:
        self.tx, self.state = a_signal, "ack"
        self._arm(now, "mf")

    def handle_timer(self, now: float) -> None:
        if self.done or self.deadline is None or now < self.deadline:
            return
        if self.state == "pulse":  # the pulse is over; the caller answers it
            self.tx, self.state = None, "wait"
            self._arm(now, "mf")
        elif self.state == "wait" and self.expect in ("dnis", "ani") and (self.dnis or self.expect == "ani"):
            # the caller went quiet: the number (or the calling number) is complete; say what next by a pulse
            if self.expect == "ani":
                self.ani_done = True
                self.withheld = None if self.ani else "unavailable"
            else:
                self.dnis_done = True
            self.tx, self.state = self._next_request(), "pulse"
            self._arm(now, "pulse")
        else:
            self._finish("failed", TIMEOUT_CAUSE)


class OutgoingRegister(_Register):
    """We call: send ``dnis`` digit by digit on A-1, KA then the calling number ``ani`` (None: none) after A-6
    and I-15 at its end, KD after A-3, and read the B signal.

    Events: ``("free", b_signal)`` (the called party is free: ringing), ``("refused", cause)``
    (Q.850: busy 17, vacant 1, congestion 42, ...), ``("failed", cause)``.
    """

    def __init__(self, dnis: str, ani: str | None, ka: int, kd: int,
                 timers: dict[str, float] | None = None) -> None:
        super().__init__(timers)
        self.dnis, self.ani, self.ka, self.kd = dnis, ani or "", ka, kd
        self.i_dnis = 0
        self.i_ani = 0  # calling number digits sent; len(ani) + 1 once I-15 is sent too
        self.mode = "dnis"  # what A-1 asks for: dnis or ani
        self.group_b = False
        self.state = "send"  # send (our tone on), back (theirs on, ours off), quiet (nothing to send)
        self.got: int | None = None

    def start(self, now: float) -> None:
        self._send(self._next_dnis(), now)

    def on_signal(self, sig: int | None, now: float) -> None:
        self.rx = sig
        if self.done:
            return
        if sig is not None:
            if self.state in ("send", "quiet"):  # acknowledged (or a pulse): our signal ends
                self.got, self.tx, self.state = sig, None, "back"
                self._arm(now, "mf")
            return
        if self.state == "back":  # their signal ended: act on it
            self._act(self.got, now)

    def _act(self, sig: int, now: float) -> None:
        if self.group_b:
            if sig in B_FREE_SIGNALS:
                return self._finish("free", sig)
            return self._finish("refused", B_CAUSES.get(sig, 31))
        if sig == A_NEXT:
            nxt = self._next_ani() if self.mode == "ani" else self._next_dnis()
        elif sig == A_RESTART:
            self.i_dnis, self.mode = 0, "dnis"
            nxt = self._next_dnis()
        elif sig == A_SEND_ANI:
            self.mode, self.i_ani, nxt = "ani", 0, self.ka
        elif sig == A_COMPLETE:
            self.group_b, nxt = True, self.kd
        elif sig in A_CAUSES:
            return self._finish("refused", A_CAUSES[sig])
        else:
            return self._finish("failed", PROTOCOL_CAUSE)
        if nxt is None:  # no more digits: stay quiet until the incoming side pulses its next request
            self.tx, self.state = None, "quiet"
            self._arm(now, "mf")
        else:
            self._send(nxt, now)

    def _next_dnis(self) -> int | None:
        if self.i_dnis >= len(self.dnis):
            return None
        self.i_dnis += 1
        return digit_signal(self.dnis[self.i_dnis - 1])

    def _next_ani(self) -> int | None:
        if self.i_ani < len(self.ani):
            self.i_ani += 1
            return digit_signal(self.ani[self.i_ani - 1])
        if self.i_ani == len(self.ani):  # the end of the calling number
            self.i_ani += 1
            return I_END
        self.mode = "dnis"  # after I-15, A-1 asks for the DNIS again
        return self._next_dnis()

    def _send(self, sig: int, now: float) -> None:
        self.tx, self.state = sig, "send"
        self._arm(now, "mf")

    def handle_timer(self, now: float) -> None:
        if not self.done and self.deadline is not None and now >= self.deadline:
            self._finish("failed", TIMEOUT_CAUSE)
