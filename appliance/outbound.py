"""Outbound calls: click-to-dial (the agent's phone rings first, then the number is dialled on a free trunk channel
with the agent listening), and the classified result of every outbound attempt.

A part of ``CallCentre`` (``appliance.callcontrol``), sans-I/O. ``dial_out(seat, number, now)`` rings the seat's
phone; when the agent picks up (``_answer``, as for any call ringing that agent) the number is dialled on a free
trunk channel with the agent bridged to it at once, so the agent hears the network's progress: the call's
state is then ``calling_back`` as for a callback in queue, and ``talking`` once the far end answers. A phone not
picked up within the queue's ``ring_timeout_s`` ends the call before anything is dialled (failed, reason "agent
did not answer"); no free channel at the pick-up ends it with the result congestion, no cause, and the agent
hears congestion tone.

Every outbound attempt (a click-to-dial or campaign call, a callback in queue, an IVR transfer to a number; any
leg dialled with ``_attempt_dial``) is an ``Attempt`` from its ``Dial`` to its end, and ends with one of
``RESULTS`` and the Q.850 cause the trunk gave (None when it gave none). Call control lets it note ``Alerting``,
``Connected`` and ``Released`` on its port before routing them as usual, so it is classified whoever handles
the leg:

- signalling first: a ``Released`` before the answer maps its cause (``CAUSE_RESULTS``: 17 busy, 18/19/20 no
  answer, 1/22 vacant, 21 rejected, 28 invalid, 34/41/42/44 congestion; any other cause but 16/31 is failed);
- then the tones the trunk carries, heard by the runtime's call-progress detector (``TrunkTone`` events from
  ``dsp.progress``; none without media) while the attempt is dialled: busy, congestion, the vacant-number tone
  and SIT (vacant). A
  network that plays such a tone and clears gets its cause recorded (the tone agrees or is overruled); one that
  does not clear within ``TONE_CLEAR_S`` of the tone is hung up and the tone decides;
- an answer (``Connected``) is ``answered``, unless a fax answer tone (CED, or CNG) is heard within
  ``FAX_WINDOW_S``: ``fax`` (a click-to-dial or campaign call to a fax machine is then hung up). The detector
  does not know V.21 flags: a fax machine that answers without CED counts as answered;
- ringback (``Alerting``, or the ringback tone) and then nothing until ``RING_S`` (the call's own ring time) or a
  clearing with cause 16: ``no_answer``; no progress at all: ``failed``.

The ``call.dial_result`` event says how (``by``: cause, tone, answer, ringing, none, or no_trunk). The record of
a call dialled out has direction ``out``, the seat's extension as ``caller``, the number as ``called``, the customer's
normalised number in the ``caller_*`` columns (so a customer's history lists calls both ways), disposition
``answered`` (result answered) or ``failed``, ``talk_s`` from the far end's answer, and the result columns
(``journal.OUTBOUND_COLUMNS``); an inbound call with a leg dialled out gets the result columns of its last
attempt. ``ended_by`` ``caller`` means the far end cleared. The call's ``origin`` (given by whoever asked for the
call, such as the missed-call list) and the result go in its ``call.ended`` event data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from drivers.base import Alerting, Connected, Released

from .actions import Action, Connect, Dial, Hangup, LogEvent, Publish, Ring, StartTone, StopProgress, StopRing
from .call import Call
from .campaigns import Campaigns
from .caller import area, normalise

RESULTS = ("answered", "busy", "no_answer", "vacant", "congestion", "rejected", "fax", "invalid", "failed")
CAUSE_RESULTS = {1: "vacant", 22: "vacant", 17: "busy", 18: "no_answer", 19: "no_answer", 20: "no_answer",
                 21: "rejected", 28: "invalid", 34: "congestion", 41: "congestion", 42: "congestion",
                 44: "congestion"}
TONE_RESULTS = {"busy": "busy", "congestion": "congestion", "vacant": "vacant", "sit": "vacant"}
FAX_TONES = ("ced", "cng")
SIGNALS = (Alerting, Connected, Released)  # card events an attempt notes before call control routes them
RING_S = 40.0  # an attempt neither answered nor refused by then is no answer
TONE_CLEAR_S = 10.0  # after a busy, congestion, vacant or SIT tone, how long the network may take to clear
FAX_WINDOW_S = 6.0  # after the answer, how long a fax answer tone is listened for


def classify(cause: int | None, tone: str | None, alerting: bool, connected: bool, fax: bool) -> tuple[str, str]:
    """An attempt's result (one of ``RESULTS``) and what decided it (cause, tone, answer, ringing, none).

    cause : the Q.850 cause of the trunk's clearing, None if it has not cleared (or gave none)
    tone : the first busy, congestion, vacant, sit or fax tone heard before the answer, or None
    alerting : the far end was rung (Alerting, or ringback heard)
    connected : the far end answered
    fax : a fax tone was heard after the answer
    """
    if connected:
        return ("fax", "tone") if fax else ("answered", "answer")
    if cause in CAUSE_RESULTS:
        return CAUSE_RESULTS[cause], "cause"
    if tone in TONE_RESULTS:
        return TONE_RESULTS[tone], "tone"
    if tone in FAX_TONES:  # a fax answering on a line that did not signal the answer
        return "fax", "tone"
    if cause is not None and cause not in (16, 31):  # normal clearing, normal unspecified: as if no cause
        return "failed", "cause"
    if alerting:
        return "no_answer", "ringing"
    return "failed", "none"


@dataclass
class Attempt:
    """One number dialled on one trunk channel, from the ``Dial`` to its result."""

    call_id: str
    port: int
    number: str
    kind: str  # dial, campaign, callback, transfer
    start: float
    deadline: float | None  # no answer (or no clearing after a tone) by then: hung up; after the answer: fax window
    alerting: bool = False
    connected: float | None = None
    tone: str | None = None  # the first busy, congestion, vacant, sit or fax tone (a fax's also after the answer)
    fax: bool = False
    result: str | None = None
    cause: int | None = None  # the trunk's clearing cause (also after the answer)
    by: str | None = None


@dataclass
class OutboundCall(Call):
    """A call the box places: click-to-dial (``kind`` dial) or a campaign's (``kind`` campaign)."""

    number: str = ""  # the digits dialled (the national form, ``appliance.caller``)
    kind: str = "dial"
    seat: int | None = None  # the seat rung for it
    origin: dict | None = None  # who asked for it (e.g. {"missed": 12}); in the call.ended event
    campaign: str | None = None
    entry: int | None = None  # the campaign's number (index)
    ring_until: float | None = None  # the agent's phone rings until then
    ring_s: float = RING_S  # how long the number may ring
    result: str | None = None  # the result of a call that ended before any attempt (no trunk, agent away)


