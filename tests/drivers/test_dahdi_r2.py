"""MFC/R2 on the DAHDI card (fake kernel, E1 with cas framing; a second R2Span as the carrier): calls both
ways with their numbers, refusals, clearing from either side, span alarms and the CAS bits the card writes.

Time is virtual: each 20 ms tick the carrier takes the bits and audio the card
sent and gives the card its own, the fake kernel moves on, and the card is
polled, read and written as the runtime does.
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.config import validate
from appliance.errors import DriverError
from drivers.base import BLOCK, Alarm, Alerting, Connected, PortFault, Released, Seized
from drivers.r2.span import Alerted, Answered, Cleared, Offered, R2Span

TRUNKS, PHONES, LINES = [1, 2, 3, 4], [32, 33], [38]  # ports 0-3 are timeslots 1-4
SILENCE = 0xD5
IDLE, SEIZE, ACK, ANSWER, CLEAR_BACK = 0b1001, 0b0001, 0b1101, 0b0101, 0b1101  # ABCD nibbles, cd = 01
ANI, DNIS = "13912345678", "4008"


class R2Carrier:
    """A second ``R2Span`` as the carrier behind the fake kernel's E1 (``channels``: timeslots = DAHDI channels).

    Each ``step`` moves the card's tx bits (when changed) into the span's ``rx_bits``,
    the audio the card sent into its ``process``, its ``fill_tx`` out to the card
    (``hear``) and its tx bits into ``set_rx_bits``. While the span is ``down`` (in
    alarm) no bits and no audio cross; they do again once it is up.
    """

    def __init__(self, kernel, channels, **span_kw) -> None:
        self.kernel, self.channels = kernel, list(channels)
        self.span = R2Span(self.channels, **span_kw)
        self.events: list = []
        self.down = False
        self._delivered: dict[int, int] = {}  # timeslot -> the card's bits last given to the span
        self._to_card: dict[int, int] = {}  # the span's bits waiting to cross
        self._rx = np.full((len(self.channels), BLOCK), SILENCE, np.uint8)
        self._tx = np.full_like(self._rx, SILENCE)

    def dial(self, channel: int, number: str, calling: str | None, now: float) -> None:
        self.span.calling_number = calling  # the caller's own number, sent when asked
        self.span.dial(channel, number, now)

    def alarm(self, down: bool, now: float) -> None:
        """The carrier sees the span go down (its calls end) or come back."""
        self.down = down
        if down:
            for c in self.channels:
                self.span.hangup(c, 38, now)

    def step(self, now: float) -> list:
        """One 20 ms tick before the hardware's: the carrier's new events."""
        k, span = self.kernel, self.span
        if not self.down:
            for c in self.channels:
                bits = k.channels[c].txbits
                if self._delivered.get(c) != bits:
                    self._delivered[c] = bits
                    span.rx_bits(c, bits, now)
        due = span.next_deadline()
        if due is not None and now >= due:
            span.handle_timer(now)
        for i, c in enumerate(self.channels):
            sent = k.channels[c].sent
            self._rx[i] = np.frombuffer(bytes(sent[:BLOCK]), np.uint8) if len(sent) >= BLOCK and not self.down \
                else SILENCE
            del sent[:BLOCK]
        span.process(self._rx, now)
        new = []
        while (ev := span.next_event()) is not None:
            new.append(ev)
        self.events += new
        self._tx[:] = SILENCE
        span.fill_tx(self._tx)
        for i, c in enumerate(self.channels):
            k.hear(c, (bytes([SILENCE]) * BLOCK) if self.down else self._tx[i].tobytes())
        self._to_card.update(span.tx_bits())
        if not self.down:
            for c, bits in self._to_card.items():
                k.set_rx_bits(c, bits)
            self._to_card.clear()
        return new


class R2Box:
    """The DAHDI card on the fake kernel's R2 span (trunk timeslots 1-4, phones 32-33, a line on 38) and the
    carrier, ticked together 20 ms at a time."""

    def __init__(self, kernel, *, r2: dict | None = None, far: dict | None = None, card=None) -> None:
        from drivers.dahdi.card import DahdiCard
        self.kernel = kernel
        self.card = card or DahdiCard(kernel, span_channels=TRUNKS, fxs_channels=PHONES, fxo_channels=LINES,
                                      r2={} if r2 is None else r2)
        self.carrier = R2Carrier(kernel, TRUNKS, **(far or {}))
        self.now = 0.0
        self.rx = np.zeros((len(self.card.ports), BLOCK), np.uint8)
        self.tx = np.full_like(self.rx, SILENCE)
        self.on_far_event = lambda ev: None  # the carrier's part in a call, per test

    def tick(self) -> list:
        for ev in self.carrier.step(self.now):
            self.on_far_event(ev)
        self.kernel.tick(20)
        events = self.card.poll(self.now)
        self.card.read(self.rx)
        self.card.write(self.tx)
        self.now = round(self.now + 0.02, 6)
        return events

    def run(self, seconds: float, until=None) -> list:
        """Tick for ``seconds``, or until ``until(card events so far)`` (then failing if it never holds)."""
        events: list = []
        for _ in range(int(round(seconds / 0.02))):
            events += self.tick()
            if until is not None and until(events):
                return events
        assert until is None, f"timed out; card events {events}, carrier events {self.carrier.events}"
        return events

    def far_seen(self, event) -> bool:
        return event in self.carrier.events

    def line_busy(self, ts: int) -> bool:
        return self.card._r2.r2.busy(ts) or self.carrier.span.busy(ts)


@pytest.fixture
def r2_kernel(lib):
    """The box's card with span 1 an MFC/R2 E1; every DAHDI_SETTXBITS is logged in ``calls`` as well."""
    from drivers.dahdi.fakekernel import FakeKernel

    class LoggingKernel(FakeKernel):
        def _settxbits(self, chan, f, arg):
            result = super()._settxbits(chan, f, arg)
            self._log("DAHDI_SETTXBITS", chan, chan.txbits)
            return result

    return LoggingKernel.appliance(signalling="r2")


