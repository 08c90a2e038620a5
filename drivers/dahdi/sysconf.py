"""/etc/dahdi/system.conf from the box's configuration, written atomically and applied with dahdi_cfg.

The file format is dahdi-tools' (its ``system.conf.sample``): one ``span=`` line
per digital span, then ``<signalling>=<channel list>`` lines, ``echocanceller=``
lines and the tone zone. Mind DAHDI's naming: a port that rings a phone (FXS
hardware) is signalled ``fxoks``, a port wired to a line (FXO hardware) ``fxsks``.

``cfg`` is always a whole config as ``appliance.config.validate`` returns it: the
combinations DAHDI cannot configure (R2 on ccs framing, a D-channel among the
B-channels, analog ports numbered on the span) are refused there, with the keys
named, before anything is saved. This module only renders and applies.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any, Callable

from appliance.atomicfile import write_bytes_atomically
from appliance.errors import DriverError

PATH = "/etc/dahdi/system.conf"
R2_IDLE_BITS = "1101"  # ABCD bits of an idle R2 channel; dahdi-tools' r2_idle_bits default
SIGNALLING = {"fxs": "fxoks", "fxo": "fxsks"}  # the port's hardware -> the signalling DAHDI runs on it
DAHDI_CFG_TIMEOUT_S = 60.0

HEADER = """\
# /etc/dahdi/system.conf, generated from the call-centre appliance's configuration.
# Do not edit by hand: the next change of settings overwrites it. Change the
# span, analog and card settings instead (web page or `appliance config set`).
# Read by dahdi_cfg.
"""


def format_channels(channels: list[int]) -> str:
    """Channel numbers -> DAHDI's channel list, runs collapsed: [1, 2, 3, 5] -> '1-3,5'."""
    return ",".join(_run_text(a, b) for a, b in _runs(channels))


def _run_text(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}-{b}"


def _runs(channels: list[int]) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for c in sorted(set(channels)):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return [(a, b) for a, b in runs]


def parse_channels(text: str) -> list[int] | None:
    """A channel list as system.conf and the config write it ('1-15, 17-31') -> sorted unique numbers;
    None when ``text`` is not such a list."""
    out: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*([0-9]{1,4})\s*(?:-\s*([0-9]{1,4})\s*)?", part)
        if not m:
            return None
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi:
            return None
        out.update(range(lo, hi + 1))
    return sorted(out)


def channel_numbers(text: str) -> list[int]:
    """A validated channel list (the config's) -> its channel numbers; DriverError if it is not one."""
    channels = parse_channels(text)
    if channels is None:
        raise DriverError(f"channel list {text!r} is not like '1-15,17-31'")
    return channels


def _span_lines(span: dict, ec: str) -> list[str]:
    sig = span["signalling"]
    clock = "timing from the line" if span["timing"] else "own free-running timing"
    lines = [f"# Span 1: E1 to the carrier, {sig} signalling, {clock}",
             f"span=1,{span['timing']},{span['lbo']},{span['framing']},{span['coding']}"
             + (",crc4" if span["crc4"] else "")]
    voice = channel_numbers(span["channels"])
    if sig == "mfcr2":
        # CAS: timeslot 16 carries every channel's ABCD bits, so there is no D-channel line.
        lines += [f"cas={_run_text(a, b)}:{R2_IDLE_BITS}" for a, b in _runs(voice)]
    else:
        lines += [f"bchan={format_channels(voice)}", f"dchan={span['dchan']}"]
    if ec != "none":
        lines.append(f"echocanceller={ec},{format_channels(voice)}")
    return lines


def _analog_lines(analog: list[dict], ec: str) -> list[str]:
    lines = ["# Analog ports: fxoks = a port that rings a phone (FXS), fxsks = a port on a line (FXO)"]
    for kind in ("fxs", "fxo"):
        chans = [p["channel"] for p in analog if p["kind"] == kind]
        if chans:
            lines.append(f"{SIGNALLING[kind]}={format_channels(chans)}")
    if ec != "none":
        lines.append(f"echocanceller={ec},{format_channels([p['channel'] for p in analog])}")
    return lines


