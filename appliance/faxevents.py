"""What call control asks the runtime to do with fax, and the runtime's fax events back to it (``appliance.faxcalls``,
``appliance.faxmedia``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StartFax:
    """Action: trunk ``port`` carries a fax from now on: its audio goes to a ``dsp.fax.t30.FaxSession`` (calling
    when we placed the call, answering otherwise) and the session's output replaces whatever the port was sent.

    ``pages`` (a list of ``dsp.fax.tiff.FaxPage``) is the document to send; None receives."""

    port: int
    key: str  # the call id or the job's: echoed in FaxProgress and FaxEnded
    calling: bool
    pages: list | None = field(default=None, hash=False)
    ident: str = ""


@dataclass(frozen=True)
class StopFax:
    """Action: take the fax off ``port`` (the line was cleared, or the job cancelled); its ``FaxEnded`` follows.

    With ``drain`` the session runs on, hearing silence and sending nowhere, until it ends by its own timers (a
    sender whose DCN went out ends at once; a receiver keeps the pages it confirmed), ``DRAIN_S`` at most;
    without, it ends now with ``cause``."""

    port: int
    cause: str = "the line was cleared"
    drain: bool = True


@dataclass(frozen=True)
class SaveFax:
    """Action: store a fax's record (``appliance.faxstore``), with the received pages as a TIFF-F and PNGs."""

    record: dict = field(hash=False)
    pages: list = field(default_factory=list, hash=False)


@dataclass(frozen=True)
class SaveFaxJob:
    """Action: keep an unfinished send job (``appliance.faxjobs.FaxJob``, as it is when applied) so that it survives
    a restart, or forget it once it is finished."""

    job: object = field(hash=False)


@dataclass(frozen=True)
class FaxProgress:
    """Event: sending, the fax on ``port`` began page ``page`` of ``of``; receiving (``of`` None), it has received
    ``page`` pages."""

    port: int
    key: str
    page: int
    of: int | None


@dataclass(frozen=True)
class FaxEnded:
    """Event: the fax on ``port`` ended; ``result`` is its ``dsp.fax.t30pages.FaxResult``."""

    port: int
    key: str
    result: object = field(hash=False)
