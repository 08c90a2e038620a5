"""The control API's SMS commands and the SMS worker's place in the core: send, outbox, inbound, templates, campaigns.

A part of ``Core``. The outbox, the store and the transports belong to one worker
thread (``appliance.sms.worker``); every command is a job on that thread, awaited
by the loop, so the tick and the API's loop never wait for a serial port, a socket
or an fsync. Events go out on the bus: ``sms.state`` (a message moved: queued,
sending, sent, delivered, failed, unknown), ``sms.inbound``, ``sms.transport``
(up or down) and ``sms.campaign``. A USB modem the hotplug layer reports is handed
to the modem transport when ``sms.modem_port`` is ``auto``. Internal dispatch: a
``complaint.assigned`` event on the bus, and the journal's missed calls and
voicemail (looked at every ``DISPATCH_S``), become messages to the rules'
numbers; each occurrence has a message id of its own, so the outbox's duplicate
check makes a notice go out once across restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import queue

from .apischema import Bool, CommandError, Enum, Int, Obj, Str
from .clock import RealClock
from .config import home_area
from .errors import ConfigError, ProtocolError
from .faxapi import PhoneNumber
from .sms import settings
from .sms.httpgw import parse_report
from .sms.outbox import STATES, VIAS, Outbox
from .sms.service import SmsService, message_view, state_event
from .sms.worker import SmsWorker

log = logging.getLogger(__name__)

DISPATCH_S = 30.0  # how often the missed calls and voicemail are looked at for dispatch rules
JOB_TIMEOUT_S = 30.0  # a command's longest wait for the worker (a gateway's connect blocks it up to 5 s)
STUCK_S = 60.0  # a message due this long on a transport that is down raises the box alarm sms.down


class _Clock:
    """The worker's clock: the transports' timeouts in real seconds (their peers are real devices, even when the
    core runs in virtual time), the outbox's times on the core's wall clock (the same as the journal's)."""

    def __init__(self, wall) -> None:
        self.now, self.wall = RealClock().now, wall


def _log_failure(fut) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("sms dispatch: %s", fut.exception())


def _bad(e: Exception) -> CommandError:
    if isinstance(e, CommandError):
        return e
    return CommandError("bad_argument", str(e))


def _build_transports(cfg: dict, wall) -> dict:
    """The transports the config sets up, by ``via``; the modem always (found by hotplug or named by port)."""
    from .sms.gatewaylink import GatewayLink
    from .sms.httpgw import HttpGateway
    from .sms.modemlink import ModemLink
    out: dict = {"modem": ModemLink(cfg["sms"]["modem_port"])}
    for protocol in ("smgp", "cmpp"):
        gw = settings.gateway_settings(cfg, protocol)
        if gw is not None:
            host, port, cred = gw
            out[protocol] = GatewayLink(host, port, protocol, cred, clock=wall)
    http = settings.http_config(cfg)
    if http is not None:
        out["http"] = HttpGateway(http)
    return out


class SmsCommands:
    def register_sms_commands(self) -> None:
        """Open the outbox and store, build the configured transports, start the worker."""
        from .sms.campaign import CampaignRunner
        from .sms.schedule import AllowedHours
        from .sms.store import SmsStore

        sms = self.cfg["sms"]
        clock = _Clock(self.clock.wall)
        self.sms_outbox = Outbox(self.data.sms_outbox, **settings.outbox_options(self.cfg))
        self.sms_store = SmsStore(self.data.sms_store, home_area=home_area(self.cfg))
        self.sms = SmsService(self.sms_outbox, _build_transports(self.cfg, self.clock.wall),
                              inbound=self.sms_store.add_inbound)
        self.sms_campaigns = CampaignRunner(self.sms_store, self.customers, self.cfg["system"]["timezone"],
                                            AllowedHours.parse(sms["allowed_hours"]), footer=sms["opt_out_footer"])
        self.sms_dispatch = settings.dispatcher(self.cfg)
        self._dispatch_last = -math.inf  # when the lists were last looked at (the worker's clock)
        self.sms_dispatch_every = DISPATCH_S
        self.sms_dispatch_looks = 0  # how many times the lists were looked at (tests wait on it)
        self.sms_stuck_s = STUCK_S
        self._sms_alarm: str | None = None  # the sms.down alarm's detail while raised
        self._sms_events: queue.SimpleQueue = queue.SimpleQueue()
        self._sms_loop: asyncio.AbstractEventLoop | None = None

        def publish(type_: str, data: dict) -> None:  # on the worker thread: the bus is the loop's
            self._sms_events.put((type_, data))
            loop = self._sms_loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self.sms_drain)

        self.sms_worker = SmsWorker(self.sms, clock, publish, extra=[self._sms_campaign_step, self._sms_dispatch_step,
                                                                     self._sms_alarm_step])
        for type_, data in self.sms.recover(clock.wall()):
            publish(type_, data)  # on the loop, once it runs
        self.sms_worker.start()
        self._sms_closed = False
        self.bus.listen(self._sms_event)
        self._register_sms_api()

    def start_sms(self, loop: asyncio.AbstractEventLoop) -> None:
        """From ``Core.start``: events go onto ``loop`` from now on; a modem already plugged is handed over."""
        self._sms_loop = loop
        loop.call_soon(self.sms_drain)
        for device in self.hotplug.present() if self.hotplug is not None else []:
            self.sms_hotplug(device)

    def sms_drain(self) -> int:
        """Publish the worker's events on the bus (on the loop; without a running loop, a test calls it); how many."""
        n = 0
        while True:
            try:
                type_, data = self._sms_events.get_nowait()
            except queue.Empty:
                return n
            if type_ == "alarm":  # the box alarms live on the loop: the dashboard reads them from status
                if data["raised"]:
                    self.box_alarms[data["name"]] = data["detail"]
                else:
                    self.box_alarms.pop(data["name"], None)
            self.bus.publish(type_, data)
            n += 1

    def close_sms(self) -> None:
        """Stop the worker (it closes the transports), then the files (idempotent)."""
        if getattr(self, "_sms_closed", True):
            return
        self._sms_closed = True
        self.sms_worker.stop()
        self.sms_drain()
        self.sms_outbox.close()
        self.sms_store.close()

    def sms_status_brief(self) -> dict:
        """For ``status``: each transport up or down and why (plain reads of what the worker last set)."""
        return {"default": self.cfg["sms"]["via"],
                "transports": {via: {"up": t["up"], "reason": t["reason"]} for via, t in self.sms.status().items()}}

    # --- the worker's extra steps (on the worker thread) ------------------------------------------------

    def _sms_add(self, to: str, text: str, via: str | None, wall: float, **kw) -> str:
        return self.sms_outbox.add(to, text, via or self.cfg["sms"]["via"], wall, **kw)

    def _sms_campaign_step(self, now: float, wall: float) -> list:
        due = self.sms_campaigns.next_deadline(wall)
        if due is None or due > wall:
            return []
        events = self.sms_campaigns.step(wall, lambda to, text, via, msg_id, campaign_id: self._sms_add(
            to, text, via, wall, msg_id=msg_id, campaign_id=campaign_id), backlog=self.sms_outbox.pending)
        return [(e.pop("event", "sms.campaign"), e) for e in events]

    def _sms_dispatch_step(self, now: float, wall: float) -> list:
        if not self.sms_dispatch.rules or now < self._dispatch_last + self.sms_dispatch_every:
            return []
        self._dispatch_last = now
        missed = getattr(self, "missed", None)
        if missed is None:
            return []
        entries, voicemails = self.journal.run(
            lambda con: (missed.entries(con, state="open", limit=1000), missed.messages(con, limit=1000))).result(60)
        events = self._sms_notices(self.sms_dispatch.on_missed(entries, wall)
                                   + self.sms_dispatch.on_voicemails(voicemails, wall), wall)
        self.sms_dispatch_looks += 1
        return events

    def _sms_alarm_step(self, now: float, wall: float) -> list:
        """The box alarm ``sms.down``: raised while a transport that is down has a message due for
        ``sms_stuck_s``, with each such transport's reason; cleared when none has."""
        stuck = []
        for via in self.sms.transports:
            due = None if self.sms.up[via] else self.sms_outbox.next_due(via)
            if due is not None and due <= wall - self.sms_stuck_s:
                stuck.append(f"{via}: {self.sms.why_down[via]}")
        detail = "; ".join(stuck) or None
        if detail == self._sms_alarm:
            return []
        self._sms_alarm = detail
        return [("alarm", {"name": "sms.down", "raised": detail is not None,
                           **({"detail": detail} if detail is not None else {})})]

    def _sms_notices(self, notices: list, wall: float) -> list:
        """Queue each notice once: its id is made from the rule and the occurrence, so a second look (or a
        restart) finds it in the outbox and adds nothing."""
        events = []
        for n in notices:
            msg_id = "d-" + hashlib.sha1(f"{n.rule}\n{n.key}\n{n.to}".encode()).hexdigest()[:30]
            try:
                self.sms_outbox.get(msg_id)
                continue  # sent before
            except CommandError:
                pass
            try:
                self._sms_add(n.to, n.text, n.via, wall, msg_id=msg_id, origin=f"dispatch:{n.rule}")
            except CommandError as e:
                log.error("sms dispatch %s to %s not queued: %s", n.rule, n.to, e.message)
                continue
            events.append(state_event(self.sms_outbox.get(msg_id)))
        return events

    def _sms_event(self, event: dict) -> None:
        """A bus listener (on the loop): a complaint assigned to a department may have a dispatch rule."""
        if event["event"] != "complaint.assigned" or not self.sms_dispatch.rules:
            return
        self.sms_worker.call(lambda now, wall: self._sms_publish(
            self._sms_notices(self.sms_dispatch.on_event(event, wall), wall))).add_done_callback(_log_failure)

    def _sms_publish(self, events: list) -> None:
        for type_, data in events:
            self.sms_worker.publish(type_, data)

    def sms_hotplug(self, event) -> None:
        """A GSM modem came or went: the modem transport probes its ttys (``sms.modem_port`` auto only)."""
        modem = self.sms.transports.get("modem")
        if event.kind != "gsm_modem" or modem is None or self.cfg["sms"]["modem_port"] != "auto":
            return
        if event.present:
            self.sms_worker.call(lambda now, wall: modem.plugged(event.ttys, now))
        else:
            self.sms_worker.call(lambda now, wall: modem.unplugged(now))

    # --- commands ----------------------------------------------------------------------------------------

    def _register_sms_api(self) -> None:
        reg = self.server.register
        via = Enum(*VIAS, required=False)
        page = {"limit": Int(1, 1000, required=False, default=100), "offset": Int(0, None, required=False, default=0)}
        reg("sms.send", self.sms_send, {"to": PhoneNumber(32), "text": Str(2000), "via": via})
        reg("sms.status", self.sms_status, {"msg_id": Str(64)})
        reg("sms.list", self.sms_list, {"state": Enum(*STATES, required=False), **page})
        reg("sms.resolve", self.sms_resolve, {"msg_id": Str(64), "resend": Bool()})
        reg("sms.inbound", self.sms_inbound, page)
        reg("sms.transports", self.sms_transports, {})
        reg("sms.templates", self.sms_templates, {})
        reg("sms.template_save", self.sms_template_save, {"name": Str(64), "text": Str(2000)})
        reg("sms.template_delete", self.sms_template_delete, {"name": Str(64)})
        reg("sms.campaigns", self.sms_campaign_list, {})
        reg("sms.campaign", self.sms_campaign_get, {"name": Str(64)})
        reg("sms.campaign_create", self.sms_campaign_create,
            {"name": Str(64), "template": Str(64), "recipients": Obj(2), "schedule": Obj(8),
             "values": Obj(16, required=False, default={}), "via": via})
        reg("sms.campaign_cancel", self.sms_campaign_cancel, {"name": Str(64)})
        reg("sms.optouts", self.sms_optouts, page)
        reg("sms.optout_add", self.sms_optout_add, {"number": PhoneNumber(32)})
        reg("sms.optout_remove", self.sms_optout_remove, {"number": PhoneNumber(32)})
        reg("sms.http_report", self.sms_http_report, {"token": Str(64), "body": Str(65536)})

    async def _sms_job(self, fn):
        """Run ``fn(now, wall)`` on the SMS worker; its errors as the control API's (bad input names the argument)."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.sms_worker.call(fn)), JOB_TIMEOUT_S)
        except (CommandError, ConfigError, ValueError) as e:
            raise _bad(e) from None
        except RuntimeError as e:  # the worker stopped: the core is going down
            raise CommandError("unavailable", f"sms: {e}") from None
        except asyncio.TimeoutError:
            raise CommandError("unavailable", f"sms: the SMS worker did not answer within {JOB_TIMEOUT_S:g} s "
                                              "(a transport is blocking it); try again") from None

    async def sms_send(self, to: str, text: str, via: str | None = None) -> dict:
        """``sms.send``: queue one message (the default transport unless ``via``); answered with it, queued."""
        via = via or self.cfg["sms"]["via"]
        if via not in self.sms.transports:
            raise CommandError("bad_argument", f"via: {via!r} is not set up on this box; set up: "
                                               f"{', '.join(self.sms.transports)} (see the sms config section)")
        to = "".join(to.split()).replace("-", "")

        def job(now, wall):
            m = self.sms_outbox.get(self._sms_add(to, text, via, wall, origin="api"))
            self.sms_worker.publish(*state_event(m))
            return {"message": message_view(m)}
        return await self._sms_job(job)

    async def sms_status(self, msg_id: str) -> dict:
        return await self._sms_job(lambda now, wall: {"message": message_view(self.sms_outbox.get(msg_id))})

    async def sms_list(self, state: str | None = None, limit: int = 100, offset: int = 0) -> dict:
        """``sms.list``: the outbox, the newest first, with each state's count."""
        return await self._sms_job(lambda now, wall: {
            "messages": [message_view(m) for m in self.sms_outbox.list(state, limit, offset)],
            "counts": self.sms_outbox.counts()})

    async def sms_resolve(self, msg_id: str, resend: bool) -> dict:
        """``sms.resolve``: a human's decision on a message whose outcome is unknown (send again or give up)."""
        def job(now, wall):
            m = self.sms_outbox.resolve(msg_id, resend, wall)
            self.sms_worker.publish(*state_event(m))
            return {"message": message_view(m)}
        return await self._sms_job(job)

    async def sms_inbound(self, limit: int = 100, offset: int = 0) -> dict:
        return await self._sms_job(lambda now, wall: {"messages": self.sms_store.inbound(limit, offset)})

    async def sms_transports(self) -> dict:
        return await self._sms_job(lambda now, wall: {"transports": self.sms.status(), "default": self.cfg["sms"]["via"]})

    async def sms_templates(self) -> dict:
        return await self._sms_job(lambda now, wall: {"templates": self.sms_store.templates()})

    async def sms_template_save(self, name: str, text: str) -> dict:
        return await self._sms_job(lambda now, wall: {"template": self.sms_store.save_template(name, text, wall)})

    async def sms_template_delete(self, name: str) -> dict:
        def job(now, wall):
            self.sms_store.delete_template(name)
            return {"deleted": name}
        return await self._sms_job(job)

    async def sms_campaign_list(self) -> dict:
        """``sms.campaigns``: every campaign, a list of numbers shown by its length (``sms.campaign`` has them)."""
        def brief(c: dict) -> dict:
            numbers = c["recipients"].get("numbers")
            return c if numbers is None else {**c, "recipients": {"numbers": len(numbers)}}
        return await self._sms_job(lambda now, wall: {"campaigns": [brief(c) for c in self.sms_campaigns.campaigns()]})

    async def sms_campaign_get(self, name: str) -> dict:
        return await self._sms_job(lambda now, wall: {"campaign": self.sms_campaigns.campaign(name)})

    async def sms_campaign_create(self, name: str, template: str, recipients: dict, schedule: dict,
                                  values: dict | None = None, via: str | None = None) -> dict:
        """``sms.campaign_create``: a campaign to a list or a customer group, now or on a schedule."""
        if via is not None and via not in self.sms.transports:
            raise CommandError("bad_argument", f"via: {via!r} is not set up on this box")
        return await self._sms_job(lambda now, wall: {"campaign": self.sms_campaigns.create(
            name, template, recipients, schedule, values or {}, via, wall)})

    async def sms_campaign_cancel(self, name: str) -> dict:
        return await self._sms_job(lambda now, wall: {"campaign": self.sms_campaigns.cancel(name, wall)})

    async def sms_optouts(self, limit: int = 100, offset: int = 0) -> dict:
        return await self._sms_job(lambda now, wall: {"optouts": self.sms_store.opt_outs(limit, offset)})

    async def sms_optout_add(self, number: str) -> dict:
        return await self._sms_job(lambda now, wall: {"optout": self.sms_store.add_opt_out(number, "manual", wall)})

    async def sms_optout_remove(self, number: str) -> dict:
        def job(now, wall):
            self.sms_store.remove_opt_out(number)
            return {"removed": number}
        return await self._sms_job(job)

    async def sms_http_report(self, token: str, body: str) -> dict:
        """``sms.http_report``: delivery reports the HTTP gateway pushed to the web process (a query string, a form
        or JSON body), allowed by the URL's token; answered with how many reports and how many matched a message."""
        fields = settings.report_fields(self.cfg)
        if fields is None:
            raise CommandError("forbidden", "pushed delivery reports are off: set sms.http_report_token")
        expected = self.cfg["sms"]["http_report_token"]
        if not hmac.compare_digest(token.encode(), expected.encode()):  # constant time: the token is the secret
            raise CommandError("forbidden", "the report URL's token does not match sms.http_report_token")

        def job(now, wall):
            try:
                reports = parse_report(body, fields)
            except ProtocolError as e:
                raise CommandError("bad_argument", f"body: {e}") from None
            matched, changed = 0, {}
            for r in reports:
                m = self.sms_outbox.delivered(r.ref, r.status, wall, via="http", ok=r.delivered)
                if m is None:
                    continue
                matched += 1
                if m.done_at == wall:  # finished by this push (a repeated report leaves the first time)
                    changed[m.id] = m
            for m in changed.values():
                self.sms_worker.publish(*state_event(m))
            return {"reports": len(reports), "matched": matched}
        return await self._sms_job(job)
