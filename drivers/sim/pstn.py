"""The virtual PSTN's side of outbound calls: how each dialled number answers, as signalling and as audio.

A real exchange reports an outbound call twice: by signalling on the trunk
(Q.931 ALERTING, CONNECT, DISCONNECT with a Q.850 cause) and by the tones it
plays in band before it clears (ringback, busy, congestion, the vacant-number
tone or special information tones). The simulated card does both, so the core
can trust either and the call-progress detector (``dsp.progress``) can be tested
on exactly what a trunk carries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.errors import DriverError
from dsp.toneplans import get_plan
from dsp.tones import tone_signal

from ..base import Alerting, Connected, Released

__all__ = ["OUTCOMES", "CAUSES", "OutboundScript", "OutboundState", "OutboundCalls", "tone_clip"]

# Q.850 causes the network clears with, by what happened
CAUSES = {
    "answered": 16,  # normal clearing, when the far end hangs up after talking
    "busy": 17,  # user busy
    "no_answer": 19,  # no answer from user (user alerted)
    "congestion": 34,  # no circuit/channel available
    "vacant": 1,  # unallocated (unassigned) number
    "special_information": 1,  # intercept announced by SIT, then unallocated number
    "fax": 16,
    "out_of_order": 38,  # network out of order: the span is in alarm
}
_OUTCOME_TONE = {"busy": "busy", "congestion": "congestion", "vacant": "vacant", "special_information": "sit"}
OUTCOMES = ("answered", "busy", "no_answer", "congestion", "vacant", "special_information", "fax")


@dataclass(frozen=True)
class OutboundScript:
    """How the far end of one dialled number behaves.

    outcome : one of ``OUTCOMES``
    setup_s : from dialling to the first signalling or tone
    ring_s : ringback before answering (answered, fax) or before giving up (no_answer)
    tone_s : how long busy, congestion, vacant or SIT plays before the network clears
    talk_s : how long an answering person talks before hanging up (None: until the box hangs up)
    speech : the answering person sends speech-like audio (else silence)
    level_dbm0 : level of that speech
    """

    outcome: str = "answered"
    setup_s: float = 0.5
    ring_s: float = 6.0
    tone_s: float = 8.0
    talk_s: float | None = 30.0
    speech: bool = True
    level_dbm0: float = -18.0

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise DriverError(f"outbound outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        for name in ("setup_s", "ring_s", "tone_s"):
            v = getattr(self, name)
            if not v >= 0.0:
                raise DriverError(f"outbound {name} must be >= 0 s, got {v!r}")


@dataclass
class OutboundState:
    """One outbound call in progress on a trunk channel."""

    port: int
    number: str
    script: OutboundScript
    dialled_at: float
    state: str = "dialling"  # dialling, alerting, connected, ended
    ended_at: float | None = None
    cause: int | None = None

    @property
    def live(self) -> bool:
        return self.state != "ended"


def tone_clip(plan: str, name: str, seconds: float | None = None) -> np.ndarray:
    """The plan's tone ``name`` (ringback, busy, sit, ced ...) as int16 at 8 kHz.

    ``seconds`` None gives one whole cycle (1 s of a continuous tone: whole periods
    of every plan frequency), which loops seamlessly for as long as a line plays it.
    """
    spec = get_plan(plan).tones.get(name)
    if spec is None:
        raise DriverError(f"tone plan {plan!r} has no {name!r} tone")
    if seconds is None:
        seconds = sum(on + off for on, off in spec.on_off) or 1.0
    return tone_signal(spec, seconds)


class OutboundCalls:
    """The simulated card's outbound calls (a part of ``SimCard``, kept here with the network's behaviour).

    Uses the card's scheduler (``_at``), event list (``_out``), port sources and state:
    ``trunk_caller``, ``trunk_out``, ``outbound``, ``network``, ``unknown``, ``alarms``.
    """

    def dial(self, port: int, number: str) -> None:
        self._check_plugged(f"dial on port {port}")
        if not 0 <= port < self.n_trunks:
            raise DriverError(f"cannot dial on port {port}: outbound calls go on trunk ports 0..{self.n_trunks - 1}")
        if port in self.trunk_caller or port in self.trunk_out:
            raise DriverError(f"cannot dial on port {port}: the channel carries a call")
        if not isinstance(number, str) or not number or not all(ch in "0123456789*#" for ch in number):
            raise DriverError(f"cannot dial {number!r}: a number is one or more of 0-9 * #")
        call = OutboundState(port, number, self.network.get(number, self.unknown), self._now)
        self.outbound.append(call)
        self.trunk_out[port] = call
        if self.alarms[1]:  # the span is down: the network cannot even take the call
            self._at(self._now, lambda: self._out_end(call, CAUSES["out_of_order"]))
        else:
            self._at(self._now + call.script.setup_s, lambda: self._out_progress(call))

    def _out_progress(self, call: OutboundState) -> None:
        if not call.live:
            return
        sc = call.script
        if sc.outcome in ("answered", "fax", "no_answer"):
            call.state = "alerting"
            self._out.append(Alerting(call.port))
            self._play(call.port, "ringback")
            if sc.outcome == "no_answer":
                self._at(self._now + sc.ring_s, lambda: self._out_end(call, CAUSES["no_answer"]))
            else:
                self._at(self._now + sc.ring_s, lambda: self._out_connect(call))
        else:  # the exchange plays its tone in band, then clears with the matching cause
            self._play(call.port, _OUTCOME_TONE[sc.outcome])
            self._at(self._now + sc.tone_s, lambda: self._out_end(call, CAUSES[sc.outcome]))

    def _out_connect(self, call: OutboundState) -> None:
        if not call.live:
            return
        call.state = "connected"
        self._silence(call.port)
        self._out.append(Connected(call.port))
        sc = call.script
        if sc.outcome == "fax":
            self._play(call.port, "ced", 3.3)  # a fax machine answers with 2100 Hz (V.25 ANS)
        elif sc.speech:
            self._talk(call.port, sc.level_dbm0)
        if sc.talk_s is not None:
            self._at(self._now + sc.talk_s, lambda: self._out_end(call, CAUSES["answered"]))

    def _out_end(self, call: OutboundState, cause: int) -> None:
        if not call.live:
            return
        call.state, call.ended_at, call.cause = "ended", self._now, cause
        if self.trunk_out.get(call.port) is call:
            del self.trunk_out[call.port]
            self._silence(call.port)
            self._out.append(Released(call.port, cause))

    def _play(self, port: int, tone: str, seconds: float | None = None) -> None:
        """Play the network's ``tone`` on ``port``: for ``seconds``, or looping until the call moves on."""
        self._silence(port)
        if seconds is None:
            self._loop_clip(port, tone_clip(self.tone_plan, tone))
        else:
            self._play_clip(port, tone_clip(self.tone_plan, tone, seconds))