@pytest.fixture
def box(r2_kernel):
    b = R2Box(r2_kernel)
    yield b
    b.card.close()


def txbits(kernel, channo: int) -> list[int]:
    return [v for name, ch, v in kernel.calls if name == "DAHDI_SETTXBITS" and ch == channo]


def seized(events) -> list:
    return [e for e in events if isinstance(e, Seized)]


def call_in(b: R2Box, ts: int, number: str = DNIS, calling: str | None = ANI) -> Seized:
    b.carrier.dial(ts, number, calling, b.now)
    (s,) = seized(b.run(6.0, lambda ev: seized(ev)))
    return s


# --- inbound ------------------------------------------------------------------------------------


def test_inbound_call_carries_both_numbers_is_answered_and_cleared_by_the_caller(box, r2_kernel):
    b = box
    b.run(0.1)  # the first poll writes every channel's idle bits
    assert call_in(b, 2) == Seized(1, ANI, DNIS)  # timeslot 2 is the second trunk port
    assert b.card._r2.r2.call_info(2) == {"dnis": DNIS, "ani": ANI, "ka": 1, "kd": 3}
    b.card.answer(1)
    assert b.run(2.0, lambda _: b.far_seen(Answered(2))) == []
    assert b.carrier.events == [Alerted(2), Answered(2)]
    b.run(1.0)
    b.carrier.span.hangup(2, 16, b.now)  # the caller puts the phone down: clear-forward
    assert b.run(0.1) == [Released(1, 16)]
    b.run(0.2)
    assert not any(b.line_busy(ts) for ts in TRUNKS)
    # what the card wrote on timeslot 2: idle, seizure acknowledged, answer, release guard (idle)
    assert txbits(r2_kernel, 2) == [IDLE, ACK, ANSWER, IDLE]
    assert all(txbits(r2_kernel, ts) == [IDLE] for ts in (1, 3, 4))  # the first poll's idle, then nothing


def test_inbound_call_cleared_by_the_card_sends_clear_back_then_the_release_guard(box, r2_kernel):
    b = box
    b.run(0.1)
    s = call_in(b, 3)
    b.card.answer(s.port)
    b.run(2.0, lambda _: b.far_seen(Answered(3)))
    b.card.hangup(s.port, 16)
    assert b.run(1.0) == []  # the core hung up: no Released for it
    assert Cleared(3, 16) in b.carrier.events and not b.line_busy(3)
    assert txbits(r2_kernel, 3) == [IDLE, ACK, ANSWER, CLEAR_BACK, IDLE]


