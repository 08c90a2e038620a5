"""Faults and phones on the simulated card: dead ports, lost frames, a card pulled out, withheld
numbers on the trunk, agents who dial from their phones and flash the hook."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DriverError
from drivers.base import BLOCK, Alarm, Digit, Flash, OffHook, PortFault, Released, Seized
from drivers.sim import CallerScript, OutboundScript, SimCard
from dsp.dtmf import DtmfDetector
from dsp.g711 import alaw_decode
from tests.drivers.simrun import run


def test_a_dead_port_delivers_idle_frames_is_reported_and_comes_back():
    card = SimCard(2, 0, network={"110": OutboundScript("busy")})
    card.dial(0, "110")
    card.schedule_fault(2.0, "fail_port", 0)
    card.schedule_fault(4.0, "restore_port", 0)
    events, heard = run(card, 6.0)
    assert [(t, e) for t, e in events if isinstance(e, PortFault)] == [
        (2.0, PortFault(0, False, "no frames")), (4.0, PortFault(0, True))]
    tone = np.abs(heard.astype(float))
    assert tone[int(0.6 * 8000):int(1.9 * 8000)].max() > 1000  # busy tone before
    assert tone[int(2.02 * 8000):int(3.98 * 8000)].max() <= 8  # idle while dead
    assert tone[int(4.1 * 8000):int(5.9 * 8000)].max() > 1000  # and again after


def test_lost_frames_arrive_idle_then_the_line_goes_on():
    card = SimCard(1, 0, network={"110": OutboundScript("congestion")})
    card.dial(0, "110")
    run(card, 1.0)
    card.drop_frames(0, 3)
    _, heard = run(card, 0.2, start=1.0)
    frames = np.abs(heard.astype(float)).reshape(-1, BLOCK).max(axis=1)
    assert list(frames[:3] <= 8) == [True, True, True] and frames[3:].min() > 1000


def test_late_frames_arrive_ticks_behind_until_caught_up():
    card = SimCard(1, 0, network={"110": OutboundScript("busy")})
    card.dial(0, "110")
    _, straight = run(card, 2.0)
    late = SimCard(1, 0, network={"110": OutboundScript("busy")})
    late.dial(0, "110")
    late.delay_frames(0, 3)
    _, shifted = run(late, 2.0)
    assert np.array_equal(shifted[3 * BLOCK:], straight[:-3 * BLOCK])  # the same audio, 60 ms later
    late.delay_frames(0, 0)  # caught up: from the next tick the line is current again
    assert np.array_equal(run(late, 0.1, start=2.0)[1], run(card, 0.1, start=2.0)[1])


def test_a_card_pulled_out_fails_every_port_and_drops_its_calls():
    card = SimCard(2, 1, network={"110": OutboundScript("answered", talk_s=None)})
    card.add_caller(CallerScript("13912345678", arrive_at=0.0))
    card.dial(1, "110")
    card.schedule_fault(8.0, "unplug")
    events, _ = run(card, 9.0)
    at8 = [e for t, e in events if t == 8.0]
    assert at8[:3] == [PortFault(0, False, "card removed"), PortFault(1, False, "card removed"),
                       PortFault(2, False, "card removed")]
    assert at8[3:] == [Alarm(1, frozenset({"LOS"})), Released(0, 38), Released(1, 38)]
    with pytest.raises(DriverError, match="cannot dial on port 0: the card has been removed"):
        card.dial(0, "110")
    with pytest.raises(DriverError, match="cannot ring port 2: the card has been removed"):
        card.ring(2, "1")
    card.restore_port(0)  # nothing comes back while the card is out
    assert card.poll(9.0) == []
    with pytest.raises(DriverError, match="unknown fault 'fire'"):
        card.schedule_fault(10.0, "fire")
    with pytest.raises(DriverError, match=r"port 7 does not exist; this card has ports 0..2"):
        card.fail_port(7)


@pytest.mark.parametrize("withheld", ["private", "unavailable"])
def test_withheld_numbers_arrive_with_the_reason(withheld):
    card = SimCard(1, 0, media=False)
    card.add_caller(CallerScript(None, arrive_at=0.0, withheld=withheld))
    assert card.poll(0.0) == [Seized(0, None, "4008001234", withheld)]


def test_an_agent_dials_from_the_phone_as_dtmf_audio_and_flashes():
    card = SimCard(1, 1)
    card.schedule_phone(1.0, "phone_dials", 1, "8002#")
    card.schedule_phone(4.0, "phone_flash", 1)
    det = DtmfDetector(2, BLOCK)
    frames = np.zeros((2, BLOCK), np.uint8)
    events, keys = [], []
    for i in range(250):
        events += [(round(i * 0.02, 2), e) for e in card.poll(i * 0.02)]
        card.read(frames)
        keys += [k for ch, k in det.process(alaw_decode(frames)) if ch == 1]
    assert events == [(1.0, OffHook(1)), (4.0, Flash(1))]
    assert "".join(keys) == "8002#"
    events_only = SimCard(1, 1, media=False)
    events_only.phone_dials(1, "9")
    assert events_only.poll(0.0) == [OffHook(1)] and events_only.poll(0.5) == [Digit(1, "9")]
    with pytest.raises(DriverError, match="phone on port 1 is on hook; only a phone off hook can flash"):
        SimCard(1, 1).phone_flash(1)
