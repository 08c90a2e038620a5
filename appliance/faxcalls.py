"""Fax calls in call control: inbound calls switched to fax receive, outbound fax jobs dialled and retried, sans-I/O.

A part of ``CallCentre`` (``appliance.callcontrol``). Inbound: the runtime follows every
inbound trunk call's tones (``Runtime.fax_listen``: its call-progress detector reports
them as ``TrunkTone``), and CNG heard while the call is in the IVR (with ``fax_detect``)
makes it a fax; a call to one of ``fax_numbers`` is a fax at once. Either way the IVR stops and ``StartFax``
(answering) gives the channel to a fax session; when it ends (``FaxEnded``) the call
is hung up and recorded with disposition ``fax``, and ``SaveFax`` stores the pages.
Outbound: ``fax_submit`` queues a ``appliance.faxjobs.FaxJob``; a job whose time has
come takes a free trunk channel and dials (an attempt of ``appliance.outbound``, so
the dial result is classified as for any call); the answer starts ``StartFax``
(calling, with the pages); a busy, unanswered or failed attempt, or a fax that fails,
is retried ``interval_s`` later until ``tries`` are used. Each attempt writes a call
record (direction ``out``, disposition ``fax`` when pages went, else ``failed``);
the job's end writes a fax record. ``fax.*`` events go to the control API.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from drivers.base import Connected, Released

from .actions import Action, Hangup, LogEvent, Publish, StopPlay, StopProgress, StopTone, WriteCall
from .faxevents import FaxEnded, FaxProgress, SaveFax, SaveFaxJob, StartFax, StopFax
from .faxjobs import DEFAULT_INTERVAL_S, DEFAULT_TRIES, KEEP_FINISHED, MAX_JOBS, MAX_TRIES, FaxJob, attempt_cause
from .outbound import DialRefused

FAX_EVENTS = (FaxProgress, FaxEnded)  # the runtime's events call control hands to ``_fax_event``
NO_TRUNK_WAIT_S = 5.0  # a job due while every trunk channel is busy looks again this much later (no try used)


@dataclass
class FaxLine:
    """A trunk channel carrying a fax: an inbound call (``call``) or an outbound job's attempt (``job``)."""

    port: int
    call_id: str
    start: float
    call: object = None
    job: FaxJob | None = None
    connected: float | None = None  # the fax session started
    cleared: bool = False  # the far end cleared while the session ran
    cause: int | None = None  # the far end's clearing cause


def fax_record(direction: str, key: str, number: str | None, start_wall: float, result, **extra) -> dict:
    """A fax's journal record (``appliance.faxstore``) from its ``FaxResult`` (None: no session ran)."""
    r = result
    return {"key": key, "direction": direction, "number": number, "started_ts": start_wall,
            "result": "ok" if r is not None and r.ok else "failed", "cause": None if r is None else (r.cause or None),
            "pages": 0 if r is None else r.pages, "bit_rate": None if r is None else r.bit_rate,
            "resolution": None if r is None else r.resolution, "compression": None if r is None else r.compression,
            "remote_ident": "" if r is None else r.remote_ident, "bad_rows": 0 if r is None else r.bad_rows,
            "seconds": 0.0 if r is None else round(r.seconds, 3), **extra}


def cleared(result, cause: int | None):
    """A failed session whose line the far end cleared: its cause says so first."""
    if result.ok:
        return result
    return dataclasses.replace(result, cause=f"the far end cleared the call (cause {cause}): {result.cause}")


def result_data(r) -> dict:
    return {"ok": r.ok, "cause": r.cause or None, "pages": r.pages, "bit_rate": r.bit_rate,
            "resolution": r.resolution, "compression": r.compression, "remote_ident": r.remote_ident,
            "bad_rows": r.bad_rows, "seconds": round(r.seconds, 3)}


