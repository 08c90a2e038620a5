"""The recordings on disk (``recordings/`` and ``voicemail/``): repaired and indexed at start, kept by age and quota.

``check`` runs once when the core starts, before the first tick: every WAV file is
read; one whose header disagrees with its length (the core died while writing it)
is repaired to the audio actually there (``wavfile.repair_alaw_wav``), and the
recordings index (``appliance.recindex``) is brought in line with the files:

- a row still ``recording`` (the core died during the call) becomes ``done`` if the
  call's record names the file, else ``orphaned``: the call never got its record (it
  was cut off by the crash), the recording is kept and listed, playable by number, and
  the journal has a ``recording.orphaned`` event under the call's id;
- every repair is a ``recording.repaired`` event (seconds the header said, seconds kept);
- a file the index lacks (lost in the last 0.2 s before a crash, or made before the
  index existed) gets the next number, ``done`` or ``orphaned`` by the same rule;
- a row whose file is gone is marked ``deleted`` (note ``missing``).

``sweep`` runs off the tick every few seconds (``appliance.recordings``): retention,
then the free space. Retention deletes, oldest first, call recordings older than
``recording.keep_days`` and voicemail older than ``recording.voicemail_keep_days``
(each 0: kept), then, while recordings and voicemail together (those being written
included) take more than ``recording.max_mb``, the oldest of either kind. A deleted
file's row becomes ``deleted`` (note ``age`` or ``quota``), its call record keeps the
call with ``recording`` cleared, and the journal gets a ``recording.deleted`` event.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ProtocolError
from .wavfile import HEADER_SIZE, RATE, repair_alaw_wav

log = logging.getLogger(__name__)

FOLDERS = {"recordings": "call", "voicemail": "voicemail"}
MIB = 1 << 20
_DAY = re.compile(r"(?:recordings|voicemail)/(\d{4})/(\d{2})/(\d{2})/[^/]+\.wav")


@dataclass
class Checked:
    """What ``RecordingStore.check`` found: paths relative to the data directory."""

    files: int = 0
    repaired: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)  # files the index lacked
    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    unreadable: list[str] = field(default_factory=list)  # not WAV files we can repair (left alone)
    next_number: int = 1


@dataclass
class Swept:
    """What one ``sweep`` did and measured."""

    deleted: list[tuple[int, str, str]] = field(default_factory=list)  # (number, path, reason)
    free_bytes: int | None = None
    writable: bool = True


def plan_retention(rows: list[dict], now: float, keep_days: int, voicemail_keep_days: int, max_bytes: int,
                   extra_bytes: int = 0) -> list[tuple[dict, str]]:
    """Which finished recordings retention deletes, and why ("age" or "quota"), oldest first.

    Parameters
    ----------
    rows : list of dict
        Index rows of finished recordings (``kind``, ``start_ts`` epoch seconds, ``bytes``), oldest first.
    now : float, epoch seconds
    keep_days, voicemail_keep_days : int
        Age limits of call recordings and of voicemail messages; 0 keeps them.
    max_bytes : int
        Quota for all of them together; 0: none.
    extra_bytes : int
        Bytes that count against the quota but cannot be deleted (recordings being written).
    """
    out: list[tuple[dict, str]] = []
    kept: list[dict] = []
    for r in rows:
        days = voicemail_keep_days if r["kind"] == "voicemail" else keep_days
        if days and r["start_ts"] < now - days * 86400:
            out.append((r, "age"))
        else:
            kept.append(r)
    if max_bytes:
        total = extra_bytes + sum(r["bytes"] or 0 for r in kept)
        for r in kept:
            if total <= max_bytes:
                break
            out.append((r, "quota"))
            total -= r["bytes"] or 0
    return out


class RecordingStore:
    """The data directory's recording folders and their index.

    Parameters
    ----------
    root : path
        The data directory.
    index : appliance.recindex.RecordingIndex
    journal : appliance.journal.Journal
        For the ``recording.*`` events.
    settings : dict
        The config's ``recording`` section (``keep_days``, ``voicemail_keep_days``, ``max_mb``, ``mode``).
    tz : tzinfo
        The box's zone (the day folders are local days).
    """

    def __init__(self, root: str | os.PathLike, index, journal, settings: dict, tz: dt.tzinfo | None = None) -> None:
        self.root = Path(root)
        self.index, self.journal, self.settings, self.tz = index, journal, settings, tz

    # --- at start -----------------------------------------------------------------------------------

    def files(self) -> list[tuple[str, str]]:
        """(path relative to root, kind) of every WAV file below recordings/ and voicemail/, in path order."""
        out = []
        for folder, kind in FOLDERS.items():
            for dirpath, dirnames, filenames in os.walk(self.root / folder):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                rel = os.path.relpath(dirpath, self.root)
                out += [(f"{rel}/{f}", kind) for f in filenames if f.endswith(".wav") and not f.startswith(".")]
        return sorted(out)

    def check(self, now: float) -> Checked:
        """Repair the files a crash cut short and bring the index in line with the files (see the module's text).
        ``now``: epoch seconds, for the events."""
        self.index.create()
        out = Checked()
        rows: dict[str, dict] = {}
        for r in self.index.rows():
            rows[r["path"]] = r  # ordered by start: a path used twice keeps its latest row
        number = self.index.next_number()
        calls = self.index.call_recordings()
        channels = 2 if self.settings["mode"] == "stereo" else 1
        present = set()
        for rel, kind in self.files():
            out.files += 1
            path = self.root / rel
            try:
                fixed = repair_alaw_wav(path, channels)
            except (ProtocolError, OSError) as e:
                log.error("recording %s cannot be checked: %s", rel, e)
                out.unreadable.append(rel)
                continue
            present.add(rel)
            st = path.stat()
            seconds = _seconds(path, st.st_size)
            call_id = Path(rel).stem
            linked = calls.get(call_id) == rel
            row = rows.get(rel)
            if fixed is not None:
                out.repaired.append(rel)
                self.journal.add_event(call_id, now, "recording.repaired", {
                    "path": rel, "number": row["number"] if row else number,
                    "header_s": round(fixed.header_bytes / fixed.channels / RATE, 3),
                    "seconds": round(fixed.seconds, 3)})
            if row is None or row["state"] == "deleted":  # unknown to the index (or brought back by hand)
                row = {"number": number, "call_id": call_id, "kind": kind, "path": rel,
                       "start_ts": self._start_estimate(rel, st.st_mtime, seconds), "state": "recording"}
                number += 1
                out.registered.append(rel)
            elif row["state"] != "recording" and fixed is None and row["bytes"] == st.st_size:
                continue  # as the index has it
            state = row["state"] if row["state"] != "recording" else "done" if linked else "orphaned"
            if state == "orphaned" and row["state"] == "recording":
                out.orphaned.append(rel)
                self.journal.add_event(call_id, now, "recording.orphaned",
                                       {"path": rel, "number": row["number"], "seconds": round(seconds, 3)})
            self.index.put({**row, "seconds": seconds, "bytes": st.st_size, "state": state, "deleted_ts": None,
                            "note": None})
        for rel, row in rows.items():
            if row["state"] != "deleted" and rel not in present and rel not in out.unreadable:
                out.missing.append(rel)
                self._forget(row, now, "missing")
        self.journal.flush()
        out.next_number = number
        return out

    def _start_estimate(self, rel: str, mtime: float, seconds: float) -> float:
        """When a recording the index lacks began: its file's last write less its length, kept within the day
        its folder names (the file's time may come from another clock, e.g. a copy)."""
        start = mtime - seconds
        m = _DAY.fullmatch(rel)
        if m is None:
            return start
        day = dt.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=self.tz)
        lo = day.timestamp()
        hi = (day + dt.timedelta(days=1)).timestamp() - 1.0
        return min(max(start, lo), hi)

    # --- while running (off the tick) -----------------------------------------------------------------

    def sweep(self, now: float, *, retention: bool = True, extra_bytes: int = 0, probe: bool = False) -> Swept:
        """Retention (unless ``retention`` is False), then the free space; with ``probe`` also whether a file can
        be written in recordings/ (a halted recorder resumes only then). ``now``: epoch seconds."""
        out = Swept()
        s = self.settings
        if retention and (s["keep_days"] or s["voicemail_keep_days"] or s["max_mb"]):
            rows = self.index.rows(("done", "orphaned"))
            for row, why in plan_retention(rows, now, s["keep_days"], s["voicemail_keep_days"], s["max_mb"] * MIB,
                                           extra_bytes):
                try:
                    (self.root / row["path"]).unlink(missing_ok=True)
                except OSError as e:
                    log.error("retention cannot delete %s: %s", row["path"], e)
                    continue
                self._prune(row["path"])
                self._forget(row, now, why)
                out.deleted.append((row["number"], row["path"], why))
        try:
            st = os.statvfs(self.root / "recordings")
            out.free_bytes = st.f_bavail * st.f_frsize
        except OSError as e:
            log.error("free space of %s: %s", self.root / "recordings", e)
        if probe:
            out.writable = self._probe()
        return out

    def _forget(self, row: dict, now: float, why: str) -> None:
        self.index.deleted(row["number"], now, why)
        self.journal.add_event(row["call_id"], now, "recording.deleted",
                               {"path": row["path"], "number": row["number"], "reason": why})

    def _prune(self, rel: str) -> None:
        """Remove the day, month and year folders a deletion left empty."""
        folder = (self.root / rel).parent
        top = self.root / rel.split("/", 1)[0]
        while folder != top and top in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _probe(self) -> bool:
        """Whether a small file can be written and removed in recordings/ (after a write error)."""
        path = self.root / "recordings" / ".probe"
        try:
            with open(path, "wb") as f:
                f.write(bytes(4096))
                f.flush()
                os.fsync(f.fileno())
            return True
        except OSError:
            return False
        finally:
            try:
                path.unlink()
            except OSError:
                pass


def _seconds(path: Path, size: int) -> float:
    """Length of a checked (consistent) recording: its data size over its channel count, from its header."""
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
    channels = int.from_bytes(head[22:24], "little") or 1
    if head[50:54] == b"data":  # the recorder's layout
        data = int.from_bytes(head[54:58], "little")
    else:  # another layout: what follows the first 58 bytes, near enough for the index
        data = max(size - HEADER_SIZE, 0)
    return data // channels / RATE
