"""The call journal: call records and call events in SQLite (WAL), written by one background thread.

The 20 ms tick only puts records on a queue (``put_call``, ``add_event``); a writer
thread commits everything queued in one transaction at most every
``batch_interval_s`` (or at once on ``flush()``/``close()``). Reads use their own
connection, so in WAL mode they run beside the writer and see committed rows. Tables
derived from the calls and events (``appliance.missed``) are kept by jobs (``run``) on
the same writer thread, in order with the writes. Timestamps are wall-clock epoch
seconds supplied by the caller; nothing here reads a clock.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import logging
import numbers
import os
import queue
import sqlite3
import threading
from typing import Any, Callable

from .errors import ApplianceError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# column -> the Python type stored; numpy scalars are accepted and converted
CALL_COLUMNS: dict[str, type] = {
    "call_id": str, "direction": str, "caller": str, "called": str, "trunk_port": int,
    "queue": str, "seat": int, "agent": str, "start_ts": float, "answer_ts": float,
    "queued_ts": float, "agent_answer_ts": float, "end_ts": float, "wait_s": float,
    "talk_s": float, "disposition": str, "ended_by": str, "recording": str,
}
# Caller identification (appliance.caller), added after schema version 1 shipped. A record may carry these
# keys too; they live in their own table (created on open, so an older journal keeps working and an older
# firmware still writes here), and a call read back has them only when its record had them.
CALLER_COLUMNS: dict[str, type] = {"caller_national": str, "caller_area": str, "caller_kind": str}
# Outbound attempts (appliance.outbound), added the same way: the number dialled, the classified result and the
# Q.850 cause the trunk gave (None when it gave none), and the campaign of a group call. A call dialled out
# (direction "out") has them; so has an inbound call with a leg dialled out (a transfer to a number, a callback).
OUTBOUND_COLUMNS: dict[str, type] = {"number": str, "result": str, "cause": int, "campaign": str}
RECORD_FIELDS: dict[str, type] = {**CALL_COLUMNS, **CALLER_COLUMNS, **OUTBOUND_COLUMNS}
_ACCEPT = {str: (str,), int: (numbers.Integral,), float: (numbers.Real,)}
CHOICES = {
    "direction": ("in", "out"),
    # blocked: screened out, never queued; transferred: to a number outside; overflow: a full or timed-out
    # queue sent the caller away (goodbye or hang-up); voicemail: left a message
    "disposition": ("answered", "abandoned", "ivr", "failed", "blocked", "transferred", "overflow", "voicemail"),
    "ended_by": ("caller", "agent", "system"),
    "caller_kind": ("mobile", "landline", "service", "international", "unknown"),  # appliance.caller.KINDS
    # appliance.outbound.RESULTS; an outbound call's disposition is answered (result answered) or failed
    "result": ("answered", "busy", "no_answer", "vacant", "congestion", "rejected", "fax", "invalid", "failed"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY, direction TEXT, caller TEXT, called TEXT, trunk_port INTEGER,
    queue TEXT, seat INTEGER, agent TEXT, start_ts REAL, answer_ts REAL, queued_ts REAL,
    agent_answer_ts REAL, end_ts REAL, wait_s REAL, talk_s REAL, disposition TEXT,
    ended_by TEXT, recording TEXT
);
CREATE INDEX IF NOT EXISTS calls_start_ts ON calls (start_ts);
CREATE TABLE IF NOT EXISTS call_events (
    id INTEGER PRIMARY KEY, call_id TEXT, ts REAL, type TEXT, data TEXT
);
CREATE INDEX IF NOT EXISTS call_events_call_id ON call_events (call_id);
CREATE INDEX IF NOT EXISTS call_events_ts ON call_events (ts);
CREATE TABLE IF NOT EXISTS call_callers (
    call_id TEXT PRIMARY KEY, caller_national TEXT, caller_area TEXT, caller_kind TEXT
);
CREATE INDEX IF NOT EXISTS call_callers_national ON call_callers (caller_national);
CREATE TABLE IF NOT EXISTS seat_states (
    seat INTEGER PRIMARY KEY, ts REAL, data TEXT
);
CREATE TABLE IF NOT EXISTS call_outbound (
    call_id TEXT PRIMARY KEY, number TEXT, result TEXT, cause INTEGER, campaign TEXT
);
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY, ts REAL, data TEXT
);
"""
# every agent.state event also replaces its seat's row in seat_states: the seats' last states, read at start
# (appliance.seats restores them) without scanning the events

