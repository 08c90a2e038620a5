"""Internal dispatch SMS (内部派单短信): rules that text staff when something needs them, sans-I/O.

Three events can fire a rule (``sms_rules`` in the config, ``appliance.sms.settings``):

* ``complaint.assigned``: a bus event ``{"event": "complaint.assigned", "time": epoch, "data": {...}}``
  whose data has ``ticket`` (the work order id, required), ``department`` (the department's name as in
  the ``departments`` section) and ``number`` (the customer's number; missing or None: withheld). A
  rule with ``to_department`` also texts that department's ``mobile``.
* ``voicemail.left``: a message of ``appliance.missed.MissedCalls.messages``; heard ones are skipped.
* ``missed.unreturned``: an entry of ``MissedCalls.entries`` still waiting for a callback (state ``new``,
  or ``failed``: a callback did not reach the caller; ``calling_back`` is someone at work on it) whose
  last missed call is at least ``after_min`` minutes old.

A rule's ``id`` is made from what it does, not from where it stands in the list or what it says: the event,
its numbers (sorted) and ``department`` when it texts the assigned department (``missed.unreturned>13900001111``,
``complaint.assigned>13800000001,department``). Deleting, reordering or rewording rules changes no id, so a
restart texts nothing again; changing a rule's numbers makes it a new rule, which texts its recipients the
voicemails and missed calls still within ``horizon_s``. Two rules with the same event and the same recipients
have one id and count as one, on purpose: the same people are not told twice about one occurrence (the rule
that fires first, or comes first in the list, is the one sent).

The dispatcher keeps no memory: it answers every occurrence it is shown, each time. ``(Notice.rule,
Notice.key)`` is unique per message and stable, so the box makes each notice's outbox message id from them and
queues only a notice whose id the outbox does not have yet. ``key`` is the occurrence (the ticket and its
department, the voicemail's call id, the missed entry's id and last call time: a new missed call from the same
number later counts again) and the recipient. Occurrences older than ``horizon_s`` are not texted, so a new
rule or a box back from a long power cut does not text a backlog.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, tzinfo

from appliance.caller import normalise
from appliance.sms.templates import format_date

__all__ = ["DISPATCH_FIELDS", "EVENTS", "EVENT_FIELDS", "DispatchRule", "Notice", "Dispatcher", "sms_number",
           "WITHHELD"]

log = logging.getLogger(__name__)

# Field name in a rule's text -> what it says.
DISPATCH_FIELDS = {"号码": "the caller's or customer's number", "时间": "HH:MM of the event", "日期": "date of the event",
                   "部门": "the department", "工单": "the work order id", "次数": "missed calls from the number",
                   "信箱": "the voicemail box", "时长": "voicemail length in seconds"}
EVENT_FIELDS = {"complaint.assigned": ("号码", "时间", "日期", "部门", "工单"),
                "voicemail.left": ("号码", "时间", "日期", "信箱", "时长"),
                "missed.unreturned": ("号码", "时间", "日期", "次数")}
EVENTS = tuple(EVENT_FIELDS)
UNRETURNED = ("new", "failed")  # missed.STATES an unreturned entry may be in
WITHHELD = "未显示号码"  # {号码} of a caller who withheld the number
HORIZON_S = 86400.0
_FIELD = re.compile(r"\{([^{}]*)\}")


def sms_number(text: str) -> str | None:
    """The number to text for ``text`` (national form: a mobile's 11 digits, or 00 + country code + number),
    None when it cannot receive SMS (a landline, a service number, no digits)."""
    number = normalise(text)
    if number is None or number.kind not in ("mobile", "international"):
        return None
    return number.national


@dataclass(frozen=True)
class DispatchRule:
    """One ``sms_rules`` item: ``to`` in the form ``sms_number`` gives, ``via`` None for the default transport."""

    event: str
    text: str
    to: tuple[str, ...] = ()
    to_department: bool = False
    after_min: int = 30
    via: str | None = None

    @property
    def id(self) -> str:
        """``event>recipients``, as the module says; shown in the outbox as origin ``dispatch:<id>``."""
        whom = sorted(set(self.to)) + (["department"] if self.to_department else [])
        return f"{self.event}>{','.join(whom)}"


@dataclass(frozen=True)
class Notice:
    """One SMS to queue: ``rule`` and ``key`` as the module says, ``via`` None for the default transport."""

    rule: str
    key: str
    to: str
    text: str
    via: str | None


class Dispatcher:
    """Turns events and list rows into ``Notice``s.

    Parameters
    ----------
    rules : list of DispatchRule
        The rules, in config order.
    tz : tzinfo or str
        The box's zone (or its IANA name, ``system.timezone``): ``{时间}`` and ``{日期}`` are wall-clock there.
    departments : dict
        Department name -> mobile as configured ("" for none; kept in ``sms_number`` form, "" if not a mobile).
    horizon_s : float
        Occurrences older than this are not texted (a missed entry: this long after it became due).
    """

    def __init__(self, rules: list[DispatchRule], tz: tzinfo | str, departments: dict[str, str],
                 horizon_s: float = HORIZON_S) -> None:
        self.rules, self.horizon_s = list(rules), horizon_s
        self.tz = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
        self.departments = {name: (sms_number(mobile) or "") if mobile else "" for name, mobile in departments.items()}

    def _of(self, event: str) -> list[DispatchRule]:
        return [r for r in self.rules if r.event == event]

    def _fields(self, ts: float, number: str | None) -> dict[str, str]:
        when = datetime.fromtimestamp(ts, self.tz)
        return {"号码": number or WITHHELD, "时间": when.strftime("%H:%M"), "日期": format_date(when.date())}

    def _notices(self, rule: DispatchRule, occurrence: str, values: dict[str, str],
                 department: str | None = None) -> list[Notice]:
        text = _FIELD.sub(lambda m: values[m.group(1)], rule.text)  # fields were checked against the event
        recipients = list(rule.to)
        if rule.to_department:
            mobile = self.departments.get(department or "")
            if mobile:
                recipients.append(mobile)
            elif department in self.departments:
                log.warning("sms rule %s: department %r has no mobile; not texted", rule.id, department)
            else:
                log.warning("sms rule %s: department %r is not in the departments section; not texted",
                            rule.id, department)
        seen: list[str] = []
        for to in recipients:
            if to not in seen:
                seen.append(to)
        return [Notice(rule.id, f"{occurrence}>{to}", to, text, rule.via) for to in seen]

    @staticmethod
    def _once(notices: list[Notice]) -> list[Notice]:
        """The notices without repeats of one (rule, key): rules sharing an id are one rule."""
        seen: set[tuple[str, str]] = set()
        out = []
        for n in notices:
            if (n.rule, n.key) not in seen:
                seen.add((n.rule, n.key))
                out.append(n)
        return out

    def on_event(self, event: dict, now: float) -> list[Notice]:
        """Notices for a bus event; only ``complaint.assigned`` fires rules, any other event gives none."""
        if event.get("event") != "complaint.assigned" or not self._of("complaint.assigned"):
            return []
        data = event.get("data") or {}
        ticket = data.get("ticket")
        if ticket in (None, ""):
            log.warning("complaint.assigned without a ticket: %r; no SMS", data)
            return []
        department = data.get("department")
        ts = event.get("time")
        values = {**self._fields(now if ts is None else ts, data.get("number")),
                  "部门": department or "", "工单": str(ticket)}
        out: list[Notice] = []
        for rule in self._of("complaint.assigned"):
            out += self._notices(rule, f"{ticket}@{department}", values, department)
        return self._once(out)

    def on_voicemails(self, messages: list[dict], now: float) -> list[Notice]:
        """Notices for voicemail messages (``MissedCalls.messages`` dicts) not yet heard."""
        out: list[Notice] = []
        for rule in self._of("voicemail.left"):
            for m in messages:
                if m["heard"] or now - m["ts"] > self.horizon_s:
                    continue
                seconds = m["seconds"]
                values = {**self._fields(m["ts"], m["number"] or m["caller"]), "信箱": m["box"] or "",
                          "时长": str(round(seconds)) if seconds is not None else "0"}
                out += self._notices(rule, str(m["call_id"]), values)
        return self._once(out)

    def on_missed(self, entries: list[dict], now: float) -> list[Notice]:
        """Notices for missed-call entries (``MissedCalls.entries`` dicts) left unreturned ``after_min``."""
        out: list[Notice] = []
        for rule in self._of("missed.unreturned"):
            for e in entries:
                overdue = now - e["last_ts"] - rule.after_min * 60
                if e["state"] not in UNRETURNED or overdue < 0 or overdue > self.horizon_s:
                    continue
                values = {**self._fields(e["last_ts"], e["number"]), "次数": str(e["count"])}
                out += self._notices(rule, f"{e['id']}@{e['last_ts']}", values)
        return self._once(out)
