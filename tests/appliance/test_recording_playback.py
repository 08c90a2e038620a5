"""Playback over the phone: an agent dials ``*6 N #`` and hears recording N, sample for sample; a number that does not
exist or a recording retention deleted gives the ``code.failed`` prompt. The number is shown while recording (status)
and found with ``recording.lookup``. Real calls on the simulated card in virtual time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from appliance.control import CommandError
from appliance.wavfile import read_alaw_wav
from drivers.sim import AgentScript, CallerScript
from dsp.g711 import alaw_decode, alaw_encode
from tests.appliance import test_recording_policy
from tests.appliance.test_recording_policy import EPOCH0, TICK

make_core = test_recording_policy.make_core  # the fixture: cores on the sim card in virtual time

SILENCE = int(alaw_decode(alaw_encode(np.zeros(1, np.int16)))[0])  # what a phone hears of nothing


def through_the_line(x: np.ndarray) -> np.ndarray:
    """What a phone hears of int16 samples the box sends: A-law coded and decoded."""
    return alaw_decode(alaw_encode(x.astype(np.int16)))


def find(heard: np.ndarray, clip: np.ndarray) -> int | None:
    """Where ``clip`` starts in ``heard``, whole, at a tick boundary (players start at a tick); None if nowhere."""
    for k in range(0, heard.size - clip.size + 1, 160):
        if np.array_equal(heard[k:k + clip.size], clip):
            return k
    return None


def code_time(core, code: str) -> float:
    core.settle()
    [e] = [e for e in core.journal.events("") if e["type"] == "agent.code" and e["data"]["code"] == code]
    assert e["data"]["ok"] is True
    return e["ts"] - EPOCH0


def a_recorded_call(make_core, mode, epoch=EPOCH0, **recording):
    agent = AgentScript(ring_delay_s=1.0, talk_s=4.0, tone_hz=1500.0, tone_dbm0=-13.0, record=True)
    core, card, events = make_core(agent=agent, epoch=epoch, recording={"mode": mode, "min_free_mb": 0, **recording})
    card.add_caller(CallerScript("13800138000", arrive_at=0.5, digits="1", digit_delay_s=1.0, tone_hz=1000.0,
                                 tone_dbm0=-10.0))
    core.runtime.run_until(5.0)
    [active] = core.status()["recordings"]["active"]  # the number is shown while the call is recorded
    core.runtime.run_until(10.0)
    core.settle()
    [call] = core.journal.calls()
    assert active == {"number": 1, "call_id": call["call_id"], "kind": "call", "path": call["recording"],
                      "seconds": active["seconds"]} and 1.0 < active["seconds"] < 3.0
    return core, card, call


@pytest.mark.parametrize("mode", ["mono", "stereo"])
def test_an_agent_dials_the_number_and_hears_the_recording(make_core, mode):
    core, card, call = a_recorded_call(make_core, mode)
    seat2 = core.logic.acd.by_seat[2].port
    card.phone_dials(seat2, "*61#")
    core.runtime.run_until(18.0)
    card.phone_hangs_up(seat2)
    core.runtime.run_until(19.0)

    codes, _ = read_alaw_wav(core.data.root / call["recording"])
    pcm = alaw_decode(codes).astype(np.int32)
    assert pcm.shape[1] == pytest.approx(4.0 * 8000, abs=160)
    mixed = pcm[0] if mode == "mono" else np.clip(pcm[0] + pcm[1], -32768, 32767)  # stereo: both parties heard
    expected = through_the_line(mixed)
    if mode == "mono":
        np.testing.assert_array_equal(expected, alaw_decode(codes[0]))  # the very samples recorded
    heard = card.phones[seat2].heard_audio()  # from the moment the phone was lifted, at 10.0 s
    k = find(heard, expected)
    assert k is not None
    # it began the tick after the code was complete (loaded off the tick), with no "done" beep before it
    dialled = code_time(core, "*61#") - 10.0
    assert 0.0 < k / 8000 - dialled <= 2 * TICK + 1e-9
    assert np.all(heard[int(dialled * 8000) + 160:k] == SILENCE)
    assert np.all(heard[k + expected.size:] == SILENCE)  # and nothing after it until the phone went down
    assert core.logic.acd.by_seat[2].state == "available"  # back as it was, once the phone is down


@pytest.mark.parametrize("digits, why", [("*69#", "no such number"), ("*61#", "deleted")])
def test_a_recording_that_cannot_be_played_gives_the_failed_prompt(make_core, digits, why):
    if why == "deleted":  # recorded two days ago; the box starts today keeping recordings one day
        core, _, call = a_recorded_call(make_core, "mono", epoch=EPOCH0 - 2 * 86400)
        core.close()
        core, card, _ = make_core(agent=AgentScript(record=True), recording={"keep_days": 1, "min_free_mb": 0})
        [row] = core.recindex.of_call(call["call_id"])
        assert (row["number"], row["state"], row["note"]) == (1, "deleted", "age")
    else:
        core, card, _ = a_recorded_call(make_core, "mono")
    seat2 = core.logic.acd.by_seat[2].port
    t0 = core.clock.now()
    card.phone_dials(seat2, digits)
    core.runtime.run_until(t0 + 5.0)
    failed = through_the_line(np.asarray(core.runtime.player.prompts["code.failed"]))
    heard = card.phones[seat2].heard_audio()  # from t0
    k = find(heard, failed)
    assert k is not None
    assert 0.0 < k / 8000 - (code_time(core, digits) - t0) <= 2 * TICK + 1e-9


def test_recording_lookup_by_number_and_by_call(make_core):
    core, _, call = a_recorded_call(make_core, "mono")
    [row] = asyncio.run(core.recording_lookup(number=1))["recordings"]
    assert (row["number"], row["call_id"], row["path"], row["state"]) == (1, call["call_id"], call["recording"], "done")
    assert asyncio.run(core.recording_lookup(call_id=call["call_id"])) == {"recordings": [row]}
    assert asyncio.run(core.recording_lookup(call_id="nope")) == {"recordings": []}
    with pytest.raises(CommandError) as err:
        asyncio.run(core.recording_lookup(number=2))
    assert (err.value.code, str(err.value)) == ("not_found", "recording 2 does not exist")
    with pytest.raises(CommandError) as err:
        asyncio.run(core.recording_lookup(number=1, call_id=call["call_id"]))
    assert (err.value.code, str(err.value)) == ("bad_argument", "give number or call_id (one of them)")