_COLS = tuple(CALL_COLUMNS)
_INSERT_CALL = (f"INSERT OR REPLACE INTO calls ({', '.join(_COLS)}) "
                f"VALUES ({', '.join('?' * len(_COLS))})")
_INSERT_EVENT = "INSERT INTO call_events (call_id, ts, type, data) VALUES (?, ?, ?, ?)"
_INSERT_CALLER = (f"INSERT OR REPLACE INTO call_callers (call_id, {', '.join(CALLER_COLUMNS)}) "
                  f"VALUES (?{', ?' * len(CALLER_COLUMNS)})")
_DELETE_CALLER = "DELETE FROM call_callers WHERE call_id = ?"
_INSERT_OUTBOUND = (f"INSERT OR REPLACE INTO call_outbound (call_id, {', '.join(OUTBOUND_COLUMNS)}) "
                    f"VALUES (?{', ?' * len(OUTBOUND_COLUMNS)})")
_DELETE_OUTBOUND = "DELETE FROM call_outbound WHERE call_id = ?"
_SELECT_CALLS = (f"SELECT calls.*, k.call_id IS NOT NULL AS _has_caller, "
                 f"{', '.join('k.' + c for c in CALLER_COLUMNS)}, o.call_id IS NOT NULL AS _has_outbound, "
                 f"{', '.join('o.' + c for c in OUTBOUND_COLUMNS)} FROM calls LEFT JOIN call_callers k "
                 f"ON k.call_id = calls.call_id LEFT JOIN call_outbound o ON o.call_id = calls.call_id")

_STOP = object()


class JournalError(ApplianceError):
    """The journal file cannot be opened, or a queued write failed in the writer thread."""


def _validate_call(record: dict) -> tuple[tuple, tuple | None, tuple | None]:
    """The calls row of ``record``, its call_callers row (None when it has no caller identification keys) and its
    call_outbound row (None when it has no outbound keys)."""
    if not isinstance(record, dict):
        raise ValueError(f"a call record must be a dict, got {type(record).__name__}")
    unknown = sorted(set(record) - set(RECORD_FIELDS))
    if unknown:
        raise ValueError(f"unknown call record keys {unknown}; allowed: {list(RECORD_FIELDS)}")
    if not isinstance(record.get("call_id"), str) or not record["call_id"]:
        raise ValueError(f"call_id must be a non-empty string, got {record.get('call_id')!r}")
    row = _check_values(record, _COLS)
    caller = (record["call_id"], *_check_values(record, CALLER_COLUMNS)) if set(record) & set(CALLER_COLUMNS) \
        else None
    outbound = (record["call_id"], *_check_values(record, OUTBOUND_COLUMNS)) \
        if set(record) & set(OUTBOUND_COLUMNS) else None
    return row, caller, outbound


def _check_values(record: dict, keys) -> tuple:
    row = []
    for key in keys:
        value = record.get(key)
        if value is not None:
            kind = RECORD_FIELDS[key]
            if not isinstance(value, _ACCEPT[kind]) or isinstance(value, bool):
                raise ValueError(f"call record {key}={value!r} must be {kind.__name__} or None")
            if key in CHOICES and value not in CHOICES[key]:
                raise ValueError(f"call record {key}={value!r} must be one of {CHOICES[key]}")
            value = kind(value)
            if kind is float and not math.isfinite(value):
                raise ValueError(f"call record {key}={value!r} must be a finite number")
        row.append(value)
    return tuple(row)


