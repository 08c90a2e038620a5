"""One conformance suite for every card: what the core relies on, whatever the hardware.

Each card comes with a *harness* that plays the world on the far side of its
ports (the network on the trunk, the phones on FXS ports, the exchange on FXO
lines): the simulated card's harness scripts its virtual parties; the DAHDI
card's harness plays phones and lines through the fake kernel's helpers. The
tests speak only to the ``Card`` protocol and the harness. A harness names what
its card can do in ``supports``; a test needing something else skips, saying why.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from appliance.errors import DriverError
from drivers.base import (BLOCK, Alarm, Alerting, Card, Connected, OffHook, OnHook, Polarity, PortFault, PortInfo,
                          PortKind, Released, Ringing, Seized)
from drivers.sim import AgentScript, CallerScript, OutboundScript, SimCard
from drivers.sim.lines import LineScript
from dsp.callerid import CallerId, callerid_burst, decode_callerid
from dsp.g711 import alaw_decode, alaw_encode
from tests.tools import require_dahdi_binding

FEATURES = {"trunk_calls", "fxs", "fxo", "span_alarm", "port_fault"}


class Harness:
    """What every harness shares: the 20 ms loop, and what each port received (for audio checks)."""

    name = ""
    supports: set[str] = FEATURES
    missing: dict[str, str] = {}  # feature -> why this card cannot do it
    fault_detect_s = 0.1  # how long the card takes to notice a port that stopped delivering frames
    card: Card

    def far_side(self) -> None:
        """Play the far side for one tick (the sim card's parties act on their own)."""

    def run(self, seconds: float) -> list:
        """Poll every 20 ms for ``seconds``, moving frames both ways; the events seen."""
        events = []
        rx = np.zeros((len(self.card.ports), BLOCK), np.uint8)
        tx = np.full_like(rx, 0xD5)
        for _ in range(int(round(seconds / 0.02))):
            self.far_side()
            events += self.card.poll(self.now)
            self.card.read(rx)
            self.received.append(rx.copy())
            self.card.write(tx)
            self.now = round(self.now + 0.02, 6)
        return events

    def heard(self, port: int) -> np.ndarray:
        """Everything ``port`` received so far, decoded: shape (n_samples,), int16."""
        return alaw_decode(np.concatenate([f[port] for f in self.received]))


class SimHarness(Harness):
    """The simulated card with 4 trunk channels, 2 seats and 1 line; the far side acts through its scripts."""

    name = "sim"

    def __init__(self) -> None:
        self.card = SimCard(4, 2, agents=[AgentScript(ring_delay_s=1.0, talk_s=5.0)] * 2,
                            network={"110": OutboundScript("answered", ring_s=2.0, talk_s=3.0)}, n_fxo=1)
        self.now = 0.0
        self.received: list[np.ndarray] = []

    def inbound_call(self, number: str) -> None:
        self.card.add_caller(CallerScript(number, arrive_at=self.now, digits="", talk_s=None))

    def far_end_clears(self, port: int) -> None:
        self.card.far_end_clears(port)

    def span_alarm(self, alarms: set[str]) -> None:
        self.card.set_alarm(1, alarms)

    def port_fails(self, port: int) -> None:
        self.card.fail_port(port)

    def port_recovers(self, port: int) -> None:
        self.card.restore_port(port)

    def answering_number(self) -> str:
        return "110"

    def line_call(self, port: int, number: str) -> None:
        self.card.add_line_call(LineScript(number, arrive_at=self.now, clear_by="polarity", talk_s=600.0), port)

    def line_far_end_clears(self, port: int) -> None:
        self.card.far_end_clears(port)


class DahdiFakeHarness(Harness):
    """The DAHDI card on the fake kernel: E1 B-channels 1-4 with the D-channel on 16, phones on channels 32-33,
    a line on 34.

    The harness is the carrier behind the E1 (libpri as the PRI network side, on
    the fake kernel's D-channel: it calls in, and answers our calls after 2 s of
    ringing and clears them 3 s later, as the simulated network does), the phones'
    users (they answer after 1 s of ringing and, with nobody to talk to, hang up
    2 s later, as the simulated agents do) and the exchange behind the line
    (China's 1 s on / 4 s off ring with MDMF caller ID 0.6 s after the first burst).
    """

    name = "dahdi-fake"
    fault_detect_s = 0.6  # 25 missed frames, then the next poll
    RING_DELAY_S, UNANSWERED_OFFHOOK_S = 1.0, 2.0
    DCHAN, BOX_NUMBER, ANSWER_AFTER_S, TALK_S = 16, "4008001234", 2.0, 3.0

    def __init__(self) -> None:
        require_dahdi_binding()
        from drivers.dahdi.card import DahdiCard
        from drivers.dahdi.fakekernel import FakeKernel
        self.kernel = FakeKernel.appliance(fxs=2, fxo=1)
        channels = [1, 2, 3, 4, 32, 33, 34]
        self.card = DahdiCard(self.kernel, span_channels=channels[:4], fxs_channels=channels[4:6],
                              fxo_channels=channels[6:], pri={"dchan": self.DCHAN, "network": False})
        self.channo = dict(enumerate(channels))
        self.now = 0.0
        self.received = []
        self._ringing_since: dict[int, float] = {}  # phone channel -> when its ringing began
        self._off_since: dict[int, float] = {}  # phone channel -> when its user picked up
        self._line_calls: dict[int, tuple[float, str]] = {}  # line channel -> (when it began, calling number)
        self.peer = None  # libpri, started by the first trunk call
        self.network_events: list = []  # what libpri reported
        self._network_calls: dict[int, object] = {}  # B-channel -> libpri's call
        self._plan: list[tuple[float, str, int]] = []  # (when, "answer" | "hangup", B-channel)

    def _network(self):
        """libpri as the carrier, with the D-channel up (skips, or fails under CI, without libpri-dev)."""
        if self.peer is None:
            from tests.peers.libpri import LibpriPeer
            self.peer = LibpriPeer(network=True)
            for _ in range(50):
                self.run(0.02)
                if self.card._pri.pri.up and self._link_up:
                    break
            assert self.card._pri.pri.up, "the PRI D-channel did not come up against libpri"
        return self.peer

    _link_up = False

    def inbound_call(self, number: str) -> None:
        channel = next(ch for ch in (1, 2, 3, 4) if ch not in self._network_calls)
        self._network_calls[channel] = self._network().call(channel, self.BOX_NUMBER, number)

    def far_end_clears(self, port: int) -> None:
        self.peer.hangup(self._network_calls.pop(self.channo[port]), 16)

    def answering_number(self) -> str:
        self._network()
        return "110"

    def span_alarm(self, alarms: set[str]) -> None:
        self.kernel.set_span_alarms(1, alarms)

    def port_fails(self, port: int) -> None:
        self.kernel.stall(self.channo[port])

    def port_recovers(self, port: int) -> None:
        self.kernel.stall(self.channo[port], False)

    def line_call(self, port: int, number: str) -> None:
        self._line_calls[self.channo[port]] = (self.now, number)

    def line_far_end_clears(self, port: int) -> None:
        del self._line_calls[self.channo[port]]
        self.kernel.line_polarity(self.channo[port])

    def far_side(self) -> None:
        k, now = self.kernel, self.now
        for ch in (32, 33):
            fake = k.channels[ch]
            if fake.rx_offhook:
                if now - self._off_since[ch] >= self.UNANSWERED_OFFHOOK_S - 1e-9:
                    k.phone_on_hook(ch)
            elif fake.txstate in ("ringon", "ringoff"):
                if now - self._ringing_since.setdefault(ch, now) >= self.RING_DELAY_S - 1e-9:
                    k.phone_off_hook(ch)
                    self._off_since[ch] = now
            else:
                self._ringing_since.pop(ch, None)
        for ch, (t0, number) in self._line_calls.items():
            if k.channels[ch].txstate == "offhook":
                continue  # answered: the caller talks (silence here)
            t = round((now - t0) % 5.0, 6)
            if t == 0.0:
                k.line_ring(ch, True)
            elif t == 1.0:
                k.line_ring(ch, False)
                if now - t0 < 5.0:
                    cid = callerid_burst(CallerId(number=number)).samples
                    k.hear(ch, b"\xd5" * int(0.6 * 8000) + alaw_encode(cid).tobytes())
        if self.peer is not None:
            self._carrier(k)
        k.tick(20)

    def seen_by_network(self, name: str):
        """The last libpri event called ``name`` ("answer", "hangup_req"...), or None."""
        return next((e for e in reversed(self.network_events) if e.name == name), None)

    def _carrier(self, k) -> None:
        """Move the D-channel's frames both ways and play libpri's part in the calls."""
        peer, now = self.peer, self.now
        for frame in k.dchan_sent(self.DCHAN):
            peer.send_frame(frame)
        for ev in peer.run():
            self.network_events.append(ev)
            if ev.name == "dchan_up":
                self._link_up = True
            elif ev.name == "ring":  # our outbound call: ringing, answered and cleared on the plan
                self._network_calls[ev.channel] = ev.call
                peer.proceeding(ev.call, ev.channel)
                peer.alerting(ev.call, ev.channel)
                self._plan += [(now + self.ANSWER_AFTER_S, "answer", ev.channel),
                               (now + self.ANSWER_AFTER_S + self.TALK_S, "hangup", ev.channel)]
            elif ev.name == "hangup_req":  # we cleared: libpri completes the release
                peer.hangup(ev.call, ev.cause)
                self._network_calls.pop(ev.channel, None)
        for when, what, channel in [p for p in self._plan if p[0] <= now + 1e-9]:
            self._plan.remove((when, what, channel))
            if (call := self._network_calls.get(channel)) is not None:
                if what == "answer":
                    peer.answer(call, channel)
                else:
                    peer.hangup(self._network_calls.pop(channel), 16)
        for frame in peer.frames():
            k.dchan_receive(self.DCHAN, frame)


class DahdiR2FakeHarness(DahdiFakeHarness):
    """The same DAHDI card and far side, with the E1 running MFC/R2 (cas framing, trunk timeslots 1-4): the
    carrier is a second ``drivers.r2.span.R2Span`` behind the fake kernel's CAS bits and audio
    (``tests.drivers.test_dahdi_r2.R2Carrier``). It calls in, and answers our calls after 2 s of ringing (B-1
    at once) and clears them 3 s later. An inbound call's compelled MF register exchange (number, category,
    calling number) takes about 3 s: ``inbound_call`` runs it, the card polled as usual, and keeps the card's
    events for the next ``run``.
    """

    name = "dahdi-r2-fake"
    BOX_NUMBER = "4008"  # the card takes 4-digit numbers (max_dnis)

    def __init__(self) -> None:
        require_dahdi_binding()
        from drivers.dahdi.card import DahdiCard
        from drivers.dahdi.fakekernel import FakeKernel
        from tests.drivers.test_dahdi_r2 import R2Carrier
        self.kernel = FakeKernel.appliance(fxs=2, fxo=1, signalling="r2")
        channels = [1, 2, 3, 4, 32, 33, 34]
        self.card = DahdiCard(self.kernel, span_channels=channels[:4], fxs_channels=channels[4:6],
                              fxo_channels=channels[6:], r2={})
        self.channo = dict(enumerate(channels))
        self.now = 0.0
        self.received = []
        self._ringing_since, self._off_since, self._line_calls = {}, {}, {}
        self.peer = None  # no libpri here
        self.carrier = R2Carrier(self.kernel, channels[:4], max_dnis=3, timers={"accept": 0.0})
        self._plan = []  # (when, "answer" | "hangup", timeslot)
        self._kept: list = []  # card events seen while an inbound call's register exchange ran

    def run(self, seconds: float) -> list:
        kept, self._kept = self._kept, []
        return kept + super().run(seconds)

    def inbound_call(self, number: str) -> None:
        channel = next(ch for ch in (1, 2, 3, 4) if not self.carrier.span.busy(ch))
        self.carrier.dial(channel, self.BOX_NUMBER, number, self.now)
        for _ in range(500):
            self._kept += super().run(0.02)
            if any(isinstance(e, Seized) for e in self._kept):
                return
        raise AssertionError(f"the card did not take the R2 call: {self._kept}, carrier {self.carrier.events}")

    def far_end_clears(self, port: int) -> None:
        self.carrier.span.hangup(self.channo[port], 16, self.now)

    def answering_number(self) -> str:
        return "110"  # the carrier's numbers have 3 digits (its max_dnis)

    def span_alarm(self, alarms: set[str]) -> None:
        self.kernel.set_span_alarms(1, alarms)
        self.carrier.alarm(bool(alarms), self.now)

    def far_side(self) -> None:
        from drivers.r2.span import Offered
        now = self.now
        for ev in self.carrier.step(now):
            if isinstance(ev, Offered):  # our outbound call: B-1 went at once; answered and cleared on the plan
                self._plan += [(now + self.ANSWER_AFTER_S, "answer", ev.channel),
                               (now + self.ANSWER_AFTER_S + self.TALK_S, "hangup", ev.channel)]
        for when, what, channel in [p for p in self._plan if p[0] <= now + 1e-9]:
            self._plan.remove((when, what, channel))
            if what == "hangup":
                self.carrier.span.hangup(channel, 16, now)  # nothing to do if the call is gone
                continue
            try:
                self.carrier.span.answer(channel, now)
            except DriverError:  # the card gave up before the answer
                pass
        super().far_side()  # phones, lines, the hardware's tick


class RealDahdiHarness(Harness):
    """A real DAHDI card, on a box whose owner says it has one: ``APPLIANCE_REAL_DAHDI=1``.

    Nobody plays the far side of a real card (no phone is lifted, no line rings on
    cue), so only what the card does on its own is checked: its ports as the config
    describes them, and frames both ways at the hardware's pace.
    """

    name = "dahdi-real"
    supports: set[str] = set()
    missing = {f: "a real card's far side (phones, lines, the carrier) is not under the test's control"
               for f in FEATURES}

    def __init__(self) -> None:
        from appliance.config import validate
        from drivers.dahdi.card import DahdiCard
        self.card = DahdiCard.from_config(validate({"card": {"driver": "dahdi"}}))
        self.now = 0.0


HARNESSES = [SimHarness, DahdiFakeHarness, DahdiR2FakeHarness]
if os.environ.get("APPLIANCE_REAL_DAHDI") == "1":  # the marker: this machine has a configured DAHDI card
    HARNESSES.append(RealDahdiHarness)


@pytest.fixture(params=HARNESSES, ids=lambda h: h.name)
def h(request):
    harness = request.param()
    yield harness
    harness.card.close()
    if getattr(harness, "peer", None) is not None:
        harness.peer.close()


def needs(h, feature: str) -> None:
    if feature not in h.supports:
        pytest.skip(f"{h.name}: {h.missing[feature]}")


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
    needs(h, "trunk_calls")
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
    needs(h, "fxs")
    seat = seats(h.card)[0]
    h.card.ring(seat, "13912345678")
    events = h.run(1.5)
    assert OffHook(seat) in events
    assert OnHook(seat) in h.run(3.0)  # nobody was bridged to it: the agent puts it down
    with pytest.raises(DriverError):
        h.card.ring(trunks(h.card)[0], "1")  # only FXS ports ring


def test_stop_ring_before_the_answer_leaves_the_phone_on_hook(h):
    needs(h, "fxs")
    seat = seats(h.card)[0]
    h.card.ring(seat, None)
    h.run(0.5)
    h.card.stop_ring(seat)
    assert not any(isinstance(e, (OffHook, OnHook)) for e in h.run(3.0))


def test_outbound_call_alerts_connects_and_clears(h):
    needs(h, "trunk_calls")
    port = trunks(h.card)[-1]
    h.card.dial(port, h.answering_number())
    events = [e for e in h.run(6.5) if isinstance(e, (Alerting, Connected, Released))]
    assert events == [Alerting(port), Connected(port), Released(port, 16)]
    with pytest.raises(DriverError):
        h.card.dial(seats(h.card)[0], "110")  # not a trunk or line


def test_span_alarm_ends_calls_with_a_cause_and_clears(h):
    needs(h, "trunk_calls")
    h.inbound_call("13912345678")
    (seized,) = [e for e in h.run(0.1) if isinstance(e, Seized)]
    h.card.answer(seized.port)
    h.span_alarm({"RED"})
    events = h.run(0.1)
    assert Alarm(1, frozenset({"RED"})) in events and Released(seized.port, 38) in events
    h.span_alarm(set())
    assert Alarm(1, frozenset()) in h.run(0.1)


def test_a_failed_port_is_reported_and_the_others_go_on(h):
    needs(h, "port_fault")
    seat = seats(h.card)[0]
    h.port_fails(seat)
    assert PortFault(seat, False, "no frames") in h.run(h.fault_detect_s)
    other = seats(h.card)[1]
    h.card.ring(other, None)
    assert OffHook(other) in h.run(1.5)


def test_a_port_that_delivers_frames_again_is_reported_back(h):
    needs(h, "port_fault")
    seat = seats(h.card)[0]
    h.port_fails(seat)
    assert [e for e in h.run(h.fault_detect_s) if isinstance(e, PortFault)] == [PortFault(seat, False, "no frames")]
    h.port_recovers(seat)
    assert [e for e in h.run(0.1) if isinstance(e, PortFault)] == [PortFault(seat, True)]


def test_span_alarm_is_reported_once_per_change(h):
    needs(h, "span_alarm")
    alarms = lambda events: [e for e in events if isinstance(e, Alarm)]  # noqa: E731
    h.span_alarm({"RED"})
    assert alarms(h.run(0.1)) == [Alarm(1, frozenset({"RED"}))]
    h.span_alarm({"RED", "LOS"})
    assert alarms(h.run(0.1)) == [Alarm(1, frozenset({"RED", "LOS"}))]
    h.span_alarm({"RED", "LOS"})  # the same again: nothing new to tell
    assert alarms(h.run(1.5)) == []
    h.span_alarm(set())
    assert alarms(h.run(0.1)) == [Alarm(1, frozenset())]


def test_an_analog_line_rings_with_caller_id_is_answered_and_cleared(h):
    needs(h, "fxo")
    line = next(p.index for p in h.card.ports if p.kind is PortKind.FXO)
    h.line_call(line, "13912345678")
    events = [e for e in h.run(5.5) if isinstance(e, Ringing)]
    assert events == [Ringing(line, True), Ringing(line, False), Ringing(line, True)]
    assert decode_callerid(h.heard(line)).number == "13912345678"  # FSK between the bursts, in the frames
    h.card.answer(line)
    h.run(1.0)
    h.line_far_end_clears(line)
    assert Polarity(line) in h.run(0.1)
    h.card.hangup(line)
    assert not any(isinstance(e, (Ringing, Polarity, Released)) for e in h.run(6.0))
