"""The missed-call list (未接来电) and the voicemail list (语音留言), kept in the journal's file beside the calls.

Both are derived from the journal: ``MissedCalls.sync`` reads the call events committed
since its cursor (``call.ended``, ``line.missed``) with their call records and updates its
tables, the cursor moving in the same transaction, so every event counts exactly once,
also across a restart or a crash. Everything here runs on the journal's writer thread as
``Journal.run`` jobs (``appliance.missedapi``): never on the 20 ms tick, and in order with
the writes the tick queued before.

What is a missed call (a supervisor's callback worklist):

- An inbound call that reached the box and wanted a person but got none: dispositions
  ``abandoned`` (hung up waiting in a queue, while an agent's phone rang, or during the
  goodbye), ``overflow`` (a full queue or the longest wait sent the caller away), ``failed``
  (a transfer to a number, such as the duty mobile, or a queue callback that did not
  connect) and ``voicemail`` (left a message: also a missed call, since nobody spoke to the
  caller; the message is in the voicemail list too and shares the entry's callback state).
- An analog line that stopped ringing before the box answered (``line.missed``).
- Not missed: ``answered``; ``transferred`` (talked to the number it was sent to); ``ivr``
  (hung up in the IVR, or the flow ended: self-service, or left before asking for a person);
  ``blocked`` (screened out). A caller without a number (withheld) cannot be called back and
  has no entry; their message is listed without a callback state.

Entries: one per number while open (次数: ``count``, first and last time, each call with
its reason), the way Chinese call centres show them. The callback state goes ``new`` ->
``calling_back`` (``missed.callback``, ``attempts`` + 1) -> ``done`` (the callback was
answered) or ``failed`` (with the callback's result; call back again), or ``closed`` by hand
(no callback needed). An open entry is also ``done`` as soon as an answered call with its
number ends: the customer got through (``called_in``), or an agent reached them by another
outbound call (``called_out``). Later missed calls from a number whose entry is done or
closed open a new entry. Times are wall-clock epoch seconds, as in the journal.
"""

from __future__ import annotations

import json
import sqlite3

from .caller import normalise
from .errors import ApplianceError
from .fxolines import RING_GONE_S

__all__ = ["MissedCalls", "MissedError", "STATES", "OPEN", "MISSED", "GOT_THROUGH"]

STATES = ("new", "calling_back", "done", "failed", "closed")
OPEN = ("new", "calling_back", "failed")  # entries still to be worked: a new missed call adds to these
MISSED = ("abandoned", "overflow", "failed", "voicemail")  # inbound dispositions that are missed calls
GOT_THROUGH = ("answered", "transferred")  # inbound dispositions where the caller talked to someone
_WATCHED = ("call.ended", "line.missed")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS missed (
        id INTEGER PRIMARY KEY, number TEXT NOT NULL, area TEXT, count INTEGER NOT NULL, first_ts REAL,
        last_ts REAL, reason TEXT, voicemails INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, callback_call TEXT, callback_seat INTEGER, callback_ts REAL,
        result TEXT, resolution TEXT, resolved_ts REAL, resolved_call TEXT)""",
    "CREATE INDEX IF NOT EXISTS missed_number ON missed (number, state)",
    "CREATE INDEX IF NOT EXISTS missed_last_ts ON missed (last_ts)",
    "CREATE TABLE IF NOT EXISTS missed_calls (entry INTEGER NOT NULL, call_id TEXT, ts REAL, reason TEXT)",
    "CREATE INDEX IF NOT EXISTS missed_calls_entry ON missed_calls (entry)",
    """CREATE TABLE IF NOT EXISTS voicemails (
        call_id TEXT PRIMARY KEY, entry INTEGER, caller TEXT, number TEXT, area TEXT, ts REAL, seconds REAL,
        box TEXT, recording TEXT, heard_ts REAL)""",
    "CREATE INDEX IF NOT EXISTS voicemails_ts ON voicemails (ts)",
    "CREATE TABLE IF NOT EXISTS missed_cursor (id INTEGER PRIMARY KEY CHECK (id = 0), event INTEGER NOT NULL)",
)
_CALL = ("SELECT c.direction, c.caller, c.called, c.start_ts, c.disposition, c.recording, k.caller_national, "
         "k.caller_area FROM calls c LEFT JOIN call_callers k ON k.call_id = c.call_id WHERE c.call_id = ?")
_OPEN_SQL = "state IN ('new', 'calling_back', 'failed')"
_MESSAGES = ("SELECT v.*, m.state, m.attempts, m.result, m.callback_call FROM voicemails v "
             "LEFT JOIN missed m ON m.id = v.entry")


class MissedError(ApplianceError):
    """A request on the lists that cannot be done: ``code`` is not_found or conflict, as the control API's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _t(ts: float | None) -> float | None:
    return None if ts is None else round(ts, 3)


