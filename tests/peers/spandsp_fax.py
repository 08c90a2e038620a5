"""spandsp's complete audio fax terminal as a test peer: ``faxpeer.c`` built against libspandsp.

The peer (see ``faxpeer.c``) speaks the line protocol of :mod:`tests.peers.faxline`:
16-bit little-endian samples at 8 kHz in blocks of 160 on stdout and stdin,
one ``result ...`` line on stderr, exit 0 / 1 / 2. It is compiled once per
source (and compiler command) into a cache directory outside the repository;
without a C compiler or the spandsp and libtiff headers the test is skipped,
or failed when ``CI=true``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from tests.tools import require_tool, skip_or_fail

__all__ = ["SOURCE", "build_faxpeer", "faxpeer_command"]

SOURCE = Path(__file__).with_name("faxpeer.c")
_LIBS = ["-lspandsp", "-ltiff", "-lm"]
_FLAGS = ["-O2", "-Wall"]
_built: dict[str, str] = {}


def _cache_dir() -> Path:
    """Where built peers live: per user, under the system temporary directory (never in the repo)."""
    return Path(os.environ.get("FAXPEER_CACHE", Path(tempfile.gettempdir()) / f"faxpeer-{os.getuid()}"))


def build_faxpeer() -> str:
    """Path of the compiled peer, building it if this source has not been built yet.

    Returns
    -------
    str
        The executable, named by the hash of the source and the compiler command.

    Notes
    -----
    Skips the test (fails it when ``CI=true``) without ``cc``, or when the build fails
    because spandsp's or libtiff's headers or libraries are missing (libspandsp-dev).
    """
    cc = require_tool("cc")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join([cc, *_FLAGS, *_LIBS]).encode()).hexdigest()[:16]
    if key in _built:
        return _built[key]
    out = _cache_dir() / key / "faxpeer"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        # build beside the target and rename: parallel test workers never see half a binary
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".faxpeer-")
        os.close(fd)
        try:
            proc = subprocess.run([cc, *_FLAGS, "-o", tmp, str(SOURCE), *_LIBS], capture_output=True, text=True,
                                  timeout=120)
            if proc.returncode != 0:
                skip_or_fail(f"cannot build the spandsp fax peer (.ci/run installs libspandsp-dev):\n{proc.stderr}")
            os.chmod(tmp, 0o755)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    _built[key] = str(out)
    return str(out)


def faxpeer_command(*, send: str | os.PathLike | None = None, receive: str | os.PathLike | None = None,
                    calling: bool | None = None, modems: str | None = None, compression: str | None = None,
                    ident: str | None = None, max_seconds: float | None = None, verbose: bool = False,
                    binary: str | None = None) -> list[str]:
    """Command line of one spandsp fax terminal, for :func:`tests.peers.faxline.run_line`.

    Parameters
    ----------
    send, receive : path
        Exactly one: the TIFF-F file to send, or where to write the received one.
    calling : bool, optional
        Calling (True) or answering (False) side; by default the sender calls.
    modems : str, optional
        Comma-separated ``v27ter``, ``v29``, ``v17`` (spandsp's default here: ``v27ter,v29``).
    compression : {'mh', 'mr', 'both'}, optional
        What to offer; ``mr`` offers MH too (T.30 has no 2-D without 1-D). Default ``both``.
    ident : str, optional
        Our identity (TSI or CSI), at most 20 characters.
    max_seconds : float, optional
        The peer gives up (``result failed cause="timeout"``) after this much line time; 300 by default.
        Keep it under the line's own limit to get a result line rather than a kill.
    verbose : bool
        spandsp's T.30 and modem log on stderr.
    binary : str, optional
        The built peer; :func:`build_faxpeer` by default.

    Returns
    -------
    list of str
    """
    if (send is None) == (receive is None):
        raise ValueError("give exactly one of send and receive")
    cmd = [binary or build_faxpeer()]
    cmd += ["--send", os.fspath(send)] if send is not None else ["--receive", os.fspath(receive)]
    if calling is not None:
        cmd.append("--calling" if calling else "--answering")
    if modems is not None:
        cmd += ["--modems", modems]
    if compression is not None:
        cmd += ["--compression", compression]
    if ident is not None:
        cmd += ["--ident", ident]
    if max_seconds is not None:
        cmd += ["--max-seconds", f"{float(max_seconds):g}"]
    if verbose:
        cmd.append("--verbose")
    return cmd
