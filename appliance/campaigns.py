"""The campaigns of a call centre: starting, pausing, stopping and restoring them, and pacing their calls by the
free agents (a part of ``CallCentre`` through ``appliance.outbound``; one campaign's numbers and rules are
``appliance.campaign.Campaign``, where the whole behaviour is described)."""

from __future__ import annotations

import math

from .actions import Action, LogEvent, Publish, SaveCampaign
from .caller import normalise
from .campaign import AGENT_REST_S, SAVE_S, Campaign


class Campaigns:
    """The campaigns of a ``CallCentre`` (a part of ``appliance.outbound.Outbound``)."""

    def _init_campaigns(self) -> None:
        self.campaigns: dict[str, Campaign] = {}  # by name, in start order
        self._campaign_now = -math.inf  # the pacing's last look

    def _epoch_offset(self, now: float) -> float:
        return self.wall(now).timestamp() - now

    def _campaign(self, name: str) -> Campaign:
        camp = self.campaigns.get(name)
        if camp is None:
            raise ValueError(f"name: no campaign {name!r}; campaigns: {', '.join(self.campaigns) or 'none'}")
        return camp

    # --- commands ---------------------------------------------------------------------------------------

    def start_campaign(self, name: str, numbers: list[str], now: float, *, seats: list[int] | None = None,
                       queue: str | None = None, **settings) -> tuple[dict, list[Action]]:
        """Start a campaign (ValueError naming the bad setting; ``settings``: hours, holidays, retries, dnc, ring_s
        as ``Campaign`` takes them); its status and the actions."""
        self.check_campaign(name, seats, queue)
        return self.add_campaign(Campaign(name, numbers, now, home_area=self.area_code, seats=seats, queue=queue,
                                          **settings), now)

    def check_campaign(self, name: str, seats: list[int] | None, queue: str | None) -> None:
        """What a new campaign's settings must agree with in the centre (ValueError naming the setting): its name
        free, its seats and queue configured. ``Campaign`` checks the rest, and normalising many numbers takes a
        while: the control API builds it off the loop, between this check and ``add_campaign``."""
        old = self.campaigns.get(name)
        if old is not None and old.state in ("running", "paused"):
            raise ValueError(f"name: campaign {name!r} is {old.state}; stop it first or choose another name")
        for seat in seats or ():
            if seat not in self.acd.by_seat:
                raise ValueError(f"seats: {seat!r} is not a configured seat")
        if queue is not None and queue not in self.queue_cfg:
            raise ValueError(f"queue: {queue!r} is not a queue; queues: {', '.join(self.queue_cfg)}")

    def add_campaign(self, camp: Campaign, now: float) -> tuple[dict, list[Action]]:
        """Run ``camp`` (made for this centre's area code); its status and the actions."""
        name = camp.name
        self.check_campaign(name, camp.seats, camp.queue)
        self.campaigns.pop(name, None)
        self.campaigns[name] = camp
        info = {"campaign": name, **{k: v for k, v in camp.summary()["entries"].items() if v}}
        out = [LogEvent("", "campaign.started", info), Publish("campaign.started", info), self._save(camp, now)]
        return self.campaign_status(now, name), out + self._campaigns_due(now)  # the free agents' first calls now

    def stop_campaign(self, name: str, now: float, *, pause: bool = False) -> list[Action]:
        """Stop (for good) or pause a running or paused campaign: calls still ringing an agent are cancelled."""
        camp = self._campaign(name)
        if camp.state not in ("running", "paused") or (pause and camp.state == "paused"):
            raise ValueError(f"name: campaign {name!r} is {camp.state}")
        camp.state = "paused" if pause else "stopped"
        out: list[Action] = []
        for call in [c for c in self.by_id.values() if getattr(c, "campaign", None) == name and c.state == "ringing"]:
            out += self._end(call, now, "failed", "system", cause=None, reason=f"campaign {camp.state}")
        info = {"campaign": name, "state": camp.state}
        return out + [LogEvent("", "campaign.state", info), Publish("campaign.state", info), self._save(camp, now)]

    def resume_campaign(self, name: str, now: float) -> list[Action]:
        camp = self._campaign(name)
        if camp.state != "paused":
            raise ValueError(f"name: campaign {name!r} is {camp.state}; only a paused one resumes")
        camp.state = "running"
        info = {"campaign": name, "state": "running"}
        return [LogEvent("", "campaign.state", info), Publish("campaign.state", info), self._save(camp, now),
                *self._campaigns_due(now)]

    def campaign_status(self, now: float, name: str | None = None, numbers: bool = False) -> dict:
        """One campaign's status (with each number's if ``numbers``), or all of them under ``campaigns``."""
        off = self._epoch_offset(now)

        def one(camp: Campaign) -> dict:
            s = camp.summary()
            s["open"] = camp.is_open(self.wall(now))
            s["calls"] = [c.call_id for c in self.by_id.values() if getattr(c, "campaign", None) == camp.name]
            if numbers:
                s["list"] = camp.numbers(off)
            return s
        if name is not None:
            return one(self._campaign(name))
        return {"campaigns": [one(c) for c in self.campaigns.values()]}

    def restore_campaigns(self, saved: list[dict], now: float) -> list[Action]:
        """Bring back the running and paused campaigns the journal saved (``Journal.campaigns``); a campaign that
        cannot be read back is left out with a ``campaign.restore_failed`` event."""
        off = self._epoch_offset(now)
        out: list[Action] = []
        for item in saved:
            name = item.get("name")
            if item.get("state") not in ("running", "paused") or name in self.campaigns:
                continue
            try:
                data = dict(item)
                data["seats"] = [s for s in data["seats"] if s in self.acd.by_seat] or None \
                    if data["seats"] else None
                if data["queue"] is not None and data["queue"] not in self.queue_cfg:
                    data["queue"] = None
                camp = Campaign.from_data(name, data, now, off, self.area_code)
            except (KeyError, TypeError, ValueError) as e:
                out.append(LogEvent("", "campaign.restore_failed", {"campaign": name, "error": str(e)}))
                continue
            camp.dirty = False
            self.campaigns[name] = camp
            out.append(LogEvent("", "campaign.restored", {"campaign": name, "state": camp.state,
                                                          "pending": camp.summary()["entries"]["pending"]}))
        return out

    # --- pacing -------------------------------------------------------------------------------------------

    def _campaign_agents(self, camp: Campaign, now: float) -> list:
        """The campaign's agents free for a call now, longest idle first."""
        if camp.seats is not None:
            pool = [self.acd.by_seat[s] for s in camp.seats if s in self.acd.by_seat]
        elif camp.queue is not None:
            pool = [a for a in self.acd.agents if a.skill_in(camp.queue) is not None]
        else:
            pool = list(self.acd.agents)
        free = [a for a in pool if a.state == "available" and a.resume is None and a.call_id is None
                and a.wrap_until is None and camp.rest.get(a.seat, -math.inf) <= now]
        return sorted(free, key=lambda a: (a.idle_since, a.seat))

    def _campaigns_due(self, now: float) -> list[Action]:
        self._campaign_now = now
        out: list[Action] = []
        for camp in list(self.campaigns.values()):
            camp.check_at = None
            if camp.state == "running" and camp.all_done():
                camp.state = "finished"
                info = {"campaign": camp.name, "state": "finished", "attempts": camp.summary()["attempts"]}
                out += [LogEvent("", "campaign.state", info), Publish("campaign.state", info), self._save(camp, now)]
            elif camp.state == "running":
                wall = self.wall(now)
                if camp.is_open(wall):
                    out += self._campaign_pace(camp, now)
                else:  # hours are whole minutes: look again at the next minute
                    camp.check_at = now + 60.0 - wall.second - wall.microsecond / 1e6
            if camp.dirty and now >= camp.saved_at + SAVE_S:
                out.append(self._save(camp, now))
        return out

    def _campaign_pace(self, camp: Campaign, now: float) -> list[Action]:
        """One call per free agent, while numbers are due and trunk channels are spare."""
        agents = self._campaign_agents(camp, now)
        out: list[Action] = []
        spare = self._spare_trunks() if agents else 0
        for agent in agents:
            if spare <= 0:
                break
            i = camp.take(now)
            if i is None:
                break
            spare -= 1
            e = camp.entries[i]
            n = normalise(e.number, home_area=camp.home_area)
            call = self._new_out_call(n, now, kind="campaign", campaign=camp.name, entry=i, queue=camp.queue,
                                      ring_s=camp.ring_s)
            camp.dial(i, call.call_id)
            out += self._ring_for(call, agent, now)
        return out

    def _campaign_deadlines(self) -> list[float]:
        """Numbers due later, a closed campaign's next look, pending saves (never a time already past: a number due
        now waits for an agent or a channel, which an event frees)."""
        times: list[float] = []
        for camp in self.campaigns.values():
            if camp.state == "running":
                due = camp.next_due() if camp.check_at is None else camp.check_at
                if due is not None:
                    times.append(due)
                times += camp.rest.values()  # an agent back from a rest
            if camp.dirty:
                times.append(camp.saved_at + SAVE_S)
        return [t for t in times if t > self._campaign_now]

    def _campaign_call_ended(self, call, result: str, cause: int | None, now: float) -> list[Action]:
        """A campaign's call ended: an attempt (the agent answered, so the number was dialled or no channel was
        free) counts with its result; a call the agent never took gives the number back."""
        camp = self.campaigns.get(call.campaign) if call.campaign is not None else None
        if camp is None or call.entry is None or camp.entries[call.entry].call_id != call.call_id:
            return []
        if call.agent_answer is None:
            camp.wait(call.entry, now)
            return []
        e = camp.entries[call.entry]
        again = camp.attempted(call.entry, result, cause, now)
        data = {"campaign": camp.name, "number": e.number, "attempt": e.attempts, "result": result, "cause": cause,
                "retry_in_s": None if again is None else round(again - now, 3)}
        return [LogEvent(call.call_id, "campaign.attempt", data), Publish("campaign.attempt", data)]

    def _campaign_agent_missed(self, call, agent, now: float) -> list[Action]:
        """A campaign call rang out at the agent: rest the agent, count the missed offer."""
        camp = self.campaigns.get(call.campaign) if call.campaign is not None else None
        if camp is None:
            return []
        camp.rest[agent.seat] = now + AGENT_REST_S
        agent.missed += 1
        q = self.queue_cfg.get(camp.queue or self.queue_name, self.queue_cfg[self.queue_name])
        if q["missed_offers"] and agent.missed >= q["missed_offers"] and agent.state == "available":
            agent.missed = 0
            return self._agent_state(agent, "busy", now, "no_answer")
        return []

    def _save(self, camp: Campaign, now: float) -> SaveCampaign:
        camp.dirty, camp.saved_at = False, now
        return SaveCampaign(camp.name, camp.to_data(self._epoch_offset(now)))
