"""One whole media tick of the core with 36 busy channels (30 trunk + 6 seats): the 1 ms budget.

Every port carries speech-like audio; 6 trunk channels talk to the 6 seats through
the switch and are recorded; the other 24 trunk channels hear prompts and
ringback. The tick decodes, detects DTMF on all 36, runs the call logic, mixes,
records and encodes, exactly as in service; the card only copies frames.
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.actions import Connect, Play, StartRecording, StartTone
from appliance.clock import VirtualClock
from appliance.player import PromptPlayer
from appliance.recorder import Recorder
from appliance.runtime import Runtime
from drivers.base import BLOCK, PortInfo, PortKind
from dsp.g711 import alaw_encode
from dsp.signals import speech_like
from dsp.tones import to_int16

N_TRUNKS, N_SEATS = 30, 6
N = N_TRUNKS + N_SEATS


class FrameCard:
    """A card that replays precomputed A-law frames: the tick's own cost, without a simulated world."""

    def __init__(self, frames: np.ndarray) -> None:
        self.ports = tuple([PortInfo(i, PortKind.TRUNK, f"E1 1/{i + 1}", 1) for i in range(N_TRUNKS)]
                           + [PortInfo(N_TRUNKS + s, PortKind.FXS, f"FXS {s + 1}") for s in range(N_SEATS)])
        self.frames = frames  # (n_blocks, N, 160) uint8
        self.i = 0
        self.written = 0

    def poll(self, now):
        return []

    def next_deadline(self):
        return None

    def read(self, out):
        out[...] = self.frames[self.i % len(self.frames)]
        self.i += 1

    def write(self, frames):
        self.written += 1

    def answer(self, port):
        pass

    def hangup(self, port, cause=16):
        pass

    def ring(self, port, caller):
        pass

    def stop_ring(self, port):
        pass

    def bridge(self, a, b):
        pass

    def close(self):
        pass


class IdleLogic:
    def handle(self, event, now):
        return []

    def advance(self, now):
        return []

    def next_deadline(self):
        return None


@pytest.fixture
def busy_runtime(tmp_path):
    n_blocks = 100  # 2 s of audio, replayed
    audio = to_int16(np.stack([speech_like(n_blocks * BLOCK / 8000, seed=p, level_dbm0=-18.0) for p in range(N)]))
    frames = np.ascontiguousarray(alaw_encode(audio).reshape(N, n_blocks, BLOCK).transpose(1, 0, 2))
    card = FrameCard(frames)
    prompt = to_int16(speech_like(8.0, seed=99, level_dbm0=-20.0))  # an 8 s prompt
    player = PromptPlayer(N, {"welcome": prompt})
    recorder = Recorder(tmp_path, "mono", slots=N_SEATS)
    rt = Runtime(card, IdleLogic(), VirtualClock(0.0), player, media=True, recorder=recorder)
    actions = []
    for s in range(N_SEATS):
        actions += [Connect(s, N_TRUNKS + s), StartRecording(f"bench-{s}", s, N_TRUNKS + s)]
    for p in range(N_SEATS, N_TRUNKS):
        actions.append(Play(p, "welcome") if p % 2 else StartTone(p, "ringback"))
    rt.apply(actions, 0.0)
    yield rt
    recorder.close()


def test_media_tick_36_busy_channels(benchmark, busy_runtime):
    rt = busy_runtime
    t = {"now": 0.0}

    def tick():
        t["now"] += 0.02
        rt.step(t["now"])
        if t["now"] > 7.5:  # keep the prompts playing: restart them before they end
            t["now"] = 0.0
            for p in range(N_SEATS + 1, N_TRUNKS, 2):
                rt.player.play(p, "welcome", 0.0)

    benchmark.pedantic(tick, rounds=2000, warmup_rounds=100, iterations=1)
    # the tick did real work: every seat hears its caller, 6 recordings grew
    assert rt.card.written == 2100
    assert all(take.writer.n_samples == 2100 * BLOCK for take in rt.recorder.takes.values())
    np.testing.assert_array_equal(rt.tx[N_TRUNKS:], rt.rx[:N_SEATS].astype(np.int16))
