"""Call control for inbound calls: trunk seizure -> IVR flow -> queue or target -> agent -> clearing, sans-I/O.

``CallCentre.handle(event, now)`` takes card and runtime events and returns actions;
``advance(now)`` fires due timers; ``next_deadline()`` says when to call it next.
It never reads a clock, a socket or a file. The queue side is ``appliance.queueing``,
the agents' side ``appliance.seats``, calls that leave on another trunk channel
(transfer to a number, callback, voicemail) ``appliance.legs``.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Callable

from drivers.base import Alarm, Alerting, Connected, Digit, Flash, Hold, OffHook, OnHook, PortFault, Released, Seized

from .acd import Acd, Agent
from .actions import (
    Action, Answer, Connect, Disconnect, Hangup, HttpResult, LogEvent, Play, PromptDone, Publish, StartRecording,
    StartTone, StopPlay, StopRecording, StopRing, StopTone, TrunkTone, WriteCall,
)
from .call import Call
from .caller import Screening, area, normalise
from .config_acd import QUEUE_OPTIONS
from .faxcalls import FAX_EVENTS, FaxCalls
from .flowrun import FlowSession, Outcome
from .handling import Handling
from .legs import Legs
from .messages import CATALOG
from .callviews import Views
from .linefaults import LineFaults
from .outbound import SIGNALS, Outbound, OutboundCall
from .queueing import AHT_START_S, AHT_WEIGHT, Queueing
from .recpolicy import records
from .seats import Seats
from .supervise import Supervision

SAID = ("queue_busy", "queue_callback", "callback")  # texts the logic fills in and has spoken (Say)


def _queue_settings(queues: dict | list[dict]) -> list[dict]:
    """Queue settings with every option present (a test or an old caller may give only some)."""
    items = [queues] if isinstance(queues, dict) else list(queues)
    return [{**{k: copy.deepcopy(o.default) for k, o in QUEUE_OPTIONS.items()}, **q} for q in items]


class CallCentre(FaxCalls, Queueing, Seats, Legs, Handling, Supervision, LineFaults, Outbound, Views):
    """The call path of the box.

    Parameters
    ----------
    trunk_ports : list of int
        Ports of trunk channels (rows of the frame arrays).
    agents : list of Agent
        The seats, each with the FXS port (or IP phone) of its phone.
    flow : dict
        The IVR flow (``appliance.flows``, checked) new calls walk; ``set_flow`` changes it for new calls.
    queues : dict or list of dict
        Queue settings (``config_acd.QUEUE_OPTIONS``), the first being the default queue.
    record : bool or appliance.recpolicy.RecordingPolicy
        Which answered calls are recorded: every one (True), none (False), or as the policy says.
    call_id_prefix : str
        Makes call ids unique across restarts (the runtime passes its start time).
    screening : appliance.caller.Screening, optional
        Blacklisted callers hear the ``blocked`` prompt and are cleared (cause 21), VIPs queue ahead.
    area_code : str
        The box's area code without the trunk 0, for local calling numbers (``appliance.caller.normalise``).
    book : dict, optional
        Agent id -> the agent's settings (``agents`` section); empty: every seat is its own agent.
    lang : str
        Language of the announcements spoken to callers (zh, en).
    texts : dict, optional
        The words of announcements (``SAID``; the config's ``prompts`` section), else the catalog's in ``lang``.
    """

    def __init__(self, trunk_ports: list[int], agents: list[Agent], flow: dict, queues: dict | list[dict],
                 *, record: bool = True, call_id_prefix: str = "c", port_spans: dict[int, int] | None = None,
                 screening: Screening | None = None, area_code: str = "27", book: dict[str, dict] | None = None,
                 lang: str = "zh", texts: dict[str, str] | None = None) -> None:
        self.trunk_ports = list(trunk_ports)
        self.port_spans = dict(port_spans or {p: 1 for p in self.trunk_ports})
        self.span_alarms: dict[int, list[str]] = {}  # spans in alarm and their alarms
        self.faulty_ports: dict[int, str] = {}  # ports out of service and why
        settings = _queue_settings(queues)
        self.queue_cfg = {q["name"]: q for q in settings}
        self.acd = Acd(agents, queues=[(q["name"], q["strategy"]) for q in settings], seed=settings[0].get("seed", 0))
        self.queue_name = settings[0]["name"]
        self.aht = {name: AHT_START_S for name in self.queue_cfg}
        self.flow = flow
        self.wall: Callable[[float], dt.datetime] = lambda now: dt.datetime.fromtimestamp(now)  # Core: local time
        self.record = record
        self.screening = screening
        self.area_code = area_code
        self.lang = lang
        self.texts = {key: (texts or {}).get(key) or CATALOG[f"prompt.{key}"][lang] for key in SAID}
        self.prefix = call_id_prefix
        self._n = 0
        self.calls: dict[int, Call] = {}  # by the caller's trunk port, live calls only
        self.parked: dict[str, Call] = {}  # callbacks whose caller has hung up, by call id
        self.by_id: dict[str, Call] = {}  # every live call (parked too)
        self.counts = {"offered": 0, "answered": 0, "abandoned": 0}
        self.local_day: Callable[[float], tuple[float, float]] | None = None  # now -> (day start, next day start)
        self._day_end: float | None = None
        self._init_seats(book)
        self._init_legs()
        self._init_outbound()
        self._init_fax_calls()  # inbound calls that turn out to be faxes, outbound fax jobs: appliance.faxcalls
        self._init_handling()
        self._init_supervision()

    def set_flow(self, flow: dict) -> None:
        """New calls walk ``flow``; calls in the IVR now finish on the flow they started on."""
        self.flow = flow

    def new_day(self, now: float) -> None:
        """Begin the local day ``now`` lies in (the ACD's calls and talk today start from zero)."""
        if self.local_day is not None:
            start, self._day_end = self.local_day(now)
            self.acd.start_day(start)

    def calls_all(self) -> list[Call]:
        return list(self.by_id.values())

    # --- entry points -----------------------------------------------------------------------

    def handle(self, event: object, now: float) -> list[Action]:
        kind = type(event)
        if kind in SIGNALS and event.port in self.attempts:  # noted for the outbound attempt's result, then routed
            self._attempt_signal(event, now)
        if kind in SIGNALS and event.port in self.fax_lines:
            return self._fax_signal(event, now)
        if kind in FAX_EVENTS:
            return self._fax_event(event, now)
        if kind is TrunkTone:
            return self._trunk_tone(event.port, event.tone, now) if event.port in self.attempts else \
                self._fax_tone(event.port, event.tone, now)
        if kind is Seized:
            return self._seized(event, now) + self._fax_seized(event.port, event.called, now)
        if kind is Flash:
            return self._flash(event.port, now)
        if kind is Hold:
            return self._phone_hold(event.port, event.on, now)
        if kind is Released and event.port in self.consults:
            return self._consult_released(event.port, event.cause, now)
        if kind is Released and event.port in self.parties:
            return self._party_left(event.port, now)
        if kind is Connected and event.port in self.consults:
            return self._consult_answered(event.port, now)
        if kind is Released:
            if event.port in self.legs:
                return self._leg_released(event.port, event.cause, now)
            return self._released(event.port, now, event.cause)
        if kind is Digit:
            return self._digit(event.port, event.digit, now)
        if kind is PromptDone:
            return self._prompt_done(event.port, now)
        if kind is HttpResult:
            call = self.by_id.get(event.call_id)
            if call is not None and call.ivr is not None:
                acts, outcome = call.ivr.http_result(event.ok, event.fields, now)
                return acts + self._flow_outcome(call, outcome, now)
            return []
        if kind is OffHook:
            return self._offhook(event.port, now)
        if kind is OnHook:
            return self._onhook(event.port, now)
        if kind is Connected:
            return self._leg_connected(event.port, now)
        if kind is Alerting:
            return [LogEvent(self.legs[event.port].call_id, "call.leg_alerting", {"port": event.port})] \
                if event.port in self.legs else []
        if kind is Alarm:
            return self._span_alarm(event, now)
        if kind is PortFault:
            return self._port_fault(event, now)
        return []

    def next_deadline(self) -> float | None:
        times = [t for c in self.by_id.values() for t in (c.deadline, c.announce_at) if t is not None]
        times += [c.ivr.deadline for c in self.by_id.values() if c.ivr is not None and c.ivr.deadline is not None]
        times += [a.wrap_until for a in self.acd.agents if a.wrap_until is not None]
        times += self.dial_deadline.values()
        times += self._outbound_deadlines() + self._fax_deadlines()
        times += [c.flash_deadline for c in self.by_id.values() if c.flash_deadline is not None]
        times += [c.consult["deadline"] for c in self.by_id.values() if c.consult and c.consult.get("deadline")]
        if self._day_end is not None:
            times.append(self._day_end)  # midnight: a new day for the ACD's counts
        return min(times) if times else None

    def advance(self, now: float) -> list[Action]:
        if self._day_end is not None and now >= self._day_end:  # midnight
            self.new_day(now)
        out: list[Action] = self._wrap_ups_due(now) + self._dial_timeouts(now) + self._flash_timeouts(now)
        for call in list(self.by_id.values()):
            if call.ivr is not None and call.ivr.deadline is not None and call.ivr.deadline <= now:
                acts, outcome = call.ivr.timeout(now)
                out += acts + self._flow_outcome(call, outcome, now)
            if call.deadline is not None and call.deadline <= now and call.state != "ended":
                call.deadline = None
                if call.state == "ringing":
                    out += self._ring_no_answer(call, now)
                elif call.state == "queued":
                    out += self._queue_timeout(call, now)
                elif call.state == "voicemail":
                    out += self._end(call, now, "voicemail", "system", cause=16)
        out += self._announcements_due(now)
        out += self._dispatch(now)
        # after the ACD: waiting callers get free agents before campaigns and fax jobs
        return out + self._outbound_due(now) + self._fax_jobs_due(now)

    # --- inbound call -------------------------------------------------------------------------

    def _seized(self, ev: Seized, now: float) -> list[Action]:
        if ev.port in self.calls or ev.port in self.legs:  # a glare the card should not produce: keep the live call
            return [Hangup(ev.port, 34)]
        self._n += 1
        call = Call(f"{self.prefix}-{self._n:06d}", ev.port, ev.calling, ev.called, start=now, answer=now,
                    trunk_port=ev.port)
        number = normalise(ev.calling, home_area=self.area_code)
        if number is not None:
            call.caller_national, call.caller_area, call.caller_kind = number.national, area(number, "zh"), number.kind
        verdict = self.screening.check(number) if self.screening is not None else "normal"
        self.calls[ev.port] = call
        self.by_id[call.call_id] = call
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
        variables = {"caller": call.caller_national or "", "called": ev.called, "call_id": call.call_id}
        call.ivr = FlowSession(call.call_id, ev.port, self.flow, wall=self.wall, variables=variables)
        acts, outcome = call.ivr.start(now)
        return out + acts + self._flow_outcome(call, outcome, now)

    def _flow_outcome(self, call: Call, outcome: Outcome | None, now: float) -> list[Action]:
        if outcome is None:
            return []
        node = call.ivr.flow["nodes"].get(call.ivr.node, {}) if call.ivr.node else {}
        greeted = "text" in node or "prompt" in node  # a voicemail node that said its own greeting
        call.ivr = None
        data = {"kind": outcome.kind, "target": outcome.target}
        out: list[Action] = [LogEvent(call.call_id, "ivr.exit", data)]
        if outcome.kind == "queue":
            return out + self._queue_call(call, outcome.target or self.queue_name, now)
        if outcome.kind == "hangup":  # the goodbye prompt (if any) has ended
            return out + self._end(call, now, "ivr", "system", cause=16)
        if outcome.kind == "transfer":
            kind, _, arg = outcome.target.partition(":")
            if kind in ("seat", "ext", "agent"):  # a seat, a seat's extension, or where the agent is logged in
                field = {"seat": lambda a: str(a.seat), "ext": lambda a: a.extension, "agent": lambda a: a.agent_id}
                agent = next((a for a in self.acd.agents if field[kind](a) == arg), None)
                if agent is not None:
                    call.direct_seat = agent.seat
                    return out + self._queue_call(call, self.queue_name, now, seat=agent.seat)
                return out + self._queue_call(call, self.queue_name, now)
        if outcome.kind == "voicemail":
            return out + self._to_target(call, f"voicemail:{outcome.target}", now, greeted=greeted)
        return out + self._to_target(call, outcome.target, now)

    def _digit(self, port: int, digit: str, now: float) -> list[Action]:
        call = self.calls.get(port)
        if call is None:
            if port in self.legs:
                return []
            return self._seat_digit(port, digit, now)
        if call.ivr is not None:
            acts, outcome = call.ivr.digit(digit, now)
            return acts + self._flow_outcome(call, outcome, now)
        if call.state in ("queued", "ringing"):
            return self._waiting_digit(call, digit, now)
        if call.state == "voicemail" and call.audio == "recording" and digit == "#":
            return self._end(call, now, "voicemail", "caller", cause=16)
        return []

    def _prompt_done(self, port: int, now: float) -> list[Action]:
        call = self.calls.get(port)
        if call is None:
            return []
        if call.state == "blocked":  # the blocked prompt has ended: call rejected
            return self._end(call, now, "blocked", "system", cause=21, reason=call.block_reason)
        if call.ivr is not None:
            acts, outcome = call.ivr.prompt_done(now)
            return acts + self._flow_outcome(call, outcome, now)
        if call.state in ("queued", "ringing"):
            return self._waiting_prompt_done(call, now)
        if call.state == "leaving":
            return self._end(call, now, call.disposition or "abandoned", "system", cause=16, reason=call.leaving)
        if call.state == "voicemail":
            return self._voicemail_prompt_done(call, now)
        return []

    def _answer(self, call: Call, agent: Agent, now: float) -> list[Action]:
        """``agent`` picked up for ``call``: connect, or (a parked callback) dial the caller back."""
        if isinstance(call, OutboundCall):  # click-to-dial or a campaign: the number is dialled now
            return self._dial_answer(call, agent, now)
        others = self._stop_ringing(call, now, keep=agent, to_back=False)  # ring-all: the first to answer
        call.state, call.agent_answer, call.deadline, call.agent = "talking", now, None, agent
        call.announce_at, call.audio = None, None
        agent.missed = 0
        self.counts["answered"] += 1
        self.acd.answered(agent, now)
        data = {"call_id": call.call_id, "seat": agent.seat, "wait_s": round(call.wait_s, 3), "queue": call.queue,
                "agent_id": agent.agent_id}
        out: list[Action] = [StopRing(agent.port), *others, *self._agent_state(agent, "talking", now),
                             LogEvent(call.call_id, "call.answered", data), Publish("call.answered", data)]
        if call.port is None:
            return out + self._call_back(call, agent, now)
        out += [StopPlay(call.port), StopTone(call.port), Connect(call.port, agent.port)]
        if records(self.record, call, agent):
            call.recorded = True
            out.append(StartRecording(call.call_id, call.port, agent.port))
        return out

    def _released(self, port: int, now: float, cause: int) -> list[Action]:
        call = self.calls.get(port)
        if call is None:
            return []
        disposition = {"ivr": "ivr", "blocked": "blocked", "talking": "answered", "calling_back": "failed"}.get(
            call.state, "abandoned")
        if call.state == "external" and call.answer_out is not None or call.state == "voicemail" and \
                call.audio == "recording":
            disposition = "transferred" if call.state == "external" else "voicemail"
        return self._end(call, now, disposition, "caller", cause=None)

    # --- clearing -------------------------------------------------------------------------------

    def _clear_port(self, port: int, cause: int | None) -> list[Action]:
        out: list[Action] = [StopPlay(port), StopTone(port)]
        return out + ([Hangup(port, cause)] if cause is not None else [])

    def _end(self, call: Call, now: float, disposition: str, ended_by: str, *, cause: int | None,
             reason: str | None = None) -> list[Action]:
        out: list[Action] = self._voicemail_ended(call, now) + self._end_handling(call, now)
        call.end = now
        if self.acd.remove(call.call_id) is not None and call.queue is not None:
            out.append(Publish("queue.length", {"queue": call.queue,
                                                "length": len(self.acd.queues[call.queue].entries)}))
        if call.port is not None:
            out += self._clear_port(call.port, cause)
        out += self._drop_leg(call)
        agent = call.agent
        if call.state == "ringing":
            out += self._stop_ringing(call, now)
        elif agent is not None and call.agent_answer is not None:
            agent.call_id = None
            talk = now - call.agent_answer
            self.acd.talked(agent, talk, now)
            q = self.queue_cfg.get(call.queue or self.queue_name, self.queue_cfg[self.queue_name])
            if not isinstance(call, OutboundCall):  # callers' handle time for their wait estimates, not the box's
                self.aht[q["name"]] += AHT_WEIGHT * (talk + q["wrap_up_s"] - self.aht[q["name"]])
            if call.port is not None:
                out.append(Disconnect(call.port, agent.port))
            agent.wrap_s = q["wrap_up_s"]
            if ended_by == "agent":
                out += self._wrap_up(agent, now, agent.wrap_s)
            else:  # the agent hears busy tone until putting the phone down, then wraps up
                agent.resume, agent.resume_reason = "wrap_up", None
                out += [StartTone(agent.port, "busy"), *self._agent_state(agent, "busy", now, "off_hook")]
        if call.recorded:
            out.append(StopRecording(call.call_id))
        if disposition == "abandoned":
            self.counts["abandoned"] += 1
        call.state = "ended"
        talk = now - call.agent_answer if call.agent_answer is not None and call.agent is not None else None
        if disposition == "transferred" and call.answer_out is not None:  # talked to the number it was sent to
            talk = now - call.answer_out
        wait = call.wait_s
        answered = agent is not None and call.agent_answer is not None
        record = {
            "call_id": call.call_id, "direction": "in", "caller": call.caller, "called": call.called,
            "trunk_port": call.trunk_port, "queue": call.queue if call.queued is not None else None,
            "seat": agent.seat if answered else None, "agent": agent.name if answered else None,
            "start_ts": call.start, "answer_ts": call.answer, "queued_ts": call.queued,
            "agent_answer_ts": call.agent_answer, "end_ts": now, "wait_s": wait, "talk_s": talk,
            "disposition": disposition, "ended_by": ended_by, "caller_national": call.caller_national,
            "caller_area": call.caller_area, "caller_kind": call.caller_kind,
        }
        data = {"call_id": call.call_id, "disposition": disposition, "ended_by": ended_by,
                "talk_s": None if talk is None else round(talk, 3), "wait_s": None if wait is None else round(wait, 3)}
        if reason:
            data["reason"] = reason
        out += self._outbound_ended(call, now, record, data)  # an outbound attempt's result; calls dialled out
        out += [WriteCall(record), LogEvent(call.call_id, "call.ended", data), Publish("call.ended", data)]
        if call.port is not None and self.calls.get(call.port) is call:
            del self.calls[call.port]
        self.parked.pop(call.call_id, None)
        del self.by_id[call.call_id]
        return out + self._dispatch(now)
