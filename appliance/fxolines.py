"""Analog lines on FXO ports in front of call control: rings, caller ID, answering, missed calls, far-end clearing.

Sans-I/O, like ``appliance.callcontrol``: ``LineCallCentre`` is a ``CallCentre`` whose ``handle``
first sees the events of its FXO ports (``FxoLines``). An exchange rings an analog line
in bursts (``drivers.base.Ringing``; China 1 s on, 4 s off) and sends the caller's number
as Bell 202 FSK between the first and second burst (YD/T 1277, GR-30) or as DTMF keys
before the first (ETSI EN 300 659-1 annex B); the runtime's caller-ID receiver turns
either into ``CallerIdHeard``. Policy:

- The box answers at the start of ring burst ``rings`` (``card.line_rings``, default 2):
  FSK caller ID has come by then. A caller ID heard before the first burst (DTMF, at
  most ``CID_BEFORE_RING_S`` earlier) leaves nothing to wait for: that line is answered
  at its first burst. With ``rings`` 1 an FSK caller ID never arrives in time.
- Answering hands the call to call control as ``Seized(port, calling, box number)``, so
  screening, the area lookup, the IVR and the queues treat it like a trunk call. Its
  record's ``start_ts`` is the first ring, ``answer_ts`` the moment the box went off hook.
  A withheld caller ID ("P" private, "O" unavailable) or none at all gives calling None.
- A line that stops ringing (no ring edge for ``RING_GONE_S``, the DAHDI driver's own
  limit) before the box answered it is a missed call: a ``line.missed`` journal event and
  API event with the caller's number, and no call record. The call never reached the
  call centre (it was never offered, answered by the box, or queued), so the day's
  offered and abandoned counts leave it out; the event is what a callback list reads.
- Once answered, the far end has gone when the line reverses polarity, when the exchange
  plays one of ``CLEARING_TONES`` on it (``LineTone``; many Chinese lines say it only so),
  or when the card reports loop current lost (``Released``). Call control then hears
  ``Released(port, 16)`` (ended by the caller) and the line is put on hook (``Hangup``).
  Polarity while on hook is ignored (some exchanges reverse it before caller ID).

Outbound calls never use FXO lines: ``CallCentre.trunk_ports`` stays the E1 channels.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.base import Digit, Polarity, Released, Ringing, Seized

from .actions import Action, CallerIdHeard, Hangup, LineTone, LogEvent, Publish
from .caller import area, normalise
from .callcontrol import CallCentre
from .errors import ConfigError

__all__ = ["LineCallCentre", "FxoLines", "Line", "RINGS", "RING_GONE_S", "CID_BEFORE_RING_S", "CLEARING_TONES"]

RINGS = 2  # ring bursts before the box answers: the FSK caller ID comes after the first
RING_GONE_S = 8.0  # no ring edge for this long: the caller gave up (China rings every 5 s); as drivers.dahdi.ports
CID_BEFORE_RING_S = 3.0  # a DTMF caller ID belongs to a first burst that follows within this (0.2-0.5 s normally)
CLEARING_TONES = frozenset({"busy", "congestion"})  # tones an exchange plays on a line whose caller has hung up
WITHHELD = {"P": "private", "O": "unavailable"}  # caller-ID absence codes -> Seized.withheld
# a line's call state on the status page, as CallCentre.snapshot shows a trunk channel's
_CALL_STATE = {"ivr": "ivr", "blocked": "ivr", "queued": "queued", "ringing": "queued", "talking": "agent",
               "moving": "queued", "leaving": "ivr", "external": "external", "voicemail": "voicemail",
               "calling_back": "external"}


@dataclass
class Line:
    """One FXO port's line as the box sees it."""

    port: int
    number: int  # 1-based among the lines, in port order: the status page's "channel"
    state: str = "idle"  # idle, ringing, answered (handed to call control until either side clears)
    rings: int = 0  # ring bursts so far
    first_ring: float | None = None
    last_ring: float | None = None  # the last ring edge, start or end of a burst
    cid: CallerIdHeard | None = None
    cid_at: float | None = None

    def reset(self) -> None:
        self.state, self.rings, self.first_ring, self.last_ring, self.cid, self.cid_at = \
            "idle", 0, None, None, None, None


