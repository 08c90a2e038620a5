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
import os
import queue
import sqlite3
import threading
from typing import Any, Callable

from .errors import ApplianceError
from .journalschema import (
    CALL_COLUMNS, CALLER_COLUMNS, CHOICES, DELETE_CALLER, DELETE_OUTBOUND, INSERT_CALL, INSERT_CALLER, INSERT_EVENT,
    INSERT_OUTBOUND, OUTBOUND_COLUMNS, RECORD_FIELDS, SCHEMA_SQL, SCHEMA_VERSION, SELECT_CALLS, call_dict, validate_call,
)

__all__ = ["CALL_COLUMNS", "CALLER_COLUMNS", "CHOICES", "OUTBOUND_COLUMNS", "RECORD_FIELDS", "Journal", "JournalError"]

log = logging.getLogger(__name__)

_STOP = object()


class JournalError(ApplianceError):
    """The journal file cannot be opened, or a queued write failed in the writer thread."""


def write_row(con: sqlite3.Connection, kind: str, row: tuple) -> None:
    """One queued write: a call (its calls row, then its call_callers row or none), an event, or a job."""
    if kind == "job":
        _job(con, *row)
        return
    if kind != "call":
        con.execute(INSERT_EVENT, row)
        if row[2] == "agent.state":
            con.execute("INSERT OR REPLACE INTO seat_states (seat, ts, data) VALUES (json_extract(?, '$.seat'), ?, ?)",
                        (row[3], row[1], row[3]))
        return
    call, caller, outbound = row
    con.execute(INSERT_CALL, call)
    if caller is not None:
        con.execute(INSERT_CALLER, caller)
    else:  # the whole record is replaced: an older caller identification goes too
        con.execute(DELETE_CALLER, (call[0],))
    if outbound is not None:
        con.execute(INSERT_OUTBOUND, outbound)
    else:
        con.execute(DELETE_OUTBOUND, (call[0],))


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
        con.executescript("BEGIN;" + SCHEMA_SQL + f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")

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
        self._put(("call", validate_call(record)))

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
                write_row(con, kind, row)
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
                write_row(con, kind, row)
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
        rows = self._query(SELECT_CALLS + " WHERE calls.call_id = ?", (call_id,))
        return call_dict(rows[0]) if rows else None

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
        sql = SELECT_CALLS + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._query(sql + " ORDER BY calls.start_ts DESC, calls.call_id LIMIT ?", (*args, int(limit)))
        return [call_dict(r) for r in rows]

    def events(self, call_id: str) -> list[dict]:
        """Committed events of one call in time order: dicts with id, call_id, ts, type, data (decoded)."""
        rows = self._query("SELECT * FROM call_events WHERE call_id = ? ORDER BY ts, id", (call_id,))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def calls_from(self, national: str, limit: int = 10) -> list[dict]:
        """Committed calls whose caller normalised to ``national`` (``appliance.caller``), newest first."""
        rows = self._query(SELECT_CALLS + " WHERE k.caller_national = ? ORDER BY calls.start_ts DESC LIMIT ?",
                           (national, int(limit)))
        return [call_dict(r) for r in rows]

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
