"""The first IVR: a welcome prompt and a one-level menu (digit -> queue, hang up, repeat), per call.

Sans-I/O: each method takes ``now`` and returns the actions for this call's trunk
port plus an outcome when the caller leaves the IVR ("queue" or "hangup").
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import Action, LogEvent, Play, StopPlay

MENU_ACTIONS = ("queue", "hangup", "repeat")


@dataclass(frozen=True)
class IvrConfig:
    menu: dict  # DTMF key -> one of MENU_ACTIONS
    digit_timeout_s: float = 5.0
    retries: int = 2  # invalid or missing inputs allowed before goodbye

    @classmethod
    def from_config(cls, ivr: dict) -> "IvrConfig":
        return cls(dict(ivr["menu"]), float(ivr["digit_timeout_s"]), int(ivr["retries"]))


class IvrSession:
    """One caller's walk through the menu.

    States: ``welcome`` (prompt playing, digits accepted), ``invalid`` (the invalid-input
    prompt playing), ``waiting`` (prompt over, digit timer running), ``goodbye``
    (last prompt playing; the call is cleared when it ends), ``done``.
    """

    def __init__(self, call_id: str, port: int, cfg: IvrConfig) -> None:
        self.call_id, self.port, self.cfg = call_id, port, cfg
        self.state = "done"
        self.failures = 0
        self.deadline: float | None = None

    def _node(self, node: str, **data: object) -> LogEvent:
        return LogEvent(self.call_id, "ivr.node", {"node": node, **data})

    def _play(self, prompt: str, state: str) -> list[Action]:
        self.state, self.deadline = state, None
        return [Play(self.port, prompt), self._node(prompt)]

    def start(self, now: float) -> list[Action]:
        return self._play("welcome", "welcome")

    def _fail(self, reason: str) -> list[Action]:
        self.failures += 1
        log = LogEvent(self.call_id, "ivr.fail", {"reason": reason, "count": self.failures})
        if self.failures > self.cfg.retries:
            return [log, *self._play("goodbye", "goodbye")]
        prompt = "invalid" if reason == "invalid" else "welcome"
        return [log, *self._play(prompt, prompt)]

    def digit(self, digit: str, now: float) -> tuple[list[Action], str | None]:
        if self.state not in ("welcome", "invalid", "waiting"):
            return [], None
        playing = self.state != "waiting"
        stop = [StopPlay(self.port)] if playing else []
        log = LogEvent(self.call_id, "ivr.digit", {"digit": digit})
        choice = self.cfg.menu.get(digit)
        if choice == "queue":
            self.state, self.deadline = "done", None
            return [*stop, log, self._node("queue")], "queue"
        if choice == "hangup":
            return [*stop, log, *self._play("goodbye", "goodbye")], None
        if choice == "repeat":
            return [*stop, log, *self._play("welcome", "welcome")], None
        return [*stop, log, *self._fail("invalid")], None

    def prompt_done(self, now: float) -> tuple[list[Action], str | None]:
        if self.state == "goodbye":
            self.state = "done"
            return [], "hangup"
        if self.state == "invalid":
            return self._play("welcome", "welcome"), None
        if self.state == "welcome":
            self.state, self.deadline = "waiting", now + self.cfg.digit_timeout_s
        return [], None

    def timeout(self, now: float) -> tuple[list[Action], str | None]:
        if self.state != "waiting" or self.deadline is None or now < self.deadline:
            return [], None
        return self._fail("timeout"), None
