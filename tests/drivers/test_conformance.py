"""One conformance suite for every card: what the core relies on, whatever the hardware.

Each card comes with a *harness* that plays the world on the far side of its
ports (the network on the trunk, the phones on FXS ports): the simulated card's
harness scripts its virtual parties; a DAHDI card's harness will inject kernel
events through the fake kernel. The tests speak only to the ``Card`` protocol
and the harness.
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DriverError
from drivers.base import (BLOCK, Alarm, Alerting, Card, Connected, OffHook, OnHook, PortFault, PortInfo, PortKind,
                          Released, Seized)
from drivers.sim import AgentScript, CallerScript, OutboundScript, SimCard


class SimHarness:
    """The simulated card with 4 trunk channels and 2 seats; the far side acts through its scripts."""

    name = "sim"

    def __init__(self) -> None:
        self.card = SimCard(4, 2, agents=[AgentScript(ring_delay_s=1.0, talk_s=5.0)] * 2,
                            network={"110": OutboundScript("answered", ring_s=2.0, talk_s=3.0)})
        self.now = 0.0

    def inbound_call(self, number: str) -> None:
        self.card.add_caller(CallerScript(number, arrive_at=self.now, digits="", talk_s=None))

    def far_end_clears(self, port: int) -> None:
        self.card.far_end_clears(port)

    def span_alarm(self, alarms: set[str]) -> None:
        self.card.set_alarm(1, alarms)

    def port_fails(self, port: int) -> None:
        self.card.fail_port(port)

    def answering_number(self) -> str:
        return "110"

    def run(self, seconds: float) -> list:
        """Poll every 20 ms for ``seconds``, moving frames both ways; the events seen."""
        events = []
        rx = np.zeros((len(self.card.ports), BLOCK), np.uint8)
        tx = np.full_like(rx, 0xD5)
        for _ in range(int(round(seconds / 0.02))):
            events += self.card.poll(self.now)
            self.card.read(rx)
            self.card.write(tx)
            self.now = round(self.now + 0.02, 6)
        return events


HARNESSES = [SimHarness]


@pytest.fixture(params=HARNESSES, ids=lambda h: h.name)
def h(request):
    harness = request.param()
    yield harness
    harness.card.close()


def trunks(card) -> list[int]:
    return [p.index for p in card.ports if p.kind is PortKind.TRUNK]


def seats(card) -> list[int]:
    return [p.index for p in card.ports if p.kind is PortKind.FXS]


def test_ports_are_described_in_frame_order(h):
    card = h.card
    assert isinstance(card, Card)
    assert all(isinstance(p, PortInfo) and p.index == i for i, p in enumerate(card.ports))
    assert len({p.name for p in card.ports}) == len(card.ports)
    assert all(p.span is not None for p in card.ports if p.kind is PortKind.TRUNK)


def test_frames_move_both_ways_and_wrong_shapes_are_refused(h):
    card = h.card
    n = len(card.ports)
    out = np.zeros((n, BLOCK), np.uint8)
    card.read(out)
    card.write(np.full((n, BLOCK), 0xD5, np.uint8))
    for bad in (np.zeros((n, BLOCK - 1), np.uint8), np.zeros((n, BLOCK), np.int16), [[0] * BLOCK] * n):
        with pytest.raises(DriverError, match="frames must be a uint8 array of shape"):
            card.read(bad)
        with pytest.raises(DriverError, match="frames must be a uint8 array of shape"):
            card.write(bad)


def test_inbound_call_is_seized_answered_and_cleared_by_the_far_end(h):
    h.inbound_call("13912345678")
    events = h.run(0.1)
    seized = [e for e in events if isinstance(e, Seized)]
    assert len(seized) == 1 and seized[0].calling == "13912345678" and seized[0].port in trunks(h.card)
    port = seized[0].port
    h.card.answer(port)
    h.run(1.0)
    h.far_end_clears(port)
    assert [e for e in h.run(0.1) if isinstance(e, Released)] == [Released(port, 16)]


def test_a_rung_phone_answers_and_hangs_up(h):
    seat = seats(h.card)[0]
    h.card.ring(seat, "13912345678")
    events = h.run(1.5)
    assert OffHook(seat) in events
    assert OnHook(seat) in h.run(3.0)  # nobody was bridged to it: the agent puts it down
    with pytest.raises(DriverError):
        h.card.ring(trunks(h.card)[0], "1")  # only FXS ports ring


def test_stop_ring_before_the_answer_leaves_the_phone_on_hook(h):
    seat = seats(h.card)[0]
    h.card.ring(seat, None)
    h.run(0.5)
    h.card.stop_ring(seat)
    assert not any(isinstance(e, (OffHook, OnHook)) for e in h.run(3.0))


def test_outbound_call_alerts_connects_and_clears(h):
    port = trunks(h.card)[-1]
    h.card.dial(port, h.answering_number())
    events = [e for e in h.run(6.5) if isinstance(e, (Alerting, Connected, Released))]
    assert events == [Alerting(port), Connected(port), Released(port, 16)]
    with pytest.raises(DriverError):
        h.card.dial(seats(h.card)[0], "110")  # not a trunk or line


def test_span_alarm_ends_calls_with_a_cause_and_clears(h):
    h.inbound_call("13912345678")
    (seized,) = [e for e in h.run(0.1) if isinstance(e, Seized)]
    h.card.answer(seized.port)
    h.span_alarm({"RED"})
    events = h.run(0.1)
    assert Alarm(1, frozenset({"RED"})) in events and Released(seized.port, 38) in events
    h.span_alarm(set())
    assert Alarm(1, frozenset()) in h.run(0.1)


def test_a_failed_port_is_reported_and_the_others_go_on(h):
    seat = seats(h.card)[0]
    h.port_fails(seat)
    assert PortFault(seat, False, "no frames") in h.run(0.1)
    other = seats(h.card)[1]
    h.card.ring(other, None)
    assert OffHook(other) in h.run(1.5)
