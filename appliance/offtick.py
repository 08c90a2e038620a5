"""Work the 20 ms tick must not wait for (HTTP lookups, speech rendering): a few threads, results collected by the tick.

``OffTick.submit(job)`` runs ``job()`` on a small thread pool and returns at once;
``results()`` takes the values of the jobs that have finished, in the order they
were submitted (threads finish in any order; the logic should not see that).
With ``threads=0`` the job runs inside ``submit`` itself and its value waits for
the next ``results()``: the same answers at the same virtual times however fast
the host is. ``wait`` is for the virtual-time loop only (it lets threaded work
finish before time moves on); the real-time tick never calls it.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

log = logging.getLogger(__name__)


class OffTick:
    """Runs jobs off the tick and keeps their values until the tick collects them.

    Parameters
    ----------
    name : str
        Prefix of the threads' names (seen in ``ps -T`` and in logs).
    threads : int
        Pool size; 0 runs each job at ``submit`` (deterministic, for virtual time).
    """

    def __init__(self, name: str, threads: int) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads {threads!r} must be an integer >= 0 (0: run each job at submit)")
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name) if threads else None
        self._done: queue.SimpleQueue = queue.SimpleQueue()  # (submission number, value)
        self._seq = itertools.count()
        self._busy = 0  # submitted to the pool and not finished
        self._closed = False
        self._idle = threading.Condition()

    def submit(self, job: Callable[[], object]) -> None:
        """Run ``job`` (which should not raise: its value is all the tick gets) off the tick."""
        seq = next(self._seq)
        if self._pool is None:
            self._done.put((seq, job()))
            return
        with self._idle:
            self._busy += 1
        try:
            self._pool.submit(self._run, seq, job)
        except RuntimeError:  # closed: the job will never run
            self._finished()
            raise

    def _run(self, seq: int, job: Callable[[], object]) -> None:
        try:
            self._done.put((seq, job()))
        except Exception:  # a job's own bug: logged, its value lost
            log.exception("off-tick job %r failed", job)
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._idle:
            self._busy -= 1
            if self._busy == 0:
                self._idle.notify_all()

    def results(self) -> list:
        """The values of the jobs finished since the last call, in submission order; never blocks."""
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                break
        out.sort(key=lambda done: done[0])
        return [value for _, value in out]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted job has finished (or ``timeout`` seconds): True if they have (or ``close``
        dropped them)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0 or self._closed, timeout)

    def close(self) -> None:
        """Drop the jobs not yet started; running ones finish on their own."""
        with self._idle:
            self._closed = True
            self._idle.notify_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
