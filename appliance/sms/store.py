"""The SMS data store: templates, opt-outs (退订), inbound SMS and campaigns, in one SQLite file.

Same discipline as the outbox: WAL, synchronous FULL, ``PRAGMA user_version`` for the schema, one connection
shared under a lock, one IMMEDIATE transaction per write, so a bad argument or a crash never half-writes.
Errors are ``CommandError`` (``bad_argument``, ``not_found``, ``conflict``); a template whose text is wrong is
a ``ConfigError`` from ``templates.Template`` naming the problem. Every write takes ``now`` from the caller.

Numbers (opt-outs, inbound senders, campaign recipients) are kept in one canonical form, the national form of
``appliance.caller.normalise`` (``+86 138...``, ``0086138...`` and ``138...`` are one mobile).

Dispatch SMS leave no mark here: each notice's message id in the outbox is made from its rule and occurrence,
so the outbox itself tells whether it was queued before.

A campaign's run works on a snapshot of its recipients (``campaign_numbers``, written by ``start_run``), so a
customer group that changes during a run does not shift the indexes its message ids are built from. The cursor
and the counts move together in ``advance``, conditional on the run and the cursor the caller read: the runner
adds a batch to the outbox first and advances after, so a crash in between repeats the same adds.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from ..apischema import CommandError
from ..caller import normalise
from .outbox import VIAS
from .sqlfile import SqlFile, bad as _bad, check_now as _now
from .templates import FIELDS, PLAUSIBLE_LENGTH, Template, is_opt_out, part_count

__all__ = ["SmsStore", "COUNTS", "CAMPAIGN_STATES"]

SCHEMA_VERSION = 1
CAMPAIGN_STATES = ("scheduled", "running", "done", "cancelled")
COUNTS = ("added", "opted_out", "missing_value", "bad_number", "refused")
MAX_NAME = 64

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS templates (
    name TEXT PRIMARY KEY, text TEXT NOT NULL, fields TEXT NOT NULL, parts INTEGER NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS opt_outs (
    number TEXT PRIMARY KEY, source TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS inbound (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL, number TEXT NOT NULL, text TEXT NOT NULL,
    received_at REAL NOT NULL, via TEXT NOT NULL, opt_out INTEGER NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, template TEXT NOT NULL,
    recipients TEXT NOT NULL, schedule TEXT NOT NULL, vals TEXT NOT NULL, via TEXT, state TEXT NOT NULL,
    next_run_at REAL, run INTEGER NOT NULL, cursor INTEGER NOT NULL, run_size INTEGER NOT NULL,
    run_started_at REAL, counts TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS campaigns_state ON campaigns (state, next_run_at);
CREATE TABLE IF NOT EXISTS campaign_numbers (
    campaign_id INTEGER NOT NULL, idx INTEGER NOT NULL, number TEXT NOT NULL, PRIMARY KEY (campaign_id, idx)
);
"""
_CAMPAIGN = ("id", "name", "template", "recipients", "schedule", "vals", "via", "state", "next_run_at", "run",
             "cursor", "run_size", "run_started_at", "counts", "created_at", "updated_at")




def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise _bad(f"{key}: {value!r} must be a non-empty string of at most {MAX_NAME} characters")
    return value


def _page(limit: Any, offset: Any) -> None:
    for key, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(f"{key}: {value!r} must be an integer >= 0")


def zero_counts() -> dict:
    """Counts of a campaign: ``run`` (the current run) and ``total``, each with every key of ``COUNTS`` at 0."""
    return {"run": dict.fromkeys(COUNTS, 0), "total": dict.fromkeys(COUNTS, 0)}


