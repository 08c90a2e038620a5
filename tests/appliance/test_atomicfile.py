"""Atomic replacement: the old file survives a failed write, the new one lands whole with the mode asked for."""

from __future__ import annotations

import os
import stat

import pytest

from appliance.atomicfile import replace_atomically, write_bytes_atomically


def test_new_content_lands_whole_with_its_mode(tmp_path):
    target = tmp_path / "system.conf"
    target.write_bytes(b"old\n")
    write_bytes_atomically(target, b"new\n", mode=0o644)
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["system.conf"]  # no temp file left


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "greeting.wav"
    target.write_bytes(b"old")

    def half(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"RIFF half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        replace_atomically(target, half, suffix=".wav")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["greeting.wav"]
