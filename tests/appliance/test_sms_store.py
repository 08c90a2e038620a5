"""SmsStore: templates refused at save, opt-outs in one canonical form, inbound replies, campaigns."""

import sqlite3

import pytest

from appliance.apischema import CommandError
from appliance.errors import ApplianceError, ConfigError
from appliance.sms.store import SmsStore

NOW = 1_800_000_000.0


def store(tmp_path):
    return SmsStore(tmp_path / "sms.db", home_area="27")


def test_file_is_wal_full_and_versioned(tmp_path):
    s = store(tmp_path)
    s.close()
    con = sqlite3.connect(tmp_path / "sms.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables - {"sqlite_sequence"} == {"templates", "opt_outs", "inbound", "campaigns", "campaign_numbers"}
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.execute("PRAGMA user_version=2")
    con.close()
    with pytest.raises(ApplianceError) as e:
        store(tmp_path)
    assert "has schema version 2; this firmware knows up to 1" in str(e.value)


def test_template_saved_listed_overwritten_and_survives_reopen(tmp_path):
    s = store(tmp_path)
    t = s.save_template("发货", "尊敬的{客户姓名}，您的{产品}已于{日期}发货。", NOW)
    assert t == {"name": "发货", "text": "尊敬的{客户姓名}，您的{产品}已于{日期}发货。",
                 "fields": ["客户姓名", "产品", "日期"], "parts": 2, "updated_at": NOW}
    s.save_template("发货", "{客户姓名}您好", NOW + 1)
    s.save_template("问候", "您好", NOW + 2)
    s.close()
    s = store(tmp_path)
    assert [(t["name"], t["text"], t["fields"], t["parts"]) for t in s.templates()] == [
        ("发货", "{客户姓名}您好", ["客户姓名"], 1), ("问候", "您好", [], 1)]
    assert s.template("问候")["updated_at"] == NOW + 2


@pytest.mark.parametrize("text, message", [
    ("您好{姓名}", "SMS template 't': unknown field {姓名}; allowed: {客户姓名}, {产品}, {日期}, {号码}, {坐席}, {公司}"),
    ("您好{客户姓名", "SMS template 't': unbalanced braces: '{' at character 3 is never closed"),
    ("您好}", "SMS template 't': unbalanced braces: '}' at character 3 closes no field"),
    ("  ", "SMS template 't': template text is empty"),
    ("长" * 336, "SMS template 't': template too long: up to 6 SMS parts with long field values (336 characters), "
     "at most 5 allowed"),
])
def test_bad_template_refused_naming_the_problem_and_old_kept(tmp_path, text, message):
    s = store(tmp_path)
    s.save_template("t", "旧的", NOW)
    with pytest.raises(ConfigError) as e:
        s.save_template("t", text, NOW + 1)
    assert str(e.value) == message
    assert s.template("t")["text"] == "旧的"


def test_template_lookup_and_delete(tmp_path):
    s = store(tmp_path)
    with pytest.raises(CommandError) as e:
        s.template("无")
    assert (e.value.code, e.value.message) == ("not_found", "template: '无' is not a saved SMS template")
    with pytest.raises(CommandError) as e:
        s.save_template("", "x", NOW)
    assert e.value.code == "bad_argument"
    s.save_template("t", "您好", NOW)
    c = s.add_campaign("c1", "t", {"numbers": ["13800138000"]}, {"kind": "now"}, {}, None, NOW, NOW)
    with pytest.raises(CommandError) as e:
        s.delete_template("t")
    assert (e.value.code, e.value.message) == ("conflict", "template 't' is used by campaign c1")
    s.cancel_campaign("c1", NOW)
    s.delete_template("t")
    assert s.templates() == []
    assert s.campaign("c1")["id"] == c["id"]
    with pytest.raises(CommandError) as e:
        s.delete_template("t")
    assert e.value.code == "not_found"


def test_opt_out_numbers_are_one_canonical_form(tmp_path):
    s = store(tmp_path)
    o = s.add_opt_out("+86 138 0013 8000", "manual", NOW, "电话要求")
    assert o == {"number": "13800138000", "source": "manual", "text": "电话要求", "created_at": NOW}
    assert s.is_opted_out("008613800138000") and s.is_opted_out("13800138000")
    assert not s.is_opted_out("13900139000")
    # adding again keeps the first record
    assert s.add_opt_out("13800138000", "reply", NOW + 5, "TD") == o
    s.add_opt_out("13900139000", "manual", NOW + 1)
    assert [o["number"] for o in s.opt_outs()] == ["13900139000", "13800138000"]
    assert [o["number"] for o in s.opt_outs(limit=1, offset=1)] == ["13800138000"]
    s.remove_opt_out("+8613800138000")
    assert not s.is_opted_out("13800138000")
    with pytest.raises(CommandError) as e:
        s.remove_opt_out("13800138000")
    assert (e.value.code, e.value.message) == ("not_found", "number: '13800138000' has not opted out")
    for bad in ("abc", "12"):
        with pytest.raises(CommandError) as e:
            s.add_opt_out(bad, "manual", NOW)
        assert (e.value.code, e.value.message) == ("bad_argument", f"number: {bad!r} is not a phone number")
    with pytest.raises(CommandError) as e:
        s.add_opt_out("13800138000", "web", NOW)
    assert e.value.message == "source: 'web' is not one of reply, manual"


def test_inbound_td_reply_opts_out_in_the_same_write(tmp_path):
    s = store(tmp_path)
    a = s.add_inbound("+8613800138000", "ＴＤ", NOW - 3, "modem", NOW)
    assert a == {"id": 1, "sender": "+8613800138000", "number": "13800138000", "text": "ＴＤ", "received_at": NOW - 3,
                 "via": "modem", "opt_out": True, "created_at": NOW}
    b = s.add_inbound("13900139000", "我不想退订了吗", NOW, "smgp", NOW + 1)
    assert b["opt_out"] is False
    assert s.opt_outs() == [{"number": "13800138000", "source": "reply", "text": "ＴＤ", "created_at": NOW}]
    assert [m["id"] for m in s.inbound()] == [2, 1]
    assert [m["id"] for m in s.inbound(limit=1, offset=1)] == [1]
    # an SP number or a named sender is kept as received (normalise has no canonical form for it)
    assert s.add_inbound("10690000123", "t", NOW, "cmpp", NOW + 2)["number"] == "10690000123"
    assert s.add_inbound("ChinaBank", "您好", NOW, "http", NOW + 3)["number"] == "ChinaBank"
    assert [o["number"] for o in s.opt_outs()] == ["10690000123", "13800138000"]
    with pytest.raises(CommandError) as e:
        s.add_inbound("13900139000", "TD", NOW, "pigeon", NOW)
    assert e.value.message == "via: 'pigeon' is not one of modem, smgp, cmpp, http"
    with pytest.raises(CommandError) as e:
        s.add_inbound("13900139000", "TD", float("nan"), "modem", NOW)
    assert e.value.message == "when: nan must be a finite number of seconds"
    assert not s.is_opted_out("13900139000") and len(s.inbound()) == 4


def test_campaign_run_cursor_is_conditional(tmp_path):
    s = store(tmp_path)
    s.save_template("t", "您好", NOW)
    c = s.add_campaign("c", "t", {"numbers": ["13800138000"]}, {"kind": "now"}, {"product": "茶"}, "modem", NOW, NOW)
    assert (c["state"], c["run"], c["cursor"], c["values"], c["via"]) == ("scheduled", 0, 0, {"product": "茶"}, "modem")
    with pytest.raises(CommandError) as e:
        s.add_campaign("c", "t", {"numbers": []}, {"kind": "now"}, {}, None, NOW, NOW)
    assert (e.value.code, e.value.message) == ("conflict", "name: campaign 'c' already exists")
    with pytest.raises(CommandError) as e:
        s.add_campaign("d", "无", {"numbers": []}, {"kind": "now"}, {}, None, NOW, NOW)
    assert e.value.code == "not_found"
    c = s.start_run(c["id"], ["13800138000", "13900139000", "13700137000"], NOW)
    assert (c["state"], c["run"], c["cursor"], c["run_size"], c["run_started_at"]) == ("running", 1, 0, 3, NOW)
    assert s.run_numbers(c["id"], 1, 5) == ["13900139000", "13700137000"]
    c = s.advance(c["id"], 1, 0, 2, {"added": 1, "opted_out": 1}, NOW + 1)
    assert c["cursor"] == 2 and c["counts"]["run"] == c["counts"]["total"] == {
        "added": 1, "opted_out": 1, "missing_value": 0, "bad_number": 0, "refused": 0}
    with pytest.raises(CommandError) as e:  # a second runner with a stale cursor
        s.advance(c["id"], 1, 0, 2, {"added": 2}, NOW + 1)
    assert (e.value.code, e.value.message) == ("conflict", "campaign 'c': cursor is 2, expected 0")
    assert s.campaign("c")["counts"]["total"]["added"] == 1
    c = s.end_run(c["id"], 1, NOW + 100, NOW + 2)
    assert (c["state"], c["next_run_at"]) == ("scheduled", NOW + 100)
    c = s.start_run(c["id"], ["13800138000"], NOW + 100)
    assert c["counts"]["run"]["added"] == 0 and c["counts"]["total"]["added"] == 1 and c["run"] == 2
    assert s.run_numbers(c["id"], 0, 5) == ["13800138000"]
    c = s.end_run(c["id"], 2, None, NOW + 101)
    assert (c["state"], c["next_run_at"]) == ("done", None)
    with pytest.raises(CommandError) as e:
        s.cancel_campaign("c", NOW)
    assert e.value.message == "campaign 'c': state is 'done', expected ('scheduled', 'running')"
