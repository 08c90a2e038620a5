"""When an SMS campaign sends: its schedule (now, a date, a yearly date, holidays, a cron rule) and allowed hours.

Pure calendar arithmetic on epoch seconds: nothing here reads the clock. APScheduler 3.11's ``CronTrigger`` does
the yearly and cron sums (``get_next_fire_time(previous, now)`` with tz-aware datetimes has no side effect); its
scheduler and threads are never used. Local times are in one IANA zone (zoneinfo), so 09:00 stays 09:00 across
a daylight-saving change (the epoch gap between two such days is then 23 or 25 hours).

Kinds of ``spec`` (``Schedule.from_spec``; unknown keys are refused):

- ``{"kind": "now"}``: fires once, at the campaign's creation time (``first(created) == created``);
  ``next_after`` is always None.
- ``{"kind": "date", "at": "2026-12-01 09:30"}``: once, at that local time.
- ``{"kind": "yearly", "month": 1, "day": 1, "time": "09:00"}``: every year; 2-29 fires in leap years only.
- ``{"kind": "holidays", "dates": ["2027-02-06", "2027-10-01"], "time": "09:00"}``: once on each listed date.
- ``{"kind": "cron", "rule": "0 9 * * mon-fri"}``: a 5-field crontab rule. The day of week must be written with
  names (mon..sun): APScheduler 3 counts 0 as Monday where crontab counts it as Sunday, so a number there would
  silently mean another day.

A local time that does not exist (skipped by a clock change) is refused in a date or holiday; a cron or yearly
time in such a gap fires at the same instant an hour later on the wall clock, as APScheduler computes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from ..errors import ConfigError

__all__ = ["KINDS", "Schedule", "AllowedHours", "zone"]

KINDS = ("now", "date", "yearly", "holidays", "cron")
_KEYS = {"now": (), "date": ("at",), "yearly": ("month", "day", "time"), "holidays": ("dates", "time"),
         "cron": ("rule",)}
_HHMM = re.compile(r"([0-9]{2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # 29 for February: leap years exist


def zone(tz: str) -> ZoneInfo:
    """The zoneinfo zone named ``tz`` (IANA, e.g. ``Asia/Shanghai``); ConfigError when there is none."""
    if not isinstance(tz, str) or not tz:
        raise ConfigError(f"tz: {tz!r} must be an IANA time zone name such as 'Asia/Shanghai'")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"tz: {tz!r} is not an IANA time zone name such as 'Asia/Shanghai'") from None


def _hhmm(key: str, value: object) -> tuple[int, int]:
    m = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        raise ConfigError(f"{key}: {value!r} is not HH:MM (00:00 to 23:59)")
    return int(m[1]), int(m[2])


def _date(key: str, value: object) -> date:
    try:
        if isinstance(value, str) and _DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ConfigError(f"{key}: {value!r} is not a date YYYY-MM-DD")


def _local(key: str, naive: datetime, tz: ZoneInfo) -> float:
    """Epoch seconds of local time ``naive`` in ``tz``; ConfigError when a clock change skips it."""
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != naive:
        raise ConfigError(f"{key}: {naive:%Y-%m-%d %H:%M} does not exist in {tz.key} (the clocks skip it)")
    return aware.timestamp()


def _int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key}: {value!r} must be an integer from {low} to {high}")
    return value


@dataclass(frozen=True, eq=False)
class Schedule:
    """A campaign's fire times; build it with ``from_spec``.

    Attributes
    ----------
    spec : dict
        The normalised spec (JSON-ready: what to store).
    tz : str
        The IANA zone its local times are in.
    """

    spec: dict
    tz: str
    _times: tuple = ()  # date, holidays: the fire times, epoch seconds, ascending
    _trigger: CronTrigger | None = None  # yearly, cron

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    @classmethod
    def from_spec(cls, spec: object, tz: str) -> Schedule:
        """Validate ``spec`` (see the module's docstring); ConfigError naming the bad key and value."""
        zi = zone(tz)
        if not isinstance(spec, dict):
            raise ConfigError(f"schedule: {spec!r} must be an object with a 'kind'")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"schedule.kind: {kind!r} is not one of {', '.join(KINDS)}")
        allowed = ("kind", *_KEYS[kind])
        for key in spec:
            if key not in allowed:
                raise ConfigError(f"schedule.{key}: unknown key for kind {kind!r} (allowed: {', '.join(allowed)})")
        for key in allowed:
            if key not in spec:
                raise ConfigError(f"schedule.{key}: missing (kind {kind!r} needs {', '.join(allowed[1:])})")
        if kind == "now":
            return cls({"kind": "now"}, tz)
        if kind == "date":
            at = spec["at"]
            day, _, hm = at.partition(" ") if isinstance(at, str) else ("", "", "")
            if not _DATE.fullmatch(day) or not _HHMM.fullmatch(hm):
                raise ConfigError(f"schedule.at: {at!r} is not a local time YYYY-MM-DD HH:MM")
            d, (h, m) = _date("schedule.at", day), _hhmm("schedule.at", hm)
            when = _local("schedule.at", datetime(d.year, d.month, d.day, h, m), zi)
            return cls({"kind": "date", "at": at}, tz, (when,))
        if kind == "yearly":
            month = _int("schedule.month", spec["month"], 1, 12)
            day = _int("schedule.day", spec["day"], 1, _DAYS_IN_MONTH[month - 1])
            h, m = _hhmm("schedule.time", spec["time"])
            trigger = CronTrigger(month=month, day=day, hour=h, minute=m, second=0, timezone=zi)
            return cls({"kind": "yearly", "month": month, "day": day, "time": spec["time"]}, tz, (), trigger)
        if kind == "holidays":
            dates = spec["dates"]
            if not isinstance(dates, list) or not dates:
                raise ConfigError(f"schedule.dates: {dates!r} must be a non-empty list of dates YYYY-MM-DD")
            days = sorted({_date(f"schedule.dates[{i}]", d) for i, d in enumerate(dates)})
            h, m = _hhmm("schedule.time", spec["time"])
            times = tuple(_local("schedule.dates", datetime(d.year, d.month, d.day, h, m), zi) for d in days)
            return cls({"kind": "holidays", "dates": [d.isoformat() for d in days], "time": spec["time"]},
                       tz, times)
        rule = spec["rule"]
        if not isinstance(rule, str):
            raise ConfigError(f"schedule.rule: {rule!r} must be a crontab rule such as '0 9 * * mon-fri'")
        fields = rule.split()
        if len(fields) == 5 and re.search(r"[0-9]", fields[4]):
            raise ConfigError(f"schedule.rule: {rule!r}: write the day of week with names (mon-fri, sun), not "
                              f"numbers ({fields[4]!r}): APScheduler 3 counts 0 as Monday, crontab as Sunday")
        try:
            trigger = CronTrigger.from_crontab(rule, timezone=zi)
        except ValueError as e:
            raise ConfigError(f"schedule.rule: {rule!r} is not a valid crontab rule: {e}") from None
        return cls({"kind": "cron", "rule": " ".join(fields)}, tz, (), trigger)

    def next_after(self, after: float) -> float | None:
        """The first fire time strictly after ``after`` (epoch seconds), None when there is none any more."""
        if self._trigger is not None:
            start = datetime.fromtimestamp(after, zone(self.tz))
            # previous == now: APScheduler starts one microsecond later and rounds up to the next whole second
            nxt = self._trigger.get_next_fire_time(start, start)
            return None if nxt is None else nxt.timestamp()
        return next((t for t in self._times if t > after), None)

    def first(self, created: float) -> float | None:
        """The first fire time of a campaign created at ``created``: ``created`` itself for ``now``, else
        ``next_after(created)`` (None: a date or the last holiday already past, a rule that never fires)."""
        return float(created) if self.kind == "now" else self.next_after(created)