def system_conf(cfg: dict) -> str:
    """The complete text of /etc/dahdi/system.conf for ``cfg`` (a validated config); deterministic.

    Uses ``span``, ``analog``, ``card.echo_canceller`` and ``card.tone_plan`` (the
    tone zone, ``loadzone`` and ``defaultzone``).
    """
    ec = cfg["card"]["echo_canceller"]
    blocks = [HEADER.rstrip("\n").split("\n")]
    if cfg["span"]["enabled"]:
        blocks.append(_span_lines(cfg["span"], ec))
    if cfg["analog"]:
        blocks.append(_analog_lines(cfg["analog"], ec))
    zone = cfg["card"]["tone_plan"]
    blocks.append(["# Tone zone: dial tone, ringing cadence and other tones DAHDI plays", f"loadzone={zone}",
                   f"defaultzone={zone}"])
    return "\n\n".join("\n".join(b) for b in blocks) + "\n"


def _write_atomic(path: str, data: bytes) -> None:
    """``path`` is old or new, never half; world-readable like the file dahdi_cfg expects."""
    write_bytes_atomically(path, data, mode=0o644)


def write_system_conf(cfg: dict, path: str | os.PathLike = PATH) -> None:
    """Write ``system_conf(cfg)`` to ``path`` atomically; raise DriverError when the folder is not writable."""
    path = os.fspath(path)
    try:
        _write_atomic(path, system_conf(cfg).encode("ascii"))
    except OSError as e:
        raise DriverError(f"cannot write {path}: {e.strerror}") from None


def _run_dahdi_cfg(run: Callable[..., Any], dahdi_cfg: str, path: str) -> tuple[str | None, str]:
    """Run ``dahdi_cfg -vv -c path``; return (None, its report) on success, else (what went wrong, "")."""
    argv = [dahdi_cfg, "-vv", "-c", path]
    try:
        proc = run(argv, capture_output=True, text=True, timeout=DAHDI_CFG_TIMEOUT_S, check=False)
    except OSError as e:
        return f"cannot run {dahdi_cfg}: {e.strerror}", ""
    except subprocess.TimeoutExpired:
        return f"{' '.join(argv)} did not finish in {DAHDI_CFG_TIMEOUT_S:g} s", ""
    if proc.returncode != 0:
        err = " ".join((proc.stderr or "").split()) or "no message"
        return f"{' '.join(argv)} failed with exit status {proc.returncode}: {err}", ""
    return None, proc.stdout or ""


def apply(cfg: dict, path: str | os.PathLike = PATH, dahdi_cfg: str = "dahdi_cfg",
          run: Callable[..., Any] = subprocess.run) -> str:
    """Write system.conf for ``cfg``, configure the kernel with ``dahdi_cfg -vv -c path``; return its report.

    Blocking (dahdi_cfg may take seconds): call it at start or from a worker, never on the tick.
    When dahdi_cfg fails, the previous file is put back and applied again, so the
    card keeps its old configuration, and DriverError carries dahdi_cfg's stderr.
    ``run`` has ``subprocess.run``'s signature; tests pass a fake.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            previous: bytes | None = f.read()
    except FileNotFoundError:
        previous = None
    except OSError as e:
        raise DriverError(f"cannot read {path}: {e.strerror}") from None
    write_system_conf(cfg, path)
    failure, report = _run_dahdi_cfg(run, dahdi_cfg, path)
    if failure is None:
        return report
    try:
        if previous is None:
            os.unlink(path)
            raise DriverError(f"{failure}; {path} removed (there was none before)")
        _write_atomic(path, previous)
    except OSError as e:
        raise DriverError(f"{failure}; restoring the previous {path} failed too: {e.strerror}") from None
    again, _ = _run_dahdi_cfg(run, dahdi_cfg, path)
    tail = "the previous file is back and applied" if again is None else f"re-applying it failed too: {again}"
    raise DriverError(f"{failure}; {tail}")
