"""The spine's call path end to end on the simulated card, in virtual time, with real audio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from appliance.wavfile import read_alaw_wav
from drivers.sim import AgentScript, CallerScript, SimCard
from dsp.g711 import alaw_decode
from dsp.levels import rms_dbm0, tone_level_dbm0

EPOCH0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC: virtual time starts here
TICK = 0.02


@pytest.fixture
def make_core(tmp_path):
    """A factory of cores on the simulated card in virtual time; every core is closed after the test."""
    made = []

    def make(agent: AgentScript, *, media=True, **cfg_updates):
        core, card, events = _make_core(tmp_path, agent, media=media, **cfg_updates)
        made.append(core)
        return core, card, events

    yield make
    for core in made:
        core.close()


def _make_core(tmp_path, agent: AgentScript, *, media=True, **cfg_updates):
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate(cfg_updates)
    clock = VirtualClock(EPOCH0)
    card = SimCard(cfg["card"]["trunk_channels"], cfg["card"]["seats"], agent=agent, media=media, seed=1)
    # the beep stands in for speech: the call path does not depend on TTS here
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, clock, card=card, prompts=prompts, media=media)
    events = []
    core.bus.listen(events.append)
    return core, card, events


def kinds(events):
    return [e["event"] for e in events]


def test_inbound_call_end_to_end(make_core):
    agent = AgentScript(ring_delay_s=3.0, talk_s=20.0, tone_hz=1500.0, tone_dbm0=-13.0, record=True)
    core, card, events = make_core(agent)
    caller = card.add_caller(CallerScript("13800138000", arrive_at=1.0, digit_delay_s=1.5,
                                          tone_hz=1000.0, tone_dbm0=-10.0, record=True))
    core.runtime.run_until(40.0)
    core.settle()

    # the digit was heard by our detector in the audio: the card in media mode sends no Digit events
    assert card.media
    digits = [e for e in core.journal.events(events[0]["data"]["call_id"]) if e["type"] == "ivr.digit"]
    assert [d["data"]["digit"] for d in digits] == ["1"]
    assert kinds(events) == [
        "call.offered", "call.queued", "queue.length", "agent.state", "call.ringing", "queue.length",
        "agent.state", "call.answered", "agent.state", "call.ended",
    ]
    ringing = next(e for e in events if e["event"] == "call.ringing")["data"]
    assert ringing["seat"] == 1
    phone = card.phones[30]
    assert phone.rings == 1 and phone.shown_caller == "13800138000"
    assert caller.outcome == "completed"

    # the call record: times on the virtual clock, in epoch seconds
    call_id = events[0]["data"]["call_id"]
    rec = core.journal.get_call(call_id)
    pressed = 1.0 + 1.5  # the box answered at arrival; the caller pressed 1.5 s later
    assert rec["start_ts"] == pytest.approx(EPOCH0 + 1.0)
    assert rec["answer_ts"] == pytest.approx(EPOCH0 + 1.0)
    queued = rec["queued_ts"] - EPOCH0
    # the tone starts in the frame read at 2.50; the detector reports after its second 20 ms frame
    assert pressed + 0.02 - 1e-6 <= queued <= pressed + 0.1
    assert rec["agent_answer_ts"] - rec["queued_ts"] == pytest.approx(3.0, abs=TICK + 1e-9)
    assert rec["end_ts"] - rec["agent_answer_ts"] == pytest.approx(20.0, abs=TICK + 1e-9)
    assert rec["wait_s"] == pytest.approx(rec["agent_answer_ts"] - rec["queued_ts"])
    assert rec["talk_s"] == pytest.approx(rec["end_ts"] - rec["agent_answer_ts"])
    assert (rec["disposition"], rec["ended_by"], rec["seat"], rec["caller"]) == ("answered", "agent", 1, "13800138000")
    assert len(core.journal.calls()) == 1

    # audio both ways at the level sent (two A-law codings on the way)
    heard_by_agent = phone.heard_audio()
    heard_by_caller = caller.heard_audio()
    mid_agent = heard_by_agent[None, 8000:8000 + 16000].astype(np.float64)
    assert tone_level_dbm0(mid_agent, 1000.0)[0] == pytest.approx(-10.0, abs=0.3)
    talk_start = int(round((rec["agent_answer_ts"] - rec["answer_ts"]) * 8000))
    mid_caller = heard_by_caller[None, talk_start + 8000:talk_start + 24000].astype(np.float64)
    assert tone_level_dbm0(mid_caller, 1500.0)[0] == pytest.approx(-13.0, abs=0.3)
    assert tone_level_dbm0(mid_caller, 1000.0)[0] < -50  # no echo of the caller's own tone

    # the recording: a valid A-law WAV as long as the talk, with both directions in it
    path = core.data.root / rec["recording"]
    codes, rate = read_alaw_wav(path)
    assert rate == 8000 and codes.shape[0] == 1
    assert codes.shape[1] / 8000 == pytest.approx(rec["talk_s"], abs=TICK + 1e-9)
    audio = alaw_decode(codes)[:, 8000:-8000].astype(np.float64)
    assert tone_level_dbm0(audio, 1000.0)[0] == pytest.approx(-10.0, abs=0.3)
    assert tone_level_dbm0(audio, 1500.0)[0] == pytest.approx(-13.0, abs=0.3)


def test_caller_hangs_up_first_and_agent_hears_busy(make_core):
    agent = AgentScript(ring_delay_s=1.0, talk_s=100.0, record=True)
    core, card, events = make_core(agent)
    card.add_caller(CallerScript("02088886666", arrive_at=0.5, digit_delay_s=1.0, talk_s=8.0))
    core.runtime.run_until(20.0)
    core.settle()
    rec = core.journal.calls()[0]
    assert (rec["disposition"], rec["ended_by"]) == ("answered", "caller")
    assert rec["talk_s"] == pytest.approx(8.0, abs=TICK + 1e-9)
    # after the caller left, the agent heard China busy tone (450 Hz) until putting the phone down
    heard = card.phones[30].heard_audio()
    # the agent puts the phone down 0.5 s after the caller left: the first 0.3 s of that is tone-on
    busy = heard[None, -4000:-4000 + 2400].astype(np.float64)
    assert tone_level_dbm0(busy, 450.0)[0] == pytest.approx(-10.0, abs=0.3)
    gap = heard[None, -4000 + 2900:].astype(np.float64)  # 0.35 s on, then off
    assert tone_level_dbm0(gap, 450.0)[0] < -40
    states = [(e["data"]["seat"], e["data"]["state"]) for e in events if e["event"] == "agent.state"]
    assert states == [(1, "ringing"), (1, "talking"), (1, "busy"), (1, "available")]


def test_caller_abandons_while_agents_do_not_answer(make_core):
    agent = AgentScript(ring_delay_s=1000.0)
    core, card, events = make_core(agent, queue={"ring_timeout_s": 5})
    caller = card.add_caller(CallerScript(None, arrive_at=0.0, digit_delay_s=1.0, patience_s=12.0))
    core.runtime.run_until(30.0)
    core.settle()
    rec = core.journal.calls()[0]
    assert caller.outcome == "abandoned"
    assert (rec["disposition"], rec["ended_by"], rec["caller"], rec["recording"]) == ("abandoned", "caller", None, None)
    assert rec["wait_s"] == pytest.approx(12.0, abs=0.1)
    # rang seat 1 for 5 s, then the next longest-idle seat, and so on: never the same seat twice in a row
    rung = [e["data"]["seat"] for e in events if e["event"] == "call.ringing"]
    assert rung == [1, 2, 3]
    assert core.logic.counts == {"offered": 1, "answered": 0, "abandoned": 1}
    assert all(a.state == "available" for a in core.logic.acd.agents)


def test_event_mode_gives_the_same_call_record(make_core):
    """Without media the digits travel as events; the record matches the media run but for detection delay."""
    agent = AgentScript(ring_delay_s=2.0, talk_s=30.0)
    core, card, events = make_core(agent, media=False)
    card.add_caller(CallerScript("13912345678", arrive_at=2.0, digit_delay_s=1.0))
    core.runtime.run_until(60.0)
    core.settle()
    rec = core.journal.calls()[0]
    assert rec["queued_ts"] - EPOCH0 == pytest.approx(3.0)
    assert rec["wait_s"] == pytest.approx(2.0)
    assert rec["talk_s"] == pytest.approx(30.0)
    assert rec["recording"] is None
    assert core.runtime.stats.ticks < 20  # stepped from deadline to deadline, not every 20 ms



def test_speech_both_ways_reaches_the_other_side_and_the_recording(make_core):
    agent = AgentScript(ring_delay_s=1.0, talk_s=12.0, speech=True, tone_dbm0=-20.0, record=True)
    core, card, events = make_core(agent)
    caller = card.add_caller(CallerScript("13700001111", arrive_at=0.0, digit_delay_s=1.0, speech=True,
                                          tone_dbm0=-18.0, record=True))
    core.runtime.run_until(20.0)
    core.settle()
    rec = core.journal.calls()[0]
    heard = card.phones[30].heard_audio()[None, :].astype(np.float64)
    assert rms_dbm0(heard)[0] == pytest.approx(-18.0, abs=0.5)  # the caller's voice, whole, at its level
    codes, _ = read_alaw_wav(core.data.root / rec["recording"])
    mixed = 10 * math.log10(10 ** (-18 / 10) + 10 ** (-20 / 10))  # two independent voices add in power
    assert rms_dbm0(alaw_decode(codes).astype(np.float64))[0] == pytest.approx(mixed, abs=1.0)
    # speech during the call is not mistaken for digits: the IVR heard exactly one key
    digits = [e for e in core.journal.events(rec["call_id"]) if e["type"] == "ivr.digit"]
    assert len(digits) == 1
    assert caller.outcome == "completed"


def test_agent_state_command_takes_a_seat_out_of_the_rotation(make_core):
    agent = AgentScript(ring_delay_s=1.0, talk_s=5.0)
    core, card, events = make_core(agent)
    assert core.agent_state(1, "busy") == {"seat": 1, "state": "busy", "reason": "other", "agent_id": None}
    card.add_caller(CallerScript("13700002222", arrive_at=0.0, digit_delay_s=1.0))
    core.runtime.run_until(1.5)
    assert [e["data"]["seat"] for e in events if e["event"] == "call.ringing"] == [2]
    from appliance.control import CommandError
    with pytest.raises(CommandError) as err:
        core.agent_state(2, "logged_out")
    assert (err.value.code, str(err.value)) == ("conflict", "seat 2 is ringing; its state can change after the call")
    with pytest.raises(CommandError) as err:
        core.agent_state(9, "busy")
    assert err.value.code == "not_found"
