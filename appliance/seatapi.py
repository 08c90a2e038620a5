"""The control API's seat commands: log an agent in at a seat or out, set a seat available or busy (with a reason).

A part of ``Core``: each command runs the call logic's own seat functions
(``appliance.seats``) at the runtime's ``now`` and applies the actions, so a state
set here is journalled and published exactly as one set from the phone.
"""

from __future__ import annotations

from .control import CommandError, Enum, Int, Str
from .featurecodes import REASONS


class SeatCommands:
    def register_seat_commands(self) -> None:
        seat = Int(1, 24)
        self.server.register("agent.state", self.agent_state,
                             {"seat": seat, "state": Enum("available", "busy", "logged_out"),
                              "reason": Enum(*REASONS, required=False)})
        self.server.register("agent.login", self.agent_login,
                             {"seat": seat, "agent_id": Str(8, required=False), "pin": Str(8, required=False,
                                                                                            default="")})
        self.server.register("agent.logout", self.agent_logout, {"seat": seat})

    def _seat(self, seat: int):
        agent = self.logic.acd.by_seat.get(seat)
        if agent is None:
            raise CommandError("not_found", f"seat: {seat} is not a configured seat")
        return agent

    def _set(self, seat: int, state: str, reason: str | None = None, agent_id: str | None = None,
             pin: str = "") -> dict:
        agent = self._seat(seat)
        now = self.runtime.now
        try:
            actions = self.logic.set_agent_state(agent, state, now, reason, agent_id=agent_id, pin=pin or "")
        except ValueError as e:
            raise CommandError("conflict", str(e)) from None
        self.runtime.apply(actions, now)
        return {"seat": seat, "state": agent.state, "reason": agent.reason, "agent_id": agent.agent_id}

    def agent_state(self, seat: int, state: str, reason: str | None = None) -> dict:
        """``agent.state``: available (示闲), busy (示忙) with a reason, or logged out."""
        if reason is not None and state != "busy":
            raise CommandError("bad_argument", f"reason: only a busy state has a reason, not {state!r}")
        return self._set(seat, state, reason)

    def agent_login(self, seat: int, agent_id: str | None = None, pin: str = "") -> dict:
        """``agent.login``: bind an agent to the seat (no id where every seat is its own agent); available."""
        agent = self._seat(seat)
        if (agent.resume if agent.resume is not None else agent.state) != "logged_out":  # off hook: as it goes down
            raise CommandError("conflict", f"seat {seat} already has an agent logged in; log out first")
        return self._set(seat, "available", agent_id=agent_id, pin=pin)

    def agent_logout(self, seat: int) -> dict:
        return self._set(seat, "logged_out")
