"""Internal dispatch SMS (``appliance.sms.dispatch``): rules fired by a complaint assigned, a voicemail left and a
missed call left unreturned, on the list rows ``appliance.missed`` really gives (a journal written by hand)."""

from __future__ import annotations

import logging
import zoneinfo

import pytest

from appliance.journal import Journal
from appliance.missed import MissedCalls
from appliance.sms.dispatch import Dispatcher, DispatchRule, Notice, sms_number

T0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC: 11:20 in Beijing
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
BOSS, DUTY, SHOU_HOU = "13900001111", "13700137000", "13600136000"
CALLER, OTHER = "13912345678", "13800138000"


@pytest.fixture
def lists(tmp_path):
    """(journal, MissedCalls) on a real journal file."""
    journal = Journal(tmp_path / "journal.sqlite")
    store = MissedCalls(home_area="27")
    journal.run(store.setup).result(5)
    yield journal, store
    journal.close()


def missed_call(journal, call_id, number, start, disposition="abandoned", message=None, box="general"):
    """An inbound call as call control journals it: its record, a voicemail.recorded if a message was left, the
    call.ended."""
    journal.put_call({"call_id": call_id, "direction": "in", "caller": number, "called": "4008001234",
                      "start_ts": T0 + start, "end_ts": T0 + start + 30, "disposition": disposition,
                      "ended_by": "caller", "caller_national": number, "caller_area": "湖北省武汉市" if number else None,
                      "caller_kind": "mobile" if number else None,
                      "recording": f"voicemail/{call_id}.wav" if message else None})
    if message is not None:
        journal.add_event(call_id, T0 + start + 30, "voicemail.recorded", {"box": box, "seconds": message,
                                                                            "caller": number})
    journal.add_event(call_id, T0 + start + 30, "call.ended", {"call_id": call_id, "disposition": disposition})


def rows(lists, what):
    journal, store = lists
    return journal.run(lambda con: getattr(store, what)(con)).result(5)


def test_sms_number_takes_mobiles_only_in_the_form_the_outbox_takes():
    assert sms_number("+86 139-1234-5678") == CALLER
    assert sms_number("8613912345678") == CALLER
    assert sms_number("+14155552671") == "0014155552671"
    assert sms_number("02788886666") is None  # a landline
    assert sms_number("10086") is None
    assert sms_number("1700*") is None
    assert sms_number("") is None


def test_a_complaint_assigned_texts_the_rules_numbers_and_the_departments_mobile():
    rules = [DispatchRule("complaint.assigned", "工单{工单}已派{部门}：客户{号码}，{日期}{时间}", (BOSS,),
                          to_department=True),
             DispatchRule("voicemail.left", "留言{号码}", (DUTY,))]
    d = Dispatcher(rules, TZ, {"售后": SHOU_HOU, "财务": ""})
    event = {"event": "complaint.assigned", "seq": 9, "time": T0 + 60,
             "data": {"ticket": "TS-0001", "department": "售后", "number": CALLER, "title": "空调不制冷"}}
    text = f"工单TS-0001已派售后：客户{CALLER}，2025年11月28日11:21"
    rule = f"complaint.assigned>{BOSS},department"
    assert d.on_event(event, T0 + 61) == [Notice(rule, f"TS-0001@售后>{BOSS}", BOSS, text, None),
                                          Notice(rule, f"TS-0001@售后>{SHOU_HOU}", SHOU_HOU, text, None)]
    # other events fire nothing, even voicemail's own name on the bus
    assert d.on_event({"event": "call.ended", "time": T0, "data": {}}, T0) == []
    assert d.on_event({"event": "voicemail.left", "time": T0, "data": {}}, T0) == []


