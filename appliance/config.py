"""The box's configuration: the schema with its defaults, and strict validation.

Loading, saving and the ``appliance config`` command line are ``appliance.configfile``.

The schema is data (``SCHEMA``, Klipper-style): every option names its kind,
default, bounds or allowed values and a short description. ``validate`` checks a
whole config up front and stops at the first problem with one line naming the
dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from drivers.dahdi.sysconf import parse_channels

from .caller import Screening, normalise
from .config_acd import QUEUE_OPTIONS, check_agents, check_departments, check_queues, check_references
from .errors import ConfigError
from .messages import CATALOG, text as _msg
from .options import Option, check as _check, check_mapping as _check_mapping, type_name
from .recpolicy import check_recording
from .sms.settings import SMS_OPTIONS, check_sms, check_sms_rules

TABLE = "settings"


SCHEMA: dict[str, dict[str, Option]] = {
    "system": {
        "name": Option("str", "呼叫中心", "name of the call centre shown on pages", 1, 64),
        "language": Option("choice", "zh", "language of pages and messages", choices=("zh", "en")),
        "box_number": Option("digits", "4008001234", "the number callers dial", 3, 20),
        "timezone": Option("timezone", "Asia/Shanghai", "zone for wall-clock times in records and reports"),
        "area_code": Option("digits", "27", "the box's own telephone area code (27 Wuhan, 10 Beijing, 755 Shenzhen; "
                            "a leading 0 is allowed): local 7-8 digit calling numbers get it", 2, 4),
    },
    "card": {
        "driver": Option("choice", "sim", "voice card driver: sim, dahdi (E1 and analog ports) or sip (a SIP trunk "
                         "and IP phones)", choices=("sim", "dahdi", "sip")),
        "trunk_channels": Option("int", 30, "E1 channels used for trunk calls", 1, 31),
        "seats": Option("int", 6, "number of agent seats", 1, 24),
        "tone_plan": Option("choice", "cn", "call-progress tones callers hear and outbound calls listen for; "
                            "also the DAHDI tone zone", choices=("cn", "us")),
        "echo_canceller": Option("choice", "oslec", "DAHDI echo canceller on every voice channel",
                                 choices=("oslec", "mg2", "none")),
        "line_rings": Option("int", 2, "ring bursts before the box answers an analog (FXO) line; FSK caller ID "
                             "comes after the first, so 1 answers without it (DTMF caller ID: the first)", 1, 10),
    },
    # The E1 span to the carrier, as /etc/dahdi/system.conf describes it (drivers.dahdi.sysconf).
    "span": {
        "enabled": Option("bool", True, "the card has the E1 span; false for an analog-only card"),
        "signalling": Option("choice", "pri_cpe", "pri_cpe (we are the user side), pri_net, or mfcr2 (China No.1)",
                             choices=("pri_cpe", "pri_net", "mfcr2")),
        "framing": Option("choice", "ccs", "E1 framing: ccs for PRI, cas for MFC/R2", choices=("ccs", "cas")),
        "coding": Option("choice", "hdb3", "E1 line coding", choices=("hdb3", "ami")),
        "crc4": Option("bool", True, "CRC-4 multiframe checking (ask the carrier)"),
        "timing": Option("int", 1, "1: take the clock from the line (the carrier is master); 0: never", 0, 1),
        "lbo": Option("int", 0, "line build-out, 0 for E1", 0, 7),
        "dchan": Option("int", 16, "PRI D-channel timeslot", 1, 31),
        "channels": Option("channels", "1-15,17-31", "voice timeslots: PRI B-channels or R2 channels", 1, 31),
        "calling_number": Option("digits", "", "calling number sent on outbound PRI and R2 calls; empty: the carrier "
                                 "shows the trunk's own number", 0, 20),
    },
    "queue": QUEUE_OPTIONS,  # the first queue; further ones in the ``queues`` list (appliance.config_acd)
    "ivr": {
        "welcome": Option("str", _msg("prompt.welcome", "zh"), "welcome prompt text (spoken by TTS)", 1, 500),
        "voice": Option("choice", "cmn", "TTS voice of the prompts", choices=("cmn", "en")),
        "menu": Option("menu", {"1": "queue"}, "DTMF key -> action; at least one key leads to the queue",
                       choices=("queue", "hangup", "repeat")),
        "digit_timeout_s": Option("float", 5.0, "wait this long for a key", 1, 30, unit="seconds"),
        "retries": Option("int", 2, "replays of the menu after no or a wrong key", 0, 5),
        "prompt_level_dbm0": Option("float", -16.0, "active speech level of prompts, TTS and imported files",
                                    -30, -6, unit="dBm0"),
        "flow": Option("flow", None, "the IVR as a graph of nodes (appliance.flows); null: welcome, menu and "
                       "the first queue as the options above say"),
    },
    # What callers hear, as text spoken by TTS in ivr.voice; empty: the built-in words (appliance.messages).
    # {position}, {minutes}, {digit} and {number} are filled in when spoken.
    "prompts": {
        "transfer": Option("str", "", "said when a caller is put through to an agent", 0, 300),
        "queue_busy": Option("str", "", "all agents busy: with {position} and {minutes}", 0, 300),
        "queue_callback": Option("str", "", "added to queue_busy when the queue has a callback key: with {digit}",
                                 0, 300),
        "callback": Option("str", "", "the caller asked to be called back: with {number}", 0, 300),
        "voicemail": Option("str", "", "the voicemail greeting before the beep", 0, 300),
        "invalid": Option("str", "", "a key the menu does not know", 0, 300),
        "goodbye": Option("str", "", "before the box clears a call", 0, 300),
        "blocked": Option("str", "", "to a screened-out caller", 0, 300),
    },
    # Call recording (appliance.recpolicy decides which calls, appliance.recorder writes, appliance.recstore keeps
    # the files). Voicemail messages are always recorded, whatever enabled and policy say.
    "recording": {
        "enabled": Option("bool", True, "record calls as policy says (false: no call is recorded; voicemail still is)"),
        "policy": Option("choice", "all", "which answered calls are recorded: all, none, queues (calls of the queues "
                         "listed in queues) or agents (calls answered by the agents in agents or at the seats in "
                         "seats)", choices=("all", "none", "queues", "agents")),
        "queues": Option("names", [], "with policy queues: the names of the queues whose calls are recorded", 1, 32),
        "agents": Option("names", [], "with policy agents: ids (agents section) of the agents whose calls are "
                         "recorded", 2, 8),
        "seats": Option("ints", [], "with policy agents: seats whose calls are recorded, whoever is logged in "
                        "there (with no agents listed every seat is its own agent)", 1, 24),
        "mode": Option("choice", "mono", "mono mix or caller/agent on two channels", choices=("mono", "stereo")),
        "keep_days": Option("int", 0, "delete call recordings older than this (0: keep them)", 0, 3650,
                            unit="days"),
        "voicemail_keep_days": Option("int", 0, "delete voicemail messages older than this (0: keep them)", 0, 3650,
                                      unit="days"),
        "max_mb": Option("int", 0, "recordings and voicemail together use at most this much disk; the oldest are "
                         "deleted first (0: no quota)", 0, 10_000_000, unit="MiB"),
        "min_free_mb": Option("int", 100, "recording stops with the alarm recording.disk_full while the disk has "
                              "less free space than this (room kept for the journal and the system)", 0, 100_000,
                              unit="MiB"),
    },
    # The box's own SIP server: IP phones for the agents, and/or the carrier's SIP trunk (drivers.sip).
    "sip": {
        "address": Option("ip", "127.0.0.1", "the box's address on the phones' network: SIP and RTP listen on it "
                          "and SDP shows it"),
        "port": Option("int", 5060, "SIP port, UDP and TCP", 1, 65535),
        "rtp_min": Option("int", 10000, "lowest RTP port", 1024, 65534),
        "rtp_max": Option("int", 20000, "highest RTP port", 1025, 65535),
        "phones": Option("bool", False, "the seats are IP phones that register with their extension and "
                         "sip_password (always so with card.driver sip)"),
        "auth": Option("choice", "md5", "digest the phones are challenged with: md5 (every phone), sha-256 "
                       "(RFC 8760), or both (some phones then fail)", choices=("md5", "sha-256", "both")),
        "trunk_host": Option("str", "", "the carrier's SIP server (host or address); empty: no SIP trunk", 0, 253),
        "trunk_port": Option("int", 5060, "the carrier's SIP port", 1, 65535),
        "trunk_transport": Option("choice", "udp", "transport to the carrier", choices=("udp", "tcp")),
        "trunk_domain": Option("str", "", "the carrier's SIP domain; empty: trunk_host", 0, 253),
        "trunk_username": Option("str", "", "the trunk's account (usually its number)", 0, 64),
        "trunk_password": Option("str", "", "the trunk's password", 0, 128),
        "trunk_register": Option("bool", True, "register with the carrier (false: the carrier sends calls to "
                                 "this address without registration)"),
    },
    # Caller screening (appliance.caller.Screening): numbers in any form, or prefixes such as "1700*" (national
    # form) and "+1*" (E.164 form). The blacklist wins over the VIP list.
    "screening": {
        "blacklist": Option("numbers", [], "callers who hear the blocked prompt and are cleared, never queued"),
        "vip": Option("numbers", [], "callers queued ahead of every other caller (first come, first served "
                      "among VIPs)"),
        "block_withheld": Option("bool", False, "block callers who withhold their number"),
    },
    # Fax (appliance.faxcalls, appliance.faxapi): which inbound calls are faxes, how send jobs retry, where a
    # session's DSP runs in real time (virtual time always runs it inline).
    "fax": {
        "numbers": Option("numbers", [], "called numbers that are fax lines: their calls are received as faxes at "
                          "once, without the IVR"),
        "detect": Option("bool", True, "receive a fax when a caller in the IVR sends a fax machine's calling tone "
                         "(CNG)"),
        "tries": Option("int", 3, "attempts of a fax send job (busy, no answer and a failed fax each count one)",
                        1, 10),
        "retry_interval_s": Option("int", 120, "seconds between a send job's attempts", 0, 86400),
        "worker": Option("choice", "process", "where each fax session runs: a process of its own (never delays "
                         "the tick; about 100 MB resident, much of it shared libraries), or a thread (shares the "
                         "GIL with the tick)",
                         choices=("thread", "process")),
    },
    "sms": SMS_OPTIONS,  # the transports of SMS (appliance.sms.settings); dispatch rules in ``sms_rules``
    "web": {
        "listen": Option("ip", "127.0.0.1", "address the web page listens on"),
        "port": Option("int", 8080, "TCP port of the web page", 1, 65535),
    },
}

# ``seats`` is a list section: one item per seat; name and extension default from the seat number.
SEAT_ITEM: dict[str, Option] = {
    "seat": Option("int", None, "seat number, 1-based, unique (default: position + 1)", 1, 24),
    "name": Option("str", None, "seat name (default 坐席N)", 1, 32),
    "extension": Option("digits", None, "internal extension, unique (default 80N)", 2, 8),
    "sip_password": Option("str", "", "password the seat's IP phone registers with (when the seats are IP "
                           "phones: 8 to 64 characters)", 0, 64),
    "skill": Option("int", 5, "skill level of the seat's agent, for the skill-level strategy (higher first)", 1, 10),
    "queues": Option("skills", {}, "queue name -> the seat's skill level in it; empty: every queue at skill "
                     "(when agents are listed, their own queues count instead)", 1, 10),
}

# ``analog`` is a list section: one item per analog port that DAHDI is to configure.
ANALOG_ITEM: dict[str, Option] = {
    "channel": Option("int", None, "DAHDI channel number of the port, unique; after the span's 31 when it has one",
                      1, 1024),
    "kind": Option("choice", "fxs", "fxs: the port rings a phone; fxo: the port is wired to a line",
                   choices=("fxs", "fxo")),
}
SPAN_CHANNELS = 31  # an E1 span numbers its timeslots 1..31 whichever of them carry calls
SECTIONS = ("system", "card", "span", "analog", "seats", "queue", "queues", "agents", "departments", "ivr", "prompts",
            "recording", "sip", "screening", "fax", "sms", "sms_rules", "web")
LIST_SECTIONS = {"queues": check_queues, "agents": check_agents,  # lists of items, empty by default
                 "departments": check_departments, "sms_rules": check_sms_rules}


def _default_seats(n: int) -> list[dict]:
    return [{"seat": i, "name": _msg("config.seat_name", "zh", n=i), "extension": f"80{i}", "sip_password": "",
             "skill": 5, "queues": {}}
            for i in range(1, n + 1)]


def _default_analog() -> list[dict]:
    """The box's six FXS ports, numbered after the span's 31 channels."""
    return [{"channel": SPAN_CHANNELS + i, "kind": "fxs"} for i in range(1, 7)]


def _build_defaults() -> dict:
    out: dict[str, Any] = {}
    for section in SECTIONS:
        if section == "seats":
            out[section] = _default_seats(SCHEMA["card"]["seats"].default)
        elif section == "analog":
            out[section] = _default_analog()
        elif section in LIST_SECTIONS:
            out[section] = []
        else:
            out[section] = {k: copy.deepcopy(o.default) for k, o in SCHEMA[section].items()}
    return out


DEFAULTS: dict = _build_defaults()


def _check_seats(raw: Any, n_seats: int) -> list[dict]:
    if not isinstance(raw, list):
        raise ConfigError(f"seats: {raw!r} is {type_name(raw)}; expected a list with one item per seat")
    seats: list[dict] = []
    for i, item in enumerate(raw):
        where = f"seats[{i}]"
        seat_no = item.get("seat", i + 1) if isinstance(item, dict) else i + 1
        if isinstance(item, dict) and "seat" in item:
            _check(f"{where}.seat", SEAT_ITEM["seat"], seat_no)
        defaults = {"seat": seat_no, "name": _msg("config.seat_name", "zh", n=seat_no),
                    "extension": f"80{seat_no}", "sip_password": "", "skill": SEAT_ITEM["skill"].default, "queues": {}}
        seats.append(_check_mapping(where, SEAT_ITEM, item, defaults))
    for field in ("seat", "extension"):
        first: dict[Any, int] = {}
        for i, s in enumerate(seats):
            if s[field] in first:
                raise ConfigError(f"seats[{i}].{field}: {s[field]!r} is already used by seats[{first[s[field]]}]; "
                                  f"{field}s must be unique")
            first[s[field]] = i
    if len(seats) != n_seats:
        raise ConfigError(f"seats: has {len(seats)} items but card.seats is {n_seats}; give one item per seat")
    return seats


def _check_analog(raw: Any) -> list[dict]:
    if not isinstance(raw, list):
        raise ConfigError(f"analog: {raw!r} is {type_name(raw)}; expected a list with one item per analog port")
    ports: list[dict] = []
    first: dict[int, int] = {}
    for i, item in enumerate(raw):
        where = f"analog[{i}]"
        if isinstance(item, dict) and "channel" not in item:
            raise ConfigError(f"{where}.channel: missing; give the port's DAHDI channel number")
        port = _check_mapping(where, ANALOG_ITEM, item, {"kind": "fxs"})
        ch = port["channel"]
        if ch in first:
            raise ConfigError(f"{where}.channel: {ch} is already used by analog[{first[ch]}]; channels must be unique")
        first[ch] = i
        ports.append(port)
    return ports


def _check_span_plan(span: dict, analog: list[dict]) -> None:
    """The combinations DAHDI cannot configure: framing against signalling, timeslot 16, analog ports on the span."""
    sig, framing = span["signalling"], span["framing"]
    need = "cas" if sig == "mfcr2" else "ccs"
    if framing != need:
        raise ConfigError(f"span.signalling: {sig!r} needs span.framing {need!r}, not {framing!r}; "
                          "change both in one save")
    channels = parse_channels(span["channels"])
    if sig == "mfcr2" and 16 in channels:
        raise ConfigError(f"span.channels: {span['channels']!r} includes 16; "
                          "with cas framing timeslot 16 carries the signalling bits")
    if sig != "mfcr2" and span["dchan"] in channels:
        raise ConfigError(f"span.channels: {span['channels']!r} includes span.dchan {span['dchan']}; "
                          "the D-channel carries no calls")
    if span["enabled"]:
        for i, port in enumerate(analog):
            if port["channel"] <= SPAN_CHANNELS:
                raise ConfigError(f"analog[{i}].channel: {port['channel']} is a channel of the E1 span "
                                  f"(1..{SPAN_CHANNELS}, span.enabled is true); analog ports start at "
                                  f"{SPAN_CHANNELS + 1}")


def validate(raw: dict) -> dict:
    """Check a whole config and return it complete, defaults merged in for missing keys and sections.

    Parameters
    ----------
    raw : dict
        section name -> values (a dict; for ``seats`` and ``analog`` a list of item dicts).

    Returns
    -------
    dict
        A new dict with every section of ``SCHEMA`` plus ``seats`` and ``analog``; float options
        are floats, channel lists collapsed (``1-15,17-31``).

    Raises
    ------
    ConfigError
        On the first problem, one line: dotted key, the bad value, what is allowed.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"config: {raw!r} is {type_name(raw)}; expected an object of sections")
    unknown = sorted(set(raw) - set(SECTIONS), key=str)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; allowed sections: {', '.join(sorted(SECTIONS))}")
    out: dict[str, Any] = {}
    for section in SECTIONS:
        if section == "seats":
            continue  # checked last: its length depends on card.seats
        if section == "analog":
            out[section] = _check_analog(raw[section]) if section in raw else _default_analog()
            continue
        if section in LIST_SECTIONS:
            out[section] = LIST_SECTIONS[section](raw[section]) if section in raw else []
            continue
        out[section] = _check_mapping(section, SCHEMA[section], raw.get(section, {}), DEFAULTS[section])
    _check_span_plan(out["span"], out["analog"])
    n = out["card"]["seats"]
    out["seats"] = _check_seats(raw["seats"], n) if "seats" in raw else _default_seats(n)
    _check_sip(out)
    check_references(out)
    check_recording(out)
    _check_prompt_fields(out["prompts"])
    check_sms(out)
    screening(out)  # every screening entry parses as a number or prefix
    return {s: out[s] for s in SECTIONS}


