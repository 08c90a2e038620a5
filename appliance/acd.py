"""Automatic call distribution: the agents at the seats, the queues, and the strategies that decide who gets a call.

This module is the one place that decides which agent is rung for which waiting call.
Every strategy offers calls only to agents whose state is ``available`` and who are
members of the call's queue; each queue is first come, first served within a priority
(VIP callers' entries wait ahead of normal ones). When agents are free for calls of
several queues, the call with the highest priority, then the longest wait, goes first.
A call directed to one seat (an IVR transfer to ``seat:N``) waits for that seat only.
Ties between agents are always broken by longest idle, then by the lowest seat number.

=================== ==================================================================================
``ring-all``        ring every available agent at once; the first to answer takes the call
``round-robin``     the next available seat after the seat that was given the last call (cyclic by
                    seat number; the memory survives across calls)
``random``          a uniformly random available agent, from a seeded RNG (reproducible)
``fewest-calls``    fewest calls answered today (接话数量均衡)
``least-talk-time`` least talk time today (通话时间均衡)
``longest-idle``    the agent free the longest (最长休息时间)
``skill-level``     the highest skill level in the call's queue first (业务级别, 1..10)
``fixed-order``     by seat number: seat 1 always first when available (座席编号)
=================== ==================================================================================

"Today" is since ``Acd.day_start`` (a time on the same clock as ``now``); ``start_day`` begins a new day
and sets every agent's counts back to zero. An agent who lets a call ring out goes to the back of the
idle order and the call returns to the head of the queue.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

AGENT_STATES = ("logged_out", "available", "ringing", "talking", "wrap_up", "busy", "out_of_service")
STRATEGIES = ("ring-all", "round-robin", "random", "fewest-calls", "least-talk-time", "longest-idle",
              "skill-level", "fixed-order")
LEGACY_NAMES = {"longest_idle": "longest-idle"}  # names saved by older versions


def strategy_name(name: str) -> str:
    """The canonical strategy name for ``name`` (old saved spellings mapped); ValueError if unknown."""
    name = LEGACY_NAMES.get(name, name)
    if name not in STRATEGIES:
        raise ValueError(f"strategy {name!r} is not one of {', '.join(STRATEGIES)}")
    return name


@dataclass
class Agent:
    """One seat and the agent sitting at it."""

    seat: int  # 1-based, as people number seats
    port: int  # the FXS port of the seat's phone
    name: str
    extension: str
    state: str = "available"
    since: float = 0.0  # when the current state began
    idle_since: float = 0.0  # when the agent last became free (longest-idle order)
    call_id: str | None = None
    resume: str | None = None  # state to return to when the phone goes back on hook
    time_in: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    skill: int = 5  # 1..10, higher first under skill-level, in every queue not in ``skills``
    skills: dict[str, int] | None = None  # queue name -> skill; None: a member of every queue at ``skill``
    calls_today: int = 0  # calls answered since the ACD's day start
    talk_today: float = 0.0  # seconds of talk in calls ended since the day start
    agent_id: str | None = None  # the person logged in at the seat (None: the seat is its own agent)
    reason: str | None = None  # why the agent is busy (rest, meal, ..., no_answer) or logged out
    missed: int = 0  # offered calls let ring out in a row
    wrap_until: float | None = None  # in wrap-up until then
    wrap_s: float = 0.0  # wrap-up of the agent's last call (starts when the phone goes down, if still off hook)
    resume_reason: str | None = None  # the reason that goes with ``resume``
    forced: tuple[str, str | None] | None = None  # (state, reason) a supervisor set during a call: after it
    before_fault: tuple[str, str | None] | None = None  # (state, reason) to return to when the phone works again

    def skill_in(self, queue: str) -> int | None:
        """The agent's skill level in ``queue``, or None if not a member."""
        if self.skills is None:
            return self.skill
        return self.skills.get(queue)

    def set_state(self, state: str, now: float) -> None:
        if state not in AGENT_STATES:
            raise ValueError(f"agent state {state!r} is not one of {AGENT_STATES}")
        self.time_in[self.state] += now - self.since
        self.state, self.since = state, now

    def time_in_state(self, state: str, now: float) -> float:
        """Seconds spent in ``state`` so far, including the current stretch."""
        return self.time_in[state] + (now - self.since if self.state == state else 0.0)


