"""The recorder: taps the two legs of recorded calls every tick and writes A-law WAV files.

A call is recorded at its caller's port, both ways: what the caller says and what the
box sends the caller (the agent, or whoever a transfer, a conference or a barging
supervisor puts in the call), so a recording follows the call whatever happens to it.
Mono files hold the two mixed; stereo files hold the caller on the left channel and the
other side on the right, the A-law codes as received and as sent, with no re-encoding.
Files are closed (and fsynced) on a worker thread so the tick never waits for the disk;
the writers flush every second, so a crash loses at most that.

Each recording gets a number (``appliance.recindex``) and a row in the recordings
index when it starts. A write that fails (a full disk: ENOSPC; or any OSError) stops
every recording at once, each file closed valid with the audio that reached it, and
raises the box alarm ``recording.disk_full`` (``recording.write_failed`` for other
errors); the calls go on unrecorded, no new recording starts until ``resume``. So
that the disk never gets that far, the recorder also counts what it writes against
a ``budget`` (free space above the reserve, measured off the tick by
``appliance.recstore``) and stops the same way when it is spent.
"""

from __future__ import annotations

import errno
import logging
import os
from concurrent.futures import Executor, ThreadPoolExecutor
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dsp.g711 import alaw_encode

from .errors import ApplianceError
from .wavfile import HEADER_SIZE, AlawWavWriter

log = logging.getLogger(__name__)

DISK_FULL = "recording.disk_full"
WRITE_FAILED = "recording.write_failed"
_SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def failure(e: OSError, what: str) -> tuple[str, str]:
    """The alarm (name, detail) for an OSError met while writing ``what``."""
    return (DISK_FULL if e.errno in _SPACE_ERRORS else WRITE_FAILED), f"{what}: {e.strerror or e}"


@dataclass
class _Take:
    call_id: str
    a: int  # caller's port
    b: int  # agent's port
    writer: AlawWavWriter
    relpath: str
    number: int = 0
    kind: str = "call"


