"""Automatic call distribution: the agents at the seats, one queue, and the strategies that decide who gets a call.

This module is the one place that decides which agent is rung for the call at the head of the queue.
Every strategy offers calls only to agents whose state is ``available``; the queue is first come,
first served within a priority (VIP callers' entries wait ahead of normal ones). Ties are always broken
by longest idle, then by the lowest seat number.

=================== ==================================================================================
``ring-all``        ring every available agent at once; the first to answer takes the call
``round-robin``     the next available seat after the seat that was given the last call (cyclic by
                    seat number; the memory survives across calls)
``random``          a uniformly random available agent, from a seeded RNG (reproducible)
``fewest-calls``    fewest calls answered today (接话数量均衡)
``least-talk-time`` least talk time today (通话时间均衡)
``longest-idle``    the agent free the longest (最长休息时间)
``skill-level``     the highest skill level first (业务级别, 1..10)
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

AGENT_STATES = ("logged_out", "available", "ringing", "talking", "busy", "out_of_service")
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
    skill: int = 5  # 1..10, higher first under skill-level
    calls_today: int = 0  # calls answered since the ACD's day start
    talk_today: float = 0.0  # seconds of talk in calls ended since the day start

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


def _idle_key(a: Agent) -> tuple:
    return (a.idle_since, a.seat)


class Acd:
    """One queue (first come, first served within a priority) and the strategy that picks the agent
    (see the module docstring).

    Parameters
    ----------
    agents : list of Agent
    strategy : str
        One of ``STRATEGIES`` (``longest_idle`` is accepted for ``longest-idle``).
    rng : random.Random, optional
        The generator of the ``random`` strategy; default ``random.Random(seed)``.
    seed : int
    day_start : float
        Start of "today" on the caller's clock, for ``fewest-calls`` and ``least-talk-time``.
    """

    strategies = STRATEGIES

    def __init__(self, agents: list[Agent], *, strategy: str = "longest-idle", rng: random.Random | None = None,
                 seed: int = 0, day_start: float = 0.0) -> None:
        self.strategy = strategy_name(strategy)
        self.agents = agents
        self.by_port = {a.port: a for a in agents}
        self.queue: list[QueueEntry] = []
        self.rng = rng if rng is not None else random.Random(seed)
        self.last_seat: int | None = None  # round-robin: the seat given the last call
        self.day_start = day_start

    # --- queue ---------------------------------------------------------------------------------

    def enqueue(self, call_id: str, now: float, *, front: bool = False, priority: int = 0) -> int:
        """Add a call behind every call of its ``priority`` or higher (``front``: ahead of every call of its
        priority or lower, e.g. a call back from an agent who did not answer); returns its 1-based position."""
        entry = QueueEntry(call_id, now, priority)
        if front:
            i = next((i for i, e in enumerate(self.queue) if e.priority <= priority), len(self.queue))
        else:
            i = next((i for i, e in enumerate(self.queue) if e.priority < priority), len(self.queue))
        self.queue.insert(i, entry)
        return i + 1

    def remove(self, call_id: str) -> QueueEntry | None:
        for i, entry in enumerate(self.queue):
            if entry.call_id == call_id:
                return self.queue.pop(i)
        return None

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

    def order(self) -> list[Agent]:
        """The available agents, best first, under the strategy (``random``: one random draw first)."""
        free = [a for a in self.agents if a.state == "available"]
        if not free:
            return []
        s = self.strategy
        if s in ("longest-idle", "ring-all"):
            return sorted(free, key=_idle_key)
        if s == "fewest-calls":
            return sorted(free, key=lambda a: (a.calls_today, *_idle_key(a)))
        if s == "least-talk-time":
            return sorted(free, key=lambda a: (a.talk_today, *_idle_key(a)))
        if s == "skill-level":
            return sorted(free, key=lambda a: (-a.skill, *_idle_key(a)))
        if s == "fixed-order":
            return sorted(free, key=lambda a: a.seat)
        if s == "round-robin":
            last = self.last_seat if self.last_seat is not None else 0
            return sorted(free, key=lambda a: (a.seat <= last, a.seat))
        # random: a uniform draw among the free agents in seat order, then the rest by longest idle
        by_seat = sorted(free, key=lambda a: a.seat)
        first = by_seat[self.rng.randrange(len(by_seat))]
        return [first] + sorted((a for a in free if a is not first), key=_idle_key)

    def pick_agent(self) -> Agent | None:
        """The agent the strategy gives the next call, or None if nobody is available."""
        order = self.order()
        return order[0] if order else None

    def next_group(self) -> tuple[QueueEntry, list[Agent]] | None:
        """Take the head of the queue and the agents to ring for it (all available ones under ``ring-all``,
        otherwise one), if both exist."""
        if not self.queue:
            return None
        order = self.order()
        if not order:
            return None
        group = order if self.strategy == "ring-all" else order[:1]
        self.last_seat = group[0].seat
        return self.queue.pop(0), group

    def next_pair(self) -> tuple[QueueEntry, Agent] | None:
        """Take the head of the queue and the (first) agent for it, if both exist."""
        got = self.next_group()
        return None if got is None else (got[0], got[1][0])
