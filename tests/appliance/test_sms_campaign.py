"""CampaignRunner with real files: a SmsStore, a CustomerStore and the Outbox as ``add``."""

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.apischema import CommandError
from appliance.caller import CustomerStore
from appliance.sms.campaign import RECHECK_S, CampaignRunner
from appliance.sms.outbox import Outbox
from appliance.sms.store import SmsStore

SH = "Asia/Shanghai"
ALWAYS = "00:00-24:00"


def at(*args):
    return datetime(*args, tzinfo=ZoneInfo(SH)).timestamp()


NOW = at(2026, 11, 30, 10, 0)  # a Monday


class Box:
    """The three files of one box, opened afresh by each instance (as after a restart)."""

    def __init__(self, tmp_path, hours=ALWAYS, batch=50, footer=True):
        self.store = SmsStore(tmp_path / "sms.db")
        self.customers = CustomerStore(tmp_path / "crm.db")
        self.outbox = Outbox(tmp_path / "outbox.db")
        self.runner = CampaignRunner(self.store, self.customers, SH, hours, footer=footer, batch=batch,
                                     default_via="modem")

    def step(self, now):
        return self.runner.step(now, functools.partial(self.outbox.add, now=now))

    def paced(self, now):
        """A step as the box makes it: paced by the campaign's backlog in the outbox."""
        return self.runner.step(now, functools.partial(self.outbox.add, now=now), self.backlog)

    def backlog(self, campaign_id):
        return sum(m.campaign_id == campaign_id and m.state in ("queued", "sending")
                   for m in self.outbox.list(limit=100000))

    def transmit(self, n, now, finish=True):
        """The transport takes the ``n`` oldest queued messages: sent, or left ``sending`` unless ``finish``."""
        for m in sorted(self.outbox.list("queued", limit=100000), key=lambda m: m.seq)[:n]:
            assert self.outbox.claim(m.id, now)
            if finish:
                self.outbox.handed_over(m.id, now)
                self.outbox.sent(m.id, f"ref-{m.id}", now)

    def sent(self):
        return sorted((m.id, m.to_number, m.text) for m in self.outbox.list(limit=100000))


def mobiles(n):
    return [f"1380000{i:04d}" for i in range(n)]