def test_inbound_call_withheld_number_and_refused_busy(box):
    b = box
    assert call_in(b, 1, calling=None) == Seized(0, None, DNIS, "unavailable")
    b.card.hangup(0, 17)  # all agents busy: B-2, the caller hears busy and clears
    assert b.run(2.0, lambda _: any(isinstance(e, Cleared) for e in b.carrier.events)) == []
    assert b.carrier.events == [Cleared(1, 17)]
    b.run(0.5)
    assert not b.line_busy(1)


def test_inbound_call_the_caller_abandons_while_it_rings(box):
    b = box
    call_in(b, 4)
    b.run(2.5)  # no decision: the span accepts it (B-1) by itself, the caller hears ringing
    assert b.carrier.events == [Alerted(4)]
    b.carrier.span.hangup(4, 16, b.now)
    assert b.run(0.1) == [Released(3, 16)]


# --- outbound -----------------------------------------------------------------------------------


def test_outbound_call_carries_our_number_is_answered_and_cleared_by_the_card(r2_kernel):
    b = R2Box(r2_kernel, r2={"calling_number": "4008001234"}, far={"max_dnis": 11})
    try:
        b.on_far_event = lambda ev: isinstance(ev, Offered) and b.carrier.span.answer(ev.channel, b.now)
        b.run(0.1)
        b.card.dial(2, "13800138000")
        events = b.run(6.0, lambda ev: Connected(2) in ev)
        assert events == [Alerting(2), Connected(2)]
        assert b.carrier.events[0] == Offered(3, "4008001234", "13800138000")
        assert b.carrier.span.call_info(3) == {"dnis": "13800138000", "ani": "4008001234", "ka": 1, "kd": 3, "b": 1}
        b.card.hangup(2, 16)
        assert b.run(0.5) == [] and b.carrier.events[-1] == Cleared(3, 16)
        assert not b.line_busy(3)
        assert txbits(r2_kernel, 3) == [IDLE, SEIZE, IDLE]  # seizure, then clear-forward
    finally:
        b.card.close()


def test_mf_tones_go_out_in_a_copy_and_speech_passes_once_answered(box):
    b = box
    b.on_far_event = lambda ev: isinstance(ev, Offered) and b.carrier.span.answer(ev.channel, b.now)
    speech = np.full(BLOCK, 0x55, np.uint8)
    b.tx[0] = speech  # what the core sends on port 0 (timeslot 1) all along
    frames = b.tx.copy()
    b.card.dial(0, "1100")
    heard, events = [], []  # what the carrier received on timeslot 1, tick by tick
    while Connected(0) not in events:
        events += b.tick()
        heard.append(b.carrier._rx[0].copy())
        assert b.now < 6.0, events
    assert np.array_equal(b.tx, frames)  # the core's frames are never written into
    register = [h for h in heard[:-10] if not np.array_equal(h, speech)]
    assert len(register) > 0.8 * len(heard[:-10])  # the MF tones (and silence between them) replaced the speech
    b.run(0.2)
    assert np.array_equal(b.carrier._rx[0], speech) and np.array_equal(b.carrier._rx[1], frames[1])


@pytest.mark.parametrize("cause", [17, 1])
def test_outbound_call_refused_busy_or_vacant(box, cause):
    b = box
    b.on_far_event = lambda ev: isinstance(ev, Offered) and b.carrier.span.hangup(ev.channel, cause, b.now)
    b.card.dial(1, "1100")
    assert b.run(6.0, lambda ev: any(isinstance(e, Released) for e in ev)) == [Released(1, cause)]
    assert b.carrier.span.call_info(2)["b"] == {17: 2, 1: 5}[cause]  # B-2 subscriber busy, B-5 vacant
    b.run(0.5)
    assert not b.line_busy(2)
    b.card.hangup(1, 16)  # the core's hangup after the release: nothing left to do
    b.run(0.2)
    assert not b.line_busy(2)


