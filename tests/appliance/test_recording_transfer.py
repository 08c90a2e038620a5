"""A recording follows its call: recorded at the caller's port both ways, it holds whoever the caller talks to after an
attended transfer, and nothing of the first agent's next call. A distinct tone per party, levels asserted."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.wavfile import read_alaw_wav
from drivers.sim import AgentScript, CallerScript
from dsp.g711 import alaw_decode
from dsp.levels import tone_level_dbm0
from tests.appliance import test_recording_policy
from tests.appliance.test_recording_policy import EPOCH0

make_core = test_recording_policy.make_core  # the fixture: cores on the sim card in virtual time

CALLER_HZ, FIRST_HZ, SECOND_HZ, OTHER_HZ = 1000.0, 1500.0, 2000.0, 700.0


def levels(pcm: np.ndarray, channel: int = 0) -> dict[float, float]:
    x = pcm.astype(np.float64)
    return {hz: round(float(tone_level_dbm0(x, hz)[channel]), 1) for hz in (CALLER_HZ, FIRST_HZ, SECOND_HZ, OTHER_HZ)}


@pytest.mark.parametrize("mode", ["mono", "stereo"])
def test_the_recording_follows_an_attended_transfer(make_core, mode):
    scripts = [AgentScript(ring_delay_s=1.0, talk_s=1000.0, tone_hz=FIRST_HZ, tone_dbm0=-13.0),
               AgentScript(ring_delay_s=1.0, talk_s=14.0, tone_hz=SECOND_HZ, tone_dbm0=-16.0)]
    core, card, _ = make_core(scripts=scripts, seats=2, recording={"mode": mode, "min_free_mb": 0})
    card.add_caller(CallerScript("13800138000", arrive_at=0.5, digits="1", digit_delay_s=1.0, tone_hz=CALLER_HZ,
                                 tone_dbm0=-10.0))
    seat1 = core.logic.acd.by_seat[1].port
    card.schedule_phone(6.0, "phone_flash", seat1)  # seat 1 consults seat 2...
    card.schedule_phone(6.5, "phone_dials", seat1, "802")
    card.schedule_phone(11.0, "phone_hangs_up", seat1)  # ...and hangs up: the caller is seat 2's
    # seat 1 then takes another caller, while the first call goes on with seat 2
    card.add_caller(CallerScript("13900139000", arrive_at=11.5, digits="1", digit_delay_s=1.0, tone_hz=OTHER_HZ,
                                 tone_dbm0=-10.0, talk_s=10.0))
    core.runtime.run_until(30.0)
    core.settle()
    calls = {c["caller"]: c for c in core.journal.calls()}
    first, other = calls["13800138000"], calls["13900139000"]
    assert (first["seat"], first["disposition"], other["seat"]) == (2, "answered", 1)
    transferred = next(e["ts"] for e in core.journal.events(first["call_id"]) if e["type"] == "call.transferred")
    [row] = core.recindex.of_call(first["call_id"])
    codes, _ = read_alaw_wav(core.data.root / first["recording"])
    pcm = alaw_decode(codes)
    start = row["start_ts"]

    def at(t: float) -> int:  # epoch seconds -> sample in the recording
        return int(round((t - start) * 8000))

    before = pcm[:, at(start + 0.5):at(EPOCH0 + 6.0)]  # caller and seat 1 talking
    after = pcm[:, at(transferred + 0.5):at(first["end_ts"]) - 4000]  # caller and seat 2, seat 1 on its next call
    assert other["agent_answer_ts"] < first["end_ts"] - 4.0  # the two calls overlapped by seconds
    if mode == "mono":
        lv = levels(before)
        assert (lv[CALLER_HZ], lv[FIRST_HZ]) == pytest.approx((-10.0, -13.0), abs=0.3)
        assert lv[SECOND_HZ] < -50 and lv[OTHER_HZ] < -50  # (the A-law coding's noise of two tones: about -60)
        lv = levels(after)
        assert (lv[CALLER_HZ], lv[SECOND_HZ]) == pytest.approx((-10.0, -16.0), abs=0.3)
        assert lv[FIRST_HZ] < -50 and lv[OTHER_HZ] < -50  # nothing of seat 1's next call
    else:  # caller left, the other side right
        assert levels(before, 0)[CALLER_HZ] == pytest.approx(-10.0, abs=0.3)
        assert levels(before, 1)[FIRST_HZ] == pytest.approx(-13.0, abs=0.3)
        lv0, lv1 = levels(after, 0), levels(after, 1)
        assert lv0[CALLER_HZ] == pytest.approx(-10.0, abs=0.3) and lv1[SECOND_HZ] == pytest.approx(-16.0, abs=0.3)
        assert max(lv0[FIRST_HZ], lv1[FIRST_HZ], lv0[OTHER_HZ], lv1[OTHER_HZ], lv0[SECOND_HZ], lv1[CALLER_HZ]) < -50
    # and the other call has its own recording, with seat 1 in it
    other_pcm = alaw_decode(read_alaw_wav(core.data.root / other["recording"])[0])
    if mode == "mono":
        lv = levels(other_pcm[:, 4000:-4000])
        assert (lv[OTHER_HZ], lv[FIRST_HZ]) == pytest.approx((-10.0, -13.0), abs=0.3) and lv[CALLER_HZ] < -50
