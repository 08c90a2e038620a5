"""The simulated network's outbound calls and span alarms: the signalling the core gets and the audio
it hears, judged by our call-progress detector exactly as on a real trunk."""

from __future__ import annotations

import pytest

from appliance.errors import DriverError
from drivers.base import Alarm, Alerting, Connected, Released, Seized
from drivers.sim import CallerScript, OutboundScript, SimCard
from dsp.progress import detect_progress
from tests.drivers.simrun import run

NUMBER = "13800138000"


@pytest.mark.parametrize("outcome,signalling,detected", [
    ("answered", [(0.5, Alerting(0)), (6.5, Connected(0)), (16.5, Released(0, 16))], "answered"),
    ("busy", [(8.5, Released(0, 17))], "busy"),
    ("congestion", [(8.5, Released(0, 34))], "congestion"),
    ("vacant", [(8.5, Released(0, 1))], "vacant"),
    ("special_information", [(8.5, Released(0, 1))], "special_information"),
    ("no_answer", [(0.5, Alerting(0)), (6.5, Released(0, 19))], "no_answer"),
    ("fax", [(0.5, Alerting(0)), (6.5, Connected(0)), (16.5, Released(0, 16))], "fax"),
])
def test_each_outcome_as_signalling_and_as_tones_on_the_line(outcome, signalling, detected):
    card = SimCard(2, 0, network={NUMBER: OutboundScript(outcome, talk_s=10.0)})
    card.dial(0, NUMBER)
    events, heard = run(card, 17.0)
    assert events == signalling
    _, got = detect_progress(heard)
    assert got == detected
    call = card.outbound[0]
    assert call.number == NUMBER and call.state == "ended" and call.cause == signalling[-1][1].cause


def test_north_american_network_tones():
    card = SimCard(1, 0, network={NUMBER: OutboundScript("busy")}, tone_plan="us")
    card.dial(0, NUMBER)
    _, heard = run(card, 9.0)
    assert detect_progress(heard, plan="us")[1] == "busy"
    assert detect_progress(heard, plan="cn")[1] != "busy"


def test_unknown_numbers_are_vacant_and_the_box_may_hang_up_first():
    card = SimCard(1, 0)
    card.dial(0, "999")
    events, heard = run(card, 2.0)
    assert events == [] and detect_progress(heard)[1] == "vacant"
    card.hangup(0, 16)
    assert card.outbound[0].state == "ended" and card.outbound[0].cause == 16
    assert run(card, 8.0, start=2.0)[0] == []  # the network does not clear a call the box already cleared


def test_dial_refuses_what_a_trunk_cannot_do():
    card = SimCard(1, 1)
    with pytest.raises(DriverError, match=r"cannot dial on port 1: outbound calls go on trunk ports 0..0"):
        card.dial(1, NUMBER)
    with pytest.raises(DriverError, match=r"cannot dial '12a': a number is one or more of 0-9 \* #"):
        card.dial(0, "12a")
    card.dial(0, NUMBER)
    with pytest.raises(DriverError, match=r"cannot dial on port 0: the channel carries a call"):
        card.dial(0, NUMBER)
    with pytest.raises(DriverError, match=r"outbound outcome 'maybe' is not one of answered, busy"):
        OutboundScript("maybe")


def test_a_span_alarm_mid_call_ends_every_call_with_cause_38_and_clears_by_itself():
    card = SimCard(3, 0, network={NUMBER: OutboundScript("answered", talk_s=None)})
    caller = card.add_caller(CallerScript("13912345678", arrive_at=0.1))
    card.dial(1, NUMBER)
    card.schedule_alarm(10.0, 1, {"RED", "LOS"})
    card.schedule_alarm(20.0, 1, set())
    late = card.add_caller(CallerScript("13700000000", arrive_at=15.0))
    events, _ = run(card, 25.0)
    assert events == [
        (0.1, Seized(0, "13912345678", "4008001234")),
        (0.5, Alerting(1)),
        (6.5, Connected(1)),
        (10.0, Alarm(1, frozenset({"RED", "LOS"}))),
        (10.0, Released(0, 38)),
        (10.0, Released(1, 38)),
        (20.0, Alarm(1, frozenset())),
    ]
    assert caller.outcome == "dropped" and late.outcome == "blocked"
    assert card.poll(25.0) == []
    card.dial(2, NUMBER)  # the span is up again
    assert run(card, 1.0, start=25.0)[0] == [(25.5, Alerting(2))]


def test_dialling_on_a_span_in_alarm_fails_at_once():
    card = SimCard(1, 0)
    card.set_alarm(1, {"BLUE"})
    card.dial(0, NUMBER)
    assert card.poll(0.0) == [Alarm(1, frozenset({"BLUE"})), Released(0, 38)]
    with pytest.raises(DriverError, match=r"unknown span alarm 'PURPLE'; allowed: RED, YELLOW, BLUE, LOS, LOF"):
        card.set_alarm(1, {"PURPLE"})
    with pytest.raises(DriverError, match=r"span 2 does not exist; this card has span 1"):
        card.set_alarm(2, set())
