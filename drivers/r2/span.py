"""MFC/R2 (China No.1) on the voice channels of one E1 span, sans-I/O: what the DAHDI card drives each tick.

Each 20 ms the card hands in the CAS bits that changed (``rx_bits``) and the
received audio of every channel (``process``), lets the span overwrite the
audio of the channels in their MF register phase (``fill_tx``) and writes the
CAS bits that changed (``tx_bits``); it runs ``handle_timer`` when
``next_deadline`` is due and reads call events with ``next_event``. Row i of
the audio arrays is ``channels[i]``. Time only comes in as ``now``.

An inbound call (the carrier seizes a channel) is acknowledged, its number
collected (``drivers.r2.register.IncomingRegister``) and offered
(``Offered``) while the caller's KD tone is held; ``answer`` sends B-1
(subscriber free) and, once that cycle is over, the answer signal;
``hangup`` with cause 17 / 1 / 34 or 42 refuses it with B-2 / B-5 / B-4.
Without a decision within ``timers["accept"]`` the span sends B-1 itself (the
caller hears ringing) and waits for ``answer``. An outbound call (``dial``)
seizes, sends the number, KA, the calling number and KD when asked, and ends
in ``Alerted`` (B-1) then ``Answered`` (the answer signal), or ``Cleared``
with the B signal's cause. Far-end clearing, timer expiry and failures end a
call with ``Cleared``; a call the card hung up ends without one.

Beyond what the PRI span offers: ``block``/``unblock`` an idle channel towards
the far end, and ``call_info`` (the DNIS, ANI, KA, KD and B signal of the
channel's call). Inbound calls ask for KA and the calling number with A-6 once
the DNIS is complete, or after ``ani_after`` digits (China practice is often 1;
libopenr2's China caller needs the default, see tests/drivers/r2/test_openr2.py).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Iterable

import numpy as np

from appliance.errors import ConfigError, DriverError
from dsp.g711 import alaw_decode, alaw_encode
from dsp.r2mf import R2MfDetector, R2MfSender

from .line import LineEvent, R2Line, State
from .register import B_CONGESTION, B_FREE, REFUSALS, TIMEOUT_CAUSE, IncomingRegister, OutgoingRegister

from ..trunkcalls import Alerted, Answered, CallEvent, Cleared, Offered  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

TIMERS = {"accept": 2.0, "answer": 90.0, "answer_delay": 0.1}
SILENCE = 0xD5  # A-law code of 0
# category -> (KA, KD): KA the calling party's category (sent after A-6), KD the call's type (after A-3)
CATEGORIES = {
    "national-subscriber": (1, 3),  # KA-1 ordinary subscriber, periodic charging; KD-3 local call
    "national-priority-subscriber": (4, 3),  # KA-4 priority subscriber
    "toll-subscriber": (1, 2),  # KD-2 automatic toll call
    "test-call": (1, 6),  # KD-6 test call
}


class _Chan:
    def __init__(self, row: int, channel: int, line: R2Line) -> None:
        self.row, self.channel, self.line = row, channel, line
        self.reset()

    def reset(self) -> None:
        self.call: str | None = None  # "in" or "out"
        self.reg: IncomingRegister | OutgoingRegister | None = None
        self.offered = False  # (in) Offered was sent
        self.accepted = False  # (in) B-1 went out: ringing
        self.answer_wanted = False  # (in) the card answered: send the answer signal after B-1's cycle
        self.reported = False  # the card knows the call ended (Cleared sent, or it hung up)
        self.due: float | None = None  # accept (in) or answer (out) timer
        self.info: dict = {}


class R2Span:
    """MFC/R2, China variant, on the B-channels ``channels`` (timeslot numbers) of one E1."""

    def __init__(self, channels: Iterable[int], *, max_dnis: int = 4, max_ani: int = 12,
                 category: str | tuple[int, int] = "national-subscriber", calling_number: str | None = None,
                 ani_after: int | None = None, cd_bits: int = 0b01, timers: dict[str, float] | None = None) -> None:
        chans = [int(c) for c in channels]
        if not chans or len(set(chans)) != len(chans):
            raise ConfigError(f"R2 span channels must be distinct timeslot numbers, got {channels!r}")
        if max_dnis < 1 or max_ani < 0:
            raise ConfigError(f"max_dnis must be >= 1 and max_ani >= 0, got {max_dnis} and {max_ani}")
        if isinstance(category, str):
            if category not in CATEGORIES:
                raise ConfigError(f"R2 category {category!r} is not one of {', '.join(CATEGORIES)}")
            self.ka, self.kd = CATEGORIES[category]
        elif len(category) == 2 and all(1 <= int(v) <= 15 for v in category):
            self.ka, self.kd = int(category[0]), int(category[1])
        else:
            raise ConfigError(f"R2 category is a name or (KA, KD) signals 1..15, got {category!r}")
        if calling_number is not None and not (calling_number.isdigit() and calling_number.isascii()):
            raise ConfigError(f"R2 calling number must be digits 0-9, got {calling_number!r}")
        self.channels = chans
        self.max_dnis, self.max_ani, self.ani_after = max_dnis, max_ani, ani_after
        self.calling_number = calling_number or None
        self.timers = {**TIMERS, **(timers or {})}
        self._chans = {c: _Chan(i, c, R2Line(cd_bits, self.timers)) for i, c in enumerate(chans)}
        n = len(chans)
        self._fwd_rx, self._bwd_rx = R2MfDetector(n, True), R2MfDetector(n, False)
        self._fwd_tx, self._bwd_tx = R2MfSender(n, True), R2MfSender(n, False)
        self._pcm = np.zeros((n, 160), np.int16)
        self._written: dict[int, int | None] = {c: None for c in chans}  # CAS nibble last handed out
        self._events: deque[CallEvent] = deque()

    # --- each tick ------------------------------------------------------------------------------
    def rx_bits(self, channel: int, abcd: int, now: float) -> None:
        """The ABCD nibble the far end sends on ``channel`` (DAHDI_GETRXBITS), whenever it changes."""
        ch = self._chan(channel)
        self._line_event(ch, ch.line.rx((int(abcd) >> 2) & 3, now), now)

    def process(self, rx: np.ndarray, now: float) -> None:
        """20 ms of received A-law audio, shape (n_channels, 160) uint8: the MF signals of the calls in register phase."""
        if not isinstance(rx, np.ndarray) or rx.dtype != np.uint8 or rx.shape != self._pcm.shape:
            got = (rx.dtype, rx.shape) if isinstance(rx, np.ndarray) else type(rx).__name__
            raise DriverError(f"R2Span.process: expected uint8 A-law of shape {self._pcm.shape}, got {got}")
        regs = [ch for ch in self._chans.values() if ch.reg is not None]
        if not regs:
            return
        pcm = alaw_decode(rx, out=self._pcm)
        for det, kind in ((self._fwd_rx, "in"), (self._bwd_rx, "out")):
            if any(ch.call == kind for ch in regs):
                for row, sig in det.process(pcm):
                    ch = self._chans[self.channels[row]]
                    if ch.reg is not None and ch.call == kind:
                        ch.reg.on_signal(sig, now)
                        self._pump(ch, now)

    def fill_tx(self, tx: np.ndarray) -> None:
        """Overwrite the rows of ``tx`` (n_channels, 160) uint8 A-law of the channels in register phase with
        their MF tone, or silence between tones; other rows are left as they are."""
        if not isinstance(tx, np.ndarray) or tx.dtype != np.uint8 or tx.shape != self._pcm.shape:
            got = (tx.dtype, tx.shape) if isinstance(tx, np.ndarray) else type(tx).__name__
            raise DriverError(f"R2Span.fill_tx: expected uint8 A-law of shape {self._pcm.shape}, got {got}")
        for ch in self._chans.values():
            for sender, kind in ((self._fwd_tx, "out"), (self._bwd_tx, "in")):
                sender.set(ch.row, ch.reg.tx if ch.reg is not None and ch.call == kind else None)
            if ch.reg is not None:
                tx[ch.row] = SILENCE
        for sender in (self._fwd_tx, self._bwd_tx):
            rows = sender.sending
            if rows.size:
                pcm = sender.fill(np.zeros((len(self.channels), 160), np.int16))
                tx[rows] = alaw_encode(pcm[rows])

    def tx_bits(self) -> list[tuple[int, int]]:
        """``(channel, abcd)`` for every channel whose CAS bits changed since the last call (all, the first time)."""
        out = []
        for c, ch in self._chans.items():
            nib = ch.line.tx
            if self._written[c] != nib:
                self._written[c] = nib
                out.append((c, nib))
        return out

    def next_deadline(self) -> float | None:
        times = [t for ch in self._chans.values()
                 for t in (ch.line.deadline, ch.reg.deadline if ch.reg else None, ch.due) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for ch in self._chans.values():
            expired = ch.line.handle_timer(now)
            if expired == "seize_ack":
                log.warning("R2 channel %d: seizure not acknowledged", ch.channel)
                self._end(ch, TIMEOUT_CAUSE)
                ch.reg = None
                if ch.line.idle:
                    ch.reset()
            elif expired == "release_guard":
                log.warning("R2 channel %d: no release guard after clear-forward", ch.channel)
                ch.reset()
            if ch.reg is not None:
                ch.reg.handle_timer(now)
                self._pump(ch, now)
            if ch.due is not None and now >= ch.due:
                ch.due = None
                if ch.call == "in" and ch.reg is not None and ch.reg.state == "hold":
                    ch.accepted = True  # no decision yet: the subscriber is free, ringing
                    ch.reg.decide(B_FREE, now)
                elif ch.call == "in" and ch.reg is None and ch.answer_wanted and not ch.reported:
                    ch.line.answer(now)
                elif ch.call == "out" and ch.line.state is State.OUT_ACKED:
                    self._end(ch, 19)  # no answer
                    ch.line.clear(now)

    def next_event(self) -> CallEvent | None:
        return self._events.popleft() if self._events else None

    def busy(self, channel: int) -> bool:
        ch = self._chan(channel)
        return ch.call is not None or not ch.line.idle

    def call_info(self, channel: int) -> dict:
        """What the register exchange of the channel's current (or last) call carried: KA, KD, B signal."""
        return dict(self._chan(channel).info)

    # --- commands ---------------------------------------------------------------------------------
    def dial(self, channel: int, number: str, now: float) -> None:
        ch = self._chan(channel)
        if not number or not (number.isdigit() and number.isascii()):
            raise DriverError(f"cannot dial {number!r} on R2 channel {channel}: MFC/R2 sends digits 0-9 only")
        if ch.line.state is State.BLOCKED:
            raise DriverError(f"R2 channel {channel} is blocked by the far end")
        if ch.call is not None or not ch.line.idle:
            raise DriverError(f"R2 channel {channel} is busy ({ch.line.state.value})")
        ch.line.seize(now)
        ch.call = "out"
        ch.reg = OutgoingRegister(number, self.calling_number, self.ka, self.kd, self.timers)  # starts on the ack

    def answer(self, channel: int, now: float) -> None:
        ch = self._chan(channel)
        if ch.call != "in" or not ch.offered or ch.reported or ch.line.state is not State.IN_SEIZED:
            raise DriverError(f"no inbound call to answer on R2 channel {channel}")
        ch.answer_wanted = True
        if ch.reg is not None and ch.reg.state == "hold":
            ch.due = None
            ch.reg.decide(B_FREE, now)
        elif ch.reg is None and ch.accepted:
            ch.line.answer(now)

    def hangup(self, channel: int, cause: int, now: float) -> None:
        """Clear the call on ``channel``: refuse it with a B signal, clear back or clear forward (no-op if none)."""
        ch = self._chan(channel)
        if ch.call is None or ch.reported or (ch.call == "in" and not ch.offered):
            return
        ch.reported = True
        if ch.call == "in" and ch.reg is not None and ch.reg.state == "hold":
            ch.due = None
            ch.reg.decide(REFUSALS.get(cause, B_CONGESTION), now)
        elif ch.call == "in" and ch.reg is not None:
            return  # the B signal is on its way; the caller clears when it has it
        else:
            ch.reg = None
            ch.line.clear(now)

    def block(self, channel: int, now: float) -> None:
        """Block an idle channel towards the far end (it must not seize it)."""
        self._chan(channel).line.block(now)

    def unblock(self, channel: int, now: float) -> None:
        ch = self._chan(channel)
        self._line_event(ch, ch.line.unblock(now), now)

    # --- internals ---------------------------------------------------------------------------------
    def _chan(self, channel: int) -> _Chan:
        ch = self._chans.get(channel)
        if ch is None:
            raise DriverError(f"channel {channel} is not on this R2 span ({self.channels})")
        return ch

    def _line_event(self, ch: _Chan, ev: LineEvent | None, now: float) -> None:
        if ev is None:
            return
        log.debug("R2 channel %d: %s", ch.channel, ev.value)
        if ev is LineEvent.GLARE:
            self._end(ch, 34)
            ev = LineEvent.SEIZED
        if ev is LineEvent.SEIZED:
            ch.reset()
            ch.call = "in"
            ch.reg = IncomingRegister(self.max_dnis, self.max_ani, self.ani_after, self.timers)
            ch.reg.start(now)
            self._fwd_rx.reset(ch.row)
        elif ev is LineEvent.SEIZE_ACK and ch.reg is not None:
            self._bwd_rx.reset(ch.row)
            ch.reg.start(now)
        elif ev is LineEvent.ANSWERED:
            ch.reg, ch.due = None, None
            self._events.append(Answered(ch.channel))
        elif ev is LineEvent.CLEAR_BACK:
            self._end(ch, 16)
        elif ev is LineEvent.FAILED:
            self._end(ch, 41)
            ch.reset()
        elif ev in (LineEvent.CLEAR_FORWARD, LineEvent.RELEASED):
            if ch.call == "in" and ch.offered:
                self._end(ch, 16)
            ch.reset()

    def _pump(self, ch: _Chan, now: float) -> None:
        reg = ch.reg
        while reg is not None and reg.events:
            kind, *args = reg.events.popleft()
            if kind == "offered":
                dnis, ani, withheld, ka, kd = args
                ch.info.update(dnis=dnis, ani=ani, ka=ka, kd=kd)
                ch.offered = True
                ch.due = now + self.timers["accept"]
                self._events.append(Offered(ch.channel, ani, dnis, withheld))
            elif kind == "done":  # (in) the B signal's cycle is over
                ch.info["b"] = args[0]
                ch.reg = None
                if args[0] == B_FREE:
                    ch.accepted = True
                    if ch.reported:  # the card hung up while B-1 was on its way: clear back
                        ch.line.clear(now)
                    elif ch.answer_wanted:  # the answer signal a moment after B-1 (the caller must see B-1 end)
                        ch.due = now + self.timers["answer_delay"]
            elif kind == "free":  # (out) B-1: ringing, waiting for the answer signal
                ch.info["b"] = args[0]
                ch.reg = None
                ch.due = now + self.timers["answer"]
                self._events.append(Alerted(ch.channel))
            else:  # refused (out) or failed (either): the cause ends the call
                ch.info["cause"] = args[0]
                ch.reg = None
                self._end(ch, args[0])
                ch.line.clear(now)

    def _end(self, ch: _Chan, cause: int) -> None:
        if ch.call is not None and not ch.reported and (ch.call == "out" or ch.offered):
            ch.reported = True
            self._events.append(Cleared(ch.channel, cause))
