"""IVR flows as data: a realistic flow accepted, every kind of mistake refused naming the node, time branches."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from appliance.errors import ConfigError
from appliance.flows import check_flow, default_flow, is_open

HOURS = {"mon": ["09:00-12:00", "13:30-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"],
         "thu": ["09:00-18:00"], "fri": ["09:00-17:00"], "sat": ["09:00-12:00"]}

FLOW = {"start": "hours", "nodes": {
    "hours": {"kind": "time", "schedule": HOURS, "holidays": ["2026-10-01", "2026-10-02"],
              "workdays": ["2026-10-11"], "open": "welcome", "closed": "after_hours"},
    "welcome": {"kind": "play", "text": "您好，欢迎致电。", "next": "menu"},
    "menu": {"kind": "menu", "prompt": "menu", "choices": {"1": "sales", "2": "order_no", "9": "menu", "0": "agent"},
             "timeout_s": 5, "retries": 2, "invalid": "invalid", "on_fail": "agent"},
    "order_no": {"kind": "collect", "text": "请输入订单号，以井号结束。", "var": "order", "min": 6, "max": 12,
                 "terminator": "#", "pattern": "^[0-9]+$", "next": "lookup", "on_fail": "agent"},
    "lookup": {"kind": "http", "url": "https://crm.example.cn/orders/{order}?caller={caller}", "timeout_s": 3,
               "say": "您的订单状态是{status}。", "cases": [{"if": {"status": "lost"}, "next": "agent"}],
               "next": "bye", "on_error": "agent"},
    "sales": {"kind": "queue", "queue": "sales", "text": "正在为您转接销售，请稍候。"},
    "agent": {"kind": "transfer", "to": "seat:1"},
    "after_hours": {"kind": "voicemail", "box": "general", "text": "现在是非工作时间，请留言。"},
    "bye": {"kind": "hangup", "text": "感谢来电，再见。"},
}}


def broken(path, value):
    flow = copy.deepcopy(FLOW)
    target = flow
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return flow


def test_a_real_flow_is_accepted_as_it_is():
    assert check_flow(copy.deepcopy(FLOW)) == FLOW


@pytest.mark.parametrize("path, value, message", [
    (("nodes", "menu", "choices", "1"), "sales2", "node 'menu' leads to 'sales2', which is not a node"),
    (("nodes", "menu", "kind"), "menuu", "node 'menu' kind 'menuu' is unknown; one of play, menu"),
    (("nodes", "welcome", "colour"), "red", "node 'welcome' field 'colour' is not a field of a play node"),
    (("nodes", "sales", "queue"), KeyError, "node 'sales' lacks field 'queue'"),
    (("nodes", "welcome", "text"), KeyError, "node 'welcome' says nothing: give it a prompt or a text"),
    (("nodes", "menu", "choices"), {"x": "sales"}, "node 'menu' choice 'x': a key is one of 0-9 \\* #"),
    (("nodes", "order_no", "min"), 20, "node 'order_no' collects at least 'min' digits, more than its 'max'"),
    (("nodes", "order_no", "pattern"), "([0-9", "node 'order_no' field 'pattern': '\\(\\[0-9' is not a regular"),
    (("nodes", "lookup", "url"), "ftp://x", "node 'lookup' field 'url': 'ftp://x' is not an http:// or https://"),
    (("nodes", "agent", "to"), "seat:99x", "node 'agent' field 'to': 'seat:99x' is not seat:N, ext:NNN"),
    (("nodes", "hours", "holidays"), ["2026-13-01"], "node 'hours' field 'holidays': '2026-13-01' is not a date"),
    (("nodes", "hours", "schedule", "mon"), ["18:00-09:00"], "schedule mon: '18:00-09:00' is not HH:MM-HH:MM"),
    (("nodes", "hours", "schedule", "sunday"), [], "schedule day 'sunday' is not one of mon"),
    (("start",), "nowhere", "start 'nowhere' is not a node"),
])
def test_mistakes_are_refused_naming_the_node(path, value, message):
    with pytest.raises(ConfigError, match=message):
        check_flow(broken(path, value))


def test_an_unreachable_node_is_named():
    flow = broken(("nodes", "orphan"), {"kind": "hangup"})
    with pytest.raises(ConfigError, match="node 'orphan' cannot be reached from the start 'hours'"):
        check_flow(flow)


def test_a_menu_with_no_way_out_is_named():
    flow = copy.deepcopy(FLOW)
    flow["nodes"]["loop"] = {"kind": "menu", "text": "按1重听", "choices": {"1": "loop"}, "on_fail": "loop"}
    flow["nodes"]["menu"]["choices"]["8"] = "loop"
    with pytest.raises(ConfigError, match="node 'loop' has no way out: no path from it reaches a queue"):
        check_flow(flow)


@pytest.mark.parametrize("when, expected", [
    ("2026-11-30 08:59", False), ("2026-11-30 09:00", True), ("2026-11-30 12:30", False),  # Monday, lunch closed
    ("2026-11-30 17:59", True), ("2026-11-30 18:00", False),
    ("2026-12-04 17:30", False),  # Friday closes at 17:00
    ("2026-12-05 10:00", True), ("2026-12-05 12:00", False),  # Saturday morning only
    ("2026-12-06 10:00", False),  # Sunday: no hours
    ("2026-10-01 10:00", False),  # National Day, a Thursday: holiday
    ("2026-10-11 10:00", True), ("2026-10-11 12:45", False),  # a Sunday made a working day: Monday's hours
])
def test_time_branch(when, expected):
    assert is_open(FLOW["nodes"]["hours"], dt.datetime.fromisoformat(when)) is expected


def test_the_first_ivr_settings_make_a_valid_flow():
    flow = check_flow(default_flow({"1": "queue", "0": "hangup", "9": "repeat"}))
    assert flow["nodes"]["welcome"]["choices"] == {"1": "queue", "0": "goodbye", "9": "welcome"}
