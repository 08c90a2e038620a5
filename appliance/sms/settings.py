"""The ``sms`` and ``sms_rules`` config sections: their options, their checks, and what the box builds from them.

``appliance.config`` puts ``SMS_OPTIONS`` in its schema, checks the ``sms_rules``
items with ``check_sms_rules`` and, once every section is checked, calls
``check_sms`` for what ties options together (a transport in use must be
complete, a rule's transport must be set up). The other functions turn a
validated config into the outbox's options, the gateways' settings and the
dispatch rules; they never fail on a validated config.
"""

from __future__ import annotations

import re
from typing import Any

from appliance.errors import ConfigError
from appliance.options import Option, check_mapping, type_name
from appliance.sms.dispatch import DISPATCH_FIELDS, EVENT_FIELDS, EVENTS, Dispatcher, DispatchRule, sms_number
from appliance.sms.gateway import Credentials
from appliance.sms.httpgw import HttpGatewayConfig, ReportFields
from appliance.sms.schedule import AllowedHours
from appliance.sms.templates import validate_template

__all__ = ["SMS_OPTIONS", "RULE_ITEM", "check_sms", "check_sms_rules", "parse_headers", "allowed_hours",
           "outbox_options", "http_config", "report_fields", "gateway_settings", "configured_vias", "sms_rules",
           "dispatcher"]

VIAS = ("modem", "smgp", "cmpp", "http")  # as appliance.sms.outbox.VIAS, without importing SQLite for a config
BACKOFF_CAP_S = 3600.0


def _gateway(name: str, port: int, account: str, account_len: int) -> dict[str, Option]:
    return {
        f"{name}_host": Option("str", "", f"the {name.upper()} gateway's host or address; empty: not used", 0, 253),
        f"{name}_port": Option("int", port, f"the {name.upper()} gateway's TCP port", 1, 65535),
        f"{name}_account": Option("str", "", f"{account} the carrier gave", 0, account_len),
        f"{name}_secret": Option("str", "", "the shared secret (password) of the account", 0, 64),
        f"{name}_src_id": Option("digits", "", "the enterprise number customers see as the sender", 0, 21),
        f"{name}_service_id": Option("str", "", "the service code the carrier gave (often empty)", 0, 10),
        f"{name}_rate_per_min": Option("int", 600, "messages a minute the contract allows", 1, 6000),
    }


SMS_OPTIONS: dict[str, Option] = {
    "via": Option("choice", "modem", "the transport of messages that name none: the GSM modem, China Telecom's SMGP "
                  "gateway, China Mobile's CMPP gateway, or a generic HTTP gateway", choices=VIAS),
    "modem_port": Option("str", "auto", "auto (the USB modem the box finds) or a device path such as /dev/ttyUSB2",
                         1, 64),
    "modem_rate_per_min": Option("int", 6, "messages a minute through the modem", 1, 60),
    **_gateway("smgp", 8890, "the ClientID (up to 8 characters)", 8),
    **_gateway("cmpp", 7890, "the Source_Addr (SP code, up to 6 characters)", 6),
    "http_url": Option("str", "", "the HTTP gateway's send URL with {number}, {text}, {msg_id}, {sender}, "
                       "{account}, {password}; empty: not used", 0, 1000),
    "http_method": Option("choice", "GET", "GET or POST", choices=("GET", "POST")),
    "http_body": Option("str", "", "POST body with the URL's placeholders", 0, 4000),
    "http_body_kind": Option("choice", "form", "how body values are encoded: form, json or text",
                             choices=("form", "json", "text")),
    "http_success": Option("str", "", "regex the gateway's OK answer matches (a group named ref: its id)", 0, 200),
    "http_failure": Option("str", "", "regex of a refusal inside a 2xx answer (empty: none)", 0, 200),
    "http_headers": Option("str", "", "extra request headers, one 'Name: value' a line", 0, 2000),
    "http_sender": Option("str", "", "value of {sender}", 0, 64),
    "http_account": Option("str", "", "value of {account}", 0, 64),
    "http_password": Option("str", "", "value of {password}", 0, 128),
    "http_timeout_s": Option("int", 10, "wait this long for the gateway's answer", 1, 120, unit="seconds"),
    "http_rate_per_min": Option("int", 60, "messages a minute the gateway allows", 1, 6000),
    "http_report_token": Option("str", "", "the secret part of the delivery-report URL /sms/report/<token> given "
                                "to the gateway, 16 or more of A-Z a-z 0-9 _ -; empty: pushed reports refused", 0, 64),
    "http_report_ref": Option("str", "msgid", "the field of a pushed report holding the gateway's message id", 1, 32),
    "http_report_status": Option("str", "status", "the field of a pushed report holding the status", 1, 32),
    "http_report_delivered": Option("str", "DELIVRD,0", "status values (comma-separated) that mean delivered; "
                                    "any other status fails the message", 1, 200),
    "tries": Option("int", 5, "failed tries after which a message is failed", 1, 20),
    "retry_s": Option("int", 30, "wait after the first failed try; doubled after each, at most an hour", 1, 3600,
                      unit="seconds"),
    "allowed_hours": Option("str", "08:00-21:00", "campaigns send only inside these hours, HH:MM-HH:MM "
                            "(00:00-24:00: any time)", 1, 11),
    "opt_out_footer": Option("bool", True, "end campaign messages with 回复TD退订"),
}

