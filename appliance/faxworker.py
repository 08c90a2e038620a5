"""Where a fax channel's T.30 session runs: inline on the tick (virtual time), or in a thread or a process of its
own fed through a short pipeline (real time), so that its DSP never delays the tick or the other channels.

A ``dsp.fax.t30.FaxSession`` costs several milliseconds of Python per 20 ms block. Every
runner has one method the tick calls, ``exchange(rx) -> tx``: the block heard on the line
goes in, the block to put on the line comes out. Inline, ``exchange`` is simply
``transmit()`` then ``receive(rx)``. A worker (thread or process) keeps the same order
ahead of the tick: it has already computed the block the tick takes now (after hearing
the previous one), and works out the next while the tick goes on; the session sees
exactly the inline sequence of calls, only the line hears it a little later. Until the
worker has its first block the tick sends silence and feeds nothing in; then it sends
``SPARE`` more blocks of silence while feeding the line in, so it always holds that many
of the worker's blocks in hand and a worker up to ``SPARE`` ticks late costs nothing. A
block still not ready when its tick comes is silence on the line (``underruns`` counts
them), and the worker's output then plays one tick later rather than being dropped, so
a modem burst is delayed whole rather than cut. A thread shares the GIL with the tick
(``benchmarks/test_fax_tick.py`` measures what that costs); a process does not.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import queue
import threading

import numpy as np

from dsp.fax.t30 import FaxResult, FaxSession

from .errors import ApplianceError

log = logging.getLogger(__name__)

MODES = ("inline", "thread", "process")
SILENCE = np.zeros(160, np.int16)
MAX_BACKLOG = 5  # outputs kept when the tick falls behind the worker; more is a worker gone wrong: dropped
SPARE = 1  # blocks the tick keeps in hand: a worker late by up to this many ticks costs the line nothing


def stopped_result(cause: str, progress: tuple[int, int | None]) -> FaxResult:
    """The result of a session ended from outside before it finished (the line was cleared): failed, with
    ``cause``; a sender's pages confirmed so far are ``page - 1`` of its progress."""
    page, of = progress
    return FaxResult(False, cause, max(page - 1, 0) if of is not None else 0, None, None, None)


class InlineFax:
    """The session on the tick itself: deterministic, for virtual time (the simulated card, tests)."""

    underruns = 0

    def __init__(self, **session) -> None:
        self.session = FaxSession(**session)
        self._failed: FaxResult | None = None

    def exchange(self, rx: np.ndarray) -> np.ndarray:
        """Block ``rx`` heard on the line (shape (160,), int16) in; the block to send now out."""
        if self._failed is not None:
            return SILENCE
        s = self.session
        try:
            tx = s.transmit()
            s.receive(rx)
        except Exception as e:  # noqa: BLE001 - a DSP bug fails this fax, never the tick
            log.exception("fax session failed")
            self._failed = stopped_result(f"the fax session failed: {type(e).__name__}: {e}", s.progress)
            return SILENCE
        return tx

    @property
    def progress(self) -> tuple[int, int | None]:
        return self.session.progress

    @property
    def result(self) -> FaxResult | None:
        return self._failed or self.session.result

    def close(self) -> None:
        pass


def _serve(session: FaxSession, get, put) -> None:
    """A worker's loop: send the first block, then for each block heard (None: stop) the next block to send,
    with the session's progress and its result once done."""
    try:
        put((session.transmit(), session.progress, session.result))
        while True:
            rx = get()
            if rx is None:
                return
            session.receive(rx)
            tx = session.transmit()
            put((tx, session.progress, session.result))
            if session.result is not None:
                return
    except (EOFError, BrokenPipeError):
        return  # the tick's side has gone
    except Exception as e:  # noqa: BLE001 - a DSP bug fails this fax: the tick hears why
        log.exception("fax session failed")
        put(("error", f"{type(e).__name__}: {e}"))


def _process_main(conn, session: dict) -> None:
    try:
        s = FaxSession(**session)
    except Exception as e:  # noqa: BLE001 - told to the parent, which fails the fax with it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    try:
        _serve(s, conn.recv, conn.send)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        conn.close()


