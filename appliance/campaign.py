"""Progressive group calling (自动群呼): a list of numbers dialled at the pace of free agents, within allowed hours,
with retries per result and a do-not-call list, sans-I/O.

A part of ``CallCentre`` (through ``appliance.outbound``). A campaign takes the seats it names, the members of
its queue, or every seat. Progressive, agent first: whenever one of its agents is available (phone on hook, no
call, not in wrap-up), the hours allow it, a number is due and a trunk channel is spare, the agent is *reserved*:
their phone rings showing the number, exactly as for click-to-dial, and only once they pick up is the number
dialled, the agent listening to its progress. One call per free agent, so no customer ever answers to find
nobody there (no abandoned calls, unlike predictive dialling), at the price of the agent hearing the ringing.
Queued inbound calls go first: the pacing runs after the ACD has given free agents to waiting callers.

Each number is dialled until it is done: answered, or a result that is not retried (vacant, invalid, rejected,
fax), or a retried result (busy, no answer, congestion, failed) whose retries (``count``, each ``interval_s``
after the last attempt) are used up. A number ``appliance.caller.normalise`` cannot make dialable is ``invalid``
without a call; one on the campaign's do-not-call list (numbers or prefixes such as "1700*", as the screening
list takes them) is skipped (``dnc``); a number listed twice is dialled once (``duplicate``). An agent who lets a
campaign call ring out is not offered another for ``AGENT_REST_S`` (and counts a missed offer, as for the
queue's calls: ``missed_offers`` in a row make the agent busy). Pausing or stopping cancels the calls still
ringing an agent (their numbers wait again) and lets dialled calls finish; a paused campaign resumes, a
stopped one does not. A campaign whose numbers are all done is ``finished``.

Every attempt is a call record (direction out, ``campaign`` set) with its result, and a ``campaign.attempt``
event. The campaign's state is saved in the journal (``SaveCampaign``: at start, on stop, pause, resume and
finish, and at most every ``SAVE_S`` while it changes) and a running or paused campaign comes back after a
restart (``restore_campaigns``), a number that was being dialled then due again at once.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import re
from dataclasses import dataclass, field

from .caller import Screening, normalise
from .errors import ConfigError
from .flows import DAYS, is_open

RETRIABLE = ("busy", "no_answer", "congestion", "failed")  # vacant, invalid, rejected and fax are never retried
DEFAULT_RETRIES = {"busy": (2, 300.0), "no_answer": (2, 1800.0), "congestion": (3, 120.0), "failed": (1, 600.0)}
DEFAULT_HOURS = {day: ["09:00-21:00"] for day in DAYS}
ENTRY_STATES = ("pending", "dialling", "done", "dnc", "invalid", "duplicate")
STATES = ("running", "paused", "stopped", "finished")
MAX_NUMBERS = 10000
MAX_RETRIES = 10
SAVE_S = 5.0  # a changing campaign is saved at most this often
AGENT_REST_S = 30.0  # an agent who let a campaign call ring out is not offered another this long
RING_RANGE_S = (10, 120)
_NAME = re.compile(r"[A-Za-z0-9_\-\u4e00-\u9fff]{1,40}")
_SPAN = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")


@dataclass
class Entry:
    """One number of a campaign."""

    raw: str  # as given
    number: str | None  # national form to dial; None when invalid
    state: str = "pending"  # ENTRY_STATES
    attempts: int = 0
    retried: dict[str, int] = field(default_factory=dict)  # result -> retries made after it
    next_at: float = 0.0  # due from then (runtime clock), while pending
    result: str | None = None  # of the last attempt (invalid without one)
    cause: int | None = None
    call_id: str | None = None  # the call being made for it


def _check_hours(hours: object, holidays: object) -> tuple[dict, list]:
    if not isinstance(hours, dict) or not hours:
        raise ValueError(f"hours: expected {{day: [\"HH:MM-HH:MM\", ...]}} with days {', '.join(DAYS)}, got "
                         f"{hours!r}")
    for day, spans in hours.items():
        if day not in DAYS:
            raise ValueError(f"hours: day {day!r} is not one of {', '.join(DAYS)}")
        if not isinstance(spans, list):
            raise ValueError(f"hours.{day}: expected a list of \"HH:MM-HH:MM\", got {spans!r}")
        for span in spans:
            m = _SPAN.fullmatch(span) if isinstance(span, str) else None
            if m is None or (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
                raise ValueError(f"hours.{day}: {span!r} is not HH:MM-HH:MM with the start before the end")
    if not isinstance(holidays, (list, tuple)):
        raise ValueError(f"holidays: expected a list of dates YYYY-MM-DD, got {holidays!r}")
    for day in holidays:
        try:
            dt.date.fromisoformat(day)
        except (TypeError, ValueError):
            raise ValueError(f"holidays: {day!r} is not a date YYYY-MM-DD") from None
    return {d: list(s) for d, s in hours.items()}, list(holidays)


def _check_retries(retries: object) -> dict[str, tuple[int, float]]:
    if not isinstance(retries, dict):
        raise ValueError(f"retries: expected {{result: {{\"count\": N, \"interval_s\": S}}}}, got {retries!r}")
    out = dict(DEFAULT_RETRIES)
    for result, rule in retries.items():
        if result not in RETRIABLE:
            raise ValueError(f"retries: {result!r} is not retried; results that are: {', '.join(RETRIABLE)}")
        if not isinstance(rule, dict) or set(rule) - {"count", "interval_s"}:
            raise ValueError(f"retries.{result}: expected {{\"count\": N, \"interval_s\": S}}, got {rule!r}")
        count, interval = rule.get("count", out[result][0]), rule.get("interval_s", out[result][1])
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_RETRIES:
            raise ValueError(f"retries.{result}.count: {count!r} is not an integer 0..{MAX_RETRIES}")
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or not 10 <= interval <= 86400:
            raise ValueError(f"retries.{result}.interval_s: {interval!r} is not a number of seconds 10..86400")
        out[result] = (count, float(interval))
    return out


def _check_dnc(dnc: object, home_area: str) -> Screening:
    if not isinstance(dnc, (list, tuple)):
        raise ValueError(f"dnc: expected a list of numbers or prefixes (\"1700*\"), got {dnc!r}")
    try:
        return Screening(blacklist=list(dnc), home_area=home_area)
    except ConfigError as e:  # "screening.blacklist[3] ...": the same words for this list
        raise ValueError(str(e).replace("screening.blacklist", "dnc", 1)) from None


class Campaign:
    """A campaign's settings and numbers (checked on construction: ValueError naming the setting)."""

    def __init__(self, name: str, numbers: list[str], now: float, *, home_area: str, seats: list[int] | None = None,
                 queue: str | None = None, hours: dict | None = None, holidays: list[str] = (),
                 retries: dict | None = None, dnc: list[str] = (), ring_s: float = 40.0) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"name: {name!r} is not 1-40 letters, digits, '-', '_' or Chinese characters")
        if not isinstance(numbers, (list, tuple)) or not 1 <= len(numbers) <= MAX_NUMBERS:
            raise ValueError(f"numbers: expected a list of 1..{MAX_NUMBERS} numbers, got "
                             f"{len(numbers) if isinstance(numbers, (list, tuple)) else numbers!r}")
        if not isinstance(ring_s, (int, float)) or not RING_RANGE_S[0] <= ring_s <= RING_RANGE_S[1]:
            raise ValueError(f"ring_s: {ring_s!r} is not a number of seconds {RING_RANGE_S[0]}..{RING_RANGE_S[1]}")
        self.name, self.seats, self.queue, self.ring_s = name, list(seats) if seats else None, queue, float(ring_s)
        self.hours, self.holidays = _check_hours(DEFAULT_HOURS if hours is None else hours, holidays)
        self.retries = _check_retries(retries or {})
        self.dnc = list(dnc)
        self.screen = _check_dnc(self.dnc, home_area)
        self.home_area = home_area
        self.state = "running"
        self.entries: list[Entry] = []
        self._heap: list[tuple[float, int]] = []  # (due, index) of every pending number, and stale ones
        self._dialling: set[int] = set()
        self.rest: dict[int, float] = {}  # seat -> not offered a call before then
        self.dirty, self.saved_at, self.check_at = True, -math.inf, None
        seen: set[str] = set()
        for i, raw in enumerate(numbers):
            if not isinstance(raw, str):
                raise ValueError(f"numbers[{i}]: {raw!r} is not a string")
            n = normalise(raw, home_area=home_area)
            if n is None or n.kind == "unknown":
                self.entries.append(Entry(raw, None, "invalid", result="invalid"))
            elif n.national in seen:
                self.entries.append(Entry(raw, n.national, "duplicate"))
            else:
                seen.add(n.national)
                blocked = self.screen.check(n) == "blocked"
                self.entries.append(Entry(raw, n.national, "dnc" if blocked else "pending", next_at=now))
        for i, e in enumerate(self.entries):
            if e.state == "pending":
                heapq.heappush(self._heap, (e.next_at, i))

    # --- numbers ------------------------------------------------------------------------------------

    def _clean(self) -> None:
        heap, entries = self._heap, self.entries
        while heap and (entries[heap[0][1]].state != "pending" or entries[heap[0][1]].next_at != heap[0][0]):
            heapq.heappop(heap)

    def next_due(self) -> float | None:
        """When the next pending number is due (runtime clock), or None when none is pending."""
        self._clean()
        return self._heap[0][0] if self._heap else None

    def take(self, now: float) -> int | None:
        """The index of a number due at ``now`` (the earliest due first), or None."""
        due = self.next_due()
        if due is None or due > now:
            return None
        return heapq.heappop(self._heap)[1]

    def dial(self, i: int, call_id: str) -> None:
        """Number ``i`` (taken) is being called by ``call_id``."""
        e = self.entries[i]
        e.state, e.call_id, self.dirty = "dialling", call_id, True
        self._dialling.add(i)

    def wait(self, i: int, at: float) -> None:
        """Number ``i`` is pending again, due at ``at``."""
        e = self.entries[i]
        e.state, e.next_at, e.call_id = "pending", at, None
        self._dialling.discard(i)
        heapq.heappush(self._heap, (at, i))
        self.dirty = True

    def attempted(self, i: int, result: str, cause: int | None, now: float) -> float | None:
        """Number ``i``'s attempt ended with ``result``: retried (returns when) or done (None)."""
        e = self.entries[i]
        e.attempts, e.result, e.cause, e.call_id = e.attempts + 1, result, cause, None
        self._dialling.discard(i)
        self.dirty = True
        count, interval = self.retries.get(result, (0, 0.0))
        if result in RETRIABLE and e.retried.get(result, 0) < count:
            e.retried[result] = e.retried.get(result, 0) + 1
            self.wait(i, now + interval)
            return now + interval
        e.state = "done"
        return None

    def all_done(self) -> bool:
        """No number is pending or being called."""
        return not self._dialling and self.next_due() is None

    def is_open(self, when: dt.datetime) -> bool:
        return is_open({"schedule": self.hours, "holidays": self.holidays}, when)

    # --- views and storage ----------------------------------------------------------------------------

    def summary(self) -> dict:
        states = {s: 0 for s in ENTRY_STATES}
        results: dict[str, int] = {}
        for e in self.entries:
            states[e.state] += 1
            if e.result is not None:
                results[e.result] = results.get(e.result, 0) + 1
        return {"name": self.name, "state": self.state, "numbers": len(self.entries), "entries": states,
                "results": results, "attempts": sum(e.attempts for e in self.entries), "seats": self.seats,
                "queue": self.queue, "hours": self.hours, "holidays": self.holidays, "ring_s": self.ring_s,
                "retries": {r: {"count": c, "interval_s": s} for r, (c, s) in self.retries.items()},
                "dnc": len(self.dnc)}

    def numbers(self, epoch_offset: float) -> list[dict]:
        return [{"number": e.raw, "national": e.number, "state": e.state, "attempts": e.attempts,
                 "result": e.result, "cause": e.cause, "call_id": e.call_id,
                 "next_ts": round(e.next_at + epoch_offset, 3) if e.state == "pending" else None}
                for e in self.entries]

    def to_data(self, epoch_offset: float) -> dict:
        """What the journal keeps of the campaign (times as epoch seconds)."""
        return {"state": self.state, "seats": self.seats, "queue": self.queue, "hours": self.hours,
                "holidays": self.holidays, "dnc": self.dnc, "ring_s": self.ring_s,
                "retries": {r: [c, s] for r, (c, s) in self.retries.items()},
                "entries": [[e.raw, e.number, e.state, e.attempts, dict(e.retried),
                             e.next_at + epoch_offset if e.state in ("pending", "dialling") else None,
                             e.result, e.cause] for e in self.entries]}

    @classmethod
    def from_data(cls, name: str, data: dict, now: float, epoch_offset: float, home_area: str) -> "Campaign":
        """A campaign as ``to_data`` saved it; numbers being dialled then are due at ``now``."""
        camp = cls(name, [e[0] for e in data["entries"]], now, home_area=home_area, seats=data["seats"],
                   queue=data["queue"], hours=data["hours"], holidays=data["holidays"],
                   retries={r: {"count": c, "interval_s": s} for r, (c, s) in data["retries"].items()},
                   dnc=data["dnc"], ring_s=data["ring_s"])
        camp.state, camp._heap = data["state"], []
        for i, (raw, number, state, attempts, retried, next_ts, result, cause) in enumerate(data["entries"]):
            if state not in ENTRY_STATES:
                raise ValueError(f"entries[{i}]: state {state!r} is not one of {ENTRY_STATES}")
            camp.entries[i] = Entry(raw, number, state, attempts, dict(retried), 0.0, result, cause)
            if state in ("pending", "dialling"):  # one being dialled when the core stopped: due again now
                camp.wait(i, now if state == "dialling" or next_ts is None else next_ts - epoch_offset)
        return camp