PROMPT_FIELDS = {"queue_busy": {"position", "minutes"}, "queue_callback": {"digit"}, "callback": {"number"}}


def _check_prompt_fields(prompts: dict) -> None:
    for key, text in prompts.items():
        fields = PROMPT_FIELDS.get(key, set())
        allowed = ", ".join("{%s}" % f for f in sorted(fields)) or "none"
        unknown = sorted(set(re.findall(r"{([^{}]*)}", text)) - fields)
        if unknown:
            raise ConfigError(f"prompts.{key}: {{{unknown[0]}}} is not a field it can say; allowed {allowed}")
        try:
            text.format(**{f: "1" for f in fields})
        except (ValueError, IndexError, KeyError):
            raise ConfigError(f"prompts.{key}: {text!r} has a brace that opens no field; fields: {allowed}") from None


def caller_texts(cfg: dict, lang: str) -> dict[str, str]:
    """What callers hear for each ``prompts`` key: the configured text, or the catalog's in ``lang``."""
    return {key: text or CATALOG[f"prompt.{key}"][lang] for key, text in cfg["prompts"].items()}  # unformatted


def home_area(cfg: dict) -> str:
    """``system.area_code`` as ``appliance.caller`` takes it: without a leading 0 ("027" -> "27")."""
    code = cfg["system"]["area_code"]
    return code[1:] if code.startswith("0") else code


