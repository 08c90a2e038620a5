"""The control API's supervisor commands: listen, whisper, barge, intercept, force release, force a seat's state.

A part of ``Core``; the supervisor page calls these. Each runs the call logic's own
functions (``appliance.supervise``) at the runtime's ``now`` and applies the actions.
"""

from __future__ import annotations

from .control import CommandError, Enum, Int
from .supervise import MODES


class SupervisorCommands:
    def register_supervisor_commands(self) -> None:
        seat = Int(1, 24)
        self.server.register("supervise", self.cmd_supervise,
                             {"supervisor": seat, "target": seat, "mode": Enum(*MODES)})
        self.server.register("supervise.stop", self.cmd_supervise_stop, {"supervisor": seat})
        self.server.register("supervise.intercept", self.cmd_intercept, {"supervisor": seat, "target": seat})
        self.server.register("call.release", self.cmd_release, {"seat": seat})
        self.server.register("agent.force", self.cmd_force, {"seat": seat, "state": Enum("busy", "logged_out")})

    def _run(self, fn, *args) -> None:
        now = self.runtime.now
        try:
            actions = fn(*args, now)
        except ValueError as e:
            raise CommandError("conflict", str(e)) from None
        self.runtime.apply(actions, now)

    def cmd_supervise(self, supervisor: int, target: int, mode: str) -> dict:
        """``supervise``: listen to, whisper to or barge into ``target``'s call from ``supervisor``'s phone."""
        self._run(self.logic.supervise, self._seat(supervisor), self._seat(target), mode)
        return {"supervisor": supervisor, "target": target, "mode": mode}

    def cmd_supervise_stop(self, supervisor: int) -> dict:
        self._run(self.logic.stop_supervising, self._seat(supervisor))
        return {"supervisor": supervisor}

    def cmd_intercept(self, supervisor: int, target: int) -> dict:
        self._run(self.logic.intercept, self._seat(supervisor), self._seat(target))
        return {"supervisor": supervisor, "target": target}

    def cmd_release(self, seat: int) -> dict:
        self._run(self.logic.force_release, self._seat(seat))
        return {"seat": seat}

    def cmd_force(self, seat: int, state: str) -> dict:
        agent = self._seat(seat)
        self._run(self.logic.force_state, agent, state)
        return {"seat": seat, "state": agent.state, "after_call": agent.forced is not None}