class FaxCalls:
    def _init_fax_calls(self) -> None:
        self.fax_lines: dict[int, FaxLine] = {}  # trunk port -> the fax on it
        self.fax_jobs: dict[str, FaxJob] = {}  # by job id, finished ones too (the latest KEEP_FINISHED)
        self.fax_numbers: frozenset[str] = frozenset()  # called numbers that are fax lines (no IVR)
        self.fax_detect = True  # CNG heard in the IVR switches the call to fax
        self.fax_ident = ""  # our CSI/TSI: the box's number
        self._fax_n = 0

    def _trunk_free(self, port: int) -> bool:
        return port not in self.fax_lines and super()._trunk_free(port)

    # --- inbound ----------------------------------------------------------------------------------

    def _fax_seized(self, port: int, called: str, now: float) -> list[Action]:
        """After ``_seized``: a call to a fax number goes to fax at once, without the IVR."""
        call = self.calls.get(port)
        if call is None or call.ivr is None or port not in self.port_spans or called not in self.fax_numbers:
            return []
        return self._to_fax(call, "number", now)

    def _fax_tone(self, port: int, tone: str, now: float) -> list[Action]:
        call = self.calls.get(port)
        if tone == "cng" and self.fax_detect and call is not None and call.ivr is not None and \
                port not in self.fax_lines:
            return self._to_fax(call, "cng", now)
        return []

    def _to_fax(self, call, why: str, now: float) -> list[Action]:
        call.ivr, call.state = None, "fax"
        self.fax_lines[call.port] = FaxLine(call.port, call.call_id, now, call=call, connected=now)
        data = {"call_id": call.call_id, "direction": "in", "number": call.caller, "port": call.port, "by": why}
        return [StopPlay(call.port), StopTone(call.port), StopProgress(call.port),
                LogEvent(call.call_id, "fax.started", data), Publish("fax.started", data),
                StartFax(call.port, call.call_id, calling=False, ident=self.fax_ident)]

    def _fax_in_ended(self, line: FaxLine, result, now: float) -> list[Action]:
        call = line.call
        key = call.call_id
        rec = fax_record("in", key, call.caller, line.start, result)
        data = {"call_id": key, "direction": "in", "number": call.caller, **result_data(result)}
        out: list[Action] = [SaveFax(rec, list(result.received)), LogEvent(key, "fax.ended", data),
                             Publish("fax.done" if result.ok else "fax.failed", data)]
        by = "caller" if line.cleared else "system"
        return out + self._end(call, now, "fax", by, cause=None if line.cleared else 16,
                               reason=None if result.ok else result.cause)

    # --- outbound jobs ------------------------------------------------------------------------------

    def fax_submit(self, number: str, pages: list, document: str, now: float, *, tries: int = DEFAULT_TRIES,
                   interval_s: float = DEFAULT_INTERVAL_S, tiff: str | None = None) -> tuple[FaxJob, list[Action]]:
        """Queue ``pages`` (a converted document, ``document`` its name) for ``number``; the job dials at once if
        a trunk channel is free. Raises ``DialRefused`` (a ValueError) naming the bad argument."""
        n = self._dialable(number)
        if not pages:
            raise DialRefused("path", "bad_argument", f"{document}: the document has no pages")
        if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= MAX_TRIES:
            raise DialRefused("tries", "bad_argument", f"tries {tries!r} must be 1..{MAX_TRIES}")
        if not 0.0 <= float(interval_s) <= 86400.0:
            raise DialRefused("interval_s", "bad_argument", f"interval_s {interval_s!r} must be 0..86400 s")
        if sum(1 for j in self.fax_jobs.values() if not j.finished) >= MAX_JOBS:
            raise DialRefused("number", "conflict", f"{MAX_JOBS} fax jobs are waiting already; try later")
        self._fax_n += 1
        job = FaxJob(f"fax-{self.prefix}-{self._fax_n:04d}", n.national, list(pages), document, now, tries,
                     float(interval_s), tiff=tiff, next_at=now)
        self.fax_jobs[job.job_id] = job
        data = {"job_id": job.job_id, "number": job.number, "document": document, "pages": job.of,
                "tries": tries}
        return job, [LogEvent(job.job_id, "fax.queued", data), Publish("fax.queued", data), SaveFaxJob(job)]

    def fax_restore(self, saved: list[tuple[dict, list | None, str | None]], now: float,
                    epoch_now: float) -> list[Action]:
        """Take back the unfinished jobs kept before a restart: ``(saved_job dict, pages or None, why not)``; a
        job whose document cannot be read fails with the reason. ``epoch_now`` is ``now`` as wall-clock time."""
        out: list[Action] = []
        for data, pages, error in saved:
            job = FaxJob(data["job_id"], data["number"], list(pages or []), data["document"],
                         now + data["created_ts"] - epoch_now, data["tries"], data["interval_s"], tiff=data["tiff"],
                         next_at=max(now, now + data["next_ts"] - epoch_now), attempts=list(data["attempts"]))
            self.fax_jobs[job.job_id] = job
            if error is not None or not job.pages:
                out += self._job_failed(job, error or "the document kept for the job has no pages", now)
                continue
            info = {"job_id": job.job_id, "number": job.number, "document": job.document, "pages": job.of,
                    "tries": job.tries, "attempts": len(job.attempts), "restored": True}
            out += [LogEvent(job.job_id, "fax.restored", info), Publish("fax.queued", info)]
        return out

    def fax_cancel(self, job_id: str, now: float) -> list[Action]:
        """Stop a job: a queued one fails at once, a call in progress is hung up (it fails as the line clears)."""
        job = self.fax_jobs[job_id]
        job.tries = len(job.attempts) + (job.state in ("dialling", "sending"))
        if job.state == "queued":
            return self._job_failed(job, "cancelled", now)
        line = next((ln for ln in self.fax_lines.values() if ln.job is job), None)
        if line is None:
            return []
        if line.connected is not None:
            return [StopFax(line.port, "cancelled", drain=False)]
        att = self.tried.get(line.call_id)
        if att is not None and att.result is None:  # hung up by us: what had been heard decides (outbound)
            self._decide(att)
        return self._fax_out_over(line, att.result if att else "failed", None, None, now, hang_up=True,
                                  cancelled=True)

    def _fax_jobs_due(self, now: float) -> list[Action]:
        out: list[Action] = []
        for line in [ln for ln in self.fax_lines.values() if ln.job is not None and ln.connected is None]:
            att = self.tried.get(line.call_id)
            if att is not None and att.result is not None and self.attempts.get(line.port) is not att:
                out += self._fax_out_over(line, att.result, att.cause, None, now)  # unanswered: hung up by outbound
        for job in sorted((j for j in self.fax_jobs.values() if j.state == "queued" and j.next_at <= now),
                          key=lambda j: (j.next_at, j.job_id)):
            port = self._free_trunk()
            if port is None:
                job.next_at = now + NO_TRUNK_WAIT_S
                continue
            out += self._fax_dial(job, port, now)
        return out

    def _fax_dial(self, job: FaxJob, port: int, now: float) -> list[Action]:
        self._n += 1
        call_id = f"{self.prefix}-{self._n:06d}"
        line = FaxLine(port, call_id, now, job=job)
        self.fax_lines[port] = line
        job.state = "dialling"
        data = {"job_id": job.job_id, "call_id": call_id, "number": job.number, "port": port,
                "attempt": len(job.attempts) + 1, "tries": job.tries}
        return [LogEvent(call_id, "fax.dialling", data), Publish("fax.dialling", data),
                *self._attempt_dial(line, port, job.number, "fax", now)]

    def _fax_signal(self, event, now: float) -> list[Action]:
        """Connected or Released on a fax line (the attempt, if any, has noted it)."""
        line = self.fax_lines[event.port]
        if type(event) is Connected and line.job is not None and line.connected is None:
            line.connected, job = now, line.job
            job.state, job.page = "sending", 0
            data = {"job_id": job.job_id, "call_id": line.call_id, "number": job.number, "port": line.port}
            return [LogEvent(line.call_id, "fax.answered", data), Publish("fax.sending", {**data, "of": job.of}),
                    StartFax(line.port, job.job_id, calling=True, pages=job.pages, ident=self.fax_ident)]
        if type(event) is not Released:
            return []
        if line.connected is not None:  # the session winds down on its own timers; its FaxEnded ends the call
            line.cleared, line.cause = True, event.cause
            return [LogEvent(line.call_id, "fax.line_cleared", {"port": line.port, "cause": event.cause}),
                    StopFax(line.port, "the line was cleared")]
        att = self.tried.get(line.call_id)
        return self._fax_out_over(line, att.result if att else "failed", event.cause, None, now)

    def _fax_out_over(self, line: FaxLine, result: str, cause: int | None, fax, now: float, *,
                      hang_up: bool = False, cancelled: bool = False) -> list[Action]:
        """An attempt of ``line.job`` is over: record it, then done, retry or failed."""
        job = line.job
        del self.fax_lines[line.port]
        att = self.tried.pop(line.call_id, None)
        if att is not None and self.attempts.get(line.port) is att:
            del self.attempts[line.port]
        out: list[Action] = self._dial_results()
        if hang_up:
            out.append(Hangup(line.port, 16))
        sent = fax is not None and fax.ok
        why = "cancelled" if cancelled else None if sent else attempt_cause(result, cause, fax.cause if fax else None)
        job.attempts.append({"attempt": len(job.attempts) + 1, "call_id": line.call_id, "port": line.port,
                             "result": result, "cause": cause, "fax": result_data(fax) if fax is not None else None,
                             "error": why})
        record = {"call_id": line.call_id, "direction": "out", "caller": self.fax_ident or None, "called": job.number,
                  "trunk_port": line.port, "start_ts": line.start, "answer_ts": line.connected, "end_ts": now,
                  "talk_s": now - line.connected if line.connected is not None else None,
                  "disposition": "fax" if fax is not None and fax.pages else "failed",
                  "ended_by": "caller" if line.cleared or (cause is not None and not hang_up) else "system",
                  "number": job.number, "result": result, "cause": cause}
        data = {"job_id": job.job_id, "call_id": line.call_id, "attempt": len(job.attempts), "result": result,
                "cause": cause, "error": why}
        out += [WriteCall(record), LogEvent(line.call_id, "fax.attempt", data)]
        if fax is not None:
            job.result = result_data(fax)
        if sent:
            job.state, job.cause = "done", None
            data = {"job_id": job.job_id, "number": job.number, **job.result}
            return out + [SaveFax(self._job_record(job, fax)), SaveFaxJob(job), LogEvent(job.job_id, "fax.done", data),
                          Publish("fax.done", data), *self._fax_jobs_pruned()]
        if len(job.attempts) < job.tries:
            job.state, job.next_at = "queued", now + job.interval_s
            return out + [Publish("fax.retry", {**data, "retry_in_s": job.interval_s}), SaveFaxJob(job)]
        return out + self._job_failed(job, why, now)

    def _job_failed(self, job: FaxJob, why: str, now: float) -> list[Action]:
        job.state, job.cause = "failed", why
        data = {"job_id": job.job_id, "number": job.number, "attempts": len(job.attempts), "cause": why}
        return [SaveFax(self._job_record(job, None)), SaveFaxJob(job), LogEvent(job.job_id, "fax.failed", data),
                Publish("fax.failed", data), *self._fax_jobs_pruned()]

    def _job_record(self, job: FaxJob, fax) -> dict:
        rec = fax_record("out", job.job_id, job.number, job.created, fax, document=job.document, tiff=job.tiff,
                         attempts=[dict(a) for a in job.attempts])
        if fax is None or not fax.ok:
            rec.update(result="failed", cause=job.cause)
        return rec

    def _fax_jobs_pruned(self) -> list[Action]:
        done = [k for k, j in self.fax_jobs.items() if j.finished]
        for k in done[:max(0, len(done) - KEEP_FINISHED)]:
            del self.fax_jobs[k]
        return []

    # --- the runtime's fax events ---------------------------------------------------------------------

    def _fax_event(self, event, now: float) -> list[Action]:
        line = self.fax_lines.get(event.port)
        if line is None or event.key not in (line.call_id, line.job.job_id if line.job else None):
            return []
        if type(event) is FaxProgress:
            data = {"page": event.page, "of": event.of, "number": line.job.number if line.job else line.call.caller}
            if line.job is not None:
                line.job.page = event.page
                data["job_id"] = line.job.job_id
            else:
                data["call_id"] = line.call_id
            return [Publish("fax.progress", data)]
        assert type(event) is FaxEnded
        result = cleared(event.result, line.cause) if line.cleared else event.result
        if line.call is not None:
            del self.fax_lines[event.port]
            return self._fax_in_ended(line, result, now)
        att = self.tried.get(line.call_id)
        cause = att.cause if att is not None else None
        return self._fax_out_over(line, att.result if att is not None and att.result else "answered", cause,
                                  result, now, hang_up=not line.cleared)

    def snapshot(self, now: float) -> dict:
        """The status snapshot (``appliance.callviews``) with each fax channel's state ``fax`` and its progress."""
        snap = super().snapshot(now)
        for t in snap["trunks"]:
            line = self.fax_lines.get(t["port"])
            if line is not None:
                job = line.job
                t.update(state="fax", call_id=line.call_id, caller=job.number if job else line.call.caller,
                         fax={"direction": "out" if job else "in", "job_id": job.job_id if job else None,
                              "sending": line.connected is not None, "page": job.page if job else None,
                              "of": job.of if job else None})
        snap["fax_jobs"] = sum(1 for j in self.fax_jobs.values() if not j.finished)
        return snap

    def _fax_deadlines(self) -> list[float]:
        return [j.next_at for j in self.fax_jobs.values() if j.state == "queued"]
