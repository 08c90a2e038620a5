"""The control API's ``config.reload``: the core takes up a configuration saved by the web page or the command
line, as far as it can without a restart.

A part of ``Core``. Read and checked off the loop, prompts rendered off the loop (TTS is
slow on a cache miss), then applied between two ticks. Taken up live: the IVR (flow,
welcome, menu, prompts' words), screening, queue settings (same queue names), the
agents list and the recording section (policy, mode, retention: for what starts from now
on). Anything else (card, span, seats, SIP, queue names, TTS voice or level) is
saved but waits for a restart; the answer says which sections those are. A config file
that does not validate changes nothing and is refused with the checker's message.
"""

from __future__ import annotations

import asyncio

from .acd import strategy_name
from .config import SECTIONS, caller_texts, screening, validate
from .config_acd import all_queues, ivr_flow
from .configfile import load_config
from .control import CommandError
from .errors import ConfigError
from .promptset import VOICE_LANG, render_prompts

LIVE = ("ivr", "prompts", "screening", "queue", "queues", "agents", "recording")
NEEDS_RESTART_IVR = ("voice", "prompt_level_dbm0")  # the TTS voice and level of every prompt and spoken answer


class Reload:
    def register_reload_command(self) -> None:
        self.server.register("config.reload", self.config_reload, {})

    async def config_reload(self) -> dict:
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, load_config, self.data.config)
        except ConfigError as e:
            raise CommandError("bad_config", str(e)) from None
        changed = [s for s in SECTIONS if new[s] != self.cfg[s]]
        restart = [s for s in changed if s not in LIVE]
        if [q["name"] for q in all_queues(new)] != [q["name"] for q in all_queues(self.cfg)]:
            restart.append("queues")  # calls wait in the queues by name: a new set of queues needs a restart
        if any(new["ivr"][k] != self.cfg["ivr"][k] for k in NEEDS_RESTART_IVR):
            restart.append("ivr")
        if bool(new["agents"]) != bool(self.cfg["agents"]):  # seats that are their own agents, or log-ins
            restart.append("agents")
        live = [s for s in changed if s in LIVE and s not in restart]
        prompts = {}
        if "ivr" in live or "prompts" in live:
            prompts = await loop.run_in_executor(None, render_prompts, self.library, new)
        self._apply(new, live, prompts)
        return {"applied": live, "restart_needed": sorted(set(restart))}

    def set_flow(self, flow: dict) -> None:
        """Apply a changed IVR flow at once, as ``config.reload`` would: checked against the rest of the config,
        its texts rendered here (slow on a TTS cache miss: not from the tick), then new calls walk it.

        Raises ConfigError naming the node, and changes nothing, when the flow is refused."""
        new = validate({**self.cfg, "ivr": {**self.cfg["ivr"], "flow": flow}})
        self._apply(new, ["ivr"], render_prompts(self.library, new))

    def _apply(self, new: dict, live: list[str], prompts: dict) -> None:
        """Take up the ``live`` sections of ``new`` (on the loop, between ticks)."""
        logic = self.logic
        for name, samples in prompts.items():
            self.runtime.player.load(name, samples)
        if "ivr" in live:
            logic.set_flow(ivr_flow(new))  # new calls; calls in the IVR finish on the flow they started on
        if "prompts" in live:
            said = caller_texts(new, VOICE_LANG[new["ivr"]["voice"]])
            logic.texts.update({k: said[k] for k in logic.texts})
        if "screening" in live:
            logic.screening = screening(new)
        if "queue" in live or "queues" in live:
            for q in all_queues(new):
                logic.queue_cfg[q["name"]].update(q)
                logic.acd.queues[q["name"]].strategy = strategy_name(q["strategy"])
        if "recording" in live:  # calls answered from now on, retention and reserve at the next round
            self.apply_recording(new["recording"])
        if "agents" in live:  # who may log in from now on; an agent logged in stays until logging out
            logic.book.clear()
            logic.book.update({a["id"]: a for a in new["agents"]})
        self.cfg = {**self.cfg, **{s: new[s] for s in live}}
