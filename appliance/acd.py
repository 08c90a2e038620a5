"""Automatic call distribution: the agents at the seats, one queue, and the longest-idle strategy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

AGENT_STATES = ("logged_out", "available", "ringing", "talking", "busy", "out_of_service")


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


class Acd:
    """One queue served by the agents in longest-idle order (the agent free the longest gets the call).

    The queue is first come, first served. An agent who lets a call ring out goes to
    the back of the idle order and the call returns to the head of the queue.
    """

    strategies = ("longest_idle",)

    def __init__(self, agents: list[Agent], *, strategy: str = "longest_idle") -> None:
        if strategy not in self.strategies:
            raise ValueError(f"strategy {strategy!r} is not one of {self.strategies}")
        self.agents = agents
        self.by_port = {a.port: a for a in agents}
        self.queue: list[QueueEntry] = []

    def enqueue(self, call_id: str, now: float, *, front: bool = False) -> int:
        """Add a call; returns its 1-based position."""
        entry = QueueEntry(call_id, now)
        if front:
            self.queue.insert(0, entry)
            return 1
        self.queue.append(entry)
        return len(self.queue)

    def remove(self, call_id: str) -> QueueEntry | None:
        for i, entry in enumerate(self.queue):
            if entry.call_id == call_id:
                return self.queue.pop(i)
        return None

    def pick_agent(self) -> Agent | None:
        """The available agent idle the longest (ties: lowest seat), or None."""
        free = [a for a in self.agents if a.state == "available"]
        return min(free, key=lambda a: (a.idle_since, a.seat)) if free else None

    def next_pair(self) -> tuple[QueueEntry, Agent] | None:
        """Take the head of the queue and the agent for it, if both exist."""
        if not self.queue:
            return None
        agent = self.pick_agent()
        if agent is None:
            return None
        return self.queue.pop(0), agent
