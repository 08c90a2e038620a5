"""What an agent does with a connected call from the phone: hold, consultation, blind and attended transfer,
three-way and multi-party conference (up to ``MAX_PARTIES``), by hook flash and digits.

A part of ``CallCentre``. The people in a call who hear each other are its talk group
(``call.conf``: ports, all hearing all, made of ``Hear`` rows of the switch). A flash
takes the agent out of the group (a caller left alone hears music) and gives dial tone:

================ ==============================================================================
flash, flash     back to the caller (also ``#``, or nothing dialled within ``FLASH_DIGIT_S``)
flash EXT        consult the seat with that extension (it rings; the agent hears ringback)
flash NUMBER #   consult an outside number on a free trunk channel (the agent hears its progress)
flash *9 N #     transfer the caller to queue N (1: ``queue``, 2..: ``queues`` in order)
during consult:  hang up: transfer (attended if the other side answered, blind while it rings);
                 flash 3: conference (all in one group); flash 1: drop the consulted party
================ ==============================================================================

IP phones send a transfer (REFER) as a flash, the target's digits, then hang up: a blind transfer.
"""

from __future__ import annotations

from .acd import Agent
from .actions import Action, Connect, Hangup, Hear, Isolate, LogEvent, Play, Publish, Ring, StartTone, \
    StopPlay, StopRing, StopTone

MAX_PARTIES = 6
FLASH_DIGIT_S = 4.0  # dialling after a flash ends this long after the last key