RULE_ITEM: dict[str, Option] = {
    "event": Option("choice", None, "what fires the rule: complaint.assigned, voicemail.left or missed.unreturned",
                    choices=EVENTS),
    "to": Option("numbers", [], "mobile numbers to text"),
    "to_department": Option("bool", False, "complaint.assigned: also text the assigned department's mobile"),
    "after_min": Option("int", 30, "missed.unreturned: minutes a missed call waits for a callback before the SMS",
                        1, 1440, unit="minutes"),
    "text": Option("str", None, "the message, with fields " + ", ".join("{%s}" % f for f in DISPATCH_FIELDS), 1, 300),
    "via": Option("choice", "", "the transport; empty: sms.via", choices=("", *VIAS)),
}
_RULE_DEFAULTS = {k: o.default for k, o in RULE_ITEM.items() if o.default is not None}
_HEADER = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):(.*)")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")  # URL-safe as it is, and long enough not to be guessed
_NEEDED = {"host": "the gateway's host or address", "account": "the account the carrier gave",
           "src_id": "the enterprise number customers see", "url": "the gateway's send URL",
           "success": "a regex that the gateway's OK answer matches"}


def allowed_hours(text: str) -> AllowedHours:
    """``"08:00-21:00"`` checked as the campaign runner reads it (``appliance.sms.schedule.AllowedHours``)."""
    try:
        return AllowedHours.parse(text)
    except ConfigError as e:
        raise ConfigError(f"sms.{e}") from None


def parse_headers(text: str) -> dict[str, str]:
    """``sms.http_headers`` ("Name: value" lines; blank lines skipped) as a dict."""
    out = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _HEADER.fullmatch(line.strip())
        if m is None:
            raise ConfigError(f"sms.http_headers: line {n} {line!r} is not 'Name: value'")
        out[m.group(1)] = m.group(2).strip()
    return out


def _http(sms: dict) -> HttpGatewayConfig:
    return HttpGatewayConfig(url=sms["http_url"], success=sms["http_success"], method=sms["http_method"],
                             body=sms["http_body"], body_kind=sms["http_body_kind"],
                             headers=parse_headers(sms["http_headers"]), failure=sms["http_failure"],
                             timeout_s=float(sms["http_timeout_s"]), sender=sms["http_sender"],
                             account=sms["http_account"], password=sms["http_password"])


