"""The lists' store on a journal written by hand (``appliance.missed``), and the journal's jobs it runs on
(``Journal.run``): the rules for what is missed, one entry per number, and the callback states' edge cases."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from appliance.journal import Journal
from appliance.missed import MissedCalls, MissedError

T0 = 1_764_300_000.0
N1, N2 = "13912345678", "02788886666"


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


@pytest.fixture
def store(journal):
    s = MissedCalls(home_area="27")
    journal.run(s.setup).result(5)
    return s


def run(journal, fn):
    return journal.run(fn).result(5)


def inbound(journal, call_id, number, start, disposition, *, area="湖北省武汉市", end=None, message=None,
            data=None):
    """An inbound call as call control journals it: the record, then (a message left) voicemail.recorded, then
    call.ended."""
    end = start + 10.0 if end is None else end
    journal.put_call({"call_id": call_id, "direction": "in", "caller": number, "called": "4008001234",
                      "start_ts": T0 + start, "end_ts": T0 + end, "disposition": disposition,
                      "ended_by": "caller", "caller_national": number, "caller_area": area if number else None,
                      "caller_kind": "mobile" if number else None,
                      "recording": f"voicemail/2025/11/28/{call_id}.wav" if message else None})
    if message is not None:
        journal.add_event(call_id, T0 + end, "voicemail.recorded", {"box": "general", "seconds": message,
                                                                     "caller": number})
    journal.add_event(call_id, T0 + end, "call.ended", {"call_id": call_id, "disposition": disposition,
                                                         **(data or {})})


def outbound(journal, call_id, number, at, result, origin=None):
    journal.put_call({"call_id": call_id, "direction": "out", "caller": "8001", "called": number,
                      "start_ts": T0 + at - 20, "end_ts": T0 + at,
                      "disposition": "answered" if result == "answered" else "failed", "caller_national": number})
    journal.add_event(call_id, T0 + at, "call.ended", {"call_id": call_id, "result": result, "direction": "out",
                                                        **({"origin": origin} if origin else {})})


def summary(journal, store, **kw):
    return [(e["id"], e["number"], e["count"], e["state"], e["attempts"], e["result"], e["resolution"],
             [(c["call_id"], c["reason"]) for c in e["calls"]]) for e in run(journal, lambda c: store.entries(c, **kw))]


# --- Journal.run --------------------------------------------------------------------------------------------

def test_a_job_runs_after_the_writes_queued_before_it_and_its_value_comes_once_committed(journal):
    journal.add_event("c-1", T0, "call.offered", {})
    seen = journal.run(lambda con: con.execute("SELECT COUNT(*) FROM call_events").fetchone()[0])
    journal.add_event("c-1", T0 + 1, "call.ended", {})
    assert seen.result(5) == 1
    other = sqlite3.connect(journal.path)  # another connection sees what the job wrote once the future is done
    journal.run(lambda con: con.execute("CREATE TABLE jobs (n INTEGER)")).result(5)
    journal.run(lambda con: con.execute("INSERT INTO jobs VALUES (7)")).result(5)
    assert other.execute("SELECT n FROM jobs").fetchall() == [(7,)]
    other.close()


def test_a_failing_job_undoes_only_its_own_changes_and_hands_over_its_error(journal):
    journal.run(lambda con: con.execute("CREATE TABLE jobs (n INTEGER)")).result(5)

    def half(con):
        con.execute("INSERT INTO jobs VALUES (1)")
        raise MissedError("conflict", "no")

    journal.add_event("c-1", T0, "call.offered", {})
    failing = journal.run(half)
    journal.add_event("c-1", T0 + 1, "call.ended", {})
    with pytest.raises(MissedError, match="no"):
        failing.result(5)
    journal.flush()
    assert run(journal, lambda con: con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]) == 0
    assert [e["type"] for e in journal.events("c-1")] == ["call.offered", "call.ended"]


def test_jobs_from_many_threads_each_get_their_own_value(journal):
    journal.run(lambda con: con.execute("CREATE TABLE jobs (n INTEGER)")).result(5)
    got = {}

    def worker(k):
        got[k] = journal.run(lambda con: con.execute("INSERT INTO jobs VALUES (?)", (k,)).lastrowid).result(5)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(got.values()) == list(range(1, 21))
    assert run(journal, lambda con: con.execute("SELECT SUM(n) FROM jobs").fetchone()[0]) == sum(range(20))


# --- what is missed ---------------------------------------------------------------------------------------

def test_which_calls_are_missed_and_one_entry_per_number(journal, store):
    inbound(journal, "c-1", N1, 1.0, "abandoned")
    inbound(journal, "c-2", N2, 2.0, "ivr")  # hung up in the IVR: not missed
    inbound(journal, "c-3", N2, 3.0, "blocked")  # screened out: not missed
    inbound(journal, "c-4", None, 4.0, "abandoned")  # withheld: nobody to call back
    inbound(journal, "c-5", N1, 5.0, "overflow")
    inbound(journal, "c-6", N1, 6.0, "voicemail")  # sent to voicemail, left during the greeting: no message
    inbound(journal, "c-7", N1, 7.0, "failed")
    inbound(journal, "c-8", N2, 8.0, "transferred")  # talked to the duty mobile: not missed
    journal.add_event("", T0 + 30.0, "line.missed", {"port": 9, "line": 1, "caller": N2, "caller_national": N2,
                                                     "caller_area": "湖北省武汉市", "rings": 2, "ringing_s": 6.0})
    journal.add_event("", T0 + 31.0, "line.missed", {"port": 9, "line": 1, "caller": None, "caller_national": None,
                                                     "caller_area": None, "rings": 1, "ringing_s": 1.0,
                                                     "withheld": "private"})
    assert summary(journal, store) == [
        (2, N2, 1, "new", 0, None, None, [(None, "line_missed")]),  # rang from 16 (30 - 8 s - 6 s ringing)
        (1, N1, 4, "new", 0, None, None, [("c-1", "abandoned"), ("c-5", "overflow"), ("c-6", "voicemail"),
                                          ("c-7", "failed")]),
    ]
    [line] = run(journal, lambda c: store.entries(c, limit=1))
    assert (line["first_ts"], line["last_ts"], line["reason"], line["area"]) == (T0 + 16.0, T0 + 16.0,
                                                                                  "line_missed", "湖北省武汉市")
    assert run(journal, lambda c: store.messages(c)) == []  # no message left
    # the answered call from N1 settles its entry; N2's transferred call came before its line call
    inbound(journal, "c-9", N1, 40.0, "answered", end=70.0)
    assert summary(journal, store, state="done") == [
        (1, N1, 4, "done", 0, None, "called_in", [("c-1", "abandoned"), ("c-5", "overflow"), ("c-6", "voicemail"),
                                                  ("c-7", "failed")])]
    [done] = run(journal, lambda c: store.entries(c, state="done"))
    assert (done["resolved_ts"], done["resolved_call_id"]) == (T0 + 70.0, "c-9")
    inbound(journal, "c-10", N1, 80.0, "abandoned")
    assert summary(journal, store, state="new")[0][:3] == (3, N1, 1)


def test_every_event_counts_once_whoever_catches_up(journal, store):
    inbound(journal, "c-1", N1, 1.0, "abandoned")
    journal.flush()
    for _ in range(3):  # catching up again and again finds nothing new
        run(journal, store.sync)
    inbound(journal, "c-2", N1, 2.0, "voicemail", message=3.25)
    run(journal, store.sync)
    again = MissedCalls(home_area="27")  # a restarted core: setup catches up from the stored cursor
    run(journal, again.setup)
    assert summary(journal, again) == [(1, N1, 2, "new", 0, None, None, [("c-1", "abandoned"),
                                                                         ("c-2", "voicemail")])]
    assert [(m["call_id"], m["seconds"], m["missed_id"]) for m in run(journal, again.messages)] == [("c-2", 3.25, 1)]


def test_a_voicemail_is_a_message_and_a_missed_call(journal, store):
    inbound(journal, "c-1", N1, 1.0, "voicemail", end=12.0, message=8.5)
    inbound(journal, "c-2", None, 2.0, "voicemail", message=4.0)
    [e] = run(journal, lambda c: store.entries(c))
    assert (e["count"], e["voicemails"], e["reason"]) == (1, 1, "voicemail")
    assert run(journal, lambda c: store.messages(c, unheard=True)) == [
        {"call_id": "c-2", "caller": None, "number": None, "area": None, "ts": T0 + 2.0, "seconds": 4.0,
         "box": "general", "recording": "voicemail/2025/11/28/c-2.wav", "heard": False, "heard_ts": None,
         "missed_id": None, "callback_state": None, "callback_attempts": None, "callback_result": None,
         "callback_call_id": None},
        {"call_id": "c-1", "caller": N1, "number": N1, "area": "湖北省武汉市", "ts": T0 + 1.0, "seconds": 8.5,
         "box": "general", "recording": "voicemail/2025/11/28/c-1.wav", "heard": False, "heard_ts": None,
         "missed_id": 1, "callback_state": "new", "callback_attempts": 0, "callback_result": None,
         "callback_call_id": None}]
    with pytest.raises(MissedError, match="call_id: 'c-9' left no voicemail message"):
        run(journal, lambda c: store.heard(c, "c-9", T0))


# --- callbacks -------------------------------------------------------------------------------------------

def test_callback_results_move_the_entry_and_late_or_stale_ones_do_not(journal, store):
    inbound(journal, "c-1", N1, 1.0, "abandoned")
    inbound(journal, "c-2", N2, 2.0, "abandoned")
    assert run(journal, lambda c: store.callback_target(c, 1)) == (1, N1)
    run(journal, lambda c: store.callback_started(c, 1, "o-1", 2, T0 + 20.0))
    with pytest.raises(MissedError, match=r"missed call 1 is being called back \(call o-1\)"):
        run(journal, lambda c: store.callback_target(c, 1))
    outbound(journal, "o-1", N1, 40.0, "no_answer", origin={"missed": 1})
    assert summary(journal, store, state="failed") == [(1, N1, 1, "failed", 1, "no_answer", None,
                                                        [("c-1", "abandoned")])]
    run(journal, lambda c: store.callback_started(c, 1, "o-2", 2, T0 + 50.0))
    outbound(journal, "o-1", N1, 55.0, "busy", origin={"missed": 1})  # an older attempt: ignored
    assert summary(journal, store, state="calling_back")[0][4:6] == (2, None)
    inbound(journal, "c-3", N1, 52.0, "answered", end=58.0)  # the customer got through meanwhile
    outbound(journal, "o-2", N1, 60.0, "busy", origin={"missed": 1})
    [e] = run(journal, lambda c: store.entries(c, state="done"))
    assert (e["attempts"], e["result"], e["resolution"], e["resolved_call_id"]) == (2, "busy", "called_in", "c-3")

    # closed by hand while calling back: the result is kept, the entry stays closed
    run(journal, lambda c: store.callback_started(c, 2, "o-3", 1, T0 + 61.0))
    run(journal, lambda c: store.close(c, 2, T0 + 62.0))
    outbound(journal, "o-3", N2, 70.0, "answered", origin={"missed": 2})
    [e] = run(journal, lambda c: store.entries(c, state="closed"))
    assert (e["result"], e["resolution"], e["resolved_ts"]) == ("answered", "closed", T0 + 62.0)


def test_a_restart_fails_the_callbacks_it_cut_off_after_catching_up(journal, store):
    inbound(journal, "c-1", N1, 1.0, "abandoned")
    inbound(journal, "c-2", N2, 2.0, "abandoned")
    run(journal, lambda c: store.callback_started(c, 1, "o-1", 1, T0 + 20.0))
    run(journal, lambda c: store.callback_started(c, 2, "o-2", 2, T0 + 20.0))
    outbound(journal, "o-1", N1, 40.0, "answered", origin={"missed": 1})  # journalled, not yet caught up
    run(journal, MissedCalls(home_area="27").setup)
    assert [(e["id"], e["state"], e["result"]) for e in run(journal, store.entries)] == [
        (2, "failed", "interrupted"), (1, "done", "answered")]
