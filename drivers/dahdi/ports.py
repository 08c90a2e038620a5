"""Per-port signalling of the DAHDI card: what a phone port, a line port and an E1 channel make of events and commands.

Each port turns its channel's decoded events (``drivers.dahdi.events``) into the
``drivers.base`` events the core sees, and the core's commands into DAHDI hook
and dial requests. No clock and no I/O of their own: the card hands them ``now``
and they act through their :class:`DahdiChannel`. A kernel failure surfaces as
:class:`PortDown`, which the card turns into a ``PortFault``; misuse (ringing a
line, dialling on a phone) is a plain ``DriverError`` for the caller.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from appliance.errors import DriverError
from dsp.callerid import CallerId, callerid_burst
from dsp.g711 import alaw_decode, alaw_encode

from ..base import BLOCK, CardEvent, Digit, Flash, OffHook, OnHook, Polarity, PortInfo, Released, Ringing
from .channel import DahdiChannel, HookResult
from .events import BitsChanged, ChannelEvent, DialComplete, Ringer

CID_LEAD_S = 0.6  # FSK starts this long after the first ring burst ends (YD/T 1277 and GR-30: >= 0.5 s)
LINE_RING_GONE_S = 8.0  # no burst for this long: the caller gave up (China rings every 5 s)
DIAL_PREFIX = "Tw"  # DTMF, after 0.5 s for the exchange to connect dial tone
NEEDS_STACK = ("the card runs no signalling on its E1 span (it was opened without pri or r2): "
               "its trunk ports carry audio and span alarms only")


class PortDown(DriverError):
    """The kernel failed on this port's channel; the card takes the port out of service (never escapes the card)."""


class Port:
    """One port: its description, its channel, its signalling state, and ``down`` (why it is out of service)."""

    def __init__(self, info: PortInfo, chan: DahdiChannel) -> None:
        self.info, self.chan = info, chan
        self.state = "idle"
        self.down: str | None = None

    def __repr__(self) -> str:
        return f"{self.info.name} (port {self.info.index})"

    def _do(self, call: Callable[..., Any], *args: Any) -> Any:
        if self.down is not None:
            raise PortDown(self.down)
        try:
            return call(*args)
        except PortDown:
            raise
        except DriverError as exc:
            raise PortDown(str(exc)) from exc

    def go_down(self, reason: str) -> None:
        self.down, self.state = reason, "idle"

    def handle(self, ev: ChannelEvent, now: float) -> list[CardEvent]:
        """The core's events for channel event ``ev`` (often none)."""
        return []

    def due(self, now: float) -> None:
        """Retries and timers that fall due by ``now``."""

    def deadline(self) -> float | None:
        return None

    def mix(self, frame: np.ndarray) -> np.ndarray:
        """The frame to send, shape (160,), uint8 A-law: ``frame`` plus what the port adds (caller ID)."""
        return frame

    # --- commands: what this kind of port cannot do ---------------------------------------

    def ring(self, caller: str | None) -> None:
        raise DriverError(f"cannot ring {self}: only FXS ports ring a phone")

    def stop_ring(self) -> None:
        raise DriverError(f"cannot stop ringing {self}: only FXS ports ring a phone")

    def answer(self) -> None:
        raise DriverError(f"cannot answer on {self}: a phone answers by going off hook")

    def hangup(self, cause: int = 16) -> None:
        """Nothing to clear: the phone's user hangs up."""

    def dial(self, number: str) -> None:
        raise DriverError(f"cannot dial on {self}: outbound calls go on FXO lines (or the E1 span)")


class TrunkPort(Port):
    """An E1 channel: its calls are the span's signalling's (``signalling``: a ``PriSpan`` on a PRI span, an
    ``MfcR2Span`` on an MFC/R2 one); without one it carries audio and span alarms only.

    ``bits_changed``: DAHDI said the channel's received CAS bits changed; the R2 signalling reads them.
    """

    signalling: Any = None
    bits_changed = False

    def handle(self, ev: ChannelEvent, now: float) -> list[CardEvent]:
        if isinstance(ev, BitsChanged):
            self.bits_changed = True
        return []

    def answer(self) -> None:
        if self.signalling is None:
            raise DriverError(f"cannot answer on {self}: {NEEDS_STACK}")
        self.signalling.answer(self.info.index)

    def dial(self, number: str) -> None:
        if self.signalling is None:
            raise DriverError(f"cannot dial on {self}: {NEEDS_STACK}")
        self.signalling.dial(self.info.index, number)

    def hangup(self, cause: int = 16) -> None:
        if self.signalling is not None:
            self.signalling.hangup(self.info.index, cause)


