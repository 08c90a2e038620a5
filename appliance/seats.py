"""The agent side of call control: phones going off and on hook, feature codes, log in and out, idle and busy
with reasons, wrap-up, and every agent state change with its duration in the journal.

A part of ``CallCentre`` (``appliance.callcontrol``); it uses the centre's ``acd``,
``calls``, ``book`` (agent id -> the agent's configuration), ``_queue_cfg``,
``_answer``, ``_end`` and ``_dispatch``. Agent events go to the journal under the
call id ``""`` (they belong to no call) as ``agent.state`` with the state left,
how long it lasted, the new state and its reason.
"""

from __future__ import annotations

from .acd import Agent
from .actions import Action, LogEvent, Play, Publish, StartTone, StopPlay, StopTone
from .featurecodes import INTERDIGIT_S, Code, complete, parse

OFFERABLE = "available"


class Seats:
    def _init_seats(self, book: dict[str, dict] | None) -> None:
        self.book = book or {}  # agent id -> the agents section's item; empty: every seat is its own agent
        self.dialing: dict[int, str] = {}  # seat port -> feature-code digits dialled so far
        self.dial_deadline: dict[int, float] = {}

    # --- the phone -------------------------------------------------------------------------------

    def _offhook(self, port: int, now: float) -> list[Action]:
        agent = self.acd.by_port.get(port)
        if agent is None:
            return []
        call = next((c for c in self.calls_all() if agent in c.ringing), None)
        if agent.state == "ringing" and call is not None:
            return self._answer(call, agent, now)
        if agent.state in ("ringing", "talking", "out_of_service") or agent.resume is not None:
            return []
        # lifted to dial a feature code, or just lifted: no call is offered until the phone is down again
        agent.resume, agent.resume_reason = agent.state, agent.reason
        out = self._agent_state(agent, "busy", now, "off_hook") if agent.state in ("available", "wrap_up") else []
        self.dialing[port], self.dial_deadline[port] = "", now + INTERDIGIT_S
        return out + [StartTone(port, "dial")]

    def _seat_digit(self, port: int, digit: str, now: float) -> list[Action]:
        if port not in self.dialing:
            return []
        digits = self.dialing[port] + digit
        out: list[Action] = [StopTone(port)] if len(digits) == 1 else []
        if not complete(digits):
            self.dialing[port], self.dial_deadline[port] = digits, now + INTERDIGIT_S
            return out
        del self.dialing[port], self.dial_deadline[port]
        agent = self.acd.by_port[port]
        try:
            code = parse(digits)
            outcome = self._feature(agent, code, now)
        except ValueError as e:
            return out + [LogEvent("", "agent.code", {"seat": agent.seat, "code": digits, "ok": False,
                                                      "error": str(e)}), Play(port, "code.failed")]
        return out + [LogEvent("", "agent.code", {"seat": agent.seat, "code": digits, "ok": True}), *outcome,
                      Play(port, "code.done")]

    def _dial_timeouts(self, now: float) -> list[Action]:
        out: list[Action] = []
        for port, t in list(self.dial_deadline.items()):
            if t <= now:
                del self.dialing[port], self.dial_deadline[port]
                out += [StopTone(port), Play(port, "code.failed")]
        return out

    def _onhook(self, port: int, now: float) -> list[Action]:
        agent = self.acd.by_port.get(port)
        if agent is None:
            return []
        call = next((c for c in self.calls_all() if c.agent is agent and c.state == "talking"), None)
        if call is not None:
            return self._end(call, now, "answered", "agent", cause=16)
        self.dialing.pop(port, None)
        self.dial_deadline.pop(port, None)
        out: list[Action] = [StopTone(port), StopPlay(port)]
        if agent.resume is not None:
            state, reason, agent.resume = agent.resume, agent.resume_reason, None
            if state == "wrap_up" and agent.wrap_until is not None:  # lifted during wrap-up: the rest of it
                out += self._agent_state(agent, "wrap_up", now)
            elif state == "wrap_up":  # down after a call the caller ended: wrap-up starts now
                out += self._wrap_up(agent, now, agent.wrap_s)
            else:
                if state == "available":
                    agent.idle_since = now
                out += self._agent_state(agent, state, now, reason)
        return out + self._dispatch(now)

    # --- states ------------------------------------------------------------------------------------

    def _feature(self, agent: Agent, code: Code, now: float) -> list[Action]:
        """A feature code dialled with the phone off hook: identity changes now, the state when it goes down."""
        if code.action == "login":
            self._login(agent, code.agent_id, code.pin)
            agent.resume, agent.resume_reason = "available", None
        elif code.action == "logout":
            out = self._logout(agent, now)
            agent.resume, agent.resume_reason = "logged_out", None
            return out
        elif agent.resume == "logged_out":
            raise ValueError(f"seat {agent.seat} has nobody logged in; log in first (*1 ID * PIN #)")
        elif code.action == "available":
            agent.resume, agent.resume_reason, agent.wrap_until = "available", None, None
        else:
            agent.resume, agent.resume_reason, agent.wrap_until = "busy", code.reason, None
        return []

    def _login(self, agent: Agent, agent_id: str | None, pin: str) -> None:
        """Bind the agent ``agent_id`` to the seat (ValueError naming the problem)."""
        if not self.book:
            if agent_id is not None:
                raise ValueError("no agents are configured: every seat is its own agent; log in with *1#")
            return
        person = self.book.get(agent_id or "")
        if person is None:
            raise ValueError(f"agent {agent_id!r} is not configured")
        if person["pin"] and pin != person["pin"]:
            raise ValueError(f"agent {agent_id}: wrong PIN")
        elsewhere = next((a for a in self.acd.agents if a.agent_id == agent_id and a is not agent), None)
        if elsewhere is not None:
            raise ValueError(f"agent {agent_id} is logged in at seat {elsewhere.seat}; log out there first")
        agent.agent_id, agent.name = agent_id, person["name"]
        agent.skill, agent.skills = person["skill"], dict(person["queues"]) or None

    def _logout(self, agent: Agent, now: float) -> list[Action]:
        agent.wrap_until = None
        if self.book:  # the seat is free for the next person
            agent.agent_id = None
        return []

    def set_agent_state(self, agent: Agent, state: str, now: float, reason: str | None = None,
                        agent_id: str | None = None, pin: str = "") -> list[Action]:
        """An agent (or supervisor) logs in, sets the seat available or busy (with a reason), or logs out.

        ValueError when the seat is in a call, or the login is refused."""
        if agent.state in ("ringing", "talking"):
            raise ValueError(f"seat {agent.seat} is {agent.state}; its state can change after the call")
        if state == "available" and agent.state == "logged_out" and agent.resume is None:
            self._login(agent, agent_id, pin)
        elif state in ("available", "busy") and agent.state == "logged_out":
            raise ValueError(f"seat {agent.seat} has nobody logged in; log in first")
        if state == "busy" and reason is None:
            reason = "other"
        if state == "logged_out":
            self._logout(agent, now)
        if agent.resume is not None:  # the phone is off hook: the new state holds after hang-up
            agent.resume, agent.resume_reason, agent.wrap_until = state, reason, None
            return []
        if state == "available":
            agent.idle_since = now
        agent.wrap_until = None
        return self._agent_state(agent, state, now, reason) + self._dispatch(now)

    def _wrap_up(self, agent: Agent, now: float, seconds: float) -> list[Action]:
        """After a call: wrap-up for ``seconds`` (if any), then available."""
        if seconds > 0:
            agent.wrap_until = now + seconds
            return self._agent_state(agent, "wrap_up", now)
        agent.idle_since = now
        return self._agent_state(agent, "available", now)

    def _wrap_ups_due(self, now: float) -> list[Action]:
        out: list[Action] = []
        for agent in self.acd.agents:
            if agent.wrap_until is not None and agent.wrap_until <= now:
                agent.wrap_until = None
                if agent.state == "wrap_up":
                    agent.idle_since = now
                    out += self._agent_state(agent, "available", now)
                elif agent.resume == "wrap_up":  # lifted during wrap-up: available once the phone is down
                    agent.resume = "available"
        return out

    def _agent_state(self, agent: Agent, state: str, now: float, reason: str | None = None) -> list[Action]:
        if agent.state == state and agent.reason == reason:
            return []
        prev, lasted = agent.state, now - agent.since
        agent.set_state(state, now)
        agent.reason = reason
        data = {"seat": agent.seat, "agent_id": agent.agent_id, "name": agent.name, "state": state,
                "reason": reason, "prev": prev, "prev_s": round(lasted, 3)}
        return [LogEvent("", "agent.state", data), Publish("agent.state", {"seat": agent.seat, "state": state,
                                                                           "reason": reason,
                                                                           "agent_id": agent.agent_id})]

    # --- restart -------------------------------------------------------------------------------------

    def seat_states(self) -> list[dict]:
        """What survives a restart: who is logged in where, and idle, busy (with reason) or logged out."""
        out = []
        for a in self.acd.agents:
            state = a.resume if a.resume is not None else a.state
            if state not in ("logged_out", "busy"):
                state = "available"  # ringing, talking, wrap-up: no call survives a restart
            out.append({"seat": a.seat, "agent_id": a.agent_id, "state": state,
                        "reason": a.reason if state == "busy" and a.reason != "off_hook" else None})
        return out

    def restore_seats(self, saved: list[dict], now: float) -> None:
        """Put the seats back as ``seat_states`` left them; an agent no longer configured stays logged out."""
        for item in saved:
            agent = self.acd.by_seat.get(item.get("seat"))
            if agent is None:
                continue
            state, reason = item.get("state"), item.get("reason")
            if state == "busy" and reason == "off_hook":  # lifted, not set busy: as before it was lifted
                state, reason = "available", None
            try:
                if state != "logged_out":
                    self._login(agent, item.get("agent_id") if self.book else None, self._pin(item.get("agent_id")))
            except ValueError:
                state = "logged_out"
            if state not in ("available", "busy", "logged_out"):
                state = "available"
            if state == "logged_out":
                self._logout(agent, now)
            agent.state, agent.reason, agent.since, agent.idle_since = state, reason if state == "busy" else None, now, now

    def _pin(self, agent_id: str | None) -> str:
        return self.book.get(agent_id or "", {}).get("pin", "")
