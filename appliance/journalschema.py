"""The journal's tables and the rows of a call record: columns, allowed values, the checks a record passes before
it is queued, and the SQL the writer thread runs (``appliance.journal``)."""

from __future__ import annotations

import math
import numbers
import sqlite3

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
    # fax: the call carried a fax (appliance.faxcalls), received or sent
    "disposition": ("answered", "abandoned", "ivr", "failed", "blocked", "transferred", "overflow", "voicemail",
                    "fax"),
    "ended_by": ("caller", "agent", "system"),
    "caller_kind": ("mobile", "landline", "service", "international", "unknown"),  # appliance.caller.KINDS
    # appliance.outbound.RESULTS; an outbound call's disposition is answered (result answered) or failed
    "result": ("answered", "busy", "no_answer", "vacant", "congestion", "rejected", "fax", "invalid", "failed"),
}

SCHEMA_SQL = """
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
INSERT_CALL = (f"INSERT OR REPLACE INTO calls ({', '.join(_COLS)}) "
                f"VALUES ({', '.join('?' * len(_COLS))})")
INSERT_EVENT = "INSERT INTO call_events (call_id, ts, type, data) VALUES (?, ?, ?, ?)"
INSERT_CALLER = (f"INSERT OR REPLACE INTO call_callers (call_id, {', '.join(CALLER_COLUMNS)}) "
                  f"VALUES (?{', ?' * len(CALLER_COLUMNS)})")
DELETE_CALLER = "DELETE FROM call_callers WHERE call_id = ?"
INSERT_OUTBOUND = (f"INSERT OR REPLACE INTO call_outbound (call_id, {', '.join(OUTBOUND_COLUMNS)}) "
                    f"VALUES (?{', ?' * len(OUTBOUND_COLUMNS)})")
DELETE_OUTBOUND = "DELETE FROM call_outbound WHERE call_id = ?"
SELECT_CALLS = (f"SELECT calls.*, k.call_id IS NOT NULL AS _has_caller, "
                 f"{', '.join('k.' + c for c in CALLER_COLUMNS)}, o.call_id IS NOT NULL AS _has_outbound, "
                 f"{', '.join('o.' + c for c in OUTBOUND_COLUMNS)} FROM calls LEFT JOIN call_callers k "
                 f"ON k.call_id = calls.call_id LEFT JOIN call_outbound o ON o.call_id = calls.call_id")

def validate_call(record: dict) -> tuple[tuple, tuple | None, tuple | None]:
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


def call_dict(r: sqlite3.Row) -> dict:
    d = dict(r)
    for flag, columns in (("_has_caller", CALLER_COLUMNS), ("_has_outbound", OUTBOUND_COLUMNS)):
        if not d.pop(flag):
            for key in columns:
                del d[key]
    return d


