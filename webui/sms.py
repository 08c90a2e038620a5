"""The SMS page (短信) and its JSON API: thin relays of the core's ``sms.*`` control commands for supervisors."""

from __future__ import annotations

import json
from typing import Callable

import bottle

from appliance.client import ApiError, ApiUnavailable, ControlClient
from appliance.messages import text

# the core waits up to 30 s for its SMS worker (a gateway's connect blocks it): wait a little longer than that
CALL_TIMEOUT_S = 35.0
STATUS = {"bad_argument": 400, "not_found": 404, "conflict": 409, "unavailable": 503}
OUTBOX_LIMIT = 50
MESSAGE_STATES = ("queued", "sending", "sent", "delivered", "failed", "unknown")
CAMPAIGN_STATES = ("scheduled", "running", "done", "cancelled")
COUNTS = ("added", "opted_out", "missing_value", "bad_number", "refused")
VIAS = ("modem", "smgp", "cmpp", "http")
FIELDS = ("客户姓名", "产品", "日期", "号码", "坐席", "公司")
LABELS = ("transport.up", "transport.down", "transport.default", "send.count", "send.queued", "resend", "give_up",
          "opted_out", "delete", "remove", "confirm.delete", "confirm.cancel", "campaign.cancel",
          "recipients.count", "group.all", "group.vip", "group.company", "schedule.now", "schedule.date",
          "schedule.yearly", "schedule.holidays", "schedule.cron", "optout.source.reply", "optout.source.manual",
          "outbox.empty", "inbound.empty", "templates.empty", "campaigns.empty", "optouts.empty")
PLACEHOLDERS = {"send.count": ("chars", "parts"), "recipients.count": ("n",), "confirm.delete": ("name",),
                "confirm.cancel": ("name",)}


def _json(obj: dict, status: int = 200) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(json.dumps(obj, ensure_ascii=False), status,
                               {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"})


def _refuse(message: str, status: int = 400) -> bottle.HTTPResponse:
    return _json({"error": "bad_argument", "message": message}, status)


def _body(*keys: str) -> dict | bottle.HTTPResponse:
    """The JSON object a POST carries, cut to ``keys``: the core's own keys (``id``, ``cmd``) are not the
    browser's to set, and the core names any other argument it misses or refuses."""
    if bottle.request.content_type.split(";")[0].strip() != "application/json":
        # a cross-site form cannot send this type without a CORS preflight, which this app never answers
        return _refuse(f"Content-Type: {bottle.request.content_type or 'none'!r}, expected application/json", 415)
    try:
        obj = json.loads(bottle.request.body.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        obj = None
    if not isinstance(obj, dict):
        return _refuse("body: " + text("web.sms.error.body", "en"))
    return {k: obj[k] for k in keys if k in obj}


def _page_args(limit_default: int) -> dict | bottle.HTTPResponse:
    """``limit`` and ``offset`` from the query string as the integers the core expects."""
    out = {}
    for key, default in (("limit", limit_default), ("offset", 0)):
        raw = bottle.request.query.get(key, "")
        if raw == "":
            out[key] = default
        elif raw.isascii() and raw.isdigit() and len(raw) < 10:
            out[key] = int(raw)
        else:
            return _refuse(f"{key}: {raw[:20]!r} is not a whole number")
    return out


def sms_app(socket_path: str, login: object, render: Callable[..., str], both: Callable[..., tuple]) -> bottle.Bottle:
    """The SMS part of the web app, to mount at ``/`` of the main app (routes ``/sms`` and ``/api/sms/...``).

    ``login`` is the main app's login plugin (a mounted app's routes get only its own plugins); ``render`` and
    ``both`` are the main app's template renderer and catalog pair."""
    app = bottle.Bottle()
    app.install(login)
    # its own connection: a send that waits on a slow gateway must not hold up the dashboard's status calls
    client = ControlClient(socket_path, timeout=CALL_TIMEOUT_S)

    def relay(cmd: str, args: dict | bottle.HTTPResponse | None = None) -> bottle.HTTPResponse:
        if isinstance(args, bottle.HTTPResponse):
            return args  # the request was refused before it reached the core
        try:
            return _json(client.call(cmd, **(args or {})))
        except ApiUnavailable as e:
            return _json({"error": "core_unavailable", "message": str(e)}, 503)
        except ApiError as e:
            return _json({"error": e.code, "message": e.message}, STATUS.get(e.code, 502))

    @app.get("/sms")
    def page():
        i18n = {
            # placeholders stay as {name} for the script to fill in
            "labels": {k: both("web.sms." + k, **{f: "{" + f + "}" for f in PLACEHOLDERS.get(k, ())}) for k in LABELS},
            "live": [both("web.live"), both("web.offline")],
            "states": {s: both("web.sms.state." + s) for s in MESSAGE_STATES},
            "campaign_states": {s: both("web.sms.campaign.state." + s) for s in CAMPAIGN_STATES},
            "counts": {c: both("web.sms.count." + c) for c in COUNTS},
            "vias": {v: both("web.sms.via." + v) for v in VIAS},
        }
        blob = json.dumps(i18n, ensure_ascii=False).replace("<", "\\u003c")
        return render("sms", i18n=blob, fields=FIELDS, user=bottle.request.environ["webui.user"], nav="sms")

    @app.post("/api/sms/send", access="api")
    def send():
        return relay("sms.send", _body("to", "text", "via"))

    @app.get("/api/sms/messages", access="api")
    def messages():
        args = _page_args(OUTBOX_LIMIT)
        state = bottle.request.query.get("state", "")
        if state and isinstance(args, dict):
            args["state"] = state  # the core names the states when this is none of them
        return relay("sms.list", args)

    @app.post("/api/sms/messages/<msg_id>/resolve", access="api")
    def resolve(msg_id):
        args = _body("resend")
        if isinstance(args, dict):
            args["msg_id"] = msg_id
        return relay("sms.resolve", args)

    @app.get("/api/sms/inbound", access="api")
    def inbound():
        return relay("sms.inbound", _page_args(OUTBOX_LIMIT))

    @app.get("/api/sms/transports", access="api")
    def transports():
        return relay("sms.transports")

    @app.get("/api/sms/templates", access="api")
    def templates():
        return relay("sms.templates")

    @app.post("/api/sms/templates", access="api")
    def template_save():
        return relay("sms.template_save", _body("name", "text"))

    # ``:path``: a name may hold a slash, which the server has already unescaped from %2F
    @app.delete("/api/sms/templates/<name:path>", access="api")
    def template_delete(name):
        return relay("sms.template_delete", {"name": name})

    @app.get("/api/sms/campaigns", access="api")
    def campaigns():
        return relay("sms.campaigns")

    @app.post("/api/sms/campaigns", access="api")
    def campaign_create():
        return relay("sms.campaign_create", _body("name", "template", "recipients", "schedule", "values", "via"))

    @app.post("/api/sms/campaigns/<name:path>/cancel", access="api")
    def campaign_cancel(name):
        return relay("sms.campaign_cancel", {"name": name})

    @app.get("/api/sms/optouts", access="api")
    def optouts():
        return relay("sms.optouts", _page_args(100))

    @app.post("/api/sms/optouts", access="api")
    def optout_add():
        return relay("sms.optout_add", _body("number"))

    @app.delete("/api/sms/optouts/<number>", access="api")
    def optout_remove(number):
        return relay("sms.optout_remove", {"number": number})

    return app
