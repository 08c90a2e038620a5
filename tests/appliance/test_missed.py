"""The missed-call and voicemail lists end to end: the whole core on the simulated card in virtual time, callers
who abandon in the queue, overflow, hang up in the IVR, leave messages, fail to reach the duty mobile, are
blocked or withheld, and a later answered call that closes an entry; the lists read over the control API's
socket (``appliance.missed``, ``appliance.missedapi``)."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from appliance.client import ApiError
from appliance.config import validate
from appliance.datadir import DataDir
from drivers.sim import AgentScript, CallerScript, OutboundScript, SimCard
from drivers.sim.lines import LineScript
from tests.appliance.servers import control_api
from tests.appliance.simcore import cores

EPOCH0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC: virtual time starts here
DUTY = "13900001111"  # the duty mobile: busy
FLOW = {"start": "menu", "nodes": {
    "menu": {"kind": "menu", "prompt": "welcome", "choices": {"1": "sales", "2": "message", "3": "duty",
                                                              "4": "complaint"}, "on_fail": "bye"},
    "sales": {"kind": "queue", "queue": "default"},
    "message": {"kind": "voicemail", "box": "general"},
    "complaint": {"kind": "voicemail", "box": "complaints"},
    "duty": {"kind": "transfer", "to": f"number:{DUTY}"},
    "bye": {"kind": "hangup", "prompt": "goodbye"},
}}
A, B, C, D, E, H = "13800138000", "13912345678", "02788886666", "13700137000", "13600136000", "13500135000"
BLOCKED = "13300133000"


@pytest.fixture
def make_core():
    """Cores on one data dir (a second core is the first restarted) with 8 trunk channels and one seat whose
    agent answers after 2 s and talks 30 s; no media (keys as events). Closed after the test."""
    root = tempfile.mkdtemp(prefix="missed-")  # short: the control socket's path is limited to 107 bytes
    with cores() as new_core:
        def make(*, epoch=EPOCH0, agent=None, seats=1, media=False, n_fxo=0, network=None, **cfg_updates):
            data = DataDir.open(f"{root}/data", create=True)
            cfg = validate({"card": {"trunk_channels": 8, "seats": seats}, "ivr": {"flow": FLOW},
                            "queue": {"max_wait_s": 10}, "screening": {"blacklist": [BLOCKED]}, **cfg_updates})
            card = SimCard(8, seats, agent=agent or AgentScript(ring_delay_s=2.0, talk_s=30.0), media=media,
                           seed=1, network={DUTY: OutboundScript("busy", setup_s=0.5, tone_s=3.0), **(network or {})},
                           n_fxo=n_fxo)
            return new_core(data, cfg, card, epoch=epoch, media=media), card

        yield make
    shutil.rmtree(root)


@pytest.fixture
def api(make_core):
    core, card = make_core()
    with control_api(core) as client:
        yield core, card, client


def refused(client, cmd, **args) -> tuple[str, str]:
    with pytest.raises(ApiError) as err:
        client.call(cmd, **args)
    return err.value.code, err.value.message


def t(x: float) -> float:
    return round(EPOCH0 + x, 3)


def entry(id_, number, area, calls, *, state="new", voicemails=0, **more):
    """An entry of missed.list as expected: ``calls`` are (call id, time, reason)."""
    return {"id": id_, "number": number, "area": area, "count": len(calls), "first_ts": t(calls[0][1]),
            "last_ts": t(calls[-1][1]), "reason": calls[-1][2], "voicemails": voicemails, "state": state,
            "attempts": 0, "result": None, "callback_call_id": None, "callback_seat": None, "callback_ts": None,
            "resolution": None, "resolved_ts": None, "resolved_call_id": None,
            "calls": [{"call_id": c, "ts": t(x), "reason": r} for c, x, r in calls], **more}


def caller(number, arrive_at, digits="1", **kw) -> CallerScript:
    """A caller who presses ``digits`` 0.5 s into the 1 s welcome prompt."""
    return CallerScript(number, arrive_at, digits=digits, digit_delay_s=0.5, **kw)


def day(core, card):
    """The morning's callers until 30 s; returns their call ids by number, in order of arrival."""
    for script in [
        caller(A, 1.0),  # answered at 3.5 by seat 1, who talks until 33.5
        caller(B, 3.0, patience_s=5.0),  # abandons in the queue at 8.5
        caller(C, 5.0, digits="", patience_s=1.0),  # hangs up in the IVR at 6.5
        caller(D, 6.0),  # waits the queue's 10 s: overflow at 16.5, goodbye until 17.5
        caller(E, 8.0, digits="2", patience_s=6.0),  # a message from 9.9 (greeting 1 s, beep 0.4 s) to 14.5
        caller(None, 10.0, digits="4", patience_s=4.0),  # withheld: a message to complaints, 11.9 to 14.5
        caller(B, 12.0, patience_s=3.0),  # abandons again at 15.5
        caller(BLOCKED, 13.0, patience_s=3.0),  # blacklisted: hears why (1 s), cleared
        caller(H, 14.0, digits="3"),  # the duty mobile is busy: goodbye, failed
    ]:
        card.add_caller(script)
    core.runtime.run_until(30.0)
    core.settle()
    ids = {}
    for rec in sorted(core.journal.calls(), key=lambda r: r["start_ts"]):
        ids.setdefault(rec["caller"], []).append(rec["call_id"])
    return ids


