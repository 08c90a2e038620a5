"""What a waiting caller hears, end to end on the simulated card with audio: the busy announcement, then music
on hold; and the generated hold music itself."""

from __future__ import annotations

import numpy as np

from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core
from appliance.datadir import DataDir
from appliance.promptset import MELODY_HZ, MOH_DBM0, hold_music
from drivers.sim import AgentScript, CallerScript, SimCard
from dsp.dtmf import DtmfDetector
from dsp.levels import dbm0_to_amplitude

EPOCH0 = 1_764_300_000.0


def melody_share(x: np.ndarray) -> float:
    """The share of the power of ``x`` (int16 at 8 kHz) within 20 Hz of a melody note."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / 8000)
    near = np.zeros(freqs.size, bool)
    for f in MELODY_HZ:
        near |= np.abs(freqs - f) <= 20
    return float(spec[near].sum() / spec.sum())


def test_hold_music_is_the_melody_at_its_level_and_never_dtmf():
    x = hold_music()
    assert x.dtype == np.int16 and x.size == 16 * 8000
    assert np.array_equal(x, hold_music())  # the same tune every time
    assert np.abs(x).max() <= dbm0_to_amplitude(MOH_DBM0) + 1
    assert melody_share(x) > 0.99
    det = DtmfDetector(1)
    assert [d for i in range(0, x.size - 159, 160) for d in det.process(x[None, i:i + 160])] == []


def test_a_caller_who_waits_hears_the_announcement_then_music(tmp_path):
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"seats": 1}, "queue": {"announce_s": 120}})
    card = SimCard(30, 1, agent=AgentScript(ring_delay_s=1.0, talk_s=60.0), media=True, seed=3)
    core = Core(data, cfg, VirtualClock(EPOCH0), card=card, media=True)  # prompts by espeak-ng or beeps
    try:
        card.add_caller(CallerScript("13800138000", arrive_at=1.0, digit_delay_s=1.0))
        waiting = card.add_caller(CallerScript("13900139000", arrive_at=5.0, digit_delay_s=1.0, record=True))
        core.runtime.run_until(50.0)
        core.settle()
        heard = waiting.heard_audio()
        call_id = next(c for c in core.logic.by_id.values() if c.caller == "13900139000").call_id
        announced = [e for e in core.journal.events(call_id) if e["type"] == "call.announce"]
        assert [e["data"] for e in announced] == [{"position": 1, "minutes": 2}]
        # from 30 s after answering (the welcome and the announcement are over) to 45 s: the music only
        tail = heard[30 * 8000:45 * 8000]
        assert melody_share(tail) > 0.95
        rms = np.sqrt(np.mean(tail.astype(np.float64) ** 2))
        assert 0.05 * dbm0_to_amplitude(MOH_DBM0) < rms < dbm0_to_amplitude(MOH_DBM0)
    finally:
        core.close()


def test_ringback_instead_of_music_when_configured(tmp_path):
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"seats": 1}, "queue": {"announce_s": 0, "hold": "ringback"}})
    card = SimCard(30, 1, agent=AgentScript(ring_delay_s=1.0, talk_s=60.0), media=True, seed=3)
    core = Core(data, cfg, VirtualClock(EPOCH0), card=card, media=True)
    try:
        card.add_caller(CallerScript("13800138000", arrive_at=1.0, digit_delay_s=1.0))
        waiting = card.add_caller(CallerScript("13900139000", arrive_at=5.0, digit_delay_s=1.0, record=True))
        core.runtime.run_until(40.0)
        tail = waiting.heard_audio()[20 * 8000:30 * 8000].astype(np.float64)
        spec = np.abs(np.fft.rfft(tail)) ** 2
        freqs = np.fft.rfftfreq(tail.size, 1 / 8000)
        assert spec[np.abs(freqs - 450) <= 10].sum() / spec.sum() > 0.95  # China's 450 Hz ringback
    finally:
        core.close()
