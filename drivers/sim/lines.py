"""Analog lines on the simulated card's FXO ports: ring bursts, caller ID between them, far-end clearing.

An exchange rings an analog line in bursts (China: 1 s on, 4 s off) and sends
the caller's number as Bell 202 FSK in the silence after the first burst, or as
DTMF keys before it. After the box answers, the caller talks; when the caller
hangs up, many Chinese lines say so only by playing busy tone, others by
reversing the line's polarity. The box must hear all of this in the audio and
the ring events, exactly as it would on a real FXO port.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import DriverError
from dsp.callerid import CallerId, callerid_burst

from ..base import Polarity, Ringing
from .pstn import tone_clip

__all__ = ["LineScript", "LineState", "AnalogLines", "RING_ON_S", "RING_OFF_S", "CID_LEAD_S"]

RING_ON_S, RING_OFF_S = 1.0, 4.0  # China's ringing cadence (YD/T 1277), the same as ringback
CID_LEAD_S = 0.6  # FSK starts this long after the first burst ends (YD/T 1277 and GR-30: >= 0.5 s)
DTMF_CID_GUARD_S = 0.3  # the first burst follows DTMF caller ID by 0.2-0.5 s


@dataclass(frozen=True)
class LineScript:
    """One inbound call on an analog line.

    number : calling number; None when withheld (see ``withheld``)
    withheld : None, "private" or "unavailable": what the caller-ID message says instead
    name : calling name (MDMF only; Chinese goes as GBK)
    cid : "mdmf", "sdmf", "dtmf" or None (the line has no caller-ID service)
    max_rings : the caller gives up after this many bursts if the box does not answer
    talk_s : the caller talks this long after the box answers, then hangs up
    clear_by : how the exchange tells the box the caller hung up: "busy" tone or "polarity"
    """

    number: str | None
    arrive_at: float
    withheld: str | None = None
    name: str = ""
    cid: str | None = "mdmf"
    datetime: tuple[int, int, int, int] = (11, 28, 10, 30)
    max_rings: int = 6
    talk_s: float = 20.0
    clear_by: str = "busy"
    speech_dbm0: float = -18.0

    def __post_init__(self) -> None:
        if self.cid not in (None, "mdmf", "sdmf", "dtmf"):
            raise DriverError(f"line caller ID {self.cid!r} is not one of mdmf, sdmf, dtmf or None")
        if self.clear_by not in ("busy", "polarity"):
            raise DriverError(f"clear_by {self.clear_by!r} is not 'busy' or 'polarity'")
        if self.withheld not in (None, "private", "unavailable"):
            raise DriverError(f"withheld {self.withheld!r} is not 'private' or 'unavailable'")
        if (self.number is None) == (self.withheld is None):
            raise DriverError("a line caller has a number, or withheld = 'private' / 'unavailable', not both")

    def callerid(self) -> CallerId:
        reason = {"private": "P", "unavailable": "O", None: None}[self.withheld]
        return CallerId(number=self.number or "", name=self.name, datetime=self.datetime,
                        number_absent_reason=reason, format=self.cid or "mdmf")


@dataclass
class LineState:
    script: LineScript
    port: int
    rings: int = 0
    state: str = "ringing"  # ringing, talking, cleared (caller gone, box not yet on hook), ended, missed
    answered_at: float | None = None
    ended_at: float | None = None


class AnalogLines:
    """The simulated card's FXO ports (a part of ``SimCard``).

    Uses the card's scheduler (``_at``), event list (``_out``), port sources, ``_play_clip``,
    ``_talk`` and ``_silence``, and its ``fxo_ports`` and ``line_calls``.
    """

    def add_line_call(self, script: LineScript, port: int | None = None) -> LineState:
        """Schedule an inbound call on an FXO port (the first one, unless ``port`` says which)."""
        if not self.fxo_ports:
            raise DriverError("this card has no FXO ports (n_fxo=0)")
        port = self.fxo_ports[0] if port is None else port
        if port not in self.fxo_ports:
            raise DriverError(f"port {port} is not an FXO port; FXO ports are {list(self.fxo_ports)}")
        call = LineState(script, port)
        self._at(script.arrive_at, lambda: self._line_arrives(call))
        return call

    def _line_arrives(self, call: LineState) -> None:
        if call.port in self.line_calls:
            call.state = "missed"  # the line is busy: the exchange gives the caller busy tone
            return
        self.line_calls[call.port] = call
        sc = call.script
        if sc.cid == "dtmf":
            burst = callerid_burst(sc.callerid(), "dtmf")
            self._play_clip(call.port, burst.samples)
            self._at(self._now + burst.duration_s + DTMF_CID_GUARD_S, lambda: self._ring_burst(call))
        else:
            self._ring_burst(call)

    def _ring_burst(self, call: LineState) -> None:
        if call.state != "ringing" or self.line_calls.get(call.port) is not call:
            return
        if call.rings >= call.script.max_rings:  # the caller gives up: the line just stops ringing
            call.state, call.ended_at = "missed", self._now
            del self.line_calls[call.port]
            return
        call.rings += 1
        self._out.append(Ringing(call.port, True))
        self._at(self._now + RING_ON_S, lambda: self._ring_off(call))

    def _ring_off(self, call: LineState) -> None:
        if call.state != "ringing":
            return
        self._out.append(Ringing(call.port, False))
        if call.rings == 1 and call.script.cid in ("mdmf", "sdmf"):
            burst = callerid_burst(call.script.callerid(), call.script.cid)
            self._at(self._now + CID_LEAD_S, lambda: call.state == "ringing" and self._play_clip(call.port,
                                                                                                  burst.samples))
        self._at(self._now + RING_OFF_S, lambda: self._ring_burst(call))

    def _answer_line(self, port: int) -> None:
        call = self.line_calls.get(port)
        if call is None or call.state != "ringing":
            return
        call.state, call.answered_at = "talking", self._now
        self._silence(port)
        self._talk(port, call.script.speech_dbm0)
        self._at(self._now + call.script.talk_s, lambda: self._line_caller_leaves(call))

    def _line_caller_leaves(self, call: LineState) -> None:
        if call.state != "talking":
            return
        call.state = "cleared"
        self._silence(call.port)
        if call.script.clear_by == "polarity":
            self._out.append(Polarity(call.port))
        else:  # the exchange only plays busy tone until the box puts the line on hook
            self._loop_clip(call.port, tone_clip(self.tone_plan, "busy"))

    def _hangup_line(self, port: int) -> None:
        call = self.line_calls.pop(port, None)
        if call is not None:
            call.state, call.ended_at = "ended", self._now
            self._silence(port)