def test_abandoned_overflow_failed_and_voicemail_calls_are_listed_one_entry_per_number(api):
    core, card, client = api
    ids = day(core, card)
    by_call = {r["call_id"]: r["disposition"] for r in core.journal.calls()}
    assert sorted(by_call.values()) == ["abandoned", "abandoned", "blocked", "failed", "ivr", "overflow",
                                        "voicemail", "voicemail"]
    assert sum(1 for r in core.journal.calls() if r["disposition"] == "answered" or r["end_ts"] is None) == 0
    b1, b2 = ids[B]
    entries = client.call("missed.list")["entries"]
    assert entries == [
        entry(4, H, "广东省汕头市", [(ids[H][0], 14.0, "failed")]),
        entry(1, B, "江苏省常州市", [(b1, 3.0, "abandoned"), (b2, 12.0, "abandoned")]),
        entry(2, E, "广东省汕头市", [(ids[E][0], 8.0, "voicemail")], voicemails=1),
        entry(3, D, "辽宁省抚顺市", [(ids[D][0], 6.0, "overflow")]),
    ]  # numbered in the order the calls ended, listed by the latest missed call
    # the answered caller, the IVR hang-up, the blocked and the withheld caller are not in the list
    assert {e["number"] for e in entries}.isdisjoint({A, C, BLOCKED})
    assert client.call("missed.list", limit=2)["entries"] == entries[:2]
    assert client.call("missed.list", since=int(EPOCH0) + 10)["entries"] == entries[:2]
    assert client.call("missed.list", state="done")["entries"] == []
    assert client.call("missed.list", state="open")["entries"] == entries

    # the caller in the queue gets through at last: the entry is done (the customer got through)
    card.add_caller(caller(B, 31.0))  # seat 1 is free at 34 (put the phone down), answers at 36, talks 30 s
    core.runtime.run_until(80.0)
    core.settle()
    b3 = next(r["call_id"] for r in core.journal.calls() if r["caller"] == B and r["disposition"] == "answered")
    ended = core.journal.get_call(b3)["end_ts"]
    assert ended == pytest.approx(EPOCH0 + 66.0)
    done = client.call("missed.list", state="done")["entries"]
    assert done == [entry(1, B, "江苏省常州市", [(b1, 3.0, "abandoned"), (b2, 12.0, "abandoned")], state="done",
                          resolution="called_in", resolved_ts=round(ended, 3), resolved_call_id=b3)]
    assert [e["id"] for e in client.call("missed.list", state="open")["entries"]] == [4, 2, 3]

    # a new missed call from the same number opens a new entry
    card.add_caller(caller(B, 81.0, patience_s=1.0))
    core.runtime.run_until(85.0)
    core.settle()
    b4 = [c for c in core.journal.calls() if c["caller"] == B][0]["call_id"]
    assert client.call("missed.list", limit=1)["entries"] == [
        entry(5, B, "江苏省常州市", [(b4, 81.0, "abandoned")])]


