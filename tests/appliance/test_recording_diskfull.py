"""A full disk: recording stops with an alarm, the calls go on, nothing else fails; recording resumes when there is
room again. On real small file systems (tmpfs mounts of a few hundred KiB or MiB): these tests need root to mount
them and skip without it, but fail under CI (CI=true), which runs as root.

Two ways the disk fills: (1) something else takes the space between two housekeeping rounds, so a recording's write
fails with ENOSPC; (2) recordings themselves approach the reserve ``recording.min_free_mb`` on the disk the journal
shares, and the recorder stops before the disk is full, leaving the journal its room."""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest

from appliance.recorder import DISK_FULL
from appliance.recstore import MIB
from appliance.wavfile import HEADER_SIZE, read_alaw_wav
from drivers.sim import AgentScript, CallerScript
from dsp.levels import tone_level_dbm0
from tests.appliance.test_recording_policy import EPOCH0, build_core
from tests.tools import require_tool, skip_or_fail


@pytest.fixture
def small_disk():
    """``mount(path, size)`` mounts a tmpfs of ``size`` at ``path``; unmounted after the test."""
    mounted = []

    def mount(path, size: str):
        if os.geteuid() != 0:
            skip_or_fail("mounting a small file system needs root")
        path.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            skip_or_fail(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def free(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave: int) -> None:
    """Write a file that leaves ``leave`` bytes free on ``path``'s file system."""
    with open(path / "filler", "wb") as f:
        f.write(bytes(max(free(path) - leave, 0)))


def others(root) -> int:
    """Bytes of the files outside recordings/ (the journal and its log), in whole 4 KiB pages as tmpfs counts them."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in root.rglob("*")
               if p.is_file() and "recordings" not in p.relative_to(root).parts)


def sox_samples(path) -> int:
    sox = require_tool("sox")
    out = subprocess.run([sox, "--i", str(path)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Duration\s*:\s*[\d:.]+ = (\d+) samples", out)
    return int(m[1]) if m else 0


def alarms(events) -> list[dict]:
    return [e["data"] for e in events if e["event"] == "alarm"]


def test_a_write_that_finds_the_disk_full(tmp_path, small_disk):
    root = tmp_path / "data"
    build_core(root, agent=AgentScript())[0].close()  # the data directory, then recordings/ on its own small disk
    small_disk(root / "recordings", "4m")
    agent = AgentScript(ring_delay_s=1.0, talk_s=20.0, tone_hz=1500.0, tone_dbm0=-13.0)
    core, card, events = build_core(root, agent=agent, recording={"min_free_mb": 0})
    try:
        callers = [card.add_caller(CallerScript(f"1380000000{i}", arrive_at=0.5 + 0.2 * i, digits="1",
                                                digit_delay_s=1.0, tone_hz=1000.0, tone_dbm0=-10.0, record=True))
                   for i in range(3)]
        core.runtime.run_until(6.0)
        assert len(core.recorder.takes) == 3 and alarms(events) == []
        fill(root / "recordings", 40_000)  # another writer takes the space: the budget measured at start is stale
        core.runtime.run_until(12.0)
        # a write failed: every recording stopped at once, the alarm raised, named and published
        [raised] = alarms(events)
        assert raised["name"] == DISK_FULL and raised["raised"] is True
        assert re.fullmatch(r"recordings/2025/11/28/[0-9-]+\.wav: No space left on device", raised["detail"])
        assert core.status()["alarms"]["box"] == {DISK_FULL: raised["detail"]}
        assert core.status()["recordings"] == {"active": [], "stopped": {"alarm": DISK_FULL,
                                                                          "detail": raised["detail"]}}
        assert core.recorder.takes == {}
        late = card.add_caller(CallerScript("13900000009", arrive_at=12.5, digits="1", digit_delay_s=1.0))
        core.runtime.run_until(40.0)
        core.settle()  # the journal: every write committed, no error
        calls = {c["caller"]: c for c in core.journal.calls()}
        assert len(calls) == 4
        for i, c in enumerate(callers):  # the calls went on to their end, audio both ways to the last second
            rec = calls[f"1380000000{i}"]
            assert (rec["disposition"], rec["ended_by"], c.outcome) == ("answered", "agent", "completed")
            assert rec["talk_s"] == pytest.approx(20.0, abs=0.021)
            end = c.heard_audio()[None, -8000:].astype(np.float64)  # the caller heard the agent to the end
            assert tone_level_dbm0(end, 1500.0)[0] == pytest.approx(-13.0, abs=0.3)
            # the recording holds what reached the disk, valid: shorter than the call, named by the call record
            path = root / rec["recording"]
            got, _ = read_alaw_wav(path)
            n = got.shape[1]
            assert path.stat().st_size == HEADER_SIZE + n + (n & 1) and sox_samples(path) == n
            [row] = core.recindex.of_call(rec["call_id"])
            before = EPOCH0 + 6.0 - row["start_ts"]  # seconds recorded when the disk filled up
            assert before - 1.0 <= n / 8000 <= before + 40_000 / 8000  # at most the 40 kB left went to this one
            assert (row["state"], row["bytes"], row["seconds"]) == ("done", path.stat().st_size, n / 8000)
        assert (calls["13900000009"]["disposition"], calls["13900000009"]["recording"]) == ("answered", None)
        assert late.outcome == "completed"

        # room again: the next round resumes recording and clears the alarm; the next call is recorded
        (root / "recordings" / "filler").unlink()
        core.recording_housekeeping()
        assert alarms(events)[1:] == [{"name": DISK_FULL, "raised": False}]
        assert core.status()["alarms"]["box"] == {} and core.status()["recordings"]["stopped"] is None
        card.add_caller(CallerScript("13700000000", arrive_at=40.5, digits="1", digit_delay_s=1.0))
        core.runtime.run_until(65.0)
        core.settle()
        rec = core.journal.calls(since_ts=EPOCH0 + 40.0)[0]
        assert rec["caller"] == "13700000000" and read_alaw_wav(root / rec["recording"])[0].shape[1] == 20 * 8000
    finally:
        core.close()


def test_recording_stops_at_the_reserve_and_the_journal_keeps_its_room(tmp_path, small_disk):
    """The whole data directory on a 3 MiB disk, 1 MiB kept in reserve: the recorder counts what it writes against
    the free space measured off the tick each round and stops before the reserve is touched; the calls and the
    journal (whose write-ahead log grows meanwhile) go on."""
    root = small_disk(tmp_path / "data", "3m")
    agent = AgentScript(ring_delay_s=1.0, talk_s=60.0)
    core, card, events = build_core(root, agent=agent, recording={"min_free_mb": 1})
    try:
        start_free, others_at_start = free(root), others(root)
        assert core.recorder.budget == start_free - MIB
        for i in range(6):  # six calls at once: 48 kB/s, more than the room above the reserve in a minute
            card.add_caller(CallerScript(f"1380000000{i}", arrive_at=0.5 + 0.2 * i, digits="1", digit_delay_s=1.0))
        halted_at = None
        for t in range(5, 75, 5):
            core.runtime.run_until(float(t))
            if halted_at is None and core.recorder.halted is not None:
                halted_at = free(root)
            core.recording_housekeeping(retention=False)  # what the real-time loop does every SPACE_CHECK_S
        [raised] = alarms(events)  # raised once, and not cleared: there is no room above the reserve
        assert raised == {"name": DISK_FULL, "raised": True,
                          "detail": "the disk is down to its reserve of 1 MiB (recording.min_free_mb)"}
        assert MIB - 128 * 1024 < halted_at < MIB + 64 * 1024  # stopped at the reserve, give or take a round
        core.settle()
        calls = core.journal.calls()
        assert sorted((c["disposition"], round(c["talk_s"])) for c in calls) == [("answered", 60)] * 6
        data = 0
        for c in calls:  # valid files, each cut where the room ran out
            got, _ = read_alaw_wav(root / c["recording"])
            assert got.shape[1] < 60 * 8000 and sox_samples(root / c["recording"]) == got.shape[1]
            data += got.shape[1]
        # all the room above the reserve, less what the journal's write-ahead log took meanwhile, the second each
        # file still had in its buffer (dropped: no room for it) and the file system's page of slack per file
        grew = others(root) - others_at_start
        assert start_free - MIB - grew - 6 * (8000 + 4096) <= data <= start_free - MIB
        # the journal still commits on this disk: events, call records, an agent state change
        core.agent_state(1, "busy", "meal")
        core.settle()
        assert core.journal.seat_states()[0]["state"] == "busy"
        assert free(root) > MIB // 2
    finally:
        core.close()
