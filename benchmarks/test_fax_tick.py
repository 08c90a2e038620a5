"""Does fax DSP stall the 20 ms tick? The whole tick with 34 busy voice channels, in real time, with 0, 1 or 2
fax sessions receiving a page, each session inline on the tick, in a thread, or in a process of its own.

The fax audio is real: a sender (``FaxSession``, V.27 ter at 4800 bit/s, one seeded 150-row page) was run
against a receiver beforehand and its line audio kept; the card replays it on trunk channels 28 and 29, so the
box's receiving sessions go through CED, DIS, TCF and the page as on a real call, and the most costly part (the
page modem's receiver) falls inside the measured span. The other channels carry speech: six talk to the six
seats through the switch, the rest hear prompts and ringback, as in ``benchmarks/test_tick.py``.

Each configuration runs the call's first seconds (until a second after the page is in) in real time against an
absolute 20 ms schedule and reports, in ``extra_info`` and on stdout: the tick's duration (median, 99th percentile,
max, in ms), its lateness behind the schedule (99th percentile, max), the workers' underruns (a block not ready
when its tick came), and whether the page arrived whole. Run with ``pytest benchmarks/test_fax_tick.py -s``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from appliance.actions import Connect, Play, StartTone
from appliance.clock import VirtualClock
from appliance.faxevents import StartFax
from appliance.player import PromptPlayer
from appliance.runtime import Runtime
from benchmarks.test_tick import N, N_SEATS, N_TRUNKS, FrameCard, IdleLogic
from drivers.base import BLOCK
from dsp.fax.t30 import FaxSession
from dsp.fax.tiff import STANDARD_LPI, FaxPage
from dsp.g711 import alaw_decode, alaw_encode
from dsp.signals import speech_like
from dsp.tones import to_int16
from tests.dsp.faxpages import text_page

FAX_PORTS = (28, 29)
TICK = 0.02


@pytest.fixture(scope="module")
def page() -> FaxPage:
    return FaxPage(text_page(7, rows=150), y_resolution=STANDARD_LPI)


@pytest.fixture(scope="module")
def sender_audio(page) -> np.ndarray:
    """What a fax sender puts on the line, against a receiver like ours, until a second after the receiver has the
    page; shape (blocks, 160), int16."""
    tx = FaxSession(calling=True, pages=[page], modems=("v27ter",))
    rx = FaxSession(calling=False, modems=("v27ter",))
    out, until = [], None
    while until is None or len(out) < until:
        xa, xb = tx.transmit(), rx.transmit()
        rx.receive(alaw_decode(alaw_encode(xa)))
        tx.receive(alaw_decode(alaw_encode(xb)))
        out.append(xa)
        if until is None and (rx.progress[0] == 2 or rx.done):  # it has the page
            until = len(out) + 50
        assert len(out) < 90 / TICK, rx.log
    return np.stack(out)


@pytest.fixture(scope="module")
def frames(sender_audio) -> np.ndarray:
    n_blocks = len(sender_audio)
    speech = to_int16(np.stack([speech_like(4.0, seed=p, level_dbm0=-18.0) for p in range(N)]))  # 4 s, looped
    idx = np.arange(n_blocks * BLOCK) % speech.shape[1]
    audio = speech[:, idx]
    for p in FAX_PORTS:
        audio[p] = sender_audio.reshape(-1)
    return np.ascontiguousarray(alaw_encode(audio).reshape(N, n_blocks, BLOCK).transpose(1, 0, 2))


def run_realtime(frames: np.ndarray, n_fax: int, mode: str) -> dict:
    card = FrameCard(frames)
    player = PromptPlayer(N, {"welcome": to_int16(speech_like(8.0, seed=99, level_dbm0=-20.0))})
    rt = Runtime(card, IdleLogic(), VirtualClock(0.0), player, media=True, fax_mode=mode)
    actions = [Connect(s, N_TRUNKS + s) for s in range(N_SEATS)]
    actions += [Play(p, "welcome") if p % 2 else StartTone(p, "ringback") for p in range(N_SEATS, N_TRUNKS)
                if p not in FAX_PORTS]
    actions += [StartFax(p, f"bench-{p}", calling=False) for p in FAX_PORTS[:n_fax]]
    rt.apply(actions, 0.0)
    runners = list(rt.faxes.values())
    for r in runners:  # a worker's start (a process imports numpy) is before the call's audio, as on a real line
        if hasattr(r, "sync"):
            assert r.sync(30.0)
    ended = []
    n = len(frames)
    durations = np.zeros(n)
    late = np.zeros(n)
    t0 = time.perf_counter()
    for k in range(n):
        target = t0 + k * TICK
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        rt.step(k * TICK)
        end = time.perf_counter()
        durations[k], late[k] = end - start, end - target
        ended += [e for e in rt._fax_news if type(e).__name__ == "FaxProgress"]
    received = {e.port: e.page for e in ended}
    underruns = sum(r.underruns for r in runners)
    rt.close_faxes()
    ms = 1000.0
    return {"fax": n_fax, "mode": mode, "tick_p50_ms": round(np.median(durations) * ms, 3),
            "tick_p99_ms": round(np.percentile(durations, 99) * ms, 3), "tick_max_ms": round(durations.max() * ms, 3),
            "late_p99_ms": round(np.percentile(late, 99) * ms, 3), "late_max_ms": round(late.max() * ms, 3),
            "underruns": int(underruns), "pages_received": [received.get(p, 0) for p in FAX_PORTS[:n_fax]]}


CONFIGS = [(0, "inline"), (1, "inline"), (2, "inline"), (1, "thread"), (2, "thread"), (1, "process"),
           (2, "process")]


@pytest.mark.parametrize("n_fax,mode", CONFIGS, ids=[f"{n}-{m}" for n, m in CONFIGS])
def test_tick_with_fax_sessions(benchmark, frames, n_fax, mode):
    stats = benchmark.pedantic(run_realtime, args=(frames, n_fax, mode), rounds=1, iterations=1)
    benchmark.extra_info.update(stats)
    print("\n" + " ".join(f"{k}={v}" for k, v in stats.items()))
    # every session got its page whole, in real time, however it ran
    assert stats["pages_received"] == [1] * n_fax
