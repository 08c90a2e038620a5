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
from .actions import Action, LogEvent, Play, PlayRecording, Publish, StartTone, StopPlay, StopTone
from .featurecodes import INTERDIGIT_S, Code, complete, parse

OFFERABLE = "available"


class Seats:
    def _init_seats(self, book: dict[str, dict] | None) -> None:
        self.book = book or {}  # agent id -> the agents section's item; empty: every seat is its own agent
        self.dialing: dict[int, str] = {}  # seat port -> feature-code digits dialled so far
        self.dial_deadline: dict[int, float] = {}
        self.seat_names = {a.seat: a.name for a in self.acd.agents}  # a seat nobody is logged in at shows this
        self.leaving: dict[int, tuple[str | None, str]] = {}  # seat -> (agent id, name) who logged out there,
        # named by the logged_out event (with the phone off hook that comes when it goes down)

    # --- the phone -------------------------------------------------------------------------------

    def _offhook(self, port: int, now: float) -> list[Action]:
        agent = self.acd.by_port.get(port)
        if agent is None:
            return []
        call = next((c for c in self.calls_all() if agent in c.ringing), None)
        if agent.state == "ringing" and call is not None:
            return self._answer(call, agent, now)
        if port in self.consults and agent.state == "ringing":  # a colleague's consultation (handling)
            return self._consult_answered(port, now)
        if port in self.supervisors and self.supervisors[port].sup["state"] == "ringing":
            return self._supervisor_joins(port, now)
        if agent.state in ("ringing", "talking", "out_of_service") or agent.resume is not None:
            return []
        # lifted to dial a feature code, or just lifted: no call is offered until the phone is down again
        agent.resume, agent.resume_reason = agent.state, agent.reason
        out = self._agent_state(agent, "busy", now, "off_hook") if agent.state in ("available", "wrap_up") else []
        self.dialing[port], self.dial_deadline[port] = "", now + INTERDIGIT_S
        return out + [StartTone(port, "dial")]

    def _seat_digit(self, port: int, digit: str, now: float) -> list[Action]:
        agent = self.acd.by_port.get(port)
        call = self._talking_call(agent) if agent is not None else None
        if call is not None and call.flash is not None:  # dialling after a hook flash (handling)
            return self._flash_digit(call, agent, digit, now)
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
        done = [] if code.action == "play" else [Play(port, "code.done")]  # a recording played is its own answer
        return out + [LogEvent("", "agent.code", {"seat": agent.seat, "code": digits, "ok": True}), *outcome, *done]

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
        if port in self.supervisors:  # the supervisor hung up: supervision ends
            return self._supervisor_leaves(self.supervisors[port], now, hung_up=True)
        if port in self.parties:  # a seat in a conference left it
            return self._party_left(port, now)
        if port in self.consults and agent.state == "talking":  # the consulted colleague hung up
            return self._consult_gone(port, now)
        call = next((c for c in self.calls_all() if c.agent is agent and c.state in ("talking", "calling_back")),
                    None)
        if call is not None and call.state == "talking" and call.flash and call.consult is None:
            # dialled after a flash and hung up without waiting (an IP phone's REFER): dial it, then transfer
            out = self._flash_digit(call, agent, "#", now)
            if call.consult is not None:
                return out + self._transfer_on_hangup(call, agent, now)
        if call is not None and call.state == "talking" and call.consult is not None:  # transfer (handling)
            return self._transfer_on_hangup(call, agent, now)
        if call is not None and call.state == "talking" and len(self._group(call)) > 2:
            handed = self._agent_hangs_up_in_group(call, agent, now)
            if handed is not None:
                return handed
        if call is not None and call.state == "calling_back":  # gave up before the caller answered the callback
            return self._end(call, now, "failed", "agent", cause=None, reason="agent hung up")
        if call is not None:
            return self._end(call, now, "answered", "agent", cause=16)
        self.dialing.pop(port, None)
        self.dial_deadline.pop(port, None)
        out: list[Action] = [StopTone(port), StopPlay(port)]
        if agent.resume is not None:
            state, reason, agent.resume = agent.resume, agent.resume_reason, None
            forced = self._forced_state(agent, now) if agent.forced is not None else None
            if forced is not None:  # a supervisor's order, given during the call
                out += forced
            elif state == "wrap_up" and agent.wrap_until is not None:  # lifted during wrap-up: the rest of it
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
        if code.action != "login" and agent.resume == "logged_out":
            raise ValueError(f"seat {agent.seat} has nobody logged in; log in first (*1 ID * PIN #)")
        if code.action == "login":
            self._login(agent, code.agent_id, code.pin)
            agent.resume, agent.resume_reason = "available", None
        elif code.action == "logout":
            out = self._logout(agent, now)
            agent.resume, agent.resume_reason = "logged_out", None
            return out
        elif code.action == "play":  # a recording, heard while the phone stays off hook (appliance.recplay)
            return [PlayRecording(agent.port, int(code.number))]
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
        if agent_id is None:
            raise ValueError("an agent id is needed to log in: agents are configured (*1 ID * PIN #)")
        person = self.book.get(agent_id)
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
        if self.book and agent.agent_id is not None:  # the seat is free for the next person
            self.leaving[agent.seat] = (agent.agent_id, agent.name)
            agent.agent_id, agent.name = None, self.seat_names[agent.seat]
        return []

    def set_agent_state(self, agent: Agent, state: str, now: float, reason: str | None = None,
                        agent_id: str | None = None, pin: str = "") -> list[Action]:
        """An agent (or supervisor) logs in, sets the seat available or busy (with a reason), or logs out.

        ValueError when the seat is in a call, or the login is refused."""
        if agent.state in ("ringing", "talking"):
            raise ValueError(f"seat {agent.seat} is {agent.state}; its state can change after the call")
        current = agent.resume if agent.resume is not None else agent.state  # off hook: the state it goes back to
        if state == "available" and current == "logged_out":
            self._login(agent, agent_id, pin)
        elif state == "busy" and current == "logged_out":
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
        """After a call: wrap-up for ``seconds`` (if any), then available; or the state a supervisor forced."""
        forced = self._forced_state(agent, now)
        if forced is not None:
            return forced
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
        who = self.leaving.pop(agent.seat, (agent.agent_id, agent.name)) if state == "logged_out" else \
            (agent.agent_id, agent.name)
        return _state_event(agent.seat, who, state, reason, prev, lasted)

    # --- restart -------------------------------------------------------------------------------------

    def restore_seats(self, saved: list[dict], now: float) -> list[Action]:
        """Put the seats back as the journal's last ``agent.state`` of each left them (``Journal.seat_states``).

        A seat comes back with its agent, available or busy (with the reason), or logged out; a call
        (ringing, talking, wrap-up) or a lifted phone does not survive: available; an agent no longer
        configured: logged out. A state that comes back as it was keeps its start (the item's ``ts``, epoch
        seconds), so its duration spans the restart. Returns the ``agent.state`` events of the seats that come
        back in another state than they were left in (the runtime applies them once it runs)."""
        epoch_now = self.wall(now).timestamp()
        out: list[Action] = []
        for item in saved:
            agent = self.acd.by_seat.get(item.get("seat"))
            if agent is None:
                continue
            was, was_reason, was_id = item.get("state"), item.get("reason"), item.get("agent_id")
            state, reason = was, was_reason if was == "busy" else None
            if state not in ("available", "busy", "logged_out") or reason == "off_hook":
                state, reason = "available", None  # a call or a lifted phone: as before the phone rang or was lifted
            try:
                if state != "logged_out":
                    self._login(agent, was_id if self.book else None, self._pin(was_id))
            except ValueError:
                state, reason = "logged_out", None
            if state == "logged_out":
                self._logout(agent, now)
                self.leaving.pop(agent.seat, None)
            lasted = max(0.0, epoch_now - item["ts"]) if item.get("ts") is not None else 0.0
            same = (state, reason) == (was, was_reason)
            since = now - lasted if same else now
            agent.state, agent.reason, agent.since, agent.idle_since = state, reason, since, since
            if not same:
                out += _state_event(agent.seat, (was_id, item.get("name", agent.name)) if state == "logged_out"
                                    else (agent.agent_id, agent.name), state, reason, was, lasted)
        return out

    def _pin(self, agent_id: str | None) -> str:
        return self.book.get(agent_id or "", {}).get("pin", "")


def _state_event(seat: int, who: tuple[str | None, str], state: str, reason: str | None, prev: str,
                 lasted: float) -> list[Action]:
    """The journal's ``agent.state`` and the API's event: ``who`` is (agent id, name) of the agent concerned."""
    data = {"seat": seat, "agent_id": who[0], "name": who[1], "state": state, "reason": reason, "prev": prev,
            "prev_s": round(lasted, 3)}
    return [LogEvent("", "agent.state", data),
            Publish("agent.state", {"seat": seat, "state": state, "reason": reason, "agent_id": who[0]})]
