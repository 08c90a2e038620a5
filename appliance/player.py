"""The prompt player: plays prompts, named or ad hoc (spoken answers), into the ports' transmit frames, one per port.

A prompt's end is a deadline (start + length / 8000): the same in media mode, where
its samples are mixed tick by tick, and in event mode, where no audio moves.
"""

from __future__ import annotations

import numpy as np

from drivers.base import BLOCK, RATE

from .errors import ApplianceError


class PromptPlayer:
    """Per-port playback of prompts given as int16 arrays at 8 kHz.

    Parameters
    ----------
    n_ports : int
    prompts : dict of str to ndarray, shape (n,), int16
        The prompt set, rendered before the runtime starts (never in the tick).
    """

    def __init__(self, n_ports: int, prompts: dict[str, np.ndarray]) -> None:
        self.n = n_ports
        self.prompts = {name: np.asarray(s, np.float32) for name, s in prompts.items()}
        self._clip: dict[int, np.ndarray] = {}
        self._pos: dict[int, int] = {}
        self._end: dict[int, float] = {}

    def load(self, name: str, samples: np.ndarray) -> None:
        """Add or replace the prompt ``name`` (rendered off the tick: a changed IVR flow's texts)."""
        self.prompts[name] = np.asarray(samples, np.float32)

    def play(self, port: int, name: str, now: float) -> None:
        try:
            clip = self.prompts[name]
        except KeyError:
            raise ApplianceError(f"prompt {name!r} is not loaded; loaded: {', '.join(sorted(self.prompts))}") from None
        self._start(port, clip, now)

    def play_clip(self, port: int, samples: np.ndarray, now: float) -> None:
        """Play an ad-hoc clip (a spoken answer, not in the prompt set) exactly as ``play`` plays a prompt.

        Parameters
        ----------
        port : int
        samples : ndarray, shape (n,), int16, linear PCM at 8 kHz
            May be empty: the clip then ends at ``now`` and ``finished`` reports it at once.
        now : float, seconds, the runtime's clock
        """
        clip = np.asarray(samples, np.float32)  # once per clip, never per tick
        if clip.ndim != 1:
            raise ApplianceError(f"a clip for port {port} must have shape (n,), got {clip.shape}")
        self._start(port, clip, now)

    def _start(self, port: int, clip: np.ndarray, now: float) -> None:
        """``clip`` replaces what ``port`` was playing (no ``finished`` for that) and ends after its length."""
        self._clip[port], self._pos[port], self._end[port] = clip, 0, now + clip.size / RATE

    def stop(self, port: int) -> None:
        self._clip.pop(port, None)
        self._pos.pop(port, None)
        self._end.pop(port, None)

    def next_deadline(self) -> float | None:
        return min(self._end.values()) if self._end else None

    def finished(self, now: float) -> list[int]:
        """Ports whose prompt has ended by ``now``; they stop playing."""
        done = [p for p, end in self._end.items() if end <= now]
        for p in done:
            self.stop(p)
        return done

    def add_to(self, out: np.ndarray) -> None:
        """Add the next 20 ms of every playing prompt into ``out`` (n_ports, 160) float32."""
        for port, clip in self._clip.items():
            pos = self._pos[port]
            chunk = clip[pos : pos + BLOCK]
            out[port, : chunk.size] += chunk
            self._pos[port] = pos + BLOCK
