"""Playback of a recording over the phone (feature code ``*6 N #``): the file found by number and loaded off the tick.

The call logic asks for ``PlayRecording(port, number)``; the runtime hands the number
to ``PlaybackWorker.submit`` and, a tick or more later, plays what ``results`` gives
with ``PromptPlayer.play_clip`` (or the ``code.failed`` prompt with the reason logged).
The lookup in the recordings index and the file read run on a worker thread
(``appliance.offtick``). A stereo recording is heard as both parties together (the
sum, as the mono mix is made); at most ``PLAY_MAX_S`` of it is played, so a long
recording cannot take much of the box's memory (the player holds float32 samples).
A recording still being written plays as far as it has reached the disk.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from dsp.g711 import alaw_decode

from .errors import ApplianceError
from .offtick import OffTick
from .wavfile import RATE, read_alaw_wav

log = logging.getLogger(__name__)

PLAY_MAX_S = 600.0


class PlaybackWorker:
    """Finds and decodes recordings by number off the tick.

    Parameters
    ----------
    root : path
        The data directory (index paths are relative to it).
    index : appliance.recindex.RecordingIndex
    threads : int
        0 loads inside ``submit`` (virtual time: deterministic; handed out by the next ``results``).
    """

    def __init__(self, root: str | os.PathLike, index, threads: int = 1) -> None:
        self.root = Path(root)
        self.index = index
        self._work = OffTick("rec-play", threads)

    def submit(self, key: object, number: int) -> None:
        self._work.submit(lambda: self._load(key, number))

    def load(self, number: int) -> np.ndarray:
        """The recording ``number`` as one channel, ndarray, shape (n,), int16, linear PCM at 8 kHz.

        Raises ApplianceError saying why it cannot be played (no such number, deleted, unreadable)."""
        row = self.index.get(number)
        if row is None:
            raise ApplianceError(f"recording {number} does not exist")
        if row["state"] == "deleted":
            raise ApplianceError(f"recording {number} was deleted ({row['note']})")
        try:
            codes, _ = read_alaw_wav(self.root / row["path"])
        except (OSError, ApplianceError) as e:
            raise ApplianceError(f"recording {number} ({row['path']}) cannot be read: {e}") from None
        pcm = alaw_decode(codes[:, : int(PLAY_MAX_S * RATE)])
        if pcm.shape[0] == 1 or np.array_equal(pcm[0], pcm[1]):  # mono, or one party on both channels
            return pcm[0].copy()
        return np.clip(pcm.astype(np.int32).sum(axis=0), -32768, 32767).astype(np.int16)

    def _load(self, key: object, number: int) -> tuple[object, np.ndarray | None, str | None]:
        try:
            return key, self.load(number), None
        except Exception as e:  # noqa: BLE001 (any failure must answer, or the agent hears silence forever)
            log.warning("playing recording %s: %s", number, e)
            return key, None, str(e)

    def results(self) -> list[tuple[object, np.ndarray | None, str | None]]:
        """``(key, samples, error)`` of the loads finished since the last call; never blocks."""
        return self._work.results()

    def wait(self, timeout: float | None = None) -> bool:
        """Virtual time only: block until every load has finished (True) or ``timeout`` passes (False)."""
        return self._work.wait(timeout)

    def close(self) -> None:
        self._work.close()