def _write(con: sqlite3.Connection, kind: str, row: tuple) -> None:
    """One queued write: a call (its calls row, then its call_callers row or none), an event, or a job."""
    if kind == "job":
        _job(con, *row)
        return
    if kind != "call":
        con.execute(_INSERT_EVENT, row)
        if row[2] == "agent.state":
            con.execute("INSERT OR REPLACE INTO seat_states (seat, ts, data) VALUES (json_extract(?, '$.seat'), ?, ?)",
                        (row[3], row[1], row[3]))
        return
    call, caller, outbound = row
    con.execute(_INSERT_CALL, call)
    if caller is not None:
        con.execute(_INSERT_CALLER, caller)
    else:  # the whole record is replaced: an older caller identification goes too
        con.execute(_DELETE_CALLER, (call[0],))
    if outbound is not None:
        con.execute(_INSERT_OUTBOUND, outbound)
    else:
        con.execute(_DELETE_OUTBOUND, (call[0],))


def _job(con: sqlite3.Connection, fn: Callable, fut: concurrent.futures.Future, outcome: list) -> None:
    """``Journal.run``: ``fn(con)`` in a savepoint (its failure undoes only its own changes); its outcome waits in
    ``outcome`` until the transaction is committed (``_settle``)."""
    outcome.clear()
    con.execute("SAVEPOINT job")
    try:
        outcome[:] = [True, fn(con)]
    except Exception as e:  # noqa: BLE001 - handed to whoever waits on the future
        con.execute("ROLLBACK TO job")
        outcome[:] = [False, e]
    con.execute("RELEASE job")


def _settle(writes: list[tuple]) -> None:
    """Hand the jobs' outcomes to their futures (after the commit, or after the row-by-row retry)."""
    for kind, row in writes:
        if kind == "job" and not row[1].done():
            _, fut, outcome = row
            if outcome and outcome[0]:
                fut.set_result(outcome[1])
            else:
                fut.set_exception(outcome[1] if outcome else JournalError("the job's transaction failed"))


def _call_dict(r: sqlite3.Row) -> dict:
    d = dict(r)
    for flag, columns in (("_has_caller", CALLER_COLUMNS), ("_has_outbound", OUTBOUND_COLUMNS)):
        if not d.pop(flag):
            for key in columns:
                del d[key]
    return d