def screening(cfg: dict):
    """The ``appliance.caller.Screening`` of a validated config; ConfigError naming the bad key or entry."""
    area = home_area(cfg)
    try:
        normalise("", home_area=area)
    except ConfigError:
        raise ConfigError(f"system.area_code: {cfg['system']['area_code']!r} is not an area code; give 2-3 digits "
                          "after the trunk 0, e.g. 27 (Wuhan), 10 (Beijing) or 755 (Shenzhen)") from None
    s = cfg["screening"]
    return Screening(s["blacklist"], s["vip"], area, block_withheld=s["block_withheld"])


def ip_phones(cfg: dict) -> bool:
    """Whether the seats are IP phones (the SIP card serves them)."""
    return cfg["card"]["driver"] == "sip" or cfg["sip"]["phones"]


def _check_sip(cfg: dict) -> None:
    sip = cfg["sip"]
    if sip["rtp_min"] + 2 > sip["rtp_max"]:
        raise ConfigError(f"sip.rtp_min: {sip['rtp_min']} leaves no RTP port pair below sip.rtp_max "
                          f"{sip['rtp_max']}")
    if ip_phones(cfg):
        for i, seat in enumerate(cfg["seats"]):
            if len(seat["sip_password"]) < 8:
                raise ConfigError(f"seats[{i}].sip_password: needed when the seats are IP phones (card.driver sip "
                                  "or sip.phones true): 8 to 64 characters that the phone registers with")
    if cfg["card"]["driver"] == "sip" and not sip["trunk_host"]:
        return  # IP phones only: internal calls, no carrier yet
    if sip["trunk_host"] and not sip["trunk_username"]:
        raise ConfigError("sip.trunk_username: needed with sip.trunk_host (the account the carrier gave)")
