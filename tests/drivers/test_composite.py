"""Two cards as one: ports numbered in order, events and frames shifted, commands to the card that owns the port."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DriverError
from drivers.base import BLOCK, OffHook, PortKind, Seized
from drivers.composite import CompositeCard
from drivers.sim import AgentScript, CallerScript, SimCard


def test_ports_events_frames_and_commands_are_shifted_to_their_card():
    trunks = SimCard(3, 0, media=False)
    seats = SimCard(1, 2, agent=AgentScript(ring_delay_s=0.5), media=False)
    card = CompositeCard([trunks, seats])
    assert [p.index for p in card.ports] == list(range(6))
    assert [p.kind for p in card.ports] == [PortKind.TRUNK] * 4 + [PortKind.FXS] * 2
    trunks.add_caller(CallerScript("13912345678", arrive_at=0.0, digits="", talk_s=None))
    events = card.poll(0.0)
    assert [e for e in events if isinstance(e, Seized)][0].port in (0, 1, 2)
    card.ring(4, "13912345678")  # the second card's first seat
    found = []
    for k in range(1, 60):
        found += card.poll(k * 0.02)
    assert OffHook(4) in found
    out = np.zeros((6, BLOCK), np.uint8)
    card.read(out)
    card.write(np.full((6, BLOCK), 0xD5, np.uint8))
    with pytest.raises(DriverError, match=r"port 6 does not exist; this card has ports 0\.\.5"):
        card.answer(6)
    with pytest.raises(DriverError, match="frames must be a uint8 array of shape"):
        card.read(np.zeros((5, BLOCK), np.uint8))
    card.close()


def test_an_empty_composite_is_refused():
    with pytest.raises(DriverError, match="at least one card"):
        CompositeCard([])
