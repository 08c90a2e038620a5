"""Calls that leave the queues: a second trunk channel dialled out (a transfer to a number such as the duty mobile,
a callback in queue) and voicemail.

A part of ``CallCentre`` (``appliance.callcontrol``). An outbound leg is dialled on a
free trunk channel (an attempt of ``appliance.outbound``, which classifies its result);
the card reports ``Connected`` or ``Released`` on it.
A caller sent to a number hears ringback until the far end answers, then both are
bridged (and recorded); if the far end fails, the caller hears goodbye. A parked
callback is dialled when an agent answers it, the agent bridged at once so they hear
the network's progress tones. Voicemail: greeting, beep, then the caller alone is
recorded until they hang up, press ``#``, or ``VOICEMAIL_MAX_S`` passes.
"""

from __future__ import annotations

from .actions import Action, Connect, Disconnect, Hangup, LogEvent, Play, Publish, StartRecording, StartTone, \
    StopPlay, StopTone
from .outbound import OutboundCall
from .recpolicy import records

VOICEMAIL_MAX_S = 120.0


class Legs:
    def _init_legs(self) -> None:
        self.legs: dict[int, object] = {}  # outbound trunk port -> the call it serves

    def _trunk_free(self, port: int) -> bool:
        """No call, leg, consultation or conference party on the trunk channel, and it works."""
        if port in self.calls or port in self.legs or port in self.consults or port in self.parties:
            return False
        return port not in self.faulty_ports and self.port_spans.get(port) not in self.span_alarms

    def _free_trunk(self) -> int | None:
        return next((port for port in self.trunk_ports if self._trunk_free(port)), None)

    def _to_target(self, call, target: str, now: float, *, greeted: bool = False) -> list[Action]:
        """Send a caller (in the IVR or overflowing a queue) to ``target``: number:, voicemail:, seat:, hangup.
        ``greeted``: a voicemail node has said its own greeting; the beep follows at once."""
        kind, _, arg = target.partition(":")
        call.target = target
        if kind == "hangup":
            return self._end(call, now, "overflow", "system", cause=16, reason="overflow")
        if kind == "seat":
            call.direct_seat = int(arg)
            return self._queue_call(call, self.queue_name, now, seat=int(arg))
        if kind == "voicemail":
            call.state, call.audio, call.deadline = "voicemail", "beep" if greeted else "greeting", None
            return [LogEvent(call.call_id, "voicemail.greeting", {"box": arg}),
                    Play(call.port, "beep" if greeted else "voicemail")]
        leg = self._free_trunk()  # number:
        if leg is None:
            call.state, call.audio, call.leaving, call.disposition = "leaving", "goodbye", "no_trunk", "failed"
            return [LogEvent(call.call_id, "call.transfer_failed", {"to": arg, "reason": "no free trunk channel"}),
                    Play(call.port, "goodbye")]
        self.legs[leg], call.leg, call.state = call, leg, "external"
        return [LogEvent(call.call_id, "call.transfer", {"to": arg, "port": leg}),
                *self._attempt_dial(call, leg, arg, "transfer", now), StartTone(call.port, "ringback")]

    def _call_back(self, call, agent, now: float) -> list[Action]:
        """An agent answered a parked callback: dial the caller on a free channel, the agent hearing it."""
        leg = self._free_trunk()
        if leg is None:  # every channel busy: the callback waits at the head of its queue again
            call.state, call.agent, call.agent_answer = "queued", None, None
            self.counts["answered"] -= 1
            self.acd.enqueue(call.call_id, call.queued, front=True, priority=1 if call.vip else 0, queue=call.queue)
            agent.call_id, agent.resume, agent.resume_reason = None, "available", None
            return [LogEvent(call.call_id, "call.callback_failed", {"reason": "no free trunk channel"}),
                    StartTone(agent.port, "congestion"), *self._agent_state(agent, "busy", now, "off_hook")]
        self.legs[leg], call.leg, call.state = call, leg, "calling_back"
        return [LogEvent(call.call_id, "call.callback_dial", {"number": call.caller_national, "port": leg,
                                                              "seat": agent.seat}),
                *self._attempt_dial(call, leg, call.caller_national, "callback", now), Connect(leg, agent.port)]

    def _leg_connected(self, port: int, now: float) -> list[Action]:
        call = self.legs.get(port)
        if call is None:
            return []
        if call.state == "calling_back":  # the caller answered: from now on an ordinary answered call
            del self.legs[port]
            call.port, call.leg, call.state = port, None, "talking"
            self.calls[port] = call
            self.parked.pop(call.call_id, None)
            name = "call.dial_answered" if isinstance(call, OutboundCall) else "call.callback_answered"
            out: list[Action] = [LogEvent(call.call_id, name, {"port": port}), Publish(name, {"call_id": call.call_id})]
            if records(self.record, call, call.agent):
                call.recorded = True
                out.append(StartRecording(call.call_id, port, call.agent.port))
            return out
        call.answer_out = now
        out = [StopTone(call.port), Connect(call.port, port), LogEvent(call.call_id, "call.transferred",
                                                                       {"port": port, "to": call.target})]
        if records(self.record, call, None):  # the other party is an outside number
            call.recorded = True
            out.append(StartRecording(call.call_id, call.port, port))
        return out

    def _leg_released(self, port: int, cause: int | None, now: float) -> list[Action]:
        """The leg was cleared by the network (``cause``), or hung up by us without one (``appliance.outbound``: no
        answer in time, or a refusal heard only as a tone): the attempt's result is decided by now."""
        call = self.legs.pop(port)
        call.leg = None
        att = self.tried.get(call.call_id)
        why = f"cause {cause}" if cause is not None else att.result if att is not None else "no cause"
        out = self._dial_results()
        if call.state == "calling_back":
            reason = att.result if isinstance(call, OutboundCall) and att is not None else f"callback {why}"
            return out + [Disconnect(port, call.agent.port)] + self._end(call, now, "failed", "system", cause=None,
                                                                         reason=reason)
        if call.answer_out is not None:  # the far end hung up after talking
            return out + [Disconnect(call.port, port)] + self._end(call, now, "transferred", "system", cause=16)
        call.state, call.audio, call.leaving, call.disposition = "leaving", "goodbye", why, "failed"
        return out + [StopTone(call.port), LogEvent(call.call_id, "call.transfer_failed", {"cause": cause}),
                      Play(call.port, "goodbye")]

    def _drop_leg(self, call) -> list[Action]:
        """The call ends: hang up its outbound leg, if one is up."""
        leg = call.leg
        if leg is None or self.legs.get(leg) is not call:
            return []
        del self.legs[leg]
        call.leg = None
        out: list[Action] = []
        if call.state == "calling_back":
            out.append(Disconnect(leg, call.agent.port))
        elif call.port is not None and call.answer_out is not None:
            out.append(Disconnect(call.port, leg))
        return out + [StopPlay(leg), StopTone(leg), Hangup(leg, 16)]

    def _voicemail_ended(self, call, now: float) -> list[Action]:
        """The journal's line for a message left (the call record's recording is the file)."""
        if call.state != "voicemail" or call.audio != "recording":
            return []
        return [LogEvent(call.call_id, "voicemail.recorded", {"box": call.target.partition(":")[2],
                                                              "seconds": round(now - call.answer_out, 3),
                                                              "caller": call.caller_national})]

    def _voicemail_prompt_done(self, call, now: float) -> list[Action]:
        if call.audio == "greeting":
            call.audio = "beep"
            return [Play(call.port, "beep")]
        if call.audio == "beep":
            call.audio, call.deadline, call.recorded = "recording", now + VOICEMAIL_MAX_S, True
            call.answer_out = now  # the message starts
            return [LogEvent(call.call_id, "voicemail.recording", {"box": call.target.partition(":")[2]}),
                    StartRecording(call.call_id, call.port, call.port, "voicemail")]
        return []
