"""The control API's outbound commands: click-to-dial (``call.dial``) and progressive group calling
(``campaign.start``, ``campaign.status``, ``campaign.pause``, ``campaign.resume``, ``campaign.stop``).

A part of ``Core``: each command runs the call logic's own functions (``appliance.outbound``,
``appliance.campaign``) at the runtime's ``now`` and applies their actions, as ``appliance.seatapi`` does.
Registering the commands also brings back the campaigns the journal saved as running or paused.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from .campaign import MAX_NUMBERS, RING_RANGE_S, Campaign
from .control import Arg, Bool, CommandError, Int, List, Str
from .outbound import RING_S, DialRefused


class Obj(Arg):
    """A JSON object, checked in detail by the logic (whose errors name the field)."""

    kind = "object"

    def allowed(self) -> str:
        return "a JSON object"

    def check(self, name: str, value: Any) -> dict:
        if not isinstance(value, dict):
            raise self.fail(name, value, "is not an object")
        return value


class OutboundCommands:
    def register_outbound_commands(self) -> None:
        reg = self.server.register
        seat = Int(1, 24)
        reg("call.dial", self.call_dial, {"seat": seat, "number": Str(32)})
        reg("campaign.start", self.campaign_start, {
            "name": Str(40), "numbers": List(Str(32), max_len=MAX_NUMBERS),
            "seats": List(seat, max_len=24, required=False), "queue": Str(40, required=False),
            "hours": Obj(required=False), "holidays": List(Str(10), max_len=366, required=False, default=[]),
            "retries": Obj(required=False), "dnc": List(Str(32), max_len=MAX_NUMBERS, required=False, default=[]),
            "ring_s": Int(*RING_RANGE_S, required=False, default=int(RING_S))})
        reg("campaign.status", self.campaign_status, {"name": Str(40, required=False),
                                                      "numbers": Bool(required=False, default=False)})
        for verb in ("stop", "pause", "resume"):
            reg(f"campaign.{verb}", getattr(self, f"campaign_{verb}"), {"name": Str(40)})
        now = self.runtime.now
        self.runtime.apply(self.logic.restore_campaigns(self.journal.campaigns(), now), now)

    def call_dial(self, seat: int, number: str) -> dict:
        """``call.dial``: the seat's phone rings; when the agent answers, ``number`` is dialled on a free channel."""
        now = self.runtime.now
        try:
            call_id, actions = self.logic.dial_out(seat, number, now)
        except DialRefused as e:
            raise CommandError(e.code, f"{e.arg}: {e}") from None
        self.runtime.apply(actions, now)
        call = self.logic.by_id.get(call_id)
        return {"call_id": call_id, "seat": seat, "number": call.number if call is not None else None}

    def _outbound_run(self, fn):
        """``fn(now)`` at the runtime's now; its ValueError as the command's error."""
        now = self.runtime.now
        try:
            result = fn(now)
        except ValueError as e:
            text = str(e)
            code = "not_found" if text.startswith("name: no campaign") else \
                "conflict" if text.startswith("name: campaign") else "bad_argument"
            raise CommandError(code, text) from None
        return result, now

    async def campaign_start(self, name: str, numbers: list[str], seats: list[int] | None = None,
                             queue: str | None = None, hours: dict | None = None, holidays: list[str] = (),
                             retries: dict | None = None, dnc: list[str] = (), ring_s: int = int(RING_S)) -> dict:
        """``campaign.start``: dial ``numbers`` at the pace of the free agents of ``seats`` or ``queue``. The numbers
        are normalised off the loop (thousands take a fraction of a second), then the campaign starts."""
        self._outbound_run(lambda now: self.logic.check_campaign(name, seats, queue))
        make = functools.partial(Campaign, name, numbers, self.runtime.now, home_area=self.logic.area_code,
                                 seats=seats, queue=queue, hours=hours, holidays=list(holidays or ()),
                                 retries=retries, dnc=list(dnc or ()), ring_s=ring_s)
        try:
            camp = await asyncio.get_running_loop().run_in_executor(None, make)
        except ValueError as e:
            raise CommandError("bad_argument", str(e)) from None
        (status, actions), now = self._outbound_run(lambda now: self.logic.add_campaign(camp, now))
        self.runtime.apply(actions, now)
        return status

    def campaign_status(self, name: str | None = None, numbers: bool = False) -> dict:
        """``campaign.status``: one campaign (with each number's state if ``numbers``) or all of them."""
        now = self.runtime.now
        try:
            return self.logic.campaign_status(now, name, numbers)
        except ValueError as e:
            raise CommandError("not_found", str(e)) from None

    def _campaign_change(self, name: str, fn, **kw) -> dict:
        actions, now = self._outbound_run(lambda now: fn(name, now, **kw))
        self.runtime.apply(actions, now)
        return self.logic.campaign_status(now, name)

    def campaign_stop(self, name: str) -> dict:
        """``campaign.stop``: no more numbers are dialled (calls being made finish); it cannot be resumed."""
        return self._campaign_change(name, self.logic.stop_campaign)

    def campaign_pause(self, name: str) -> dict:
        """``campaign.pause``: no more numbers are dialled until ``campaign.resume``."""
        return self._campaign_change(name, self.logic.stop_campaign, pause=True)

    def campaign_resume(self, name: str) -> dict:
        return self._campaign_change(name, self.logic.resume_campaign)