@dataclass
class QueueEntry:
    call_id: str
    enqueued_at: float
    priority: int = 0  # higher is served first (VIP callers: 1); first come, first served within a priority
    queue: str = "default"
    seat: int | None = None  # only this seat may take the call (a transfer to seat:N)
    skipped: frozenset[int] = frozenset()  # seats that let this call ring out: others first


def _idle_key(a: Agent) -> tuple:
    return (a.idle_since, a.seat)


class Queue:
    """One queue's waiting calls and the memory of its strategy."""

    def __init__(self, name: str, strategy: str, rng: random.Random) -> None:
        self.name = name
        self.strategy = strategy_name(strategy)
        self.rng = rng
        self.entries: list[QueueEntry] = []
        self.last_seat: int | None = None  # round-robin: the seat given this queue's last call

    def order(self, free: list[Agent]) -> list[Agent]:
        """``free`` (available members of this queue), best first under the strategy."""
        if not free:
            return []
        s, name = self.strategy, self.name
        if s in ("longest-idle", "ring-all"):
            return sorted(free, key=_idle_key)
        if s == "fewest-calls":
            return sorted(free, key=lambda a: (a.calls_today, *_idle_key(a)))
        if s == "least-talk-time":
            return sorted(free, key=lambda a: (a.talk_today, *_idle_key(a)))
        if s == "skill-level":
            return sorted(free, key=lambda a: (-a.skill_in(name), *_idle_key(a)))
        if s == "fixed-order":
            return sorted(free, key=lambda a: a.seat)
        if s == "round-robin":
            last = self.last_seat if self.last_seat is not None else 0
            return sorted(free, key=lambda a: (a.seat <= last, a.seat))
        # random: a uniform draw among the free agents in seat order, then the rest by longest idle
        by_seat = sorted(free, key=lambda a: a.seat)
        first = by_seat[self.rng.randrange(len(by_seat))]
        return [first] + sorted((a for a in free if a is not first), key=_idle_key)


