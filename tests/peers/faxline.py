"""A simulated telephone line between two fax terminal processes that speak the line protocol.

Line protocol: a terminal's stdout and stdin are the line, signed 16-bit
little-endian samples at 8 kHz in blocks of 160 (320 bytes). Each step it
writes one block (flushed), then reads one; EOF on its stdin means the line
dropped. It prints a one-line ``result ...`` on stderr at the end and exits 0
(fax done), 1 (fax failed) or 2 (usage error).

:func:`run_line` steps both terminals in lock step: it reads one block from
each (both write first, so this cannot deadlock), passes each through the line
(optional seeded white Gaussian noise, then G.711 A-law encoding and decoding,
as a digital trunk would carry it) and writes it to the other. A terminal that
has exited sends silence and what would reach it is dropped. The run ends when
both have exited, or at ``max_seconds`` of line time, when both are killed.
"""

from __future__ import annotations

import os
import select
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field

import numpy as np

from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import DBM0_RMS

__all__ = ["BLOCK", "RATE", "LineResult", "command_text", "parse_result", "run_line"]

BLOCK, RATE = 160, 8000
_BYTES = 2 * BLOCK


def parse_result(line: str | None) -> dict[str, str]:
    """Fields of a terminal's ``result ...`` line: ``status`` ('ok' or 'failed') and every key=value
    (quoted values unquoted); empty without a result line."""
    if not line:
        return {}
    words = shlex.split(line)
    out = {"status": words[1] if len(words) > 1 else ""}
    for w in words[2:]:
        key, _, value = w.partition("=")
        out[key] = value
    return out


@dataclass
class LineResult:
    """The outcome of one call on the simulated line.

    Attributes
    ----------
    seconds : float
        Line time until both terminals had exited (or the time limit).
    returncodes : tuple of (int or None)
        Exit status of terminal A and B (negative: killed by that signal).
    results : tuple of (str or None)
        The last ``result ...`` line each terminal wrote on stderr.
    stderr : tuple of str
        Everything each wrote on stderr, for debugging.
    timed_out : bool
        The time limit was reached and both were killed.
    stalled : bool
        A terminal sent nothing for ``stall_seconds`` of wall time (it broke the protocol); both were
        killed and ``timed_out`` is set too.
    audio : ndarray, shape (2, n), int16, or None
        With ``record=True``: what A heard (row 0) and what B heard (row 1).
    """

    seconds: float
    returncodes: tuple
    results: tuple
    stderr: tuple
    timed_out: bool = False
    stalled: bool = False
    audio: np.ndarray | None = field(default=None, repr=False)

    def parsed(self, side: int) -> dict[str, str]:
        """:func:`parse_result` of terminal ``side`` (0 = A, 1 = B)."""
        return parse_result(self.results[side])

    def describe(self) -> str:
        """A summary for assertion messages, with the end of each terminal's stderr."""
        tails = ["\n".join(err.splitlines()[-15:]) for err in self.stderr]
        return (f"{self.seconds:.1f} s, exit {self.returncodes}, timed out {self.timed_out}, "
                f"stalled {self.stalled}\n"
                f"A: {self.results[0]}\nB: {self.results[1]}\n--- A stderr tail\n{tails[0]}\n"
                f"--- B stderr tail\n{tails[1]}")


class _Terminal:
    """One terminal process and its ends of the line."""

    def __init__(self, cmd: list[str], cwd) -> None:
        self.err = tempfile.TemporaryFile()  # a file, not a pipe: verbose logs must never block it
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     cwd=cwd, bufsize=0)
        self.out_fd, self.in_fd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        self.talking = True  # still sending blocks
        self.listening = True  # its stdin still open

    def read_block(self, stall_seconds: float) -> bytes | None:
        """Its next block, or None once it has stopped sending (exited or closed stdout).

        Raises TimeoutError when it sends nothing for ``stall_seconds`` of wall time.
        """
        if not self.talking:
            return None
        buf = b""
        while len(buf) < _BYTES:
            if not select.select([self.out_fd], [], [], stall_seconds)[0]:
                raise TimeoutError(f"{self.proc.args[0]} sent nothing for {stall_seconds} s")
            chunk = os.read(self.out_fd, _BYTES - len(buf))
            if not chunk:
                self.talking = False
                return None
            buf += chunk
        return buf

    def write_block(self, data: bytes) -> None:
        if not self.listening:
            return
        try:
            os.write(self.in_fd, data)  # 320 bytes into an empty pipe: written whole, never blocks
        except (BrokenPipeError, OSError):
            self.listening = False

    def finish(self, kill: bool) -> tuple[int | None, str]:
        if kill and self.proc.poll() is None:
            self.proc.kill()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.err.seek(0)
        text = self.err.read().decode("utf-8", "replace")
        self.err.close()
        return code, text


