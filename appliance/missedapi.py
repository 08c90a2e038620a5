"""The control API's missed-call and voicemail lists: list them, close an entry, mark a message heard, call back.

A part of ``Core``. The lists live in the journal's file (``appliance.missed``); every
command is a ``Journal.run`` job on the journal's writer thread, which first catches up
with the events the tick has queued so far, so an answer reflects every call ended before
the command (and the control API's turn of the loop never waits for the disk). A call
ending or a line missed, as published on the bus, queues such a catch-up too.

A callback (``missed.callback``, ``voicemail.callback``) is a click-to-dial call from the
seat (``CallCentre.dial_out``, ``appliance.outbound``) carrying ``origin`` ``{"missed": id}``
or ``{"voicemail": call_id}``; its ``call.ended`` event (with that origin and the result)
makes the entry done when answered, failed otherwise.
"""

from __future__ import annotations

import asyncio
import logging

from .config import home_area
from .control import Bool, CommandError, Enum, Int, Str
from .journal import JournalError
from .missed import STATES, MissedCalls, MissedError

log = logging.getLogger(__name__)

SYNC_ON = ("call.ended", "line.missed")  # published events after which the lists catch up


def _log_failure(fut) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("missed-call list: %s", fut.exception())


class MissedCommands:
    def register_missed_commands(self) -> None:
        self.missed = MissedCalls(home_area=home_area(self.cfg))
        self._missed_sync_queued = False
        self._callback_lock = asyncio.Lock()  # one callback placed at a time: each reads the state afresh
        self.journal.run(self.missed.setup).add_done_callback(_log_failure)
        self.bus.listen(self._missed_event)
        seat = Int(1, 24)
        limit = Int(1, 1000, required=False, default=100)
        reg = self.server.register
        reg("missed.list", self.missed_list, {"state": Enum(*STATES, "open", required=False),
                                              "since": Int(0, None, required=False), "limit": limit})
        # the entry's id is missed_id: a request's "id" is the control API's own (JSON lines request id)
        reg("missed.close", self.missed_close, {"missed_id": Int(1, None)})
        reg("missed.callback", self.missed_callback, {"missed_id": Int(1, None), "seat": seat})
        reg("voicemail.list", self.voicemail_list, {"box": Str(32, required=False),
                                                    "unheard": Bool(required=False, default=False), "limit": limit})
        reg("voicemail.heard", self.voicemail_heard, {"call_id": Str(64)})
        reg("voicemail.callback", self.voicemail_callback, {"call_id": Str(64), "seat": seat})

    # --- keeping the lists up with the journal -------------------------------------------------------

    def _missed_event(self, event: dict) -> None:
        """A bus listener (on the tick): a call ended or a line was missed; catch up once its events are in."""
        if event["event"] in SYNC_ON and not self._missed_sync_queued:
            self._missed_sync_queued = True
            try:
                self.journal.run(self._missed_sync).add_done_callback(_log_failure)
            except JournalError:  # closing: the next start catches up
                pass

    def _missed_sync(self, con) -> None:
        self._missed_sync_queued = False  # events published from now on queue another catch-up
        self.missed.sync(con)

    async def _missed_job(self, fn):
        try:
            return await asyncio.wrap_future(self.journal.run(fn))
        except MissedError as e:
            raise CommandError(e.code, str(e)) from None

    # --- commands ------------------------------------------------------------------------------------

    def missed_list(self, state: str | None = None, since: int | None = None, limit: int = 100):
        """``missed.list``: entries, the latest first; ``state`` (or "open": new, calling back, failed)."""
        return self._missed_job(lambda con: {"entries": self.missed.entries(con, state, since, limit)})

    def missed_close(self, missed_id: int):
        """``missed.close``: no callback needed."""
        ts = self.clock.wall()
        return self._missed_job(lambda con: {"entry": self.missed.close(con, missed_id, ts)})

    def voicemail_list(self, box: str | None = None, unheard: bool = False, limit: int = 100):
        """``voicemail.list``: messages, the latest first, with caller, area, length, recording, heard and the
        callback state of the caller's missed-call entry."""
        return self._missed_job(lambda con: {"messages": self.missed.messages(con, box, unheard, limit)})

    def voicemail_heard(self, call_id: str):
        """``voicemail.heard``: mark a message heard."""
        ts = self.clock.wall()
        return self._missed_job(lambda con: {"voicemail": self.missed.heard(con, call_id, ts)})

    async def missed_callback(self, missed_id: int, seat: int) -> dict:
        """``missed.callback``: the seat's phone rings, then the entry's number is dialled."""
        await self._callback(seat, {"missed": missed_id}, lambda con: self.missed.callback_target(con, missed_id))
        return await self._missed_job(lambda con: {"entry": self.missed.entry(con, missed_id)})

    async def voicemail_callback(self, call_id: str, seat: int) -> dict:
        """``voicemail.callback``: call back who left the message, as ``missed.callback`` its entry."""
        await self._callback(seat, {"voicemail": call_id}, lambda con: self.missed.voicemail_target(con, call_id))
        return await self._missed_job(lambda con: {"voicemail": self.missed.message(con, call_id)})

    async def _callback(self, seat: int, origin: dict, target) -> None:
        async with self._callback_lock:
            entry, number = await self._missed_job(target)
            if seat not in self.logic.acd.by_seat:
                raise CommandError("not_found", f"seat: {seat} is not a configured seat")
            dial_out = getattr(self.logic, "dial_out", None)
            if dial_out is None:
                raise CommandError("unavailable", "click-to-dial (appliance.outbound) is not in this firmware")
            now = self.runtime.now
            try:
                call_id, actions = dial_out(seat, number, now, origin=origin)
            except ValueError as e:  # outbound.DialRefused: code not_found, conflict or bad_argument
                raise CommandError(getattr(e, "code", "conflict"), str(e)) from None
            self.runtime.apply(actions, now)
            ts = self.clock.epoch(now)
            # queued behind the call's first events and before its end: its result finds the entry calling back
            await self._missed_job(lambda con: self.missed.callback_started(con, entry, call_id, seat, ts))