@dataclass(frozen=True)
class AllowedHours:
    """The local hours of the day in which campaign SMS may be handed to the outbox: ``start <= t < end``.

    Attributes
    ----------
    start, end : int
        Seconds after local midnight; ``end`` may be 86400 (``24:00``). A window never wraps midnight.
    """

    start: int
    end: int

    @classmethod
    def parse(cls, text: object) -> AllowedHours:
        """``"08:00-21:00"``; ``"00:00-24:00"`` is always. An empty, reversed or wrapping window is refused."""
        m = re.fullmatch(r"([0-9]{2}:[0-9]{2})-([0-9]{2}:[0-9]{2})", text) if isinstance(text, str) else None
        if m is None:
            raise ConfigError(f"allowed_hours: {text!r} is not HH:MM-HH:MM (e.g. '08:00-21:00')")
        h1, m1 = _hhmm("allowed_hours", m[1])
        h2, m2 = (24, 0) if m[2] == "24:00" else _hhmm("allowed_hours", m[2])
        start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
        if start == end:
            raise ConfigError(f"allowed_hours: {text!r} is empty; use '00:00-24:00' for always")
        if start > end:
            raise ConfigError(f"allowed_hours: {text!r} ends before it starts; a window may not wrap midnight")
        return cls(start, end)

    @property
    def text(self) -> str:
        return "%02d:%02d-%02d:%02d" % (self.start // 3600, self.start // 60 % 60, self.end // 3600,
                                        self.end // 60 % 60)

    def contains(self, epoch: float, tz: str) -> bool:
        """Whether ``epoch`` (seconds) is inside the window, in local time of zone ``tz``."""
        t = datetime.fromtimestamp(epoch, zone(tz))
        second = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
        return self.start <= second < self.end

    def next_open(self, epoch: float, tz: str) -> float:
        """The earliest time >= ``epoch`` inside the window: ``epoch`` itself, or a later day's start."""
        if self.contains(epoch, tz):
            return float(epoch)
        zi = zone(tz)
        day = datetime.fromtimestamp(epoch, zi).date()
        h, m = divmod(self.start // 60, 60)
        for _ in range(3):  # today's opening if still ahead, else tomorrow's
            # a start the clocks skip maps (fold 0) to the instant an hour later, inside the window
            opening = datetime(day.year, day.month, day.day, h, m, tzinfo=zi).timestamp()
            if opening >= epoch:
                return opening
            day = date.fromordinal(day.toordinal() + 1)
        raise AssertionError("unreachable: a window opens every day")  # pragma: no cover
