"""The configuration file: TinyDB load/save, one-key changes, and the ``appliance config`` command line.

Settings live in the TinyDB file ``DATA_DIR/config.json``, table ``settings``, one
document per section ``{"section": name, "values": ...}``; other tables in the
file are never touched. Every write is validated whole first (``appliance.config``).
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from typing import Any, Callable

from .config import DEFAULTS, SECTIONS, TABLE, type_name, validate
from .errors import ConfigError
from .storage import open_db


# -- the TinyDB file --------------------------------------------------------------------------

def _sections_from_table(path: str, table: Any) -> tuple[dict, dict[str, str]]:
    """Return (section -> raw values, section -> TinyDB doc id) from the stored ``settings`` table."""
    if table is None:
        return {}, {}
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: table {TABLE!r} is {type_name(table)}; expected an object")
    raw: dict[str, Any] = {}
    ids: dict[str, str] = {}
    for doc_id, doc in table.items():
        if not (isinstance(doc, dict) and isinstance(doc.get("section"), str) and "values" in doc):
            raise ConfigError(f"config file {path}: document {doc_id} is {doc!r}; "
                              'expected {"section": name, "values": ...}')
        name = doc["section"]
        if name in raw:
            raise ConfigError(f"config file {path}: section {name!r} is stored twice (documents {ids[name]}, {doc_id})")
        raw[name], ids[name] = doc["values"], doc_id
    return raw, ids


def _read_raw(db: Any, path: str) -> dict | None:
    try:
        return db.storage.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None


def load_config(path: str | os.PathLike) -> dict:
    """Read and validate the config in the TinyDB file ``path``; a missing file gives the defaults. Never writes.

    Raises ``ConfigError`` naming the file when it is unreadable, not JSON or invalid.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return copy.deepcopy(DEFAULTS)
    with open_db(path) as db:
        data = _read_raw(db, path) or {}
    raw, _ = _sections_from_table(path, data.get(TABLE))
    try:
        return validate(raw)
    except ConfigError as e:
        raise ConfigError(f"config file {path}: {e}") from None


def _update(path: str | os.PathLike, make_updates: Callable[[dict], dict]) -> dict:
    """Under the file lock: read, merge ``make_updates(stored sections)``, validate, and only then write."""
    path = os.fspath(path)
    with open_db(path) as db, db.storage.locked():
        data = _read_raw(db, path) or {}
        raw, ids = _sections_from_table(path, data.get(TABLE))
        updates = make_updates(copy.deepcopy(raw))
        if not isinstance(updates, dict):
            raise ConfigError(f"config update: {updates!r} is {type_name(updates)}; expected an object of sections")
        merged = copy.deepcopy(raw)
        for section, values in updates.items():
            old = merged.get(section)
            if isinstance(old, dict) and isinstance(values, dict):
                old.update(values)
            else:
                merged[section] = copy.deepcopy(values)  # seats (a list) and new sections replace wholesale
        new = validate(merged)
        if raw == new:
            return new  # the file already holds exactly this: leave it alone
        next_id = max((int(i) for i in ids.values() if str(i).isdigit()), default=0) + 1
        table: dict[str, dict] = {}
        for section in SECTIONS:
            if section in ids:
                doc_id = ids[section]
            else:
                doc_id, next_id = str(next_id), next_id + 1
            table[doc_id] = {"section": section, "values": new[section]}
        data[TABLE] = table
        db.storage.write(data)
    return new


