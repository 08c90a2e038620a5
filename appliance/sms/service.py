"""The SMS pump: claims due messages from the outbox, hands them to their transports, and files what comes back.

One ``step(now, wall)`` does a whole pass: every transport is polled (its events
applied to the outbox and the inbound store), then each transport that is up
gets the outbox's due messages, each one claimed and recorded as handed over
*before* ``submit`` writes a byte (the outbox's exactly-once rules 1-2). ``now``
is the transports' monotonic time, ``wall`` the epoch seconds the outbox keeps;
nothing here reads a clock. What changed comes back as ``(event type, data)``
pairs for the control API's bus: ``sms.state`` (a message moved), ``sms.inbound``
(a message to us; an opt-out reply is marked), ``sms.transport`` (a transport
went down or came back).

A transport with a link (the modem, a gateway session) is not given messages
while it is down: a modem being probed or a gateway not logged in would only make
each message burn a try. It starts down until its first ``Up``; a message handed
over when it goes down becomes ``unknown`` (the outbox's rule 5); a gateway's
``Rejected`` for a submit the link lost comes after its ``Down`` and finds the
message no longer sending, so it changes nothing; a ``NotSent`` (nothing of
the message was written) queues it again without using a try, even after the
``Down``. The HTTP gateway has no link: every request it was given ends in its
own ``Accepted``, ``Rejected`` or ``Uncertain``, its ``Down`` and ``Up`` only
say that requests keep failing or work again. So it is
always given its due messages (their backoff spaces the retries, and only a
success can bring it up again) and its ``Down`` settles nothing.
"""

from __future__ import annotations

import logging
from collections import deque

from ..apischema import CommandError
from .outbox import Message, Outbox
from .transport import Accepted, Down, Inbound, NotSent, Rejected, Report, SmsTransport, Uncertain, Up

__all__ = ["SmsService", "message_view", "state_event", "LINKLESS"]

log = logging.getLogger(__name__)

LINKLESS = frozenset({"http"})  # transports without a link of their own: see the module's docstring
BATCH = 10  # messages handed to one transport per step: a backlog cannot hold the worker for long


def message_view(m: Message) -> dict:
    """A message as the control API shows it (times in epoch seconds, rounded)."""
    def t(x):
        return None if x is None else round(x, 3)
    return {"id": m.id, "to": m.to_number, "text": m.text, "via": m.via, "state": m.state, "reason": m.reason,
            "tries": m.tries, "parts": m.parts, "transport_ref": m.transport_ref, "campaign_id": m.campaign_id,
            "origin": m.origin, "created": t(m.created_at), "sent": t(m.sent_at), "done": t(m.done_at),
            "next_try": t(m.next_try_at) if m.state == "queued" else None}


def state_event(m: Message) -> tuple[str, dict]:
    """The ``sms.state`` event of a message that moved."""
    return "sms.state", {"id": m.id, "state": m.state, "via": m.via, "to": m.to_number, "reason": m.reason,
                         "tries": m.tries, "transport_ref": m.transport_ref}


