"""One caller's walk through an IVR flow (``appliance.flows``), sans-I/O: the successor of ``ivr.IvrSession``.

``FlowSession`` has the entry points of the first IVR (``start``, ``digit``,
``prompt_done``, ``timeout``) plus ``http_result``; each returns the actions for
the caller's port and, when the caller leaves the flow, an ``Outcome``: to a
queue, a transfer target, a voicemail box, or hang up. Every node visited is a
journal event ``ivr.node``; digits are ``ivr.digit``; failures ``ivr.fail``.

What a node says: ``prompt`` names a prompt of the runtime's set; ``text`` is
rendered by TTS when the flow is loaded, under the name ``text_prompt(NODE, text)``. The
answer of an http node is spoken with ``Say`` (its text has the answer's
fields filled in: it can only be rendered then). Local wall time for time
nodes comes from the ``wall`` function the session is given (``now`` ->
datetime); nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from .actions import Action, LogEvent, Play, StopPlay
from .flows import is_open

MAX_STEPS = 50  # nodes visited without the caller doing anything: a flow this busy is looping


@dataclass(frozen=True)
class HttpLookup:
    """Action: ask a business system; answer with ``FlowSession.http_result``."""

    call_id: str
    url: str
    timeout_s: float


@dataclass(frozen=True)
class Say:
    """Action: speak ``text`` on ``port`` (rendered by TTS now; a ``PromptDone`` follows)."""

    port: int
    text: str


@dataclass(frozen=True)
class Outcome:
    kind: str  # queue | transfer | voicemail | hangup
    target: str | None = None  # queue name, transfer target (seat:1, number:...), voicemail box


def text_prompt(node: str, text: str) -> str:
    """The prompt name of a node's text. It changes with the text, so a call still on an older flow keeps
    hearing that flow's words after a node of the same name was given new ones."""
    return f"flow:{node}:{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def _fill(template: str, values: dict[str, str], quote: bool = False) -> str:
    """``template`` with each ``{name}`` replaced by its value (URL-quoted with ``quote``); unknown names empty."""
    def one(m: re.Match) -> str:
        value = str(values.get(m[1], ""))
        return urllib.parse.quote(value, safe="") if quote else value
    return re.sub(r"\{([A-Za-z0-9_]+)\}", one, template)


