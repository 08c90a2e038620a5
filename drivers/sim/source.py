"""What one simulated port sends: queued finite sounds (keys, tones), then a steady tone or looping speech."""

from __future__ import annotations

import math

import numpy as np

from ..base import BLOCK, RATE


class Source:
    """What one port sends: queued finite sounds, then an optional steady tone."""

    __slots__ = ("clips", "pos", "tone_hz", "tone_amp", "phase", "loop", "loop_pos")

    def __init__(self) -> None:
        self.clips: list[np.ndarray] = []
        self.pos = 0
        self.tone_hz: float | None = None
        self.tone_amp = 0.0
        self.phase = 0.0
        self.loop: np.ndarray | None = None  # speech repeated for as long as the party talks
        self.loop_pos = 0

    def fill(self, out: np.ndarray, t: np.ndarray) -> None:
        """Write the next block into ``out`` (shape (160,), int16); ``t`` is 0..159 as float."""
        n = 0
        while self.clips and n < BLOCK:
            clip = self.clips[0]
            take = min(BLOCK - n, clip.size - self.pos)
            out[n : n + take] = clip[self.pos : self.pos + take]
            n += take
            self.pos += take
            if self.pos >= clip.size:
                self.clips.pop(0)
                self.pos = 0
        if n < BLOCK and self.tone_hz is not None:
            w = 2 * math.pi * self.tone_hz / RATE
            out[n:] = np.round(self.tone_amp * np.sin(self.phase + w * t[: BLOCK - n])).astype(np.int16)
            self.phase = (self.phase + w * (BLOCK - n)) % (2 * math.pi)
        elif n < BLOCK and self.loop is not None:
            idx = (self.loop_pos + np.arange(BLOCK - n)) % self.loop.size
            out[n:] = self.loop[idx]
            self.loop_pos = (self.loop_pos + BLOCK - n) % self.loop.size

    @property
    def active(self) -> bool:
        return bool(self.clips) or self.tone_hz is not None or self.loop is not None