def _message_dict(r: sqlite3.Row) -> dict:
    return {"call_id": r["call_id"], "caller": r["caller"], "number": r["number"], "area": r["area"],
            "ts": _t(r["ts"]), "seconds": r["seconds"], "box": r["box"], "recording": r["recording"],
            "heard": r["heard_ts"] is not None, "heard_ts": _t(r["heard_ts"]), "missed_id": r["entry"],
            "callback_state": r["state"], "callback_attempts": r["attempts"], "callback_result": r["result"],
            "callback_call_id": r["callback_call"]}


class MissedCalls:
    """The two lists on a connection of the journal's file; every method takes the writer's connection ``con``
    (inside ``Journal.run``) and first catches up with the journal (``sync``).

    Parameters
    ----------
    home_area : str
        The box's area code without the trunk 0, to normalise the numbers outbound calls dialled.
    """

    def __init__(self, home_area: str = "27") -> None:
        self.home_area = home_area

    # --- keeping up with the journal ------------------------------------------------------------------

    def setup(self, con: sqlite3.Connection) -> None:
        """Create the tables (a journal without them: its whole history is read once), catch up, and fail the
        callbacks a restart cut off (nothing is live when the core starts)."""
        for sql in _SCHEMA:
            con.execute(sql)
        con.execute("INSERT OR IGNORE INTO missed_cursor (id, event) VALUES (0, 0)")
        self.sync(con)
        con.execute("UPDATE missed SET state = 'failed', result = 'interrupted' WHERE state = 'calling_back'")

    def sync(self, con: sqlite3.Connection) -> None:
        """Apply the journal's ``call.ended`` and ``line.missed`` events committed after the cursor, in order."""
        cursor = con.execute("SELECT event FROM missed_cursor WHERE id = 0").fetchone()[0]
        top = con.execute("SELECT MAX(id) FROM call_events").fetchone()[0]
        if top is None or top <= cursor:
            return
        rows = con.execute("SELECT id, call_id, ts, type, data FROM call_events WHERE id > ? AND id <= ? "
                           f"AND type IN {_WATCHED} ORDER BY id", (cursor, top)).fetchall()
        for r in rows:
            data = json.loads(r["data"])
            if r["type"] == "line.missed":
                self._line_missed(con, data, r["ts"])
            else:
                self._call_ended(con, r["call_id"], data, r["ts"])
        con.execute("UPDATE missed_cursor SET event = ? WHERE id = 0", (top,))

    def _line_missed(self, con: sqlite3.Connection, data: dict, ts: float) -> None:
        number = data.get("caller_national")
        if number:  # the line rang from its first burst until RING_GONE_S after its last edge
            first_ring = ts - RING_GONE_S - (data.get("ringing_s") or 0.0)
            self._add(con, number, data.get("caller_area"), None, first_ring, "line_missed")

    def _call_ended(self, con: sqlite3.Connection, call_id: str, data: dict, ts: float) -> None:
        origin = data.get("origin")
        if isinstance(origin, dict) and ("missed" in origin or "voicemail" in origin):
            self._callback_ended(con, call_id, origin, data, ts)
        rec = con.execute(_CALL, (call_id,)).fetchone()
        if rec is None:
            return
        disposition = rec["disposition"]
        if rec["direction"] == "out":  # appliance.outbound: the customer's number is the caller_* columns'
            called = normalise(rec["called"], home_area=self.home_area) if rec["called"] else None
            number = rec["caller_national"] or (called.national if called is not None else None)
            if number and "answered" in (data.get("result"), disposition):
                self._resolve(con, number, "called_out", call_id, ts)
            return
        number = rec["caller_national"]
        if disposition in GOT_THROUGH:
            if number:
                self._resolve(con, number, "called_in", call_id, ts)
            return
        if disposition not in MISSED:
            return
        entry = self._add(con, number, rec["caller_area"], call_id, rec["start_ts"], disposition) if number \
            else None
        if disposition == "voicemail":
            left = con.execute("SELECT data FROM call_events WHERE call_id = ? AND type = 'voicemail.recorded' "
                               "ORDER BY id DESC LIMIT 1", (call_id,)).fetchone()
            if left is not None:  # a caller who left during the greeting left no message
                message = json.loads(left["data"])
                con.execute("INSERT OR REPLACE INTO voicemails (call_id, entry, caller, number, area, ts, seconds, "
                            "box, recording) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (call_id, entry, rec["caller"], number, rec["caller_area"], rec["start_ts"],
                             message.get("seconds"), message.get("box"), rec["recording"]))

    def _add(self, con: sqlite3.Connection, number: str, area: str | None, call_id: str | None, ts: float,
             reason: str) -> int:
        """One more missed call from ``number``: onto its open entry, or a new one. Returns the entry's id."""
        row = con.execute(f"SELECT id FROM missed WHERE number = ? AND {_OPEN_SQL} ORDER BY id DESC LIMIT 1",
                          (number,)).fetchone()
        vm = int(reason == "voicemail")
        if row is None:
            entry = con.execute("INSERT INTO missed (number, area, count, first_ts, last_ts, reason, voicemails, "
                                "state) VALUES (?, ?, 1, ?, ?, ?, ?, 'new')",
                                (number, area, ts, ts, reason, vm)).lastrowid
        else:
            entry = row["id"]
            con.execute("UPDATE missed SET count = count + 1, area = COALESCE(?, area), "
                        "first_ts = MIN(first_ts, ?), reason = CASE WHEN ? >= last_ts THEN ? ELSE reason END, "
                        "last_ts = MAX(last_ts, ?), voicemails = voicemails + ? WHERE id = ?",
                        (area, ts, ts, reason, ts, vm, entry))
        con.execute("INSERT INTO missed_calls (entry, call_id, ts, reason) VALUES (?, ?, ?, ?)",
                    (entry, call_id, ts, reason))
        return entry

    def _resolve(self, con: sqlite3.Connection, number: str, how: str, call_id: str, ts: float) -> None:
        """An answered call with ``number`` ended: its open entry is done."""
        con.execute(f"UPDATE missed SET state = 'done', resolution = ?, resolved_ts = ?, resolved_call = ? "
                    f"WHERE number = ? AND {_OPEN_SQL}", (how, ts, call_id, number))

    def _callback_ended(self, con: sqlite3.Connection, call_id: str, origin: dict, data: dict, ts: float) -> None:
        """A callback placed from the lists ended: done when answered, else failed with its result."""
        if "missed" in origin:
            entry = origin["missed"]
        else:
            vm = con.execute("SELECT entry FROM voicemails WHERE call_id = ?", (str(origin["voicemail"]),)).fetchone()
            entry = vm["entry"] if vm is not None else None
        row = con.execute("SELECT state, callback_call FROM missed WHERE id = ?", (entry,)).fetchone()
        if row is None or row["callback_call"] != call_id:
            return  # an older attempt, or a list entry that is gone
        result = data.get("result") or data.get("disposition") or "unknown"
        con.execute("UPDATE missed SET result = ? WHERE id = ?", (result, entry))
        if row["state"] != "calling_back":
            return  # closed by hand, or the customer got through meanwhile
        if result == "answered":
            con.execute("UPDATE missed SET state = 'done', resolution = 'callback', resolved_ts = ?, "
                        "resolved_call = ? WHERE id = ?", (ts, call_id, entry))
        else:
            con.execute("UPDATE missed SET state = 'failed' WHERE id = ?", (entry,))

    # --- the missed-call list ----------------------------------------------------------------------------

    def entries(self, con: sqlite3.Connection, state: str | None = None, since: float | None = None,
                limit: int = 100) -> list[dict]:
        """Entries, the latest missed call first; ``state`` one of ``STATES`` or "open" (new, calling back,
        failed); ``since``: last missed call at or after (epoch seconds)."""
        self.sync(con)
        where, args = [], []
        if state == "open":
            where.append(_OPEN_SQL)
        elif state is not None:
            where.append("state = ?")
            args.append(state)
        if since is not None:
            where.append("last_ts >= ?")
            args.append(since)
        sql = "SELECT * FROM missed" + (" WHERE " + " AND ".join(where) if where else "")
        rows = con.execute(sql + " ORDER BY last_ts DESC, id DESC LIMIT ?", (*args, int(limit))).fetchall()
        return self._entry_dicts(con, rows)

    def entry(self, con: sqlite3.Connection, entry: int) -> dict:
        self.sync(con)
        row = con.execute("SELECT * FROM missed WHERE id = ?", (entry,)).fetchone()
        if row is None:
            raise MissedError("not_found", f"missed_id: {entry} is not in the missed-call list")
        return self._entry_dicts(con, [row])[0]

    def _entry_dicts(self, con: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[dict]:
        calls: dict[int, list[dict]] = {r["id"]: [] for r in rows}
        if rows:
            marks = ", ".join("?" * len(rows))
            for c in con.execute(f"SELECT entry, call_id, ts, reason FROM missed_calls WHERE entry IN ({marks}) "
                                 "ORDER BY ts, rowid", tuple(calls)):
                calls[c["entry"]].append({"call_id": c["call_id"], "ts": _t(c["ts"]), "reason": c["reason"]})
        return [{"id": r["id"], "number": r["number"], "area": r["area"], "count": r["count"],
                 "first_ts": _t(r["first_ts"]), "last_ts": _t(r["last_ts"]), "reason": r["reason"],
                 "voicemails": r["voicemails"], "state": r["state"], "attempts": r["attempts"],
                 "result": r["result"], "callback_call_id": r["callback_call"], "callback_seat": r["callback_seat"],
                 "callback_ts": _t(r["callback_ts"]), "resolution": r["resolution"],
                 "resolved_ts": _t(r["resolved_ts"]), "resolved_call_id": r["resolved_call"],
                 "calls": calls[r["id"]]} for r in rows]

    def close(self, con: sqlite3.Connection, entry: int, ts: float) -> dict:
        """Close an open entry by hand: no callback needed."""
        state = self.entry(con, entry)["state"]
        if state not in OPEN:
            raise MissedError("conflict", f"missed call {entry} is already {state}")
        con.execute("UPDATE missed SET state = 'closed', resolution = 'closed', resolved_ts = ? WHERE id = ?",
                    (ts, entry))
        return self.entry(con, entry)

    def callback_target(self, con: sqlite3.Connection, entry: int) -> tuple[int, str]:
        """The entry and the number to call back; MissedError unless the entry is new or failed."""
        e = self.entry(con, entry)
        if e["state"] == "calling_back":
            raise MissedError("conflict", f"missed call {entry} is being called back (call {e['callback_call_id']})")
        if e["state"] not in OPEN:
            raise MissedError("conflict", f"missed call {entry} is {e['state']}; nothing to call back")
        return entry, e["number"]

    def callback_started(self, con: sqlite3.Connection, entry: int, call_id: str, seat: int, ts: float) -> dict:
        """``call_id`` is calling the entry's number back from ``seat``."""
        self.sync(con)
        con.execute("UPDATE missed SET state = 'calling_back', attempts = attempts + 1, callback_call = ?, "
                    "callback_seat = ?, callback_ts = ?, result = NULL WHERE id = ?", (call_id, seat, ts, entry))
        return self.entry(con, entry)

    # --- the voicemail list ---------------------------------------------------------------------------

    def messages(self, con: sqlite3.Connection, box: str | None = None, unheard: bool = False,
                 limit: int = 100) -> list[dict]:
        """Voicemail messages, the latest first; only ``box``'s, only those nobody has marked heard."""
        self.sync(con)
        where, args = [], []
        if box is not None:
            where.append("v.box = ?")
            args.append(box)
        if unheard:
            where.append("v.heard_ts IS NULL")
        sql = _MESSAGES + (" WHERE " + " AND ".join(where) if where else "")
        rows = con.execute(sql + " ORDER BY v.ts DESC, v.call_id DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [_message_dict(r) for r in rows]

    def message(self, con: sqlite3.Connection, call_id: str) -> dict:
        self.sync(con)
        row = con.execute(_MESSAGES + " WHERE v.call_id = ?", (call_id,)).fetchone()
        if row is None:
            raise MissedError("not_found", f"call_id: {call_id!r} left no voicemail message")
        return _message_dict(row)

    def heard(self, con: sqlite3.Connection, call_id: str, ts: float) -> dict:
        """Mark a message heard (the first time counts)."""
        self.message(con, call_id)
        con.execute("UPDATE voicemails SET heard_ts = COALESCE(heard_ts, ?) WHERE call_id = ?", (ts, call_id))
        return self.message(con, call_id)

    def voicemail_target(self, con: sqlite3.Connection, call_id: str) -> tuple[int, str]:
        """The entry of a message's caller and the number to call back."""
        m = self.message(con, call_id)
        if m["missed_id"] is None:
            raise MissedError("conflict", f"voicemail {call_id}: the caller's number was withheld; nobody to call")
        return self.callback_target(con, m["missed_id"])