def test_voicemail_list_with_caller_area_length_box_and_heard_state(api):
    core, card, client = api
    ids = day(core, card)
    withheld = next(r for r in core.journal.calls() if r["caller"] is None)["call_id"]
    e_message = {"call_id": ids[E][0], "caller": E, "number": E, "area": "广东省汕头市", "ts": t(8.0),
                 "seconds": 4.6, "box": "general", "recording": None, "heard": False, "heard_ts": None,
                 "missed_id": 2, "callback_state": "new", "callback_attempts": 0, "callback_result": None,
                 "callback_call_id": None}
    w_message = {"call_id": withheld, "caller": None, "number": None, "area": None, "ts": t(10.0),
                 "seconds": 2.6, "box": "complaints", "recording": None, "heard": False, "heard_ts": None,
                 "missed_id": None, "callback_state": None, "callback_attempts": None, "callback_result": None,
                 "callback_call_id": None}
    assert client.call("voicemail.list") == {"messages": [w_message, e_message]}
    assert client.call("voicemail.list", box="general") == {"messages": [e_message]}
    assert client.call("voicemail.list", box="sales") == {"messages": []}

    core.runtime.run_until(40.0)
    heard = {**w_message, "heard": True, "heard_ts": t(40.0)}
    assert client.call("voicemail.heard", call_id=withheld) == {"voicemail": heard}
    core.runtime.run_until(50.0)
    # the first time it was heard counts
    assert client.call("voicemail.heard", call_id=withheld) == {"voicemail": heard}
    assert client.call("voicemail.list", unheard=True) == {"messages": [e_message]}
    assert client.call("voicemail.list") == {"messages": [heard, e_message]}
    assert refused(client, "voicemail.heard", call_id=ids[B][0]) == (
        "not_found", f"call_id: {ids[B][0]!r} left no voicemail message")
    # the withheld caller cannot be called back: refused before any seat is rung
    assert refused(client, "voicemail.callback", call_id=withheld, seat=1) == (
        "conflict", f"voicemail {withheld}: the caller's number was withheld; nobody to call")

    # closing the caller's entry by hand shows in the voicemail list as its callback state
    closed = client.call("missed.close", missed_id=2)["entry"]
    assert (closed["state"], closed["resolution"], closed["resolved_ts"]) == ("closed", "closed", t(50.0))
    assert client.call("voicemail.list", box="general")["messages"][0]["callback_state"] == "closed"
    assert refused(client, "voicemail.callback", call_id=ids[E][0], seat=1) == (
        "conflict", "missed call 2 is closed; nothing to call back")


def test_closing_by_hand_and_the_commands_refuse_what_they_cannot_do(api):
    core, card, client = api
    ids = day(core, card)
    core.runtime.run_until(31.0)
    closed = client.call("missed.close", missed_id=3)["entry"]
    assert closed == entry(3, D, "辽宁省抚顺市", [(ids[D][0], 6.0, "overflow")], state="closed",
                           resolution="closed", resolved_ts=t(31.0))
    assert client.call("missed.list", state="closed")["entries"] == [closed]
    assert refused(client, "missed.close", missed_id=3) == ("conflict", "missed call 3 is already closed")
    unknown = ("not_found", "missed_id: 99 is not in the missed-call list")
    assert refused(client, "missed.close", missed_id=99) == unknown
    assert refused(client, "missed.callback", missed_id=3, seat=1) == (
        "conflict", "missed call 3 is closed; nothing to call back")
    assert refused(client, "missed.callback", missed_id=99, seat=1) == unknown
    assert refused(client, "missed.list", state="lost") == (
        "bad_argument", 'state: "lost" is not one of them; allowed new, calling_back, done, failed, closed, open')
    assert refused(client, "missed.list", limit=0) == ("bad_argument", "limit: 0 is out of range; allowed 1..1000")
    assert refused(client, "missed.callback", missed_id=1, seat=25) == (
        "bad_argument", "seat: 25 is out of range; allowed 1..24")
    assert refused(client, "missed.callback", missed_id=1, seat=3) == ("not_found", "seat: 3 is not a configured seat")
    assert refused(client, "voicemail.heard", call_id=7) == (
        "bad_argument", "call_id: 7 is not a string; allowed a string of at most 64 characters")
    # a closed entry's number calling and missing again opens a new entry
    card.add_caller(caller(D, 32.0, patience_s=1.0))
    core.runtime.run_until(35.0)
    core.settle()
    d2 = [c for c in core.journal.calls() if c["caller"] == D][0]["call_id"]
    assert client.call("missed.list", limit=1)["entries"] == [entry(5, D, "辽宁省抚顺市", [(d2, 32.0, "abandoned")])]


