"""Campaign schedules and allowed hours: exact fire times, DST changes, errors that name the bad value."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.errors import ConfigError
from appliance.sms.schedule import AllowedHours, Schedule

SH, BER = "Asia/Shanghai", "Europe/Berlin"


def at(tz, *args):
    return datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()


def test_now_fires_at_creation_only():
    s = Schedule.from_spec({"kind": "now"}, SH)
    assert s.spec == {"kind": "now"}
    assert s.first(1000.5) == 1000.5
    assert s.next_after(1000.5) is None


def test_date_is_local_time_once():
    s = Schedule.from_spec({"kind": "date", "at": "2026-12-01 09:30"}, SH)
    fire = at(SH, 2026, 12, 1, 9, 30)
    assert fire == datetime(2026, 12, 1, 1, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    assert s.first(fire - 1) == fire
    assert s.next_after(fire) is None
    assert s.first(fire + 1) is None


def test_yearly_exact_and_across_dst():
    s = Schedule.from_spec({"kind": "yearly", "month": 1, "day": 1, "time": "09:00"}, SH)
    assert s.next_after(at(SH, 2026, 11, 28, 12, 0)) == at(SH, 2027, 1, 1, 9, 0)
    assert s.next_after(at(SH, 2027, 1, 1, 9, 0)) == at(SH, 2028, 1, 1, 9, 0)  # strictly after
    assert s.next_after(at(SH, 2027, 1, 1, 8, 59, 59)) == at(SH, 2027, 1, 1, 9, 0)
    # Berlin: a summer date is 09:00 CEST (UTC+2), a winter one 09:00 CET (UTC+1)
    b = Schedule.from_spec({"kind": "yearly", "month": 7, "day": 1, "time": "09:00"}, BER)
    summer = b.next_after(at(BER, 2027, 1, 1))
    assert summer == datetime(2027, 7, 1, 7, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    w = Schedule.from_spec({"kind": "yearly", "month": 12, "day": 1, "time": "09:00"}, BER)
    assert w.next_after(summer) == datetime(2027, 12, 1, 8, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def test_yearly_feb_29_only_in_leap_years():
    s = Schedule.from_spec({"kind": "yearly", "month": 2, "day": 29, "time": "10:00"}, SH)
    assert s.next_after(at(SH, 2026, 11, 28)) == at(SH, 2028, 2, 29, 10, 0)
    assert s.next_after(at(SH, 2028, 2, 29, 10, 0)) == at(SH, 2032, 2, 29, 10, 0)


def test_holidays_each_date_once_sorted():
    s = Schedule.from_spec({"kind": "holidays", "dates": ["2027-10-01", "2027-02-06", "2027-10-01"],
                            "time": "09:00"}, SH)
    assert s.spec == {"kind": "holidays", "dates": ["2027-02-06", "2027-10-01"], "time": "09:00"}
    first = s.first(at(SH, 2026, 11, 28))
    assert first == at(SH, 2027, 2, 6, 9, 0)
    assert s.next_after(first) == at(SH, 2027, 10, 1, 9, 0)
    assert s.next_after(at(SH, 2027, 10, 1, 9, 0)) is None


def test_cron_weekdays_and_dst_change():
    s = Schedule.from_spec({"kind": "cron", "rule": "0  9 * * mon-fri"}, SH)
    assert s.spec == {"kind": "cron", "rule": "0 9 * * mon-fri"}
    # 2026-11-28 is a Saturday: next Monday 09:00
    assert s.next_after(at(SH, 2026, 11, 28, 12, 0)) == at(SH, 2026, 11, 30, 9, 0)
    assert s.next_after(at(SH, 2026, 11, 30, 9, 0)) == at(SH, 2026, 12, 1, 9, 0)
    b = Schedule.from_spec({"kind": "cron", "rule": "0 9 * * *"}, BER)
    sat = at(BER, 2027, 3, 27, 9, 0)
    sun = b.next_after(sat)
    assert sun == at(BER, 2027, 3, 28, 9, 0)
    assert sun - sat == 23 * 3600  # clocks went forward that night
    autumn = at(BER, 2027, 10, 30, 9, 0)
    assert b.next_after(autumn) - autumn == 25 * 3600


def test_cron_without_any_fire_time():
    s = Schedule.from_spec({"kind": "cron", "rule": "0 0 30 2 *"}, SH)
    assert s.first(at(SH, 2026, 11, 28)) is None


@pytest.mark.parametrize("spec, message", [
    ({"kind": "yearly", "month": 1, "day": 1, "time": "25:00"}, "schedule.time: '25:00' is not HH:MM (00:00 to 23:59)"),
    ({"kind": "yearly", "month": 2, "day": 30, "time": "09:00"}, "schedule.day: 30 must be an integer from 1 to 29"),
    ({"kind": "yearly", "month": 13, "day": 1, "time": "09:00"}, "schedule.month: 13 must be an integer from 1 to 12"),
    ({"kind": "weekly"}, "schedule.kind: 'weekly' is not one of now, date, yearly, holidays, cron"),
    ({"kind": "now", "at": "x"}, "schedule.at: unknown key for kind 'now' (allowed: kind)"),
    ({"kind": "date"}, "schedule.at: missing (kind 'date' needs at)"),
    ({"kind": "date", "at": "2026-12-01T09:30"}, "schedule.at: '2026-12-01T09:30' is not a local time YYYY-MM-DD HH:MM"),
    ({"kind": "date", "at": "2026-02-30 09:30"}, "schedule.at: '2026-02-30' is not a date YYYY-MM-DD"),
    ({"kind": "holidays", "dates": [], "time": "09:00"},
     "schedule.dates: [] must be a non-empty list of dates YYYY-MM-DD"),
    ({"kind": "holidays", "dates": ["2027-02-06", "2027/10/01"], "time": "09:00"},
     "schedule.dates[1]: '2027/10/01' is not a date YYYY-MM-DD"),
    ({"kind": "cron", "rule": "0 9 * *"},
     "schedule.rule: '0 9 * *' is not a valid crontab rule: Wrong number of fields; got 4, expected 5"),
    ({"kind": "cron", "rule": "61 9 * * *"}, "schedule.rule: '61 9 * * *' is not a valid crontab rule: Error "
     "validating expression '61': the last value (61) is higher than the maximum value (59)"),
    ({"kind": "cron", "rule": "0 9 * * 1-5"}, "schedule.rule: '0 9 * * 1-5': write the day of week with names "
     "(mon-fri, sun), not numbers ('1-5'): APScheduler 3 counts 0 as Monday, crontab as Sunday"),
    ("now", "schedule: 'now' must be an object with a 'kind'"),
])
def test_bad_specs_name_the_key(spec, message):
    with pytest.raises(ConfigError) as e:
        Schedule.from_spec(spec, SH)
    assert str(e.value) == message


def test_date_skipped_by_dst_and_bad_zone():
    with pytest.raises(ConfigError) as e:
        Schedule.from_spec({"kind": "date", "at": "2027-03-28 02:30"}, BER)
    assert str(e.value) == "schedule.at: 2027-03-28 02:30 does not exist in Europe/Berlin (the clocks skip it)"
    with pytest.raises(ConfigError) as e:
        Schedule.from_spec({"kind": "now"}, "Mars/Olympus")
    assert str(e.value) == "tz: 'Mars/Olympus' is not an IANA time zone name such as 'Asia/Shanghai'"


def test_allowed_hours_window():
    h = AllowedHours.parse("08:00-21:00")
    assert (h.start, h.end, h.text) == (8 * 3600, 21 * 3600, "08:00-21:00")
    assert h.contains(at(SH, 2026, 11, 28, 8, 0), SH)
    assert h.contains(at(SH, 2026, 11, 28, 20, 59, 59), SH)
    assert not h.contains(at(SH, 2026, 11, 28, 21, 0), SH)
    assert not h.contains(at(SH, 2026, 11, 28, 7, 59, 59), SH)
    assert h.next_open(at(SH, 2026, 11, 28, 12, 0), SH) == at(SH, 2026, 11, 28, 12, 0)
    assert h.next_open(at(SH, 2026, 11, 28, 3, 0), SH) == at(SH, 2026, 11, 28, 8, 0)
    assert h.next_open(at(SH, 2026, 11, 28, 21, 0), SH) == at(SH, 2026, 11, 29, 8, 0)
    # Berlin, the night the clocks go forward: the opening is still 08:00 local
    assert h.next_open(at(BER, 2027, 3, 27, 22, 0), BER) == at(BER, 2027, 3, 28, 8, 0)
    always = AllowedHours.parse("00:00-24:00")
    assert always.contains(at(SH, 2026, 11, 28, 23, 59, 59), SH) and always.contains(at(SH, 2026, 11, 28), SH)


@pytest.mark.parametrize("text, message", [
    ("08:00-08:00", "allowed_hours: '08:00-08:00' is empty; use '00:00-24:00' for always"),
    ("21:00-08:00", "allowed_hours: '21:00-08:00' ends before it starts; a window may not wrap midnight"),
    ("8:00-21:00", "allowed_hours: '8:00-21:00' is not HH:MM-HH:MM (e.g. '08:00-21:00')"),
    ("08:00-24:30", "allowed_hours: '24:30' is not HH:MM (00:00 to 23:59)"),
    ("", "allowed_hours: '' is not HH:MM-HH:MM (e.g. '08:00-21:00')"),
])
def test_allowed_hours_refused(text, message):
    with pytest.raises(ConfigError) as e:
        AllowedHours.parse(text)
    assert str(e.value) == message
