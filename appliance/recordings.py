"""Recording as a part of ``Core``: start-up check, the recorder's alarms, housekeeping, playback, ``recording.lookup``.

At construction (before the first tick) ``open_recordings`` repairs and indexes the
files (``appliance.recstore``) and builds the recorder, numbering on from the index,
and the playback worker. Housekeeping then runs once at the end of construction and,
in real time, every ``SPACE_CHECK_S`` on a task of the core's loop whose disk work
goes to a thread (``run_in_executor``) and whose result is applied on the loop,
between ticks: retention every ``RETENTION_S`` (every round while recording is
stopped), and the free space, which becomes the recorder's budget:
free space less ``recording.min_free_mb`` less what was written meanwhile. A plain
asyncio task rather than APScheduler: two fixed intervals, and the result has to be
applied on the loop anyway; virtual-time runs call ``recording_housekeeping`` directly.

When recording stops (a failed write, or the budget spent) the recorder calls
``_recording_alarm``: the box alarm ``recording.disk_full`` (or
``recording.write_failed``) is raised and published as an ``alarm`` event; the calls go
on. A later round that finds ``RESUME_MARGIN`` above the reserve and a test file
writable resumes recording and clears the alarm.
"""

from __future__ import annotations

import asyncio
import logging

from .control import CommandError, Int, Str
from .recindex import RecordingIndex
from .recorder import Recorder
from .recplay import PlaybackWorker
from .recpolicy import RecordingPolicy
from .recstore import MIB, RecordingStore, Swept

log = logging.getLogger(__name__)

SPACE_CHECK_S = 5.0
RETENTION_S = 600.0
RESUME_MARGIN = MIB  # recording resumes only with this much above the reserve


class Recordings:
    def open_recordings(self, media: bool) -> None:
        """Check the recording folders and build the recorder (``self.recorder``, None without media) and the
        playback worker (``self.playback``). Needs ``self.journal``; call before the runtime is built."""
        rec = self.cfg["recording"]
        self.recindex = RecordingIndex(self.journal)
        self.recstore = RecordingStore(self.data.root, self.recindex, self.journal, rec, self.tz)
        self.recordings_checked = self.recstore.check(self.clock.wall())
        c = self.recordings_checked
        if c.repaired or c.orphaned or c.missing or c.unreadable:
            log.warning("recordings checked: %d files, %d repaired, %d orphaned, %d missing, %d unreadable",
                        c.files, len(c.repaired), len(c.orphaned), len(c.missing), len(c.unreadable))
        self.recorder = Recorder(self.data.root, rec["mode"], slots=len(self.cfg["seats"]), tz=self.tz,
                                 index=self.recindex, first_number=c.next_number,
                                 on_alarm=self._recording_alarm) if media else None
        self.playback = PlaybackWorker(self.data.root, self.recindex, threads=0 if self.clock.virtual else 1)
        self._housekeeper: asyncio.Task | None = None

    def start_recordings(self) -> None:
        """At the end of construction: the control command, and the first housekeeping round (retention too)."""
        self.server.register("recording.lookup", self.recording_lookup,
                             {"number": Int(1, None, required=False), "call_id": Str(64, required=False)})
        self.recording_housekeeping(retention=True)

    def recording_policy(self, recording: dict) -> RecordingPolicy | bool:
        """What the call logic's ``record`` is for a ``recording`` section (False: no media, nothing recorded)."""
        return RecordingPolicy.from_config(recording) if self.recorder is not None else False

    def apply_recording(self, recording: dict) -> None:
        """A reloaded ``recording`` section: policy for calls answered from now on, mode for recordings started
        from now on, retention and reserve at the next round."""
        self.logic.record = self.recording_policy(recording)
        self.recstore.settings = recording
        if self.recorder is not None:
            self.recorder.mode = recording["mode"]

    def recording_status(self) -> dict:
        """The ``status`` command's ``recordings``: those being written (with their numbers) and why recording is
        stopped, if it is."""
        rec = self.recorder
        if rec is None:
            return {"active": [], "stopped": None}
        return {"active": rec.active(), "stopped": None if rec.halted is None else
                {"alarm": rec.halted[0], "detail": rec.halted[1]}}

    async def recording_lookup(self, number: int | None = None, call_id: str | None = None) -> dict:
        """``recording.lookup``: the index rows of a recording number or of a call."""
        if (number is None) == (call_id is None):
            raise CommandError("bad_argument", "give number or call_id (one of them)")
        loop = asyncio.get_running_loop()
        if number is not None:
            row = await loop.run_in_executor(None, self.recindex.get, number)
            if row is None:
                raise CommandError("not_found", f"recording {number} does not exist")
            return {"recordings": [row]}
        return {"recordings": await loop.run_in_executor(None, self.recindex.of_call, call_id)}

    # --- housekeeping --------------------------------------------------------------------------------

    def recording_housekeeping(self, retention: bool = True) -> Swept:
        """One round now, waiting for the disk (construction, virtual time, tests)."""
        written, work = self._round(retention)
        return self._apply_round(written, work())

    def _round(self, retention: bool):
        """On the loop: what the round needs from the recorder, and the disk work to run off it."""
        rec = self.recorder
        written = rec.written if rec is not None else 0
        extra = rec.active_bytes() if rec is not None else 0
        probe = rec is not None and rec.halted is not None
        now = self.clock.wall()
        return written, lambda: self.recstore.sweep(now, retention=retention, extra_bytes=extra, probe=probe)

    def _apply_round(self, written: int, swept: Swept) -> Swept:
        """On the loop: the free space measured becomes the recorder's budget; a stopped recorder resumes when
        there is room again."""
        rec = self.recorder
        if rec is None or swept.free_bytes is None:
            return swept
        reserve_mb = self.cfg["recording"]["min_free_mb"]
        budget = swept.free_bytes - reserve_mb * MIB - (rec.written - written)
        note = f"the disk is down to its reserve of {reserve_mb} MiB (recording.min_free_mb)"
        if rec.halted is None:
            rec.set_budget(budget, note)
        elif budget >= RESUME_MARGIN and swept.writable:
            rec.set_budget(budget, note)
            rec.resume()
        return swept

    def start_housekeeping(self) -> None:
        """In real time (``Core.start``): a round every ``SPACE_CHECK_S`` on the running loop."""
        if self._housekeeper is None:
            self._housekeeper = asyncio.get_running_loop().create_task(self._housekeeping_loop())

    async def _housekeeping_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = self.clock.now()
        while True:
            await asyncio.sleep(SPACE_CHECK_S)
            stopped = self.recorder is not None and self.recorder.halted is not None
            retention = stopped or self.clock.now() - last >= RETENTION_S
            written, work = self._round(retention)
            try:
                swept = await loop.run_in_executor(None, work)
            except Exception:  # noqa: BLE001 - housekeeping must outlive a bad round
                log.exception("recording housekeeping failed")
                continue
            if retention:
                last = self.clock.now()
            if swept.deleted:
                log.info("retention deleted %d recordings", len(swept.deleted))
            self._apply_round(written, swept)

    def close_recordings(self) -> None:
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            self._housekeeper = None
        self.playback.close()

    def _recording_alarm(self, name: str, raised: bool, detail: str) -> None:
        """The recorder stopped (``raised``) or resumed: the box alarm and the ``alarm`` event, as for a card."""
        if raised:
            self.box_alarms[name] = detail
            self.bus.publish("alarm", {"name": name, "raised": True, "detail": detail})
        elif self.box_alarms.pop(name, None) is not None:
            self.bus.publish("alarm", {"name": name, "raised": False})
