"""Call control for inbound calls: trunk seizure -> IVR -> queue -> agent -> clearing, as sans-I/O logic.

``CallCentre.handle(event, now)`` takes card and runtime events and returns actions;
``advance(now)`` fires due timers; ``next_deadline()`` says when to call it next.
It never reads a clock, a socket or a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from drivers.base import Alarm, Digit, OffHook, OnHook, PortFault, Released, Seized

from .acd import Acd, Agent
from .caller import Screening, area, normalise
from .actions import (
    Action, Answer, Connect, Disconnect, Hangup, LogEvent, Play, PromptDone, Publish, Ring, StartRecording,
    StartTone, StopPlay, StopRecording, StopRing, StopTone, WriteCall,
)
from .ivr import IvrConfig, IvrSession


@dataclass
class Call:
    call_id: str
    port: int
    caller: str | None
    called: str
    start: float
    answer: float | None = None
    queued: float | None = None
    agent_answer: float | None = None
    end: float | None = None
    state: str = "ivr"  # ivr, blocked (the blocked prompt playing), queued, ringing, talking, ended
    agent: Agent | None = None  # the agent rung (one) or talking; None while ring-all rings several
    ringing: list[Agent] = field(default_factory=list)  # the agents being rung for the call
    ivr: IvrSession | None = None
    recorded: bool = False
    deadline: float | None = None  # ring timeout or maximum queue wait
    caller_national: str | None = None  # the calling number normalised (appliance.caller); None when withheld
    caller_area: str | None = None  # "湖北省武汉市", or None
    caller_kind: str | None = None  # appliance.caller.KINDS, or None when withheld
    vip: bool = False  # screening says VIP: queued ahead of normal callers
    block_reason: str | None = None  # screening blocked the call: "blacklist" or "withheld"

    @property
    def wait_s(self) -> float | None:
        if self.queued is None:
            return None
        return (self.agent_answer if self.agent_answer is not None else self.end) - self.queued


class CallCentre:
    """The inbound call path of the box for one queue.

    Parameters
    ----------
    trunk_ports : list of int
        Ports of trunk channels (rows of the frame arrays).
    agents : list of Agent
        The seats, each with the FXS port of its phone.
    ivr : IvrConfig
    queue : dict
        ``name``, ``ring_timeout_s``, ``max_wait_s``, ``strategy`` (the config section).
    record : bool
        Record every answered call.
    call_id_prefix : str
        Makes call ids unique across restarts (the runtime passes its start time).
    screening : appliance.caller.Screening, optional
        Blacklisted callers hear the ``blocked`` prompt and are cleared (cause 21), VIPs queue ahead.
    area_code : str
        The box's area code without the trunk 0, for local calling numbers (``appliance.caller.normalise``).
    """

    def __init__(self, trunk_ports: list[int], agents: list[Agent], ivr: IvrConfig, queue: dict,
                 *, record: bool = True, call_id_prefix: str = "c", port_spans: dict[int, int] | None = None,
                 screening: Screening | None = None, area_code: str = "27") -> None:
        self.trunk_ports = list(trunk_ports)
        self.port_spans = dict(port_spans or {p: 1 for p in self.trunk_ports})
        self.span_alarms: dict[int, list[str]] = {}  # spans in alarm and their alarms
        self.faulty_ports: dict[int, str] = {}  # ports out of service and why
        self.acd = Acd(agents, strategy=queue.get("strategy", "longest-idle"), seed=queue.get("seed", 0))
        self.ivr_cfg = ivr
        self.queue_name = queue.get("name", "default")
        self.ring_timeout_s = float(queue["ring_timeout_s"])
        self.max_wait_s = float(queue["max_wait_s"])
        self.record = record
        self.screening = screening
        self.area_code = area_code
        self.prefix = call_id_prefix
        self._n = 0
        self.calls: dict[int, Call] = {}  # by trunk port, live calls only
        self.counts = {"offered": 0, "answered": 0, "abandoned": 0}
        self.local_day: Callable[[float], tuple[float, float]] | None = None  # now -> (day start, next day start)
        self._day_end: float | None = None

    def new_day(self, now: float) -> None:
        """Begin the local day ``now`` lies in (the ACD's calls and talk today start from zero)."""
        if self.local_day is not None:
            start, self._day_end = self.local_day(now)
            self.acd.start_day(start)

    # --- entry points -----------------------------------------------------------------------

    def handle(self, event: object, now: float) -> list[Action]:
        if isinstance(event, Seized):
            return self._seized(event, now)
        if isinstance(event, Released):
            return self._released(event.port, now, event.cause)
        if isinstance(event, Digit):
            call = self.calls.get(event.port)
            if call is not None and call.ivr is not None:
                acts, outcome = call.ivr.digit(event.digit, now)
                return acts + self._ivr_outcome(call, outcome, now)
            return []
        if isinstance(event, PromptDone):
            call = self.calls.get(event.port)
            if call is not None and call.state == "blocked":  # the blocked prompt has ended: call rejected
                return self._end(call, now, "blocked", "system", cause=21, reason=call.block_reason)
            if call is not None and call.ivr is not None:
                acts, outcome = call.ivr.prompt_done(now)
                return acts + self._ivr_outcome(call, outcome, now)
            return []
        if isinstance(event, OffHook):
            return self._offhook(event.port, now)
        if isinstance(event, OnHook):
            return self._onhook(event.port, now)
        if isinstance(event, Alarm):
            return self._span_alarm(event, now)
        if isinstance(event, PortFault):
            return self._port_fault(event, now)
        return []

    def next_deadline(self) -> float | None:
        times = [c.deadline for c in self.calls.values() if c.deadline is not None]
        if self._day_end is not None:
            times.append(self._day_end)  # midnight: a new day for the ACD's counts
        times += [c.ivr.deadline for c in self.calls.values() if c.ivr is not None and c.ivr.deadline is not None]
        return min(times) if times else None

    def advance(self, now: float) -> list[Action]:
        if self._day_end is not None and now >= self._day_end:  # midnight
            self.new_day(now)
        out: list[Action] = []
        for call in list(self.calls.values()):
            if call.ivr is not None and call.ivr.deadline is not None and call.ivr.deadline <= now:
                acts, outcome = call.ivr.timeout(now)
                out += acts + self._ivr_outcome(call, outcome, now)
            if call.deadline is not None and call.deadline <= now:
                call.deadline = None
                if call.state == "ringing":
                    out += self._ring_no_answer(call, now)
                elif call.state == "queued":
                    out += self._end(call, now, "abandoned", "system", cause=16, reason="max_wait")
        return out + self._dispatch(now)

    # --- inbound call -------------------------------------------------------------------------

    def _seized(self, ev: Seized, now: float) -> list[Action]:
        if ev.port in self.calls:  # a glare the card should not produce: keep the live call
            return [Hangup(ev.port, 34)]
        self._n += 1
        call = Call(f"{self.prefix}-{self._n:06d}", ev.port, ev.calling, ev.called, start=now, answer=now)
        number = normalise(ev.calling, home_area=self.area_code)
        if number is not None:
            call.caller_national, call.caller_area, call.caller_kind = number.national, area(number, "zh"), number.kind
        verdict = self.screening.check(number) if self.screening is not None else "normal"
        self.calls[ev.port] = call
        self.counts["offered"] += 1
        info = {"call_id": call.call_id, "caller": ev.calling, "called": ev.called, "port": ev.port,
                "caller_national": call.caller_national, "caller_area": call.caller_area,
                "caller_kind": call.caller_kind}
        if verdict == "vip":
            call.vip = True
            info["vip"] = True
        out: list[Action] = [Answer(ev.port), LogEvent(call.call_id, "call.offered", info),
                             Publish("call.offered", info)]
        if verdict == "blocked":  # answered so the caller hears why, then cleared when the prompt ends
            call.state, call.block_reason = "blocked", "withheld" if number is None else "blacklist"
            return out + [LogEvent(call.call_id, "call.blocked", {"reason": call.block_reason,
                                                                   "caller": ev.calling}),
                          Play(ev.port, "blocked")]
        call.ivr = IvrSession(call.call_id, ev.port, self.ivr_cfg)
        return out + call.ivr.start(now)

    def _ivr_outcome(self, call: Call, outcome: str | None, now: float) -> list[Action]:
        if outcome == "queue":
            call.ivr = None
            call.state, call.queued = "queued", now
            call.deadline = now + self.max_wait_s
            pos = self.acd.enqueue(call.call_id, now, priority=1 if call.vip else 0)
            data = {"call_id": call.call_id, "position": pos, "queue": self.queue_name}
            if call.vip:
                data["vip"] = True
            return [
                StartTone(call.port, "ringback"),
                LogEvent(call.call_id, "call.queued", data),
                Publish("call.queued", data),
                Publish("queue.length", {"length": len(self.acd.queue)}),
                *self._dispatch(now),
            ]
        if outcome == "hangup":  # the goodbye prompt has ended: nothing left to stop
            call.ivr = None
            return self._end(call, now, "ivr", "system", cause=16)
        return []

    def _dispatch(self, now: float) -> list[Action]:
        out: list[Action] = []
        while (got := self.acd.next_group()) is not None:
            entry, group = got
            call = next(c for c in self.calls.values() if c.call_id == entry.call_id)
            call.state, call.ringing = "ringing", list(group)
            call.agent = group[0] if len(group) == 1 else None
            call.deadline = now + self.ring_timeout_s
            for agent in group:
                agent.call_id = call.call_id
                data = {"call_id": call.call_id, "seat": agent.seat}
                out += [
                    Ring(agent.port, call.caller),
                    *self._agent_state(agent, "ringing", now),
                    LogEvent(call.call_id, "call.ringing", data),
                    Publish("call.ringing", data),
                ]
            out.append(Publish("queue.length", {"length": len(self.acd.queue)}))
        return out

    def _stop_ringing(self, call: Call, now: float, *, keep: Agent | None = None,
                      to_back: bool = True) -> list[Action]:
        """Stop ringing the call's agents (but ``keep``); they are available again, at the back of the
        idle order if ``to_back``."""
        out: list[Action] = []
        for agent in call.ringing:
            if agent is keep:
                continue
            agent.call_id = None
            if to_back:
                agent.idle_since = now
            out += [StopRing(agent.port), *self._agent_state(agent, "available", now)]
        call.ringing = []
        return out

    def _ring_no_answer(self, call: Call, now: float) -> list[Action]:
        rung = call.ringing
        call.agent, call.state = None, "queued"
        call.deadline = call.queued + self.max_wait_s
        self.acd.enqueue(call.call_id, call.queued, front=True, priority=1 if call.vip else 0)
        out: list[Action] = []
        for agent in rung:  # each to the back of the idle order
            agent.call_id = None
            agent.idle_since = now
            out += [
                StopRing(agent.port),
                LogEvent(call.call_id, "call.ring_no_answer", {"seat": agent.seat, "ring_s": self.ring_timeout_s}),
                *self._agent_state(agent, "available", now),
            ]
        call.ringing = []
        return out

    def _offhook(self, port: int, now: float) -> list[Action]:
        agent = self.acd.by_port.get(port)
        if agent is None:
            return []
        call = next((c for c in self.calls.values() if agent in c.ringing), None)
        if agent.state != "ringing" or call is None:
            # off hook with no call for the seat: an available agent is busy until the phone goes down
            if agent.state != "available":
                return []
            agent.resume = "available"
            return self._agent_state(agent, "busy", now)
        others = self._stop_ringing(call, now, keep=agent, to_back=False)  # ring-all: the first to answer
        call.state, call.agent_answer, call.deadline, call.agent = "talking", now, None, agent
        self.counts["answered"] += 1
        self.acd.answered(agent, now)
        data = {"call_id": call.call_id, "seat": agent.seat, "wait_s": round(call.wait_s, 3)}
        out: list[Action] = [
            StopRing(port),
            *others,
            StopTone(call.port),
            Connect(call.port, port),
            *self._agent_state(agent, "talking", now),
            LogEvent(call.call_id, "call.answered", data),
            Publish("call.answered", data),
        ]
        if self.record:
            call.recorded = True
            out.append(StartRecording(call.call_id, call.port, port))
        return out

    def _onhook(self, port: int, now: float) -> list[Action]:
        agent = self.acd.by_port.get(port)
        if agent is None:
            return []
        call = next((c for c in self.calls.values() if c.agent is agent and c.state == "talking"), None)
        if call is not None:
            return self._end(call, now, "answered", "agent", cause=16)
        out: list[Action] = [StopTone(port)]
        if agent.resume is not None:
            state, agent.resume = agent.resume, None
            if state == "available":
                agent.idle_since = now
            out += self._agent_state(agent, state, now)
        return out + self._dispatch(now)

    def _released(self, port: int, now: float, cause: int) -> list[Action]:
        call = self.calls.get(port)
        if call is None:
            return []
        disposition = {"ivr": "ivr", "blocked": "blocked", "queued": "abandoned", "ringing": "abandoned",
                       "talking": "answered"}[call.state]
        return self._end(call, now, disposition, "caller", cause=None)

    # --- clearing -------------------------------------------------------------------------------

    def _end(self, call: Call, now: float, disposition: str, ended_by: str, *, cause: int | None,
             reason: str | None = None) -> list[Action]:
        out: list[Action] = []
        call.end = now
        if call.ivr is not None or call.state == "blocked":
            out.append(StopPlay(call.port))
        out.append(StopTone(call.port))
        if call.state == "queued":
            self.acd.remove(call.call_id)
            out.append(Publish("queue.length", {"length": len(self.acd.queue)}))
        agent = call.agent
        if call.state == "ringing":
            out += self._stop_ringing(call, now)
        elif agent is not None:
            agent.call_id = None
            if call.state == "talking":
                self.acd.talked(agent, now - call.agent_answer, now)
                out.append(Disconnect(call.port, agent.port))
                if ended_by == "agent":
                    agent.idle_since = now
                    out += self._agent_state(agent, "available", now)
                else:  # the agent hears busy tone until putting the phone down
                    agent.resume = "available"
                    out += [StartTone(agent.port, "busy"), *self._agent_state(agent, "busy", now)]
        if call.recorded:
            out.append(StopRecording(call.call_id))
        if cause is not None:
            out.append(Hangup(call.port, cause))
        if disposition == "abandoned":
            self.counts["abandoned"] += 1
        call.state = "ended"
        talk = now - call.agent_answer if call.agent_answer is not None else None
        wait = call.wait_s
        record = {
            "call_id": call.call_id, "direction": "in", "caller": call.caller, "called": call.called,
            "trunk_port": call.port, "queue": self.queue_name if call.queued is not None else None,
            "seat": agent.seat if agent and call.agent_answer is not None else None,
            "agent": agent.name if agent and call.agent_answer is not None else None,
            "start_ts": call.start, "answer_ts": call.answer, "queued_ts": call.queued,
            "agent_answer_ts": call.agent_answer, "end_ts": now, "wait_s": wait, "talk_s": talk,
            "disposition": disposition, "ended_by": ended_by, "caller_national": call.caller_national,
            "caller_area": call.caller_area, "caller_kind": call.caller_kind,
        }
        data = {"call_id": call.call_id, "disposition": disposition, "ended_by": ended_by,
                "talk_s": None if talk is None else round(talk, 3), "wait_s": None if wait is None else round(wait, 3)}
        if reason:
            data["reason"] = reason
        out += [WriteCall(record), LogEvent(call.call_id, "call.ended", data), Publish("call.ended", data)]
        del self.calls[call.port]
        return out + self._dispatch(now)

    def _agent_state(self, agent: Agent, state: str, now: float) -> list[Action]:
        if agent.state == state:
            return []
        agent.set_state(state, now)
        return [Publish("agent.state", {"seat": agent.seat, "state": state})]

    # --- faults ------------------------------------------------------------------------------

    def _span_alarm(self, event: Alarm, now: float) -> list[Action]:
        """Mark a span down or up; its calls end by the card's own Released events (cause 38)."""
        alarms = sorted(event.alarms)
        if alarms:
            self.span_alarms[event.span] = alarms
        else:
            self.span_alarms.pop(event.span, None)
        return [Publish("span.alarm", {"span": event.span, "alarms": alarms})]

    def _port_fault(self, event: PortFault, now: float) -> list[Action]:
        """A port that fails is out of service until it works again; a seat's call on it ends."""
        out: list[Action] = [Publish("port.fault", {"port": event.port, "ok": event.ok, "reason": event.reason})]
        agent = self.acd.by_port.get(event.port)
        if not event.ok:
            self.faulty_ports[event.port] = event.reason
            if agent is not None:
                if agent.state == "talking":
                    out += self._onhook(event.port, now)  # nobody can hear the agent any more
                agent.resume = None
                out += self._agent_state(agent, "out_of_service", now)
            return out
        self.faulty_ports.pop(event.port, None)
        if agent is not None and agent.state == "out_of_service":
            agent.idle_since = now
            out += self._agent_state(agent, "available", now) + self._dispatch(now)
        return out

    # --- commands ----------------------------------------------------------------------------

    def set_agent_state(self, agent: Agent, state: str, now: float) -> list[Action]:
        """An agent (or supervisor) sets a seat available, busy or logged out between calls."""
        if agent.state in ("ringing", "talking"):
            raise ValueError(f"seat {agent.seat} is {agent.state}; its state can change after the call")
        if state == "available" and agent.state != "available":
            agent.idle_since = now
        if agent.resume is not None:  # still off hook after a call: the new state holds after hang-up
            agent.resume = state
            return []
        return self._agent_state(agent, state, now) + self._dispatch(now)

    # --- views ------------------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict:
        """Trunks, seats and queue for the status command; times are on the runtime's clock."""
        by_id = {c.call_id: c for c in self.calls.values()}
        trunk_state = {"ivr": "ivr", "blocked": "ivr", "queued": "queued", "ringing": "queued", "talking": "agent"}
        trunks = []
        for channel, port in enumerate(self.trunk_ports, 1):
            c = self.calls.get(port)
            down = port in self.faulty_ports or self.port_spans.get(port) in self.span_alarms
            trunks.append({"port": port, "channel": channel,
                           "state": trunk_state[c.state] if c else ("alarm" if down else "idle"),
                           "caller": c.caller if c else None, "call_id": c.call_id if c else None})
        seats = []
        for a in self.acd.agents:
            c = by_id.get(a.call_id) if a.call_id else None
            seats.append({"seat": a.seat, "name": a.name, "extension": a.extension, "state": a.state,
                          "caller": c.caller if c else None, "call_id": a.call_id, "since": a.since})
        queue = [{"call_id": e.call_id, "caller": by_id[e.call_id].caller, "position": i + 1,
                  "waiting_s": round(now - e.enqueued_at, 1)} for i, e in enumerate(self.acd.queue)]
        return {"trunks": trunks, "seats": seats, "queue": queue,
                "today": {**self.counts, "in_progress": len(self.calls)},
                "alarms": {"spans": {str(k): v for k, v in sorted(self.span_alarms.items())},
                           "ports": {str(k): v for k, v in sorted(self.faulty_ports.items())}}}
