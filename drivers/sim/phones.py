"""The FXS phones: ringing in cadence with caller ID on the display, and what the agents do on their own
(dial out as DTMF audio, flash the hook)."""

from __future__ import annotations

import numpy as np

from appliance.errors import DriverError
from dsp.dtmf import dtmf_generate

from ..base import RATE, Digit, Flash, OffHook
from .lines import RING_OFF_S, RING_ON_S
from .parties import PhoneState

__all__ = ["PhoneActions"]

PHONE_CID_S = 0.8  # after the first ring burst: the FSK burst's lead (0.6 s) and a short MDMF message


class PhoneActions:
    """The phones of ``SimCard`` (a part of it). Uses ``_phone``, ``_at``, ``_out``, ``_src``, ``_agent_picks_up``."""

    def ring(self, port: int, caller: str | None) -> None:
        self._check_plugged(f"ring port {port}")
        ph = self._phone(port)
        if ph.hook != "on":
            raise DriverError(f"cannot ring FXS port {port}: the phone is {ph.hook} hook")
        ph.hook = "ringing"
        ph.shown_caller = None
        ph.rings += 1
        ring_id = ph.rings
        self._phone_ring_burst(ph, ring_id, caller, first=True)
        self._at(self._now + ph.agent.ring_delay_s, lambda: self._agent_picks_up(ph, ring_id))

    def _phone_ring_burst(self, ph: PhoneState, ring_id: int, caller: str | None, first: bool = False) -> None:
        """The phone rings in China's cadence (1 s on, 4 s off) while it keeps ringing; its display shows
        the caller from the FSK sent after the first burst, as a real caller-ID phone does."""
        if ph.hook != "ringing" or ph.rings != ring_id:
            return
        start = self._now
        ph.ring_log.append((start, None))

        def burst_ends() -> None:
            ph.ring_log[-1] = (start, self._now)
            if first and caller is not None:
                self._at(self._now + PHONE_CID_S, lambda: ph.hook == "ringing" and ph.rings == ring_id
                         and setattr(ph, "shown_caller", caller))
            self._at(self._now + RING_OFF_S, lambda: self._phone_ring_burst(ph, ring_id, caller))

        self._at(start + RING_ON_S, lambda: ph.hook == "ringing" and ph.rings == ring_id and burst_ends())

    def stop_ring(self, port: int) -> None:
        ph = self._phone(port)
        if ph.hook == "ringing":
            end_ring_burst(ph, self._now)
            ph.hook = "on"

    def phone_dials(self, port: int, digits: str) -> None:
        """The agent at FXS ``port`` lifts the phone (if on hook) and dials ``digits`` after dial tone.

        With media the keys go as DTMF audio into the port's frames; without, as Digit events.
        """
        ph = self._phone(port)
        if ph.hook == "ringing":
            raise DriverError(f"phone on port {port} is ringing; it answers, it does not dial")
        if ph.hook == "on":
            ph.hook = "off"
            self._out.append(OffHook(port))
        if self.media:
            self._src[port].clips.append(np.zeros(int(0.5 * RATE), np.int16))  # listens to dial tone first
            self._src[port].clips.append(dtmf_generate(digits, level_dbm0=-8.0, on_s=0.08, off_s=0.08))
        else:
            self._at(self._now + 0.5, lambda: self._out.extend(Digit(port, d) for d in digits))

    def phone_hangs_up(self, port: int) -> None:
        """The agent at FXS ``port`` puts the phone down (after dialling a feature code, or to end a call)."""
        ph = self._phone(port)
        if ph.hook != "off":
            raise DriverError(f"phone on port {port} is {ph.hook} hook; only a phone off hook can be put down")
        self._agent_hangs_up(ph)

    def phone_flash(self, port: int) -> None:
        """The agent at FXS ``port`` flashes the hook (to transfer or to take a waiting call)."""
        ph = self._phone(port)
        if ph.hook != "off":
            raise DriverError(f"phone on port {port} is {ph.hook} hook; only a phone off hook can flash")
        self._out.append(Flash(port))

    def schedule_phone(self, at: float, action: str, port: int, *args) -> None:
        """Run ``phone_dials``, ``phone_hangs_up`` or ``phone_flash`` at time ``at``."""
        if action not in ("phone_dials", "phone_hangs_up", "phone_flash"):
            raise DriverError(f"unknown phone action {action!r}; one of phone_dials, phone_hangs_up, phone_flash")
        fn = getattr(self, action)
        self._at(at, lambda: fn(port, *args))


def end_ring_burst(ph: PhoneState, now: float) -> None:
    """A ring burst cut short (picked up, or the ringing stopped) ends now in the phone's log."""
    if ph.ring_log and ph.ring_log[-1][1] is None:
        ph.ring_log[-1] = (ph.ring_log[-1][0], now)
