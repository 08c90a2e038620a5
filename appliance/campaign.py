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

from .actions import Action, LogEvent, Publish, SaveCampaign
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


class Campaigns:
    """The campaigns of a ``CallCentre`` (a part of ``appliance.outbound.Outbound``)."""

    def _init_campaigns(self) -> None:
        self.campaigns: dict[str, Campaign] = {}  # by name, in start order
        self._campaign_now = -math.inf  # the pacing's last look

    def _epoch_offset(self, now: float) -> float:
        return self.wall(now).timestamp() - now

    def _campaign(self, name: str) -> Campaign:
        camp = self.campaigns.get(name)
        if camp is None:
            raise ValueError(f"name: no campaign {name!r}; campaigns: {', '.join(self.campaigns) or 'none'}")
        return camp

    # --- commands ---------------------------------------------------------------------------------------

    def start_campaign(self, name: str, numbers: list[str], now: float, *, seats: list[int] | None = None,
                       queue: str | None = None, **settings) -> tuple[dict, list[Action]]:
        """Start a campaign (ValueError naming the bad setting; ``settings``: hours, holidays, retries, dnc, ring_s
        as ``Campaign`` takes them); its status and the actions."""
        self.check_campaign(name, seats, queue)
        return self.add_campaign(Campaign(name, numbers, now, home_area=self.area_code, seats=seats, queue=queue,
                                          **settings), now)

    def check_campaign(self, name: str, seats: list[int] | None, queue: str | None) -> None:
        """What a new campaign's settings must agree with in the centre (ValueError naming the setting): its name
        free, its seats and queue configured. ``Campaign`` checks the rest, and normalising many numbers takes a
        while: the control API builds it off the loop, between this check and ``add_campaign``."""
        old = self.campaigns.get(name)
        if old is not None and old.state in ("running", "paused"):
            raise ValueError(f"name: campaign {name!r} is {old.state}; stop it first or choose another name")
        for seat in seats or ():
            if seat not in self.acd.by_seat:
                raise ValueError(f"seats: {seat!r} is not a configured seat")
        if queue is not None and queue not in self.queue_cfg:
            raise ValueError(f"queue: {queue!r} is not a queue; queues: {', '.join(self.queue_cfg)}")

    def add_campaign(self, camp: Campaign, now: float) -> tuple[dict, list[Action]]:
        """Run ``camp`` (made for this centre's area code); its status and the actions."""
        name = camp.name
        self.check_campaign(name, camp.seats, camp.queue)
        self.campaigns.pop(name, None)
        self.campaigns[name] = camp
        info = {"campaign": name, **{k: v for k, v in camp.summary()["entries"].items() if v}}
        out = [LogEvent("", "campaign.started", info), Publish("campaign.started", info), self._save(camp, now)]
        return self.campaign_status(now, name), out + self._campaigns_due(now)  # the free agents' first calls now

    def stop_campaign(self, name: str, now: float, *, pause: bool = False) -> list[Action]:
        """Stop (for good) or pause a running or paused campaign: calls still ringing an agent are cancelled."""
        camp = self._campaign(name)
        if camp.state not in ("running", "paused") or (pause and camp.state == "paused"):
            raise ValueError(f"name: campaign {name!r} is {camp.state}")
        camp.state = "paused" if pause else "stopped"
        out: list[Action] = []
        for call in [c for c in self.by_id.values() if getattr(c, "campaign", None) == name and c.state == "ringing"]:
            out += self._end(call, now, "failed", "system", cause=None, reason=f"campaign {camp.state}")
        info = {"campaign": name, "state": camp.state}
        return out + [LogEvent("", "campaign.state", info), Publish("campaign.state", info), self._save(camp, now)]

    def resume_campaign(self, name: str, now: float) -> list[Action]:
        camp = self._campaign(name)
        if camp.state != "paused":
            raise ValueError(f"name: campaign {name!r} is {camp.state}; only a paused one resumes")
        camp.state = "running"
        info = {"campaign": name, "state": "running"}
        return [LogEvent("", "campaign.state", info), Publish("campaign.state", info), self._save(camp, now),
                *self._campaigns_due(now)]

    def campaign_status(self, now: float, name: str | None = None, numbers: bool = False) -> dict:
        """One campaign's status (with each number's if ``numbers``), or all of them under ``campaigns``."""
        off = self._epoch_offset(now)

        def one(camp: Campaign) -> dict:
            s = camp.summary()
            s["open"] = camp.is_open(self.wall(now))
            s["calls"] = [c.call_id for c in self.by_id.values() if getattr(c, "campaign", None) == camp.name]
            if numbers:
                s["list"] = camp.numbers(off)
            return s
        if name is not None:
            return one(self._campaign(name))
        return {"campaigns": [one(c) for c in self.campaigns.values()]}

    def restore_campaigns(self, saved: list[dict], now: float) -> list[Action]:
        """Bring back the running and paused campaigns the journal saved (``Journal.campaigns``); a campaign that
        cannot be read back is left out with a ``campaign.restore_failed`` event."""
        off = self._epoch_offset(now)
        out: list[Action] = []
        for item in saved:
            name = item.get("name")
            if item.get("state") not in ("running", "paused") or name in self.campaigns:
                continue
            try:
                data = dict(item)
                data["seats"] = [s for s in data["seats"] if s in self.acd.by_seat] or None \
                    if data["seats"] else None
                if data["queue"] is not None and data["queue"] not in self.queue_cfg:
                    data["queue"] = None
                camp = Campaign.from_data(name, data, now, off, self.area_code)
            except (KeyError, TypeError, ValueError) as e:
                out.append(LogEvent("", "campaign.restore_failed", {"campaign": name, "error": str(e)}))
                continue
            camp.dirty = False
            self.campaigns[name] = camp
            out.append(LogEvent("", "campaign.restored", {"campaign": name, "state": camp.state,
                                                          "pending": camp.summary()["entries"]["pending"]}))
        return out

    # --- pacing -------------------------------------------------------------------------------------------

    def _campaign_agents(self, camp: Campaign, now: float) -> list:
        """The campaign's agents free for a call now, longest idle first."""
        if camp.seats is not None:
            pool = [self.acd.by_seat[s] for s in camp.seats if s in self.acd.by_seat]
        elif camp.queue is not None:
            pool = [a for a in self.acd.agents if a.skill_in(camp.queue) is not None]
        else:
            pool = list(self.acd.agents)
        free = [a for a in pool if a.state == "available" and a.resume is None and a.call_id is None
                and a.wrap_until is None and camp.rest.get(a.seat, -math.inf) <= now]
        return sorted(free, key=lambda a: (a.idle_since, a.seat))

    def _campaigns_due(self, now: float) -> list[Action]:
        self._campaign_now = now
        out: list[Action] = []
        for camp in list(self.campaigns.values()):
            camp.check_at = None
            if camp.state == "running" and camp.all_done():
                camp.state = "finished"
                info = {"campaign": camp.name, "state": "finished", "attempts": camp.summary()["attempts"]}
                out += [LogEvent("", "campaign.state", info), Publish("campaign.state", info), self._save(camp, now)]
            elif camp.state == "running":
                wall = self.wall(now)
                if camp.is_open(wall):
                    out += self._campaign_pace(camp, now)
                else:  # hours are whole minutes: look again at the next minute
                    camp.check_at = now + 60.0 - wall.second - wall.microsecond / 1e6
            if camp.dirty and now >= camp.saved_at + SAVE_S:
                out.append(self._save(camp, now))
        return out

    def _campaign_pace(self, camp: Campaign, now: float) -> list[Action]:
        """One call per free agent, while numbers are due and trunk channels are spare."""
        agents = self._campaign_agents(camp, now)
        out: list[Action] = []
        spare = self._spare_trunks() if agents else 0
        for agent in agents:
            if spare <= 0:
                break
            i = camp.take(now)
            if i is None:
                break
            spare -= 1
            e = camp.entries[i]
            n = normalise(e.number, home_area=camp.home_area)
            call = self._new_out_call(n, now, kind="campaign", campaign=camp.name, entry=i, queue=camp.queue,
                                      ring_s=camp.ring_s)
            camp.dial(i, call.call_id)
            out += self._ring_for(call, agent, now)
        return out

    def _campaign_deadlines(self) -> list[float]:
        """Numbers due later, a closed campaign's next look, pending saves (never a time already past: a number due
        now waits for an agent or a channel, which an event frees)."""
        times: list[float] = []
        for camp in self.campaigns.values():
            if camp.state == "running":
                due = camp.next_due() if camp.check_at is None else camp.check_at
                if due is not None:
                    times.append(due)
                times += camp.rest.values()  # an agent back from a rest
            if camp.dirty:
                times.append(camp.saved_at + SAVE_S)
        return [t for t in times if t > self._campaign_now]

    def _campaign_call_ended(self, call, result: str, cause: int | None, now: float) -> list[Action]:
        """A campaign's call ended: an attempt (the agent answered, so the number was dialled or no channel was
        free) counts with its result; a call the agent never took gives the number back."""
        camp = self.campaigns.get(call.campaign) if call.campaign is not None else None
        if camp is None or call.entry is None or camp.entries[call.entry].call_id != call.call_id:
            return []
        if call.agent_answer is None:
            camp.wait(call.entry, now)
            return []
        e = camp.entries[call.entry]
        again = camp.attempted(call.entry, result, cause, now)
        data = {"campaign": camp.name, "number": e.number, "attempt": e.attempts, "result": result, "cause": cause,
                "retry_in_s": None if again is None else round(again - now, 3)}
        return [LogEvent(call.call_id, "campaign.attempt", data), Publish("campaign.attempt", data)]

    def _campaign_agent_missed(self, call, agent, now: float) -> list[Action]:
        """A campaign call rang out at the agent: rest the agent, count the missed offer."""
        camp = self.campaigns.get(call.campaign) if call.campaign is not None else None
        if camp is None:
            return []
        camp.rest[agent.seat] = now + AGENT_REST_S
        agent.missed += 1
        q = self.queue_cfg.get(camp.queue or self.queue_name, self.queue_cfg[self.queue_name])
        if q["missed_offers"] and agent.missed >= q["missed_offers"] and agent.state == "available":
            agent.missed = 0
            return self._agent_state(agent, "busy", now, "no_answer")
        return []

    def _save(self, camp: Campaign, now: float) -> SaveCampaign:
        camp.dirty, camp.saved_at = False, now
        return SaveCampaign(camp.name, camp.to_data(self._epoch_offset(now)))
