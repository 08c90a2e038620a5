"""The simulated card on its own: trunk seizures, blocking, DTMF as audio, phones that ring and answer."""

from __future__ import annotations

import numpy as np

from drivers.base import BLOCK, Digit, OffHook, OnHook, PortKind, Released, Seized
from drivers.sim import AgentScript, CallerScript, SimCard, poisson_callers
from dsp.dtmf import detect_digits
from dsp.g711 import alaw_decode


def test_ports_callers_and_blocking():
    card = SimCard(2, 1, box_number="4001234567")
    assert [p.kind for p in card.ports] == [PortKind.TRUNK, PortKind.TRUNK, PortKind.FXS]
    assert [p.name for p in card.ports] == ["E1 1/1", "E1 1/2", "FXS 1"]
    callers = [card.add_caller(CallerScript(f"1380000000{i}", arrive_at=1.0)) for i in range(3)]
    assert card.poll(0.5) == [] and card.next_deadline() == 1.0
    assert card.poll(1.0) == [Seized(0, "13800000000", "4001234567"), Seized(1, "13800000001", "4001234567")]
    assert callers[2].outcome == "blocked"  # both channels busy: the network gives congestion


def test_caller_presses_digits_as_audio_after_answer_then_abandons():
    card = SimCard(1, 0)
    card.add_caller(CallerScript(None, arrive_at=0.0, digits="15#", digit_delay_s=0.5, patience_s=2.0))
    assert card.poll(0.0) == [Seized(0, None, "4008001234", "unavailable")]  # no number, no reason: unavailable
    card.answer(0)
    frames = np.zeros((1, BLOCK), np.uint8)
    audio, events = [], []
    for k in range(1, 200):
        events += card.poll(k * 0.02)
        card.read(frames)
        audio.append(alaw_decode(frames[0]))
    assert detect_digits(np.concatenate(audio)) == "15#"
    # patience runs from the last key press (0.5 s + three 0.2 s keys are queued as audio at 0.5 s)
    assert events == [Released(0, 16)]


def test_event_mode_sends_digits_as_events():
    card = SimCard(1, 0, media=False)
    card.add_caller(CallerScript("1", arrive_at=0.0, digits="12", digit_delay_s=1.0))
    card.poll(0.0)
    card.answer(0)
    assert card.poll(1.0) == [Digit(0, "1"), Digit(0, "2")]


def test_phone_rings_answers_talks_and_hangs_up():
    card = SimCard(1, 1, agent=AgentScript(ring_delay_s=2.0, talk_s=10.0))
    card.ring(1, "13800138000")
    assert card.phones[1].hook == "ringing" and card.phones[1].shown_caller is None
    assert card.poll(1.9) == [] and card.phones[1].shown_caller == "13800138000"  # after the first ring
    assert card.poll(2.0) == [OffHook(1)]
    card.bridge(1, 0)
    assert card.poll(11.9) == [] and card.poll(12.0) == [OnHook(1)]


def test_phone_that_stops_ringing_is_not_answered_late():
    card = SimCard(1, 1, agent=AgentScript(ring_delay_s=2.0))
    card.ring(1, None)
    card.stop_ring(1)
    assert card.poll(5.0) == [] and card.phones[1].hook == "on"


def test_poisson_traffic_is_seeded_and_has_the_asked_rate():
    a = list(poisson_callers(3600, until=1000.0, seed=4))
    b = list(poisson_callers(3600, until=1000.0, seed=4))
    assert [c.arrive_at for c in a] == [c.arrive_at for c in b]
    assert 1000 - 4 * 32 < len(a) < 1000 + 4 * 32  # Poisson(1000)
    assert all(len(c.number) == 11 for c in a)


def test_phone_rings_in_china_cadence_and_shows_the_caller_only_after_the_first_ring():
    card = SimCard(1, 2, agents=[AgentScript(ring_delay_s=11.0), AgentScript(ring_delay_s=0.5)])
    card.ring(1, "13800138000")
    card.ring(2, "13900139000")
    for t in range(0, 1201):
        card.poll(t / 100)
    assert card.phones[1].ring_log == [(0.0, 1.0), (5.0, 6.0), (10.0, 11.0)]
    assert card.phones[1].hook == "off" and card.phones[1].shown_caller == "13800138000"
    # picked up during the first ring: the number never reached the display
    assert card.phones[2].ring_log == [(0.0, 0.5)] and card.phones[2].shown_caller is None
