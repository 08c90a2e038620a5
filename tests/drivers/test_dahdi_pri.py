"""PRI on the DAHDI card (fake kernel, libpri as the far end): the D-channel's life beyond the conformance suite.

libpri keeps real time; so does this loop (each 20 ms tick sleeps until its
time), with libpri's T200 shortened so that a lost link comes back in well under
a second.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from appliance.config import validate
from appliance.errors import DriverError
from drivers.base import BLOCK, Alarm, Connected, Released, Seized

DCHAN = 16


class PriBox:
    """The DAHDI card with B-channels 1-4 on the fake kernel; libpri on the D-channel, both ticked in real time."""

    def __init__(self, kernel, *, network: bool = False, **kw) -> None:
        from drivers.dahdi.card import DahdiCard
        from tests.peers.libpri import LibpriPeer
        self.kernel = kernel
        self.peer = LibpriPeer(network=not network, timers_ms={"T200": 150, "T203": 2000})
        self.card = kw.pop("card", None) or DahdiCard(kernel, span_channels=[1, 2, 3, 4],
                                                      pri={"dchan": DCHAN, "network": network}, **kw)
        self.rx = np.zeros((len(self.card.ports), BLOCK), np.uint8)
        self.tx = np.full_like(self.rx, 0xD5)
        self.t0 = time.monotonic()
        self.peer_events: list = []
        self.drop_to_card = 0  # frames from libpri to lose on the way

    @property
    def now(self) -> float:
        return time.monotonic() - self.t0

    def tick(self) -> list:
        k = self.kernel
        for frame in k.dchan_sent(DCHAN):
            self.peer.send_frame(frame)
        self.peer_events += self.peer.run()
        for frame in self.peer.frames():
            if self.drop_to_card:
                self.drop_to_card -= 1
                continue
            k.dchan_receive(DCHAN, frame)
        k.tick(20)
        events = self.card.poll(self.now)
        self.card.read(self.rx)
        self.card.write(self.tx)
        time.sleep(0.005)
        return events

    def until(self, done, timeout: float = 5.0) -> list:
        events, end = [], time.monotonic() + timeout
        while time.monotonic() < end:
            events += self.tick()
            if done(events):
                return events
        raise AssertionError(f"timed out; card events {events}, libpri events "
                             f"{[e.name for e in self.peer_events]}\n{self.peer.log()[-2000:]}")

    def link_up(self) -> None:
        self.until(lambda _: self.card._pri.pri.up and any(e.name == "dchan_up" for e in self.peer_events))

    def seen(self, name: str):
        return next((e for e in reversed(self.peer_events) if e.name == name), None)

    def close(self) -> None:
        self.card.close()
        self.peer.close()


@pytest.fixture
def pri_box(kernel):
    b = PriBox(kernel)
    b.link_up()
    yield b
    b.close()


def seized(events):
    return [e for e in events if isinstance(e, Seized)]


def test_inbound_call_carries_the_numbers_and_the_answer_reaches_the_network(pri_box):
    b = pri_box
    call = b.peer.call(3, "4008001234", "02787654321")
    (s,) = seized(b.until(lambda ev: seized(ev)))
    assert s == Seized(2, "02787654321", "4008001234")  # B-channel 3 is the third trunk port
    b.card.answer(2)
    b.until(lambda _: b.seen("answer"))
    b.peer.hangup(call, 17)
    assert Released(2, 17) in b.until(lambda ev: any(isinstance(e, Released) for e in ev))


def test_outbound_call_connects_and_the_core_clears_it_with_its_cause(pri_box):
    b = pri_box
    b.card.dial(0, "13800138000")
    b.until(lambda _: b.seen("ring"))
    ring = b.seen("ring")
    assert (ring.channel, ring.called) == (1, "13800138000")
    b.peer.proceeding(ring.call, 1)
    b.peer.answer(ring.call, 1)
    assert Connected(0) in b.until(lambda ev: Connected(0) in ev)
    b.card.hangup(0, 31)
    b.until(lambda _: b.seen("hangup_req"))
    assert b.seen("hangup_req").cause == 31


def test_the_configured_calling_number_goes_out_on_our_calls(kernel):
    from drivers.dahdi.card import DahdiCard
    cfg = validate({"card": {"driver": "dahdi", "trunk_channels": 4}, "span": {"calling_number": "4008001234"}})
    b = PriBox(kernel, card=DahdiCard.from_config(cfg, kernel))
    try:
        b.link_up()
        b.card.dial(1, "110")
        b.until(lambda _: b.seen("ring"))
        assert (b.seen("ring").channel, b.seen("ring").calling) == (2, "4008001234")
    finally:
        b.close()


def test_the_box_as_network_side_takes_calls_from_a_pbx(kernel):
    b = PriBox(kernel, network=True)
    try:
        b.link_up()
        b.peer.call(4, "801", "2001")
        assert seized(b.until(lambda ev: seized(ev))) == [Seized(3, "2001", "801")]
    finally:
        b.close()


def test_lost_and_corrupt_frames_are_recovered_by_the_data_link(pri_box):
    b = pri_box
    b.drop_to_card = 1  # the SETUP is lost: libpri sends it again after its T200
    b.kernel.dchan_receive(DCHAN, b"\x02\x01\x00", bad_fcs=True)  # and a frame with a bad FCS arrives
    b.peer.call(1, "4008001234", "13912345678")
    assert seized(b.until(lambda ev: seized(ev))) == [Seized(0, "13912345678", "4008001234")]


def test_span_alarm_drops_the_calls_then_the_link_comes_back_for_new_calls(pri_box):
    b = pri_box
    b.peer.call(1, "4008001234", "13912345678")
    b.until(lambda ev: seized(ev))
    b.card.answer(0)
    b.kernel.set_span_alarms(1, {"RED", "LOS"})
    events = b.until(lambda ev: any(isinstance(e, Released) for e in ev))
    assert Alarm(1, frozenset({"RED", "LOS"})) in events and Released(0, 38) in events
    assert not b.card._pri.pri.up  # down at once, not after T200 x N200
    b.until(lambda _: b.seen("dchan_down"))  # libpri notices by its own timers
    b.kernel.set_span_alarms(1, set())
    b.until(lambda ev: Alarm(1, frozenset()) in ev)
    b.peer_events.clear()
    b.link_up()
    b.peer.call(2, "4008001234", "13912345678")
    assert seized(b.until(lambda ev: seized(ev))) == [Seized(1, "13912345678", "4008001234")]


def test_dialling_while_the_d_channel_is_down_says_so(kernel):
    from drivers.dahdi.card import DahdiCard
    card = DahdiCard(kernel, span_channels=[1, 2], pri={"dchan": DCHAN})
    try:
        card.poll(0.0)
        with pytest.raises(DriverError, match=r"cannot dial on E1 1/1: the PRI D-channel is down"):
            card.dial(0, "110")
    finally:
        card.close()


def test_a_d_channel_that_is_not_hdlc_is_refused_with_the_fix(kernel):
    from drivers.dahdi.card import DahdiCard
    with pytest.raises(DriverError, match=r"DAHDI channel 15 is signalled 'clear', but span.dchan makes it the PRI "
                                          r"D-channel, which needs hardhdlc; apply the configuration"):
        DahdiCard(kernel, span_channels=[1, 2], pri={"dchan": 15})
    assert all(c.owner is None for c in kernel.channels.values())  # nothing left open
