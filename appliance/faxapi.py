"""The control API's fax commands: send a document, follow and cancel send jobs, list faxes received and sent.

A part of ``Core``. ``fax.send`` checks the number, then converts the document
(``appliance.faxdocs.document_pages``: any format it takes) and keeps it as a TIFF-F,
both on a worker thread so the tick and the API's loop never wait for LibreOffice or
Ghostscript; a document that cannot be converted is refused with the converter's
message, which names the file. The job then lives in call control
(``appliance.faxcalls``), which dials, sends, retries and publishes ``fax.*`` events
(fax.queued, fax.dialling, fax.sending, fax.progress, fax.retry, fax.done, fax.failed;
fax.started for a call received). Finished faxes are stored off the tick
(``appliance.faxstore``) and ``fax.list`` reads them from the journal. An unfinished job
is kept in the journal (``fax_jobs``) each time it waits for its next try, and comes
back queued after a restart, its document read back from the TIFF-F; an attempt a stop
cut short is tried again and not counted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os

from dsp.fax.tiff import read_tiff_f

from .control import Bool, CommandError, Enum, Int, Str
from .errors import ApplianceError, DriverError
from .faxjobs import DEFAULT_INTERVAL_S, DEFAULT_TRIES, MAX_TRIES
from .faxstore import DIRECTIONS, FaxStore, FaxStoreError, setup
from .offtick import OffTick

log = logging.getLogger(__name__)


class PhoneNumber(Str):
    """A phone number: a string, or digits the command line sent as a JSON integer (no leading zero lost)."""

    def check(self, name: str, value):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        return super().check(name, value)


def _log_failure(fut) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("fax store: %s", fut.exception())


class FaxCommands:
    def register_fax_commands(self) -> None:
        self.faxes = FaxStore(self.data.root, self.tz)
        self.journal.run(setup).add_done_callback(_log_failure)
        # virtual time: stored at once, in order (deterministic); real time: one thread, off the tick
        self.fax_work = OffTick("fax-store", 0 if self.clock.virtual else 1)
        self.runtime.fax_store = self._store_fax
        self.runtime.fax_job_store = self._store_job_state
        self._restore_fax_jobs()
        fax = self.cfg["fax"]
        self.logic.fax_ident = self.cfg["system"]["box_number"][:20]  # our CSI and TSI
        self.logic.fax_numbers, self.logic.fax_detect = frozenset(fax["numbers"]), fax["detect"]
        self.runtime.fax_listen = fax["detect"]  # the runtime follows inbound calls' tones: CNG
        reg = self.server.register
        reg("fax.send", self.fax_send, {"number": PhoneNumber(32), "path": Str(4096),
                                        "tries": Int(1, MAX_TRIES, required=False, default=fax["tries"]),
                                        "interval_s": Int(0, 86400, required=False,
                                                          default=fax["retry_interval_s"]),
                                        "fine": Bool(required=False, default=True)})
        reg("fax.jobs", self.fax_jobs_list, {"all": Bool(required=False, default=False)})
        reg("fax.status", self.fax_status, {"job_id": Str(64)})
        reg("fax.cancel", self.fax_cancel, {"job_id": Str(64)})
        reg("fax.list", self.fax_list, {"direction": Enum(*DIRECTIONS, required=False),
                                        "limit": Int(1, 1000, required=False, default=100)})

    def close_faxes(self) -> None:
        self.runtime.close_faxes()
        self.fax_work.wait(10.0)  # a fax being stored is finished before the journal closes
        self.fax_work.close()

    # --- storing, off the tick ------------------------------------------------------------------------

    def _store_fax(self, record: dict, pages: list) -> None:
        """``Runtime.fax_store``: a finished fax's files and row, written by the fax-store worker."""
        self.fax_work.submit(functools.partial(self._store_job, record, pages))
        self.fax_work.results()  # the jobs' values are nothing: drained so they do not pile up

    def _store_job(self, record: dict, pages: list) -> None:
        try:
            rec = self.faxes.save_files(record, pages) if record["direction"] == "in" else \
                {**record, "stored": bool(record.get("tiff"))}
            self.journal.run(lambda con: FaxStore.insert(con, rec)).add_done_callback(_log_failure)
        except Exception:  # noqa: BLE001 - a store bug must not kill the worker: logged, the next fax still stored
            log.exception("fax %s not stored", record.get("key"))

    def _store_job_state(self, job_id: str, data: dict | None) -> None:
        """``Runtime.fax_job_store``: an unfinished job kept (or a finished one forgotten) by the journal's writer."""
        self.journal.run(lambda con: FaxStore.put_job(con, job_id, data)).add_done_callback(_log_failure)

    def _restore_fax_jobs(self) -> None:
        """At start: the send jobs a stop or a crash interrupted are queued again (their documents read back)."""
        try:
            saved = self.journal.run(FaxStore.jobs).result(60.0)
        except Exception as e:  # noqa: BLE001 - an unreadable table must not stop the box: logged
            log.error("fax jobs not restored: %s", e)
            return
        restored = []
        for data in saved:
            try:
                pages = read_tiff_f(self.data.root / data["tiff"]) if data["tiff"] else None
                error = None if pages else "the document was not kept, so it cannot be sent after the restart"
            except (OSError, ApplianceError) as e:
                pages, error = None, f"the document kept for the job cannot be read: {e}"
            restored.append((data, pages, error))
        now = self.runtime.now
        self.runtime.apply(self.logic.fax_restore(restored, now, self.clock.epoch(now)), now)

    # --- commands ------------------------------------------------------------------------------------

    async def fax_send(self, number: str, path: str, tries: int = DEFAULT_TRIES,
                       interval_s: int = int(DEFAULT_INTERVAL_S), fine: bool = True) -> dict:
        # (the schema fills tries and interval_s from the config's fax section)
        """``fax.send``: queue ``path`` (converted now) for ``number``; answered with the job."""
        from .faxdocs import document_pages  # Pillow and the converters' wrappers: loaded on first use

        try:
            self.logic._dialable(number)
        except ValueError as e:  # outbound.DialRefused
            raise CommandError("bad_argument", f"number: {e}") from None
        if not os.path.isabs(path):
            raise CommandError("bad_argument", f"path: {path!r} is not an absolute path; give the file's full path")
        loop = asyncio.get_running_loop()
        try:
            pages = await loop.run_in_executor(None, functools.partial(document_pages, path, fine=fine))
        except DriverError as e:  # a converter missing or too slow: not the file's fault
            raise CommandError("unavailable", f"path: {e}") from None
        except ApplianceError as e:  # DspError: the file is missing, unknown, damaged...
            raise CommandError("bad_argument", f"path: {e}") from None
        now = self.runtime.now
        try:
            job, actions = self.logic.fax_submit(number, pages, os.path.basename(path), now, tries=tries,
                                                 interval_s=float(interval_s))
        except ValueError as e:
            raise CommandError(getattr(e, "code", "bad_argument"), f"{getattr(e, 'arg', 'number')}: {e}") from None
        try:  # the document as sent, kept beside the faxes received
            job.tiff = await loop.run_in_executor(None, self.faxes.write_document, job.job_id, pages,
                                                  self.clock.epoch(now))
        except (OSError, ApplianceError) as e:
            log.error("fax job %s: the document is not kept: %s", job.job_id, e)
        self.runtime.apply(actions, now)
        return {"job": job.view(self.clock.epoch)}

    def fax_jobs_list(self, all: bool = False) -> dict:
        """``fax.jobs``: the jobs not finished (``all``: the finished ones kept too), oldest first."""
        jobs = [j for j in self.logic.fax_jobs.values() if all or not j.finished]
        return {"jobs": [j.view(self.clock.epoch) for j in jobs]}

    def fax_status(self, job_id: str) -> dict:
        """``fax.status``: one job."""
        job = self.logic.fax_jobs.get(job_id)
        if job is None:
            raise CommandError("not_found", f"job_id: {job_id!r} is not a fax job (fax.jobs all=true lists them)")
        return {"job": job.view(self.clock.epoch)}

    def fax_cancel(self, job_id: str) -> dict:
        """``fax.cancel``: stop a job (a call in progress is hung up)."""
        job = self.logic.fax_jobs.get(job_id)
        if job is None:
            raise CommandError("not_found", f"job_id: {job_id!r} is not a fax job")
        if job.finished:
            raise CommandError("conflict", f"job_id: {job_id} is {job.state} already")
        now = self.runtime.now
        self.runtime.apply(self.logic.fax_cancel(job_id, now), now)
        return {"job": job.view(self.clock.epoch)}

    async def fax_list(self, direction: str | None = None, limit: int = 100) -> dict:
        """``fax.list``: faxes received and sent, the latest first, with their files and results."""
        try:
            faxes = await asyncio.wrap_future(self.journal.run(
                lambda con: FaxStore.entries(con, direction, None, limit)))
        except FaxStoreError as e:
            raise CommandError(e.code, str(e)) from None
        return {"faxes": faxes}
