"""The SIP card's media cost per call per 20 ms tick: RTP out, RTP in through the jitter buffer, both ways.

Twelve calls (six trunk calls, six IP phones' calls) run between pairs of MediaPorts on 127.0.0.1: each
tick every port writes one A-law frame (one RTP packet) and reads one. The figure to compare: the issue
weighed pyVoIP at about 6% of a core per call; one call here is two ports' read and write per 20 ms.
"""

from __future__ import annotations

import numpy as np
import pytest

from drivers.sip.media import MediaPort
from drivers.sip.sdp import answer, negotiated, offer

CALLS = 12


@pytest.fixture()
def pairs():
    made = []
    for k in range(CALLS):
        a, b = MediaPort("127.0.0.1"), MediaPort("127.0.0.1")
        o = offer("127.0.0.1", a.local_port, session_id=1, version=1)
        ans = answer(o, "127.0.0.1", b.local_port, session_id=2, version=1)
        a.start(negotiated(o, ans, we_offered=True), 0.0)
        b.start(negotiated(o, ans, we_offered=False), 0.0)
        made.append((a, b))
    yield made
    for a, b in made:
        a.close()
        b.close()


def test_sip_media_tick_12_calls(benchmark, pairs):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (CALLS, 2, 160), dtype=np.uint8)
    state = {"now": 0.0}

    def tick():
        now = state["now"] = state["now"] + 0.02
        for k, (a, b) in enumerate(pairs):
            a.write(frames[k, 0], now)
            b.write(frames[k, 1], now)
        for a, b in pairs:
            a.read(now)
            b.read(now)

    for _ in range(10):  # past the jitter buffers' start
        tick()
    benchmark(tick)
    per_call_s = benchmark.stats.stats.median / CALLS
    benchmark.extra_info["per_call_us"] = round(per_call_s * 1e6, 1)
    benchmark.extra_info["core_share_per_call_pct"] = round(per_call_s / 0.02 * 100, 3)
    assert all(b.stats().packets_in > 0 for _, b in pairs)
