"""The core process: builds the card, logic, runtime, journal, recorder and control API from the config."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import zoneinfo

import numpy as np

from drivers.base import Card, PortKind
from drivers.sim import AgentScript, SimCard

from .acd import Agent
from .caller import CustomerStore
from .config import caller_texts, home_area, ip_phones, screening
from .config_acd import all_queues, ivr_flow
from .control import ControlServer, EventBus
from .datadir import DataDir
from .errors import DriverError
from .faxapi import FaxCommands
from .fxolines import LineCallCentre
from .journal import Journal
from .lookup import LookupWorker
from .missedapi import MissedCommands
from .outboundapi import OutboundCommands
from .player import PromptPlayer
from .promptset import VOICE_LANG, render_prompts
from .prompts import PromptLibrary
from .recordings import Recordings
from .recpolicy import RecordingPolicy
from .runtime import Runtime
from .reload import Reload
from .screenpop import ScreenPop
from .seatapi import SeatCommands
from .smsapi import SmsCommands
from .speech import SpeechWorker
from .superapi import SupervisorCommands

__all__ = ["Core", "make_card", "render_prompts"]

log = logging.getLogger(__name__)

def make_card(cfg: dict, *, media: bool = True, agent: AgentScript | None = None, seed: int = 0) -> Card:
    """The card the config names; with IP-phone seats (``sip.phones``) on a sim or DAHDI card, that card's
    trunks and the SIP card's phones as one (``drivers.composite``)."""
    c = cfg["card"]
    phones = ip_phones(cfg)
    if c["driver"] == "sip":
        from drivers.sip.card import SipCard
        return SipCard.from_config(cfg)
    if c["driver"] == "sim":
        card: Card = SimCard(c["trunk_channels"], 0 if phones else c["seats"], box_number=cfg["system"]["box_number"],
                             agent=agent, media=media, seed=seed,
                             n_fxo=sum(1 for a in cfg["analog"] if a["kind"] == "fxo"))
    elif c["driver"] == "dahdi":
        from drivers.dahdi.card import DahdiCard  # only a DAHDI box loads the binding
        if phones:  # the seats are IP phones: the analog FXS ports are not seats
            cfg = {**cfg, "analog": [a for a in cfg["analog"] if a["kind"] != "fxs"]}
        card = DahdiCard.from_config(cfg)
    else:
        raise DriverError(f"card.driver: {c['driver']!r} is unknown; use 'sim', 'dahdi' or 'sip'")
    if not phones:
        return card
    from drivers.composite import CompositeCard
    from drivers.sip.card import SipCard
    return CompositeCard([card, SipCard.from_config(cfg, trunk_channels=0)])


