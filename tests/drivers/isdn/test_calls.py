"""Q.931 call control on its own, in explicit time: timers, odd messages, the data link coming and going.

The peer here is the test, writing messages with our codec; interop with a real
stack is in test_pri_libpri.py.
"""

from __future__ import annotations

import pytest

from appliance.errors import DriverError
from drivers.isdn.calls import Alerted, Answered, Cleared, Offered, PriCalls
from drivers.isdn.q931 import (MT, BearerCapability, Cause, CallState, ChannelId, Message, PartyNumber,
                               RestartIndicator, decode, encode)


def user(**timers) -> PriCalls:
    calls = PriCalls(False, [*range(1, 16), *range(17, 32)], timers or None)
    calls.link_changed(True, 0.0)
    return calls


def sent(calls: PriCalls) -> list[Message]:
    return [decode(m) for m in calls.messages_to_send()]


def events(calls: PriCalls) -> list:
    out = []
    while (ev := calls.next_event()) is not None:
        out.append(ev)
    return out


def setup_from_network(cref=0x1234, channel=5, calling="13912345678", **kw) -> bytes:
    return encode(Message(MT.SETUP, cref, bearer=BearerCapability(), channel=ChannelId(channel),
                          calling=PartyNumber(calling, type="national", presentation="allowed") if calling else None,
                          called=PartyNumber("4008001234", type="national"), sending_complete=True, **kw))


def from_network(mtype: MT, cref: int, ours: bool, **ies) -> bytes:
    """A message from the network for a call; ``ours``: the call reference is one we allocated."""
    return encode(Message(mtype, cref, from_destination=ours, **ies))


def test_inbound_setup_gets_call_proceeding_on_its_channel_and_is_offered():
    calls = user()
    calls.receive(setup_from_network(), 0.0)
    (proc,) = sent(calls)
    assert (proc.type, proc.cref, proc.from_destination, proc.channel) == (MT.CALL_PROCEEDING, 0x1234, True,
                                                                           ChannelId(5, exclusive=True))
    assert events(calls) == [Offered(5, "13912345678", "4008001234")]
    calls.answer(5, 1.0)
    (conn,) = sent(calls)
    assert conn.type is MT.CONNECT
    calls.receive(from_network(MT.CONNECT_ACKNOWLEDGE, 0x1234, False), 1.1)
    assert calls.next_deadline() is None  # active: no timer runs


def test_no_connect_acknowledge_clears_with_cause_102_after_t313():
    calls = user()
    calls.receive(setup_from_network(), 0.0)
    calls.answer(5, 1.0)
    sent(calls), events(calls)
    assert calls.next_deadline() == pytest.approx(5.0)  # T313 = 4 s
    calls.handle_timer(5.0)
    (disc,) = sent(calls)
    assert (disc.type, disc.cause.value) == (MT.DISCONNECT, 102)
    assert events(calls) == [Cleared(5, 102)]


def test_setup_without_bearer_or_on_a_foreign_channel_is_refused():
    calls = user()
    calls.receive(encode(Message(MT.SETUP, 7, channel=ChannelId(5), called=PartyNumber("1"))), 0.0)
    calls.receive(setup_from_network(cref=8, channel=16), 0.0)  # the D-channel's timeslot is no B-channel
    refusals = sent(calls)
    assert [(m.type, m.cref, m.from_destination, m.cause.value) for m in refusals] == [
        (MT.RELEASE_COMPLETE, 7, True, 96), (MT.RELEASE_COMPLETE, 8, True, 44)]
    assert events(calls) == []


def test_outbound_setup_is_sent_twice_then_given_up_with_cause_102():
    calls = user()
    calls.setup(3, "110", "4008001234", 10.0)
    (setup,) = sent(calls)
    assert (setup.type, setup.channel, setup.called.digits, setup.calling.digits) == (
        MT.SETUP, ChannelId(3, exclusive=True), "110", "4008001234")
    assert setup.bearer == BearerCapability("speech", "alaw") and setup.sending_complete
    calls.handle_timer(14.0)  # T303 = 4 s: the SETUP again
    assert [m.type for m in sent(calls)] == [MT.SETUP]
    calls.handle_timer(18.0)
    (rc,) = sent(calls)
    assert (rc.type, rc.cause.value) == (MT.RELEASE_COMPLETE, 102)
    assert events(calls) == [Cleared(3, 102)]
    assert not calls.busy(3)


def test_outbound_progress_alerting_connect_and_far_end_disconnect():
    calls = user()
    calls.setup(3, "110", None, 0.0)
    cref = sent(calls)[0].cref
    calls.receive(from_network(MT.CALL_PROCEEDING, cref, True, channel=ChannelId(3)), 0.1)
    assert calls.next_deadline() == pytest.approx(30.1)  # T310
    calls.receive(from_network(MT.ALERTING, cref, True), 0.2)
    calls.receive(from_network(MT.CONNECT, cref, True), 5.0)
    assert [m.type for m in sent(calls)] == [MT.CONNECT_ACKNOWLEDGE]
    calls.receive(from_network(MT.DISCONNECT, cref, True, cause=Cause(16, 2)), 9.0)
    (rel,) = sent(calls)
    assert rel.type is MT.RELEASE
    assert events(calls) == [Alerted(3), Answered(3), Cleared(3, 16)]
    calls.hangup(3, 16, 9.1)  # the core clears after hearing of it: nothing more to send
    assert sent(calls) == []
    calls.receive(from_network(MT.RELEASE_COMPLETE, cref, True), 9.2)
    assert not calls.busy(3)


