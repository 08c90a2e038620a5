"""Where the box keeps its state (the data directory's layout) and the lock that allows one core per directory."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
from dataclasses import dataclass
from typing import Mapping

from .errors import ApplianceError, ConfigError

DIR_MODE = 0o750
SUBDIRS = ("recordings", "prompts", "logs")


class InstanceLockedError(ApplianceError):
    """Another process already holds the instance lock of this data directory."""


def default_data_dir(environ: Mapping[str, str] | None = None) -> pathlib.Path:
    """``$APPLIANCE_DATA_DIR``, else ``$XDG_DATA_HOME/appliance``, else ``~/.local/share/appliance``.

    ``environ`` defaults to ``os.environ`` (a parameter so tests need not patch the process).
    """
    env = os.environ if environ is None else environ
    if env.get("APPLIANCE_DATA_DIR"):
        return pathlib.Path(env["APPLIANCE_DATA_DIR"])
    if env.get("XDG_DATA_HOME"):
        return pathlib.Path(env["XDG_DATA_HOME"]) / "appliance"
    return pathlib.Path(env.get("HOME") or pathlib.Path.home()) / ".local" / "share" / "appliance"


def _mkdir(path: pathlib.Path) -> None:
    """Make ``path`` and missing parents with DIR_MODE (chmod: the umask must not widen or narrow it)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            d.mkdir(mode=DIR_MODE)
            os.chmod(d, DIR_MODE)


@dataclass(frozen=True)
class DataDir:
    """The layout of one data directory; ``root`` is an absolute path. Build it with ``DataDir.open``."""

    root: pathlib.Path

    @classmethod
    def open(cls, path: str | os.PathLike, create: bool = False) -> "DataDir":
        """Check (or with ``create`` make) the data directory and its subfolders; raise ConfigError if unusable."""
        root = pathlib.Path(path).expanduser().absolute()
        try:
            if not root.exists() and not root.is_symlink():
                if not create:
                    raise ConfigError(f"data directory {root} does not exist; create it or pass --init")
                _mkdir(root)
            if not root.is_dir():
                raise ConfigError(f"data directory {root} is not a directory; pass a folder")
            if not os.access(root, os.W_OK | os.X_OK):
                raise ConfigError(f"data directory {root} is not writable by this user (uid {os.geteuid()})")
            for sub in SUBDIRS:
                if not (root / sub).is_dir():
                    _mkdir(root / sub)
        except OSError as e:
            raise ConfigError(f"data directory {root}: cannot create {e.filename}: {e.strerror}") from None
        return cls(root)

    @property
    def config(self) -> pathlib.Path:
        """The TinyDB configuration file."""
        return self.root / "config.json"

    @property
    def journal(self) -> pathlib.Path:
        """The SQLite journal: calls, events, CRM data."""
        return self.root / "journal.sqlite"

    @property
    def customers(self) -> pathlib.Path:
        """The customer records (``appliance.caller.CustomerStore``), SQLite."""
        return self.root / "customers.sqlite"

    @property
    def sms_outbox(self) -> pathlib.Path:
        """The SMS outbox (``appliance.sms.outbox``), SQLite."""
        return self.root / "sms-outbox.sqlite"

    @property
    def sms_store(self) -> pathlib.Path:
        """SMS templates, campaigns, opt-outs and messages received (``appliance.sms.store``), SQLite."""
        return self.root / "sms.sqlite"

    @property
    def recordings(self) -> pathlib.Path:
        """Folder of A-law WAV recordings."""
        return self.root / "recordings"

    @property
    def prompts(self) -> pathlib.Path:
        """Cache of synthesised prompts."""
        return self.root / "prompts"

    @property
    def logs(self) -> pathlib.Path:
        """Folder of log files."""
        return self.root / "logs"

    @property
    def socket(self) -> pathlib.Path:
        """The control API's Unix socket."""
        return self.root / "control.sock"

    @property
    def demo_info(self) -> pathlib.Path:
        """What ``appliance demo`` started (URL, user, password)."""
        return self.root / "demo.json"

    @property
    def lock(self) -> pathlib.Path:
        """The core's instance lock."""
        return self.root / "core.lock"

    @property
    def web_lock(self) -> pathlib.Path:
        """The web process's instance lock."""
        return self.root / "web.lock"


class InstanceLock:
    """An exclusive, non-blocking ``flock`` on a lock file that holds the owner's pid.

    The kernel drops the lock when the owning process dies, however it dies. Two
    ``InstanceLock`` objects conflict even within one process (each opens its own
    file description).

    Parameters
    ----------
    path : str, os.PathLike or DataDir
        The lock file (e.g. ``DataDir.lock``); a DataDir or a directory means its ``core.lock``.
    what : str
        Who holds it, for the message ("appliance core", "web process").
    """

    def __init__(self, path: str | os.PathLike | DataDir, what: str = "appliance core") -> None:
        if isinstance(path, DataDir):
            path = path.lock
        p = pathlib.Path(path).absolute()
        self.path = p / "core.lock" if p.is_dir() else p
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> "InstanceLock":
        """Take the lock and write our pid into the file; raise InstanceLockedError if someone else has it."""
        if self._fd is not None:
            return self
        folder = self.path.parent
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as e:
            raise ConfigError(f"cannot open lock file {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise InstanceLockedError(f"another {self.what} (pid {pid}) is already running "
                                      f"on data directory {folder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: deleting it would race with a process opening it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> "InstanceLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