def test_an_analog_line_that_rang_out_is_a_missed_call_of_its_caller(make_core):
    """With audio: the FSK caller ID heard between the rings names the line's caller; the line stops ringing
    after one burst (missed at 10: 8 s after the burst's end), a withheld caller's line too; the same caller
    then gets through the E1 to the queue and abandons: one entry, two calls."""
    core, card = make_core(media=True, n_fxo=2)
    line = 8 + 1  # 8 E1 channels, one seat, then the lines
    card.add_line_call(LineScript(B, arrive_at=1.0, max_rings=1), line)
    card.add_line_call(LineScript(None, arrive_at=2.0, withheld="private", max_rings=1), line + 1)
    card.add_caller(caller(B, 12.0, patience_s=2.0))  # abandons at 14.5
    core.runtime.run_until(20.0)
    core.settle()
    assert [e["data"]["caller"] for e in core.journal.events_of("line.missed")] == [B, None]
    [rec] = core.journal.calls()
    assert rec["disposition"] == "abandoned"
    entries = core.journal.run(lambda con: core.missed.entries(con)).result(5)
    assert entries == [entry(1, B, "江苏省常州市", [(None, 1.0, "line_missed"), (rec["call_id"], 12.0, "abandoned")])]


def test_the_lists_survive_a_restart_and_are_rebuilt_from_the_journal(make_core):
    core, card = make_core()
    ids = day(core, card)
    core.journal.run(lambda con: core.missed.close(con, 2, EPOCH0 + 30.0)).result(5)
    core.journal.run(lambda con: core.missed.heard(con, ids[E][0], EPOCH0 + 30.0)).result(5)
    # a callback placed when the core stopped (its end never journalled)
    core.journal.run(lambda con: core.missed.callback_started(con, 4, "x-1", 1, EPOCH0 + 30.0)).result(5)
    before = core.journal.run(lambda con: (core.missed.entries(con), core.missed.messages(con))).result(5)
    assert [e["state"] for e in before[0]] == ["calling_back", "new", "closed", "new"]
    core.close()

    again, _ = make_core(epoch=EPOCH0 + 100.0)
    entries, messages = again.journal.run(lambda con: (again.missed.entries(con), again.missed.messages(con))).result(5)
    assert entries[0] == {**before[0][0], "state": "failed", "result": "interrupted"}
    assert entries[1:] == before[0][1:] and messages == before[1]
    again.close()

    # without its tables (a journal from before the lists), the lists are built from the journal's history
    import sqlite3
    con = sqlite3.connect(again.data.journal)
    con.executescript("DROP TABLE missed; DROP TABLE missed_calls; DROP TABLE voicemails; DROP TABLE missed_cursor;")
    con.close()
    rebuilt, _ = make_core(epoch=EPOCH0 + 200.0)
    entries, messages = rebuilt.journal.run(
        lambda con: (rebuilt.missed.entries(con), rebuilt.missed.messages(con))).result(5)
    fresh = [{**e, "state": "new", "attempts": 0, "result": None, "callback_call_id": None, "callback_seat": None,
              "callback_ts": None, "resolution": None, "resolved_ts": None} for e in before[0]]
    assert entries == fresh
    assert messages == [{**m, "heard": False, "heard_ts": None, "callback_state": m["callback_state"] and "new",
                         "callback_attempts": m["callback_attempts"] and 0, "callback_call_id": None}
                        for m in before[1]]