class Recorder:
    """Up to ``slots`` simultaneous recordings under ``root`` (``recordings/YYYY/MM/DD/<call_id>.wav``).

    Parameters
    ----------
    root : path
        The data directory; recordings go below ``root/recordings``.
    mode : {"mono", "stereo"}
    slots : int
        Fixed number of recorder ports (one per seat by default).
    index : appliance.recindex.RecordingIndex, optional
        Gets a row per recording (started in the tick, finished on the closing thread).
    first_number : int
        The number the first recording gets (``RecordingIndex.next_number``).
    on_alarm : callable(name, raised, detail), optional
        Called in the tick when recording stops (raised True) and from ``resume`` (False).
    """

    def __init__(self, root: str | os.PathLike, mode: str = "mono", slots: int = 6,
                 closer: Executor | None = None, tz: dt.tzinfo | None = None, *, index=None,
                 first_number: int = 1, on_alarm: Callable[[str, bool, str], None] | None = None) -> None:
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
        self.index = index
        self.next_number = first_number
        self.on_alarm = on_alarm
        self.halted: tuple[str, str] | None = None  # (alarm, detail) while recording is stopped
        self.budget: int | None = None  # bytes that may still be written before the reserve; None: no limit
        self.budget_note = ""
        self.written = 0  # bytes of audio accepted since start (the housekeeping's yardstick)
        self._late: tuple[str, str] | None = None  # a close that failed on the closing thread, for the next tick

    def start(self, call_id: str, a: int, b: int, epoch: float, kind: str = "call") -> str | None:
        """Begin recording ports ``a`` (caller) and ``b`` (agent; ``a`` again for the caller alone, as in a
        voicemail message); returns the path relative to root, under ``recordings/`` or (``kind`` voicemail)
        ``voicemail/``.

        Returns None (and records nothing) when every slot is busy, or while recording is stopped (``halted``).
        """
        if self._late is not None:
            self._halt(*self._late)
        if self.halted is not None or len(self.takes) >= self.slots:
            return None
        if self.budget is not None and self.budget <= 0:
            self._halt(DISK_FULL, self.budget_note)
            return None
        day = dt.datetime.fromtimestamp(epoch, self.tz).strftime("%Y/%m/%d")
        rel = f"{'voicemail' if kind == 'voicemail' else 'recordings'}/{day}/{call_id}.wav"
        path = self.root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = AlawWavWriter(path, channels=2 if self.mode == "stereo" else 1)
        except OSError as e:
            self._halt(*failure(e, rel))
            return None
        number, self.next_number = self.next_number, self.next_number + 1
        self.takes[call_id] = _Take(call_id, a, b, writer, rel, number, kind)
        if self.index is not None:
            self.index.started(number, call_id, kind, rel, epoch)
        return rel

    def stop(self, call_id: str) -> tuple[str, float] | None:
        """End a recording; returns (relative path, seconds). The file is closed off the tick."""
        take = self.takes.pop(call_id, None)
        if take is None:
            return None
        self._reap()
        self._pending.append(self._closer.submit(self._finish, take, False))
        return take.relpath, take.writer.duration_s

    def _finish(self, take: _Take, abort: bool) -> None:
        """On the closing thread: close (or after a failed write, abort) the file, then its index row."""
        try:
            if abort:
                take.writer.abort()
            else:
                take.writer.close()
        except OSError as e:  # the last second's write found the disk full: the file is closed valid anyway
            log.error("closing recording %s: %s", take.relpath, e)
            self._late = failure(e, take.relpath)
        finally:
            if self.index is not None:
                self.index.finished(take.number, take.writer.duration_s, take.writer.file_size)

    def _halt(self, alarm: str, detail: str) -> None:
        """Stop every recording now (files closed valid off the tick) and start none until ``resume``."""
        self._late = None
        if self.halted is not None:
            return
        self.halted = (alarm, detail)
        log.error("recording stopped (%s): %s", alarm, detail)
        takes, self.takes = list(self.takes.values()), {}
        for take in takes:
            self._pending.append(self._closer.submit(self._finish, take, True))
        if self.on_alarm is not None:
            self.on_alarm(alarm, True, detail)

    def resume(self) -> None:
        """Space is back: new recordings may start; the alarm clears."""
        if self.halted is None:
            return
        alarm, self.halted = self.halted[0], None
        log.warning("recording resumes (%s cleared)", alarm)
        if self.on_alarm is not None:
            self.on_alarm(alarm, False, "")

    def set_budget(self, nbytes: int | None, note: str = "") -> None:
        """Bytes that may still be written (None: no limit); at or below zero recording stops at once."""
        self.budget, self.budget_note = nbytes, note
        if nbytes is not None and nbytes <= 0:
            self._halt(DISK_FULL, note)

    def active(self) -> list[dict]:
        """The recordings being written: number, call id, kind, path and seconds so far."""
        return [{"number": t.number, "call_id": t.call_id, "kind": t.kind, "path": t.relpath,
                 "seconds": round(t.writer.duration_s, 3)} for t in self.takes.values()]

    def active_bytes(self) -> int:
        """Bytes the recordings being written take (or will once flushed)."""
        return sum(HEADER_SIZE + t.writer.n_samples * t.writer.channels for t in self.takes.values())

    def tap(self, rx_alaw: np.ndarray, rx: np.ndarray, tx_alaw: np.ndarray | None = None,
            tx: np.ndarray | None = None) -> None:
        """Write this tick's audio of every recording.

        Parameters
        ----------
        rx_alaw : ndarray, shape (n_ports, 160), uint8, A-law codes as received
        rx : ndarray, shape (n_ports, 160), int16, the same decoded
        tx_alaw, tx : ndarray, shape (n_ports, 160), uint8 and int16, optional
            What the box sends each port this tick. With them a call's recording follows its caller: what the
            caller said (``rx[a]``) and what the caller heard (``tx[a]``: the agent, or whoever took the call
            over by a transfer, a conference, a supervisor barging in; not a whisper to the agent, nor anything
            the first agent does after leaving the call). Without them: the two ports' received audio.
        """
        if self._late is not None:
            self._halt(*self._late)
        if not self.takes:
            return
        takes = list(self.takes.values())
        heard = tx is not None and tx_alaw is not None
        if self.mode == "stereo":
            for t in takes:
                if t.a == t.b or not heard:  # one party (voicemail): the same on both channels
                    frames = rx_alaw[[t.a, t.b]]
                else:
                    frames = np.stack((rx_alaw[t.a], tx_alaw[t.a]))
                if not self._write(t, frames):
                    return
            self._spent(len(takes) * 2 * rx.shape[1])
            return
        n = len(takes)
        ia = [t.a for t in takes]
        mix = self._mix[:n]
        if heard:
            np.add(rx[ia], tx[ia], out=mix, dtype=np.int32)
        else:
            np.add(rx[ia], rx[[t.b for t in takes]], out=mix, dtype=np.int32)
        for i, t in enumerate(takes):
            if t.a == t.b:  # one party: its own audio, not twice
                mix[i] = rx[t.a]
        np.clip(mix, -32768, 32767, out=mix)
        mix16 = self._mix16[:n]
        np.copyto(mix16, mix, casting="unsafe")
        codes = self._codes[:n]
        alaw_encode(mix16, out=codes)
        for i, t in enumerate(takes):
            if not self._write(t, codes[i : i + 1]):
                return
        self._spent(n * rx.shape[1])

    def _write(self, take: _Take, frames: np.ndarray) -> bool:
        try:
            take.writer.write(frames)
            return True
        except OSError as e:
            self._halt(*failure(e, take.relpath))
            return False

    def _spent(self, nbytes: int) -> None:
        self.written += nbytes
        if self.budget is not None:
            self.budget -= nbytes
            if self.budget <= 0:
                self._halt(DISK_FULL, self.budget_note)

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
