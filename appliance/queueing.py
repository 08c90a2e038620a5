"""Callers in queue: joining (or overflowing), what they hear while they wait, the agents rung for them, ring
timeouts and missed offers, maximum waits, and callback in queue.

A part of ``CallCentre`` (``appliance.callcontrol``). While waiting, a caller hears
"transferring you to an agent" when an agent is free at once; otherwise "all
agents are busy", their position and an estimated wait (spoken with TTS, ``Say``),
again every ``announce_s``, and music on hold or ringback between. A caller who
presses the queue's ``callback_key`` hangs up and keeps their place: the call is
parked, and when an agent answers it the caller is dialled on a free trunk channel.
"""

from __future__ import annotations

import math

from .acd import Agent
from .actions import Action, LogEvent, Play, Publish, Ring, StartTone, StopPlay, StopRing, StopTone
from .flowrun import Say

AHT_START_S = 120.0  # estimated handle time before a queue has answered calls to learn from
AHT_WEIGHT = 0.1  # weight of each new call in the moving average of a queue's handle time
KEY_WORDS = {"*": {"zh": "星号", "en": "star"}, "#": {"zh": "井号", "en": "hash"}}


class Queueing:
    # --- joining ----------------------------------------------------------------------------------

    def _queue_call(self, call, queue: str, now: float, *, seat: int | None = None,
                    announce: bool = True) -> list[Action]:
        """Put ``call`` in ``queue`` (for ``seat`` only, if given), or overflow it when the queue is full."""
        q = self.queue_cfg[queue]
        call.queue = queue
        waiting = len(self.acd.queues[queue].entries)
        if q["max_length"] and waiting >= q["max_length"] and seat is None:
            return [LogEvent(call.call_id, "call.overflow", {"queue": queue, "reason": "max_length",
                                                             "waiting": waiting}),
                    *self._overflow(call, now, q)]
        if call.queued is None:  # the wait counts from the first queue that took the call
            call.queued = now
        call.state, call.deadline = "queued", now + q["max_wait_s"]
        pos = self.acd.enqueue(call.call_id, now, priority=1 if call.vip else 0, queue=queue, seat=seat)
        data = {"call_id": call.call_id, "position": pos, "queue": queue}
        if call.vip:
            data["vip"] = True
        if seat is not None:
            data["seat"] = seat
        out: list[Action] = [LogEvent(call.call_id, "call.queued", data), Publish("call.queued", data),
                             Publish("queue.length", {"queue": queue, "length": waiting + 1})]
        if announce and call.port is not None:
            free = any(a.state == "available" and (a.seat == seat if seat is not None else a.skill_in(queue) is not None)
                       for a in self.acd.agents)
            if free or not q["announce_s"]:
                call.audio, call.announce_at = "transfer", now + q["announce_s"] if q["announce_s"] else None
                out.append(Play(call.port, "transfer"))
            else:
                out += self._announce(call, now)
        return out + self._dispatch(now)

    def _hold(self, call) -> list[Action]:
        """Music on hold or ringback until the next announcement."""
        call.audio = "hold"
        if self.queue_cfg[call.queue]["hold"] == "music":
            return [Play(call.port, "moh")]
        return [StartTone(call.port, "ringback")]

    def _announce(self, call, now: float) -> list[Action]:
        q = self.queue_cfg[call.queue]
        where = self.acd.position(call.call_id)
        position = where[1] if where else 1
        staffed = sum(1 for a in self.acd.members(call.queue) if a.state not in ("logged_out", "out_of_service"))
        minutes = max(1, math.ceil(position * self.aht[call.queue] / max(1, staffed) / 60))
        words = self.texts["queue_busy"].format(position=position, minutes=minutes)
        key = q["callback_key"]
        if key and call.caller_national:
            words += self.texts["queue_callback"].format(digit=KEY_WORDS.get(key, {}).get(self.lang, key))
        call.audio = "announce"
        call.announce_at = now + q["announce_s"] if q["announce_s"] else None
        return [StopPlay(call.port), StopTone(call.port),
                LogEvent(call.call_id, "call.announce", {"position": position, "minutes": minutes}),
                Say(call.port, words)]

    def _waiting_prompt_done(self, call, now: float) -> list[Action]:
        """A prompt ended for a caller in queue (or being rung for): the next thing to hear."""
        if call.audio == "callback":  # "we will call you back": the caller's line is cleared, the place kept
            return self._park(call, now)
        if call.audio in ("transfer", "announce") or (call.audio == "hold" and
                                                      self.queue_cfg[call.queue]["hold"] == "music"):
            return self._hold(call)  # music loops: played again each time it ends
        return []

    def _waiting_digit(self, call, digit: str, now: float) -> list[Action]:
        key = self.queue_cfg[call.queue]["callback_key"]
        if not key or digit != key or call.callback or call.audio == "callback":
            return []
        if not call.caller_national:
            return [LogEvent(call.call_id, "call.callback_refused", {"reason": "withheld"})]
        call.audio, call.callback, call.announce_at = "callback", True, None
        words = self.texts["callback"].format(number=" ".join(call.caller_national))
        return [StopPlay(call.port), StopTone(call.port),
                LogEvent(call.call_id, "call.callback_requested", {"number": call.caller_national,
                                                                    "queue": call.queue}),
                Say(call.port, words)]

    def _announcements_due(self, now: float) -> list[Action]:
        out: list[Action] = []
        for call in list(self.calls.values()):
            if call.state in ("queued", "ringing") and call.announce_at is not None and call.announce_at <= now \
                    and call.audio in ("hold", "transfer"):
                out += self._announce(call, now)
        return out

    # --- agents rung ------------------------------------------------------------------------------

    def _dispatch(self, now: float) -> list[Action]:
        out: list[Action] = []
        while (got := self.acd.next_group()) is not None:
            entry, group = got
            call = self.by_id[entry.call_id]
            call.state, call.ringing = "ringing", list(group)
            call.agent = group[0] if len(group) == 1 else None
            call.deadline = now + self.queue_cfg[call.queue]["ring_timeout_s"]
            for agent in group:
                agent.call_id = call.call_id
                data = {"call_id": call.call_id, "seat": agent.seat, "queue": call.queue}
                out += [Ring(agent.port, call.caller), *self._agent_state(agent, "ringing", now),
                        LogEvent(call.call_id, "call.ringing", data), Publish("call.ringing", data)]
            out.append(Publish("queue.length", {"queue": entry.queue,
                                                "length": len(self.acd.queues[entry.queue].entries)}))
        return out

    def _stop_ringing(self, call, now: float, *, keep: Agent | None = None, to_back: bool = True) -> list[Action]:
        """Stop ringing the call's agents (but ``keep``); they are available again, at the back of the idle
        order if ``to_back``."""
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

    def _ring_no_answer(self, call, now: float) -> list[Action]:
        """Nobody answered within the ring timeout: each agent rung missed an offer (N in a row: busy, reason
        no answer); the call goes back to the head of its queue with its wait so far."""
        q = self.queue_cfg[call.queue]
        rung = call.ringing
        call.agent, call.state, call.ringing = None, "queued", []
        call.deadline = call.queued + q["max_wait_s"]
        call.skipped |= {a.seat for a in rung}
        self.acd.enqueue(call.call_id, call.queued, front=True, priority=1 if call.vip else 0, queue=call.queue,
                         seat=call.direct_seat, skipped=call.skipped)
        out: list[Action] = []
        for agent in rung:  # each to the back of the idle order
            agent.call_id = None
            agent.idle_since = now
            agent.missed += 1
            out += [StopRing(agent.port), LogEvent(call.call_id, "call.ring_no_answer",
                                                   {"seat": agent.seat, "ring_s": q["ring_timeout_s"],
                                                    "missed": agent.missed})]
            if q["missed_offers"] and agent.missed >= q["missed_offers"]:
                agent.missed = 0
                out += self._agent_state(agent, "busy", now, "no_answer")
            else:
                out += self._agent_state(agent, "available", now)
        return out

    # --- leaving the queue without an agent -----------------------------------------------------------

    def _queue_timeout(self, call, now: float) -> list[Action]:
        q = self.queue_cfg[call.queue]
        self.acd.remove(call.call_id)
        log = LogEvent(call.call_id, "call.overflow", {"queue": call.queue, "reason": "max_wait",
                                                      "wait_s": round(now - call.queued, 3)})
        return [log, Publish("queue.length", {"queue": call.queue,
                                              "length": len(self.acd.queues[call.queue].entries)}),
                *self._overflow(call, now, q)]

    def _overflow(self, call, now: float, q: dict) -> list[Action]:
        """The queue ``q`` is full or the caller waited its maximum: to its overflow target."""
        target = q["overflow"]
        if call.port is None:  # a parked callback: nobody on the line to send anywhere
            return self._end(call, now, "abandoned", "system", cause=None, reason="max_wait")
        kind, _, arg = target.partition(":")
        call.hops += 1
        if kind == "queue" and call.hops > len(self.queue_cfg):  # queues overflowing into each other: stop
            kind = target = ""
        if kind == "queue":
            call.state = "moving"
            return self._queue_call(call, arg, now, announce=False)
        if call.queued is not None and kind != "seat":  # to a seat it waits on, in the queue
            call.left_queue = now
        call.state = "leaving"
        if kind == "":  # goodbye, then cleared: timed out or turned away, not abandoned by the caller
            call.audio, call.leaving, call.disposition = "goodbye", "overflow", "overflow"
            return [StopPlay(call.port), StopTone(call.port), Play(call.port, "goodbye")]
        return [StopPlay(call.port), StopTone(call.port), *self._to_target(call, target, now)]

    def _park(self, call, now: float) -> list[Action]:
        """The caller asked to be called back and heard so: clear their line, keep the queue entry."""
        del self.calls[call.port]
        self.parked[call.call_id] = call
        port, call.port, call.audio = call.port, None, None
        return [LogEvent(call.call_id, "call.parked", {"number": call.caller_national}), Publish(
            "call.parked", {"call_id": call.call_id}), *self._clear_port(port, 16)]
