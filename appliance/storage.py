"""A TinyDB storage that replaces its file atomically, so a power cut leaves the old or the new config.

TinyDB's own JSONStorage truncates the live file and rewrites it in place: a crash
mid-write loses everything. Here every write goes to a temporary file in the same
folder, is fsynced, renamed over the old file with ``os.replace`` (atomic on POSIX),
and the folder is fsynced so the rename itself survives a power cut. An advisory
``flock`` on a side file serialises writers across processes; ``locked()`` holds it
around a read-modify-write. A writer killed before its rename leaves a temp file
``.tmp-<name>-*``; the next write, or an open while no writer holds the lock, deletes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import stat
import threading
from typing import Any, Iterator

from tinydb import TinyDB
from tinydb.storages import Storage

from .errors import ConfigError


class AtomicJSONStorage(Storage):
    """TinyDB ``Storage`` writing ``path`` by temp file, fsync and rename.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file. Its folder must exist; the file is created empty on first use.
    """

    def __init__(self, path: str | os.PathLike, **_ignored: Any) -> None:
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ConfigError(f"config folder {folder!r} does not exist")
        self._folder = folder
        # Temp names carry the file's name and an exact-length hex tag, so a sweep
        # never touches another file's writes (even one named like "config.json-x").
        self._tmp_prefix = ".tmp-" + os.path.basename(self.path) + "-"
        self._tmp_name = re.compile(re.escape(self._tmp_prefix) + r"[0-9a-f]{16}\.json")
        self._lock_path = self.path + ".lock"
        self._lock_fd: int | None = None
        self._depth = 0
        self._mutex = threading.RLock()
        self._sweep_if_idle()

    def _leftovers(self) -> list[str]:
        return [os.path.join(self._folder, n) for n in os.listdir(self._folder) if self._tmp_name.fullmatch(n)]

    def _sweep(self) -> None:
        """Delete temp files of writes that died before their rename (call with the lock held)."""
        for tmp in self._leftovers():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _sweep_if_idle(self) -> None:
        """On open, sweep leftovers if no writer holds the lock (a live writer's temp file is not stale)."""
        if not self._leftovers():
            return  # the common case: no lock file is created just to look
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return
        try:
            self._sweep()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cross-process write lock (re-entrant within this object)."""
        with self._mutex:
            if self._depth == 0:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._lock_fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    os.close(self._lock_fd)
                    self._lock_fd = None

    def read(self) -> dict | None:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise ConfigError(f"config file {self.path!r} is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {self.path!r} holds {type(data).__name__}, expected an object")
        return data

    def write(self, data: dict) -> None:
        payload = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        folder = os.path.dirname(os.path.abspath(self.path))
        with self.locked():
            self._sweep()
            try:
                mode = stat.S_IMODE(os.stat(self.path).st_mode)
            except FileNotFoundError:
                mode = 0o640
            tmp = os.path.join(folder, self._tmp_prefix + secrets.token_hex(8) + ".json")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    os.fchmod(f.fileno(), mode)  # keep the replaced file's own mode, whatever the umask
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def close(self) -> None:
        pass


def open_db(path: str | os.PathLike) -> TinyDB:
    """Open a TinyDB on ``path`` with the atomic storage (the only way the project opens one)."""
    return TinyDB(path, storage=AtomicJSONStorage)
