"""Recordings survive a crash: the core killed (SIGKILL) during recorded calls and voicemail, then started again on the
same data directory; every recording is then a valid A-law WAV (our strict reader, and sox as a peer) holding exactly
the audio that reached the disk, listed in the index with its number, ``done`` with its call record or ``orphaned``.

Python's own ``wave`` module is no judge here: it reads PCM only ("unknown format: 6" for any A-law file)."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.errors import ProtocolError
from appliance.wavfile import HEADER_SIZE, AlawWavWriter, Repaired, read_alaw_wav, repair_alaw_wav
from dsp.g711 import alaw_decode
from dsp.levels import tone_level_dbm0
from tests.appliance.test_recording_policy import EPOCH0, build_core
from tests.tools import require_tool

REPO = Path(__file__).resolve().parents[2]


def codes(channels: int, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(channels, n), dtype=np.uint8)


def sizes(raw: bytes) -> tuple[int, int, int]:
    """(RIFF size, fact samples, data size) of the recorder's 58-byte header."""
    return tuple(struct.unpack_from("<I", raw, at)[0] for at in (4, 46, 54))


def sox_info(path: Path) -> tuple[int, int]:
    """(channels, samples) as ``sox --i`` reads them; and sox must decode the same A-law codes we read."""
    sox = require_tool("sox")
    out = subprocess.run([sox, "--i", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Sample Encoding\s*:\s*8-bit A-law", out), out
    ch = int(re.search(r"Channels\s*:\s*(\d+)", out)[1])
    m = re.search(r"Duration\s*:\s*[\d:.]+ = (\d+) samples", out)
    n = int(m[1]) if m else 0  # an empty file: sox prints no duration line (and decodes nothing, checked below)
    raw = subprocess.run([sox, str(path), "-t", "raw", "-e", "a-law", "-b", "8", "-"], capture_output=True,
                         check=True).stdout
    assert raw == read_alaw_wav(path)[0].T.tobytes()
    return ch, n


# --- the repair ----------------------------------------------------------------------------------------


def test_stale_sizes_repaired_to_the_audio_there(tmp_path):
    p = tmp_path / "a.wav"
    x = codes(2, 20000)
    with AlawWavWriter(p, 2) as w:
        w.write(x[:, :8000])
    # the process wrote 12000 more frames and a half frame, then died before patching the header
    with open(p, "ab") as f:
        f.write(x[:, 8000:].T.tobytes() + b"\x7f")
    assert sizes(p.read_bytes()) == (50 + 16000, 8000, 16000)
    assert repair_alaw_wav(p, channels=1) == Repaired(header_bytes=16000, data_bytes=40000, channels=2)
    raw = p.read_bytes()
    assert len(raw) == HEADER_SIZE + 40000 and sizes(raw) == (50 + 40000, 20000, 40000)
    got, _ = read_alaw_wav(p)
    np.testing.assert_array_equal(got, x)
    assert sox_info(p) == (2, 20000)
    assert repair_alaw_wav(p) is None  # now consistent: left alone


def test_odd_mono_gets_its_pad_byte(tmp_path):
    p = tmp_path / "m.wav"
    AlawWavWriter(p, 1).abort()  # the header alone
    x = codes(1, 1001)
    with open(p, "ab") as f:
        f.write(x.tobytes())
    assert repair_alaw_wav(p) == Repaired(0, 1001, 1)
    raw = p.read_bytes()
    assert len(raw) == HEADER_SIZE + 1002 and raw[-1:] == b"\x00" and sizes(raw) == (50 + 1002, 1001, 1001)
    np.testing.assert_array_equal(read_alaw_wav(p)[0], x)
    assert sox_info(p) == (1, 1001)


@pytest.mark.parametrize("blob", [b"", b"RIFF\x32\x00"])
def test_a_file_killed_while_opening_becomes_an_empty_wav(tmp_path, blob):
    p = tmp_path / "e.wav"
    p.write_bytes(blob)
    assert repair_alaw_wav(p, channels=2) == Repaired(0, 0, 2)
    assert read_alaw_wav(p)[0].shape == (2, 0)
    assert sox_info(p) == (2, 0)


def test_a_consistent_file_is_not_touched(tmp_path):
    p = tmp_path / "ok.wav"
    with AlawWavWriter(p, 1) as w:
        w.write(codes(1, 801))
    before = p.read_bytes()
    os.utime(p, (1_000_000_000, 1_000_000_000))
    assert repair_alaw_wav(p) is None
    assert p.read_bytes() == before and p.stat().st_mtime == 1_000_000_000


def test_a_file_that_is_not_ours_is_refused_by_name(tmp_path):
    p = tmp_path / "x.wav"
    p.write_bytes(b"OggS" + bytes(100))
    with pytest.raises(ProtocolError) as err:
        repair_alaw_wav(p)
    assert str(err.value) == f"{p}: not a RIFF/WAVE file; cannot repair it"


def test_killed_between_writing_audio_and_patching_the_header(tmp_path):
    """A real process killed by SIGKILL at the one moment the header lags the audio: after a write, before the
    patch. The repair gives back every frame written."""
    p = tmp_path / "k.wav"
    script = (
        "import os, signal, numpy as np\n"
        "from appliance.wavfile import AlawWavWriter\n"
        f"w = AlawWavWriter({str(p)!r}, 2)\n"
        "x = np.random.default_rng(9).integers(0, 256, size=(2, 8000 * 3 + 480), dtype=np.uint8)\n"
        "w.write(x[:, :16000])\n"  # two seconds: flushed and patched
        "w._patch = lambda: os.kill(os.getpid(), signal.SIGKILL)\n"  # the crash comes before the next patch
        "w.write(x[:, 16000:])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO)
    assert proc.returncode == -signal.SIGKILL
    raw = p.read_bytes()
    assert len(raw) == HEADER_SIZE + 2 * (8000 * 3 + 480) and sizes(raw) == (50 + 32000, 16000, 32000)
    assert repair_alaw_wav(p) == Repaired(32000, 2 * 24480, 2)
    x = np.random.default_rng(9).integers(0, 256, size=(2, 8000 * 3 + 480), dtype=np.uint8)
    np.testing.assert_array_equal(read_alaw_wav(p)[0], x)
    assert sox_info(p) == (2, 24480)


# --- the core killed during recorded calls ---------------------------------------------------------------

CHILD = """
import sys, time
from drivers.sim import AgentScript, CallerScript
from tests.appliance.test_recording_policy import build_core

root, mode = sys.argv[1], sys.argv[2]
agent = AgentScript(ring_delay_s=1.0, talk_s=1000.0, tone_hz=1500.0, tone_dbm0=-13.0)
core, card, _ = build_core(root, agent=agent, recording={"mode": mode, "min_free_mb": 0})
def caller(number, at, key, **kw):
    return CallerScript(number, arrive_at=at, digits=key, digit_delay_s=1.0, tone_hz=1000.0, tone_dbm0=-10.0, **kw)
card.add_caller(caller("13800000001", 0.5, "1", talk_s=4.0))  # talks 4 s: over long before the crash
for i in range(3):  # long calls, talking when the core is killed
    card.add_caller(caller(f"1390000000{i}", 1.0 + i, "1"))
card.add_caller(caller("13700000000", 2.0, "3", presses=((6.0, "5"),)))  # leaving a message
card.add_caller(caller("13600000000", 17.5, "1"))  # answered less than a second before the crash
t = 0.0
while True:
    t = round(t + 0.26, 2)
    core.runtime.run_until(t)
    print(f"{t:.2f}", flush=True)
    time.sleep(0.01)
"""
KILL_AT = 20.0  # virtual seconds: the child is killed once it has reported this far


@pytest.mark.parametrize("mode, channels", [("mono", 1), ("stereo", 2)])
def test_core_killed_during_recorded_calls(tmp_path, mode, channels):
    root = tmp_path / "data"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), mode], cwd=REPO, stdout=subprocess.PIPE,
                             text=True)
    last = 0.0
    try:
        for line in child.stdout:
            last = float(line)
            if last >= KILL_AT:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL and last >= KILL_AT
    on_disk = {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*.wav")}
    assert len(on_disk) == 6

    core, _, _ = build_core(root, epoch=EPOCH0 + 3600, recording={"mode": mode, "min_free_mb": 0})  # the restart
    try:
        core.settle()
        checked = core.recordings_checked
        calls = {c["call_id"]: c for c in core.journal.calls()}
        rows = {r["path"]: r for r in core.recindex.rows()}
        assert checked.files == 6 and checked.registered == [] and checked.missing == [] and checked.unreadable == []
        assert sorted(r["number"] for r in rows.values()) == [1, 2, 3, 4, 5, 6]
        assert core.recorder.next_number == 7  # numbering goes on where it stopped

        # the call that ended before the crash: its record names the file, which is whole
        [done] = [c for c in calls.values() if c["caller"] == "13800000001"]
        assert len(calls) == 1 and rows[done["recording"]]["state"] == "done"
        assert read_alaw_wav(root / done["recording"])[0].shape[1] / 8000 == pytest.approx(done["talk_s"], abs=0.021)

        # the five cut off by the crash: no call record, so orphaned, each with its event
        cut = sorted(set(on_disk) - {done["recording"]})
        assert sorted(checked.orphaned) == cut
        assert {rows[p]["kind"] for p in cut} == {"call", "voicemail"}
        for rel in cut:
            row = rows[rel]
            assert (row["state"], row["call_id"]) == ("orphaned", Path(rel).stem)
            assert [e["data"] for e in core.journal.events(row["call_id"]) if e["type"] == "recording.orphaned"] == [
                {"path": rel, "number": row["number"], "seconds": row["seconds"]}]

        for rel, size in on_disk.items():
            path = root / rel
            got, rate = read_alaw_wav(path)
            n = got.shape[1]
            # exactly the audio that had reached the disk: whole seconds, flushed every second
            assert n == (size - HEADER_SIZE) // channels and n % 8000 == 0
            assert path.stat().st_size == size  # flushed with its sizes patched: nothing to cut or pad
            assert sox_info(path) == (channels, n)
            row = rows[rel]
            assert (row["bytes"], row["seconds"]) == (size, n / 8000)
            if rel == done["recording"]:
                continue
            # as long as the call had lasted, less what was still in the writer's one-second buffer
            talked = EPOCH0 + last - row["start_ts"]
            assert talked - 1.0 - 0.02 <= n / 8000 <= talked + 0.26
            if row["kind"] == "call" and n >= 16000:  # both parties in it, at their levels
                pcm = alaw_decode(got)[:, 4000:-4000].astype(np.float64)
                if channels == 1:
                    assert tone_level_dbm0(pcm, 1000.0)[0] == pytest.approx(-10.0, abs=0.3)
                    assert tone_level_dbm0(pcm, 1500.0)[0] == pytest.approx(-13.0, abs=0.3)
                else:  # caller left, agent right
                    assert tone_level_dbm0(pcm, 1000.0)[0] == pytest.approx(-10.0, abs=0.3)
                    assert tone_level_dbm0(pcm, 1500.0)[1] == pytest.approx(-13.0, abs=0.3)
                    assert tone_level_dbm0(pcm, 1500.0)[0] < -40 and tone_level_dbm0(pcm, 1000.0)[1] < -40
        # the call answered less than a second before the crash has a recording of nothing, valid all the same
        assert sorted(rows[p]["seconds"] for p in cut)[0] == 0.0
    finally:
        core.close()

    # a second start finds nothing more to do
    core, _, _ = build_core(root, epoch=EPOCH0 + 7200, recording={"mode": mode, "min_free_mb": 0})
    try:
        c = core.recordings_checked
        assert (c.files, c.repaired, c.orphaned, c.registered, c.missing, c.next_number) == (6, [], [], [], [], 7)
    finally:
        core.close()
