"""SMS campaigns (短信群发): a template sent to a list of numbers or a customer group, now or on a schedule,
within allowed hours, skipping numbers that opted out; sans-I/O.

``CampaignRunner`` keeps nothing of its own between calls but notes of which waits it has reported and which
campaigns it held back: the campaigns live in ``SmsStore``, so a restart carries on where the file says. The
caller drives it with ``step(now, add, backlog)`` at ``next_deadline(now)`` and publishes the events it returns;
``add`` puts one SMS in the outbox (``Outbox.add`` with ``now`` bound), ``backlog(campaign_id)`` says how many of
the campaign's messages are still queued or being sent there (``Outbox.pending``). The runner never reads the clock.

Pacing: a running campaign adds its next batch only while its backlog is below ``batch``, so about one batch
waits in the outbox and the rest is added as the transport drains it (a modem sends 6 a minute). The allowed hours
and opt-outs, checked when a message is added, then hold for nearly all of a campaign: nothing is added after the
hours close, and a recipient who replies TD is skipped by every later batch (what already waits in the outbox
still goes). A campaign held back is looked at again ``RECHECK_S`` later (``next_deadline``). Without
``backlog`` every step adds a batch.

A run: a scheduled campaign whose ``next_run_at`` has come starts a run (its recipients fixed for the run: the
list, or the group's customers as they are at that moment). Then, while the local time is inside the allowed
hours, each step takes up to ``batch`` recipients from the cursor. For each one, in this order: a group customer
whose number cannot take an SMS (not a mobile) counts ``bad_number``; an opted-out number counts ``opted_out``;
a field without a value (``{客户姓名}`` for a listed number with no customer record) counts ``missing_value``;
``add`` refusing the message (``bad_argument``: too long with this customer's values) counts ``refused``; the
rest are added with the message id ``c-{campaign id}-{run}-{index}``, counted ``added``. The cursor moves in the
store only after the batch's adds: a crash in between repeats the adds with the same ids, which the outbox takes
as the same message (or, if the text changed meanwhile, refuses with ``conflict``: taken as already added).

Fields: ``{产品}`` and ``{坐席}`` from the campaign's fixed ``values`` (refused at creation when missing);
``{日期}`` from ``values["date"]`` ("YYYY-MM-DD") or else the local date the run started; ``{客户姓名}`` and
``{公司}`` from the recipient's customer record; ``{号码}`` the recipient's number. The template is read at each
run, so an edit applies to later batches and runs.

A run is over once every recipient was handled (its last batch may still wait in the outbox). After a run:
``scheduled`` again at ``schedule.next_after(now)``, or ``done`` when there is no later fire time
(``now`` and ``date`` schedules, the last holiday). Fire times missed while the box was off give one late run,
not one run each; fire times that pass during a long run are skipped, so runs never overlap.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Callable

from ..apischema import CommandError
from ..errors import ConfigError
from .outbox import VIAS
from .schedule import AllowedHours, Schedule, zone
from .sqlfile import bad as _bad, check_now as _check_now
from .store import COUNTS, SmsStore
from .templates import FIELDS, Template, opt_out_footer, render

__all__ = ["CampaignRunner", "MAX_RECIPIENTS", "FIXED_VALUES", "RECHECK_S"]

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10000
FIXED_VALUES = ("product", "date", "agent")  # keys ``values`` may give; the others come from each recipient
SMS_KINDS = ("mobile", "international")  # number kinds that can receive an SMS
MAX_VALUE = 200
RECHECK_S = 5.0  # a campaign held back by its backlog is looked at again this much later




class CampaignRunner:
    """Creates SMS campaigns and runs them in steps.

    Parameters
    ----------
    store : SmsStore
    customers : appliance.caller.CustomerStore
        Where group recipients and per-recipient values (name, company) come from.
    tz : str
        IANA zone of schedules and allowed hours (``Asia/Shanghai``).
    allowed_hours : AllowedHours or str
        When campaign SMS may be added to the outbox (``"08:00-21:00"``).
    footer : bool
        Append ``templates.opt_out_footer()`` (回复TD退订) to every text not already ending with it.
    batch : int
        Most recipients handled by one campaign in one step.
    default_via : str, optional
        The transport passed to ``add`` for a campaign whose ``via`` is None (None passes None on).
    """

    def __init__(self, store: SmsStore, customers, tz: str, allowed_hours: AllowedHours | str,
                 footer: bool = True, batch: int = 50, default_via: str | None = None) -> None:
        zone(tz)
        if isinstance(allowed_hours, str):
            allowed_hours = AllowedHours.parse(allowed_hours)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"sms.campaign batch: {batch!r} must be an integer >= 1")
        if default_via is not None and default_via not in VIAS:
            raise ConfigError(f"sms.campaign default_via: {default_via!r} is not one of {', '.join(VIAS)}")
        self.store, self.customers, self.tz, self.hours = store, customers, tz, allowed_hours
        self.footer, self.batch, self.default_via = bool(footer), batch, default_via
        self._waiting: set[tuple[int, int]] = set()  # (campaign id, run) whose wait was reported
        # (campaign id, run, cursor) the last step held back by its backlog -> that step's now
        self._held: dict[tuple[int, int, int], float] = {}

    # -- creation ----------------------------------------------------------------------------------------------

    def _recipients(self, recipients: object) -> dict:
        if not isinstance(recipients, dict) or len(recipients) != 1 or not {"numbers", "group"} >= set(recipients):
            raise _bad(f"recipients: {recipients!r} must be {{\"numbers\": [...]}} or {{\"group\": ...}}")
        if "group" in recipients:
            group = recipients["group"]
            if not (group in ("all", "vip") or isinstance(group, str) and group.startswith("company:")
                    and group[8:].strip()):
                raise _bad(f"recipients.group: {group!r} is not 'all', 'vip' or 'company:<name>'")
            return {"group": group}
        numbers = recipients["numbers"]
        if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_RECIPIENTS:
            raise _bad(f"recipients.numbers: must be a list of 1 to {MAX_RECIPIENTS} numbers")
        out: dict[str, None] = {}  # ordered; a number listed twice is sent once
        for i, raw in enumerate(numbers):
            key, kind = self._kind(raw)
            if kind not in SMS_KINDS:
                raise _bad(f"recipients.numbers[{i}]: {raw!r} is not a mobile number")
            out[key] = None
        return {"numbers": list(out)}

    def _kind(self, raw: object) -> tuple[str, str]:
        try:
            key = self.store.number(raw)
        except CommandError:
            return "", "unknown"
        return key, self.store.number_kind(key)

    def _values(self, values: object, fields: tuple[str, ...], template: str) -> dict:
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise _bad(f"values: {values!r} must be an object keyed by {', '.join(FIXED_VALUES)}")
        out = {}
        for key, value in values.items():
            if key not in FIXED_VALUES:
                raise _bad(f"values.{key}: unknown; fixed values are {', '.join(FIXED_VALUES)} (name, company "
                           "and number come from each recipient)")
            if isinstance(value, date) and key == "date":
                value = value.isoformat()
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE:
                raise _bad(f"values.{key}: {value!r} must be a non-empty string of at most {MAX_VALUE} characters")
            if key == "date":
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise _bad(f"values.date: {value!r} is not a date YYYY-MM-DD") from None
            out[key] = value
        for name in fields:
            key = FIELDS[name]
            if key in ("product", "agent") and key not in out:
                raise _bad(f"values.{key}: template {template!r} uses {{{name}}}; give its value")
        return out

    def create(self, name: str, template: str, recipients: dict, schedule: dict, values: dict | None,
               via: str | None, now: float) -> dict:
        """A new campaign, ``scheduled`` for its schedule's first fire time; CommandError naming a bad argument
        (bad_argument), a template not saved (not_found) or a name taken (conflict)."""
        now = _check_now(now)
        t = self.store.template(template) if isinstance(template, str) else None
        if t is None:
            raise _bad(f"template: {template!r} must be the name of a saved template")
        recipients = self._recipients(recipients)
        fixed = self._values(values, tuple(t["fields"]), template)
        try:
            sched = Schedule.from_spec(schedule, self.tz)
        except ConfigError as e:
            raise _bad(str(e)) from None
        first = sched.first(now)
        if first is None:
            raise _bad(f"schedule: {sched.spec} has no fire time after now")
        return self.store.add_campaign(name, template, recipients, sched.spec, fixed, via, first, now)

    def cancel(self, name: str, now: float) -> dict:
        return self.store.cancel_campaign(name, now)

    def campaigns(self) -> list[dict]:
        return self.store.campaigns()

    def campaign(self, name: str) -> dict:
        return self.store.campaign(name)

    # -- running -----------------------------------------------------------------------------------------------

    def _resolve(self, recipients: dict) -> list[str]:
        """This run's recipients: the list, or the group's customers now (national numbers, by number)."""
        if "numbers" in recipients:
            return list(recipients["numbers"])
        group = recipients["group"]
        return [c.number for c in self.customers.all()
                if group == "all" or (group == "vip" and c.vip) or (group == f"company:{c.company}")]

    @staticmethod
    def _event(c: dict, **more) -> dict:
        return {"event": "sms.campaign", "name": c["name"], "state": c["state"], "run": c["run"],
                "counts": c["counts"], **more}

    def step(self, now: float, add: Callable[..., str],
             backlog: Callable[[str], int] | None = None) -> list[dict]:
        """Start the runs that are due and send one batch of each running campaign, when the hours allow and
        (given ``backlog``) fewer than ``batch`` of its messages wait in the outbox; the ``sms.campaign`` events
        to publish."""
        now, events = _check_now(now), []
        for c in self.store.campaigns(("scheduled",)):
            if c["next_run_at"] is not None and c["next_run_at"] <= now:
                c = self.store.start_run(c["id"], self._resolve(c["recipients"]), now)
                events.append(self._event(c))
        self._held = {}
        for c in self.store.campaigns(("running",)):
            if c["cursor"] < c["run_size"]:
                if not self.hours.contains(now, self.tz):
                    if (c["id"], c["run"]) not in self._waiting:
                        self._waiting.add((c["id"], c["run"]))
                        events.append(self._event(c, waiting=True, until=self.hours.next_open(now, self.tz)))
                    continue
                self._waiting.discard((c["id"], c["run"]))
                if backlog is not None and backlog(str(c["id"])) >= self.batch:
                    self._held[(c["id"], c["run"], c["cursor"])] = now
                    continue
                c = self._batch(c, now, add)
                if c["cursor"] < c["run_size"]:
                    events.append(self._event(c))
                    continue
            nxt = Schedule.from_spec(c["schedule"], self.tz).next_after(now)
            c = self.store.end_run(c["id"], c["run"], nxt, now)
            events.append(self._event(c, next_run_at=nxt))
        return events

    def _batch(self, c: dict, now: float, add: Callable[..., str]) -> dict:
        """Send the next batch of running campaign ``c``; the campaign after its cursor moved."""
        numbers = self.store.run_numbers(c["id"], c["cursor"], self.batch)
        opted = self.store.opted_out_among(numbers)
        t = self.store.template(c["template"])
        tmpl = Template(t["name"], t["text"])
        fixed = dict(c["values"])
        fixed["date"] = (date.fromisoformat(fixed["date"]) if "date" in fixed
                         else datetime.fromtimestamp(c["run_started_at"], zone(self.tz)).date())
        footer = opt_out_footer() if self.footer else ""
        via = c["via"] or self.default_via
        counts = dict.fromkeys(COUNTS, 0)
        for index, number in enumerate(numbers, c["cursor"]):
            if self.store.number_kind(number) not in SMS_KINDS:
                counts["bad_number"] += 1
                continue
            if number in opted:
                counts["opted_out"] += 1
                continue
            customer = self.customers.lookup(number)
            values = fixed | {"number": number, "customer_name": customer.name if customer else "",
                              "company": customer.company if customer else ""}
            try:
                text = render(tmpl, values)
            except ConfigError:
                counts["missing_value"] += 1
                continue
            if footer and not text.endswith(footer):
                text += footer
            try:
                add(to=number, text=text, via=via, msg_id=f"c-{c['id']}-{c['run']}-{index}", campaign_id=str(c["id"]))
            except CommandError as e:
                if e.code == "bad_argument":
                    log.warning("sms campaign %r: the outbox refused the SMS to %s: %s", c["name"], number, e)
                    counts["refused"] += 1
                    continue
                if e.code != "conflict":  # conflict: this msg_id was added before a crash
                    raise
            counts["added"] += 1
        return self.store.advance(c["id"], c["run"], c["cursor"], c["cursor"] + len(numbers), counts, now)

    def next_deadline(self, now: float) -> float | None:
        """When ``step`` has something to do: the earliest ``next_run_at`` of a scheduled campaign, ``now`` while
        a running campaign can take a batch (or has finished its recipients), ``RECHECK_S`` after the last step
        for one that step held back by its backlog, else the allowed hours' opening."""
        now = _check_now(now)
        times = [c["next_run_at"] for c in self.store.campaigns(("scheduled",)) if c["next_run_at"] is not None]
        for c in self.store.campaigns(("running",)):
            if c["cursor"] < c["run_size"] and not self.hours.contains(now, self.tz):
                times.append(self.hours.next_open(now, self.tz))
                continue
            held = self._held.get((c["id"], c["run"], c["cursor"]))
            # at most RECHECK_S ahead: a wall clock set back must not put the next look far off
            times.append(now if held is None else min(held, now) + RECHECK_S)
        return min(times, default=None)
