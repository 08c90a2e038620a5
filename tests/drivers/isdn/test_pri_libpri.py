"""Our PRI stack against libpri (the ISDN stack in Asterisk), both sides, on a socket pair in real time.

libpri runs on the real clock, so these tests do too: the bridge hands our
stack ``time.monotonic()`` (the stack itself never reads a clock) and moves the
frames between the two every few milliseconds.
"""

from __future__ import annotations

import time

import pytest

from drivers.isdn.calls import Alerted, Answered, Cleared, Offered
from drivers.isdn.pri import PriInterface
from tests.peers.libpri import LibpriPeer

B_CHANNELS = [*range(1, 16), *range(17, 32)]


class Bridge:
    """Our ``PriInterface`` on one side of an E1 D-channel, libpri on the other."""

    def __init__(self, ours_network: bool, channels=B_CHANNELS) -> None:
        self.peer = LibpriPeer(network=not ours_network)
        self.ours = PriInterface(ours_network, channels)
        self.t0 = time.monotonic()
        self.ours_events: list = []
        self.peer_events: list = []
        self.ours.start(self.now())
        assert self.until(lambda: self.ours.up and self.seen("dchan_up")), "the D-channel did not come up"

    def now(self) -> float:
        return time.monotonic() - self.t0

    def step(self) -> None:
        now = self.now()
        due = self.ours.next_deadline()
        if due is not None and now >= due:
            self.ours.handle_timer(now)
        for frame in self.ours.frames_to_send():
            self.peer.send_frame(frame)
        self.peer_events += self.peer.run()
        for frame in self.peer.frames():
            self.ours.receive_frame(frame, self.now())
        while (ev := self.ours.next_event()) is not None:
            self.ours_events.append(ev)

    def until(self, done, timeout: float = 3.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.step()
            if done():
                return True
            time.sleep(0.002)
        return False

    def seen(self, name: str):
        return next((e for e in self.peer_events if e.name == name), None)

    def settle(self, seconds: float = 0.2) -> None:
        self.until(lambda: False, seconds)

    def close(self) -> None:
        self.peer.close()


@pytest.fixture(params=[False, True], ids=["we-are-user", "we-are-network"])
def bridge(request):
    b = Bridge(ours_network=request.param)
    yield b
    b.close()


def test_inbound_call_is_offered_answered_and_cleared_by_the_caller(bridge):
    call = bridge.peer.call(5, "4008001234", "13912345678")
    assert bridge.until(lambda: bridge.ours_events)
    assert bridge.ours_events == [Offered(5, "13912345678", "4008001234")]
    assert bridge.until(lambda: bridge.seen("proceeding"))
    bridge.ours.answer(5, bridge.now())
    assert bridge.until(lambda: bridge.seen("answer"))
    bridge.peer.hangup(call, 16)
    assert bridge.until(lambda: len(bridge.ours_events) == 2)
    assert bridge.ours_events[1] == Cleared(5, 16)
    assert bridge.until(lambda: not bridge.ours.busy(5)), "channel 5 never went back to idle"
    assert bridge.until(lambda: bridge.seen("hangup"))


@pytest.mark.parametrize("presentation, withheld", [("restricted", "private"), ("unavailable", "unavailable")])
def test_withheld_caller_is_offered_without_a_number(bridge, presentation, withheld):
    bridge.peer.call(1, "4008001234", "13912345678", presentation=presentation)
    assert bridge.until(lambda: bridge.ours_events)
    assert bridge.ours_events == [Offered(1, None, "4008001234", withheld)]


def test_outbound_call_rings_is_answered_and_we_clear_it(bridge):
    bridge.ours.setup(7, "110", "4008001234", bridge.now())
    assert bridge.until(lambda: bridge.seen("ring"))
    ring = bridge.seen("ring")
    assert (ring.channel, ring.called, ring.calling) == (7, "110", "4008001234")
    bridge.peer.proceeding(ring.call, 7)
    bridge.peer.alerting(ring.call, 7)
    assert bridge.until(lambda: Alerted(7) in bridge.ours_events)
    bridge.peer.answer(ring.call, 7)
    assert bridge.until(lambda: Answered(7) in bridge.ours_events)
    bridge.ours.hangup(7, 16, bridge.now())
    assert bridge.until(lambda: bridge.seen("hangup_req"))
    assert bridge.seen("hangup_req").cause == 16
    bridge.peer.hangup(ring.call, 16)
    assert bridge.until(lambda: not bridge.ours.busy(7))
    assert not any(isinstance(e, Cleared) for e in bridge.ours_events)  # we cleared it: nothing to report


@pytest.mark.parametrize("cause", [17, 1, 34])  # user busy, unallocated number, no circuit available
def test_outbound_call_refused_by_the_far_end_ends_with_its_cause(bridge, cause):
    bridge.ours.setup(3, "13800000000", None, bridge.now())
    assert bridge.until(lambda: bridge.seen("ring"))
    ring = bridge.seen("ring")
    bridge.peer.proceeding(ring.call, 3)  # libpri clears only a call it has answered something to
    bridge.peer.hangup(ring.call, cause)
    assert bridge.until(lambda: any(isinstance(e, Cleared) for e in bridge.ours_events))
    assert bridge.ours_events == [Cleared(3, cause)]
    assert bridge.until(lambda: not bridge.ours.busy(3))


def test_far_end_clears_while_ringing(bridge):
    bridge.ours.setup(9, "110", None, bridge.now())
    assert bridge.until(lambda: bridge.seen("ring"))
    ring = bridge.seen("ring")
    bridge.peer.alerting(ring.call, 9)
    assert bridge.until(lambda: Alerted(9) in bridge.ours_events)
    bridge.peer.hangup(ring.call, 19)  # no answer from user (user alerted)
    assert bridge.until(lambda: Cleared(9, 19) in bridge.ours_events)
    assert bridge.until(lambda: not bridge.ours.busy(9))


def test_a_call_on_a_busy_channel_is_refused_with_cause_44(bridge):
    bridge.ours.setup(4, "110", None, bridge.now())
    assert bridge.until(lambda: bridge.seen("ring"))
    bridge.peer_events.clear()
    bridge.peer.call(4, "4008001234", "13912345678")  # libpri's own choice collides with our call
    assert bridge.until(lambda: bridge.seen("hangup"))
    assert bridge.seen("hangup").cause == 44
    assert not any(isinstance(e, Offered) for e in bridge.ours_events)


def test_restart_of_a_channel_from_the_peer_clears_its_call_and_is_acknowledged(bridge):
    bridge.peer.call(2, "4008001234", "13912345678")
    assert bridge.until(lambda: bridge.ours_events)
    bridge.ours.answer(2, bridge.now())
    assert bridge.until(lambda: bridge.seen("answer"))
    bridge.peer.reset(2)
    assert bridge.until(lambda: Cleared(2, 41) in bridge.ours_events)
    assert not bridge.ours.busy(2)
    assert bridge.until(lambda: bridge.seen("restart_ack")), bridge.peer.log()


def test_thirty_calls_at_once_fill_the_span(bridge):
    calls = {ch: bridge.peer.call(ch, "4008001234", f"139{ch:08d}") for ch in B_CHANNELS}
    assert bridge.until(lambda: len(bridge.ours_events) == 30, timeout=5.0)
    assert sorted(e.channel for e in bridge.ours_events) == B_CHANNELS
    assert all(e.calling == f"139{e.channel:08d}" for e in bridge.ours_events)
    for ch in B_CHANNELS:
        bridge.ours.answer(ch, bridge.now())
    assert bridge.until(lambda: sum(e.name == "answer" for e in bridge.peer_events) == 30, timeout=5.0)
    for ch, call in calls.items():
        bridge.peer.hangup(call, 16)
    assert bridge.until(lambda: not any(bridge.ours.busy(ch) for ch in B_CHANNELS), timeout=5.0)
    assert sum(isinstance(e, Cleared) and e.cause == 16 for e in bridge.ours_events) == 30
