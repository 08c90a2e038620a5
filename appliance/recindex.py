"""The recordings index: one row per recording file (call or voicemail) in the journal's SQLite file, with its number.

The **recording number** is the row's key: a sequence over the box's whole life (1, 2,
3, ...), given when the recording starts, never reused, short enough to dial (an
agent plays recording 123 with ``*6 123 #``). It is unique across restarts because
the sequence continues from the highest number the index holds, and the start-up
check (``appliance.recstore``) registers every file the index lacks before the first
new recording. A row's ``state`` is ``recording`` (being written), ``done``,
``orphaned`` (a recording the core was writing when it died, whose call never got its
call record) or ``deleted`` (by retention, or its file went missing; ``deleted_ts``
and ``note`` say when and why; the call record's ``recording`` is then cleared).

Every access is a ``Journal.run`` job on the journal's writer thread: writes from the
tick or the recorder's closing thread are queued and never waited for; the reads
(start-up, retention, playback, the control API) are off the tick and wait for their
answer.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

log = logging.getLogger(__name__)

STATES = ("recording", "done", "orphaned", "deleted")
COLUMNS = ("number", "call_id", "kind", "path", "start_ts", "seconds", "bytes", "state", "deleted_ts", "note")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS recordings (number INTEGER PRIMARY KEY, call_id TEXT NOT NULL, kind TEXT NOT NULL, "
    "path TEXT NOT NULL, start_ts REAL, seconds REAL, bytes INTEGER, state TEXT NOT NULL, deleted_ts REAL, note TEXT)",
    "CREATE INDEX IF NOT EXISTS recordings_call_id ON recordings (call_id)",
    "CREATE INDEX IF NOT EXISTS recordings_start_ts ON recordings (start_ts)",
)
_INSERT = f"INSERT OR REPLACE INTO recordings ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
READ_TIMEOUT_S = 30.0


def _log_failure(fut) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("recordings index: %s", fut.exception())


def _rows(cur: sqlite3.Cursor) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


class RecordingIndex:
    """The ``recordings`` table beside the journal's calls.

    Parameters
    ----------
    journal : appliance.journal.Journal
    """

    def __init__(self, journal) -> None:
        self.journal = journal

    # --- queued writes (any thread, never wait) ---------------------------------------------------

    def _queue(self, fn) -> None:
        self.journal.run(fn).add_done_callback(_log_failure)

    def started(self, number: int, call_id: str, kind: str, path: str, start_ts: float) -> None:
        """A recording began (the tick): its row, state ``recording``."""
        row = (number, call_id, kind, path, start_ts, 0.0, None, "recording", None, None)
        self._queue(lambda con: con.execute(_INSERT, row))

    def finished(self, number: int, seconds: float, nbytes: int) -> None:
        """Its file is closed (the recorder's closing thread): ``done`` with its length and size."""
        self._queue(lambda con: con.execute(
            "UPDATE recordings SET seconds = ?, bytes = ?, state = 'done' WHERE number = ? AND state = 'recording'",
            (seconds, nbytes, number)))

    def put(self, row: dict) -> None:
        """Insert or replace a whole row (start-up check)."""
        values = tuple(row.get(c) for c in COLUMNS)
        self._queue(lambda con: con.execute(_INSERT, values))

    def deleted(self, number: int, ts: float, note: str) -> None:
        """The file is gone (retention, or found missing): the row says so, and the call record that named the
        file keeps the call with its ``recording`` cleared."""
        def job(con: sqlite3.Connection) -> None:
            row = con.execute("SELECT call_id, path FROM recordings WHERE number = ?", (number,)).fetchone()
            if row is None:
                return
            con.execute("UPDATE recordings SET state = 'deleted', deleted_ts = ?, note = ? WHERE number = ?",
                        (ts, note, number))
            con.execute("UPDATE calls SET recording = NULL WHERE call_id = ? AND recording = ?", (row[0], row[1]))
        self._queue(job)

    # --- reads (off the tick; they wait for the writer thread) ------------------------------------

    def _ask(self, fn) -> Any:
        return self.journal.run(fn).result(READ_TIMEOUT_S)

    def create(self) -> None:
        """Create the table if the journal has none yet (waits)."""
        def job(con: sqlite3.Connection) -> None:
            for sql in _SCHEMA:
                con.execute(sql)
        self._ask(job)

    def get(self, number: int) -> dict | None:
        rows = self._ask(lambda con: _rows(con.execute("SELECT * FROM recordings WHERE number = ?", (number,))))
        return rows[0] if rows else None

    def of_call(self, call_id: str) -> list[dict]:
        return self._ask(lambda con: _rows(con.execute(
            "SELECT * FROM recordings WHERE call_id = ? ORDER BY number", (call_id,))))

    def rows(self, states: tuple[str, ...] | None = None) -> list[dict]:
        """Rows in ``states`` (all when None), oldest first (by start, then number)."""
        where = f" WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        return self._ask(lambda con: _rows(con.execute(
            f"SELECT * FROM recordings{where} ORDER BY start_ts, number", tuple(states or ()))))

    def next_number(self) -> int:
        """The number the next recording gets: one more than any the index holds."""
        return self._ask(lambda con: con.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM recordings").fetchone()[0])

    def call_recordings(self) -> dict[str, str]:
        """call id -> the ``recording`` of its call record, for every call record that has one."""
        return self._ask(lambda con: dict(con.execute(
            "SELECT call_id, recording FROM calls WHERE recording IS NOT NULL").fetchall()))
