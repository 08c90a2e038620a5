"""The recorder: taps the two legs of recorded calls every tick and writes A-law WAV files.

Mono files hold the caller and the agent mixed; stereo files hold the caller on the
left channel and the agent on the right, copied from the received A-law codes with no
re-encoding. Files are closed (and fsynced) on a worker thread so the tick never
waits for the disk.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Executor, ThreadPoolExecutor
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp.g711 import alaw_encode

from .errors import ApplianceError
from .wavfile import AlawWavWriter

log = logging.getLogger(__name__)


@dataclass
class _Take:
    call_id: str
    a: int  # caller's port
    b: int  # agent's port
    writer: AlawWavWriter
    relpath: str


class Recorder:
    """Up to ``slots`` simultaneous recordings under ``root`` (``recordings/YYYY/MM/DD/<call_id>.wav``).

    Parameters
    ----------
    root : path
        The data directory; recordings go below ``root/recordings``.
    mode : {"mono", "stereo"}
    slots : int
        Fixed number of recorder ports (one per seat by default).
    """

    def __init__(self, root: str | os.PathLike, mode: str = "mono", slots: int = 6,
                 closer: Executor | None = None, tz: dt.tzinfo | None = None) -> None:
        if mode not in ("mono", "stereo"):
            raise ApplianceError(f"recording mode {mode!r} is not one of mono, stereo")
        self.root = Path(root)
        self.mode = mode
        self.slots = slots
        self.tz = tz  # the box's zone names the day folders (None: the host's)
        self.takes: dict[str, _Take] = {}
        self._mix = np.zeros((slots, 160), np.int32)
        self._mix16 = np.zeros((slots, 160), np.int16)
        self._codes = np.zeros((slots, 160), np.uint8)
        self._closer = closer or ThreadPoolExecutor(1, thread_name_prefix="recorder-close")
        self._pending: list = []

    def start(self, call_id: str, a: int, b: int, epoch: float, kind: str = "call") -> str | None:
        """Begin recording ports ``a`` (caller) and ``b`` (agent; ``a`` again for the caller alone, as in a
        voicemail message); returns the path relative to root, under ``recordings/`` or (``kind`` voicemail)
        ``voicemail/``.

        Returns None (and records nothing) when every slot is busy.
        """
        if len(self.takes) >= self.slots:
            return None
        day = dt.datetime.fromtimestamp(epoch, self.tz).strftime("%Y/%m/%d")
        rel = f"{'voicemail' if kind == 'voicemail' else 'recordings'}/{day}/{call_id}.wav"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = AlawWavWriter(path, channels=2 if self.mode == "stereo" else 1)
        self.takes[call_id] = _Take(call_id, a, b, writer, rel)
        return rel

    def stop(self, call_id: str) -> tuple[str, float] | None:
        """End a recording; returns (relative path, seconds). The file is closed off the tick."""
        take = self.takes.pop(call_id, None)
        if take is None:
            return None
        self._reap()
        self._pending.append(self._closer.submit(take.writer.close))
        return take.relpath, take.writer.duration_s

    def tap(self, rx_alaw: np.ndarray, rx: np.ndarray) -> None:
        """Write this tick's audio of every recording.

        Parameters
        ----------
        rx_alaw : ndarray, shape (n_ports, 160), uint8, A-law codes as received
        rx : ndarray, shape (n_ports, 160), int16, the same decoded
        """
        if not self.takes:
            return
        takes = list(self.takes.values())
        if self.mode == "stereo":
            for t in takes:
                t.writer.write(rx_alaw[[t.a, t.b]])  # one party: the same on both channels
            return
        n = len(takes)
        ia = [t.a for t in takes]
        ib = [t.b for t in takes]
        mix = self._mix[:n]
        np.add(rx[ia], rx[ib], out=mix, dtype=np.int32)
        for i, t in enumerate(takes):
            if t.a == t.b:  # one party: its own audio, not twice
                mix[i] = rx[t.a]
        np.clip(mix, -32768, 32767, out=mix)
        mix16 = self._mix16[:n]
        np.copyto(mix16, mix, casting="unsafe")
        codes = self._codes[:n]
        alaw_encode(mix16, out=codes)
        for i, t in enumerate(takes):
            t.writer.write(codes[i : i + 1])

    def _reap(self) -> None:
        """Forget files already closed; a failed close is logged, never raised into the tick."""
        still = []
        for fut in self._pending:
            if not fut.done():
                still.append(fut)
            elif fut.exception() is not None:
                log.error("closing a recording failed: %s", fut.exception())
        self._pending = still

    def settle(self) -> None:
        """Wait until every stopped recording's file is closed (re-raises a close error)."""
        pending, self._pending = self._pending, []
        for fut in pending:
            fut.result()

    def close(self) -> None:
        """Stop every recording and wait until all files are closed."""
        for call_id in list(self.takes):
            self.stop(call_id)
        self.settle()
        self._closer.shutdown(wait=True)
