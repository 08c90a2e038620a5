"""Which answered calls are recorded: the ``recording`` section's policy, checked against the config, and the decision.

Policies: ``all`` (every answered call), ``none``, ``queues`` (calls taken from one of
the queues in ``recording.queues``) and ``agents`` (calls answered by an agent in
``recording.agents``, by id, or at a seat in ``recording.seats``; with no ``agents``
section every seat is its own agent, so ``seats`` is the list that matters then).
``recording.enabled`` false records no call whatever the policy says (older configs
have only ``enabled``; they keep their meaning). Voicemail messages are not calls
in this sense: they are always recorded (``appliance.legs``).

The call logic asks ``records(policy, call, agent)`` at the moment it would start a
recording; sans-I/O, it reads nothing but its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

POLICIES = ("all", "none", "queues", "agents")


@dataclass(frozen=True)
class RecordingPolicy:
    """The ``recording`` section's decision as data.

    Parameters
    ----------
    policy : {"all", "none", "queues", "agents"}
    queues : frozenset of str
        Queue names recorded under ``queues``.
    agents : frozenset of str
        Agent ids recorded under ``agents``.
    seats : frozenset of int
        Seat numbers recorded under ``agents``.
    """

    policy: str = "all"
    queues: frozenset = frozenset()
    agents: frozenset = frozenset()
    seats: frozenset = frozenset()

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"recording policy {self.policy!r} is not one of {', '.join(POLICIES)}")

    @classmethod
    def from_config(cls, recording: dict) -> "RecordingPolicy":
        """The policy of a validated config's ``recording`` section (``enabled`` false: ``none``)."""
        if not recording["enabled"]:
            return cls("none")
        return cls(recording["policy"], frozenset(recording["queues"]), frozenset(recording["agents"]),
                   frozenset(recording["seats"]))

    def wants(self, queue: str | None, seat: int | None, agent_id: str | None) -> bool:
        """Whether a call of ``queue`` answered at ``seat`` by ``agent_id`` is recorded (any may be None: a call
        that never queued, a transfer to an outside number with no seat)."""
        if self.policy == "all":
            return True
        if self.policy == "queues":
            return queue is not None and queue in self.queues
        if self.policy == "agents":
            return (agent_id is not None and agent_id in self.agents) or (seat is not None and seat in self.seats)
        return False


def should_record(policy: "RecordingPolicy | bool", queue: str | None, seat: int | None, agent_id: str | None) -> bool:
    """The decision; ``policy`` may be a plain bool (every call, or none), as ``CallCentre(record=...)`` took it."""
    if isinstance(policy, bool):
        return policy
    return policy.wants(queue, seat, agent_id)


def records(policy: "RecordingPolicy | bool", call, agent) -> bool:
    """Whether ``call`` (an ``appliance.call.Call``), now connected to ``agent`` (an ``Agent``, or None when the
    other party is an outside number), is recorded."""
    if agent is None:
        return should_record(policy, call.queue, None, None)
    return should_record(policy, call.queue, agent.seat, agent.agent_id)


def check_recording(cfg: dict) -> None:
    """The ``recording`` section against the rest of a config: every queue, agent and seat it names exists, and a
    ``queues`` or ``agents`` policy names at least one. ConfigError naming the key and the bad value."""
    rec = cfg["recording"]
    queues = [q["name"] for q in (cfg["queue"], *cfg["queues"])]
    for i, name in enumerate(rec["queues"]):
        if name not in queues:
            raise ConfigError(f"recording.queues[{i}]: {name!r} names no queue; queues: {', '.join(queues)}")
    ids = [a["id"] for a in cfg["agents"]]
    for i, agent_id in enumerate(rec["agents"]):
        if agent_id not in ids:
            raise ConfigError(f"recording.agents[{i}]: {agent_id!r} names no agent of the agents section; agents: "
                              f"{', '.join(ids) or 'none (every seat is its own agent: list seats instead)'}")
    seats = sorted(s["seat"] for s in cfg["seats"])
    for i, seat in enumerate(rec["seats"]):
        if seat not in seats:
            raise ConfigError(f"recording.seats[{i}]: {seat} names no seat; seats: {', '.join(map(str, seats))}")
    if rec["policy"] == "queues" and not rec["queues"]:
        raise ConfigError("recording.policy: 'queues' with recording.queues empty would record no call; "
                          "list the queues in the same change, or use policy none")
    if rec["policy"] == "agents" and not rec["agents"] and not rec["seats"]:
        raise ConfigError("recording.policy: 'agents' with recording.agents and recording.seats empty would record "
                          "no call; list the agents or seats in the same change, or use policy none")
