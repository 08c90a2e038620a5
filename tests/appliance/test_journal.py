"""The call journal on a real SQLite file: WAL, exact round trips, batching, flush, concurrent reads, errors."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import numpy as np
import pytest

from appliance.journal import CALL_COLUMNS, Journal, JournalError


def call(i: int, **kw) -> dict:
    rec = {
        "call_id": f"c{i:04d}", "direction": "in", "caller": f"1380000{i:04d}", "called": "4008",
        "trunk_port": i % 30 + 1, "queue": "sales", "seat": i % 6 + 1, "agent": f"agent{i % 6}",
        "start_ts": 1_700_000_000.0 + 10 * i, "answer_ts": 1_700_000_000.5 + 10 * i,
        "queued_ts": 1_700_000_003.25 + 10 * i, "agent_answer_ts": 1_700_000_008.125 + 10 * i,
        "end_ts": 1_700_000_068.0 + 10 * i, "wait_s": 4.875, "talk_s": 59.875,
        "disposition": "answered", "ended_by": "caller", "recording": f"rec/2023/11/c{i:04d}.wav",
    }
    rec.update(kw)
    return rec


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "journal.db")
    yield j
    j.close()


def test_wal_mode_and_schema(tmp_path, journal):
    con = sqlite3.connect(tmp_path / "journal.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    cols = [r[1] for r in con.execute("PRAGMA table_info(calls)")]
    assert cols == list(CALL_COLUMNS)
    indexes = {r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}
    assert indexes == {"CREATE INDEX calls_start_ts ON calls (start_ts)",
                       "CREATE INDEX call_events_call_id ON call_events (call_id)",
                       "CREATE INDEX call_events_ts ON call_events (ts)",
                       "CREATE INDEX call_callers_national ON call_callers (caller_national)"}
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"calls", "call_events", "call_callers", "seat_states", "call_outbound", "campaigns"}
    con.close()


def test_rows_round_trip_exactly(tmp_path, journal):
    full = call(1)
    sparse = {"call_id": "c9999", "direction": "out", "caller": "8001", "called": "02150001234",
              "start_ts": 1_700_000_123.456789, "disposition": "failed", "ended_by": "system"}
    journal.put_call(full)
    journal.put_call(sparse)
    journal.add_event("c0001", 1_700_000_003.25, "queue.enter", {"queue": "sales", "pos": 2, "名": "张三"})
    journal.add_event("c0001", 1_700_000_000.0, "trunk.seize", {})
    journal.flush()
    assert journal.get_call("c0001") == full
    assert journal.get_call("c9999") == {c: sparse.get(c) for c in CALL_COLUMNS}
    assert journal.get_call("nope") is None
    ev = journal.events("c0001")
    assert [(e["ts"], e["type"], e["data"]) for e in ev] == [
        (1_700_000_000.0, "trunk.seize", {}),
        (1_700_000_003.25, "queue.enter", {"queue": "sales", "pos": 2, "名": "张三"})]
    # replace a whole row: the later record wins, including NULLs
    journal.put_call({"call_id": "c0001", "direction": "in", "start_ts": 5.0})
    journal.close()
    j2 = Journal(tmp_path / "journal.db")  # survives reopening
    assert j2.get_call("c0001") == {c: {"call_id": "c0001", "direction": "in", "start_ts": 5.0}.get(c)
                                    for c in CALL_COLUMNS}
    assert j2.get_call("c9999")["start_ts"] == 1_700_000_123.456789
    j2.close()


def test_bad_records_rejected_at_once(journal):
    with pytest.raises(ValueError, match=r"unknown call record keys \['colour', 'zone'\]"):
        journal.put_call({"call_id": "x", "zone": 1, "colour": "red"})
    with pytest.raises(ValueError, match=r"direction='inbound' must be one of \('in', 'out'\)"):
        journal.put_call({"call_id": "x", "direction": "inbound"})
    with pytest.raises(ValueError, match=r"seat='3' must be int or None"):
        journal.put_call({"call_id": "x", "seat": "3"})
    with pytest.raises(ValueError, match=r"wait_s=nan must be a finite number"):
        journal.put_call({"call_id": "x", "wait_s": float("nan")})
    with pytest.raises(ValueError, match=r"seat=True must be int or None"):
        journal.put_call({"call_id": "x", "seat": True})
    with pytest.raises(ValueError, match="call_id must be a non-empty string"):
        journal.put_call({"direction": "in"})
    with pytest.raises(ValueError, match="is not JSON"):
        journal.add_event("x", 1.0, "t", {"obj": object()})
    journal.flush()
    assert journal.calls() == []


def test_numpy_values_stored_as_plain_numbers(journal):
    journal.put_call({"call_id": "n", "seat": np.int64(3), "start_ts": np.float64(1.5), "talk_s": np.float32(0.25)})
    journal.add_event("n", np.float64(2.0), "levels", {"dbm0": np.array([-20.5, -30.0]), "port": np.int16(4)})
    journal.flush()
    row = journal.get_call("n")
    assert (row["seat"], row["start_ts"], row["talk_s"]) == (3, 1.5, 0.25)
    assert type(row["seat"]) is int and type(row["start_ts"]) is float
    assert journal.events("n")[0]["data"] == {"dbm0": [-20.5, -30.0], "port": 4}


def test_batch_commit_and_flush(tmp_path):
    j = Journal(tmp_path / "j.db", batch_interval_s=1.0)
    try:
        t0 = time.monotonic()
        for i in range(200):
            j.put_call(call(i))
            j.add_event(f"c{i:04d}", float(i), "x", {"i": i})
        # nothing committed yet: the writer is still gathering its batch
        assert j.get_call("c0000") is None and j.commits == 0
        j.flush()
        assert time.monotonic() - t0 < 0.9  # flush cut the batch wait short
        assert j.commits == 1  # 400 writes, one transaction
        assert len(j.calls()) == 200 and len(j.events("c0199")) == 1
        j.flush()  # nothing queued: no empty transaction
        assert j.commits == 1
    finally:
        j.close()


def test_batch_commits_without_flush(tmp_path):
    j = Journal(tmp_path / "j.db", batch_interval_s=0.05)
    try:
        j.put_call(call(1))
        deadline = time.monotonic() + 5.0
        while j.get_call("c0001") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert j.get_call("c0001") == call(1)
        assert j.commits == 1
    finally:
        j.close()


def test_reader_in_other_thread_beside_open_write_transaction(tmp_path, journal):
    journal.put_call(call(1))
    journal.flush()
    other = sqlite3.connect(tmp_path / "journal.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock, uncommitted
    other.execute("INSERT INTO calls (call_id, start_ts) VALUES ('ghost', 1.0)")
    seen = {}

    def read():
        seen["one"] = journal.get_call("c0001")
        seen["ghost"] = journal.get_call("ghost")
        seen["all"] = [c["call_id"] for c in journal.calls()]

    t0 = time.monotonic()
    th = threading.Thread(target=read)
    th.start()
    th.join(5)
    assert time.monotonic() - t0 < 1.0  # WAL: the read did not wait for the writer's lock
    assert seen == {"one": call(1), "ghost": None, "all": ["c0001"]}
    other.execute("COMMIT")
    other.close()
    assert journal.get_call("ghost")["start_ts"] == 1.0


def test_counts_and_calls_windowing_exact(journal):
    base = 1_700_000_000.0
    # inbound: 0..9 start at base + 10 i; even answered, odd abandoned, 5 is IVR-only
    for i in range(10):
        disp = "ivr" if i == 5 else ("answered" if i % 2 == 0 else "abandoned")
        journal.put_call(call(i, disposition=disp, start_ts=base + 10 * i))
    journal.put_call(call(100, direction="out", start_ts=base + 15))  # outbound: never offered
    journal.flush()
    assert journal.counts(base, base + 100) == {"offered": 10, "answered": 5, "abandoned": 4}
    # half-open [since, until): calls 3, 4, 5 are in; 6 at exactly base + 60 is out
    assert journal.counts(base + 30, base + 60) == {"offered": 3, "answered": 1, "abandoned": 1}
    assert journal.counts(base + 30.000001, base + 60) == {"offered": 2, "answered": 1, "abandoned": 0}
    assert journal.counts(base + 30, base + 60.000001) == {"offered": 4, "answered": 2, "abandoned": 1}
    assert journal.counts(0, base) == {"offered": 0, "answered": 0, "abandoned": 0}
    assert [c["call_id"] for c in journal.calls(base + 10, base + 40)] == ["c0003", "c0002", "c0100", "c0001"]
    assert [c["call_id"] for c in journal.calls(limit=2)] == ["c0009", "c0008"]
    assert [c["call_id"] for c in journal.calls(until_ts=base + 10)] == ["c0000"]


def test_writer_error_surfaces_once(tmp_path, journal, caplog):
    journal.put_call(call(1))
    journal.flush()
    con = sqlite3.connect(tmp_path / "journal.db")
    con.execute("DROP TABLE call_events")
    con.commit()
    con.close()
    caplog.set_level(logging.ERROR, logger="appliance.journal")
    journal.add_event("c0002", 2.0, "lost", {})
    journal.put_call(call(2))  # same batch, must still be committed
    with pytest.raises(JournalError, match=r"a queued write failed: no such table: call_events"):
        journal.flush()
    assert "dropped event 'c0002'" in caplog.text
    assert journal.get_call("c0002") == call(2)
    journal.flush()  # reported once, not again


def test_writer_error_surfaces_from_close(tmp_path):
    j = Journal(tmp_path / "j.db")
    con = sqlite3.connect(tmp_path / "j.db")
    con.execute("DROP TABLE calls")
    con.commit()
    con.close()
    j.put_call(call(1))
    with pytest.raises(JournalError, match="no such table: calls"):
        j.close()
    with pytest.raises(JournalError, match="is closed"):
        j.put_call(call(3))


def test_not_sqlite_file(tmp_path):
    p = tmp_path / "notes.db"
    p.write_bytes(b"this is a text file, not a database\n" * 100)
    with pytest.raises(JournalError) as e:
        Journal(p)
    assert str(e.value) == f"journal {str(p)!r} cannot be opened as an SQLite database: file is not a database"
    assert p.read_bytes() == b"this is a text file, not a database\n" * 100  # left untouched


def test_newer_schema_refused(tmp_path):
    p = tmp_path / "j.db"
    con = sqlite3.connect(p)
    con.execute("PRAGMA user_version=7")
    con.close()
    with pytest.raises(JournalError, match="has schema version 7; this firmware knows up to 1"):
        Journal(p)


def test_put_is_cheap(tmp_path, journal):
    # the tick's budget is 20 ms; queueing 6 calls' worth of events must take a tiny part of it
    t0 = time.perf_counter()
    for i in range(600):
        journal.add_event(f"c{i % 6}", float(i), "dtmf", {"digit": "5"})
    per_put = (time.perf_counter() - t0) / 600
    assert per_put < 200e-6
    journal.flush()
    assert len(journal.events("c0")) == 100
