"""What a trunk signalling stack (PRI, MFC/R2) reports about the calls on its channels, and its card events.

``drivers.isdn.calls`` and ``drivers.r2.span`` both report these, numbered by
channel (B-channel or timeslot); ``card_event`` turns one into the event the
core hears on the channel's port.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Alerting, CardEvent, Connected, Released, Seized


@dataclass(frozen=True)
class Offered:
    """An inbound call on ``channel``; ``calling`` None when withheld (``withheld`` says why)."""

    channel: int
    calling: str | None
    called: str
    withheld: str | None = None


@dataclass(frozen=True)
class Alerted:
    channel: int


@dataclass(frozen=True)
class Answered:
    channel: int


@dataclass(frozen=True)
class Cleared:
    """The call on ``channel`` ended from the far side, by a timer, a restart or the link: Q.850 ``cause``."""

    channel: int
    cause: int


CallEvent = Offered | Alerted | Answered | Cleared


def card_event(ev: CallEvent, port: int) -> CardEvent:
    """The card event for ``ev`` on ``port``."""
    if isinstance(ev, Offered):
        return Seized(port, ev.calling, ev.called, ev.withheld)
    if isinstance(ev, Alerted):
        return Alerting(port)
    if isinstance(ev, Answered):
        return Connected(port)
    return Released(port, ev.cause)
