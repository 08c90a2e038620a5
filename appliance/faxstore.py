"""Faxes kept: received pages as a TIFF-F with one PNG a page for the web page, and one journal row per fax.

Layout under the data directory: ``fax/in/YYYY-MM-DD/<call id>.tif`` and
``<call id>-001.png``, ``-002.png`` ... beside it; documents sent are kept as
``fax/out/YYYY-MM-DD/<job id>.tif`` (written at ``fax.send``, before the job is
queued). Paths in the journal are relative to the data directory. The ``faxes``
table is created on open (an older journal keeps working), one row per received fax
(also a failed one, with its cause) and per finished send job (with every attempt).

Every file is written atomically (``appliance.atomicfile``): a TIFF that cannot be
written leaves no file behind, and its record keeps the pages count with
``stored`` false and the reason in ``store_error``; PNGs come from the TIFF just
written (``appliance.faxdocs.tiff_to_pngs``), so what the web page shows is what was
kept. This runs off the tick (``appliance.offtick``); the journal row is a
``Journal.run`` job on the writer thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pathlib
import sqlite3

from dsp.fax.tiff import write_tiff_f

from .atomicfile import replace_atomically
from .errors import ApplianceError

log = logging.getLogger(__name__)

DIR_MODE = 0o750
FILE_MODE = 0o644  # readable by a separate web server
COLUMNS = ("key", "direction", "number", "remote_ident", "pages", "bit_rate", "resolution", "compression", "result",
           "cause", "started_ts", "seconds", "bad_rows", "document", "tiff", "pngs", "attempts", "stored",
           "store_error")
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS faxes (
    id INTEGER PRIMARY KEY, key TEXT UNIQUE, direction TEXT, number TEXT, remote_ident TEXT, pages INTEGER,
    bit_rate INTEGER, resolution TEXT, compression TEXT, result TEXT, cause TEXT, started_ts REAL, seconds REAL,
    bad_rows INTEGER, document TEXT, tiff TEXT, pngs TEXT, attempts TEXT, stored INTEGER, store_error TEXT
);
CREATE INDEX IF NOT EXISTS faxes_started_ts ON faxes (started_ts);
CREATE TABLE IF NOT EXISTS fax_jobs (
    job_id TEXT PRIMARY KEY, data TEXT
);
"""
_JSON = ("pngs", "attempts")
DIRECTIONS = ("in", "out")


class FaxStoreError(ApplianceError):
    """A fax record or query that cannot be honoured; ``code`` as the control API's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def setup(con: sqlite3.Connection) -> None:
    """Create the ``faxes`` table (a ``Journal.run`` job)."""
    for statement in SCHEMA_SQL.split(";"):  # one by one: executescript would commit the writer's transaction
        if statement.strip():
            con.execute(statement)


class FaxStore:
    """Writes received faxes' files and every fax's row.

    Parameters
    ----------
    root : path
        The data directory; files go under ``root/fax``.
    tz : tzinfo
        The box's time zone, for the day folders.
    """

    def __init__(self, root: str | os.PathLike, tz: dt.tzinfo | None = None) -> None:
        self.root = pathlib.Path(root)
        self.tz = tz

    def folder(self, direction: str, epoch: float) -> tuple[pathlib.Path, str]:
        """The day folder (made if missing) for a fax of ``direction`` started at ``epoch``, and its relative
        path."""
        day = dt.datetime.fromtimestamp(epoch, self.tz).strftime("%Y-%m-%d")
        rel = f"fax/{direction}/{day}"
        path = self.root / rel
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        return path, rel

    def write_document(self, job_name: str, pages: list, epoch: float) -> str:
        """Keep a document to send as a TIFF-F; its path relative to the data directory."""
        path, rel = self.folder("out", epoch)
        replace_atomically(path / f"{job_name}.tif", lambda tmp: write_tiff_f(tmp, pages, two_d=True), mode=FILE_MODE,
                           suffix=".tif")
        return f"{rel}/{job_name}.tif"

    def save_files(self, record: dict, pages: list) -> dict:
        """Write a received fax's pages (TIFF-F, PNGs); the record with ``tiff``, ``pngs``, ``stored`` set."""
        from .faxdocs import tiff_to_pngs  # Pillow is loaded only by a box that stores faxes

        rec = {**record, "tiff": None, "pngs": [], "stored": False, "store_error": None}
        if not pages:
            return rec
        path, rel = self.folder("in", record["started_ts"])
        tif = path / f"{record['key']}.tif"
        try:
            replace_atomically(tif, lambda tmp: write_tiff_f(tmp, pages, two_d=True), mode=FILE_MODE, suffix=".tif")
        except (OSError, ApplianceError) as e:
            rec["store_error"] = f"{tif.name}: {e}"
            log.error("fax %s: pages not stored: %s", record["key"], e)
            return rec
        rec["tiff"], rec["stored"] = f"{rel}/{tif.name}", True
        try:
            rec["pngs"] = [f"{rel}/{os.path.basename(p)}" for p in tiff_to_pngs(tif, path)]
        except (OSError, ApplianceError) as e:  # the TIFF is kept: the pictures can be made again from it
            rec["store_error"] = f"PNG pages: {e}"
            log.error("fax %s: PNG pages not written: %s", record["key"], e)
        return rec

    @staticmethod
    def insert(con: sqlite3.Connection, rec: dict) -> int:
        """Add (or replace) one fax row (a ``Journal.run`` job); its id."""
        row = [json.dumps(rec.get(c) or [], ensure_ascii=False) if c in _JSON else rec.get(c) for c in COLUMNS]
        row[COLUMNS.index("stored")] = int(bool(rec.get("stored")))
        cur = con.execute(f"INSERT OR REPLACE INTO faxes ({', '.join(COLUMNS)}) VALUES "
                          f"({', '.join('?' * len(COLUMNS))})", row)
        return cur.lastrowid

    @staticmethod
    def put_job(con: sqlite3.Connection, job_id: str, data: dict | None) -> None:
        """Keep an unfinished send job (``appliance.faxjobs.saved_job``), or forget it (None)."""
        if data is None:
            con.execute("DELETE FROM fax_jobs WHERE job_id = ?", (job_id,))
        else:
            con.execute("INSERT OR REPLACE INTO fax_jobs (job_id, data) VALUES (?, ?)",
                        (job_id, json.dumps(data, ensure_ascii=False, allow_nan=False)))

    @staticmethod
    def jobs(con: sqlite3.Connection) -> list[dict]:
        """The unfinished send jobs kept, oldest first."""
        rows = [json.loads(r[0]) for r in con.execute("SELECT data FROM fax_jobs")]
        return sorted(rows, key=lambda d: (d["created_ts"], d["job_id"]))

    @staticmethod
    def entries(con: sqlite3.Connection, direction: str | None = None, since: float | None = None,
                limit: int = 100) -> list[dict]:
        """Faxes, the latest first."""
        if direction is not None and direction not in DIRECTIONS:
            raise FaxStoreError("bad_argument", f"direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
        where, args = [], []
        if direction is not None:
            where.append("direction = ?")
            args.append(direction)
        if since is not None:
            where.append("started_ts >= ?")
            args.append(since)
        sql = (f"SELECT id, {', '.join(COLUMNS)} FROM faxes" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY started_ts DESC, id DESC LIMIT ?")
        out = []
        for r in con.execute(sql, (*args, limit)):
            d = dict(r)
            for c in _JSON:
                d[c] = json.loads(d[c]) if d[c] else []
            d["stored"] = bool(d["stored"])
            out.append(d)
        return out