class PhonePort(Port):
    """An FXS port (DAHDI ``fxoks``): rings the agent's phone, sends caller ID, hears hook, flash and pulse digits.

    States: idle (on hook), ringing, offhook. ``callerid`` False sends no FSK.
    """

    def __init__(self, info: PortInfo, chan: DahdiChannel, callerid: bool = True) -> None:
        super().__init__(info, chan)
        self.callerid = callerid
        self._ring_pending = False  # DAHDI said EBUSY: ask again on the next poll
        self._answered = False  # we set the hook off (ring trip) and put it back on at hang-up
        self._cid: np.ndarray | None = None  # FSK burst, int16, waiting for the first ring to end
        self._cid_at: float | None = None  # when it starts
        self._cid_pos: int | None = None  # samples sent so far, once started

    def go_down(self, reason: str) -> None:
        super().go_down(reason)
        self._ring_pending = self._answered = False
        self._drop_cid()

    def ring(self, caller: str | None) -> None:
        if self.state != "idle":
            now_is = "already ringing" if self.state == "ringing" else "off hook"
            raise DriverError(f"cannot ring {self}: the phone is {now_is}")
        self._cid = _fsk(caller) if self.callerid else None
        self._cid_at = self._cid_pos = None
        self.state = "ringing"
        self._ring_pending = self._do(self.chan.hook, "ring") is HookResult.BUSY

    def stop_ring(self) -> None:
        if self.state == "ringing":
            self.state, self._ring_pending = "idle", False
            self._drop_cid()
            self._do(self.chan.hook, "ringoff")

    def handle(self, ev: ChannelEvent, now: float) -> list[CardEvent]:
        kind = type(ev)
        if kind is OffHook:
            if self.state == "offhook":
                return []
            answered, self.state, self._ring_pending = self.state == "ringing", "offhook", False
            self._drop_cid()
            if answered:  # ring trip: take the line off hook so the ringer stays off (as chan_dahdi does)
                self._answered = True
                self._do(self.chan.hook, "offhook")
            return [ev]
        if kind is OnHook:
            if self.state != "offhook":
                return []
            self.state = "idle"
            if self._answered:
                self._answered = False
                self._do(self.chan.hook, "onhook")
            return [ev]
        if kind in (Flash, Digit):
            return [ev] if self.state == "offhook" else []
        if kind is Ringer and self.state == "ringing":
            if not ev.on and self._cid is not None and self._cid_at is None:
                self._cid_at = now + CID_LEAD_S
            elif ev.on and self._cid_pos is not None:
                self._drop_cid()  # never over the second ring (a burst too long for the cadence)
        return []

    def due(self, now: float) -> None:
        if self._ring_pending and self.state == "ringing":
            self._ring_pending = self._do(self.chan.hook, "ring") is HookResult.BUSY
        if self._cid_at is not None and self._cid_pos is None and now >= self._cid_at:
            self._cid_pos = 0

    def deadline(self) -> float | None:
        return self._cid_at if self._cid_pos is None else None

    def mix(self, frame: np.ndarray) -> np.ndarray:
        if self._cid_pos is None or self._cid is None:
            return frame
        chunk = self._cid[self._cid_pos:self._cid_pos + BLOCK]
        pcm = alaw_decode(frame).astype(np.int32)
        pcm[:chunk.size] += chunk
        self._cid_pos += BLOCK
        if self._cid_pos >= self._cid.size:
            self._drop_cid()
        return alaw_encode(np.clip(pcm, -32768, 32767).astype(np.int16))

    def _drop_cid(self) -> None:
        self._cid = self._cid_at = self._cid_pos = None


def _fsk(caller: str | None) -> np.ndarray:
    """MDMF caller ID for ``caller``: the number, or 'unavailable' when there is none we can send.

    No date-time field: the card has no wall clock (MDMF may leave it out).
    """
    ok = caller is not None and caller.isascii() and caller.isdigit() and len(caller) <= 32
    cid = CallerId(number=caller, format="mdmf") if ok else CallerId(number_absent_reason="O", format="mdmf")
    return callerid_burst(cid).samples


class LinePort(Port):
    """An FXO port (DAHDI ``fxsks``) on an analog line: ring bursts in, answer, outbound seize and dial, far-end clear.

    States: idle, ringing, answered, dialing, dialled, cleared (the far end went; we are still off hook).
    Caller ID arrives as audio between the bursts, for the core's detectors.
    """

    OFF_HOOK = ("answered", "dialing", "dialled")

    def __init__(self, info: PortInfo, chan: DahdiChannel) -> None:
        super().__init__(info, chan)
        self._last_ring = 0.0

    def handle(self, ev: ChannelEvent, now: float) -> list[CardEvent]:
        kind = type(ev)
        if kind is Ringing:
            if self.state not in ("idle", "ringing"):
                return []  # a ring edge while off hook is the line settling, not a call
            self.state, self._last_ring = "ringing", now
            return [ev]
        if kind is Released:  # loop current gone while off hook
            if self.state not in self.OFF_HOOK:
                return []
            self.state = "cleared"
            return [ev]
        if kind is Polarity:  # the far end answered or cleared: the core tells which
            return [ev] if self.state in self.OFF_HOOK else []
        if kind is DialComplete and self.state == "dialing":
            self.state = "dialled"
        return []

    def due(self, now: float) -> None:
        if self.state == "ringing" and now - self._last_ring > LINE_RING_GONE_S:
            self.state = "idle"

    def deadline(self) -> float | None:
        return self._last_ring + LINE_RING_GONE_S if self.state == "ringing" else None

    def answer(self) -> None:
        if self.state in self.OFF_HOOK or self.state == "cleared":
            return
        self._do(self.chan.hook, "offhook")
        self.state = "answered"

    def hangup(self, cause: int = 16) -> None:
        if self.state in self.OFF_HOOK or self.state == "cleared":
            self.state = "idle"
            self._do(self.chan.hook, "onhook")  # also stops digits still being dialled

    def dial(self, number: str) -> None:
        if not isinstance(number, str) or not number or not all(ch in "0123456789*#" for ch in number):
            raise DriverError(f"cannot dial {number!r}: a number is one or more of 0-9 * #")
        if self.state != "idle":
            raise DriverError(f"cannot dial on {self}: the line is {self.state}")
        self.state = "dialing"
        self._do(self.chan.hook, "offhook")
        self._do(self.chan.dial, DIAL_PREFIX + number)