class _Piped:
    """What the thread and process runners share: the tick's side of the one-block pipeline."""

    def _init_pipe(self) -> None:
        self._backlog: collections.deque = collections.deque()
        self._ready = False
        self._progress: tuple[int, int | None] = (0, None)
        self._result: FaxResult | None = None
        self.underruns = 0
        self._fed = self._got = 0  # blocks handed to the worker, outputs taken from it
        self._stash: list = []  # outputs ``sync`` waited for, not yet used
        self._lead = SPARE

    def exchange(self, rx: np.ndarray) -> np.ndarray:
        """Block ``rx`` heard now in, the block the worker prepared out (silence if it has none yet)."""
        items, self._stash = self._stash + self._take(), []
        self._got += len(items)
        for item in items:
            if self._result is not None:
                break
            if isinstance(item[0], str):  # ("error", message)
                self._result = stopped_result(f"the fax worker failed: {item[1]}", self._progress)
                break
            tx, self._progress, self._result = item
            self._ready = True
            self._backlog.append(tx)
            if len(self._backlog) > MAX_BACKLOG:
                self._backlog.popleft()
        if not self._ready:
            return SILENCE  # the worker is starting: nothing fed in yet, so no backlog builds up
        if self._result is None:
            self._give(np.array(rx, np.int16, copy=True))
            self._fed += 1
        if self._lead > 0:  # the line starts this many blocks late: the blocks in hand from then on
            self._lead -= 1
            return SILENCE
        if self._backlog:
            return self._backlog.popleft()
        self.underruns += self._result is None
        return SILENCE

    def sync(self, timeout: float = 10.0) -> bool:
        """Tests and benchmarks only: wait until the worker has answered every block handed in (the tick never
        waits). True if it has."""
        want = self._fed + 1 - self._got - len(self._stash)
        while want > 0:
            item = self._take_one(timeout)
            if item is None:
                return False
            self._stash.append(item)
            want -= 1
            if isinstance(item[0], str) or item[2] is not None:  # the worker has stopped
                return True
        return True

    @property
    def progress(self) -> tuple[int, int | None]:
        return self._progress

    @property
    def result(self) -> FaxResult | None:
        """The session's result once it has ended and its last blocks have gone on the line."""
        return None if self._backlog else self._result


class ThreadFax(_Piped):
    """The session in a thread of its own (shares the GIL with the tick)."""

    def __init__(self, **session) -> None:
        self._init_pipe()
        s = FaxSession(**session)  # bad arguments fail here, on the caller's side
        self._in: queue.SimpleQueue = queue.SimpleQueue()
        self._out: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=_serve, args=(s, self._in.get, self._out.put), name="fax",
                                         daemon=True)
        self._thread.start()

    def _take(self) -> list:
        out = []
        while True:
            try:
                out.append(self._out.get_nowait())
            except queue.Empty:
                return out

    def _take_one(self, timeout: float):
        try:
            return self._out.get(timeout=timeout)
        except queue.Empty:
            return None

    def _give(self, rx: np.ndarray) -> None:
        self._in.put(rx)

    def close(self) -> None:
        self._in.put(None)


class ProcessFax(_Piped):
    """The session in a process of its own (its own interpreter and GIL), over a pipe."""

    _ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads (journal, API)

    def __init__(self, **session) -> None:
        self._init_pipe()
        FaxSession(**session)  # bad arguments fail here, on the caller's side
        self._conn, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_process_main, args=(child, session), name="fax", daemon=True)
        # starting a process takes a few hundred ms (a new interpreter): never on the tick
        self._starter = threading.Thread(target=self._start, args=(child,), name="fax-start", daemon=True)
        self._starter.start()

    def _start(self, child) -> None:
        try:
            self._proc.start()
        except Exception as e:  # noqa: BLE001 - told to the tick through the pipe, as a worker's failure
            log.error("fax process cannot start: %s", e)
            try:
                child.send(("error", f"cannot start the fax process: {e}"))
            except OSError:
                pass
        finally:
            child.close()

    def _take(self) -> list:
        out = []
        try:
            while self._conn.poll():
                out.append(self._conn.recv())
        except (EOFError, OSError):
            if self._result is None:
                out.append(("error", "the fax process ended"))
        return out

    def _take_one(self, timeout: float):
        try:
            return self._conn.recv() if self._conn.poll(timeout) else None
        except (EOFError, OSError):
            return ("error", "the fax process ended")

    def _give(self, rx: np.ndarray) -> None:
        try:
            self._conn.send(rx)
        except (BrokenPipeError, OSError):
            pass  # the process ended: ``_take`` says so at the next block

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._conn.close()
        # waiting for the process to end (an interpreter's teardown) is not the tick's business either
        threading.Thread(target=self._reap, name="fax-reap", daemon=True).start()

    def _reap(self) -> None:
        self._starter.join(10.0)
        if self._proc.pid is None:
            return
        self._proc.join(2.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(1.0)


def open_fax(mode: str, **session):
    """A runner for one fax channel: ``mode`` inline, thread or process; ``session`` as ``FaxSession``'s."""
    kinds = {"inline": InlineFax, "thread": ThreadFax, "process": ProcessFax}
    if mode not in kinds:
        raise ApplianceError(f"fax mode {mode!r} is not one of {', '.join(MODES)}")
    return kinds[mode](**session)
