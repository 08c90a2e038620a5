"""SIP transactions in explicit time: every timer of RFC 3261 §17 (and RFC 6026) at the time it is due."""

from __future__ import annotations

import pytest

from drivers.sip.message import Request, Response, parse
from drivers.sip.transaction import RequestReceived, ResponseReceived, TimedOut, TransactionLayer

PHONE = ("192.0.2.20", 5060)
BOX = ("192.0.2.10", 5060)


def request(method="INVITE", branch="z9hG4bK776asdhds", cseq=1, via_params="", to_tag=None):
    to = "<sip:801@192.0.2.10>" + (f";tag={to_tag}" if to_tag else "")
    return Request(method, "sip:801@192.0.2.10", [
        ("Via", f"SIP/2.0/UDP 192.0.2.20:5060;branch={branch}{via_params}"), ("Max-Forwards", "70"),
        ("From", "<sip:alice@192.0.2.20>;tag=1928301774"), ("To", to), ("Call-ID", "a84b4c76e66710@192.0.2.20"),
        ("CSeq", f"{cseq} {method}"), ("Contact", "<sip:alice@192.0.2.20>")])


def reply(req, status, tag="as83kd9bs"):
    return Response.for_request(req, status, to_tag=tag)


def sent(layer):
    return [(parse(o.data), o.addr) for o in layer.messages_to_send()]


def events(layer):
    out = []
    while (e := layer.next_event()) is not None:
        out.append(e)
    return out


def run(layer, until, step=0.05, start=0.0):
    """Fire timers every ``step`` from ``start`` to ``until``; the times at which something was sent."""
    times, t = [], start
    while t <= until + 1e-9:
        layer.handle_timer(t)
        times += [round(t, 2)] * len(layer.messages_to_send())
        t = round(t + step, 6)
    return times


def test_client_invite_retransmits_by_timer_a_and_times_out_by_timer_b():
    layer = TransactionLayer()
    key = layer.send_request(request(), BOX, 0.0)
    assert len(sent(layer)) == 1
    assert run(layer, 40.0) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # T1 doubling, unbounded (A)
    [ev] = events(layer)
    assert isinstance(ev, TimedOut) and ev.key == key and ev.request.method == "INVITE"
    assert layer.state(key) is None


def test_client_invite_rejected_is_acknowledged_and_repeats_absorbed():
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, BOX, 0.0)
    layer.messages_to_send()
    layer.receive(reply(inv, 180).serialize(), BOX, 0.2)
    assert run(layer, 5.0, start=0.25) == []  # a provisional stops timer A
    busy = reply(inv, 486)
    layer.receive(busy.serialize(), BOX, 5.0)
    [(ack, addr)] = sent(layer)
    assert (ack.method, str(ack.uri), ack.cseq.seq, ack.cseq.method, ack.to.tag, addr) == (
        "ACK", "sip:801@192.0.2.10", 1, "ACK", "as83kd9bs", BOX)
    assert ack.via[0].branch == inv.via[0].branch  # §17.1.1.3: same branch as the INVITE
    layer.receive(busy.serialize(), BOX, 6.0)  # the 486 again: our ACK again, nothing new for the TU
    assert [m.method for m, _ in sent(layer)] == ["ACK"]
    assert [(type(e), e.response.status) for e in events(layer)] == [(ResponseReceived, 180),
                                                                      (ResponseReceived, 486)]
    assert layer.state(key) == "completed"
    layer.handle_timer(5.0 + 32.0)  # timer D
    assert layer.state(key) is None


def test_client_invite_2xx_ends_the_transaction_and_repeats_reach_the_tu():
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, BOX, 0.0)
    ok = reply(inv, 200)
    layer.receive(ok.serialize(), BOX, 1.0)
    assert layer.state(key) is None and [e.response.status for e in events(layer)] == [200]
    layer.receive(ok.serialize(), BOX, 1.5)  # the UAS did not get our ACK yet: the dialog answers it
    assert [e.response.status for e in events(layer)] == [200]


def test_client_non_invite_backs_off_to_t2_and_times_out_by_timer_f():
    layer = TransactionLayer()
    key = layer.send_request(request("REGISTER", cseq=5), BOX, 0.0)
    layer.messages_to_send()
    assert run(layer, 33.0) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [type(e) for e in events(layer)] == [TimedOut] and layer.state(key) is None


def test_client_non_invite_provisional_then_final_then_timer_k():
    layer = TransactionLayer()
    reg = request("REGISTER", cseq=5)
    key = layer.send_request(reg, BOX, 0.0)
    layer.messages_to_send()
    layer.receive(reply(reg, 100, tag=None).serialize(), BOX, 0.1)
    assert run(layer, 9.0, start=0.15) == [0.5, 4.5, 8.5]  # proceeding: every T2
    layer.receive(reply(reg, 200).serialize(), BOX, 9.0)
    assert [e.response.status for e in events(layer)] == [100, 200] and layer.state(key) == "completed"
    layer.handle_timer(9.0 + 5.0)  # timer K = T4
    assert layer.state(key) is None


