"""The simulated card's own cost per 20 ms tick with 36 busy ports, so that benchmarks of the core are
not dominated by the simulator (issue 4): poll, read (every port sending speech or tones) and write."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.base import BLOCK
from drivers.sim import AgentScript, CallerScript, OutboundScript, SimCard


@pytest.fixture()
def busy_card():
    """30 trunk channels (24 inbound callers talking, 6 outbound calls hearing ringback and busy tones)
    and 6 agents talking; every port sends audio."""
    card = SimCard(30, 6, agent=AgentScript(ring_delay_s=0.1, talk_s=3600.0, speech=True),
                   network={"1": OutboundScript("no_answer", ring_s=3600.0), "2": OutboundScript("busy", tone_s=3600.0)})
    for k in range(24):
        card.add_caller(CallerScript(f"1380000{k:04d}", arrive_at=0.0, talk_s=3600.0, speech=True))
    card.poll(0.0)
    for k in range(24):
        card.answer(k)
    for k in range(24, 30):
        card.dial(k, "1" if k % 2 else "2")
    for port in range(30, 36):
        card.ring(port, "1")
    card.poll(1.0)  # the agents have picked up
    for k in range(6):
        card.bridge(k, 30 + k)  # six callers talk to the agents
    for k in range(6, 24, 2):
        card.bridge(k, k + 1)  # the others talk to each other (a conference, say)
    return card


def test_sim_card_tick_36_busy_ports(benchmark, busy_card):
    card = busy_card
    rx = np.zeros((36, BLOCK), np.uint8)
    tx = np.full((36, BLOCK), 0xD5, np.uint8)
    state = {"now": 1.0}

    def tick():
        state["now"] += 0.02
        card.poll(state["now"])
        card.read(rx)
        card.write(tx)

    heard = np.zeros(36, bool)
    for _ in range(50):  # one second: speech has pauses, so look over many frames
        tick()
        heard |= (rx != 0xD5).any(axis=1)
    assert heard.all()  # every port is sending audio
    benchmark(tick)
