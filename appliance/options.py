"""Configuration options as data: what kind of value each takes, its default and bounds, and the strict check.

``appliance.config`` builds its schema from ``Option``s; ``check`` validates one
value and ``check_mapping`` a whole section, each failing with one line that
names the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from drivers.dahdi.sysconf import format_channels, parse_channels

from .errors import ConfigError
from .flows import check_flow

DTMF_KEYS = "0123456789*#"
# where a call goes when a queue overflows (and the targets of IVR transfers): see appliance.callcontrol
TARGET = re.compile(r"|hangup|queue:.{1,32}|voicemail:.{1,32}|seat:[1-9][0-9]?|number:\+?[0-9]{3,20}")


@dataclass(frozen=True)
class Option:
    """One configuration option: its kind, default, bounds or choices, and what it is for.

    ``kind`` is one of: ``str`` (``lo..hi`` characters), ``digits`` (``lo..hi``
    ASCII digits), ``int``/``float`` (``lo..hi`` inclusive; ints are accepted for
    floats), ``bool``, ``choice`` (one of ``choices``), ``timezone`` (an IANA
    zoneinfo name), ``ip`` (an IPv4/IPv6 address), ``menu`` (DTMF key -> one of
    ``choices``), ``channels`` (a DAHDI channel list such as ``1-15,17-31``, every
    channel in ``lo..hi``; kept sorted and collapsed), ``numbers`` (a list of phone numbers or
    prefixes ending in ``*``, as strings; ``validate`` checks the entries with ``appliance.caller``),
    ``key`` (one DTMF key or empty), ``target`` (``TARGET``), ``skills`` (queue name -> skill level
    ``lo..hi``), ``flow`` (an IVR flow, ``appliance.flows``, or null), ``names`` (a list of distinct strings of
    ``lo..hi`` characters: queue names, agent ids), ``ints`` (a list of distinct integers ``lo..hi``: seat numbers).
    """

    kind: str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""


# old saved values that still load: (key, old value) -> the value now
LEGACY_CHOICES: dict[tuple[str, str], str] = {("queue.strategy", "longest_idle"): "longest-idle"}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def check(key: str, opt: Option, value: Any) -> Any:
    """Return ``value`` checked (and floats normalised) against ``opt``; raise ConfigError naming ``key``."""
    def fail(why: str) -> ConfigError:
        return ConfigError(f"{key}: {value!r} {why}")

    kind = opt.kind
    if kind in ("str", "digits", "choice", "timezone", "ip", "channels") and not isinstance(value, str):
        raise fail(f"is {type_name(value)}; expected a string")
    if kind == "str":
        if not opt.lo <= len(value) <= opt.hi:
            raise fail(f"must be {_num(opt.lo)}..{_num(opt.hi)} characters (has {len(value)})")
    elif kind == "digits":
        if not (re.fullmatch(r"[0-9]*", value) and opt.lo <= len(value) <= opt.hi):
            raise fail(f"must be {_num(opt.lo)}..{_num(opt.hi)} digits")
    elif kind == "choice":
        value = LEGACY_CHOICES.get((key, value), value)  # a value saved by an older version
        if value not in opt.choices:
            raise fail(f"is not allowed; one of {', '.join(sorted(opt.choices))}")
    elif kind == "timezone":
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise fail("is not a known time zone; use an IANA name such as Asia/Shanghai") from None
    elif kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise fail("is not an IP address; e.g. 127.0.0.1, 0.0.0.0 or ::1") from None
    elif kind == "bool":
        if not isinstance(value, bool):
            raise fail(f"is {type_name(value)}; expected true or false")
    elif kind in ("int", "float"):
        ok = (int,) if kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok):
            raise fail(f"is {type_name(value)}; expected {'an integer' if kind == 'int' else 'a number'}")
        if not math.isfinite(value):
            raise fail("is not a finite number")
        if not opt.lo <= value <= opt.hi:
            unit = f" ({opt.unit})" if opt.unit else ""
            raise fail(f"is out of range; allowed {_num(opt.lo)}..{_num(opt.hi)}{unit}")
        return float(value) if kind == "float" else value
    elif kind == "menu":
        if not isinstance(value, dict):
            raise fail(f"is {type_name(value)}; expected an object mapping DTMF keys to actions")
        for k, action in value.items():
            if not (isinstance(k, str) and len(k) == 1 and k in DTMF_KEYS):
                raise ConfigError(f"{key}.{k}: not a DTMF key; one of 0-9, *, #")
            if not isinstance(action, str) or action not in opt.choices:
                raise ConfigError(f"{key}.{k}: {action!r} is not allowed; one of {', '.join(sorted(opt.choices))}")
        if "queue" not in value.values():
            raise ConfigError(f"{key}: {value!r} has no key leading to 'queue'; at least one is required")
        return dict(value)
    elif kind == "numbers":
        if not isinstance(value, list):
            raise fail(f"is {type_name(value)}; expected a list of numbers such as [\"13912345678\", \"1700*\"]")
        for i, entry in enumerate(value):
            if not isinstance(entry, str):
                raise ConfigError(f"{key}[{i}]: {entry!r} is {type_name(entry)}; expected a string "
                                  "(a number, or a prefix ending in *)")
        return list(value)
    elif kind in ("names", "ints"):
        if not isinstance(value, list):
            raise fail(f"is {type_name(value)}; expected a list")
        for i, entry in enumerate(value):
            if kind == "names" and not (isinstance(entry, str) and opt.lo <= len(entry) <= opt.hi):
                raise ConfigError(f"{key}[{i}]: {entry!r} is not a name of {_num(opt.lo)}..{_num(opt.hi)} characters")
            if kind == "ints" and (isinstance(entry, bool) or not isinstance(entry, int)
                                   or not opt.lo <= entry <= opt.hi):
                raise ConfigError(f"{key}[{i}]: {entry!r} is not an integer {_num(opt.lo)}..{_num(opt.hi)}")
            if entry in value[:i]:
                raise ConfigError(f"{key}[{i}]: {entry!r} is listed twice")
        return list(value)
    elif kind == "channels":
        channels = parse_channels(value)
        if channels is None:
            raise fail("is not a channel list; write numbers and ranges such as 1-15,17-31")
        outside = [c for c in channels if not opt.lo <= c <= opt.hi]
        if outside:
            raise fail(f"includes {outside[0]}; allowed channels {_num(opt.lo)}..{_num(opt.hi)}")
        return format_channels(channels)
    elif kind == "key":
        if not (isinstance(value, str) and (value == "" or (len(value) == 1 and value in DTMF_KEYS))):
            raise fail("is not a DTMF key; one of 0-9, *, # or empty (off)")
    elif kind == "target":
        if not (isinstance(value, str) and TARGET.fullmatch(value)):
            raise fail("is not a target; one of hangup, queue:NAME, voicemail:BOX, seat:N, number:DIGITS "
                       "or empty")
    elif kind == "skills":
        if not isinstance(value, dict):
            raise fail(f"is {type_name(value)}; expected an object of queue name -> skill level "
                       f"{_num(opt.lo)}..{_num(opt.hi)}")
        for name, level in value.items():
            if isinstance(level, bool) or not isinstance(level, int) or not opt.lo <= level <= opt.hi:
                raise ConfigError(f"{key}.{name}: {level!r} is not a skill level; allowed "
                                  f"{_num(opt.lo)}..{_num(opt.hi)}")
        return dict(value)
    elif kind == "flow":
        if value is not None:
            check_flow(value)  # the IVR graph's own checks, naming the node
        return copy.deepcopy(value)
    else:  # pragma: no cover - a schema typo, caught by the tests over SCHEMA
        raise AssertionError(f"unknown option kind {kind!r}")
    return value


def check_mapping(where: str, options: dict[str, Option], raw: Any, defaults: dict) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {raw!r} is {type_name(raw)}; expected an object of keys")
    unknown = sorted(set(raw) - set(options), key=str)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed keys: {', '.join(sorted(options))}")
    return {k: check(f"{where}.{k}", opt, raw[k]) if k in raw else copy.deepcopy(defaults[k])
            for k, opt in options.items()}