def save_config(path: str | os.PathLike, updates: dict) -> dict:
    """Merge ``updates`` (section -> partial values; ``seats`` a whole list) into the stored config and save.

    The merged whole is validated before anything is written, under the storage's
    cross-process lock; on any error the file is left byte-identical and
    ``ConfigError`` is raised. Returns the new complete config.
    """
    return _update(path, lambda _stored: updates)


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*|[0-9*#])(?:\[(\d+)\])?")


def _parse_key(dotted: str) -> list[str | int]:
    """'seats[2].name' -> ['seats', 2, 'name']; 'ivr.menu.7' -> ['ivr', 'menu', '7']."""
    steps: list[str | int] = []
    for part in dotted.split("."):
        m = _PATH_PART.fullmatch(part)
        if not m:
            raise ConfigError(f"{dotted}: not a config key; write section.key, "
                              "e.g. queue.ring_timeout_s or seats[0].name")
        steps.append(m.group(1))
        if m.group(2) is not None:
            steps.append(int(m.group(2)))
    return steps


def set_value(path: str | os.PathLike, dotted_key: str, text: str) -> dict:
    """Set one value from the command line: ``text`` is parsed as JSON when it parses, else taken as a string.

    ``dotted_key`` is ``section.key``, ``ivr.menu.<digit>``, ``seats[i].field`` (i 0-based)
    or a whole section (``seats`` with a JSON list). Returns the new config.
    """
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    steps = _parse_key(dotted_key)

    def make_updates(stored: dict) -> dict:
        section = steps[0]
        if len(steps) == 1:
            return {section: value}
        current = copy.deepcopy(_effective_section(stored, section))
        node: Any = current
        for depth, step in enumerate(steps[1:-1], start=1):
            node = _descend(node, step, steps[:depth + 1], dotted_key)
        last = steps[-1]
        if isinstance(last, int):
            _descend(node, last, steps, dotted_key)
        elif not isinstance(node, dict):
            raise ConfigError(f"{dotted_key}: {_fmt(steps[:-1])} is {type_name(node)}; it has no key {last!r}")
        node[last] = value
        return {section: current}

    return _update(path, make_updates)


def _effective_section(stored: dict, section: str) -> Any:
    """``section`` with defaults filled in when the stored config is valid, else as stored (so set can repair it)."""
    try:
        return validate(stored).get(section, stored.get(section, {}))
    except ConfigError:
        return stored.get(section, copy.deepcopy(DEFAULTS.get(section, {})))


def _fmt(steps: list[str | int]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))


def _descend(node: Any, step: str | int, so_far: list[str | int], dotted: str) -> Any:
    if isinstance(step, int):
        if not isinstance(node, list):
            raise ConfigError(f"{dotted}: {_fmt(so_far[:-1])} is {type_name(node)}; it has no item [{step}]")
        if not 0 <= step < len(node):
            raise ConfigError(f"{dotted}: {_fmt(so_far)} does not exist; the list has {len(node)} items "
                              f"(0..{len(node) - 1})")
        return node[step]
    if not isinstance(node, dict):
        raise ConfigError(f"{dotted}: {_fmt(so_far[:-1])} is {type_name(node)}; it has no key {step!r}")
    return node.setdefault(step, {})


# -- `appliance config ...` -------------------------------------------------------------------

def _print(stream: Any, s: str) -> None:
    """Write ``s`` + newline as UTF-8 whatever the locale (a C locale would fail on Chinese)."""
    buf = getattr(stream, "buffer", None)
    if buf is None:
        stream.write(s + "\n")
        return
    stream.flush()
    buf.write((s + "\n").encode("utf-8"))
    buf.flush()


def _dumps(cfg: dict) -> str:
    return json.dumps(cfg, ensure_ascii=False, indent=2)


def config_main(argv: list[str], data_dir: Any) -> int:
    """Run ``appliance config show|check|set KEY VALUE|defaults`` on ``data_dir`` (a DataDir); return the exit code."""
    usage = "usage: appliance config show | check | defaults | set KEY VALUE"
    try:
        cmd = argv[0] if argv else None
        if cmd == "defaults" and len(argv) == 1:
            _print(sys.stdout, _dumps(DEFAULTS))
        elif cmd == "show" and len(argv) == 1:
            _print(sys.stdout, _dumps(load_config(data_dir.config)))
        elif cmd == "check" and len(argv) == 1:
            load_config(data_dir.config)
            _print(sys.stdout, "ok")
        elif cmd == "set" and len(argv) == 3:
            new = set_value(data_dir.config, argv[1], argv[2])
            _print(sys.stdout, f"{argv[1]} = {json.dumps(_lookup(new, _parse_key(argv[1])), ensure_ascii=False)}")
        elif cmd in ("defaults", "show", "check", "set"):
            raise ConfigError(f"wrong arguments for {cmd!r}; {usage}")
        else:
            raise ConfigError(f"unknown subcommand {cmd!r}; {usage}")
    except ConfigError as e:
        _print(sys.stderr, f"error: {e}")
        return 1
    return 0


def _lookup(cfg: Any, steps: list[str | int]) -> Any:
    for step in steps:
        cfg = cfg[step]
    return cfg
