"""Tests of the data directory layout and of the single-instance lock."""

from __future__ import annotations

import os
import pathlib
import signal
import stat
import subprocess
import sys

import pytest

from appliance.datadir import DataDir, InstanceLock, InstanceLockedError, default_data_dir
from appliance.errors import ApplianceError, ConfigError


def test_default_data_dir_order():
    assert default_data_dir({"APPLIANCE_DATA_DIR": "/srv/a", "XDG_DATA_HOME": "/x", "HOME": "/h"}) == pathlib.Path("/srv/a")
    assert default_data_dir({"XDG_DATA_HOME": "/x", "HOME": "/h"}) == pathlib.Path("/x/appliance")
    assert default_data_dir({"HOME": "/h"}) == pathlib.Path("/h/.local/share/appliance")
    assert default_data_dir({"APPLIANCE_DATA_DIR": "", "XDG_DATA_HOME": "", "HOME": "/h"}) == \
        pathlib.Path("/h/.local/share/appliance")


def test_default_data_dir_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("APPLIANCE_DATA_DIR", "/var/lib/appliance")
    assert default_data_dir() == pathlib.Path("/var/lib/appliance")


def test_layout(tmp_path):
    dd = DataDir.open(tmp_path, create=False)
    r = tmp_path
    assert dd.root == r
    assert (dd.config, dd.journal, dd.recordings, dd.prompts, dd.socket, dd.demo_info, dd.lock, dd.web_lock, dd.logs) == (
        r / "config.json", r / "journal.sqlite", r / "recordings", r / "prompts", r / "control.sock",
        r / "demo.json", r / "core.lock", r / "web.lock", r / "logs")
    assert sorted(p.name for p in r.iterdir()) == ["logs", "prompts", "recordings"]  # made once the root exists
    with pytest.raises(AttributeError):
        dd.root = r / "other"


def test_missing_dir_without_create(tmp_path):
    missing = tmp_path / "x" / "y"
    with pytest.raises(ConfigError) as e:
        DataDir.open(missing, create=False)
    assert str(e.value) == f"data directory {missing} does not exist; create it or pass --init"
    assert not (tmp_path / "x").exists()


def test_create_makes_parents_and_subfolders_0750(tmp_path):
    old = os.umask(0o077)  # the chmod must give 0750 whatever the umask
    try:
        dd = DataDir.open(tmp_path / "a" / "b", create=True)
    finally:
        os.umask(old)
    for d in (tmp_path / "a", dd.root, dd.recordings, dd.prompts, dd.logs):
        assert d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o750, d
    assert DataDir.open(tmp_path / "a" / "b", create=True) == dd  # idempotent


def test_relative_path_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dd = DataDir.open("rel", create=True)
    assert dd.root == tmp_path / "rel" and dd.root.is_absolute()


def test_not_a_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError) as e:
        DataDir.open(f, create=True)
    assert str(e.value) == f"data directory {f} is not a directory; pass a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_not_writable(tmp_path):
    d = tmp_path / "ro"
    d.mkdir(mode=0o500)
    with pytest.raises(ConfigError) as e:
        DataDir.open(d, create=False)
    assert str(e.value) == f"data directory {d} is not writable by this user (uid {os.geteuid()})"


def test_cannot_create_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=rf"^data directory {tmp_path}/f/d: cannot create {tmp_path}/f/d: "):
        DataDir.open(tmp_path / "f" / "d", create=True)


# -- the instance lock ---------------------------------------------------------------------

def test_second_lock_fails_with_the_holders_pid(tmp_path):
    dd = DataDir.open(tmp_path, create=False)
    first = InstanceLock(dd.lock)
    with first:
        assert first.held
        assert dd.lock.read_text() == f"{os.getpid()}\n"
        with pytest.raises(InstanceLockedError) as e:
            InstanceLock(dd.lock).acquire()
        assert str(e.value) == f"another appliance core (pid {os.getpid()}) is already running on data directory {tmp_path}"
        assert isinstance(e.value, ApplianceError)
        with pytest.raises(InstanceLockedError, match=r"^another web process \(pid \d+\)"):
            InstanceLock(dd, what="web process").acquire()  # a DataDir means its core.lock
        with InstanceLock(dd.web_lock, what="web process") as web:  # a different lock file is independent
            assert web.held
    assert not first.held
    again = InstanceLock(tmp_path)  # a directory means its core.lock
    assert again.path == dd.lock
    again.acquire()
    again.release()
    again.release()  # releasing twice is harmless


def test_lock_held_by_a_killed_child_is_free_again(tmp_path):
    lock = tmp_path / "core.lock"
    code = ("import sys, time; from appliance.datadir import InstanceLock; "
            f"InstanceLock({str(lock)!r}).acquire(); print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "held\n"
        with pytest.raises(InstanceLockedError) as e:
            InstanceLock(lock).acquire()
        assert str(e.value) == f"another appliance core (pid {child.pid}) is already running on data directory {tmp_path}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with InstanceLock(lock) as mine:
        assert mine.held and lock.read_text() == f"{os.getpid()}\n"


def test_lock_in_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        InstanceLock(tmp_path / "nope" / "core.lock").acquire()
    assert str(e.value) == f"cannot open lock file {tmp_path}/nope/core.lock: No such file or directory"