def test_complaint_without_a_number_time_or_department_mobile(caplog):
    rule = DispatchRule("complaint.assigned", "{号码} {时间} {部门}", to_department=True, via="smgp")
    d = Dispatcher([rule], TZ, {"售后": SHOU_HOU, "财务": ""})
    event = {"event": "complaint.assigned", "data": {"ticket": 17, "department": "售后"}}
    assert d.on_event(event, T0) == [Notice("complaint.assigned>department", f"17@售后>{SHOU_HOU}", SHOU_HOU,
                                            "未显示号码 11:20 售后", "smgp")]  # no "time": now is the time
    with caplog.at_level(logging.WARNING, logger="appliance.sms.dispatch"):
        assert d.on_event({"event": "complaint.assigned", "data": {"ticket": 18, "department": "财务"}}, T0) == []
        assert d.on_event({"event": "complaint.assigned", "data": {"ticket": 19, "department": "后勤"}}, T0) == []
        assert d.on_event({"event": "complaint.assigned", "data": {"department": "售后"}}, T0) == []
    assert [r.getMessage() for r in caplog.records] == [
        "sms rule complaint.assigned>department: department '财务' has no mobile; not texted",
        "sms rule complaint.assigned>department: department '后勤' is not in the departments section; not texted",
        "complaint.assigned without a ticket: {'department': '售后'}; no SMS"]


def test_a_reassigned_complaint_is_a_new_occurrence_and_a_number_given_twice_is_texted_once():
    rule = DispatchRule("complaint.assigned", "{工单}", (SHOU_HOU,), to_department=True)
    d = Dispatcher([rule], TZ, {"售后": SHOU_HOU, "财务": BOSS})
    first = d.on_event({"event": "complaint.assigned", "data": {"ticket": "7", "department": "售后"}}, T0)
    again = d.on_event({"event": "complaint.assigned", "data": {"ticket": "7", "department": "财务"}}, T0)
    assert [(n.key, n.to) for n in first] == [(f"7@售后>{SHOU_HOU}", SHOU_HOU)]
    assert [(n.key, n.to) for n in again] == [(f"7@财务>{SHOU_HOU}", SHOU_HOU), (f"7@财务>{BOSS}", BOSS)]


def test_voicemails_from_the_real_list(lists):
    journal, _ = lists
    missed_call(journal, "c-1", CALLER, 0, "voicemail", message=25.4, box="complaints")
    missed_call(journal, "c-2", None, 100, "voicemail", message=8.0)  # withheld: listed, no missed entry
    missed_call(journal, "c-3", OTHER, 200, "abandoned")  # no message
    messages = rows(lists, "messages")
    assert [m["call_id"] for m in messages] == ["c-2", "c-1"]
    rule = DispatchRule("voicemail.left", "{日期}{时间} {号码} 在{信箱}留言{时长}秒", (DUTY, BOSS), via="modem")
    d = Dispatcher([rule, DispatchRule("missed.unreturned", "{号码}", (DUTY,))], TZ, {})
    vm = f"voicemail.left>{DUTY},{BOSS}"  # DUTY's 137... sorts first
    assert d.on_voicemails(messages, T0 + 300) == [
        Notice(vm, f"c-2>{DUTY}", DUTY, "2025年11月28日11:21 未显示号码 在general留言8秒", "modem"),
        Notice(vm, f"c-2>{BOSS}", BOSS, "2025年11月28日11:21 未显示号码 在general留言8秒", "modem"),
        Notice(vm, f"c-1>{DUTY}", DUTY, f"2025年11月28日11:20 {CALLER} 在complaints留言25秒", "modem"),
        Notice(vm, f"c-1>{BOSS}", BOSS, f"2025年11月28日11:20 {CALLER} 在complaints留言25秒", "modem")]
    # the same rows later give the same notices: the box's message ids made from them keep them to once
    assert d.on_voicemails(messages, T0 + 400) == d.on_voicemails(messages, T0 + 300)


def test_heard_and_stale_voicemails_are_not_texted(lists):
    journal, store = lists
    missed_call(journal, "c-1", CALLER, 0, "voicemail", message=12.0)
    missed_call(journal, "c-2", OTHER, 10, "voicemail", message=12.0)
    journal.run(lambda con: store.heard(con, "c-1", T0 + 50)).result(5)
    d = Dispatcher([DispatchRule("voicemail.left", "{号码}", (DUTY,))], TZ, {}, horizon_s=3600)
    messages = rows(lists, "messages")
    assert [n.key for n in d.on_voicemails(messages, T0 + 100)] == [f"c-2>{DUTY}"]
    assert [n.key for n in d.on_voicemails(messages, T0 + 10 + 3600)] == [f"c-2>{DUTY}"]
    assert d.on_voicemails(messages, T0 + 10 + 3601) == []


