"""R2Span against another R2Span (China variant): whole calls with the MF register exchange, both ways,
the exact CAS bit sequences, refusals, clearing from either side, timeouts and the card-facing API."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import ConfigError, DriverError
from drivers.r2.span import Alerted, Answered, Cleared, Offered, R2Span
from tests.drivers.r2.wire import SILENCE, Pair

CHANNELS = [1, 2, 3, 17]
ANI = "13912345678"


def pair(caller: dict | None = None, callee: dict | None = None) -> Pair:
    return Pair(R2Span(CHANNELS, **{"calling_number": ANI, **(caller or {})}), R2Span(CHANNELS, **(callee or {})))


def offered(p: Pair, seconds: float = 10.0) -> Offered:
    assert p.run(seconds, lambda: any(isinstance(e, Offered) for e in p.b.events)), p.b.events
    return next(e for e in p.b.events if isinstance(e, Offered))


def test_call_answered_and_cleared_by_the_caller_with_the_exact_line_signals():
    p = pair()
    p.a.span.dial(2, "4008", p.now)
    assert offered(p) == Offered(2, ANI, "4008", None)
    assert p.b.span.call_info(2) == {"dnis": "4008", "ani": ANI, "ka": 1, "kd": 3}
    assert p.a.span.busy(2) and p.b.span.busy(2) and not p.a.span.busy(1)
    p.b.span.answer(2, p.now)
    assert p.run(2.0, lambda: Answered(2) in p.a.events)
    assert p.a.events == [Alerted(2), Answered(2)]
    p.a.span.hangup(2, 16, p.now)
    p.run(0.5)
    assert p.b.events[-1] == Cleared(2, 16) and p.a.events[-1] == Answered(2)  # no Cleared for who hung up
    # outgoing (forward) a b c d: idle 1001, seizure 0001, clear-forward 1001
    assert p.a.bits[2] == [0b1001, 0b0001, 0b1001]
    # incoming (backward): idle 1001, seizure acknowledged 1101, answer 0101, release guard (idle) 1001
    assert p.b.bits[2] == [0b1001, 0b1101, 0b0101, 0b1001]
    assert p.a.bits[1] == p.b.bits[1] == [0b1001]  # the others stay idle
    assert not p.a.span.busy(2) and not p.b.span.busy(2)


def test_called_side_clears_first_clear_back_then_clear_forward_and_release_guard():
    p = pair()
    p.a.span.dial(3, "4008", p.now)
    offered(p)
    p.b.span.answer(3, p.now)
    assert p.run(2.0, lambda: Answered(3) in p.a.events)
    p.b.span.hangup(3, 16, p.now)
    assert p.run(1.0, lambda: Cleared(3, 16) in p.a.events)
    p.run(0.5)
    assert p.b.bits[3] == [0b1001, 0b1101, 0b0101, 0b1101, 0b1001]  # ... answer, clear-back, release guard
    assert p.a.bits[3] == [0b1001, 0b0001, 0b1001]
    assert Cleared(3, 16) not in p.b.events
    assert not p.a.span.busy(3) and not p.b.span.busy(3)


def test_ani_asked_after_the_first_digit_then_the_rest_of_the_number():
    p = pair(callee={"max_dnis": 8, "ani_after": 1})
    p.a.span.dial(1, "40088123", p.now)
    assert offered(p) == Offered(1, ANI, "40088123", None)


def test_no_calling_number_is_sent_as_i15_and_offered_as_unavailable():
    p = pair(caller={"calling_number": None, "category": "test-call"})
    p.a.span.dial(1, "4008", p.now)
    assert offered(p) == Offered(1, None, "4008", "unavailable")
    assert p.b.span.call_info(1)["kd"] == 6


def test_shorter_number_completes_on_the_digit_timeout_with_a_pulsed_a6():
    p = pair(callee={"max_dnis": 6})
    p.a.span.dial(1, "110", p.now)
    start = p.now
    ev = offered(p)
    assert ev == Offered(1, ANI, "110", None) and p.now - start > 3.0  # the 3 s inter-digit wait


@pytest.mark.parametrize("cause, expected", [(17, 17), (1, 1), (34, 42), (42, 42), (21, 42)])
def test_refusals_by_b_signal(cause, expected):
    p = pair()
    p.a.span.dial(17, "4008", p.now)
    offered(p)
    p.b.span.hangup(17, cause, p.now)
    assert p.run(2.0, lambda: p.a.events)
    assert p.a.events == [Cleared(17, expected)]
    p.run(0.5)
    assert not p.a.span.busy(17) and not p.b.span.busy(17)
    assert Cleared(17, 16) not in p.b.events  # the card refused it: nothing to report back


def test_no_decision_means_ringing_then_answer_later():
    p = pair()
    p.a.span.dial(1, "4008", p.now)
    offered(p)
    assert p.run(3.0, lambda: Alerted(1) in p.a.events)  # the accept timer (2 s) sent B-1
    p.run(1.0)
    p.b.span.answer(1, p.now)
    assert p.run(1.0, lambda: Answered(1) in p.a.events)


def test_caller_gives_up_while_ringing():
    p = pair()
    p.a.span.dial(2, "4008", p.now)
    offered(p)
    p.run(3.0)
    p.a.span.hangup(2, 16, p.now)
    p.run(0.5)
    assert p.b.events[-1] == Cleared(2, 16)
    with pytest.raises(DriverError, match="no inbound call to answer on R2 channel 2"):
        p.b.span.answer(2, p.now)


def test_no_answer_timer():
    p = pair(caller={"timers": {"answer": 5.0}})
    p.a.span.dial(1, "4008", p.now)
    offered(p)
    p.run(8.0)
    assert p.a.events == [Alerted(1), Cleared(1, 19)]
    assert p.b.events[-1] == Cleared(1, 16)
    assert not p.a.span.busy(1) and not p.b.span.busy(1)


def test_two_calls_at_once_on_different_channels_both_ways():
    p = pair()
    p.a.span.dial(1, "4008", p.now)
    p.b.span.dial(3, "66", p.now)
    assert p.run(12.0, lambda: len([e for e in p.a.events + p.b.events if isinstance(e, Offered)]) == 2)
    assert Offered(1, ANI, "4008", None) in p.b.events
    assert Offered(3, None, "66", "unavailable") in p.a.events


# --- timeouts --------------------------------------------------------------------------------------------------

def test_seizure_never_acknowledged():
    span = R2Span([1])
    for c, nib in span.tx_bits():
        assert (c, nib) == (1, 0b1001)
    span.dial(1, "4008", 0.0)
    assert span.tx_bits() == [(1, 0b0001)] and span.next_deadline() == 8.0
    span.handle_timer(8.0)
    assert span.next_event() == Cleared(1, 102) and span.tx_bits() == [(1, 0b1001)] and not span.busy(1)


def test_caller_silent_after_seizure():
    span = R2Span([5])
    span.rx_bits(5, 0b0001, 0.0)
    assert span.tx_bits() == [(5, 0b1101)] and span.busy(5)
    span.handle_timer(span.next_deadline())  # no first digit within 15 s: we clear back and wait
    assert span.next_event() is None and span.tx_bits() == []  # (11: clear-back is the same bits)
    span.rx_bits(5, 0b1001, 20.0)
    assert span.tx_bits() == [(5, 0b1001)] and not span.busy(5)


def test_called_side_never_answers_a_digit():
    p = pair()
    p.a.span.dial(1, "4008", p.now)
    p.b.span.process = lambda rx, now: None  # deaf to MF: the first digit is never acknowledged
    p.run(16.0)
    assert p.a.events == [Cleared(1, 102)]


# --- the card-facing API ---------------------------------------------------------------------------------------

def test_dial_refusals_name_the_problem():
    span = R2Span([1, 2])
    with pytest.raises(DriverError, match=r"channel 9 is not on this R2 span \(\[1, 2\]\)"):
        span.dial(9, "1", 0.0)
    with pytest.raises(DriverError, match="MFC/R2 sends digits 0-9 only"):
        span.dial(1, "12#4", 0.0)
    span.rx_bits(2, 0b1101, 0.0)  # 11 while we are idle: the far end blocks it
    with pytest.raises(DriverError, match="R2 channel 2 is blocked by the far end"):
        span.dial(2, "1", 0.0)
    span.dial(1, "1", 0.0)
    with pytest.raises(DriverError, match="R2 channel 1 is busy"):
        span.dial(1, "1", 0.0)
    for bad in ({"category": "vip"}, {"calling_number": "+86"}, {"max_dnis": 0}, {"category": (0, 3)}):
        with pytest.raises(ConfigError):
            R2Span([1], **bad)
    with pytest.raises(ConfigError, match="distinct"):
        R2Span([1, 1])


def test_fill_tx_touches_only_the_rows_in_register_phase():
    p = pair()
    p.a.span.dial(2, "4008", p.now)
    p.step()  # seized and acknowledged: the first digit is on
    tx = np.full((4, 160), 0x2A, np.uint8)
    p.a.span.fill_tx(tx)
    assert (tx[[0, 2, 3]] == 0x2A).all() and not (tx[1] == 0x2A).any()
    assert (tx[1] != SILENCE).any()  # the first digit's tone
    with pytest.raises(DriverError, match="uint8 A-law of shape"):
        p.a.span.process(np.zeros((4, 160), np.int16), p.now)
