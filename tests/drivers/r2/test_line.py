"""China No.1 / Q.421 line signalling on the CAS bits: the exact a/b sequences of both sides, blocking, glare, timers."""

from __future__ import annotations

import pytest

from appliance.errors import DriverError
from drivers.r2.line import LineEvent, R2Line, State

IDLE, SEIZE, ACK, ANSWER, CLEAR_BACK, BLOCK = 0b10, 0b00, 0b11, 0b01, 0b11, 0b11


def test_incoming_call_answered_then_cleared_back_and_forward():
    line = R2Line()
    assert line.tx == 0b1001  # idle: a=1 b=0, c=0 d=1
    assert line.rx(SEIZE, 0.0) is LineEvent.SEIZED and line.tx == 0b1101  # seizure acknowledged
    line.answer(1.0)
    assert line.tx == 0b0101
    line.clear(2.0)
    assert line.state is State.IN_CLEARED_BACK and line.tx == 0b1101
    assert line.rx(IDLE, 3.0) is LineEvent.CLEAR_FORWARD and line.tx == 0b1001 and line.idle  # release guard


def test_outgoing_call_seized_acknowledged_answered_cleared_back():
    line = R2Line()
    line.seize(0.0)
    assert line.tx == 0b0001 and line.deadline == 8.0
    assert line.rx(ACK, 0.1) is LineEvent.SEIZE_ACK and line.deadline is None
    assert line.rx(ANSWER, 2.0) is LineEvent.ANSWERED
    assert line.rx(CLEAR_BACK, 9.0) is LineEvent.CLEAR_BACK and line.tx == 0b1001  # clear-forward at once
    assert line.rx(IDLE, 9.1) is LineEvent.RELEASED and line.idle


def test_outgoing_clear_forward_waits_for_the_release_guard():
    line = R2Line()
    line.seize(0.0)
    line.rx(ACK, 0.1)
    line.clear(1.0)
    assert line.state is State.OUT_CLEARING and line.tx == 0b1001 and not line.idle
    assert line.rx(ACK, 1.1) is None  # still 11: no release guard yet
    assert line.rx(IDLE, 1.2) is LineEvent.RELEASED and line.idle


def test_cd_bits_are_ours_and_ignored_on_receive():
    line = R2Line(cd_bits=0b11)  # as China's exchanges (and openr2's China variant) often send
    assert line.tx == 0b1011
    assert line.rx(0b0011 >> 2, 0.0) is LineEvent.SEIZED and line.tx == 0b1111
    with pytest.raises(DriverError, match="two bits"):
        R2Line(cd_bits=4)


def test_blocking_both_ways():
    line = R2Line()
    assert line.rx(BLOCK, 0.0) is LineEvent.BLOCKED and line.state is State.BLOCKED
    with pytest.raises(DriverError, match="not idle"):
        line.seize(0.1)
    assert line.rx(IDLE, 1.0) is LineEvent.UNBLOCKED and line.idle
    line.block(2.0)
    assert line.tx == 0b1101 and line.rx(SEIZE, 2.1) is None  # a blocked channel is not seized
    assert line.unblock(3.0) is LineEvent.SEIZED  # the far end was seizing all along: now it may


def test_glare_the_far_end_wins():
    line = R2Line()
    line.seize(0.0)
    assert line.rx(SEIZE, 0.02) is LineEvent.GLARE and line.state is State.IN_SEIZED and line.tx == 0b1101


def test_far_end_reset_during_a_call():
    line = R2Line()
    line.seize(0.0)
    line.rx(ACK, 0.1)
    assert line.rx(IDLE, 0.5) is LineEvent.FAILED and line.idle


def test_timers_seizure_acknowledgement_and_release_guard():
    line = R2Line(timers={"seize_ack": 2.0, "release_guard": 3.0})
    line.seize(0.0)
    assert line.handle_timer(1.9) is None
    assert line.handle_timer(2.0) == "seize_ack" and line.idle  # the far end is still idle: no guard owed
    line.seize(5.0)
    line.rx(ACK, 5.1)
    line.clear(6.0)
    assert line.deadline == 9.0 and line.handle_timer(9.0) == "release_guard" and line.state is State.BLOCKED
