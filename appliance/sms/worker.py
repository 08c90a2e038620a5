"""The SMS worker thread: runs the pump, the campaigns and the control API's SMS commands, off the tick and the loop.

Everything SMS touches is slow next to a 20 ms tick: serial ports, sockets,
HTTP and an SQLite file written with ``synchronous=FULL``. So one thread owns
the outbox, the store and the transports, and nothing else touches them:
commands from the control API come as jobs (``call``) run between two passes,
in order, so no lock is needed around the pump's state. A pass
(``SmsService.step`` plus the ``extra`` steps: campaigns, dispatch) runs when
a job arrives, when a transport's deadline comes, and at least every
``POLL_S`` (serial bytes and socket data arrive without a deadline); events are
handed to ``publish`` (the core makes it thread-safe).

This is glue: it reads the clock it is given, and only here.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from typing import Callable

log = logging.getLogger(__name__)

POLL_S = 0.1  # longest sleep between passes: how late a modem's or gateway's bytes are read
ERROR_PAUSE_S = 5.0  # after a pass failed (a disk error, a bug): wait before the next, log once per pause


class SmsWorker:
    """A thread that drives an ``SmsService``.

    Parameters
    ----------
    service : SmsService
    clock : object
        ``now()`` (monotonic seconds, the transports' time) and ``wall()`` (epoch seconds, the outbox's).
    publish : callable
        ``publish(type, data)`` for each event; called on this thread.
    extra : list of callable, optional
        ``step(now, wall) -> list of (type, data)`` run after each pass (campaigns, dispatch).
    """

    def __init__(self, service, clock, publish: Callable[[str, dict], None],
                 extra: list[Callable[[float, float], list]] | None = None) -> None:
        self.service, self.clock, self.publish = service, clock, publish
        self.extra = list(extra or [])
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = False
        self._paused: dict[int, float] = {}  # extra step -> when it may run again after it failed
        self._dead = False  # the thread has ended: jobs are refused (under _gate, so none is left waiting)
        self._gate = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sms", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[float, float], object]) -> concurrent.futures.Future:
        """Run ``fn(now, wall)`` on the worker thread before its next pass; its value (or error) in the future."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._gate:
            if self._stop or self._dead:
                fut.set_exception(RuntimeError("the SMS worker has stopped"))
                return fut
            self._jobs.put((fn, fut))
        self._wake.set()
        return fut

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the pass in progress and the jobs queued, then close the transports."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the SMS worker did not stop within %.0f s", timeout)

    # --- the thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop:
                self._wake.clear()
                self._run_jobs()
                wait = self._pass()
                self._wake.wait(wait)
            self._run_jobs()
            self._publish(self.service.stop(self.clock.wall()))
        except Exception:  # noqa: BLE001 - logged; the transports are closed all the same
            log.exception("the SMS worker failed")
        finally:
            self._fail_jobs()
            for transport in self.service.transports.values():
                try:
                    transport.close()
                except Exception:  # noqa: BLE001 - one transport's close must not keep the others open
                    log.exception("closing sms transport %s", transport.name)

    def _run_jobs(self) -> None:
        while True:
            try:
                fn, fut = self._jobs.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                value = fn(self.clock.now(), self.clock.wall())
            except BaseException as e:  # noqa: BLE001 - the caller gets it
                fut.set_exception(e)
            else:
                fut.set_result(value)

    def _fail_jobs(self) -> None:
        with self._gate:
            self._dead = True
        while True:
            try:
                _, fut = self._jobs.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(RuntimeError("the SMS worker has stopped"))

    def _pass(self) -> float:
        """One pass; how long to sleep before the next."""
        now, wall = self.clock.now(), self.clock.wall()
        wait = POLL_S
        try:
            self._publish(self.service.step(now, wall))
            deadline = self.service.next_deadline()
            if deadline is not None:
                wait = min(POLL_S, max(0.0, deadline - now))
        except Exception:  # noqa: BLE001 - the worker must outlive a bad pass; the outbox keeps every state
            log.exception("sms pass failed; next try in %.0f s", ERROR_PAUSE_S)
            wait = ERROR_PAUSE_S
        for i, step in enumerate(self.extra):  # each on its own: a failing one neither stops nor loses the others
            if now < self._paused.get(i, now):
                continue
            try:
                self._publish(step(now, wall))
            except Exception:  # noqa: BLE001
                log.exception("sms step %s failed; next try in %.0f s", getattr(step, "__name__", step),
                              ERROR_PAUSE_S)
                self._paused[i] = now + ERROR_PAUSE_S
        return wait

    def _publish(self, events: list) -> None:
        for type_, data in events:
            try:
                self.publish(type_, data)
            except Exception:  # noqa: BLE001 - a closed loop at shutdown
                log.exception("sms event %s not published", type_)