class Acd:
    """The queues and the agents (see the module docstring).

    Parameters
    ----------
    agents : list of Agent
    strategy : str
        The strategy of the queue made when ``queues`` is not given (``longest_idle`` is accepted for
        ``longest-idle``).
    rng : random.Random, optional
        The generator of the ``random`` strategy; default ``random.Random(seed)``.
    seed : int
    day_start : float
        Start of "today" on the caller's clock, for ``fewest-calls`` and ``least-talk-time``.
    queues : list of (name, strategy), optional
        The queues, the first being the default; default one queue ``default`` with ``strategy``.
    """

    strategies = STRATEGIES

    def __init__(self, agents: list[Agent], *, strategy: str = "longest-idle", rng: random.Random | None = None,
                 seed: int = 0, day_start: float = 0.0, queues: list[tuple[str, str]] | None = None) -> None:
        self.agents = agents
        self.by_port = {a.port: a for a in agents}
        self.by_seat = {a.seat: a for a in agents}
        self._rng = rng if rng is not None else random.Random(seed)
        self.queues = {name: Queue(name, s, self._rng) for name, s in (queues or [("default", strategy)])}
        self.default = next(iter(self.queues))
        self.day_start = day_start

    @property
    def rng(self) -> random.Random:
        return self._rng

    @rng.setter
    def rng(self, rng: random.Random) -> None:
        self._rng = rng
        for q in self.queues.values():
            q.rng = rng

    @property
    def strategy(self) -> str:
        """The default queue's strategy."""
        return self.queues[self.default].strategy

    @property
    def queue(self) -> list[QueueEntry]:
        """The default queue's waiting calls, in order."""
        return self.queues[self.default].entries

    @property
    def last_seat(self) -> int | None:
        return self.queues[self.default].last_seat

    def waiting(self) -> int:
        """Calls waiting in every queue."""
        return sum(len(q.entries) for q in self.queues.values())

    # --- queue ---------------------------------------------------------------------------------

    def enqueue(self, call_id: str, now: float, *, front: bool = False, priority: int = 0, queue: str | None = None,
                seat: int | None = None, skipped: frozenset[int] = frozenset()) -> int:
        """Add a call to ``queue`` (default: the first) behind every call of its ``priority`` or higher
        (``front``: ahead of every call of its priority or lower, e.g. a call back from an agent who did not
        answer); returns its 1-based position."""
        q = self.queues[queue or self.default]
        entry = QueueEntry(call_id, now, priority, q.name, seat, skipped)
        entries = q.entries
        if front:
            i = next((i for i, e in enumerate(entries) if e.priority <= priority), len(entries))
        else:
            i = next((i for i, e in enumerate(entries) if e.priority < priority), len(entries))
        entries.insert(i, entry)
        return i + 1

    def remove(self, call_id: str) -> QueueEntry | None:
        for q in self.queues.values():
            for i, entry in enumerate(q.entries):
                if entry.call_id == call_id:
                    return q.entries.pop(i)
        return None

    def position(self, call_id: str) -> tuple[str, int] | None:
        """(queue name, 1-based position) of a waiting call."""
        for q in self.queues.values():
            for i, entry in enumerate(q.entries):
                if entry.call_id == call_id:
                    return q.name, i + 1
        return None

    def members(self, queue: str) -> list[Agent]:
        return [a for a in self.agents if a.skill_in(queue) is not None]
    # --- today's counts ---------------------------------------------------------------------------

    def start_day(self, day_start: float) -> None:
        """Begin the day that starts at ``day_start``: every agent's counts go back to zero."""
        if day_start != self.day_start:
            self.day_start = day_start
            for a in self.agents:
                a.calls_today, a.talk_today = 0, 0.0

    def answered(self, agent: Agent, now: float) -> None:
        """``agent`` answered a call at ``now``."""
        agent.calls_today += 1

    def talked(self, agent: Agent, seconds: float, now: float) -> None:
        """A call of ``seconds`` talk that ``agent`` had ended at ``now`` (counted on the day it ends)."""
        agent.talk_today += max(0.0, seconds)

    # --- who gets the call ---------------------------------------------------------------------------

    def _eligible(self, entry: QueueEntry, free: list[Agent]) -> list[Agent]:
        """The free agents who may take ``entry``; those who let it ring out only if nobody else is free."""
        if entry.seat is not None:
            return [a for a in free if a.seat == entry.seat]
        members = [a for a in free if a.skill_in(entry.queue) is not None]
        return [a for a in members if a.seat not in entry.skipped] or members

    def order(self, queue: str | None = None) -> list[Agent]:
        """The available members of ``queue`` (default: the first), best first under its strategy."""
        q = self.queues[queue or self.default]
        return q.order([a for a in self.agents if a.state == "available" and a.skill_in(q.name) is not None])

    def pick_agent(self) -> Agent | None:
        """The agent the default queue's strategy gives its next call, or None if nobody is available."""
        order = self.order()
        return order[0] if order else None

    def next_group(self) -> tuple[QueueEntry, list[Agent]] | None:
        """Take the next call some free agent can take and the agents to ring for it (all of them under
        ``ring-all``, otherwise one): over the queues, the first such call of each, highest priority and
        then longest waiting first."""
        free = [a for a in self.agents if a.state == "available"]
        if not free:
            return None
        best: tuple[Queue, int, list[Agent]] | None = None
        for q in self.queues.values():
            for i, entry in enumerate(q.entries):
                eligible = self._eligible(entry, free)
                if eligible:
                    if best is None or (-entry.priority, entry.enqueued_at) < (-best[0].entries[best[1]].priority,
                                                                               best[0].entries[best[1]].enqueued_at):
                        best = (q, i, eligible)
                    break
        if best is None:
            return None
        q, i, eligible = best
        order = q.order(eligible)
        group = order if q.strategy == "ring-all" else order[:1]
        q.last_seat = group[0].seat
        return q.entries.pop(i), group

    def next_pair(self) -> tuple[QueueEntry, Agent] | None:
        """Take the next call and the (first) agent for it, if both exist."""
        got = self.next_group()
        return None if got is None else (got[0], got[1][0])
