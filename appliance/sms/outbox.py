"""The SMS outbox: a durable queue in SQLite (WAL) that every outgoing SMS goes through, sent at most once.

States: ``queued -> sending -> sent -> delivered | failed``; ``sending -> queued`` (a retry or an unplug),
``sending -> failed`` (refused for good), ``sending -> unknown`` (see 4). Every call takes ``now`` (wall-clock
seconds, from the caller); nothing here reads a clock.

Exactly-once rules
------------------
1. ``claim(id)`` is one conditional UPDATE (``state = 'queued'``): of any number of claimers, on any
   connection, exactly one gets True; only the winner may write to the transport.
2. The sender calls ``handed_over(id)`` (committed, fsynced) *before* it writes the first byte of the message
   to the transport (AT+CMGS, SMGP/CMPP Submit). So a message never handed over certainly never reached the
   transport, and may be queued again without using a try.
3. ``sent(id, transport_ref)`` records the transport's synchronous acceptance (the modem's +CMGS MR, the
   gateway's Submit_Resp Msg_Id); ``failed_try`` records a refusal (with ``retryable`` from the transport:
   a refusal means the message was not taken, so a retry cannot duplicate it).
4. ``recover(now)``, at start-up, decides what a crash left in ``sending``:
   not handed over -> ``queued`` (never reached the transport; no try used);
   handed over but neither accepted nor refused -> ``unknown``: the transport may or may not have it, so it is
   never re-sent blindly. A late ``sent`` (its ref, then its delivery report) still resolves it; otherwise the
   API shows it and a human decides with ``resolve(id, resend, now)``. ``sent`` and later are final for sending.
5. ``transport_down(via)`` (a modem unplugged, a gateway link lost) applies the same rule at once to that
   transport's messages in ``sending``; the sender may still report ``sent`` for an ``unknown`` one. An I/O
   error after hand-over is not a refusal: the sender reports it with ``transport_down``, not ``failed_try``.
6. ``delivered(transport_ref, status)`` matches a delivery report to the message with that ref (sent or
   unknown); a report for a ref nobody has is logged and answered None, never an error.

Rate limit: ``due(now, via, limit)`` hands out at most as many messages as the transport's token bucket
holds (``rates`` messages a minute, a bucket of at most ``burst`` tokens, one token spent per message handed
out). The bucket's tokens are kept in the file, so a restart does not burst. The caller is to claim what
``due`` hands out: a token is not given back for a message not claimed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import sqlite3
import uuid
from typing import Any

from ..apischema import CommandError
from ..errors import ConfigError, ProtocolError
from .pdu import split_text
from .sqlfile import SqlFile, bad as _bad, check_now as _check_now

__all__ = ["Message", "Outbox", "STATES", "VIAS"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
VIAS = ("modem", "smgp", "cmpp", "http")
STATES = ("queued", "sending", "sent", "delivered", "failed", "unknown")
# delivery-report statuses that mean delivered: CMPP/SMGP Stat "DELIVRD", TP-ST 0 (received by the SME)
DELIVERED_STATUSES = ("DELIVRD", "DELIVERED", "0")
_NUMBER, MAX_ID = re.compile(r"\+?[0-9]{3,20}"), 64

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, to_number TEXT NOT NULL, text TEXT NOT NULL, via TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT, tries INTEGER NOT NULL DEFAULT 0, next_try_at REAL, created_at REAL NOT NULL, claimed_at REAL,
    handed_over_at REAL, sent_at REAL, done_at REAL, parts INTEGER NOT NULL, transport_ref TEXT,
    campaign_id TEXT, origin TEXT, seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (via, state, next_try_at);
CREATE INDEX IF NOT EXISTS messages_ref ON messages (transport_ref);
CREATE INDEX IF NOT EXISTS messages_state ON messages (state, seq);
CREATE TABLE IF NOT EXISTS rate_buckets (
    via TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at REAL NOT NULL
);
"""


# one row of the outbox; times are wall-clock seconds, None until they happen; seq orders messages as added
Message = dataclasses.make_dataclass("Message", [
    ("id", str), ("to_number", str), ("text", str), ("via", str), ("state", str), ("reason", "str | None"),
    ("tries", int), ("next_try_at", "float | None"), ("created_at", float), ("claimed_at", "float | None"),
    ("handed_over_at", "float | None"), ("sent_at", "float | None"), ("done_at", "float | None"), ("parts", int),
    ("transport_ref", "str | None"), ("campaign_id", "str | None"), ("origin", "str | None"), ("seq", int),
], frozen=True)
Message.__module__ = __name__
_FIELDS = tuple(f.name for f in dataclasses.fields(Message))