class Core(SeatCommands, SupervisorCommands, ScreenPop, Reload, MissedCommands, Recordings, OutboundCommands,
           FaxCommands, SmsCommands):
    """Everything the core process runs, wired together; the loop that drives it lives in the CLI.

    Parameters
    ----------
    data : DataDir
    cfg : dict
        A validated config (``appliance.config.validate``).
    clock : RealClock or VirtualClock
    card : Card, optional
        Defaults to the card the config names.
    prompts : dict of str to ndarray, optional
        Pre-rendered prompts; rendered with espeak-ng (or beeps) into the data dir's cache if absent.
    media : bool
    hotplug : drivers.hotplug_watch.Hotplug, optional
        Watches udev for voice cards, GSM modems and USB disks (a real box); a voice card
        that disappears raises the ``card.removed`` alarm until one is back.
    """

    def __init__(self, data: DataDir, cfg: dict, clock, *, card: Card | None = None,
                 prompts: dict[str, np.ndarray] | None = None, media: bool = True, hotplug=None) -> None:
        self.data, self.cfg, self.clock = data, cfg, clock
        self.tz = zoneinfo.ZoneInfo(cfg["system"]["timezone"])
        self.card = card if card is not None else make_card(cfg, media=media)
        trunks = [p.index for p in self.card.ports if p.kind == PortKind.TRUNK]
        fxs = [p.index for p in self.card.ports if p.kind == PortKind.FXS]
        lines = [p.index for p in self.card.ports if p.kind == PortKind.FXO]  # analog lines: appliance.fxolines
        seats = cfg["seats"]
        if len(fxs) < len(seats):
            raise DriverError(f"the card has {len(fxs)} FXS ports but the config has {len(seats)} seats")
        now = clock.now()
        book = {a["id"]: a for a in cfg["agents"]}
        agents = [Agent(seat=s["seat"], port=fxs[i], name=s["name"], extension=s["extension"], since=now,
                        idle_since=now, skill=s["skill"], skills=dict(s["queues"]) or None,
                        state="logged_out" if book else "available") for i, s in enumerate(seats)]
        prefix = dt.datetime.fromtimestamp(clock.wall(), self.tz).strftime("%Y%m%d%H%M%S")
        self.logic = LineCallCentre(trunks, agents, ivr_flow(cfg), all_queues(cfg),
                                    line_ports=lines, box_number=cfg["system"]["box_number"],
                                    line_rings=cfg["card"]["line_rings"],
                                    record=RecordingPolicy.from_config(cfg["recording"]) if media else False,
                                    call_id_prefix=prefix,
                                    port_spans={p.index: p.span for p in self.card.ports if p.span is not None},
                                    screening=screening(cfg), area_code=home_area(cfg), book=book,
                                    lang=VOICE_LANG[cfg["ivr"]["voice"]],
                                    texts=caller_texts(cfg, VOICE_LANG[cfg["ivr"]["voice"]]))
        self.logic.local_day = self._local_day
        self.logic.wall = lambda t: dt.datetime.fromtimestamp(self.clock.epoch(t), self.tz)
        self.logic.new_day(now)
        library = PromptLibrary(data.prompts, lang=cfg["system"]["language"],
                                level_dbm0=cfg["ivr"]["prompt_level_dbm0"],
                                **({"espeak": None, "warn": lambda m: None} if not media else {}))
        self.library = library
        if prompts is None:
            prompts = render_prompts(library, cfg)
        self.bus = EventBus(clock.wall)
        self.journal = Journal(data.journal)
        restored = self.logic.restore_seats(self.journal.seat_states(), now)  # agents' states survive a restart
        self.open_recordings(media)  # the recorder; files a crash cut short repaired first: appliance.recordings
        threads = 0 if clock.virtual else None  # virtual time: lookups and speech answer deterministically
        self.lookups = LookupWorker(**({"threads": threads} if threads is not None else {}))
        self.speech = SpeechWorker(functools.partial(library.render, voice=cfg["ivr"]["voice"]),
                                   **({"threads": threads} if threads is not None else {}))
        self.runtime = Runtime(self.card, self.logic, clock, PromptPlayer(len(self.card.ports), prompts),
                               media=media, recorder=self.recorder, journal=self.journal, bus=self.bus,
                               tone_plan=cfg["card"]["tone_plan"], lookups=self.lookups, speech=self.speech,
                               playback=self.playback, fax_mode="inline" if clock.virtual else cfg["fax"]["worker"])
        self.runtime.apply(restored, now)  # the journal learns which seats came back changed
        self.server = ControlServer(data.socket, self.bus)
        self.server.register("status", self.status, {})
        self.register_seat_commands()
        self.customers = CustomerStore(data.customers, home_area=home_area(cfg))
        self.register_screen_commands()
        self.register_reload_command()
        self.register_missed_commands()  # the missed-call and voicemail lists: appliance.missed
        self.register_outbound_commands()  # click-to-dial and campaigns (saved ones come back): appliance.outbound
        self.register_supervisor_commands()
        self.register_fax_commands()  # fax.send, fax.jobs, fax.list; faxes stored off the tick: appliance.faxapi
        self.hotplug = hotplug
        self.register_sms_commands()  # outbox, campaigns, dispatch on a worker thread: appliance.smsapi
        self._day = self._today()
        self.logic.counts.update(self.journal.counts(*self._day_window()))
        self.paced: asyncio.Event | None = None  # set by a hardware card when its frames are ready
        self.box_alarms: dict[str, str] = {}  # box-level alarms (not span or port): name -> detail
        self.start_recordings()  # retention and free space once now, then every few seconds from start()

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock.wall(), self.tz).date()

    def _day_window(self) -> tuple[float, float]:
        midnight = dt.datetime.combine(self._day, dt.time(0), self.tz).timestamp()
        return midnight, midnight + 86400.0

    def status(self) -> dict:
        """The ``status`` command: trunks, seats, queue and today's counts (the dashboard's model)."""
        if self._today() != self._day:  # a new day: the counters start again at zero
            self._day = self._today()
            self.logic.counts.update(offered=0, answered=0, abandoned=0)
        snap = self.logic.snapshot(self.runtime.now)
        names = {p.index: p.name for p in self.card.ports}
        for t in snap["trunks"]:
            t["name"] = names[t["port"]]
        for s in snap["seats"]:
            s["since"] = round(self.clock.epoch(s["since"]), 3)
        system = self.cfg["system"]
        snap["alarms"]["ports"] = {names[int(k)]: v for k, v in snap["alarms"]["ports"].items()}
        card_alarms = getattr(self.card, "box_alarms", None)  # e.g. the SIP card's blocked sources
        snap["alarms"]["box"] = dict(sorted({**self.box_alarms, **(card_alarms() if card_alarms else {})}.items()))
        devices = [{"kind": d.kind, "id": d.id, "description": d.description}
                   for d in (self.hotplug.present() if self.hotplug is not None else [])]
        return {"time": round(self.clock.wall(), 3), "box": {"name": system["name"], "number": system["box_number"]},
                **snap, "devices": devices, "recordings": self.recording_status(), "sms": self.sms_status_brief()}

    def _local_day(self, now: float) -> tuple[float, float]:
        """The local day ``now`` (runtime clock) lies in, as (its midnight, the next midnight) on that clock."""
        epoch = self.clock.epoch(now)
        midnight = dt.datetime.fromtimestamp(epoch, self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow = (midnight + dt.timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=self.tz)
        return now + midnight.timestamp() - epoch, now + tomorrow.timestamp() - epoch

    async def start(self) -> None:
        await self.server.start()
        opener = getattr(self.card, "open", None)
        if opener is not None:  # a card with sockets of its own (SIP) binds them on the running loop
            await opener()
        attach = getattr(self.card, "attach", None)
        if attach is not None:  # a card with its own clock (DAHDI) paces the tick: see Runtime.run_realtime
            ready = asyncio.Event()
            if attach(asyncio.get_running_loop(), ready.set):
                self.paced = ready
        if self.hotplug is not None:
            self.hotplug.start(asyncio.get_running_loop(), self.on_hotplug)
        self.start_sms(asyncio.get_running_loop())
        self.start_housekeeping()

    def on_hotplug(self, event) -> None:
        """A device came or went: tell the control API's subscribers, and keep the card alarm true."""
        self.bus.publish("device", {"kind": event.kind, "present": event.present, "id": event.id,
                                    "description": event.description})
        self.sms_hotplug(event)
        if event.kind != "voice_card" or self.cfg["card"]["driver"] != "dahdi":
            return
        cards = [d for d in self.hotplug.present() if d.kind == "voice_card"] if self.hotplug else []
        if cards and "card.removed" in self.box_alarms:
            del self.box_alarms["card.removed"]
            self.bus.publish("alarm", {"name": "card.removed", "raised": False})
        elif not cards and "card.removed" not in self.box_alarms:
            self.box_alarms["card.removed"] = event.description
            self.bus.publish("alarm", {"name": "card.removed", "raised": True, "detail": event.description})

    async def stop(self) -> None:
        if self.hotplug is not None:
            self.hotplug.stop()
        if self.paced is not None:
            self.card.detach()
            self.paced = None
        await self.server.close()
        self.close()

    def settle(self) -> None:
        """Make everything written so far durable: stopped recordings closed, journal committed."""
        if self.recorder is not None:
            self.recorder.settle()
        self.journal.flush()

    def close(self) -> None:
        """Finish recordings, flush the journal, release the card (idempotent)."""
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
            self.runtime.recorder = None
        self.close_recordings()
        self.close_faxes()
        self.close_sms()
        self.lookups.close()
        self.speech.close()
        self.journal.close()
        self.card.close()
