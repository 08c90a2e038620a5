"""Replacing a file atomically: the reader sees the old file or the new one, never half of either.

A leaf module, like ``appliance.errors``: every package may import it (dsp's WAV
writer, the DAHDI config writer, the recorder's whole-file writes). The temp file
sits in the same folder (a rename is atomic only within one file system), is
fsynced before the rename, and the folder is fsynced after it so the rename
itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable

__all__ = ["replace_atomically", "write_bytes_atomically"]


def replace_atomically(path: str | os.PathLike, write: Callable[[str], None], *, mode: int | None = None,
                       suffix: str = "") -> None:
    """Have ``write(tmp_path)`` write the new content to a temp file beside ``path``, then put it in place.

    ``mode`` sets the file's permissions (mkstemp makes 0600). On any failure the temp
    file is removed and ``path`` is left as it was; the exception propagates.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_bytes_atomically(path: str | os.PathLike, data: bytes, *, mode: int | None = None, suffix: str = "") -> None:
    """``data`` becomes the whole content of ``path``, atomically (see ``replace_atomically``)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    replace_atomically(path, write, mode=mode, suffix=suffix)
