"""Our R2Span against libopenr2 1.3.3 (China variant, ``OR2_VAR_CHINA``) on one E1 channel, in virtual time.

libopenr2's China variant, as a caller, answers A-6 with KA but then takes the
A-1 that asks for the calling number's first digit as "send the next DNIS
digit" (it logs "No more DNIS. Doing nothing, waiting for timeout"), so it never
sends a calling number: our side waits the 3 s digit time, takes the number as
unavailable and sends A-3 as a pulse, which openr2 answers with its category.
Calls from us carry the calling number to openr2, which collects it with A-1
after A-6 and KA, as China No.1 has it.
"""

from __future__ import annotations

import pytest

from drivers.r2.span import Alerted, Answered, Cleared, Offered, R2Span
from tests.drivers.r2.wire import OpenR2Wire

ANI = "13912345678"


@pytest.fixture
def peer():
    from tests.peers.openr2 import OpenR2Peer

    p = OpenR2Peer("CN", max_ani=12, max_dnis=4)
    yield p
    p.close()


def wire(peer, **kw) -> OpenR2Wire:
    w = OpenR2Wire(R2Span([1], **kw), peer)
    w.run(0.1)
    return w


def ours(w: OpenR2Wire, event) -> bool:
    return event in w.ours.events


def inbound_answered(peer) -> OpenR2Wire:
    w = wire(peer)
    assert peer.make_call(ANI, "1234", "national_subscriber") == 0
    assert w.run(15.0, lambda: w.ours.events), peer.log_text()
    assert w.ours.events == [Offered(1, None, "1234", "unavailable")]
    assert w.ours.span.call_info(1) == {"dnis": "1234", "ani": None, "ka": 1, "kd": 1}
    w.ours.span.answer(1, w.now)
    assert w.run(2.0, lambda: peer.seen("answered")), peer.log_text()
    assert [e.name for e in peer.events if e.name != "idle"] == ["accepted", "answered"]
    assert peer.seen("accepted").mode == "with_charge"  # B-1
    return w


def test_inbound_from_openr2_answered_then_cleared_by_openr2(peer):
    w = inbound_answered(peer)
    peer.disconnect()
    assert w.run(2.0, lambda: ours(w, Cleared(1, 16)))
    assert w.run(1.0, lambda: peer.seen("end"))
    assert w.ours.bits[1] == [0b1001, 0b1101, 0b0101, 0b1001]  # idle, seize ack, answer, release guard
    assert w.peer_bits == [0b1011, 0b0011, 0b1011]  # openr2 (China: c d = 1 1): idle, seize, clear-forward
    assert not w.ours.span.busy(1)


def test_inbound_from_openr2_answered_then_cleared_by_us(peer):
    w = inbound_answered(peer)
    w.ours.span.hangup(1, 16, w.now)
    assert w.run(2.0, lambda: peer.seen("end")), peer.log_text()
    assert peer.seen("disconnect").cause == "normal_clearing"
    w.run(0.2)
    assert w.ours.bits[1] == [0b1001, 0b1101, 0b0101, 0b1101, 0b1001]  # ..., clear-back, release guard
    assert Cleared(1, 16) not in w.ours.events and not w.ours.span.busy(1)


def test_inbound_from_openr2_refused_busy(peer):
    w = wire(peer)
    peer.make_call(ANI, "1234")
    assert w.run(15.0, lambda: w.ours.events)
    w.ours.span.hangup(1, 17, w.now)
    assert w.run(2.0, lambda: peer.seen("disconnect")), peer.log_text()
    assert peer.seen("disconnect").cause == "busy_number"
    assert w.run(1.0, lambda: not w.ours.span.busy(1))


def outbound(peer, **kw) -> OpenR2Wire:
    w = wire(peer, calling_number=ANI, **kw)
    w.ours.span.dial(1, "1234", w.now)
    assert w.run(10.0, lambda: peer.seen("offered")), peer.log_text()
    ev = peer.seen("offered")
    assert (ev.ani, ev.dnis, ev.category) == (ANI, "1234", "national_subscriber")
    assert "".join(e.value for e in peer.events if e.name == "ani_digit") == ANI
    return w


def test_outbound_to_openr2_answered_and_cleared_both_ways(peer):
    w = outbound(peer)
    peer.accept()
    assert w.run(2.0, lambda: ours(w, Alerted(1)))
    peer.answer()
    assert w.run(2.0, lambda: ours(w, Answered(1)))
    peer.disconnect()  # clear-back: we send clear-forward, openr2 the release guard
    assert w.run(2.0, lambda: ours(w, Cleared(1, 16)))
    assert w.run(2.0, lambda: peer.seen("end") and not w.ours.span.busy(1)), peer.log_text()
    assert w.ours.events == [Alerted(1), Answered(1), Cleared(1, 16)]
    assert w.ours.bits[1] == [0b1001, 0b0001, 0b1001]
    assert w.peer_bits == [0b1011, 0b1111, 0b0111, 0b1111, 0b1011]  # idle, ack, answer, clear-back, guard


def test_outbound_to_openr2_we_clear(peer):
    w = outbound(peer)
    peer.accept()
    assert w.run(2.0, lambda: ours(w, Alerted(1)))
    peer.answer()
    assert w.run(2.0, lambda: ours(w, Answered(1)))
    w.ours.span.hangup(1, 16, w.now)
    assert w.run(2.0, lambda: peer.seen("end") and not w.ours.span.busy(1)), peer.log_text()
    assert peer.seen("disconnect").cause == "normal_clearing"


@pytest.mark.parametrize("refusal, cause", [("busy_number", 17), ("unallocated_number", 1),
                                            ("network_congestion", 42)])
def test_outbound_to_openr2_refused(peer, refusal, cause):
    w = outbound(peer)
    peer.disconnect(refusal)  # openr2 sends B-2 / B-5 / B-4
    assert w.run(2.0, lambda: w.ours.events)
    assert w.ours.events == [Cleared(1, cause)]
    assert w.run(2.0, lambda: peer.seen("end") and not w.ours.span.busy(1)), peer.log_text()


def test_outbound_shorter_number_completes_on_openr2s_digit_timeout(peer):
    w = wire(peer, calling_number=ANI)
    w.ours.span.dial(1, "12", w.now)  # openr2 expects 4 digits: it waits, then asks for the rest itself
    assert w.run(20.0, lambda: peer.seen("offered")), peer.log_text()
    assert (peer.seen("offered").dnis, peer.seen("offered").ani) == ("12", ANI)


def test_outbound_openr2_never_decides_our_mf_timer_gives_up(peer):
    w = outbound(peer)  # offered; no accept: our KD tone gets no B signal
    assert w.run(20.0, lambda: w.ours.events), peer.log_text()
    assert w.ours.events == [Cleared(1, 102)]
    assert w.run(20.0, lambda: not w.ours.span.busy(1)), peer.log_text()