def test_dial_refusals_say_why(box):
    b = box
    b.run(0.1)
    with pytest.raises(DriverError, match=r"cannot dial on E1 1/1 \(port 0\): cannot dial '12\*'"):
        b.card.dial(0, "12*")
    call_in(b, 1)
    with pytest.raises(DriverError, match=r"cannot dial on E1 1/1 \(port 0\): R2 channel 1 is busy"):
        b.card.dial(0, "1100")
    with pytest.raises(DriverError, match="no inbound call to answer on R2 channel 2"):
        b.card.answer(1)


# --- span alarms and faults -----------------------------------------------------------------------


def test_span_alarm_mid_call_ends_the_calls_with_38_and_the_lines_come_back(box, r2_kernel):
    b = box
    s = call_in(b, 1)
    b.card.answer(s.port)
    b.on_far_event = lambda ev: isinstance(ev, Offered) and b.carrier.span.answer(ev.channel, b.now)
    b.card.dial(3, "1100")
    b.run(6.0, lambda ev: Connected(3) in ev)
    r2_kernel.set_span_alarms(1, {"RED"})
    b.carrier.alarm(True, b.now)
    events = b.run(0.1)
    assert events == [Alarm(1, frozenset({"RED"})), Released(0, 38), Released(3, 38)]
    with pytest.raises(DriverError, match=r"cannot dial on E1 1/3 \(port 2\): E1 span 1 is in alarm \(RED\)"):
        b.card.dial(2, "1100")
    assert b.run(1.0) == []
    r2_kernel.set_span_alarms(1, ())
    b.carrier.alarm(False, b.now)
    assert b.run(0.5) == [Alarm(1, frozenset())]
    assert not any(b.line_busy(ts) for ts in TRUNKS)  # clear-forward / release guard went both ways
    assert txbits(r2_kernel, 1)[-1] == IDLE and txbits(r2_kernel, 4)[-1] == IDLE
    assert call_in(b, 1) == Seized(0, ANI, DNIS)  # and the span takes calls again


def test_a_call_on_a_channel_that_fails_ends_with_41(box, r2_kernel):
    b = box
    s = call_in(b, 2)
    b.card.answer(s.port)
    b.run(1.0)
    r2_kernel.unplug(1)
    events = b.run(0.1)
    assert PortFault(1, False, "the channel was removed (DAHDI_EVENT_REMOVED)") in events
    assert Released(1, 41) in events


# --- configuration --------------------------------------------------------------------------------


def test_from_config_runs_r2_with_the_configured_calling_number(r2_kernel):
    from drivers.dahdi.card import DahdiCard
    cfg = validate({"card": {"driver": "dahdi", "trunk_channels": 4},
                    "span": {"signalling": "mfcr2", "framing": "cas", "crc4": False, "calling_number": "4008001234"}})
    card = DahdiCard.from_config(cfg, r2_kernel)
    b = R2Box(r2_kernel, card=card, far={"max_dnis": 3})
    try:
        assert card._pri is None and card._r2.r2.calling_number == "4008001234"
        b.card.dial(0, "110")
        b.run(8.0, lambda _: any(isinstance(e, Offered) for e in b.carrier.events))
        assert b.carrier.events == [Offered(1, "4008001234", "110")]
    finally:
        card.close()


def test_trunk_channels_must_be_cas_and_the_options_known(kernel, r2_kernel):
    from drivers.dahdi.card import DahdiCard
    with pytest.raises(DriverError, match=r"DAHDI channel 1 is signalled 'clear', but span.signalling mfcr2 needs "
                                          r"cas on every trunk channel; apply the configuration"):
        DahdiCard(kernel, span_channels=[1, 2], r2={})
    assert all(c.owner is None for c in kernel.channels.values())  # nothing left open
    with pytest.raises(DriverError, match=r"unknown MFC/R2 option\(s\) ani; expected some of"):
        DahdiCard(r2_kernel, span_channels=[1, 2], r2={"ani": "1"})
    with pytest.raises(DriverError, match="a span runs PRI or MFC/R2, not both"):
        DahdiCard(r2_kernel, span_channels=[1, 2], r2={}, pri={"dchan": 16})
    assert all(c.owner is None for c in r2_kernel.channels.values())
    assert 16 not in r2_kernel.channels and r2_kernel.channels[17].chanpos == 17
