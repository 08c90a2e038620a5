"""A supervisor on a live call, end to end with audio: a distinct tone per party, and which tones reach which party
at what level in listen, whisper and barge; intercept; force release; forced states; a conference by flash."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.control import CommandError
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from drivers.sim import AgentScript, CallerScript, SimCard
from dsp.levels import tone_level_dbm0

EPOCH0 = 1_764_300_000.0
TRUNKS = 4
CALLER_HZ, AGENT_HZ, SUP_HZ, THIRD_HZ = 1000.0, 1800.0, 600.0, 2400.0
LEVEL = -15.0  # each party's tone, dBm0


def port(seat):
    return TRUNKS + seat - 1


@pytest.fixture
def box(tmp_path):
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"trunk_channels": TRUNKS, "seats": 3}, "queue": {"strategy": "fixed-order"}})
    scripts = [AgentScript(ring_delay_s=1.0, talk_s=1000.0, tone_hz=hz, tone_dbm0=LEVEL, record=True)
               for hz in (AGENT_HZ, SUP_HZ, THIRD_HZ)]
    card = SimCard(TRUNKS, 3, agents=scripts, media=True, seed=2)
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, VirtualClock(EPOCH0), card=card, prompts=prompts, media=True)
    caller = card.add_caller(CallerScript("13800138000", arrive_at=1.0, digit_delay_s=1.0, tone_hz=CALLER_HZ,
                                          tone_dbm0=LEVEL, record=True))
    core.runtime.run_until(5.0)  # seat 1 answered at about 3.1
    yield core, card, caller
    core.close()


def levels(audio: np.ndarray, seconds: float = 1.0) -> dict[float, float]:
    """Each party's tone level (dBm0) in the last ``seconds`` of what a party heard."""
    x = audio[None, -int(seconds * 8000):].astype(np.float64)
    return {hz: round(float(tone_level_dbm0(x, hz)[0]), 1) for hz in (CALLER_HZ, AGENT_HZ, SUP_HZ)}


def hears(lv: dict, hz: float) -> bool:
    return lv[hz] == pytest.approx(LEVEL, abs=0.6)


def silent(lv: dict, hz: float) -> bool:
    return lv[hz] < LEVEL - 40


def test_listen_whisper_barge_and_intercept_are_rows_of_the_switch(box):
    core, card, caller = box
    assert core.logic.acd.agents[0].state == "talking"
    core.cmd_supervise(supervisor=2, target=1, mode="listen")
    assert card.phones[port(2)].hook == "ringing"
    core.runtime.run_until(8.0)  # picked up at 6.0
    sup_ph, agent_ph = card.phones[port(2)], card.phones[port(1)]
    lv = levels(sup_ph.heard_audio())
    assert hears(lv, CALLER_HZ) and hears(lv, AGENT_HZ)
    assert silent(levels(caller.heard_audio()), SUP_HZ) and silent(levels(agent_ph.heard_audio()), SUP_HZ)

    core.cmd_supervise(supervisor=2, target=1, mode="whisper")
    core.runtime.run_until(10.0)
    lv_agent = levels(agent_ph.heard_audio())
    assert hears(lv_agent, SUP_HZ) and hears(lv_agent, CALLER_HZ)
    assert silent(levels(caller.heard_audio()), SUP_HZ)

    core.cmd_supervise(supervisor=2, target=1, mode="barge")
    core.runtime.run_until(12.0)
    lv_caller = levels(caller.heard_audio())
    assert hears(lv_caller, SUP_HZ) and hears(lv_caller, AGENT_HZ)
    assert hears(levels(sup_ph.heard_audio()), CALLER_HZ)

    core.cmd_intercept(supervisor=2, target=1)
    core.runtime.run_until(14.0)
    lv_caller = levels(caller.heard_audio())
    assert hears(lv_caller, SUP_HZ) and silent(lv_caller, AGENT_HZ)  # the agent is dropped
    assert silent(levels(agent_ph.heard_audio(), 0.4), CALLER_HZ)  # and hears busy tone, not the caller
    assert core.logic.calls[0].agent.seat == 2
    core.settle()
    types = [e["type"] for e in core.journal.events(core.logic.calls[0].call_id)]
    assert types.count("call.supervise") == 3 and "call.intercepted" in types


def test_force_release_and_forced_states(box):
    core, card, caller = box
    core.cmd_force(seat=1, state="busy")  # during the call: after it
    assert core.logic.acd.agents[0].forced == ("busy", "supervisor")
    core.cmd_release(seat=1)
    core.runtime.run_until(8.0)
    core.settle()
    rec = core.journal.calls()[0]
    assert (rec["disposition"], rec["ended_by"]) == ("answered", "system")
    ended = [e for e in core.journal.events(rec["call_id"]) if e["type"] == "call.ended"][0]["data"]
    assert ended["reason"] == "force_release" and caller.outcome == "completed"
    assert core.logic.acd.agents[0].state == "busy" and core.logic.acd.agents[0].reason == "supervisor"
    with pytest.raises(CommandError, match="seat 3 is not in a call"):
        core.cmd_supervise(supervisor=2, target=3, mode="listen")
    with pytest.raises(CommandError, match="cannot supervise itself"):
        core.cmd_supervise(supervisor=2, target=2, mode="listen")


def test_a_conference_by_flash_mixes_every_party_and_holds_with_music(box):
    core, card, caller = box
    seat1, seat3 = port(1), port(3)
    card.phone_flash(seat1)
    core.runtime.run_until(6.0)
    held = caller.heard_audio()[-8000:].astype(np.float64)
    assert silent(levels(caller.heard_audio()), AGENT_HZ) and np.sqrt(np.mean(held ** 2)) > 30  # music, no agent
    card.phone_dials(seat1, "803")  # DTMF audio over the agent's own voice
    core.runtime.run_until(9.0)  # seat 3 rings, answers after 1 s
    call = core.logic.calls[0]
    assert call.consult is not None and call.consult["state"] == "talking"
    core.runtime.run_until(10.5)
    x = card.phones[seat3].heard_audio()[None, -8000:].astype(np.float64)
    assert tone_level_dbm0(x, AGENT_HZ)[0] == pytest.approx(LEVEL, abs=0.6)  # the consultation: agent and seat 3
    assert tone_level_dbm0(x, CALLER_HZ)[0] < LEVEL - 40  # the caller waits, unheard
    card.phone_flash(seat1)
    card.phone_dials(seat1, "3")
    core.runtime.run_until(14.0)
    assert call.conf == [0, seat1, seat3]
    for audio, others in ((caller.heard_audio(), (AGENT_HZ, THIRD_HZ)),
                          (card.phones[seat3].heard_audio(), (CALLER_HZ, AGENT_HZ)),
                          (card.phones[seat1].heard_audio(), (CALLER_HZ, THIRD_HZ))):
        x = audio[None, -8000:].astype(np.float64)
        assert [round(float(tone_level_dbm0(x, hz)[0])) for hz in others] == [LEVEL, LEVEL]