class DialRefused(ValueError):
    """``dial_out`` refused: ``arg`` names what was wrong (seat, number, origin); ``code`` as the control API's."""

    def __init__(self, arg: str, code: str, message: str) -> None:
        super().__init__(message)
        self.arg, self.code = arg, code


class Outbound(Campaigns):
    def _init_outbound(self) -> None:
        self.attempts: dict[int, Attempt] = {}  # trunk port -> the attempt dialled there, until the port clears
        self.tried: dict[str, Attempt] = {}  # call id -> its last attempt, until the call ends
        self._dial_logs: list[Action] = []  # results decided while noting a signal, logged by the next handler
        self._init_campaigns()

    # --- click-to-dial ----------------------------------------------------------------------------

    def dial_out(self, seat: int, number: str, now: float, *, origin: dict | None = None) -> tuple[str, list[Action]]:
        """Ring ``seat``'s phone; when the agent answers, dial ``number`` on a free trunk channel.

        Returns the new call's id and the actions. Raises ``DialRefused`` (a ValueError) naming the problem: an
        unknown seat, a seat not available (it must be available with its phone on hook), a number
        ``appliance.caller.normalise`` cannot make a dialable number of, an ``origin`` that is not a dict. No
        free trunk channel when the agent answers is the call's result (congestion), not an error.
        """
        agent = self.acd.by_seat.get(seat)
        if agent is None:
            raise DialRefused("seat", "not_found", f"seat {seat!r} is not a configured seat")
        if agent.state != "available" or agent.resume is not None or agent.call_id is not None:
            now_state = "off hook" if agent.resume is not None else agent.state
            raise DialRefused("seat", "conflict", f"seat {seat} is {now_state}; it must be available (phone on hook)"
                                                  " to dial out")
        if origin is not None:
            try:
                json.dumps(origin, allow_nan=False)
            except (TypeError, ValueError):
                origin = None
            if not isinstance(origin, dict):
                raise DialRefused("origin", "bad_argument", "origin must be a JSON object (a dict) or None")
        n = self._dialable(number)
        call = self._new_out_call(n, now, origin=origin)
        return call.call_id, self._ring_for(call, agent, now)

    def _dialable(self, number: str):
        n = normalise(number, home_area=self.area_code) if isinstance(number, str) else None
        if n is None or n.kind == "unknown":
            raise DialRefused("number", "bad_argument", f"number {number!r} is not a phone number that can be "
                                                        "dialled (a mobile, a landline, a service or a valid "
                                                        "international number)")
        return n

    def _new_out_call(self, n, now: float, **fields) -> OutboundCall:
        self._n += 1
        call = OutboundCall(f"{self.prefix}-{self._n:06d}", None, n.national, n.national, start=now,
                            number=n.national, **fields)
        call.caller_national, call.caller_area, call.caller_kind = n.national, area(n, "zh"), n.kind
        self.by_id[call.call_id] = call
        return call

    def _ring_for(self, call: OutboundCall, agent, now: float) -> list[Action]:
        """Ring the agent for an outbound call (the phone shows the number to be dialled)."""
        q = self.queue_cfg.get(call.queue or self.queue_name, self.queue_cfg[self.queue_name])
        call.state, call.ringing, call.agent, call.seat = "ringing", [agent], agent, agent.seat
        call.ring_until = now + q["ring_timeout_s"]
        agent.call_id = call.call_id
        info = {"call_id": call.call_id, "seat": agent.seat, "number": call.number, "kind": call.kind}
        if call.campaign is not None:
            info["campaign"] = call.campaign
        if call.origin is not None:
            info["origin"] = call.origin
        data = {"call_id": call.call_id, "seat": agent.seat, "queue": call.queue, "number": call.number,
                "direction": "out"}
        return [LogEvent(call.call_id, "call.outbound", info), Publish("call.outbound", info),
                Ring(agent.port, call.number), *self._agent_state(agent, "ringing", now),
                LogEvent(call.call_id, "call.ringing", data), Publish("call.ringing", data)]

    def _dial_answer(self, call: OutboundCall, agent, now: float) -> list[Action]:
        """The agent picked up for an outbound call: dial the number, the agent bridged to hear its progress."""
        call.ringing, call.ring_until = [], None
        call.state, call.agent_answer, call.agent = "calling_back", now, agent
        agent.missed = 0
        out: list[Action] = [StopRing(agent.port), *self._agent_state(agent, "talking", now)]
        leg = self._free_trunk()
        if leg is None:  # every channel busy: the agent hears congestion, the call fails
            call.result = "congestion"
            out.append(LogEvent(call.call_id, "call.dial_result", {"port": None, "number": call.number,
                                                                   "result": "congestion", "cause": None,
                                                                   "tone": None, "by": "no_trunk"}))
            return out + self._end(call, now, "failed", "system", cause=None, reason="no free trunk channel") + \
                [StartTone(agent.port, "congestion")]
        self.legs[leg], call.leg = call, leg
        return out + [LogEvent(call.call_id, "call.dialling", {"port": leg, "number": call.number,
                                                                "seat": agent.seat})] + \
            self._attempt_dial(call, leg, call.number, call.kind, now, ring_s=call.ring_s) + [Connect(leg, agent.port)]

    def _spare_trunks(self) -> int:
        """Trunk channels free now, less those kept for outbound calls still ringing their agent."""
        free = sum(1 for port in self.trunk_ports if self._trunk_free(port))
        return free - sum(1 for c in self.by_id.values() if isinstance(c, OutboundCall) and c.state == "ringing")

    def _agent_rings_due(self, now: float) -> list[Action]:
        """Outbound calls whose agent did not pick up in time end (a campaign's number waits for another)."""
        out: list[Action] = []
        for call in [c for c in self.by_id.values() if isinstance(c, OutboundCall) and c.state == "ringing"
                     and c.ring_until is not None and c.ring_until <= now]:
            agent, call.result = call.agent, "failed"
            out += [LogEvent(call.call_id, "call.ring_no_answer", {"seat": agent.seat,
                                                                   "ring_s": round(now - (call.start), 3)})]
            out += self._end(call, now, "failed", "system", cause=None, reason="agent did not answer")
            out += self._campaign_agent_missed(call, agent, now)
        return out

    # --- attempts ---------------------------------------------------------------------------------

    def _attempt_dial(self, call, port: int, number: str, kind: str, now: float, *,
                      ring_s: float = RING_S) -> list[Action]:
        """Dial ``number`` on trunk ``port`` for ``call`` and follow the attempt until its result."""
        att = Attempt(call.call_id, port, number, kind, now, now + ring_s)
        self.attempts[port] = att
        self.tried[call.call_id] = att
        return [Dial(port, number)]

    def _attempt_signal(self, event, now: float) -> None:
        """Note Alerting, Connected or Released on an attempt's port (call control then routes the event)."""
        att = self.attempts[event.port]
        kind = type(event)
        if kind is Alerting:
            att.alerting = True
        elif kind is Connected:
            att.connected, att.deadline = now, now + FAX_WINDOW_S
            call = self.by_id.get(att.call_id)
            if isinstance(call, OutboundCall):
                call.answer = now
        else:  # Released: the port is free again
            del self.attempts[event.port]
            att.cause, att.deadline = event.cause, None
            if att.result is None:
                self._decide(att)

    def _decide(self, att: Attempt) -> None:
        att.result, att.by = classify(att.cause, att.tone, att.alerting, att.connected is not None, att.fax)
        self._dial_logs.append(LogEvent(att.call_id, "call.dial_result", {
            "port": att.port, "number": att.number, "result": att.result, "cause": att.cause, "tone": att.tone,
            "by": att.by}))

    def _dial_results(self) -> list[Action]:
        """The results decided since last asked, as journal events."""
        out, self._dial_logs = self._dial_logs, []
        return out

    def _trunk_tone(self, port: int, tone: str, now: float) -> list[Action]:
        """A call-progress tone recognised on a trunk channel being dialled."""
        att = self.attempts.get(port)
        if att is None or att.result is not None:
            return []
        if att.connected is None:
            if tone == "ringback":
                att.alerting = True
            elif (tone in TONE_RESULTS or tone in FAX_TONES) and att.tone is None:
                att.tone, att.deadline = tone, min(att.deadline, now + TONE_CLEAR_S)
                return [LogEvent(att.call_id, "call.dial_tone", {"port": port, "tone": tone})]
            return []
        if tone not in FAX_TONES:
            return []
        att.fax, att.tone, att.deadline = True, tone, None
        self._decide(att)
        out = [LogEvent(att.call_id, "call.dial_tone", {"port": port, "tone": tone}), *self._dial_results()]
        call = self.by_id.get(att.call_id)
        if isinstance(call, OutboundCall) and call.state == "talking" and call.port == port:  # nobody to talk to
            return out + self._end(call, now, "failed", "system", cause=16, reason="fax")
        return out + [StopProgress(port)]

    def _attempts_due(self, now: float) -> list[Action]:
        """Attempts past their deadline: not answered (or not cleared after a tone) in time, hung up; answered
        with no fax tone in the window, answered for good."""
        out: list[Action] = []
        for att in [a for a in self.attempts.values() if a.deadline is not None and a.deadline <= now]:
            att.deadline = None
            if att.connected is not None:
                if att.result is None:
                    self._decide(att)
                out.append(StopProgress(att.port))
                continue
            del self.attempts[att.port]
            self._decide(att)
            if att.port in self.legs:
                out += self._leg_released(att.port, None, now)
            else:
                out += self._dial_results()
            out.append(Hangup(att.port, 16))
        return out + self._dial_results()

    def _outbound_ended(self, call, now: float, record: dict, data: dict) -> list[Action]:
        """``_end`` is writing ``call``'s record: its last attempt's result (decided now if it was not), and for a
        call dialled out the direction, parties, disposition and talk time of an outbound call."""
        att = self.tried.pop(call.call_id, None)
        if att is not None:
            if self.attempts.get(att.port) is att:
                del self.attempts[att.port]
            if att.result is None:  # ended from our side before a result: what had been heard decides
                self._decide(att)
            record.update(number=att.number, result=att.result, cause=att.cause)
        out = self._dial_results()
        if not isinstance(call, OutboundCall):
            return out
        result = att.result if att is not None else call.result or "failed"
        cause = att.cause if att is not None else None
        agent = self.acd.by_seat.get(call.seat)
        talk = now - call.answer if call.answer is not None and result == "answered" else None
        record.update(direction="out", caller=agent.extension if agent is not None else None, called=call.number,
                      number=call.number, result=result, cause=cause, campaign=call.campaign, seat=call.seat,
                      queue=call.queue, disposition="answered" if result == "answered" else "failed", talk_s=talk)
        data.update(disposition=record["disposition"], talk_s=None if talk is None else round(talk, 3),
                    direction="out", number=call.number, result=result, cause=cause)
        if call.campaign is not None:
            data["campaign"] = call.campaign
        if call.origin is not None:
            data["origin"] = call.origin
        return out + self._campaign_call_ended(call, result, cause, now)

    # --- the loop -----------------------------------------------------------------------------------

    def _outbound_deadlines(self) -> list[float]:
        times = [a.deadline for a in self.attempts.values() if a.deadline is not None]
        times += [c.ring_until for c in self.by_id.values() if isinstance(c, OutboundCall)
                  and c.ring_until is not None]
        return times + self._campaign_deadlines()

    def _outbound_due(self, now: float) -> list[Action]:
        """Timers of attempts and agents rung for outbound calls, then the campaigns' pacing."""
        return self._dial_results() + self._attempts_due(now) + self._agent_rings_due(now) + \
            self._campaigns_due(now)
