"""IVR flows as data: a graph of nodes in the configuration, checked before it is accepted.

A flow is ``{"start": NAME, "nodes": {NAME: NODE, ...}}``; each node has a
``kind`` and the fields of that kind (``KINDS``). Nodes lead to other nodes by
name (``next``, menu ``choices``, ``on_fail``, ``open``/``closed``, http
``cases``/``on_error``); the call leaves the flow at a terminal node: ``queue``,
``transfer``, ``voicemail`` or ``hangup``.

``check_flow`` refuses, naming the node: an unknown kind or field, a field of
the wrong type, a target that is not a node, a node that cannot be reached from
the start, and a node from which no path leads out of the flow (a menu whose
choices all loop back, say). ``is_open`` evaluates a time branch: business hours
per weekday, a holiday calendar, and working-day exceptions (China moves
weekends around public holidays, 调休: such a Saturday keeps Monday's hours).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .errors import ConfigError

TERMINAL = ("queue", "transfer", "voicemail", "hangup")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DIGITS = frozenset("0123456789*#")
TRANSFER_TO = re.compile(r"(seat:[1-9][0-9]?|ext:[0-9]{2,8}|agent:[0-9]{2,8}|number:\+?[0-9]{3,20}|dept:.{1,32})")
_NAME = re.compile(r"[A-Za-z0-9_\-\u4e00-\u9fff]{1,40}")
_SPAN = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")

# kind -> {field: (type, required)}; "node" fields name other nodes
_SAY = {"prompt": ("str", False), "text": ("str", False)}
KINDS: dict[str, dict[str, tuple[str, bool]]] = {
    "play": {**_SAY, "next": ("node", True)},
    "menu": {**_SAY, "choices": ("choices", True), "timeout_s": ("number", False), "retries": ("int", False),
             "invalid": ("str", False), "on_fail": ("node", True)},
    "collect": {**_SAY, "var": ("str", True), "min": ("int", False), "max": ("int", False),
                "terminator": ("str", False), "pattern": ("regex", False), "timeout_s": ("number", False),
                "retries": ("int", False), "invalid": ("str", False), "next": ("node", True),
                "on_fail": ("node", True)},
    "time": {"schedule": ("schedule", True), "holidays": ("dates", False), "workdays": ("dates", False),
             "open": ("node", True), "closed": ("node", True)},
    "http": {"url": ("url", True), "timeout_s": ("number", False), "say": ("str", False), "cases": ("cases", False),
             "next": ("node", True), "on_error": ("node", True)},
    "set": {"var": ("str", True), "value": ("str", True), "next": ("node", True)},
    "queue": {"queue": ("str", True), **_SAY},
    "transfer": {"to": ("transfer", True), **_SAY},
    "voicemail": {"box": ("str", True), **_SAY},
    "hangup": {**_SAY},
}


def _fail(node: str, why: str) -> ConfigError:
    return ConfigError(f"ivr.flow: node {node!r} {why}")


def _check_field(node: str, field: str, kind: str, value: Any) -> list[str]:
    """Check one field; the names of the nodes it leads to."""
    def bad(expected: str) -> ConfigError:
        return _fail(node, f"field {field!r}: {value!r} is not {expected}")

    if kind == "node":
        if not isinstance(value, str) or not value:
            raise bad("a node name")
        return [value]
    if kind == "str" and not (isinstance(value, str) and value):
        raise bad("a non-empty string")
    if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100):
        raise bad("a whole number 0..100")
    if kind == "number" and not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 600):
        raise bad("a number of seconds, 0 < s <= 600")
    if kind == "regex":
        try:
            re.compile(value)
        except (re.error, TypeError):
            raise bad("a regular expression") from None
    if kind == "url" and not (isinstance(value, str) and re.match(r"https?://[^\s]+$", value)):
        raise bad("an http:// or https:// URL")
    if kind == "transfer" and not (isinstance(value, str) and TRANSFER_TO.fullmatch(value)):
        raise bad("seat:N, ext:NNN, agent:ID, number:DIGITS or dept:NAME")
    if kind == "dates":
        if not isinstance(value, list):
            raise bad("a list of dates (YYYY-MM-DD)")
        for d in value:
            try:
                dt.date.fromisoformat(d)
            except (TypeError, ValueError):
                raise _fail(node, f"field {field!r}: {d!r} is not a date (YYYY-MM-DD)") from None
    if kind == "schedule":
        _check_schedule(node, value)
    if kind == "choices":
        if not isinstance(value, dict) or not value:
            raise bad("an object of key -> node")
        for key, target in value.items():
            if key not in DIGITS or not isinstance(target, str):
                raise _fail(node, f"choice {key!r}: a key is one of 0-9 * # and leads to a node name")
        return list(value.values())
    if kind == "cases":
        if not isinstance(value, list):
            raise bad("a list of {\"if\": {field: value}, \"next\": node}")
        targets = []
        for i, case in enumerate(value):
            if not (isinstance(case, dict) and isinstance(case.get("if"), dict) and isinstance(case.get("next"), str)):
                raise _fail(node, f"case {i}: expected {{\"if\": {{field: value}}, \"next\": node}}")
            targets.append(case["next"])
        return targets
    return []


def _check_schedule(node: str, schedule: Any) -> None:
    if not isinstance(schedule, dict):
        raise _fail(node, "field 'schedule': expected {day: [\"HH:MM-HH:MM\", ...]} with days mon..sun")
    for day, spans in schedule.items():
        if day not in DAYS:
            raise _fail(node, f"schedule day {day!r} is not one of {', '.join(DAYS)}")
        if not isinstance(spans, list):
            raise _fail(node, f"schedule {day}: expected a list of \"HH:MM-HH:MM\"")
        for span in spans:
            m = _SPAN.fullmatch(span) if isinstance(span, str) else None
            if m is None or (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
                raise _fail(node, f"schedule {day}: {span!r} is not HH:MM-HH:MM with the start before the end")


def check_flow(flow: Any) -> dict:
    """``flow`` checked (see the module docstring); returns it unchanged, or raises ConfigError naming the node."""
    if not isinstance(flow, dict) or set(flow) != {"start", "nodes"} or not isinstance(flow["nodes"], dict):
        raise ConfigError("ivr.flow: expected {\"start\": NODE, \"nodes\": {NAME: NODE, ...}}")
    nodes, start = flow["nodes"], flow["start"]
    if not nodes:
        raise ConfigError("ivr.flow: has no nodes")
    edges: dict[str, list[str]] = {}
    for name, node in nodes.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"ivr.flow: node name {name!r} must be 1-40 letters, digits, _ or -")
        if not isinstance(node, dict) or node.get("kind") not in KINDS:
            kind = node.get("kind") if isinstance(node, dict) else node
            raise _fail(name, f"kind {kind!r} is unknown; one of {', '.join(KINDS)}")
        spec = KINDS[node["kind"]]
        unknown = sorted(set(node) - set(spec) - {"kind"})
        if unknown:
            raise _fail(name, f"field {unknown[0]!r} is not a field of a {node['kind']} node; "
                              f"allowed: {', '.join(sorted(spec))}")
        missing = [f for f, (_, required) in spec.items() if required and f not in node]
        if missing:
            raise _fail(name, f"lacks field {missing[0]!r}")
        if node["kind"] in ("play", "menu", "collect") and "prompt" not in node and "text" not in node:
            raise _fail(name, "says nothing: give it a prompt or a text")
        edges[name] = [t for f, (kind, _) in spec.items() if f in node for t in _check_field(name, f, kind, node[f])]
        for target in edges[name]:
            if target not in nodes:
                raise _fail(name, f"leads to {target!r}, which is not a node")
        if node["kind"] == "collect" and node.get("min", 1) > node.get("max", 20):
            raise _fail(name, "collects at least 'min' digits, more than its 'max'")
    if start not in nodes:
        raise ConfigError(f"ivr.flow: start {start!r} is not a node")
    reached = _reach(start, edges)
    lost = [n for n in nodes if n not in reached]
    if lost:
        raise _fail(lost[0], f"cannot be reached from the start {start!r}")
    exits = {n for n, node in nodes.items() if node["kind"] in TERMINAL}
    escape = {n for n in nodes if _reach(n, edges) & exits}
    trapped = [n for n in nodes if n not in escape]
    if trapped:
        raise _fail(trapped[0], "has no way out: no path from it reaches a queue, transfer, voicemail or hangup")
    return flow


def _reach(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def is_open(node: dict, when: dt.datetime) -> bool:
    """Whether a time node's hours include local time ``when``: holidays are closed, listed working days keep
    Monday's hours whatever weekday they fall on, other days their own."""
    day = when.date().isoformat()
    if day in node.get("holidays", ()):
        return False
    key = "mon" if day in node.get("workdays", ()) else DAYS[when.weekday()]
    minute = when.hour * 60 + when.minute
    for span in node["schedule"].get(key, ()):
        m = _SPAN.fullmatch(span)
        if int(m[1]) * 60 + int(m[2]) <= minute < int(m[3]) * 60 + int(m[4]):
            return True
    return False


def default_flow(menu: dict[str, str]) -> dict:
    """The flow the first IVR's settings describe: welcome, a one-level menu, the queue or goodbye."""
    choices = {key: {"queue": "queue", "hangup": "goodbye", "repeat": "welcome"}[action]
               for key, action in menu.items()}
    return {"start": "welcome", "nodes": {
        "welcome": {"kind": "menu", "prompt": "welcome", "choices": choices, "invalid": "invalid",
                    "on_fail": "goodbye"},
        "queue": {"kind": "queue", "queue": "default"},
        "goodbye": {"kind": "hangup", "prompt": "goodbye"},
    }}
