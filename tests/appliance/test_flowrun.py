"""A caller's walk through an IVR flow, in explicit time: what is played, what is logged, where the call goes."""

from __future__ import annotations

import copy
import datetime as dt

from appliance.actions import LogEvent, Play, StopPlay
from appliance.flowrun import FlowSession, HttpLookup, Outcome, Say, text_prompt
from tests.appliance.test_flows import FLOW

PORT = 3
MONDAY_10 = dt.datetime(2026, 11, 30, 10, 0)
SUNDAY_10 = dt.datetime(2026, 11, 29, 10, 0)


def session(when=MONDAY_10, flow=FLOW, **variables) -> FlowSession:
    return FlowSession("c1", PORT, copy.deepcopy(flow), wall=lambda now: when,
                       variables={"caller": "13912345678", **variables})


def said(node: str) -> str:
    """The prompt name a node's text plays under."""
    return text_prompt(node, FLOW["nodes"][node]["text"])


def nodes(actions) -> list[str]:
    return [a.data["node"] for a in actions if isinstance(a, LogEvent) and a.type == "ivr.node"]


def plays(actions) -> list[str]:
    return [a.prompt for a in actions if isinstance(a, Play)]


def test_open_hours_welcome_menu_then_the_sales_queue():
    s = session()
    acts, out = s.start(0.0)
    assert out is None
    assert nodes(acts) == ["hours", "welcome"] and plays(acts) == [said("welcome")]
    acts, out = s.prompt_done(2.0)
    assert nodes(acts) == ["menu"] and plays(acts) == ["menu"] and out is None
    acts, out = s.digit("1", 3.0)  # during the menu prompt: barge-in
    assert acts[0] == StopPlay(PORT) and nodes(acts) == ["sales"] and plays(acts) == [said("sales")] and out is None
    acts, out = s.prompt_done(5.0)  # "transferring you to sales" over: into the queue
    assert (acts, out) == ([], Outcome("queue", "sales"))


def test_after_hours_goes_to_voicemail():
    s = session(SUNDAY_10)
    acts, out = s.start(0.0)
    assert out is None
    assert nodes(acts) == ["hours", "after_hours"] and plays(acts) == [said("after_hours")]
    assert s.prompt_done(4.0) == ([], Outcome("voicemail", "general"))


def test_invalid_keys_and_silence_retry_then_fall_through_to_on_fail():
    s = session()
    assert s.start(0.0)[1] is None
    s.prompt_done(1.0)
    acts, _ = s.digit("7", 2.0)  # not a choice
    assert plays(acts) == ["invalid"]
    fails = [a.data for a in acts if isinstance(a, LogEvent) and a.type == "ivr.fail"]
    assert fails == [{"node": "menu", "reason": "invalid", "count": 1}]
    acts, _ = s.prompt_done(3.0)
    assert plays(acts) == ["menu"]  # then the menu again
    s.prompt_done(4.0)
    assert s.deadline == 9.0  # timeout_s 5 after the prompt
    acts, out = s.timeout(9.0)  # silence: the second failure
    assert plays(acts) == ["menu"] and out is None
    s.prompt_done(10.0)
    acts, out = s.timeout(15.0)  # the third: retries (2) used up -> on_fail: the agent
    assert nodes(acts) == ["agent"] and out == Outcome("transfer", "seat:1")


def test_collect_digits_with_terminator_lookup_and_spoken_answer():
    s = session()
    assert s.start(0.0)[1] is None
    s.prompt_done(1.0)
    s.digit("2", 2.0)
    assert s.node == "order_no"
    s.prompt_done(3.0)
    for i, d in enumerate("2026113"):
        s.digit(d, 4.0 + i)
    acts, out = s.digit("#", 12.0)
    [lookup] = [a for a in acts if isinstance(a, HttpLookup)]
    assert lookup.url == "https://crm.example.cn/orders/2026113?caller=13912345678" and lookup.timeout_s == 3
    acts, out = s.http_result(True, {"status": "已发货"}, 12.5)
    assert [a for a in acts if isinstance(a, Say)] == [Say(PORT, "您的订单状态是已发货。")]
    acts, out = s.prompt_done(15.0)
    assert nodes(acts) == ["bye"] and plays(acts) == [said("bye")]
    assert s.prompt_done(17.0) == ([], Outcome("hangup", None))
    assert s.vars["order"] == "2026113" and s.vars["status"] == "已发货"


def test_a_lookup_case_or_an_error_branches():
    for ok, fields, target in ((True, {"status": "lost"}, "agent"), (False, {}, "agent")):
        s = session(order="123456")
        assert s.start(0.0)[1] is None
        s.prompt_done(1.0)
        s.digit("2", 2.0)
        s.prompt_done(2.5)
        for d in "123456#":
            s.digit(d, 3.0)
        acts, out = s.http_result(ok, fields, 4.0)
        assert nodes(acts) == [target] and out == Outcome("transfer", "seat:1")


def test_too_few_digits_or_a_bad_pattern_is_a_failure():
    s = session()
    assert s.start(0.0)[1] is None
    s.prompt_done(1.0)
    s.digit("2", 2.0)
    s.prompt_done(3.0)
    for d in "12#":  # min 6
        acts, out = s.digit(d, 4.0)
    assert [a.data["reason"] for a in acts if isinstance(a, LogEvent) and a.type == "ivr.fail"] == ["invalid"]
    assert s.node == "order_no" and s.digits == ""


def test_a_looping_flow_is_cut_off():
    flow = {"start": "a", "nodes": {"a": {"kind": "set", "var": "x", "value": "1", "next": "b"},
                                    "b": {"kind": "set", "var": "y", "value": "2", "next": "a"}}}
    acts, out = FlowSession("c1", PORT, flow, wall=lambda now: MONDAY_10).start(0.0)
    assert any(isinstance(a, LogEvent) and a.data.get("reason") == "loop" for a in acts)
    assert out == Outcome("hangup")


def test_a_flow_can_end_at_once():
    flow = {"start": "t", "nodes": {"t": {"kind": "time", "schedule": {}, "open": "q", "closed": "vm"},
                                    "q": {"kind": "queue", "queue": "default"},
                                    "vm": {"kind": "voicemail", "box": "general"}}}
    acts, out = FlowSession("c1", PORT, flow, wall=lambda now: MONDAY_10).start(0.0)
    assert nodes(acts) == ["t", "vm"] and out == Outcome("voicemail", "general")


def test_a_text_prompt_is_named_by_its_node_and_its_words():
    assert text_prompt("bye", "再见") == text_prompt("bye", "再见") != text_prompt("bye", "再见。")
    assert text_prompt("bye", "再见").startswith("flow:bye:") and text_prompt("hi", "再见") != text_prompt("bye", "再见")
