"""The call-centre sections of the configuration: queues, agents, and the checks that tie them to seats and the IVR.

``queue`` (a mapping) is the first queue; ``queues`` (a list) holds any further
ones, each with the same options. ``agents`` lists the people who log in at a
seat; with no agents listed, every seat is its own agent, logged in from the start.
Every name a queue, a seat, an agent or the IVR flow gives (a queue, a seat, an
extension) must exist: ``check_references`` names the first that does not.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ConfigError
from .flows import default_flow
from .options import Option, check_mapping, type_name
from .sms.dispatch import sms_number

STRATEGY_CHOICES = ("ring-all", "round-robin", "random", "fewest-calls", "least-talk-time", "longest-idle",
                    "skill-level", "fixed-order")

QUEUE_OPTIONS: dict[str, Option] = {
    "name": Option("str", "default", "queue name", 1, 32),
    "strategy": Option("choice", "longest-idle", "which available agent gets the next call: ring-all, "
                       "round-robin, random, fewest-calls (today), least-talk-time (today), longest-idle, "
                       "skill-level (the agents' skill in this queue, highest first) or fixed-order (seat 1 first)",
                       choices=STRATEGY_CHOICES),
    "ring_timeout_s": Option("float", 15.0, "ring an agent this long before trying the next", 5, 120, unit="seconds"),
    "max_wait_s": Option("float", 300.0, "longest a caller waits in queue; then the overflow target", 10, 3600,
                         unit="seconds"),
    "max_length": Option("int", 0, "callers waiting at most; a caller beyond goes to the overflow target at once "
                         "(0: no limit)", 0, 100),
    "overflow": Option("target", "", "where a caller goes after max_wait_s or beyond max_length: queue:NAME, "
                       "voicemail:BOX, seat:N, number:DIGITS (the duty mobile), hangup, or empty (goodbye)"),
    "wrap_up_s": Option("float", 0.0, "after each call the agent is in wrap-up this long before the next call",
                        0, 600, unit="seconds"),
    "missed_offers": Option("int", 3, "an agent who lets this many offered calls in a row ring out is set busy "
                            "with reason 'no answer' (0: never)", 0, 10),
    "announce_s": Option("float", 30.0, "tell waiting callers their position and estimated wait this often "
                         "(0: never)", 0, 600, unit="seconds"),
    "hold": Option("choice", "music", "what waiting callers hear between announcements: music or ringback",
                   choices=("music", "ringback")),
    "callback_key": Option("key", "", "a waiting caller who presses this key hangs up and keeps their place; "
                           "called back when an agent is free (empty: off)"),
}

AGENT_ITEM: dict[str, Option] = {
    "id": Option("digits", None, "agent number, typed at login (*1 ID * PIN #), unique", 2, 8),
    "name": Option("str", None, "the agent's name, shown on pages and in reports", 1, 32),
    "pin": Option("digits", "", "login PIN (empty: none)", 0, 8),
    "skill": Option("int", 5, "skill level in every queue not listed in queues", 1, 10),
    "queues": Option("skills", {}, "queue name -> skill level 1..10 in it; empty: every queue at skill", 1, 10),
}


DEPARTMENT_ITEM: dict[str, Option] = {
    "name": Option("str", None, "the department's name, as IVR transfers name it (dept:NAME), unique", 1, 32),
    "number": Option("digits", None, "the number a transfer to it dials on a trunk channel", 3, 20),
    "mobile": Option("digits", "", "the department's mobile, texted by sms_rules with to_department (empty: none)",
                     0, 20),
}


def check_departments(raw: Any) -> list[dict]:
    if not isinstance(raw, list):
        raise ConfigError(f"departments: {raw!r} is {type_name(raw)}; expected a list of {{name, number}}")
    out: list[dict] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        for required in ("name", "number"):
            if isinstance(item, dict) and required not in item:
                raise ConfigError(f"departments[{i}].{required}: missing; every department needs a name and a number")
        dept = check_mapping(f"departments[{i}]", DEPARTMENT_ITEM, item, {"mobile": ""})
        if dept["mobile"] and sms_number(dept["mobile"]) is None:
            raise ConfigError(f"departments[{i}].mobile: {dept['mobile']!r} is not a mobile number; SMS reach "
                              "mobiles only (empty: none)")
        if dept["name"] in seen:
            raise ConfigError(f"departments[{i}].name: {dept['name']!r} is already used by departments"
                              f"[{seen[dept['name']]}]; department names must be unique")
        seen[dept["name"]] = i
        out.append(dept)
    return out


def check_queues(raw: Any) -> list[dict]:
    """The ``queues`` list section checked (the further queues); unique names are checked with the first."""
    if not isinstance(raw, list):
        raise ConfigError(f"queues: {raw!r} is {type_name(raw)}; expected a list with one item per further queue")
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and "name" not in item:
            raise ConfigError(f"queues[{i}].name: missing; every further queue needs a name")
        defaults = {k: copy.deepcopy(o.default) for k, o in QUEUE_OPTIONS.items()}
        out.append(check_mapping(f"queues[{i}]", QUEUE_OPTIONS, item, defaults))
    return out


def check_agents(raw: Any) -> list[dict]:
    if not isinstance(raw, list):
        raise ConfigError(f"agents: {raw!r} is {type_name(raw)}; expected a list with one item per agent")
    out: list[dict] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        where = f"agents[{i}]"
        for required in ("id", "name"):
            if isinstance(item, dict) and required not in item:
                raise ConfigError(f"{where}.{required}: missing; every agent needs an id and a name")
        agent = check_mapping(where, AGENT_ITEM, item, {"pin": "", "skill": 5, "queues": {}})
        if agent["id"] in seen:
            raise ConfigError(f"{where}.id: {agent['id']!r} is already used by agents[{seen[agent['id']]}]; "
                              "agent ids must be unique")
        seen[agent["id"]] = i
        out.append(agent)
    return out


def all_queues(cfg: dict) -> list[dict]:
    """Every queue of a validated config: ``queue`` first, then ``queues``."""
    return [cfg["queue"], *cfg["queues"]]


def ivr_flow(cfg: dict) -> dict:
    """The IVR flow calls walk: ``ivr.flow`` (transfers to a department as to its number), or the one the
    simple menu settings describe."""
    if cfg["ivr"]["flow"] is not None:
        numbers = {d["name"]: d["number"] for d in cfg["departments"]}
        flow = copy.deepcopy(cfg["ivr"]["flow"])
        for node in flow["nodes"].values():
            if node["kind"] == "transfer" and node["to"].startswith("dept:"):
                node["to"] = f"number:{numbers[node['to'][5:]]}"
        return flow
    flow = default_flow(cfg["ivr"]["menu"])
    flow["nodes"]["queue"]["queue"] = cfg["queue"]["name"]
    for name, node in flow["nodes"].items():
        if node["kind"] == "menu":
            node["timeout_s"], node["retries"] = cfg["ivr"]["digit_timeout_s"], cfg["ivr"]["retries"]
    return flow


def check_references(cfg: dict) -> None:
    """Every queue, seat and extension named by queues, seats, agents and the IVR flow exists."""
    names: dict[str, str] = {}
    for where, q in [("queue", cfg["queue"])] + [(f"queues[{i}]", q) for i, q in enumerate(cfg["queues"])]:
        if q["name"] in names:
            raise ConfigError(f"{where}.name: {q['name']!r} is already the name of {names[q['name']]}; "
                              "queue names must be unique")
        names[q["name"]] = where
    seats = {s["seat"] for s in cfg["seats"]}
    extensions = {s["extension"] for s in cfg["seats"]}

    def target(where: str, value: str) -> None:
        kind, _, arg = value.partition(":")
        if kind == "queue" and arg not in names:
            raise ConfigError(f"{where}: {value!r} names no queue; queues: {', '.join(names)}")
        if kind == "seat" and int(arg) not in seats:
            raise ConfigError(f"{where}: {value!r} names no seat; seats: {', '.join(map(str, sorted(seats)))}")
        if kind == "dept" and arg not in {d["name"] for d in cfg["departments"]}:
            raise ConfigError(f"{where}: {value!r} names no department; departments: "
                              f"{', '.join(d['name'] for d in cfg['departments']) or 'none'}")
        if kind == "agent" and arg not in {a["id"] for a in cfg["agents"]}:
            raise ConfigError(f"{where}: {value!r} names no agent of the agents section")
        if kind == "ext" and arg not in extensions:
            raise ConfigError(f"{where}: {value!r} names no seat's extension; extensions: "
                              f"{', '.join(sorted(extensions))}")

    for i, q in enumerate(all_queues(cfg)):
        where = "queue" if i == 0 else f"queues[{i - 1}]"
        target(f"{where}.overflow", q["overflow"])
        if q["overflow"] == f"queue:{q['name']}":
            raise ConfigError(f"{where}.overflow: {q['overflow']!r} is the queue itself")
    for section in ("seats", "agents"):
        for i, item in enumerate(cfg[section]):
            for name in item["queues"]:
                if name not in names:
                    raise ConfigError(f"{section}[{i}].queues.{name}: no such queue; queues: {', '.join(names)}")
    flow = cfg["ivr"]["flow"]
    for name, node in (flow or {"nodes": {}})["nodes"].items():
        if node["kind"] == "queue":
            target(f"ivr.flow: node {name!r} field 'queue'", f"queue:{node['queue']}")
        if node["kind"] == "transfer":
            target(f"ivr.flow: node {name!r} field 'to'", node["to"])