def test_server_invite_sends_100_absorbs_repeats_and_retransmits_its_final_until_ack():
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv.serialize(), PHONE, 0.0)
    [(trying, addr)] = sent(layer)
    assert (trying.status, addr) == (100, PHONE)
    [ev] = events(layer)
    assert isinstance(ev, RequestReceived) and ev.request.method == "INVITE" and ev.source == PHONE
    layer.receive(inv.serialize(), PHONE, 0.3)  # the phone repeats its INVITE: the 100 again
    assert [m.status for m, _ in sent(layer)] == [100] and events(layer) == []
    layer.respond(ev.key, reply(ev.request, 486), 1.0)
    assert [m.status for m, _ in sent(layer)] == [486]
    assert run(layer, 13.0, start=1.05) == [1.5, 2.5, 4.5, 8.5, 12.5]  # timer G, capped at T2
    layer.receive(request("ACK", to_tag="as83kd9bs").serialize(), PHONE, 13.0)
    assert events(layer) == [] and layer.state(ev.key) == "confirmed"  # absorbed: G stops
    assert run(layer, 17.0, start=13.05) == []
    layer.handle_timer(18.0)  # timer I = T4
    assert layer.state(ev.key) is None


def test_server_invite_without_ack_times_out_by_timer_h():
    layer = TransactionLayer()
    layer.receive(request().serialize(), PHONE, 0.0)
    [ev] = events(layer)
    layer.respond(ev.key, reply(ev.request, 603), 0.0)
    run(layer, 33.0)
    assert [(type(e), e.key) for e in events(layer)] == [(TimedOut, ev.key)]


def test_server_invite_2xx_is_repeated_until_its_ack_which_reaches_the_tu():
    layer = TransactionLayer()
    layer.receive(request().serialize(), PHONE, 0.0)
    [ev] = events(layer)
    layer.messages_to_send()
    layer.respond(ev.key, reply(ev.request, 200), 1.0)
    assert layer.state(ev.key) == "accepted"
    assert run(layer, 3.6, start=1.05) == [1.05, 1.5, 2.5]  # the 2xx itself, then G-style repeats
    layer.receive(request().serialize(), PHONE, 3.0)  # a late INVITE repeat is absorbed (RFC 6026)
    assert sent(layer) == []
    ack = request("ACK", branch="z9hG4bKnewbranch", to_tag="as83kd9bs")
    layer.receive(ack.serialize(), PHONE, 3.7)
    [ack_ev] = events(layer)
    assert isinstance(ack_ev, RequestReceived) and ack_ev.request.method == "ACK"
    assert run(layer, 10.0, start=3.75) == []
    layer.handle_timer(1.0 + 32.0)  # timer L
    assert layer.state(ev.key) is None


def test_server_non_invite_repeats_its_response_then_forgets_after_timer_j():
    layer = TransactionLayer()
    opt = request("OPTIONS", cseq=2)
    layer.receive(opt.serialize(), PHONE, 0.0)
    [ev] = events(layer)
    assert sent(layer) == []  # no automatic 100 for a non-INVITE
    layer.respond(ev.key, reply(ev.request, 200), 0.1)
    layer.receive(opt.serialize(), PHONE, 1.0)
    assert [m.status for m, _ in sent(layer)] == [200, 200] and events(layer) == []
    layer.handle_timer(0.1 + 32.0)
    layer.receive(opt.serialize(), PHONE, 40.0)  # after J: a new transaction
    assert [type(e) for e in events(layer)] == [RequestReceived]


def test_cancel_finds_its_invite():
    layer = TransactionLayer()
    layer.receive(request().serialize(), PHONE, 0.0)
    [inv_ev] = events(layer)
    layer.receive(request("CANCEL").serialize(), PHONE, 1.0)
    [cancel_ev] = events(layer)
    assert cancel_ev.request.method == "CANCEL" and cancel_ev.key != inv_ev.key
    assert layer.invite_for_cancel(cancel_ev.request) == inv_ev.key
    layer.respond(inv_ev.key, reply(inv_ev.request, 487), 1.0)
    assert layer.invite_for_cancel(cancel_ev.request) is None


def test_responses_follow_rport_and_carry_received():
    layer = TransactionLayer()
    nat = ("203.0.113.5", 40000)
    layer.receive(request("OPTIONS", via_params=";rport").serialize(), nat, 0.0)
    [ev] = events(layer)
    layer.respond(ev.key, reply(ev.request, 200), 0.0)
    [(resp, addr)] = sent(layer)
    assert addr == nat
    assert (resp.via[0].received, resp.via[0].rport) == ("203.0.113.5", 40000)


def test_tcp_has_no_retransmissions_and_no_quiet_time():
    layer = TransactionLayer()
    reg = request("REGISTER")
    key = layer.send_request(reg, BOX, 0.0, transport="TCP")
    layer.messages_to_send()
    assert run(layer, 31.0) == []
    layer.receive(reply(reg, 200), BOX, 31.0, transport="TCP")
    assert layer.state(key) is None  # timer K is 0 on a reliable transport


@pytest.mark.parametrize("junk", [b"", b"hello", b"SIP/2.0 200 OK\r\n\r\n", request().serialize()[:-40]])
def test_garbage_is_counted_and_dropped(junk):
    layer = TransactionLayer()
    layer.receive(junk, PHONE, 0.0)
    assert layer.discarded == 1 and events(layer) == [] and sent(layer) == []