class Handling:
    def _init_handling(self) -> None:
        self.consults: dict[int, object] = {}  # consulted port (a seat's phone or a trunk leg) -> its call
        self.parties: dict[int, object] = {}  # ports of further parties in a call's group (seats or legs) -> call

    # --- the talk group -----------------------------------------------------------------------------

    def _group(self, call) -> list[int]:
        if not call.conf and call.port is not None and call.agent is not None:
            call.conf = [call.port, call.agent.port]
        return call.conf

    def _mesh(self, call, ports: list[int]) -> list[Action]:
        """Make the call's talk group exactly ``ports``, everyone hearing everyone in it."""
        old, new = set(self._group(call)), set(ports)
        out: list[Action] = [Hear(a, b, False) for a in old for b in old if a != b and not (a in new and b in new)]
        out += [Hear(a, b, True) for a in new for b in new if a != b and not (a in old and b in old)]
        call.conf = list(ports)
        return out + self._supervisor_mix(call)

    def _hold_music(self, call, group: list[int]) -> list[Action]:
        """A caller left alone in the group hears music; one with company does not."""
        if group == [call.port]:
            call.audio = "held"
            return [Play(call.port, "moh")]
        if call.audio == "held":
            call.audio = None
            return [StopPlay(call.port)]
        return []

    # --- flash and digits ---------------------------------------------------------------------------

    def _talking_call(self, agent: Agent):
        return next((c for c in self.calls_all() if c.agent is agent and c.state == "talking"), None)

    def _flash(self, port: int, now: float) -> list[Action]:
        agent = self.acd.by_port.get(port)
        call = self._talking_call(agent) if agent is not None else None
        if call is None or call.port is None:
            return []
        if call.flash is not None:  # a second flash: back to the caller, dropping a consultation
            return self._back_to_group(call, agent, now)
        call.flash, call.flash_deadline = "", now + FLASH_DIGIT_S
        out: list[Action] = [LogEvent(call.call_id, "call.flash", {"seat": agent.seat})]
        if call.consult is not None:  # the consulted party waits while the agent chooses 1 or 3
            out += [Hear(agent.port, call.consult["port"], False), Hear(call.consult["port"], agent.port, False)]
            return out + [StartTone(agent.port, "dial")]
        rest = [p for p in self._group(call) if p != agent.port]
        out += self._mesh(call, rest) + self._hold_music(call, rest)
        return out + [LogEvent(call.call_id, "call.hold", {"seat": agent.seat}), StartTone(agent.port, "dial")]

    def _phone_hold(self, port: int, on: bool, now: float) -> list[Action]:
        """An IP phone's hold key: the agent leaves the group (a caller alone hears music), or comes back."""
        agent = self.acd.by_port.get(port)
        call = self._talking_call(agent) if agent is not None else None
        if call is None or call.port is None or call.flash is not None or call.consult is not None:
            return []
        group = [p for p in self._group(call) if p != agent.port] + ([agent.port] if not on else [])
        return [LogEvent(call.call_id, "call.hold" if on else "call.resume", {"seat": agent.seat}),
                *self._hold_music(call, group), *self._mesh(call, group)]

    def _flash_digit(self, call, agent: Agent, digit: str, now: float) -> list[Action]:
        digits = call.flash + digit
        out: list[Action] = [StopTone(agent.port)] if not call.flash else []
        call.flash, call.flash_deadline = digits, now + FLASH_DIGIT_S
        if call.consult is not None:  # flash during a consultation: 3 joins everyone, anything else drops it
            call.flash = None
            if digits == "3":
                return out + self._conference(call, agent, now)
            return out + self._back_to_group(call, agent, now)
        if digits == "#":
            return out + self._back_to_group(call, agent, now)
        if digits.startswith("*9"):
            return out + (self._to_queue(call, agent, digits, now) if digits.endswith("#") else [])
        exts = {a.extension: a for a in self.acd.agents}
        if digits in exts and not any(e != digits and e.startswith(digits) for e in exts):
            return out + self._consult_seat(call, agent, exts[digits], now)
        if digits.endswith("#"):
            number = digits[:-1]
            if number in exts:
                return out + self._consult_seat(call, agent, exts[number], now)
            return out + self._consult_number(call, agent, number, now)
        return out

    def _flash_timeouts(self, now: float) -> list[Action]:
        out: list[Action] = []
        for call in list(self.by_id.values()):
            if call.flash is not None and call.flash_deadline is not None and call.flash_deadline <= now:
                agent = call.agent
                if call.flash and call.consult is None and not call.flash.startswith("*"):
                    out += self._flash_digit(call, agent, "#", now)  # dialled, then waited: as if # was pressed
                else:
                    out += self._back_to_group(call, agent, now)
            consult = call.consult
            if consult is not None and consult.get("deadline") is not None and consult["deadline"] <= now:
                out += self._consult_unanswered(call, now)
        return out

    def _back_to_group(self, call, agent: Agent, now: float) -> list[Action]:
        call.flash = call.flash_deadline = None
        out: list[Action] = [StopTone(agent.port)] + self._drop_consult(call, now)
        group = [p for p in self._group(call) if p != agent.port] + [agent.port]
        out += self._hold_music(call, group) + self._mesh(call, group)
        return out + [LogEvent(call.call_id, "call.resume", {"seat": agent.seat})]

    # --- consultation ---------------------------------------------------------------------------------

    def _consult_seat(self, call, agent: Agent, target: Agent, now: float) -> list[Action]:
        if target is agent or target.state != "available":
            call.flash = ""  # the agent hears busy and may dial again or flash back
            return [LogEvent(call.call_id, "call.consult_failed", {"seat": target.seat, "state": target.state}),
                    StartTone(agent.port, "busy")]
        call.flash = call.flash_deadline = None
        target.call_id = call.call_id
        call.consult = {"port": target.port, "seat": target, "state": "ringing",
                        "deadline": now + self.queue_cfg[self.queue_name]["ring_timeout_s"]}
        self.consults[target.port] = call
        return [LogEvent(call.call_id, "call.consult", {"seat": agent.seat, "to_seat": target.seat}),
                Ring(target.port, agent.extension), *self._agent_state(target, "ringing", now),
                StartTone(agent.port, "ringback")]

    def _consult_number(self, call, agent: Agent, number: str, now: float) -> list[Action]:
        leg = self._free_trunk() if len(number) >= 3 and number.isdigit() else None
        if leg is None:
            call.flash = ""
            return [LogEvent(call.call_id, "call.consult_failed", {"number": number,
                                                                   "reason": "no free trunk channel" if number.isdigit()
                                                                   and len(number) >= 3 else "not a number"}),
                    StartTone(agent.port, "busy")]
        call.flash = call.flash_deadline = None
        call.consult = {"port": leg, "seat": None, "state": "dialing", "number": number}
        self.consults[leg] = call
        return [LogEvent(call.call_id, "call.consult", {"seat": agent.seat, "to_number": number, "port": leg}),
                *self._attempt_dial(call, leg, number, "consult", now), Hear(agent.port, leg), Hear(leg, agent.port)]

    def _consult_answered(self, port: int, now: float) -> list[Action]:
        """The consulted seat picked up, or the outside number answered (Connected)."""
        call = self.consults[port]
        consult = call.consult
        consult["state"], consult["deadline"] = "talking", None
        target = consult["seat"]
        out: list[Action] = [LogEvent(call.call_id, "call.consult_answered", {"port": port})]
        if consult.get("transfer"):  # blind transfer: the caller was waiting for this answer
            return out + self._hand_over(call, now)
        if target is not None:
            out += [StopRing(port), StopTone(call.agent.port), *self._agent_state(target, "talking", now),
                    Connect(call.agent.port, port)]
        return out

    def _consult_unanswered(self, call, now: float) -> list[Action]:
        """The consulted seat rang out: a waiting transfer goes back to the queue, a consulting agent hears busy."""
        consult = call.consult
        out = self._drop_consult(call, now)
        if consult.get("transfer"):
            call.state, call.agent = "queued", None
            return out + [StopTone(call.port), *self._queue_call(call, call.queue or self.queue_name, now)]
        return out + [StartTone(call.agent.port, "busy")]

    def _drop_consult(self, call, now: float) -> list[Action]:
        consult, call.consult = call.consult, None
        if consult is None:
            return []
        port, target = consult["port"], consult["seat"]
        self.consults.pop(port, None)
        out: list[Action] = [LogEvent(call.call_id, "call.consult_ended", {"port": port})]
        if target is None:  # the outside number
            return out + [Isolate(port), StopTone(port), Hangup(port, 16)]
        target.call_id = None
        if consult["state"] == "ringing":
            target.idle_since = now
            return out + [StopRing(port), *self._agent_state(target, "available", now)]
        target.resume, target.resume_reason = "wrap_up", None  # dropped: busy tone until the phone is down
        return out + [Isolate(port), StartTone(port, "busy"), *self._agent_state(target, "busy", now, "off_hook")]

    def _consult_released(self, port: int, cause: int, now: float) -> list[Action]:
        """The outside number consulted was cleared (busy, no answer, hung up)."""
        call = self.consults.pop(port)
        consult, call.consult = call.consult, None
        out: list[Action] = [LogEvent(call.call_id, "call.consult_ended", {"port": port, "cause": cause}),
                             Isolate(port)]
        if consult.get("transfer"):  # a blind transfer nobody took: back to the queue
            call.state = "queued"
            return out + self._queue_call(call, call.queue or self.queue_name, now)
        call.flash, call.flash_deadline = "", now + FLASH_DIGIT_S  # busy tone; flash or wait to go back
        return out + [StartTone(call.agent.port, "busy")]

    def _consult_gone(self, port: int, now: float) -> list[Action]:
        """The consulted seat hung up before the agent decided: the agent hears busy, then goes back."""
        call = self.consults[port]
        target = call.consult["seat"]
        if call.consult.get("transfer"):  # answered a blind transfer: an ordinary call now, ended by its agent
            return []
        out = self._drop_consult(call, now)
        target.resume = None
        out += [StopTone(port), *self._wrap_up(target, now, 0.0)]
        call.flash, call.flash_deadline = "", now + FLASH_DIGIT_S
        return out + [StartTone(call.agent.port, "busy")]

    def _to_queue(self, call, agent: Agent, digits: str, now: float) -> list[Action]:
        names = list(self.queue_cfg)
        n = digits[2:-1]
        if not n.isdigit() or not 1 <= int(n) <= len(names):
            call.flash = ""
            return [LogEvent(call.call_id, "call.consult_failed", {"queue": n, "reason": "no such queue"}),
                    StartTone(agent.port, "busy")]
        name = names[int(n) - 1]
        call.flash = call.flash_deadline = None
        out: list[Action] = [LogEvent(call.call_id, "call.transferred", {"from_seat": agent.seat, "kind": "queue",
                                                                         "to_queue": name}),
                             *self._agent_leaves(call, agent, now)]
        call.agent, call.conf, call.audio, call.state = None, [], None, "queued"
        return out + [StopPlay(call.port), *self._queue_call(call, name, now)]

    def _agent_hangs_up_in_group(self, call, agent: Agent, now: float) -> list[Action] | None:
        """The agent hung up while others stay in the call's group (a conference): they talk on; None if the
        agent was the caller's only company (the call ends as usual)."""
        rest = [p for p in self._group(call) if p != agent.port]
        others = [p for p in rest if p != call.port]
        if not others:
            return None
        out: list[Action] = [LogEvent(call.call_id, "call.party_left", {"port": agent.port}),
                             *self._agent_leaves(call, agent, now)]
        call.flash = call.flash_deadline = None
        if call.members:  # a seat in the conference carries the call on
            call.agent = call.members.pop(0)
            self.parties.pop(call.agent.port, None)
        else:  # only outside numbers left with the caller
            leg = others[0]
            self.parties.pop(leg, None)
            call.agent, call.state, call.leg, call.answer_out = None, "external", leg, now
            self.legs[leg] = call
        return out + self._mesh(call, rest) + self._hold_music(call, rest)

    # --- transfer and conference ------------------------------------------------------------------------

    def _agent_leaves(self, call, agent: Agent, now: float, *, on_hook: bool = True) -> list[Action]:
        """The agent's part of the call is over (talk counted): they hung up handing it on (wrap-up now), or were
        dropped with the phone still off hook (busy tone; wrap-up once it is down)."""
        agent.call_id = None
        self.acd.talked(agent, now - call.agent_answer, now)
        q = self.queue_cfg.get(call.queue or self.queue_name, self.queue_cfg[self.queue_name])
        agent.wrap_s = q["wrap_up_s"]
        if not on_hook:
            agent.resume, agent.resume_reason = "wrap_up", None
            return [Isolate(agent.port), StartTone(agent.port, "busy"),
                    *self._agent_state(agent, "busy", now, "off_hook")]
        return [Isolate(agent.port), StopTone(agent.port), *self._wrap_up(agent, now, agent.wrap_s)]

    def _transfer_on_hangup(self, call, agent: Agent, now: float) -> list[Action]:
        """The agent hung up during a consultation: the caller goes to the consulted party."""
        consult = call.consult
        kind = "attended" if consult["state"] == "talking" else "blind"
        out: list[Action] = [LogEvent(call.call_id, "call.transferred",
                                      {"from_seat": agent.seat, "kind": kind,
                                       "to_seat": consult["seat"].seat if consult["seat"] else None,
                                       "to_number": consult.get("number")}),
                             *self._agent_leaves(call, agent, now)]
        call.flash = call.flash_deadline = None
        call.conf = [p for p in self._group(call) if p != agent.port]
        if kind == "attended":
            return out + self._hand_over(call, now)
        consult["transfer"] = True  # the caller hears ringback until the other side answers
        call.agent = None
        out += [StopPlay(call.port), StartTone(call.port, "ringback")] if consult["seat"] is not None else \
            [StopPlay(call.port), Hear(call.port, consult["port"])]  # an outside number: its own progress tones
        return out

    def _hand_over(self, call, now: float) -> list[Action]:
        """The consulted party takes the caller (and the rest of the group)."""
        consult, call.consult = call.consult, None
        port, target = consult["port"], consult["seat"]
        self.consults.pop(port, None)
        out: list[Action] = [StopTone(call.port)]
        out += self._hold_music(call, call.conf + [port])
        if target is not None:
            out += [StopRing(port), *self._agent_state(target, "talking", now)]
            call.agent, call.agent_answer = target, call.agent_answer if call.agent_answer is not None else now
            out.append(Connect(call.port, port))
        else:  # the caller talks with the outside number from now on
            call.agent, call.state, call.leg, call.answer_out = None, "external", port, now
            call.target = f"number:{consult['number']}"
            self.legs[port] = call
        return out + self._mesh(call, call.conf + [port])

    def _conference(self, call, agent: Agent, now: float) -> list[Action]:
        group = [p for p in self._group(call) if p != agent.port] + [agent.port]
        consult = call.consult
        if consult["state"] != "talking" or len(group) + 1 > MAX_PARTIES:
            return self._back_to_group(call, agent, now)
        call.consult = None
        port = consult["port"]
        self.consults.pop(port, None)
        self.parties[port] = call
        if consult["seat"] is not None:
            call.members.append(consult["seat"])
        out: list[Action] = [StopTone(agent.port), *self._hold_music(call, group + [port])]
        out += self._mesh(call, group + [port])
        return out + [LogEvent(call.call_id, "call.conference", {"ports": list(call.conf)}),
                      Publish("call.conference", {"call_id": call.call_id, "parties": len(call.conf)})]

    def _party_left(self, port: int, now: float) -> list[Action]:
        """A further party of a conference hung up (a seat) or was cleared (a trunk leg)."""
        call = self.parties.pop(port)
        member = next((a for a in call.members if a.port == port), None)
        out: list[Action] = [LogEvent(call.call_id, "call.party_left", {"port": port}), Isolate(port)]
        if member is not None:
            call.members.remove(member)
            member.call_id = None
            out += self._wrap_up(member, now, self.queue_cfg[self.queue_name]["wrap_up_s"])
        rest = [p for p in call.conf if p != port]
        return out + self._mesh(call, rest) + self._hold_music(call, rest)

    def _end_handling(self, call, now: float) -> list[Action]:
        """The call ends: the consulted party and further parties are let go (seats hear busy, legs cleared)."""
        out = self._drop_consult(call, now)
        for port in [p for p, c in self.parties.items() if c is call]:
            del self.parties[port]
            member = next((a for a in call.members if a.port == port), None)
            out.append(Isolate(port))
            if member is None:
                out += [Hangup(port, 16)]
            else:
                member.call_id = None
                member.resume, member.resume_reason = "wrap_up", None
                out += [StartTone(port, "busy"), *self._agent_state(member, "busy", now, "off_hook")]
        call.members = []
        return out + self._end_supervision(call, now)
