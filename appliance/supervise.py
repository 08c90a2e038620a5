"""A supervisor on a live call: listen (监听), whisper to the agent, barge in (three-way), intercept (拦截: the
supervisor takes the caller, the agent is dropped), force release (强拆); and forcing an agent busy or logged out.

A part of ``CallCentre``. The supervisor works from a seat's phone: it rings when the
supervisor asks (unless it is already off hook), and the mode begins when it is picked
up. Listen, whisper and barge are ``Hear`` entries of the switch, a row or column per
party, never copies of audio:

========= ======================================================
listen    the supervisor hears every party; nobody hears the supervisor
whisper   as listen, and the agent hears the supervisor; the caller does not
barge     everyone hears everyone (a three-way call)
========= ======================================================
"""

from __future__ import annotations

from .acd import Agent
from .actions import Action, Connect, Hear, Isolate, LogEvent, Publish, Ring, StartTone, StopRing, StopTone

MODES = ("listen", "whisper", "barge")


class Supervision:
    def _init_supervision(self) -> None:
        self.supervisors: dict[int, object] = {}  # supervisor's port -> the call supervised

    def _supervised(self, target: Agent):
        call = next((c for c in self.calls_all() if c.state == "talking" and c.port is not None
                     and (c.agent is target or target in c.members)), None)
        if call is None:
            raise ValueError(f"seat {target.seat} is not in a call")
        return call

    def supervise(self, sup: Agent, target: Agent, mode: str, now: float) -> list[Action]:
        """Start (or change) listening, whispering or barging on ``target``'s call from ``sup``'s phone."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if sup is target:
            raise ValueError(f"seat {sup.seat} cannot supervise itself")
        call = self._supervised(target)
        if call.sup is not None and call.sup["agent"] is not sup:
            raise ValueError(f"seat {call.sup['agent'].seat} already supervises that call")
        if call.sup is not None:  # a new mode for the same supervisor
            call.sup["mode"] = mode
            return [LogEvent(call.call_id, "call.supervise", {"seat": sup.seat, "mode": mode})] + \
                (self._supervisor_mix(call) if call.sup["state"] == "on" else [])
        if sup.state in ("ringing", "talking", "out_of_service") or sup.port in self.supervisors:
            raise ValueError(f"seat {sup.seat} is {sup.state}; a supervisor needs a free phone")
        before = (sup.resume, sup.resume_reason) if sup.resume is not None else (sup.state, sup.reason)
        call.sup = {"agent": sup, "mode": mode, "state": "ringing", "before": before}
        self.supervisors[sup.port] = call
        out: list[Action] = [LogEvent(call.call_id, "call.supervise", {"seat": sup.seat, "mode": mode,
                                                                       "target": target.seat})]
        if sup.resume is not None:  # already off hook: joins at once
            return out + self._supervisor_joins(sup.port, now)
        return out + [Ring(sup.port, None), *self._agent_state(sup, "busy", now, "supervising")]

    def _supervisor_joins(self, port: int, now: float) -> list[Action]:
        call = self.supervisors[port]
        sup = call.sup["agent"]
        call.sup["state"] = "on"
        sup.resume, sup.resume_reason = None, None
        # Connect tells the card the supervisor's phone has a peer; the rows then set what each one hears
        out: list[Action] = [StopRing(port), StopTone(port), *self._agent_state(sup, "busy", now, "supervising"),
                             Connect(port, call.port)]
        return out + self._supervisor_mix(call) + [Publish("call.supervise", {"call_id": call.call_id,
                                                                               "seat": sup.seat,
                                                                               "mode": call.sup["mode"]})]

    def _supervisor_mix(self, call) -> list[Action]:
        """The supervisor's rows and columns for the call's group and mode."""
        sup = call.sup
        if sup is None or sup["state"] != "on":
            return []
        s, mode = sup["agent"].port, sup["mode"]
        agent_port = call.agent.port if call.agent is not None else None
        out: list[Action] = []
        for p in self._group(call):
            if p == s:
                continue
            out.append(Hear(s, p))
            out.append(Hear(p, s, mode == "barge" or (mode == "whisper" and p == agent_port)))
        return out

    def stop_supervising(self, sup: Agent, now: float) -> list[Action]:
        call = self.supervisors.get(sup.port)
        if call is None:
            raise ValueError(f"seat {sup.seat} supervises no call")
        return self._supervisor_leaves(call, now, hung_up=False)

    def _supervisor_leaves(self, call, now: float, *, hung_up: bool) -> list[Action]:
        sup = call.sup
        call.sup = None
        agent = sup["agent"]
        self.supervisors.pop(agent.port, None)
        out: list[Action] = [LogEvent(call.call_id, "call.supervise_end", {"seat": agent.seat})]
        if sup["state"] == "ringing":
            out.append(StopRing(agent.port))
        else:
            out.append(Isolate(agent.port))
        state, reason = sup["before"]
        if not hung_up and sup["state"] == "on":  # still off hook: busy tone, the old state once it is down
            agent.resume, agent.resume_reason = state, reason
            return out + [StartTone(agent.port, "busy")]
        if state == "available":
            agent.idle_since = now
        return out + self._agent_state(agent, state, now, reason) + self._dispatch(now)

    def _end_supervision(self, call, now: float) -> list[Action]:
        return self._supervisor_leaves(call, now, hung_up=False) if call.sup is not None else []

    def intercept(self, sup: Agent, target: Agent, now: float) -> list[Action]:
        """The supervisor takes the caller; the agent is dropped (busy tone until the phone goes down)."""
        call = self._supervised(target)
        if call.sup is None or call.sup["agent"] is not sup or call.sup["state"] != "on":
            raise ValueError(f"seat {sup.seat} must be listening to seat {target.seat}'s call to intercept it")
        if call.agent is not target:
            raise ValueError(f"seat {target.seat} is not the agent of that call")
        call.sup = None
        self.supervisors.pop(sup.port, None)
        out: list[Action] = [LogEvent(call.call_id, "call.intercepted", {"seat": sup.seat, "from_seat": target.seat})]
        out += self._agent_leaves(call, target, now, on_hook=False)  # busy tone until the agent hangs up
        sup.call_id, call.agent = call.call_id, sup
        out += self._agent_state(sup, "talking", now)
        group = [p for p in self._group(call) if p != target.port] + [sup.port]
        return out + self._mesh(call, group)

    def force_release(self, target: Agent, now: float) -> list[Action]:
        """强拆: the call is ended by the supervisor; the caller is cleared and the agent hears busy."""
        call = self._supervised(target)
        return self._end(call, now, "answered", "system", cause=16, reason="force_release")

    def force_state(self, agent: Agent, state: str, now: float) -> list[Action]:
        """A supervisor sets a seat busy or logged out: at once between calls, after the call during one."""
        if agent.state in ("ringing", "talking", "wrap_up") or agent.resume is not None:
            agent.forced = (state, "supervisor" if state == "busy" else None)
            return []
        return self.set_agent_state(agent, state, now, "supervisor" if state == "busy" else None)

    def _forced_state(self, agent: Agent, now: float) -> list[Action] | None:
        """A state a supervisor forced during the agent's call, now it is over; None if none."""
        forced, agent.forced = agent.forced, None
        if forced is None:
            return None
        agent.wrap_until = None
        return self._agent_state(agent, forced[0], now, forced[1])