def _check_via(via: Any) -> str:
    if via not in VIAS:
        raise _bad(f"via: {via!r} is not one of {', '.join(VIAS)}")
    return via


class Outbox(SqlFile):
    """Outgoing SMS in their own SQLite file (WAL, synchronous FULL: a committed state survives a power cut).

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created with its schema if missing.
    rates : dict[str, float], optional
        Messages a minute per transport (``VIAS``); a transport not named is not limited.
    burst : dict[str, float], optional
        Most tokens a transport's bucket holds; default its rate (a minute's worth), at least 1.
    backoff_s, backoff_cap_s : float
        Wait after the first failed try, doubled after each further one, never more than the cap.
    max_tries : int
        Failed tries after which a message is ``failed``.
    """

    def __init__(self, path: str | os.PathLike, rates: dict[str, float] | None = None,
                 burst: dict[str, float] | None = None, backoff_s: float = 30.0, backoff_cap_s: float = 3600.0,
                 max_tries: int = 5) -> None:
        self.rates, self.burst = self._check_rates(rates, burst)
        if not backoff_s > 0 or not backoff_cap_s >= backoff_s:
            raise ConfigError(f"sms.outbox backoff_s={backoff_s!r}, backoff_cap_s={backoff_cap_s!r}: "
                              "need 0 < backoff_s <= backoff_cap_s")
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise ConfigError(f"sms.outbox max_tries={max_tries!r}: must be an integer >= 1")
        self.backoff_s, self.backoff_cap_s, self.max_tries = float(backoff_s), float(backoff_cap_s), max_tries
        super().__init__(path, "sms outbox", SCHEMA_SQL, SCHEMA_VERSION)

    @staticmethod
    def _check_rates(rates, burst) -> tuple[dict[str, float], dict[str, float]]:
        rates, burst = dict(rates or {}), dict(burst or {})
        for name, table in (("rates", rates), ("burst", burst)):
            for via, value in table.items():
                if via not in VIAS:
                    raise ConfigError(f"sms.outbox {name}: transport {via!r} is not one of {', '.join(VIAS)}")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                    raise ConfigError(f"sms.outbox {name}.{via}={value!r}: must be a number > 0")
        return ({v: float(r) for v, r in rates.items()},
                {v: max(1.0, float(burst.get(v, r))) for v, r in rates.items()})

    def _row(self, con: sqlite3.Connection, msg_id: str) -> Message | None:
        r = con.execute(f"SELECT {', '.join(_FIELDS)} FROM messages WHERE id = ?", (msg_id,)).fetchone()
        return Message(*r) if r else None

    def _must(self, con: sqlite3.Connection, msg_id: Any) -> Message:
        m = self._row(con, msg_id) if isinstance(msg_id, str) else None
        if m is None:
            raise CommandError("not_found", f"msg_id: {msg_id!r} is not in the sms outbox")
        return m

    def _move(self, msg_id: str, allowed: tuple[str, ...], what: str, sql: str, args: tuple) -> Message:
        """Set ``sql`` on message ``msg_id`` if its state is one of ``allowed``; the message after."""
        def fn(con):
            m = self._must(con, msg_id)
            if m.state not in allowed:
                raise CommandError("conflict", f"sms {msg_id}: cannot {what} a message that is {m.state}")
            con.execute(f"UPDATE messages SET {sql} WHERE id = ?", (*args, msg_id))
            return self._row(con, msg_id)
        return self._write(fn)

    def add(self, to: str, text: str, via: str, now: float, *, msg_id: str | None = None,
            origin: str | None = None, campaign_id: str | None = None) -> str:
        """Queue one SMS; its id. Adding again with the same ``msg_id`` and the same message returns that id
        (a caller retrying after a crash queues nothing twice); with a different message it is a conflict."""
        if not isinstance(to, str) or not _NUMBER.fullmatch(to):
            raise _bad(f"to: {to!r} must be 3 to 20 digits, optionally after '+'")
        if not isinstance(text, str) or not text:
            raise _bad(f"text: {text!r} must be a non-empty string")
        try:
            parts = len(split_text(text)[1])
        except ProtocolError as e:
            raise _bad(f"text: too long ({len(text)} characters): {e}") from None
        _check_via(via)
        now = _check_now(now)
        if msg_id is None:
            msg_id = uuid.uuid4().hex
        elif not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_ID:
            raise _bad(f"msg_id: {msg_id!r} must be a string of 1 to {MAX_ID} characters")
        for name, value in (("origin", origin), ("campaign_id", campaign_id)):
            if value is not None and not isinstance(value, str):
                raise _bad(f"{name}: {value!r} must be a string or None")
        def fn(con):
            old = self._row(con, msg_id)
            if old is not None:
                if (old.to_number, old.text, old.via) != (to, text, via):
                    raise CommandError("conflict", f"msg_id: {msg_id!r} is already used by another message")
                return msg_id
            seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages").fetchone()[0]
            con.execute("INSERT INTO messages (id, to_number, text, via, state, tries, next_try_at, created_at, "
                        "parts, campaign_id, origin, seq) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?)",
                        (msg_id, to, text, via, now, now, parts, campaign_id, origin, seq))
            return msg_id
        return self._write(fn)

    def due(self, now: float, via: str, limit: int = 10) -> list[Message]:
        """Queued messages of transport ``via`` whose time has come, oldest first, at most ``limit`` and at most
        as many as the rate limit allows now (each one spends a token)."""
        now, via = _check_now(now), _check_via(via)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise _bad(f"limit: {limit!r} must be an integer >= 0")
        def fn(con):
            n, bucket = limit, None
            if via in self.rates:
                bucket = self._refill(con, via, now)
                n = min(n, int(bucket + 1e-9))
            rows = con.execute(f"SELECT {', '.join(_FIELDS)} FROM messages WHERE via = ? AND state = 'queued' "
                               "AND next_try_at <= ? ORDER BY created_at, seq LIMIT ?", (via, now, n)).fetchall()
            if bucket is not None:
                con.execute("UPDATE rate_buckets SET tokens = ? WHERE via = ?", (bucket - len(rows), via))
            return [Message(*r) for r in rows]
        return self._write(fn)

    def next_due(self, via: str) -> float | None:
        """When the earliest queued message of ``via`` is due (wall seconds), None when none is queued; a read,
        so a sender can look every pass without a write (``due`` writes the rate bucket)."""
        via = _check_via(via)
        with self._lock:
            return self._con.execute("SELECT MIN(next_try_at) FROM messages WHERE via = ? AND state = 'queued'",
                                     (via,)).fetchone()[0]

    def _refill(self, con: sqlite3.Connection, via: str, now: float) -> float:
        """The bucket's tokens at ``now`` (a new bucket starts full), stored with ``now``."""
        cap, per_s = self.burst[via], self.rates[via] / 60.0
        r = con.execute("SELECT tokens, updated_at FROM rate_buckets WHERE via = ?", (via,)).fetchone()
        if r is None:
            tokens, at = cap, now
        else:  # a clock stepped back adds nothing, and the stored time does not go back with it
            tokens, at = min(cap, r[0] + max(0.0, now - r[1]) * per_s), max(now, r[1])
        con.execute("INSERT OR REPLACE INTO rate_buckets (via, tokens, updated_at) VALUES (?, ?, ?)",
                    (via, tokens, at))
        return tokens

    def claim(self, msg_id: str, now: float) -> bool:
        """Move a queued message to ``sending``; True for the one claimer that did it, False for the others."""
        now = _check_now(now)
        with self._lock:
            cur = self._con.execute("UPDATE messages SET state = 'sending', claimed_at = ?, handed_over_at = NULL "
                                    "WHERE id = ? AND state = 'queued'", (now, msg_id))
        return cur.rowcount == 1

    def handed_over(self, msg_id: str, now: float) -> Message:
        """Record, before the first byte goes to the transport, that this message is about to reach it."""
        return self._move(msg_id, ("sending",), "hand over", "handed_over_at = ?", (_check_now(now),))

    def sent(self, msg_id: str, transport_ref: str, now: float) -> Message:
        """The transport accepted the message and gave ``transport_ref`` (MR, Msg_Id) for its delivery report."""
        now = _check_now(now)
        if not isinstance(transport_ref, str) or not transport_ref:
            raise _bad(f"transport_ref: {transport_ref!r} must be a non-empty string")
        return self._move(msg_id, ("sending", "unknown"), "mark sent",
                          "state = 'sent', transport_ref = ?, sent_at = ?, reason = NULL", (transport_ref, now))

    def failed_try(self, msg_id: str, reason: str, now: float, retryable: bool = True) -> Message:
        """The transport refused the message: queued again after the backoff, or ``failed`` when not
        ``retryable`` or after ``max_tries`` failed tries."""
        now = _check_now(now)
        if not isinstance(reason, str) or not reason:
            raise _bad(f"reason: {reason!r} must be a non-empty string")
        def fn(con):
            m = self._must(con, msg_id)
            if m.state != "sending":
                raise CommandError("conflict", f"sms {msg_id}: cannot fail a try of a message that is {m.state}")
            tries = m.tries + 1
            if retryable and tries < self.max_tries:
                wait = min(self.backoff_cap_s, self.backoff_s * 2.0 ** (tries - 1))
                con.execute("UPDATE messages SET state = 'queued', tries = ?, reason = ?, next_try_at = ?, claimed_at "
                            "= NULL, handed_over_at = NULL WHERE id = ?", (tries, reason, now + wait, msg_id))
            else:
                why = reason if not retryable else f"{reason} (after {tries} tries)"
                con.execute("UPDATE messages SET state = 'failed', tries = ?, reason = ?, next_try_at = NULL, "
                            "done_at = ? WHERE id = ?", (tries, why, now, msg_id))
            return self._row(con, msg_id)
        return self._write(fn)

    def delivered(self, transport_ref: str, status: str, now: float, via: str | None = None,
                  ok: bool | None = None) -> Message | None:
        """Match a delivery report: its message ``delivered``, or ``failed`` with the report's status as reason;
        None (and a log line) for a ref no message has. A repeated report leaves a finished message as it is.
        ``ok``: whether the report means delivered, as the transport read it (its own status words); None
        reads ``status`` against ``DELIVERED_STATUSES``."""
        now = _check_now(now)
        if via is not None:
            _check_via(via)
        status = str(status)
        def fn(con):
            sql, args = "SELECT id FROM messages WHERE transport_ref = ?", [transport_ref]
            if via is not None:
                sql, args = sql + " AND via = ?", [*args, via]
            # a ref reused (a modem's TP-MR wraps at 256): the latest message still waiting for its report has it
            rows = con.execute(sql + " ORDER BY state IN ('sent', 'unknown') DESC, seq DESC", args).fetchall()
            if not rows:
                return None
            m = self._row(con, rows[0][0])
            if m.state in ("sent", "unknown"):
                good = status.upper() in DELIVERED_STATUSES if ok is None else bool(ok)
                con.execute("UPDATE messages SET state = ?, reason = ?, done_at = ? WHERE id = ?",
                            ("delivered" if good else "failed", None if good else f"delivery report: {status}", now,
                             m.id))
                m = self._row(con, m.id)
            return m
        m = self._write(fn)
        if m is None:
            log.warning("sms delivery report for unknown transport ref %r (status %r)", transport_ref, status)
        return m

    def _settle_sending(self, con: sqlite3.Connection, now: float, why: str, via: str | None) -> dict[str, list[str]]:
        cond, args = ("state = 'sending'", []) if via is None else ("state = 'sending' AND via = ?", [via])
        rows = con.execute(f"SELECT id, handed_over_at FROM messages WHERE {cond} ORDER BY seq", args).fetchall()
        out = {"requeued": [i for i, at in rows if at is None], "unknown": [i for i, at in rows if at is not None]}
        con.execute(f"UPDATE messages SET state = 'queued', claimed_at = NULL, next_try_at = MIN(next_try_at, ?) "
                    f"WHERE {cond} AND handed_over_at IS NULL", [now, *args])
        con.execute(f"UPDATE messages SET state = 'unknown', reason = ? WHERE {cond} AND handed_over_at IS NOT NULL",
                    [f"{why}: handed over, no answer from the transport", *args])
        return out

    def recover(self, now: float) -> dict[str, list[str]]:
        """At start-up: messages left in ``sending`` go back to ``queued`` (not handed over) or to ``unknown``
        (handed over, no answer); the ids of each."""
        now = _check_now(now)
        out = self._write(lambda con: self._settle_sending(con, now, "restart", None))
        for msg_id in out["unknown"]:
            log.warning("sms %s: handed over before a restart, outcome unknown; not sent again", msg_id)
        return out

    def transport_down(self, via: str, now: float) -> dict[str, list[str]]:
        """Transport ``via`` is gone: its claimed messages not handed over are queued again (no try used),
        those handed over become ``unknown``; the ids of each."""
        now, via = _check_now(now), _check_via(via)
        return self._write(lambda con: self._settle_sending(con, now, f"{via} down", via))

    def release(self, msg_id: str, reason: str, now: float) -> Message:
        """The transport says nothing of the message left it (``NotSent``): ``queued`` again, due now, no try
        used. Also from ``unknown``: a transport's Down may have come first."""
        return self._move(msg_id, ("sending", "unknown"), "release", "state = 'queued', claimed_at = NULL, "
                          "handed_over_at = NULL, next_try_at = ?, reason = ?", (_check_now(now), reason))

    def uncertain(self, msg_id: str, reason: str, now: float) -> Message:
        """The transport cannot say whether the message went (``Uncertain``): ``unknown``, never sent again by
        itself (rule 4 decides the same at a restart)."""
        _check_now(now)
        return self._move(msg_id, ("sending",), "mark unknown", "state = 'unknown', reason = ?", (reason,))

    def withdraw(self, number: str, reason: str, now: float) -> list[str]:
        """Campaign messages to ``number`` not yet handed out become ``failed`` with ``reason`` (an opt-out
        reply); their ids. Messages of other origins are left alone."""
        now = _check_now(now)
        def fn(con):
            ids = [r[0] for r in con.execute("SELECT id FROM messages WHERE to_number = ? AND state = 'queued' AND "
                                             "campaign_id IS NOT NULL ORDER BY seq", (number,))]
            con.executemany("UPDATE messages SET state = 'failed', reason = ?, done_at = ?, next_try_at = NULL "
                            "WHERE id = ?", [(reason, now, i) for i in ids])
            return ids
        return self._write(fn)

    def pending(self, campaign_id: str) -> int:
        """Messages of a campaign still ``queued`` or ``sending``: how far the outbox is behind it."""
        with self._lock:
            return self._con.execute("SELECT COUNT(*) FROM messages WHERE campaign_id = ? AND state IN "
                                     "('queued', 'sending')", (campaign_id,)).fetchone()[0]

    def ready(self, via: str, now: float) -> bool:
        """Whether ``due(now, via)`` would hand out a message: one is due and the rate allows one now. A read:
        a sender looks every pass without writing (``due`` stores the rate bucket)."""
        now, via = _check_now(now), _check_via(via)
        with self._lock:
            due = self._con.execute("SELECT MIN(next_try_at) FROM messages WHERE via = ? AND state = 'queued'",
                                    (via,)).fetchone()[0]
            if due is None or due > now:
                return False
            if via not in self.rates:
                return True
            r = self._con.execute("SELECT tokens, updated_at FROM rate_buckets WHERE via = ?", (via,)).fetchone()
        if r is None:
            return True  # a new bucket starts full
        tokens = min(self.burst[via], r[0] + max(0.0, now - r[1]) * self.rates[via] / 60.0)
        return tokens + 1e-9 >= 1.0

    def resolve(self, msg_id: str, resend: bool, now: float) -> Message:
        """A human's decision on an ``unknown`` message: send it again (``queued``) or give it up (``failed``)."""
        now = _check_now(now)
        if resend:
            return self._move(msg_id, ("unknown",), "resend", "state = 'queued', next_try_at = ?, claimed_at = NULL, "
                              "handed_over_at = NULL, reason = 'resent by hand'", (now,))
        return self._move(msg_id, ("unknown",), "give up", "state = 'failed', done_at = ?, reason = 'given up by "
                          "hand: outcome unknown'", (now,))

    def get(self, msg_id: str) -> Message:
        with self._lock:
            return self._must(self._con, msg_id)

    def list(self, state: str | None = None, limit: int = 100, offset: int = 0) -> list[Message]:
        """Messages, the newest first, optionally of one state."""
        if state is not None and state not in STATES:
            raise _bad(f"state: {state!r} is not one of {', '.join(STATES)}")
        for name, value in (("limit", limit), ("offset", offset)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(f"{name}: {value!r} must be an integer >= 0")
        where, args = ("WHERE state = ?", [state]) if state else ("", [])
        with self._lock:
            rows = self._con.execute(f"SELECT {', '.join(_FIELDS)} FROM messages {where} ORDER BY seq DESC "
                                     "LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [Message(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Messages in each state (every state named, 0 when none)."""
        with self._lock:
            rows = self._con.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
        return {s: 0 for s in STATES} | dict(rows)