class FlowSession:
    def __init__(self, call_id: str, port: int, flow: dict, *, wall: Callable[[float], dt.datetime],
                 variables: dict[str, str] | None = None) -> None:
        self.call_id, self.port, self.flow, self.wall = call_id, port, flow, wall
        self.vars: dict[str, str] = dict(variables or {})
        self.node: str | None = None
        self.state = "done"  # saying | invalid | waiting | lookup | leaving | done
        self.deadline: float | None = None
        self.failures = 0
        self.digits = ""
        self._leaving: Outcome | None = None
        self._steps = 0

    # --- entry points ---------------------------------------------------------------------------

    def start(self, now: float) -> tuple[list[Action], Outcome | None]:
        """Enter the start node; a flow may end at once (a closed time branch to a silent voicemail, say)."""
        return self._enter(self.flow["start"], now)

    def digit(self, digit: str, now: float) -> tuple[list[Action], Outcome | None]:
        node = self._spec()
        if node is None or node["kind"] not in ("menu", "collect") or self.state not in ("saying", "invalid", "waiting"):
            return [], None
        self._steps = 0
        stop = [StopPlay(self.port)] if self.state != "waiting" else []
        log = LogEvent(self.call_id, "ivr.digit", {"digit": digit, "node": self.node})
        if node["kind"] == "menu":
            target = node["choices"].get(digit)
            if target is None:
                acts, out = self._fail("invalid", now)
                return [*stop, log, *acts], out
            acts, out = self._enter(target, now)
            return [*stop, log, *acts], out
        return self._collect(node, digit, stop, log, now)

    def prompt_done(self, now: float) -> tuple[list[Action], Outcome | None]:
        if self.state == "leaving":
            self.state = "done"
            return [], self._leaving
        if self.state == "invalid":
            self.state = "saying"
            return self._say(self.node, self._spec()), None
        if self.state != "saying":
            return [], None
        node = self._spec()
        if node["kind"] in ("menu", "collect"):
            self.state, self.deadline = "waiting", now + float(node.get("timeout_s", 5.0))
            return [], None
        return self._enter(node["next"], now)  # play, or an http node's spoken answer

    def timeout(self, now: float) -> tuple[list[Action], Outcome | None]:
        if self.state != "waiting" or self.deadline is None or now < self.deadline:
            return [], None
        node = self._spec()
        if node["kind"] == "collect" and self.digits:
            return self._finish_collect(node, now)
        return self._fail("timeout", now)

    def http_result(self, ok: bool, fields: dict[str, str], now: float) -> tuple[list[Action], Outcome | None]:
        """The business system answered (``ok``, its fields) or failed (not ``ok``: timeout, error)."""
        node = self._spec()
        if self.state != "lookup" or node is None:
            return [], None
        log = LogEvent(self.call_id, "ivr.http", {"node": self.node, "ok": ok, "fields": dict(fields)})
        if not ok:
            acts, out = self._enter(node["on_error"], now)
            return [log, *acts], out
        self.vars.update({k: str(v) for k, v in fields.items()})
        for case in node.get("cases", ()):
            if all(str(fields.get(k)) == str(v) for k, v in case["if"].items()):
                acts, out = self._enter(case["next"], now)
                return [log, *acts], out
        if "say" in node:
            self.state = "saying"
            return [log, Say(self.port, _fill(node["say"], self.vars))], None
        acts, out = self._enter(node["next"], now)
        return [log, *acts], out

    # --- walking the graph ------------------------------------------------------------------------

    def _spec(self) -> dict | None:
        return self.flow["nodes"].get(self.node) if self.node else None

    def _say(self, name: str, node: dict) -> list[Action]:
        if "prompt" in node:
            return [Play(self.port, node["prompt"])]
        if "text" in node:
            return [Play(self.port, text_prompt(name, node["text"]))]
        return []

    def _enter(self, name: str, now: float) -> tuple[list[Action], Outcome | None]:
        self._steps += 1
        if self._steps > MAX_STEPS:
            self.state, self.deadline = "done", None
            return [LogEvent(self.call_id, "ivr.fail", {"reason": "loop", "node": name})], Outcome("hangup")
        node = self.flow["nodes"][name]
        if name != self.node:
            self.failures, self.digits = 0, ""
        self.node, self.deadline = name, None
        kind = node["kind"]
        acts: list[Action] = [LogEvent(self.call_id, "ivr.node", {"node": name, "kind": kind})]
        if kind == "time":
            branch = "open" if is_open(node, self.wall(now)) else "closed"
            more, out = self._enter(node[branch], now)
            return acts + more, out
        if kind == "set":
            self.vars[node["var"]] = _fill(node["value"], self.vars)
            more, out = self._enter(node["next"], now)
            return acts + more, out
        if kind == "http":
            self.state = "lookup"
            url = _fill(node["url"], self.vars, quote=True)
            return acts + [HttpLookup(self.call_id, url, float(node.get("timeout_s", 3.0)))], None
        said = self._say(name, node)
        if kind in ("queue", "transfer", "voicemail", "hangup"):
            outcome = Outcome(kind, node.get({"queue": "queue", "transfer": "to", "voicemail": "box"}.get(kind, "")))
            if said:
                self.state, self._leaving = "leaving", outcome
                return acts + said, None
            self.state = "done"
            return acts, outcome
        self.state = "saying"  # play, menu, collect
        return acts + said, None

    def _fail(self, reason: str, now: float) -> tuple[list[Action], Outcome | None]:
        node = self._spec()
        self.failures += 1
        self.digits = ""
        log = LogEvent(self.call_id, "ivr.fail", {"node": self.node, "reason": reason, "count": self.failures})
        if self.failures > int(node.get("retries", 2)):
            acts, out = self._enter(node["on_fail"], now)
            return [log, *acts], out
        self.state, self.deadline = "saying", None
        if reason == "invalid" and "invalid" in node:  # "invalid key", then the node's own words again
            self.state = "invalid"
            return [log, Play(self.port, node["invalid"])], None
        return [log, *self._say(self.node, node)], None

    def _collect(self, node: dict, digit: str, stop: list, log: LogEvent,
                 now: float) -> tuple[list[Action], Outcome | None]:
        if digit == node.get("terminator", "#"):
            acts, out = self._finish_collect(node, now)
            return [*stop, log, *acts], out
        self.digits += digit
        self.state, self.deadline = "waiting", now + float(node.get("timeout_s", 5.0))
        if len(self.digits) >= int(node.get("max", 20)):
            acts, out = self._finish_collect(node, now)
            return [*stop, log, *acts], out
        return [*stop, log], None

    def _finish_collect(self, node: dict, now: float) -> tuple[list[Action], Outcome | None]:
        got = self.digits
        if len(got) < int(node.get("min", 1)) or ("pattern" in node and not re.search(node["pattern"], got)):
            return self._fail("invalid", now)
        self.vars[node["var"]] = got
        return self._enter(node["next"], now)