def test_a_missed_call_left_unreturned_after_min(lists):
    journal, store = lists
    missed_call(journal, "c-1", CALLER, 0)
    missed_call(journal, "c-2", CALLER, 120, "overflow")  # same entry: count 2, last_ts T0 + 120
    missed_call(journal, "c-3", OTHER, 60)
    entries = rows(lists, "entries")
    assert [(e["id"], e["count"], e["last_ts"], e["state"]) for e in entries] == \
        [(1, 2, T0 + 120, "new"), (2, 1, T0 + 60, "new")]
    rule = DispatchRule("missed.unreturned", "{号码}于{时间}来电{次数}次未回拨", (DUTY,), after_min=30)
    d = Dispatcher([rule], TZ, {})
    assert d.on_missed(entries, T0 + 60 + 1799) == []
    assert d.on_missed(entries, T0 + 60 + 1800) == [
        Notice(f"missed.unreturned>{DUTY}", f"2@{T0 + 60}>{DUTY}", DUTY, f"{OTHER}于11:21来电1次未回拨", None)]
    assert d.on_missed(entries, T0 + 120 + 1800) == [
        Notice(f"missed.unreturned>{DUTY}", f"1@{T0 + 120}>{DUTY}", DUTY, f"{CALLER}于11:22来电2次未回拨", None),
        Notice(f"missed.unreturned>{DUTY}", f"2@{T0 + 60}>{DUTY}", DUTY, f"{OTHER}于11:21来电1次未回拨", None)]
    # a later missed call on the open entry moves last_ts: a new occurrence, due after_min after it
    missed_call(journal, "c-4", CALLER, 4000)
    entries = rows(lists, "entries")
    assert d.on_missed(entries, T0 + 4000 + 1799) == [
        Notice(f"missed.unreturned>{DUTY}", f"2@{T0 + 60}>{DUTY}", DUTY, f"{OTHER}于11:21来电1次未回拨", None)]
    assert [n.key for n in d.on_missed(entries, T0 + 4000 + 1800)] == [f"1@{T0 + 4000}>{DUTY}", f"2@{T0 + 60}>{DUTY}"]


def test_only_entries_still_waiting_for_a_callback_are_unreturned(lists):
    journal, store = lists
    for i, number in enumerate(["13900000001", "13900000002", "13900000003", "13900000004"]):
        missed_call(journal, f"c-{i}", number, 0)
    journal.run(lambda con: store.close(con, 1, T0 + 10)).result(5)  # closed by hand
    journal.run(lambda con: store.callback_started(con, 2, "cb-2", 1, T0 + 20)).result(5)  # being called back
    journal.run(lambda con: store.callback_started(con, 3, "cb-3", 1, T0 + 20)).result(5)
    journal.put_call({"call_id": "cb-3", "direction": "out", "caller": "8001", "called": "13900000003",
                      "start_ts": T0 + 20, "end_ts": T0 + 50, "disposition": "failed",
                      "caller_national": "13900000003"})
    journal.add_event("cb-3", T0 + 50, "call.ended", {"call_id": "cb-3", "result": "busy", "direction": "out",
                                                       "origin": {"missed": 3}})
    entries = rows(lists, "entries")
    assert {e["id"]: e["state"] for e in entries} == {1: "closed", 2: "calling_back", 3: "failed", 4: "new"}
    d = Dispatcher([DispatchRule("missed.unreturned", "{号码}", (DUTY,), after_min=5)], TZ, {}, horizon_s=600)
    assert [n.text for n in d.on_missed(entries, T0 + 330)] == ["13900000004", "13900000003"]
    # a day's backlog is not texted: only within horizon_s of becoming due
    assert [n.text for n in d.on_missed(entries, T0 + 300 + 600)] == ["13900000004", "13900000003"]
    assert d.on_missed(entries, T0 + 300 + 601) == []


