"""Callbacks from the missed-call and voicemail lists: ``missed.callback`` and ``voicemail.callback`` ring the
seat, dial the number through click-to-dial (``CallCentre.dial_out``, ``appliance.outbound``), and the call's
end (answered, busy) moves the entry to done or failed. The whole core on the simulated card in virtual time,
the morning of ``test_missed.day``, the commands over the control API's socket."""

from __future__ import annotations

import pytest

from drivers.sim import AgentScript, OutboundScript
from tests.appliance import test_missed
from tests.appliance.servers import control_api
from tests.appliance.test_missed import B, D, E, H, day, entry, refused, t

make_core = test_missed.make_core  # the fixture: cores on the sim card in virtual time

NETWORK = {H: OutboundScript("answered", setup_s=0.5, ring_s=3.0, talk_s=10.0),
           B: OutboundScript("busy", setup_s=0.5, tone_s=3.0),
           E: OutboundScript("answered", setup_s=0.5, ring_s=3.0, talk_s=10.0),
           D: OutboundScript("answered", setup_s=0.5, ring_s=3.0, talk_s=10.0)}


@pytest.fixture
def api(make_core):
    """The morning's missed calls (entries 1 B, 2 E with a message, 3 D, 4 H); seat 1's agent answers a ring
    after 2 s; the numbers called back answer or are busy as ``NETWORK`` says."""
    # with audio: every tick polls the card, so the phone rung by a command reacts from the command's time (in
    # event mode the sim card would schedule the agent's pick-up from its last poll, long before)
    core, card = make_core(network=NETWORK, agent=AgentScript(ring_delay_s=2.0, talk_s=30.0), media=True)
    ids = day(core, card)
    core.runtime.run_until(40.0)  # seat 1 is free again from 34
    with control_api(core) as client:
        yield core, card, client, ids


def ended(core, call_id):
    core.settle()
    return next(e for e in core.journal.events(call_id) if e["type"] == "call.ended")


def test_a_callback_answered_makes_the_entry_done(api):
    core, card, client, ids = api
    calling = client.call("missed.callback", missed_id=4, seat=1)["entry"]
    call_id = calling["callback_call_id"]
    assert calling == entry(4, H, "广东省汕头市", [(ids[H][0], 14.0, "failed")], state="calling_back", attempts=1,
                            callback_call_id=call_id, callback_seat=1, callback_ts=t(40.0))
    assert refused(client, "missed.callback", missed_id=4, seat=1) == (
        "conflict", f"missed call 4 is being called back (call {call_id})")
    core.runtime.run_until(70.0)  # the agent answers at 42, the number is dialled, answers and talks 10 s
    end = ended(core, call_id)
    assert (end["data"]["origin"], end["data"]["result"]) == ({"missed": 4}, "answered")
    assert client.call("missed.list", state="done")["entries"] == [
        {**calling, "state": "done", "result": "answered", "resolution": "callback",
         "resolved_ts": round(end["ts"], 3), "resolved_call_id": call_id}]
    assert refused(client, "missed.callback", missed_id=4, seat=1) == (
        "conflict", "missed call 4 is done; nothing to call back")


def test_a_busy_number_fails_with_its_result_and_can_be_called_again(api):
    core, card, client, ids = api
    first = client.call("missed.callback", missed_id=1, seat=1)["entry"]["callback_call_id"]
    core.runtime.run_until(60.0)
    assert ended(core, first)["data"]["result"] == "busy"
    failed = client.call("missed.list", state="failed")["entries"]
    assert [(e["id"], e["attempts"], e["result"], e["callback_call_id"]) for e in failed] == [(1, 1, "busy", first)]
    again = client.call("missed.callback", missed_id=1, seat=1)["entry"]
    assert (again["state"], again["attempts"], again["result"]) == ("calling_back", 2, None)
    core.runtime.run_until(80.0)
    [e] = client.call("missed.list", state="failed")["entries"]
    assert (e["attempts"], e["result"], e["callback_call_id"]) == (2, "busy", again["callback_call_id"])
    # closing it by hand: no more callbacks
    assert client.call("missed.close", missed_id=1)["entry"]["state"] == "closed"


def test_a_voicemail_callback_calls_the_message_s_caller_and_both_lists_show_it(api):
    core, card, client, ids = api
    message = ids[E][0]
    calling = client.call("voicemail.callback", call_id=message, seat=1)["voicemail"]
    call_id = calling["callback_call_id"]
    assert (calling["missed_id"], calling["callback_state"], calling["callback_attempts"]) == (2, "calling_back", 1)
    core.runtime.run_until(70.0)
    end = ended(core, call_id)
    assert end["data"]["origin"] == {"voicemail": message}
    [vm] = client.call("voicemail.list", box="general")["messages"]
    assert (vm["callback_state"], vm["callback_result"], vm["heard"]) == ("done", "answered", False)
    [done] = client.call("missed.list", state="done")["entries"]
    assert (done["id"], done["resolution"], done["resolved_call_id"]) == (2, "callback", call_id)


def test_a_seat_that_cannot_dial_is_refused_and_the_entry_stays_new(api):
    core, card, client, ids = api
    client.call("agent.state", seat=1, state="busy", reason="meal")
    code, message = refused(client, "missed.callback", missed_id=3, seat=1)
    assert code == "conflict" and message.startswith("seat 1 is busy")
    assert client.call("missed.list", state="new")["entries"][-1]["id"] == 3
    assert [e["attempts"] for e in client.call("missed.list")["entries"]] == [0, 0, 0, 0]


def test_an_answered_call_out_to_the_number_without_the_list_makes_the_entry_done(api):
    """An agent who reaches the customer by click-to-dial (not from the list) also settles the entry."""
    core, card, client, ids = api
    now = core.runtime.now
    call_id, actions = core.logic.dial_out(1, D, now)
    core.runtime.apply(actions, now)
    core.runtime.run_until(70.0)
    end = ended(core, call_id)
    assert end["data"]["result"] == "answered" and "origin" not in end["data"]
    [done] = client.call("missed.list", state="done")["entries"]
    assert done == entry(3, D, "辽宁省抚顺市", [(ids[D][0], 6.0, "overflow")], state="done", resolution="called_out",
                         resolved_ts=round(end["ts"], 3), resolved_call_id=call_id)