def _check_http(sms: dict) -> None:
    config = _http(sms)
    try:
        config.validate()
    except ConfigError as e:  # httpgw names the field its own way: name the config key instead
        m = re.fullmatch(r"sms http (\w+?)(?: pattern)? (.*)", str(e))
        if m is None:
            raise ConfigError(f"sms.http_url: {e}") from None
        key = f"http_{m.group(1)}"
        rest = m.group(2) if m.group(2).startswith("'") else f"{sms[key]!r} {m.group(2)}"
        raise ConfigError(f"sms.{key}: {rest}") from None


def _delivered(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(","))


def _check_report(sms: dict) -> None:
    token = sms["http_report_token"]
    if token and not _TOKEN.fullmatch(token):
        raise ConfigError(f"sms.http_report_token: {token!r} is not allowed; 16..64 characters of A-Z, a-z, 0-9, "
                          "_ and - (the secret of the report URL), or empty (pushed reports refused)")
    for key in ("http_report_ref", "http_report_status"):
        if sms[key] != sms[key].strip() or not sms[key].strip():
            raise ConfigError(f"sms.{key}: {sms[key]!r} is not a field name; no spaces around it")
    if sms["http_report_ref"] == sms["http_report_status"]:
        raise ConfigError(f"sms.http_report_status: {sms['http_report_status']!r} is also sms.http_report_ref; "
                          "the id and the status are different fields")
    if "" in _delivered(sms["http_report_delivered"]):
        raise ConfigError(f"sms.http_report_delivered: {sms['http_report_delivered']!r} has an empty value; "
                          "give status values separated by commas, e.g. DELIVRD,0")


def check_sms(cfg: dict) -> None:
    """What ties the ``sms`` options together and ``sms_rules`` to them; ConfigError naming the key."""
    sms = cfg["sms"]
    port = sms["modem_port"]
    if port != "auto" and not re.fullmatch(r"/dev/\S+", port):
        raise ConfigError(f"sms.modem_port: {port!r} is not allowed; auto (the USB modem the box finds) or a "
                          "device path starting with /dev/")
    _check_report(sms)
    allowed_hours(sms["allowed_hours"])
    for via, first in (("smgp", "host"), ("cmpp", "host"), ("http", "url")):
        if sms["via"] != via and not sms[f"{via}_{first}"]:
            continue  # not used: may stay half filled in
        why = f"sms.via {via!r}" if sms["via"] == via else f"sms.{via}_{first} set"
        for key in (first, "success") if via == "http" else (first, "account", "src_id"):
            if not sms[f"{via}_{key}"]:
                raise ConfigError(f"sms.{via}_{key}: needed with {why}; give {_NEEDED[key]}")
        if via == "http":
            _check_http(sms)
    usable = configured_vias(cfg)
    for i, rule in enumerate(cfg["sms_rules"]):
        if rule["via"] and rule["via"] not in usable:
            raise ConfigError(f"sms_rules[{i}].via: {rule['via']!r} is not set up (sms.{rule['via']}_"
                              f"{'url' if rule['via'] == 'http' else 'host'} is empty); set up: {', '.join(usable)}")