def _last_result(text: str) -> str | None:
    lines = [ln for ln in text.splitlines() if ln.startswith("result ")]
    return lines[-1] if lines else None


def run_line(cmd_a: list[str], cmd_b: list[str], *, alaw: bool = True, noise_dbm0: float | None = None,
             seed: int = 0, max_seconds: float = 240.0, cwd=None, record: bool = False,
             stall_seconds: float = 60.0) -> LineResult:
    """Connect two terminals through a simulated line and run the call to its end.

    Parameters
    ----------
    cmd_a, cmd_b : list of str
        The two terminals' command lines (A is normally the calling one; the line is symmetric).
    alaw : bool
        Carry each direction as G.711 A-law (encoded and decoded), as a digital trunk does.
    noise_dbm0 : float, optional
        Add white Gaussian noise of this power in each direction (0 dBm0: the RMS of a 0 dBm0 sine,
        ``dsp.levels.DBM0_RMS``), seeded by ``seed``, before the A-law coding.
    seed : int
    max_seconds : float
        Line time limit; at it both terminals are killed and ``timed_out`` is set.
    cwd : path, optional
        Working directory of both processes.
    record : bool
        Keep what each terminal heard in ``LineResult.audio``.
    stall_seconds : float
        Wall time to wait for a block before giving up on a terminal that broke the protocol.

    Returns
    -------
    LineResult
    """
    rng = np.random.default_rng(seed)
    sigma = None if noise_dbm0 is None else DBM0_RMS * 10.0 ** (float(noise_dbm0) / 20.0)
    silence = np.zeros(BLOCK, np.int16)
    heard: list[np.ndarray] = []
    max_steps = int(round(max_seconds * RATE / BLOCK))
    terms = [_Terminal(list(cmd_a), cwd)]
    try:
        terms.append(_Terminal(list(cmd_b), cwd))
    except BaseException:
        terms[0].finish(kill=True)
        raise
    step = 0
    timed_out = stalled = False
    try:
        while any(t.talking for t in terms):
            if step >= max_steps:
                timed_out = True
                break
            try:
                raws = [t.read_block(stall_seconds) for t in terms]
            except TimeoutError:
                timed_out = stalled = True
                break
            if raws[0] is None and raws[1] is None:
                break  # both gone: the line time ends with the last block either sent
            x = np.stack([silence if raw is None else np.frombuffer(raw, "<i2").astype(np.int16) for raw in raws])
            if sigma is not None:
                noisy = x + rng.normal(0.0, sigma, x.shape)
                x = np.clip(np.rint(noisy), -32768, 32767).astype(np.int16)
            if alaw:
                x = alaw_decode(alaw_encode(x))
            if record:
                heard.append(x[::-1].copy())
            # A hears what B sent and B what A sent
            terms[0].write_block(x[1].astype("<i2").tobytes())
            terms[1].write_block(x[0].astype("<i2").tobytes())
            step += 1
    finally:
        done = [t.finish(kill=timed_out or t.talking) for t in terms]
    audio = np.concatenate(heard, axis=1) if record and heard else (np.zeros((2, 0), np.int16) if record else None)
    return LineResult(
        seconds=step * BLOCK / RATE,
        returncodes=(done[0][0], done[1][0]),
        results=(_last_result(done[0][1]), _last_result(done[1][1])),
        stderr=(done[0][1], done[1][1]),
        timed_out=timed_out,
        stalled=stalled,
        audio=audio,
    )


def command_text(cmd: list[str]) -> str:
    """A shell-quoted command line, for messages."""
    return " ".join(shlex.quote(c) for c in cmd)
