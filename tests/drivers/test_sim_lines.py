"""Analog lines on the simulated card's FXO ports: ring cadence, caller ID in the audio between the
first two bursts (decoded by our receiver), answering, and the far end clearing by busy tone or polarity."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DriverError
from drivers.base import BLOCK, Polarity, PortKind, Ringing
from drivers.sim import SimCard
from drivers.sim.lines import LineScript
from dsp.callerid import CallerIdReceiver, decode_callerid
from dsp.g711 import alaw_decode
from dsp.progress import detect_progress
from tests.drivers.simrun import run

FXO = 2  # one trunk, one seat, then the FXO port


def silent(x: np.ndarray) -> bool:
    return bool(np.abs(x).max() <= 8)  # A-law's idle code decodes to +-8


def line_card(**kw) -> SimCard:
    card = SimCard(1, 1, n_fxo=1, **kw)
    assert card.ports[FXO].kind is PortKind.FXO and card.ports[FXO].name == "FXO 1"
    return card


def test_rings_in_china_cadence_with_mdmf_caller_id_after_the_first_burst():
    card = line_card()
    card.add_line_call(LineScript("01062345678", arrive_at=0.0, name="张三", max_rings=3))
    events, heard = run(card, 16.0, port=FXO)
    assert events == [(0.0, Ringing(FXO, True)), (1.0, Ringing(FXO, False)),
                      (5.0, Ringing(FXO, True)), (6.0, Ringing(FXO, False)),
                      (10.0, Ringing(FXO, True)), (11.0, Ringing(FXO, False))]
    gap = heard[int(1.0 * 8000):int(5.0 * 8000)]
    cid = decode_callerid(gap)
    assert (cid.format, cid.number, cid.name, cid.datetime) == ("mdmf", "01062345678", "张三", (11, 28, 10, 30))
    start = np.flatnonzero(np.abs(gap) > 100)[0] / 8000
    end = np.flatnonzero(np.abs(gap) > 100)[-1] / 8000
    assert 0.5 <= start <= 0.7 and end <= 4.0 - 0.2  # YD/T 1277: >= 0.5 s after the ring, >= 0.2 s before the next
    assert silent(heard[int(6.0 * 8000):])  # nothing after the second burst
    assert card.line_calls == {} and card.poll(16.0) == []  # gave up after 3 rings: the line just stops


def test_the_streaming_receiver_reads_the_line_as_the_runtime_would():
    card = line_card()
    card.add_line_call(LineScript(None, arrive_at=0.0, withheld="private", cid="sdmf"))
    rx = CallerIdReceiver(3, BLOCK)
    frames = np.zeros((3, BLOCK), np.uint8)
    got = []
    for i in range(300):
        card.poll(i * 0.02)
        card.read(frames)
        got += rx.process(alaw_decode(frames))
    assert [(ch, c.format, c.number, c.number_absent_reason) for ch, c in got] == [(FXO, "sdmf", "", "P")]


def test_dtmf_caller_id_comes_before_the_first_burst():
    card = line_card()
    card.add_line_call(LineScript("13912345678", arrive_at=0.0, cid="dtmf", max_rings=1))
    events, heard = run(card, 4.0, port=FXO)
    (t_ring, first), = [e for e in events if e[1] == Ringing(FXO, True)]
    cid = decode_callerid(heard[:int(t_ring * 8000)])
    assert (cid.format, cid.number) == ("dtmf", "13912345678")
    assert 0.2 <= t_ring - np.flatnonzero(np.abs(heard) > 100)[-1] / 8000 <= 0.5


@pytest.mark.parametrize("clear_by", ["busy", "polarity"])
def test_answered_line_talks_then_the_far_end_clears(clear_by):
    card = line_card()
    call = card.add_line_call(LineScript("075512345678", arrive_at=0.0, talk_s=5.0, clear_by=clear_by))
    run(card, 6.5, port=FXO)
    card.answer(FXO)
    assert call.state == "talking" and call.answered_at == pytest.approx(6.48)
    events, heard = run(card, 15.0, port=FXO, start=6.5)
    talk, after = heard[:int(4.9 * 8000)], heard[int(5.1 * 8000):]
    assert np.sqrt(np.mean(talk.astype(float) ** 2)) > 300  # someone talks
    assert Ringing(FXO, True) not in [e for _, e in events]  # answered lines ring no more
    if clear_by == "polarity":
        assert events == [(11.48, Polarity(FXO))] and silent(after)
    else:
        assert events == [] and detect_progress(after)[1] == "busy"  # the only sign the caller left
    card.hangup(FXO)
    assert call.state == "ended" and card.line_calls == {}
    assert silent(run(card, 1.0, port=FXO, start=21.5)[1])


def test_a_second_call_on_a_busy_line_is_missed_and_bad_scripts_are_refused():
    card = line_card()
    card.add_line_call(LineScript("1", arrive_at=0.0))
    second = card.add_line_call(LineScript("2", arrive_at=1.0))
    run(card, 2.0, port=FXO)
    assert second.state == "missed"
    with pytest.raises(DriverError, match="this card has no FXO ports"):
        SimCard(1, 0).add_line_call(LineScript("1", arrive_at=0.0))
    with pytest.raises(DriverError, match=r"port 0 is not an FXO port; FXO ports are \[2\]"):
        card.add_line_call(LineScript("1", arrive_at=0.0), port=0)
    with pytest.raises(DriverError, match="clear_by 'silence' is not 'busy' or 'polarity'"):
        LineScript("1", 0.0, clear_by="silence")
    with pytest.raises(DriverError, match="a line caller has a number, or withheld"):
        LineScript("1", 0.0, withheld="private")
    with pytest.raises(DriverError, match=r"cannot dial on port 2: outbound calls go on trunk ports 0..0"):
        card.dial(FXO, "110")
