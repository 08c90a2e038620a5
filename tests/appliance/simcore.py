"""Cores on the simulated card in virtual time, for the scenario tests: prompts as beeps (no espeak-ng wait at
start, the call path does not depend on words), every core closed after its test."""

from __future__ import annotations

import contextlib
from typing import Iterator

from appliance.clock import VirtualClock
from appliance.core import Core, render_prompts
from appliance.prompts import PromptLibrary


def beep_prompts(data, cfg: dict, replace: dict | None = None) -> dict:
    """The config's prompt set rendered without espeak-ng; ``replace`` swaps some for a test's own clips."""
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    assert set(replace or {}) <= set(prompts), "a replaced prompt must be one the core uses"
    prompts.update(replace or {})
    return prompts


@contextlib.contextmanager
def cores() -> Iterator:
    """A function ``make(data, cfg, card, *, epoch, media, prompts=None) -> Core``; the cores close at the end."""
    made: list[Core] = []

    def make(data, cfg: dict, card, *, epoch: float, media: bool, prompts: dict | None = None) -> Core:
        core = Core(data, cfg, VirtualClock(epoch), card=card, prompts=beep_prompts(data, cfg, prompts), media=media)
        made.append(core)
        return core

    try:
        yield make
    finally:
        for core in made:
            core.close()