def test_opt_out_by_reply_is_honoured_by_a_later_campaign(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("促销", "{产品}今日特价", NOW)
    box.store.add_inbound("+8613800138000", "TD", NOW - 60, "modem", NOW - 60)
    c = box.runner.create("双十二", "促销", {"numbers": ["13800138000", "+86 139 0013 9000"]}, {"kind": "now"},
                          {"product": "茶叶"}, None, NOW)
    assert (c["state"], c["next_run_at"], c["recipients"]) == ("scheduled", NOW, {"numbers": ["13800138000",
                                                                                            "13900139000"]})
    events = box.step(NOW)
    assert box.sent() == [(f"c-{c['id']}-1-1", "13900139000", "茶叶今日特价回复TD退订")]
    counts = {"added": 1, "opted_out": 1, "missing_value": 0, "bad_number": 0, "refused": 0}
    assert events == [
        {"event": "sms.campaign", "name": "双十二", "state": "running", "run": 1,
         "counts": {"run": dict.fromkeys(counts, 0), "total": dict.fromkeys(counts, 0)}},
        {"event": "sms.campaign", "name": "双十二", "state": "done", "run": 1,
         "counts": {"run": counts, "total": counts}, "next_run_at": None}]
    assert box.outbox.get(f"c-{c['id']}-1-1").campaign_id == str(c["id"])
    assert box.runner.next_deadline(NOW) is None and box.step(NOW + 1) == []


def test_120_numbers_in_batches_of_50(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("t", "您好 回复TD退订", NOW)
    c = box.runner.create("c", "t", {"numbers": mobiles(120)}, {"kind": "now"}, {}, "smgp", NOW)
    assert [e["counts"]["run"]["added"] for e in box.step(NOW)] == [0, 50]
    assert box.runner.next_deadline(NOW) == NOW
    assert len(box.sent()) == 50 and box.runner.campaign("c")["cursor"] == 50
    assert [e["counts"]["run"]["added"] for e in box.step(NOW + 1)] == [100]
    done = box.step(NOW + 2)
    assert [(e["state"], e["counts"]["total"]["added"]) for e in done] == [("done", 120)]
    sent = box.sent()
    assert sorted(m[1] for m in sent) == mobiles(120)
    assert {m[0] for m in sent} == {f"c-{c['id']}-1-{i}" for i in range(120)}
    assert {m[2] for m in sent} == {"您好 回复TD退订"}  # the footer is not added twice
    assert {m.via for m in box.outbox.list(limit=200)} == {"smgp"}


def test_a_batch_is_added_only_while_less_than_a_batch_waits_in_the_outbox(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("t", "您好", NOW)
    c = box.runner.create("c", "t", {"numbers": mobiles(120)}, {"kind": "now"}, {}, None, NOW)
    cid = str(c["id"])
    assert [e["counts"]["run"]["added"] for e in box.paced(NOW)] == [0, 50]
    assert box.runner.next_deadline(NOW) == NOW  # not seen held yet
    assert box.paced(NOW + 1) == [] and box.backlog(cid) == 50
    assert box.runner.next_deadline(NOW + 1) == NOW + 1 + RECHECK_S  # held: not `now` on every pass
    assert box.runner.next_deadline(NOW + 3) == NOW + 1 + RECHECK_S
    assert box.runner.next_deadline(NOW - 3600) == NOW - 3600 + RECHECK_S  # a clock set back
    box = Box(tmp_path)  # a restart forgets the hold: one step finds it again
    assert box.runner.next_deadline(NOW + 2) == NOW + 2
    assert box.paced(NOW + 2) == [] and box.runner.next_deadline(NOW + 2) == NOW + 2 + RECHECK_S
    box.transmit(30, NOW + 300)
    assert box.backlog(cid) == 20 and box.runner.next_deadline(NOW + 300) == NOW + 2 + RECHECK_S
    assert [e["counts"]["run"]["added"] for e in box.paced(NOW + 300)] == [100]
    assert len(box.sent()) == 100 and box.backlog(cid) == 70
    assert box.paced(NOW + 301) == []
    box.transmit(20, NOW + 500)
    box.transmit(1, NOW + 500, finish=False)  # being sent still waits
    assert box.backlog(cid) == 50 and box.paced(NOW + 500) == [] and box.runner.campaign("c")["cursor"] == 100
    box.outbox.handed_over(f"c-{cid}-1-50", NOW + 501)
    box.outbox.sent(f"c-{cid}-1-50", "ref", NOW + 501)
    # the last 20 end the run at once: done while 69 still wait in the outbox
    assert [(e["state"], e["counts"]["run"]["added"]) for e in box.paced(NOW + 501)] == [("done", 120)]
    assert len(box.sent()) == 120 and box.backlog(cid) == 69 and box.runner.next_deadline(NOW + 501) is None


def test_a_reply_td_while_the_batch_before_waits_stops_the_later_message(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("t", "您好", NOW)
    c = box.runner.create("c", "t", {"numbers": mobiles(60)}, {"kind": "now"}, {}, None, NOW)
    box.paced(NOW)
    box.store.add_inbound(mobiles(60)[55], "TD", NOW + 60, "modem", NOW + 60)
    assert box.paced(NOW + 60) == []  # 50 wait: the last 10 are not added yet
    box.transmit(1, NOW + 61)
    assert [e["state"] for e in box.paced(NOW + 61)] == ["done"]
    assert box.runner.campaign("c")["counts"]["run"] == {"added": 59, "opted_out": 1, "missing_value": 0,
                                                         "bad_number": 0, "refused": 0}
    assert f"c-{c['id']}-1-55" not in {m[0] for m in box.sent()} and len(box.sent()) == 59


def test_allowed_hours_close_while_a_backlog_waits_nothing_is_added_after_2100(tmp_path):
    box = Box(tmp_path, hours="08:00-21:00")
    box.store.save_template("t", "您好", NOW)
    start, nine, morning = at(2026, 11, 30, 20, 50), at(2026, 11, 30, 21, 0), at(2026, 12, 1, 8, 0)
    c = box.runner.create("晚", "t", {"numbers": mobiles(120)}, {"kind": "date", "at": "2026-11-30 20:50"}, {},
                          None, NOW)
    assert [e["counts"]["run"]["added"] for e in box.paced(start)] == [0, 50]
    assert box.paced(start + 1) == []
    box.transmit(40, nine - 1)  # drained to 10 as the hours close
    assert box.runner.next_deadline(nine) == morning
    assert box.paced(nine) == [{"event": "sms.campaign", "name": "晚", "state": "running", "run": 1,
                                "counts": box.runner.campaign("晚")["counts"], "waiting": True, "until": morning}]
    box.transmit(10, nine + 60)
    assert box.paced(morning - 1) == [] and len(box.sent()) == 50 and box.backlog(str(c["id"])) == 0
    assert [e["counts"]["run"]["added"] for e in box.paced(morning)] == [100]
    assert box.paced(morning + 1) == [] and box.runner.next_deadline(morning + 1) == morning + 1 + RECHECK_S


def test_allowed_hours_one_batch_at_2059_then_waits_until_0800(tmp_path):
    box = Box(tmp_path, hours="08:00-21:00")
    box.store.save_template("t", "您好", NOW)
    start = at(2026, 11, 30, 20, 59)
    box.runner.create("晚", "t", {"numbers": mobiles(120)}, {"kind": "date", "at": "2026-11-30 20:59"}, {}, None, NOW)
    assert box.runner.next_deadline(NOW) == start
    assert box.step(start - 1) == []
    assert [e["counts"]["run"]["added"] for e in box.step(start)] == [0, 50]
    nine = at(2026, 11, 30, 21, 0)
    morning = at(2026, 12, 1, 8, 0)
    assert box.step(nine) == [{"event": "sms.campaign", "name": "晚", "state": "running", "run": 1,
                               "counts": box.runner.campaign("晚")["counts"], "waiting": True, "until": morning}]
    assert box.step(nine + 600) == []  # the wait is said once
    assert box.runner.next_deadline(nine) == morning
    assert len(box.sent()) == 50
    assert [e["counts"]["run"]["added"] for e in box.step(morning)] == [100]
    assert [(e["state"], e["counts"]["run"]["added"]) for e in box.step(morning)] == [("done", 120)]


def test_crash_between_adds_and_cursor_repeats_no_message(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("t", "{客户姓名}您好", NOW)
    for i, n in enumerate(mobiles(60)):
        box.customers.add(n, f"客户{i}")
    c = box.runner.create("c", "t", {"group": "all"}, {"kind": "now"}, {}, None, NOW)
    calls = []

    def crashing_add(**kw):
        if len(calls) == 30:
            raise RuntimeError("power cut")
        calls.append(kw["msg_id"])
        return box.outbox.add(now=NOW, **kw)

    with pytest.raises(RuntimeError):
        box.runner.step(NOW, crashing_add)
    assert len(box.sent()) == 30 and box.runner.campaign("c")["cursor"] == 0
    # a name edited before the restart: the repeated add has another text, which the outbox refuses (conflict)
    box.customers.update(mobiles(60)[0], name="改名")
    box = Box(tmp_path)
    box.step(NOW + 1)
    box.step(NOW + 2)
    sent = box.sent()
    assert len(sent) == 60 and len({m[1] for m in sent}) == 60
    assert dict((m[1], m[2]) for m in sent)[mobiles(60)[0]] == "客户0您好回复TD退订"
    view = box.runner.campaign("c")
    assert (view["state"], view["counts"]["total"]["added"]) == ("done", 60)
    assert calls[:2] == [f"c-{c['id']}-1-0", f"c-{c['id']}-1-1"]


def test_groups_are_resolved_at_each_run(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("t", "{客户姓名}（{公司}）：{产品}上市", NOW)
    box.customers.add("13800000001", "张三", "甲公司", vip=True)
    box.customers.add("13800000002", "李四", "乙公司")
    box.customers.add("02788886666", "王五", "甲公司", vip=True)  # a landline cannot take an SMS
    box.customers.add("13800000003", "赵六", vip=True)  # no company: {公司} has no value
    vip = box.runner.create("vip", "t", {"group": "vip"}, {"kind": "now"}, {"product": "新茶"}, None, NOW)
    box.customers.add("13800000004", "孙七", "甲公司", vip=True)  # added after creation, before the run
    co = box.runner.create("co", "t", {"group": "company:甲公司"}, {"kind": "now"}, {"product": "新茶"}, None, NOW)
    box.step(NOW)
    # a run's recipients are the group's customers by number: 027... first
    assert box.sent() == [
        (f"c-{vip['id']}-1-1", "13800000001", "张三（甲公司）：新茶上市回复TD退订"),
        (f"c-{vip['id']}-1-3", "13800000004", "孙七（甲公司）：新茶上市回复TD退订"),
        (f"c-{co['id']}-1-1", "13800000001", "张三（甲公司）：新茶上市回复TD退订"),
        (f"c-{co['id']}-1-2", "13800000004", "孙七（甲公司）：新茶上市回复TD退订")]
    assert box.runner.campaign("vip")["counts"]["run"] == {"added": 2, "opted_out": 0, "missing_value": 1,
                                                           "bad_number": 1, "refused": 0}
    assert box.runner.campaign("co")["counts"]["run"]["bad_number"] == 1


def test_name_from_customer_record_else_missing_value_and_run_date(tmp_path):
    box = Box(tmp_path, footer=False)
    box.store.save_template("t", "{客户姓名}：{日期}到货", NOW)
    box.customers.add("13800000001", "张三")
    c = box.runner.create("c", "t", {"numbers": ["13800000001", "13800000002"]}, {"kind": "now"}, {}, None, NOW)
    box.step(NOW)
    assert box.sent() == [(f"c-{c['id']}-1-0", "13800000001", "张三：2026年11月30日到货")]
    assert box.runner.campaign("c")["counts"]["run"]["missing_value"] == 1
    box.runner.create("d", "t", {"numbers": ["13800000001"]}, {"kind": "now"}, {"date": "2027-01-02"}, None, NOW)
    box.step(NOW)
    assert "张三：2027年1月2日到货" in [m[2] for m in box.sent()]


def test_cron_campaign_runs_again_with_new_ids(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("t", "早安", NOW)
    c = box.runner.create("晨", "t", {"numbers": ["13800000001"]}, {"kind": "cron", "rule": "0 9 * * mon-fri"},
                          {}, None, NOW)
    tue9 = at(2026, 12, 1, 9, 0)
    assert c["next_run_at"] == tue9 and box.step(NOW) == []
    events = box.step(tue9)
    assert (events[-1]["state"], events[-1]["next_run_at"]) == ("scheduled", at(2026, 12, 2, 9, 0))
    box.step(at(2026, 12, 2, 9, 0))
    assert [m[0] for m in box.sent()] == [f"c-{c['id']}-1-0", f"c-{c['id']}-2-0"]
    view = box.runner.campaign("晨")
    assert (view["run"], view["counts"]["run"]["added"], view["counts"]["total"]["added"]) == (2, 1, 2)
    box.runner.cancel("晨", at(2026, 12, 2, 10, 0))
    assert box.step(at(2026, 12, 3, 9, 0)) == [] and box.runner.next_deadline(at(2026, 12, 3, 9, 0)) is None


@pytest.mark.parametrize("args, code, message", [
    (("t", {"numbers": ["13800000001", "abc"]}, {"kind": "now"}, {"product": "茶"}),
     "bad_argument", "recipients.numbers[1]: 'abc' is not a mobile number"),
    (("t", {"numbers": ["02788886666"]}, {"kind": "now"}, {"product": "茶"}),
     "bad_argument", "recipients.numbers[0]: '02788886666' is not a mobile number"),
    (("t", {"numbers": []}, {"kind": "now"}, {"product": "茶"}),
     "bad_argument", "recipients.numbers: must be a list of 1 to 10000 numbers"),
    (("t", {"group": "friends"}, {"kind": "now"}, {"product": "茶"}),
     "bad_argument", "recipients.group: 'friends' is not 'all', 'vip' or 'company:<name>'"),
    (("t", {"group": "all"}, {"kind": "now"}, {}),
     "bad_argument", "values.product: template 't' uses {产品}; give its value"),
    (("t", {"group": "all"}, {"kind": "now"}, {"product": "茶", "customer_name": "x"}),
     "bad_argument", "values.customer_name: unknown; fixed values are product, date, agent (name, company and "
     "number come from each recipient)"),
    (("t", {"group": "all"}, {"kind": "now"}, {"product": "茶", "date": "2026-13-01"}),
     "bad_argument", "values.date: '2026-13-01' is not a date YYYY-MM-DD"),
    (("t", {"group": "all"}, {"kind": "yearly", "month": 1, "day": 1, "time": "25:00"}, {"product": "茶"}),
     "bad_argument", "schedule.time: '25:00' is not HH:MM (00:00 to 23:59)"),
    (("t", {"group": "all"}, {"kind": "date", "at": "2026-11-30 09:00"}, {"product": "茶"}),
     "bad_argument", "schedule: {'kind': 'date', 'at': '2026-11-30 09:00'} has no fire time after now"),
    (("无", {"group": "all"}, {"kind": "now"}, {}), "not_found", "template: '无' is not a saved SMS template"),
])
def test_create_refuses_bad_arguments_and_stores_nothing(tmp_path, args, code, message):
    box = Box(tmp_path)
    box.store.save_template("t", "{客户姓名}：{产品}", NOW)
    with pytest.raises(CommandError) as e:
        box.runner.create("c", *args, None, NOW)
    assert (e.value.code, e.value.message) == (code, message)
    assert box.runner.campaigns() == []


def test_message_the_outbox_refuses_is_counted_and_the_rest_go(tmp_path):
    box = Box(tmp_path, footer=False)
    box.store.save_template("t", "{客户姓名}您好", NOW)
    box.customers.add("13800000001", "长" * 17200)  # more than 255 SMS parts
    box.customers.add("13800000002", "李四")
    c = box.runner.create("c", "t", {"group": "all"}, {"kind": "now"}, {}, None, NOW)
    box.step(NOW)
    assert box.sent() == [(f"c-{c['id']}-1-1", "13800000002", "李四您好")]
    assert box.runner.campaign("c")["counts"]["run"] == {"added": 1, "opted_out": 0, "missing_value": 0,
                                                         "bad_number": 0, "refused": 1}


def test_create_refuses_bad_via_name_and_taken_name(tmp_path):
    box = Box(tmp_path)
    box.store.save_template("t", "您好", NOW)
    with pytest.raises(CommandError) as e:
        box.runner.create("c", "t", {"group": "all"}, {"kind": "now"}, {}, "pigeon", NOW)
    assert e.value.message == "via: 'pigeon' is not one of modem, smgp, cmpp, http (or null: the default)"
    with pytest.raises(CommandError) as e:
        box.runner.create("", "t", {"group": "all"}, {"kind": "now"}, {}, None, NOW)
    assert e.value.message == "name: '' must be a non-empty string of at most 64 characters"
    box.runner.create("c", "t", {"group": "all"}, {"kind": "now"}, {}, None, NOW)
    with pytest.raises(CommandError) as e:
        box.runner.create("c", "t", {"group": "vip"}, {"kind": "now"}, {}, None, NOW)
    assert (e.value.code, e.value.message) == ("conflict", "name: campaign 'c' already exists")
    assert [c["recipients"] for c in box.runner.campaigns()] == [{"group": "all"}]


def test_next_deadline_is_the_earliest_of_all_campaigns(tmp_path):
    box = Box(tmp_path, hours="08:00-21:00")
    box.store.save_template("t", "您好", NOW)
    assert box.runner.next_deadline(NOW) is None
    box.runner.create("年", "t", {"numbers": ["13800000001"]}, {"kind": "yearly", "month": 1, "day": 1,
                                                                "time": "09:00"}, {}, None, NOW)
    box.runner.create("节", "t", {"numbers": ["13800000001"]}, {"kind": "holidays", "dates": ["2026-12-25"],
                                                                "time": "09:00"}, {}, None, NOW)
    assert box.runner.next_deadline(NOW) == at(2026, 12, 25, 9, 0)
    box.runner.create("夜", "t", {"numbers": ["13800000001"]}, {"kind": "date", "at": "2026-12-01 23:00"}, {}, None,
                      NOW)
    box.step(at(2026, 12, 1, 23, 0))  # starts, waits for the morning
    assert box.runner.next_deadline(at(2026, 12, 1, 23, 0)) == at(2026, 12, 2, 8, 0)
    assert box.runner.campaign("夜")["state"] == "running" and box.sent() == []
