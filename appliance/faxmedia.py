"""The runtime's fax side (a part of ``appliance.runtime.Runtime``): trunk channels whose audio is a fax session's.

``StartFax`` opens a runner (``appliance.faxworker``: inline in virtual time, a thread or
a process of its own in real time) for the port; each tick, after the mix, the port's
received block goes in and the runner's block replaces whatever the port would have
been sent (prompts, tones, the switch). Page changes come back to call control as
``FaxProgress`` events (sending: the page going now, of how many; receiving: the pages
received so far) and the end as ``FaxEnded``, at the next step. ``SaveFax`` hands a
finished fax's record and pages to ``fax_store`` (the core's ``appliance.faxstore``
writer, off the tick), its ``*_ts`` fields made wall-clock epoch seconds here as for
call records. With ``fax_listen`` every trunk channel a caller seizes has its tones
followed (as a channel dialled out has) until it is cleared, so CNG reaches call control.
"""

from __future__ import annotations

import logging

from drivers.base import Seized

from .faxevents import FaxEnded, FaxProgress, SaveFax, SaveFaxJob, StartFax, StopFax
from .faxworker import SILENCE, open_fax, stopped_result

log = logging.getLogger("appliance.runtime")

DRAIN_S = 40.0  # longest a session taken off its line runs on silence to reach its own end (T1 is 35 s)


class FaxMedia:
    def _init_fax(self, mode: str) -> None:
        self.fax_mode = mode  # inline (virtual time), thread or process
        self.faxes: dict[int, object] = {}  # trunk port -> its runner
        self._fax_key: dict[int, str] = {}
        self._fax_page: dict[int, tuple] = {}  # the progress last reported
        self._fax_news: list = []  # FaxProgress and FaxEnded for the next step
        self._fax_draining: list[list] = []  # [runner, port, key, cause, blocks left]: off their line, ending
        self.fax_store = None  # callable(record, pages); None: a finished fax is only logged
        self.fax_job_store = None  # callable(job_id, saved dict or None); None: jobs do not survive a restart
        self.fax_underruns = 0
        self.fax_listen = False  # follow every inbound trunk call's tones (CNG) until it is cleared

    def _apply_fax(self, a, now: float) -> bool:
        """Apply a fax action; False if ``a`` is none."""
        kind = type(a)
        if kind is StartFax:
            self._stop_fax(a.port, "replaced by another fax", drain=False)
            try:
                self.faxes[a.port] = open_fax(self.fax_mode, calling=a.calling, pages=a.pages, ident=a.ident)
            except Exception as e:  # noqa: BLE001 - a bad document or a worker that cannot start: the fax fails
                log.error("fax on port %d cannot start: %s", a.port, e)
                self._fax_news.append(FaxEnded(a.port, a.key, stopped_result(f"cannot start: {e}", (0, None))))
                return True
            self._fax_key[a.port], self._fax_page[a.port] = a.key, (0, None)
            self.player.stop(a.port)
            self.tones.stop(a.port)
        elif kind is StopFax:
            self._stop_fax(a.port, a.cause, a.drain)
        elif kind is SaveFax:
            rec = {k: (self.clock.epoch(v) if k.endswith("_ts") and v is not None else v) for k, v in a.record.items()}
            if self.fax_store is not None:
                self.fax_store(rec, a.pages)
            else:
                log.info("fax %s: %s (not stored: no fax store)", rec.get("key"), rec.get("result"))
        elif kind is SaveFaxJob:
            if self.fax_job_store is not None:
                self.fax_job_store(a.job.job_id, a.job.saved(self.clock.epoch))
        else:
            return False
        return True

    def _stop_fax(self, port: int, cause: str, drain: bool = False) -> None:
        runner = self.faxes.pop(port, None)
        if runner is None:
            return
        if drain and runner.result is None:
            self._fax_draining.append([runner, port, self._fax_key.pop(port), cause, int(DRAIN_S * 50)])
            self._fax_page.pop(port, None)
            return
        runner.close()
        self.fax_underruns += runner.underruns
        result = runner.result or stopped_result(cause, runner.progress)
        self._fax_news.append(FaxEnded(port, self._fax_key.pop(port), result))
        self._fax_page.pop(port, None)

    def _fax_audio(self) -> None:
        """Each fax port's block: what it heard in, the session's block out in place of the mix's; the sessions
        taken off their lines hear silence."""
        for d in list(self._fax_draining):
            runner = d[0]
            runner.exchange(SILENCE)
            d[4] -= 1
            if runner.result is not None or d[4] <= 0:
                self._fax_draining.remove(d)
                runner.close()
                self.fax_underruns += runner.underruns
                self._fax_news.append(FaxEnded(d[1], d[2], runner.result or stopped_result(d[3], runner.progress)))
        for port, runner in list(self.faxes.items()):
            self.txf[port] = runner.exchange(self.rx[port])
            page, of = runner.progress
            if of is None:  # receiving: the pages received so far (the session counts the one coming)
                page -= runner.result is None
            if page > self._fax_page[port][0]:
                self._fax_page[port] = (page, of)
                self._fax_news.append(FaxProgress(port, self._fax_key[port], page, of))
            if runner.result is not None:
                self._stop_fax(port, "")

    def _fax_step(self, events: list) -> list:
        """This step's fax events; a trunk channel seized by a caller has its tones followed (``TrunkTone``, as
        for a call dialled out) from now until it is cleared, so call control hears a fax machine's CNG."""
        if self.fax_listen:
            for ev in events:
                if type(ev) is Seized:
                    self._listen_progress(ev.port, True)
        return self._fax_events() if self._fax_news else []

    def _fax_events(self) -> list:
        out, self._fax_news = self._fax_news, []
        return out

    def close_faxes(self) -> None:
        """Stop every fax (the core is closing)."""
        for port in list(self.faxes):
            self._stop_fax(port, "the box was stopped")
        for d in self._fax_draining:
            d[0].close()
        self._fax_draining.clear()
        self._fax_news.clear()