class SmsService:
    """The outbox and its transports, moved one ``step`` at a time.

    Parameters
    ----------
    outbox : Outbox
    transports : dict of str to SmsTransport
        By ``via`` name (modem, smgp, cmpp, http): the transports this box has set up.
    inbound : callable, optional
        ``inbound(sender, text, when, via, wall) -> dict`` files a message to us (``SmsStore.add_inbound``)
        and returns its row for the ``sms.inbound`` event; without it inbound messages are only logged.
    """

    def __init__(self, outbox: Outbox, transports: dict[str, SmsTransport], *, inbound=None,
                 batch: int = BATCH) -> None:
        self.outbox, self.transports, self.batch = outbox, dict(transports), batch
        self.inbound = inbound
        self.up = {via: via in LINKLESS for via in self.transports}
        self._unapplied: dict[str, deque] = {via: deque() for via in self.transports}  # polled, not yet filed
        self.why_down: dict[str, str | None] = {via: None if self.up[via] else "not connected yet"
                                                for via in self.transports}

    def recover(self, wall: float) -> list[tuple[str, dict]]:
        """At start: what a stop left in ``sending`` goes back to ``queued`` or to ``unknown`` (outbox rule 4)."""
        out = self.outbox.recover(wall)
        return [state_event(self.outbox.get(i)) for i in out["requeued"] + out["unknown"]]

    def step(self, now: float, wall: float) -> list[tuple[str, dict]]:
        """Poll every transport, apply what it says, and hand each transport that is up its due messages.

        A transport gives each event once: one that could not be filed (the disk failed) is kept, with those
        after it, and filed first at the next step; the error goes up to the caller."""
        events: list[tuple[str, dict]] = []
        for via, transport in self.transports.items():
            self._unapplied[via].extend(transport.poll(now))
            events += self._apply(via, wall)
        for via, transport in self.transports.items():
            if self.up[via] or via in LINKLESS:
                events += self._hand_out(via, transport, now, wall)
        return events

    def stop(self, wall: float) -> list[tuple[str, dict]]:
        """Before the transports close: what they have not written yet is queued again (no try used), so a
        restart finds it queued rather than unknown; events of the last poll are filed."""
        events: list[tuple[str, dict]] = []
        for via, transport in self.transports.items():
            self._unapplied[via].extend(NotSent(i, "taken back at a stop") for i in transport.unsent())
            events += self._apply(via, wall)
        return events

    def next_deadline(self) -> float | None:
        """The earliest time (on ``now``'s clock) a transport wants a poll; the outbox's own times are on the wall
        clock and are checked by the worker at each step."""
        times = [t for t in (tr.next_deadline() for tr in self.transports.values()) if t is not None]
        return min(times) if times else None

    def status(self) -> dict:
        """Each transport: up or down (and why), with a transport's own status when it has one (the modem's)."""
        out = {}
        for via, transport in self.transports.items():
            own = getattr(transport, "status", None)
            out[via] = {"up": self.up[via], "reason": self.why_down[via], **(own() if own else {})}
        return out

    # --- inside ------------------------------------------------------------------------------------------

    def _hand_out(self, via: str, transport: SmsTransport, now: float, wall: float) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        if not self.outbox.ready(via, wall):
            return events  # nothing due, or the rate allows none now: no write (``due`` stores the rate bucket)
        for m in self.outbox.due(wall, via, self.batch):
            if not self.outbox.claim(m.id, wall):
                continue  # another claimer took it (a second process on the same file): never sent twice
            m = self.outbox.handed_over(m.id, wall)  # durable before the first byte goes out (rule 2)
            transport.submit(m.id, m.to_number, m.text, now)
            events.append(state_event(m))
        return events

    def _apply(self, via: str, wall: float) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        pending = self._unapplied[via]
        while pending:
            try:
                events += self._one(via, pending[0], wall)
            except CommandError as e:  # e.g. an answer for a message a person resolved meanwhile: not applicable
                log.warning("sms %s: %s not applied: %s", via, pending[0], e.message)
            pending.popleft()  # filed (or not applicable): an error above leaves it for the next step
        return events

    def _one(self, via: str, ev, wall: float) -> list[tuple[str, dict]]:
        if isinstance(ev, Accepted):
            return [state_event(self.outbox.sent(ev.msg_id, ev.ref, wall))]
        if isinstance(ev, Rejected):
            if self.outbox.get(ev.msg_id).state != "sending":
                return []  # the link's loss already made it unknown (its Down came first)
            return [state_event(self.outbox.failed_try(ev.msg_id, ev.reason, wall, ev.retryable))]
        if isinstance(ev, NotSent):
            return [state_event(self.outbox.release(ev.msg_id, ev.reason, wall))]
        if isinstance(ev, Uncertain):
            if self.outbox.get(ev.msg_id).state != "sending":
                return []
            return [state_event(self.outbox.uncertain(ev.msg_id, ev.reason, wall))]
        if isinstance(ev, Report):
            m = self.outbox.delivered(ev.ref, ev.status, wall, via=via, ok=ev.delivered)
            return [] if m is None else [state_event(m)]
        if isinstance(ev, Inbound):
            return self._inbound(via, ev, wall)
        if isinstance(ev, Down):
            was_up, self.up[via], self.why_down[via] = self.up[via], False, ev.reason
            log.warning("sms transport %s down: %s", via, ev.reason)
            if via in LINKLESS:
                return [("sms.transport", {"via": via, "up": False, "reason": ev.reason})] if was_up else []
            moved = self.outbox.transport_down(via, wall)
            changed = [state_event(self.outbox.get(i)) for i in moved["requeued"] + moved["unknown"]]
            return ([("sms.transport", {"via": via, "up": False, "reason": ev.reason})] if was_up else []) + changed
        if isinstance(ev, Up):
            was_up, self.up[via], self.why_down[via] = self.up[via], True, None
            return [] if was_up else [("sms.transport", {"via": via, "up": True, "reason": None})]
        log.warning("sms %s: unknown transport event %r", via, ev)
        return []

    def _inbound(self, via: str, ev: Inbound, wall: float) -> list[tuple[str, dict]]:
        if self.inbound is None:
            log.info("sms from %s via %s not kept (no inbound store): %r", ev.sender, via, ev.text)
            return []
        row = self.inbound(ev.sender, ev.text, ev.when, via, wall)
        events = [("sms.inbound", dict(row))]
        if row.get("opt_out"):  # campaign messages still queued for this number are not sent either
            for msg_id in self.outbox.withdraw(row["number"], "opted out by reply", wall):
                events.append(state_event(self.outbox.get(msg_id)))
        return events