class SmsStore(SqlFile):
    """Templates, opt-outs, inbound SMS and campaigns in their own SQLite file.

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created with its schema if missing.
    home_area : str
        The box's area code without the 0 (``"27"``), for ``normalise`` of local landline numbers.
    """

    def __init__(self, path: str | os.PathLike, home_area: str = "27") -> None:
        normalise("", home_area=home_area)  # checks home_area (ConfigError)
        self.home_area = home_area
        super().__init__(path, "sms store", SCHEMA_SQL, SCHEMA_VERSION)

    def number(self, number: Any) -> str:
        """The canonical (national) form of ``number``; bad_argument when it is no phone number."""
        n = normalise(number, home_area=self.home_area) if isinstance(number, str) else None
        if n is None or n.kind == "unknown":
            raise _bad(f"number: {number!r} is not a phone number")
        return n.national

    def number_kind(self, number: str) -> str:
        """The kind (``caller.KINDS``: mobile, landline, ...) of a number in any form."""
        n = normalise(number, home_area=self.home_area)
        return "unknown" if n is None else n.kind

    # -- templates ---------------------------------------------------------------------------------------------

    def save_template(self, name: str, text: str, now: float) -> dict:
        """Store template ``name`` (replacing one of that name) after ``templates.Template`` accepts it."""
        now = _now(now)
        _name("name", name)
        if not isinstance(text, str):
            raise _bad(f"text: {text!r} must be a string")
        t = Template(name, text)  # ConfigError: unknown field, stray brace, too many parts
        longest = text
        for f in t.fields:
            longest = longest.replace("{" + f + "}", "中" * PLAUSIBLE_LENGTH[FIELDS[f]])
        row = (name, text, json.dumps(t.fields, ensure_ascii=False), part_count(longest), now)
        self._write(lambda con: con.execute("INSERT OR REPLACE INTO templates VALUES (?, ?, ?, ?, ?)", row))
        return _template(row)

    def template(self, name: str) -> dict:
        rows = self._read("SELECT * FROM templates WHERE name = ?", (name,))
        if not rows:
            raise CommandError("not_found", f"template: {name!r} is not a saved SMS template")
        return _template(rows[0])

    def templates(self) -> list[dict]:
        """Every template (name, text, fields, parts: the most SMS parts with long values, updated_at), by name."""
        return [_template(r) for r in self._read("SELECT * FROM templates ORDER BY name")]

    def delete_template(self, name: str) -> None:
        """Delete a template; conflict while a scheduled or running campaign uses it."""
        def fn(con):
            if not con.execute("SELECT 1 FROM templates WHERE name = ?", (name,)).fetchone():
                raise CommandError("not_found", f"template: {name!r} is not a saved SMS template")
            users = [r[0] for r in con.execute("SELECT name FROM campaigns WHERE template = ? AND state IN "
                                               "('scheduled', 'running') ORDER BY id", (name,))]
            if users:
                raise CommandError("conflict", f"template {name!r} is used by campaign {', '.join(users)}")
            con.execute("DELETE FROM templates WHERE name = ?", (name,))
        self._write(fn)

    # -- opt-outs ----------------------------------------------------------------------------------------------

    @staticmethod
    def _opt_out(con: sqlite3.Connection, number: str, source: str, text: str, now: float) -> dict:
        """Record an opt-out (a number already opted out keeps its first record); the stored record."""
        con.execute("INSERT OR IGNORE INTO opt_outs VALUES (?, ?, ?, ?)", (number, source, text, now))
        return _opt(con.execute("SELECT * FROM opt_outs WHERE number = ?", (number,)).fetchone())

    def add_opt_out(self, number: str, source: str, now: float, text: str = "") -> dict:
        """Opt ``number`` out of every later campaign; ``source`` is ``reply`` or ``manual``."""
        now, key = _now(now), self.number(number)
        if source not in ("reply", "manual"):
            raise _bad(f"source: {source!r} is not one of reply, manual")
        if not isinstance(text, str):
            raise _bad(f"text: {text!r} must be a string")
        return self._write(lambda con: self._opt_out(con, key, source, text, now))

    def remove_opt_out(self, number: str) -> None:
        key = self.number(number)
        def fn(con):
            if con.execute("DELETE FROM opt_outs WHERE number = ?", (key,)).rowcount == 0:
                raise CommandError("not_found", f"number: {number!r} has not opted out")
        self._write(fn)

    def is_opted_out(self, number: str) -> bool:
        return bool(self._read("SELECT 1 FROM opt_outs WHERE number = ?", (self.number(number),)))

    def opted_out_among(self, numbers: list[str]) -> set[str]:
        """Which of ``numbers`` (canonical forms) have opted out."""
        marks = ", ".join("?" * len(numbers))
        return {r[0] for r in self._read(f"SELECT number FROM opt_outs WHERE number IN ({marks})", tuple(numbers))}

    def opt_outs(self, limit: int = 100, offset: int = 0) -> list[dict]:
        """Opt-outs, the latest first."""
        _page(limit, offset)
        rows = self._read("SELECT * FROM opt_outs ORDER BY created_at DESC, number LIMIT ? OFFSET ?",
                          (limit, offset))
        return [_opt(r) for r in rows]

    # -- inbound -----------------------------------------------------------------------------------------------

    def add_inbound(self, sender: str, text: str, when: float, via: str, now: float) -> dict:
        """Store a received SMS; when its text is an opt-out keyword the sender is opted out in the same
        transaction (source ``reply``). Any sender is kept (a service code, a 106 number, a name): its number
        is the canonical form when ``normalise`` has one, else the digits or the text as received."""
        now, when = _now(now), _now(when, "when")
        if not isinstance(sender, str) or not sender.strip():
            raise _bad(f"sender: {sender!r} must be a non-empty string")
        n = normalise(sender, home_area=self.home_area)
        key = n.national if n is not None else sender.strip()
        if not isinstance(text, str):
            raise _bad(f"text: {text!r} must be a string")
        if via not in VIAS:
            raise _bad(f"via: {via!r} is not one of {', '.join(VIAS)}")
        opt = is_opt_out(text)
        def fn(con):
            cur = con.execute("INSERT INTO inbound (sender, number, text, received_at, via, opt_out, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)", (sender, key, text, when, via, int(opt), now))
            if opt:
                self._opt_out(con, key, "reply", text, now)
            return _inbound(con.execute("SELECT * FROM inbound WHERE id = ?", (cur.lastrowid,)).fetchone())
        return self._write(fn)

    def inbound(self, limit: int = 100, offset: int = 0) -> list[dict]:
        """Received SMS, the latest first."""
        _page(limit, offset)
        return [_inbound(r) for r in self._read("SELECT * FROM inbound ORDER BY id DESC LIMIT ? OFFSET ?",
                                                (limit, offset))]

    # -- campaigns ---------------------------------------------------------------------------------------------

    def add_campaign(self, name: str, template: str, recipients: dict, schedule: dict, values: dict,
                     via: str | None, next_run_at: float, now: float) -> dict:
        """Store a new, ``scheduled`` campaign (arguments already checked by the runner); conflict when the name
        is taken, not_found when the template is not saved."""
        now = _now(now)
        _name("name", name)
        if via is not None and via not in VIAS:
            raise _bad(f"via: {via!r} is not one of {', '.join(VIAS)} (or null: the default)")
        row = (name, template, json.dumps(recipients, ensure_ascii=False), json.dumps(schedule, ensure_ascii=False),
               json.dumps(values, ensure_ascii=False), via, _now(next_run_at), json.dumps(zero_counts()), now, now)
        def fn(con):
            if not con.execute("SELECT 1 FROM templates WHERE name = ?", (template,)).fetchone():
                raise CommandError("not_found", f"template: {template!r} is not a saved SMS template")
            if con.execute("SELECT 1 FROM campaigns WHERE name = ?", (name,)).fetchone():
                raise CommandError("conflict", f"name: campaign {name!r} already exists")
            con.execute("INSERT INTO campaigns (name, template, recipients, schedule, vals, via, state, next_run_at, "
                        "run, cursor, run_size, counts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, "
                        "'scheduled', ?, 0, 0, 0, ?, ?, ?)", row)
            return self._campaign(con, name)
        return self._write(fn)

    def _campaign(self, con: sqlite3.Connection, name_or_id: str | int) -> dict:
        col = "id" if isinstance(name_or_id, int) else "name"
        r = con.execute(f"SELECT {', '.join(_CAMPAIGN)} FROM campaigns WHERE {col} = ?", (name_or_id,)).fetchone()
        if r is None:
            raise CommandError("not_found", f"{col}: {name_or_id!r} is not an SMS campaign")
        c = dict(zip(_CAMPAIGN, r))
        c["values"] = json.loads(c.pop("vals"))
        for key in ("recipients", "schedule", "counts"):
            c[key] = json.loads(c[key])
        return c

    def campaign(self, name: str) -> dict:
        with self._lock:
            return self._campaign(self._con, name)

    def campaigns(self, states: tuple[str, ...] = CAMPAIGN_STATES) -> list[dict]:
        """Campaigns in one of ``states``, oldest first."""
        marks = ", ".join("?" * len(states))
        with self._lock:
            ids = self._con.execute(f"SELECT id FROM campaigns WHERE state IN ({marks}) ORDER BY id",
                                    tuple(states)).fetchall()
            return [self._campaign(self._con, i) for (i,) in ids]

    def _change(self, campaign_id: int, expect: dict, update, now: float) -> dict:
        """Apply ``update(con, campaign) -> (sql, args)`` as ``UPDATE campaigns SET sql`` when the campaign's
        columns match ``expect`` (a value, or a tuple of allowed values); conflict naming what differs."""
        def fn(con):
            c = self._campaign(con, campaign_id)
            for key, want in expect.items():
                if (c[key] not in want) if isinstance(want, tuple) else c[key] != want:
                    raise CommandError("conflict", f"campaign {c['name']!r}: {key} is {c[key]!r}, expected {want!r}")
            sql, args = update(con, c)
            con.execute(f"UPDATE campaigns SET {sql}, updated_at = ? WHERE id = ?", (*args, now, campaign_id))
            return self._campaign(con, campaign_id)
        return self._write(fn)

    def start_run(self, campaign_id: int, numbers: list[str], now: float) -> dict:
        """A scheduled campaign starts a run: ``running``, run + 1, cursor 0, this run's counts at 0, and
        ``numbers`` (canonical forms, in order) as the run's recipients."""
        now = _now(now)
        def update(con, c):
            con.execute("DELETE FROM campaign_numbers WHERE campaign_id = ?", (campaign_id,))
            con.executemany("INSERT INTO campaign_numbers VALUES (?, ?, ?)",
                            [(campaign_id, i, n) for i, n in enumerate(numbers)])
            counts = zero_counts() | {"total": c["counts"]["total"]}
            return ("state = 'running', run = run + 1, cursor = 0, run_size = ?, run_started_at = ?, counts = ?",
                    (len(numbers), now, json.dumps(counts)))
        return self._change(campaign_id, {"state": "scheduled"}, update, now)

    def run_numbers(self, campaign_id: int, start: int, count: int) -> list[str]:
        """Up to ``count`` recipients of the current run from index ``start``."""
        return [r[0] for r in self._read("SELECT number FROM campaign_numbers WHERE campaign_id = ? AND idx >= ? "
                                         "ORDER BY idx LIMIT ?", (campaign_id, start, count))]

    def advance(self, campaign_id: int, run: int, cursor: int, new_cursor: int, counts: dict, now: float) -> dict:
        """Move the cursor of run ``run`` from ``cursor`` to ``new_cursor`` and add ``counts`` (keys of
        ``COUNTS``) to the run's and the total counts, in one transaction; conflict when the campaign is not
        running that run at that cursor (another runner got there first)."""
        now = _now(now)
        if not 0 <= cursor <= new_cursor or set(counts) - set(COUNTS):
            raise _bad(f"advance: cursor {cursor!r} -> {new_cursor!r} with counts {counts!r} is not a step forward")
        def update(con, c):
            total = c["counts"]
            for part in ("run", "total"):
                for key, n in counts.items():
                    total[part][key] += n
            return "cursor = ?, counts = ?", (new_cursor, json.dumps(total))
        return self._change(campaign_id, {"state": "running", "run": run, "cursor": cursor}, update, now)

    def end_run(self, campaign_id: int, run: int, next_run_at: float | None, now: float) -> dict:
        """Run ``run`` is over: ``scheduled`` again for ``next_run_at``, or ``done`` when it is None."""
        now = _now(now)
        if next_run_at is None:
            return self._change(campaign_id, {"state": "running", "run": run},
                                lambda con, c: ("state = 'done', next_run_at = NULL", ()), now)
        at = _now(next_run_at)
        return self._change(campaign_id, {"state": "running", "run": run},
                            lambda con, c: ("state = 'scheduled', next_run_at = ?", (at,)), now)

    def cancel_campaign(self, name: str, now: float) -> dict:
        """Cancel a scheduled or running campaign (conflict when it is done or already cancelled)."""
        now = _now(now)
        with self._lock:
            c = self._campaign(self._con, name)
        return self._change(c["id"], {"state": ("scheduled", "running")},
                            lambda con, c: ("state = 'cancelled', next_run_at = NULL", ()), now)


def _template(r: tuple) -> dict:
    return {"name": r[0], "text": r[1], "fields": list(json.loads(r[2])), "parts": r[3], "updated_at": r[4]}


def _opt(r: tuple) -> dict:
    return {"number": r[0], "source": r[1], "text": r[2], "created_at": r[3]}


def _inbound(r: tuple) -> dict:
    return {"id": r[0], "sender": r[1], "number": r[2], "text": r[3], "received_at": r[4], "via": r[5],
            "opt_out": bool(r[6]), "created_at": r[7]}