class FxoLines:
    """The FXO lines' part of ``LineCallCentre``; uses ``CallCentre``'s ``handle``, ``advance``, ``calls``."""

    def _init_lines(self, ports: list[int], box_number: str, rings: int) -> None:
        if isinstance(rings, bool) or not isinstance(rings, int) or not 1 <= rings <= 10:
            raise ConfigError(f"card.line_rings: {rings!r} is out of range; allowed 1..10 ring bursts")
        self.lines = {p: Line(p, i) for i, p in enumerate(ports, 1)}
        self.box_number = box_number
        self.line_rings = rings

    # --- entry points (in front of CallCentre's) -------------------------------------------------

    def handle(self, event: object, now: float) -> list[Action]:
        line = self.lines.get(getattr(event, "port", None)) if self.lines else None
        if line is not None:
            kind = type(event)
            answered = line.state == "answered"
            if kind is Ringing:
                return [] if answered else self._ring(line, event.on, now)  # off hook: the line settling
            if kind is CallerIdHeard:
                if not answered:
                    line.cid, line.cid_at = event, now
                return []
            if kind is Polarity or kind is Released or kind is LineTone:
                if not answered or kind is LineTone and event.tone not in CLEARING_TONES:
                    return []
                how = "polarity" if kind is Polarity else "loop" if kind is Released else event.tone
                return self._far_end_cleared(line, how, now)
            if kind is Digit and not answered:
                return []  # DTMF caller-ID keys, heard by the runtime's detector like a caller's
        return self._line_hangups(super().handle(event, now))

    def advance(self, now: float) -> list[Action]:
        out: list[Action] = []
        for line in self.lines.values():
            if line.state == "ringing" and now >= line.last_ring + RING_GONE_S:
                out += self._missed(line, now)
        return out + self._line_hangups(super().advance(now))

    def next_deadline(self) -> float | None:
        times = [line.last_ring + RING_GONE_S for line in self.lines.values() if line.state == "ringing"]
        t = super().next_deadline()
        if t is not None:
            times.append(t)
        return min(times) if times else None

    # --- the line's life ----------------------------------------------------------------------------

    def _ring(self, line: Line, on: bool, now: float) -> list[Action]:
        if not on:
            if line.state == "ringing":  # while idle: a stray edge, not a call
                line.last_ring = now
            return []
        line.last_ring = now
        if line.state == "idle":
            line.state, line.rings, line.first_ring = "ringing", 0, now
            if line.cid is not None and now - line.cid_at > CID_BEFORE_RING_S:
                line.cid = None  # left over from an earlier call
        line.rings += 1
        if line.rings >= self.line_rings or line.rings == 1 and line.cid is not None:
            return self._answer_line(line, now)
        return []

    def _answer_line(self, line: Line, now: float) -> list[Action]:
        cid = line.cid
        calling = cid.number if cid is not None and cid.number else None
        withheld = None if calling else WITHHELD.get(cid.absent, "unavailable") if cid is not None else "unavailable"
        line.state = "answered"
        out = super().handle(Seized(line.port, calling, self.box_number, withheld), now)
        call = self.calls.get(line.port)
        if call is not None:
            call.start = line.first_ring  # the record's start: the first ring; answer_ts: now
            info = {"port": line.port, "line": line.number, "rings": line.rings,
                    "caller_id": cid.format if cid is not None else None}
            if withheld:
                info["withheld"] = withheld
            if cid is not None and cid.name:
                info["name"] = cid.name
            out.insert(0, LogEvent(call.call_id, "line.answered", info))
        return self._line_hangups(out)

    def _far_end_cleared(self, line: Line, how: str, now: float) -> list[Action]:
        """The caller on an answered line hung up: call control ends the call, the box puts the line on hook."""
        call = self.calls.get(line.port)
        out: list[Action] = [LogEvent(call.call_id, "line.cleared", {"port": line.port, "by": how})] if call else []
        out += super().handle(Released(line.port, 16), now)
        out.append(Hangup(line.port, 16))
        line.reset()
        return out

    def _missed(self, line: Line, now: float) -> list[Action]:
        cid = line.cid
        calling = cid.number if cid is not None and cid.number else None
        number = normalise(calling, home_area=self.area_code)
        data = {"port": line.port, "line": line.number, "caller": calling,
                "caller_national": number.national if number is not None else None,
                "caller_area": area(number, "zh"), "rings": line.rings,
                "ringing_s": round(line.last_ring - line.first_ring, 3)}
        if calling is None and cid is not None:
            data["withheld"] = WITHHELD.get(cid.absent, "unavailable")
        line.reset()
        return [LogEvent("", "line.missed", data), Publish("line.missed", data)]

    def _line_hangups(self, out: list[Action]) -> list[Action]:
        """Call control cleared a line's call (IVR hang-up, blocked caller, ...): that line is idle again."""
        if self.lines:
            for a in out:
                if type(a) is Hangup and a.port in self.lines:
                    self.lines[a.port].reset()
        return out

    # --- views ---------------------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict:
        """``CallCentre.snapshot`` with the lines after the trunk channels (``kind`` "line", ``channel`` the
        line's number, state ringing while it rings)."""
        snap = super().snapshot(now)
        for t in snap["trunks"]:
            t["kind"] = "trunk"
        for line in self.lines.values():
            c = self.calls.get(line.port)
            if c is not None:
                state, caller, call_id = _CALL_STATE.get(c.state, "idle"), c.caller, c.call_id
            else:
                state = "ringing" if line.state == "ringing" else \
                    "alarm" if line.port in self.faulty_ports else "idle"
                ringing = line.state == "ringing" and line.cid is not None
                caller = (line.cid.number or None) if ringing else None
                call_id = None
            snap["trunks"].append({"port": line.port, "channel": line.number, "kind": "line", "state": state,
                                   "caller": caller, "call_id": call_id})
        return snap


class LineCallCentre(FxoLines, CallCentre):
    """``CallCentre`` with the analog lines of ``line_ports`` (FXO) answered in front of it.

    Parameters
    ----------
    trunk_ports, agents, flow, queues, **options : as ``CallCentre``
    line_ports : list of int
        The FXO ports (rows of the frame arrays).
    box_number : str
        The called number of a line's calls (an analog line does not say which number was dialled).
    line_rings : int
        Ring bursts before the box answers (1..10; see the module's policy).
    """

    def __init__(self, trunk_ports: list[int], agents: list, flow: dict, queues, *, line_ports: list[int] = (),
                 box_number: str = "", line_rings: int = RINGS, **options) -> None:
        super().__init__(trunk_ports, agents, flow, queues, **options)
        self._init_lines(list(line_ports), box_number, line_rings)
