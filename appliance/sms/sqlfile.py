"""One SQLite file of the SMS code (the outbox, the store): opened durable, versioned, written one transaction at a time.

WAL with ``synchronous=FULL``: a committed state survives a power cut, which the
outbox's exactly-once rules rely on. The schema's version is ``PRAGMA user_version``;
a file from newer firmware is refused rather than misread. One connection shared by
threads under a lock (the SMS worker owns the files, the tests poke them from theirs).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from typing import Any

from ..apischema import CommandError
from ..errors import ApplianceError


def bad(message: str) -> CommandError:
    """A bad argument to a method of the SMS files or the campaign runner (the control API passes it on)."""
    return CommandError("bad_argument", message)


def check_now(now: Any, key: str = "now") -> float:
    """``now`` (epoch or monotonic seconds) as a float; bad_argument naming ``key`` when it is no finite number."""
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise bad(f"{key}: {now!r} must be a finite number of seconds")
    return float(now)


class SqlFile:
    """An SQLite file with ``schema`` (idempotent DDL) at ``version``; ``what`` names it in errors."""

    def __init__(self, path: str | os.PathLike, what: str, schema: str, version: int) -> None:
        self.path, self._what = os.fspath(path), what
        self._lock = threading.Lock()
        self._con = None
        try:
            self._con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            mode = self._con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise ApplianceError(f"{what} {self.path!r}: WAL mode refused (journal_mode is {mode!r})")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.execute("PRAGMA foreign_keys=ON")
            found = self._con.execute("PRAGMA user_version").fetchone()[0]
            if found > version:
                raise ApplianceError(f"{what} {self.path!r} has schema version {found}; "
                                     f"this firmware knows up to {version}")
            self._con.executescript("BEGIN;" + schema + f"PRAGMA user_version={version};COMMIT;")
        except (sqlite3.Error, ApplianceError) as e:
            if self._con is not None:
                self._con.close()
            if isinstance(e, ApplianceError):
                raise
            raise ApplianceError(f"{what} {self.path!r} cannot be opened as an SQLite database: {e}") from None

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, fn):
        """Run ``fn(con)`` in one IMMEDIATE transaction (the write lock taken first: no lost update between
        processes); its result after the commit, nothing kept if it raises."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._con)
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")
            return out

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()