def _json_default(obj: Any) -> Any:
    """numpy scalars and arrays in event data become plain JSON numbers and lists."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _connect(path: str, **kw: Any) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, **kw)
    con.row_factory = sqlite3.Row
    return con


class Journal:
    """Call records and events in one SQLite file in WAL mode.

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created with its schema if missing.
    batch_interval_s : float
        Longest time a queued write waits before its batch is committed.

    Raises
    ------
    JournalError
        If ``path`` is not an SQLite database or was written by a newer schema.
    """

    def __init__(self, path: str | os.PathLike, batch_interval_s: float = 0.2) -> None:
        self.path = os.fspath(path)
        self.batch_interval_s = batch_interval_s
        self._wcon = self._rcon = None
        try:
            self._wcon = _connect(self.path)
            self._setup(self._wcon)
            self._rcon = _connect(self.path)
            self._rcon.execute("PRAGMA query_only=ON")
        except (sqlite3.Error, JournalError) as e:
            for con in (self._wcon, self._rcon):
                if con is not None:
                    con.close()
            if isinstance(e, JournalError):
                raise
            raise JournalError(f"journal {self.path!r} cannot be opened as an SQLite database: {e}") from None
        self.commits = 0  # transactions committed by the writer thread, for tests and status
        self._rlock = threading.Lock()
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._error: BaseException | None = None
        self._err_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def _setup(self, con: sqlite3.Connection) -> None:
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise JournalError(f"journal {self.path!r}: WAL mode refused (journal_mode is {mode!r})")
        con.execute("PRAGMA synchronous=NORMAL")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(f"journal {self.path!r} has schema version {version}; "
                               f"this firmware knows up to {SCHEMA_VERSION}")
        con.executescript("BEGIN;" + _SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")

    # ---- writes (any thread, never block on the disk) ----

    def put_call(self, record: dict) -> None:
        """Queue an insert-or-replace of a whole call row.

        Parameters
        ----------
        record : dict
            Keys from ``CALL_COLUMNS`` (``call_id`` required), ``CALLER_COLUMNS`` and ``OUTBOUND_COLUMNS``;
            missing keys are stored as NULL. A record without any ``CALLER_COLUMNS`` (``OUTBOUND_COLUMNS``) key
            reads back without them.

        Raises
        ------
        ValueError
            Naming unknown keys, or a value of the wrong type or outside its choices.
        """
        self._put(("call", _validate_call(record)))

    def add_event(self, call_id: str, ts: float, type: str, data: dict | None = None) -> None:
        """Queue one call event; ``data`` is stored as JSON (``ValueError`` if it cannot be)."""
        if not isinstance(call_id, str) or not isinstance(type, str):
            raise ValueError(f"call_id and type must be strings, got {call_id!r}, {type!r}")
        try:
            text = json.dumps({} if data is None else data, ensure_ascii=False, allow_nan=False,
                              default=_json_default)
        except (TypeError, ValueError) as e:
            raise ValueError(f"event {type!r} data for call {call_id!r} is not JSON: {e}") from None
        self._put(("event", (call_id, float(ts), type, text)))

    def put_campaign(self, name: str, ts: float, data: dict) -> None:
        """Queue the replacement of a group-calling campaign's saved state (``appliance.campaign``); ``data`` is
        stored as JSON by the writer thread, so the caller must not change it afterwards."""
        if not isinstance(name, str) or not name or not isinstance(data, dict):
            raise ValueError(f"a campaign is saved by name (a non-empty string) with a dict, got {name!r}")

        def save(con: sqlite3.Connection) -> None:
            con.execute("INSERT OR REPLACE INTO campaigns (name, ts, data) VALUES (?, ?, ?)",
                        (name, float(ts), json.dumps(data, ensure_ascii=False, allow_nan=False)))
        self.run(save)

    def run(self, fn: Callable[[sqlite3.Connection], Any]) -> concurrent.futures.Future:
        """Queue ``fn(con)`` to run on the writer thread, after the writes queued before it and inside their
        transaction; the future gets its value (or its exception, which undoes only ``fn``'s own changes) once
        that is committed. For tables kept beside the calls and events (``appliance.missed``). ``fn`` must only
        touch the database: a batch that fails is retried row by row, and ``fn`` with it."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._put(("job", (fn, fut, [])))
        self._wake.set()
        return fut

    def _put(self, item: tuple) -> None:
        if self._closed:
            raise JournalError(f"journal {self.path!r} is closed")
        self._q.put(item)

    def flush(self) -> None:
        """Block until everything queued so far is committed.

        Raises
        ------
        JournalError
            If a write failed in the writer thread since the last flush (raised once).
        """
        if self._thread.is_alive():
            done = threading.Event()
            self._q.put(("flush", done))
            self._wake.set()
            done.wait()
        self._raise_pending()

    def close(self) -> None:
        """Commit everything queued, stop the writer thread and close both connections."""
        if not self._closed:
            self._closed = True
            self._q.put((_STOP, None))
            self._wake.set()
            self._thread.join()
            self._wcon.close()
            with self._rlock:
                self._rcon.close()
        self._raise_pending()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raise_pending(self) -> None:
        with self._err_lock:
            err, self._error = self._error, None
        if err is not None:
            raise JournalError(f"journal {self.path!r}: a queued write failed: {err}") from err

    # ---- the writer thread ----

    def _run(self) -> None:
        while True:
            batch = [self._q.get()]
            if batch[0][0] not in ("flush", _STOP):
                self._wake.wait(self.batch_interval_s)  # gather more; flush/close wake it early
            self._wake.clear()
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            writes = [it for it in batch if it[0] in ("call", "event", "job")]
            if writes:
                self._commit(writes)
            for kind, arg in batch:
                if kind == "flush":
                    arg.set()
            if any(kind is _STOP for kind, _ in batch):
                return

    def _commit(self, writes: list[tuple]) -> None:
        con = self._wcon
        try:
            con.execute("BEGIN")
            for kind, row in writes:
                _write(con, kind, row)
            con.execute("COMMIT")
            self.commits += 1
            _settle(writes)
            return
        except Exception:  # noqa: BLE001 - any failure falls back to row by row below
            try:
                if con.in_transaction:
                    con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        # one bad row must not cost the others: retry row by row, keep the first error
        for kind, row in writes:
            try:
                _write(con, kind, row)
            except Exception as e:  # noqa: BLE001 - reported to the next flush()/close()
                log.error("journal %s: dropped %s %r: %s", self.path, kind, row[0][0] if kind == "call" else row[0], e)
                with self._err_lock:
                    if self._error is None:
                        self._error = e
        _settle(writes)

    # ---- reads (any thread; one read connection behind a lock) ----

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._rlock:
            if self._closed:
                raise JournalError(f"journal {self.path!r} is closed")
            return self._rcon.execute(sql, args).fetchall()

    def get_call(self, call_id: str) -> dict | None:
        """The committed call row as a dict of all columns (and ``CALLER_COLUMNS`` when its record had them),
        or None."""
        rows = self._query(_SELECT_CALLS + " WHERE calls.call_id = ?", (call_id,))
        return _call_dict(rows[0]) if rows else None

    def calls(self, since_ts: float | None = None, until_ts: float | None = None,
              limit: int = 1000) -> list[dict]:
        """Committed calls with ``since_ts <= start_ts < until_ts`` (bounds optional), newest first."""
        where, args = [], []
        if since_ts is not None:
            where.append("calls.start_ts >= ?")
            args.append(since_ts)
        if until_ts is not None:
            where.append("calls.start_ts < ?")
            args.append(until_ts)
        sql = _SELECT_CALLS + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._query(sql + " ORDER BY calls.start_ts DESC, calls.call_id LIMIT ?", (*args, int(limit)))
        return [_call_dict(r) for r in rows]

    def events(self, call_id: str) -> list[dict]:
        """Committed events of one call in time order: dicts with id, call_id, ts, type, data (decoded)."""
        rows = self._query("SELECT * FROM call_events WHERE call_id = ? ORDER BY ts, id", (call_id,))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def calls_from(self, national: str, limit: int = 10) -> list[dict]:
        """Committed calls whose caller normalised to ``national`` (``appliance.caller``), newest first."""
        rows = self._query(_SELECT_CALLS + " WHERE k.caller_national = ? ORDER BY calls.start_ts DESC LIMIT ?",
                           (national, int(limit)))
        return [_call_dict(r) for r in rows]

    def seat_states(self) -> list[dict]:
        """Each seat's last ``agent.state`` event data (seat, agent_id, state, reason, ...) and its ``ts`` (epoch
        seconds: when that state began), by seat."""
        return [{**json.loads(r["data"]), "ts": r["ts"]}
                for r in self._query("SELECT data, ts FROM seat_states ORDER BY seat")]

    def campaigns(self) -> list[dict]:
        """The campaigns' last saved states (``put_campaign``), each with its ``name`` and ``ts``, by name."""
        return [{**json.loads(r["data"]), "name": r["name"], "ts": r["ts"]}
                for r in self._query("SELECT name, ts, data FROM campaigns ORDER BY name")]

    def events_of(self, type_: str, since_ts: float | None = None) -> list[dict]:
        """Committed events of one type (e.g. ``agent.state``), in time order."""
        rows = self._query("SELECT * FROM call_events WHERE type = ? AND ts >= ? ORDER BY ts, id",
                           (type_, -math.inf if since_ts is None else since_ts))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def counts(self, since_ts: float, until_ts: float) -> dict[str, int]:
        """Inbound calls started in ``[since_ts, until_ts)``: offered, answered and abandoned."""
        row = self._query(
            "SELECT COUNT(*), COALESCE(SUM(disposition = 'answered'), 0), "
            "COALESCE(SUM(disposition = 'abandoned'), 0) FROM calls "
            "WHERE direction = 'in' AND start_ts >= ? AND start_ts < ?", (since_ts, until_ts))[0]
        return {"offered": row[0], "answered": row[1], "abandoned": row[2]}