def test_release_not_confirmed_is_sent_again_then_the_channel_freed():
    calls = user()
    calls.setup(3, "110", None, 0.0)
    cref = sent(calls)[0].cref
    calls.receive(from_network(MT.CONNECT, cref, True), 1.0)
    calls.hangup(3, 16, 2.0)
    assert [m.type for m in sent(calls)] == [MT.CONNECT_ACKNOWLEDGE, MT.DISCONNECT]
    calls.handle_timer(32.0)  # T305 = 30 s: RELEASE
    calls.handle_timer(36.0)  # T308 = 4 s: RELEASE again
    calls.handle_timer(40.0)  # and then the channel is idle again
    assert [m.type for m in sent(calls)] == [MT.RELEASE, MT.RELEASE]
    assert not calls.busy(3)
    assert events(calls) == [Answered(3)]


def test_clear_collision_both_sides_disconnect():
    calls = user()
    calls.receive(setup_from_network(), 0.0)
    calls.answer(5, 0.1)
    calls.hangup(5, 16, 1.0)
    calls.receive(from_network(MT.DISCONNECT, 0x1234, False, cause=Cause(16, 2)), 1.0)
    assert [m.type for m in sent(calls)][-2:] == [MT.DISCONNECT, MT.RELEASE]
    calls.receive(from_network(MT.RELEASE_COMPLETE, 0x1234, False), 1.1)
    assert not calls.busy(5)
    assert [e for e in events(calls) if isinstance(e, Cleared)] == []  # we cleared first


def test_status_enquiry_unknown_call_reference_and_peer_without_the_call():
    calls = user()
    calls.receive(setup_from_network(), 0.0)
    sent(calls)
    calls.receive(from_network(MT.STATUS_ENQUIRY, 0x1234, False), 0.5)
    (status,) = sent(calls)
    assert (status.type, status.cause.value, status.call_state) == (MT.STATUS, 30, CallState(9))
    calls.receive(from_network(MT.DISCONNECT, 0x0999, False, cause=Cause(16)), 0.6)  # no such call
    (rc,) = sent(calls)
    assert (rc.type, rc.cref, rc.cause.value) == (MT.RELEASE_COMPLETE, 0x0999, 81)
    calls.receive(from_network(MT.RELEASE_COMPLETE, 0x0998, False), 0.7)  # for no call: ignored
    assert sent(calls) == []
    calls.receive(from_network(MT.STATUS, 0x1234, False, cause=Cause(101), call_state=CallState(0)), 0.8)
    assert events(calls)[-1] == Cleared(5, 101) and not calls.busy(5)


def test_restart_of_one_channel_and_of_the_interface():
    calls = user()
    calls.receive(setup_from_network(cref=1, channel=5), 0.0)
    calls.receive(setup_from_network(cref=2, channel=6), 0.0)
    sent(calls), events(calls)
    calls.receive(encode(Message(MT.RESTART, 0, channel=ChannelId(5), restart=RestartIndicator("indicated"))), 1.0)
    (ack,) = sent(calls)
    assert (ack.type, ack.cref, ack.channel, ack.restart) == (MT.RESTART_ACKNOWLEDGE, 0, ChannelId(5),
                                                              RestartIndicator("indicated"))
    assert events(calls) == [Cleared(5, 41)] and calls.busy(6)
    calls.receive(encode(Message(MT.RESTART, 0, restart=RestartIndicator("all-interfaces"))), 2.0)
    assert [m.type for m in sent(calls)] == [MT.RESTART_ACKNOWLEDGE]
    assert events(calls) == [Cleared(6, 41)] and not calls.busy(6)


def test_link_loss_clears_unanswered_calls_and_keeps_answered_ones_for_t309():
    calls = user()
    calls.receive(setup_from_network(cref=1, channel=5), 0.0)
    calls.receive(setup_from_network(cref=2, channel=6), 0.0)
    calls.answer(6, 0.1)
    calls.receive(from_network(MT.CONNECT_ACKNOWLEDGE, 2, False), 0.2)
    sent(calls), events(calls)
    calls.link_changed(False, 1.0)
    assert events(calls) == [Cleared(5, 41)]
    assert calls.next_deadline() == pytest.approx(91.0)  # T309 = 90 s
    calls.link_changed(True, 30.0)  # back in time: the answered call goes on
    assert calls.next_deadline() is None and calls.busy(6)
    calls.link_changed(False, 40.0)
    calls.handle_timer(130.0)
    assert events(calls) == [Cleared(6, 27)] and not calls.busy(6)


def test_commands_that_cannot_be_done_name_the_problem():
    calls = user()
    with pytest.raises(DriverError, match="B-channel 16 is not on this PRI interface"):
        calls.setup(16, "110", None, 0.0)
    calls.setup(1, "110", None, 0.0)
    with pytest.raises(DriverError, match="B-channel 1 is busy"):
        calls.setup(1, "110", None, 0.0)
    with pytest.raises(DriverError, match="a PRI number is digits"):
        calls.setup(2, "11O", None, 0.0)
    with pytest.raises(DriverError, match="no inbound call to answer on B-channel 2"):
        calls.answer(2, 0.0)


def test_garbage_from_the_link_is_dropped_and_the_calls_go_on():
    calls = user()
    calls.receive(setup_from_network(), 0.0)
    sent(calls), events(calls)
    for junk in (b"", b"\x09\x02\x00\x01\x05", b"\x08\x02\x00"):
        calls.receive(junk, 0.1)
    assert sent(calls) == [] and events(calls) == [] and calls.busy(5)
