"""Who is calling, for the agent's screen: the control API's ``customer.lookup``.

A part of ``Core``. The agent page gets ``call.ringing`` (with the caller's number)
as an event and asks this command for the customer record (``appliance.caller.
CustomerStore``), the number's area and kind, and the caller's last calls from the
journal. Both are indexed SQLite reads of a few milliseconds, run on the control
API's turn of the loop, never inside the call logic.
"""

from __future__ import annotations

import dataclasses

from .caller import area, normalise
from .control import CommandError, Int, Str

HISTORY_FIELDS = ("call_id", "start_ts", "disposition", "queue", "seat", "agent", "wait_s", "talk_s", "recording")


class ScreenPop:
    def register_screen_commands(self) -> None:
        self.server.register("customer.lookup", self.customer_lookup,
                             {"number": Str(32), "history": Int(0, 100, required=False, default=10)})

    def customer_lookup(self, number: str, history: int = 10) -> dict:
        """``customer.lookup``: the customer record, area and recent calls of a calling number."""
        n = normalise(number, home_area=self.customers.home_area)
        if n is None or n.kind == "unknown":
            raise CommandError("bad_argument", f"number: {number!r} is not a phone number we can normalise")
        customer = self.customers.lookup(n)
        calls = self.journal.calls_from(n.national, limit=history)
        return {"number": n.national, "kind": n.kind, "area": area(n, "zh"),
                "customer": dataclasses.asdict(customer) if customer is not None else None,
                "history": [{k: c.get(k) for k in HISTORY_FIELDS} for c in calls]}
