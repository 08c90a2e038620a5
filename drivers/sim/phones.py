"""What the agents do with their FXS phones on their own: dial out as DTMF audio, flash the hook."""

from __future__ import annotations

import numpy as np

from appliance.errors import DriverError
from dsp.dtmf import dtmf_generate

from ..base import RATE, Digit, Flash, OffHook

__all__ = ["PhoneActions"]


class PhoneActions:
    """Agent-initiated phone actions for ``SimCard`` (a part of it). Uses ``_phone``, ``_at``, ``_out``, ``_src``."""

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

    def phone_flash(self, port: int) -> None:
        """The agent at FXS ``port`` flashes the hook (to transfer or to take a waiting call)."""
        ph = self._phone(port)
        if ph.hook != "off":
            raise DriverError(f"phone on port {port} is {ph.hook} hook; only a phone off hook can flash")
        self._out.append(Flash(port))

    def schedule_phone(self, at: float, action: str, port: int, *args) -> None:
        """Run ``phone_dials`` or ``phone_flash`` at time ``at``."""
        if action not in ("phone_dials", "phone_flash"):
            raise DriverError(f"unknown phone action {action!r}; one of phone_dials, phone_flash")
        fn = getattr(self, action)
        self._at(at, lambda: fn(port, *args))