def test_rules_fire_only_on_their_own_event():
    rules = [DispatchRule("missed.unreturned", "{号码}", (DUTY,)),
             DispatchRule("complaint.assigned", "{工单}", (DUTY,))]
    d = Dispatcher(rules, TZ, {})
    message = {"call_id": "c-1", "caller": CALLER, "number": CALLER, "area": None, "ts": T0, "seconds": 3.0,
               "box": "general", "recording": None, "heard": False, "heard_ts": None, "missed_id": 1,
               "callback_state": "new", "callback_attempts": 0, "callback_result": None, "callback_call_id": None}
    assert d.on_voicemails([message], T0 + 1) == []
    assert Dispatcher([], TZ, {}).on_event({"event": "complaint.assigned", "data": {"ticket": 1}}, T0) == []


def test_the_zone_may_be_named_and_department_mobiles_are_normalised():
    rule = DispatchRule("complaint.assigned", "{时间}", to_department=True)
    d = Dispatcher([rule], "Asia/Shanghai", {"售后": "8613600136000", "前台": "02788886666", "财务": ""})
    assert d.departments == {"售后": SHOU_HOU, "前台": "", "财务": ""}
    event = {"event": "complaint.assigned", "time": T0, "data": {"ticket": 1, "department": "售后"}}
    assert d.on_event(event, T0) == [Notice("complaint.assigned>department", f"1@售后>{SHOU_HOU}", SHOU_HOU, "11:20",
                                            None)]
    utc = Dispatcher([rule], "UTC", {"售后": SHOU_HOU})
    assert [n.text for n in utc.on_event(event, T0)] == ["03:20"]


def test_a_rules_id_is_its_event_and_recipients_not_its_place_or_text():
    assert DispatchRule("voicemail.left", "{号码}", (BOSS, DUTY, BOSS)).id == f"voicemail.left>{DUTY},{BOSS}"
    with_department = DispatchRule("complaint.assigned", "{工单}", (BOSS,), True)
    assert with_department.id == f"complaint.assigned>{BOSS},department"
    assert DispatchRule("complaint.assigned", "{工单}", to_department=True).id == "complaint.assigned>department"
    event = {"event": "complaint.assigned", "time": T0, "data": {"ticket": "7", "department": "售后"}}
    before = [DispatchRule("missed.unreturned", "{号码}", (DUTY,)),
              DispatchRule("complaint.assigned", "{工单}", (BOSS,), True)]
    # the first rule deleted, the other reworded and moved: its notices keep their rule and key (the box's ids)
    after = [DispatchRule("voicemail.left", "{号码}", (DUTY,)),
             DispatchRule("complaint.assigned", "工单{工单}", (BOSS,), True)]
    old = Dispatcher(before, TZ, {"售后": SHOU_HOU}).on_event(event, T0)
    new = Dispatcher(after, TZ, {"售后": SHOU_HOU}).on_event(event, T0)
    assert [(n.rule, n.key, n.to) for n in new] == [(n.rule, n.key, n.to) for n in old] == [
        (f"complaint.assigned>{BOSS},department", f"7@售后>{BOSS}", BOSS),
        (f"complaint.assigned>{BOSS},department", f"7@售后>{SHOU_HOU}", SHOU_HOU)]
    assert [n.text for n in new] == ["工单7", "工单7"]


def test_rules_with_one_event_and_the_same_recipients_tell_them_once():
    rules = [DispatchRule("complaint.assigned", "first {工单}", (BOSS, DUTY)),
             DispatchRule("complaint.assigned", "second {工单}", (DUTY, BOSS), via="smgp"),
             DispatchRule("complaint.assigned", "third {工单}", (DUTY,))]
    d = Dispatcher(rules, TZ, {})
    notices = d.on_event({"event": "complaint.assigned", "time": T0, "data": {"ticket": "7"}}, T0)
    assert [(n.rule, n.to, n.text, n.via) for n in notices] == [
        (f"complaint.assigned>{DUTY},{BOSS}", BOSS, "first 7", None),
        (f"complaint.assigned>{DUTY},{BOSS}", DUTY, "first 7", None),
        (f"complaint.assigned>{DUTY}", DUTY, "third 7", None)]  # other recipients: another rule
