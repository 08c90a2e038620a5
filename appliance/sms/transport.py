"""The one interface every way of sending SMS meets: the GSM modem, SMGP, CMPP and an HTTP gateway.

The outbox (``appliance.sms.outbox``) hands a claimed message to a transport
with ``submit`` after recording the hand-over; the transport answers later,
through ``poll``, with events: ``Accepted`` (the modem's +CMGS or a gateway's
submit response: the message is sent, ``ref`` matches its delivery reports),
``Rejected`` (a definite refusal; ``retryable`` says whether to try again),
``NotSent`` (nothing of it left: handed out again, no try used), ``Uncertain``
(it may have gone: unknown, never re-sent blindly),
``Report`` (a delivery report), ``Inbound`` (a message to us), and ``Down`` /
``Up`` when the transport is lost (a modem unplugged, a gateway link broken)
or back. A transport never reads the clock: ``now`` comes with every call, and
``next_deadline`` says when it next needs a ``poll`` (timeouts, keep-alives,
reconnects).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = ["SmsTransport", "Accepted", "Rejected", "NotSent", "Uncertain", "Report", "Inbound", "Down", "Up"]


@dataclass(frozen=True)
class Accepted:
    """The transport took the message: ``ref`` is its id there (modem TP-MR, gateway Msg_Id)."""

    msg_id: str
    ref: str


@dataclass(frozen=True)
class Rejected:
    """The transport refused the message, for ``reason``; ``retryable`` when a later try may work."""

    msg_id: str
    reason: str
    retryable: bool


@dataclass(frozen=True)
class NotSent:
    """Nothing of the message reached the transport (no byte of it was written: the modem never asked for the
    PDU, the gateway link went down with the submit still queued): the outbox hands it out again once the
    transport is up, without using a try. Emitted before a ``Down`` that concerns it."""

    msg_id: str
    reason: str


@dataclass(frozen=True)
class Uncertain:
    """The message may or may not have reached the far end (an HTTP answer lost after the request went out):
    the outbox makes it ``unknown``; it is never re-sent by itself."""

    msg_id: str
    reason: str


@dataclass(frozen=True)
class Report:
    """A delivery report for the message the transport knows as ``ref``: ``status`` as it came, ``delivered``."""

    ref: str
    status: str
    delivered: bool


@dataclass(frozen=True)
class Inbound:
    """A message to us from ``sender`` (long messages already joined), received at ``when`` (wall seconds)."""

    sender: str
    text: str
    when: float


@dataclass(frozen=True)
class Down:
    """The transport is lost (modem unplugged, link broken, login refused): ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class Up:
    """The transport is usable again."""


class SmsTransport(ABC):
    """A way of sending SMS; ``name`` is what ``via`` says in the outbox (modem, smgp, cmpp, http)."""

    name: str = ""

    @abstractmethod
    def submit(self, msg_id: str, number: str, text: str, now: float) -> None:
        """Send one message (split into parts as the transport needs); the outcome comes through ``poll``."""

    @abstractmethod
    def poll(self, now: float) -> list:
        """Events since the last call: Accepted, Rejected, Report, Inbound, Down, Up."""

    @abstractmethod
    def next_deadline(self) -> float | None:
        """When ``poll`` is next needed even if nothing arrives (None: only when something does)."""

    @abstractmethod
    def close(self) -> None:
        """Stop and release the port or connection."""

    def unsent(self) -> list[str]:
        """At a stop, before ``close``: the messages submitted of which nothing has been written yet, taken back
        (the transport forgets them), so the outbox queues them again instead of leaving them unknown."""
        return []
