"""Outbound fax jobs: a document to one number, dialled and re-dialled until it is sent or its tries run out.

Plain data, sans-I/O (``appliance.faxcalls`` moves the jobs). A job is ``queued`` until
its time comes and a trunk channel is free, ``dialling`` while the number is called,
``sending`` once the far end answered and the pages go, then ``done`` (sent), or
back to ``queued`` for the next try ``interval_s`` later, or ``failed`` when the tries
are used up. Every attempt's outcome is kept: the dial result (answered, busy,
no_answer, ...), the trunk's cause, and for an answered call the fax's own result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATES = ("queued", "dialling", "sending", "done", "failed")
DEFAULT_TRIES = 3
DEFAULT_INTERVAL_S = 120.0
MAX_TRIES = 10
MAX_JOBS = 100  # jobs not finished at once; more is refused
KEEP_FINISHED = 100  # finished jobs kept for fax.jobs / fax.status (the journal keeps them all)


@dataclass
class FaxJob:
    """One document to one number.

    Times (``created``, ``next_at``) are on the runtime's clock; ``pages`` are ``dsp.fax.tiff.FaxPage``.
    """

    job_id: str
    number: str  # the digits dialled (national form, ``appliance.caller``)
    pages: list = field(repr=False)
    document: str  # the file's name, as the user gave it
    created: float
    tries: int = DEFAULT_TRIES
    interval_s: float = DEFAULT_INTERVAL_S
    tiff: str | None = None  # the document as sent, a TIFF-F under the data dir (relative path)
    state: str = "queued"
    next_at: float = 0.0
    page: int = 0  # the page being sent, 0 before the first
    attempts: list[dict] = field(default_factory=list)
    result: dict | None = None  # the last fax result (ok, cause, pages, bit_rate, ...)
    cause: str | None = None  # why it failed

    def saved(self, epoch) -> dict | None:
        return saved_job(self, epoch)

    @property
    def of(self) -> int:
        return len(self.pages)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def view(self, epoch) -> dict:
        """The job as the control API shows it; ``epoch`` turns a runtime time into wall-clock epoch seconds."""
        return {"job_id": self.job_id, "number": self.number, "document": self.document, "pages": self.of,
                "state": self.state, "page": self.page, "of": self.of, "tries": self.tries,
                "interval_s": self.interval_s, "attempt": len(self.attempts) + (self.state in ("dialling", "sending")),
                "created": round(epoch(self.created), 3),
                "next_at": round(epoch(self.next_at), 3) if self.state == "queued" else None,
                "attempts": [dict(a) for a in self.attempts], "cause": self.cause, "tiff": self.tiff}


def saved_job(job: FaxJob, epoch) -> dict | None:
    """What is kept of an unfinished job across a restart (times as wall-clock epoch seconds), None once finished;
    the pages come back from ``tiff``."""
    if job.finished:
        return None
    return {"job_id": job.job_id, "number": job.number, "document": job.document, "created_ts": epoch(job.created),
            "tries": job.tries, "interval_s": job.interval_s, "tiff": job.tiff, "next_ts": epoch(job.next_at),
            "attempts": [dict(a) for a in job.attempts]}


def attempt_cause(result: str, cause: int | None, fax_cause: str | None) -> str:
    """One line for a failed attempt: the fax's own cause once answered, else the dial result and trunk cause."""
    if fax_cause:
        return fax_cause
    return result.replace("_", " ") + (f" (cause {cause})" if cause is not None else "")
