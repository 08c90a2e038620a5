"""The people on the simulated card: scripted callers on the trunk and virtual agents at the phones."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class CallerScript:
    """What one caller does, decided before the call.

    ``patience_s`` counts from the moment the caller has pressed the menu digits (the
    caller is then waiting for a person); ``math.inf`` means never abandon.
    ``talk_s`` None lets the agent end the call; a number makes the caller hang up
    that long after being connected. ``presses`` are further keys pressed later, as
    ``(seconds after the box answers, keys)``, each group like ``digits`` (an IVR
    that asks for a menu choice, then an order number, then a confirmation).
    """

    number: str | None
    arrive_at: float
    digits: str = "1"
    withheld: str | None = None  # with number None: "private" or "unavailable" (else "unavailable" is assumed)
    digit_delay_s: float = 1.0  # after the box answers (callers press during the prompt)
    patience_s: float = math.inf
    talk_s: float | None = None
    tone_hz: float | None = None  # send a steady test tone while connected
    tone_dbm0: float = -10.0  # level of the tone, or of the speech
    speech: bool = False  # send seeded speech-like audio while connected (when no tone is set)
    record: bool = False  # keep what the caller hears, for tests
    presses: tuple[tuple[float, str], ...] = ()  # further (seconds after answer, keys), after ``digits``


@dataclass
class CallerState:
    script: CallerScript
    port: int | None = None
    answered_at: float | None = None
    digits_done_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    outcome: str = "calling"  # calling, ivr, waiting, talking, abandoned, completed, blocked, cleared
    heard: list[np.ndarray] = field(default_factory=list)

    def heard_audio(self) -> np.ndarray:
        """What the caller heard, int16 at 8 kHz, shape (n,)."""
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)


@dataclass
class AgentScript:
    """How a virtual agent behaves: ring delay, talk time (drawn per call), a test tone."""

    ring_delay_s: float = 2.0
    talk_s: Callable[[np.random.Generator], float] | float = 60.0
    tone_hz: float | None = None
    tone_dbm0: float = -10.0
    speech: bool = False
    record: bool = False

    def draw_talk(self, rng: np.random.Generator) -> float:
        return float(self.talk_s(rng)) if callable(self.talk_s) else float(self.talk_s)


@dataclass
class PhoneState:
    """A phone on an FXS port and the virtual agent sitting at it."""

    port: int
    agent: AgentScript
    hook: str = "on"  # on, ringing, off
    peer: int | None = None
    shown_caller: str | None = None  # what the display shows: the caller ID that arrived after the first ring
    ring_log: list[tuple[float, float | None]] = field(default_factory=list)  # (start, end) of each ring burst
    rings: int = 0  # counts rings, so a late pick-up of an old ring is ignored
    heard: list[np.ndarray] = field(default_factory=list)

    def heard_audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)