def check_sms_rules(raw: Any) -> list[dict]:
    """The ``sms_rules`` list section, each item checked on its own (``check_sms`` checks the transports)."""
    if not isinstance(raw, list):
        raise ConfigError(f"sms_rules: {raw!r} is {type_name(raw)}; expected a list of rules")
    out = []
    for i, item in enumerate(raw):
        where = f"sms_rules[{i}]"
        for required in ("event", "text"):
            if isinstance(item, dict) and required not in item:
                raise ConfigError(f"{where}.{required}: missing; every rule needs an event and a text")
        if isinstance(item, dict) and item.get("via", "") not in RULE_ITEM["via"].choices:
            raise ConfigError(f"{where}.via: {item['via']!r} is not allowed; one of {', '.join(VIAS)}, "
                              "or empty (sms.via)")
        rule = check_mapping(where, RULE_ITEM, item, _RULE_DEFAULTS)
        event = rule["event"]
        for n, number in enumerate(rule["to"]):
            if sms_number(number) is None:
                raise ConfigError(f"{where}.to[{n}]: {number!r} is not a mobile number; SMS reach mobiles only")
        if rule["to_department"] and event != "complaint.assigned":
            raise ConfigError(f"{where}.to_department: true only with event complaint.assigned, not {event!r}")
        if not rule["to"] and not rule["to_department"]:
            raise ConfigError(f"{where}.to: [] texts nobody; give mobile numbers"
                              + (" or to_department true" if event == "complaint.assigned" else ""))
        try:
            used = validate_template(rule["text"], DISPATCH_FIELDS)
        except ConfigError as e:
            raise ConfigError(f"{where}.text: {e}") from None
        for name in used:
            if name not in EVENT_FIELDS[event]:
                raise ConfigError(f"{where}.text: {{{name}}} is not given by event {event}; it gives "
                                  + ", ".join("{%s}" % f for f in EVENT_FIELDS[event]))
        out.append(rule)
    return out


# --- what the box builds from a validated config ---------------------------------------------------------

def outbox_options(cfg: dict) -> dict:
    """Keyword arguments of ``appliance.sms.outbox.Outbox`` besides its path."""
    sms = cfg["sms"]
    return {"rates": {via: sms[f"{via}_rate_per_min"] for via in VIAS}, "backoff_s": float(sms["retry_s"]),
            "backoff_cap_s": BACKOFF_CAP_S, "max_tries": sms["tries"]}


def http_config(cfg: dict) -> HttpGatewayConfig | None:
    """The HTTP gateway's settings, None when ``sms.http_url`` is empty."""
    return _http(cfg["sms"]) if cfg["sms"]["http_url"] else None


def report_fields(cfg: dict) -> ReportFields | None:
    """How to read the HTTP gateway's pushed delivery reports; None when ``sms.http_report_token`` is empty
    (reports are refused)."""
    sms = cfg["sms"]
    if not sms["http_report_token"]:
        return None
    return ReportFields(sms["http_report_ref"], sms["http_report_status"], _delivered(sms["http_report_delivered"]))


def gateway_settings(cfg: dict, protocol: str) -> tuple[str, int, Credentials] | None:
    """``(host, port, Credentials)`` of the ``smgp`` or ``cmpp`` gateway, None when its host is empty."""
    if protocol not in ("smgp", "cmpp"):
        raise ValueError(f"protocol {protocol!r} must be smgp or cmpp")
    sms = cfg["sms"]
    if not sms[f"{protocol}_host"]:
        return None
    cred = Credentials(sms[f"{protocol}_account"], sms[f"{protocol}_secret"], sms[f"{protocol}_src_id"],
                       sms[f"{protocol}_service_id"])
    return sms[f"{protocol}_host"], sms[f"{protocol}_port"], cred


def configured_vias(cfg: dict) -> list[str]:
    """The transports the box can send through: the modem always, a gateway when its host (URL) is set."""
    sms = cfg["sms"]
    return ["modem"] + [v for v in ("smgp", "cmpp") if sms[f"{v}_host"]] + (["http"] if sms["http_url"] else [])


def sms_rules(cfg: dict) -> list[DispatchRule]:
    """The ``sms_rules`` as ``DispatchRule``s, numbers in the form the outbox takes."""
    return [DispatchRule(r["event"], r["text"], tuple(sms_number(n) for n in r["to"]), r["to_department"],
                         r["after_min"], r["via"] or None) for r in cfg["sms_rules"]]


def dispatcher(cfg: dict) -> Dispatcher:
    """The ``Dispatcher`` of a validated config, in the box's zone (``system.timezone``)."""
    return Dispatcher(sms_rules(cfg), cfg["system"]["timezone"], {d["name"]: d["mobile"] for d in cfg["departments"]})
