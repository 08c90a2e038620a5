"""Tests of /etc/dahdi/system.conf generation: hand-checked expected files, dahdi_cfg as a peer, atomic apply."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from appliance.config import validate
from appliance.errors import ConfigError, DriverError
from drivers.dahdi import sysconf
from drivers.dahdi.sysconf import apply, format_channels, system_conf, write_system_conf

DATA = Path(__file__).parent / "data"

CASES = {
    "default": {},
    "r2": {"span": {"signalling": "mfcr2", "framing": "cas", "crc4": False}, "card": {"echo_canceller": "mg2"}},
    "analog_only": {"span": {"enabled": False},
                    "analog": [{"channel": 1, "kind": "fxs"}, {"channel": 2}, {"channel": 3, "kind": "fxo"},
                               {"channel": 4, "kind": "fxo"}]},
    "us_fxo": {"card": {"tone_plan": "us", "echo_canceller": "none"},
               "span": {"signalling": "pri_net", "timing": 0, "coding": "ami", "crc4": False,
                        "channels": "1-15,17-21"},
               "analog": [{"channel": 37, "kind": "fxo"}, {"channel": 32, "kind": "fxs"},
                          {"channel": 34, "kind": "fxo"}, {"channel": 33, "kind": "fxs"},
                          {"channel": 36, "kind": "fxo"}, {"channel": 35}]},
}


def expected(name: str) -> str:
    """The expected file without its leading '#|' provenance lines."""
    lines = (DATA / f"system.conf.{name}").read_bytes().decode("ascii").splitlines(keepends=True)
    assert lines[0].startswith("#| "), "each expected file says what it was checked against"
    return "".join(line for line in lines if not line.startswith("#|"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_equals_the_hand_checked_file(name):
    assert system_conf(validate(CASES[name])) == expected(name)


def test_output_does_not_depend_on_the_order_of_ports():
    raw = CASES["us_fxo"]
    flipped = dict(raw, analog=list(reversed(raw["analog"])))
    assert system_conf(validate(flipped)) == system_conf(validate(raw)) == expected("us_fxo")


def test_a_span_without_analog_ports_and_channels_given_loosely():
    text = system_conf(validate({"analog": [], "span": {"channels": "17-31, 1-15,3"}}))
    assert "bchan=1-15,17-31\ndchan=16\necho" in text
    assert "Analog" not in text and "fxoks" not in text and "fxsks" not in text


@pytest.mark.parametrize("channels, text", [
    ([], ""), ([5], "5"), ([1, 2], "1-2"), ([1, 2, 3, 5], "1-3,5"), ([3, 1, 2, 2], "1-3"),
    ([*range(1, 16), *range(17, 32)], "1-15,17-31"), ([32, 33, 35, 40, 41, 42], "32-33,35,40-42"),
])
def test_format_channels(channels, text):
    assert format_channels(channels) == text


# -- dahdi_cfg, the real parser, as a peer --------------------------------------------------

def _unavailable(msg: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def dahdi_cfg_t():
    """Run ``dahdi_cfg -t -vv -c FILE`` and return its stdout.

    Even in test mode dahdi_cfg opens /dev/dahdi/ctl, which needs the kernel
    modules; it runs in a private mount namespace whose /dev is a tmpfs with an
    empty file there, so it parses and reports without a card and without
    touching the machine's /dev.
    """
    exe = shutil.which("dahdi_cfg") or shutil.which("dahdi_cfg", path="/usr/sbin:/sbin")
    unshare = shutil.which("unshare")
    if not exe or not unshare:
        _unavailable("system tool 'dahdi_cfg' (Debian package dahdi) or 'unshare' is not installed")
    script = ('mount -t tmpfs none /dev && mkdir /dev/dahdi && : >/dev/dahdi/ctl && : >/dev/null '
              '&& exec "$0" -t -vv -c "$1"')
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        _unavailable(f"cannot make a private mount namespace for dahdi_cfg: {probe.stderr.strip()}")

    def run(path: Path) -> str:
        proc = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c", script, exe, str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    return run


def _chans(channels, what: str, ec: str) -> dict[int, tuple[str, str]]:
    return {c: (what, ec) for c in channels}


E1_SPAN = [*range(1, 16), *range(17, 32)]
# What dahdi_cfg -vv reports per channel: (signalling, echo canceller). Its "FXO Kewlstart" on a
# phone port is DAHDI's naming, not a slip: the port is the FXO end of the signalling.
PEER_VIEW = {
    "default": ("SPAN 1: CCS/HDB3 Build-out: 0 db (CSU)/0-133 feet (DSX-1)",
                {**_chans(E1_SPAN, "Clear channel", "oslec"), 16: ("D-channel", "none"),
                 **_chans(range(32, 38), "FXO Kewlstart", "oslec")}),
    "r2": ("SPAN 1: CAS/HDB3 Build-out: 0 db (CSU)/0-133 feet (DSX-1)",
           {**_chans(E1_SPAN, "CAS / User", "mg2"), **_chans(range(32, 38), "FXO Kewlstart", "mg2")}),
    "analog_only": (None, {**_chans([1, 2], "FXO Kewlstart", "oslec"), **_chans([3, 4], "FXS Kewlstart", "oslec")}),
    "us_fxo": ("SPAN 1: CCS/ AMI Build-out: 0 db (CSU)/0-133 feet (DSX-1)",
               {**_chans([*range(1, 16), *range(17, 22)], "Clear channel", "none"), 16: ("D-channel", "none"),
                **_chans([32, 33, 35], "FXO Kewlstart", "none"), **_chans([34, 36, 37], "FXS Kewlstart", "none")}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_expected_files_parse_with_dahdi_cfg(name, dahdi_cfg_t):
    out = dahdi_cfg_t(DATA / f"system.conf.{name}")
    span_line, channels = PEER_VIEW[name]
    spans = [line for line in out.splitlines() if line.startswith("SPAN ")]
    assert spans == ([span_line] if span_line else [])
    seen = {int(m[1]): (m[2], m[3]) for m in
            re.finditer(r"^Channel (\d+): (.+?) \(Default\) \(Echo Canceler: (\S+)\)", out, re.M)}
    assert seen == channels
    assert f"\n{len(channels)} channels to configure." in out


def test_dahdi_cfg_rejects_what_the_config_refuses(dahdi_cfg_t, tmp_path):
    """The peer is no rubber stamp: an analog port on a span channel is an error for it too."""
    bad = tmp_path / "system.conf"
    bad.write_text(expected("default").replace("fxoks=32-37", "fxoks=31-37"))
    with pytest.raises(AssertionError, match="Channel 31 already configured"):
        dahdi_cfg_t(bad)


# -- combinations the config refuses, naming the keys ------------------------------------------

@pytest.mark.parametrize("raw, message", [
    ({"span": {"signalling": "mfcr2"}},
     "span.signalling: 'mfcr2' needs span.framing 'cas', not 'ccs'; change both in one save"),
    ({"span": {"framing": "cas"}},
     "span.signalling: 'pri_cpe' needs span.framing 'ccs', not 'cas'; change both in one save"),
    ({"span": {"signalling": "pri_net", "framing": "cas"}},
     "span.signalling: 'pri_net' needs span.framing 'ccs', not 'cas'; change both in one save"),
    ({"span": {"signalling": "mfcr2", "framing": "cas", "channels": "1-31"}},
     "span.channels: '1-31' includes 16; with cas framing timeslot 16 carries the signalling bits"),
    ({"span": {"channels": "1-31"}}, "span.channels: '1-31' includes span.dchan 16; the D-channel carries no calls"),
    ({"span": {"dchan": 5}}, "span.channels: '1-15,17-31' includes span.dchan 5; the D-channel carries no calls"),
    ({"span": {"channels": "1-15,17-32"}}, "span.channels: '1-15,17-32' includes 32; allowed channels 1..31"),
    ({"span": {"channels": "0-15"}}, "span.channels: '0-15' includes 0; allowed channels 1..31"),
    ({"span": {"channels": "1-15,17-31,"}},
     "span.channels: '1-15,17-31,' is not a channel list; write numbers and ranges such as 1-15,17-31"),
    ({"span": {"channels": "15-1"}},
     "span.channels: '15-1' is not a channel list; write numbers and ranges such as 1-15,17-31"),
    ({"span": {"channels": 30}}, "span.channels: 30 is an integer; expected a string"),
    ({"analog": [{"channel": 31}]},
     "analog[0].channel: 31 is a channel of the E1 span (1..31, span.enabled is true); analog ports start at 32"),
    ({"analog": [{"channel": 32}, {"channel": 1, "kind": "fxo"}]},
     "analog[1].channel: 1 is a channel of the E1 span (1..31, span.enabled is true); analog ports start at 32"),
    ({"analog": [{"channel": 32}, {"channel": 33}, {"channel": 32, "kind": "fxo"}]},
     "analog[2].channel: 32 is already used by analog[0]; channels must be unique"),
])
def test_config_refuses_what_dahdi_cannot_configure(raw, message):
    with pytest.raises(ConfigError) as e:
        validate(raw)
    assert str(e.value) == message


def test_without_the_span_analog_ports_may_take_its_channel_numbers():
    cfg = validate({"span": {"enabled": False}, "analog": [{"channel": 1}, {"channel": 31, "kind": "fxo"}]})
    assert system_conf(cfg).count("span=") == 0 and "fxoks=1\nfxsks=31\n" in system_conf(cfg)


# -- writing and applying ---------------------------------------------------------------------

def test_write_is_atomic_world_readable_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "system.conf"
    path.write_text("old\n")
    write_system_conf(validate({}), path)
    assert path.read_text() == expected("default")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["system.conf"]


def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "system.conf"
    path.write_text("old\n")

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(sysconf.os, "replace", no_rename)
    with pytest.raises(DriverError) as e:
        write_system_conf(validate({}), path)
    assert str(e.value) == f"cannot write {path}: No space left on device"
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["system.conf"]


def test_write_into_a_missing_folder_is_a_driver_error(tmp_path):
    path = tmp_path / "no" / "system.conf"
    with pytest.raises(DriverError) as e:
        write_system_conf(validate({}), path)
    assert str(e.value) == f"cannot write {path}: No such file or directory"


class FakeRun:
    """Stands in for subprocess.run: records each call and the file dahdi_cfg would read then."""

    def __init__(self, *results):
        self.results = list(results)  # (returncode, stdout, stderr) or an exception, one per call
        self.calls: list[tuple[list[str], dict, str]] = []

    def __call__(self, argv, **kw):
        self.calls.append((argv, kw, Path(argv[-1]).read_text()))
        result = self.results.pop(0)
        if isinstance(result, BaseException):
            raise result
        code, out, err = result
        return subprocess.CompletedProcess(argv, code, out, err)


ERR = "DAHDI Tools Version - 3.1.0\nNotice: Configuration file is x\nline 9: Unable to set echo canceller\n"


def test_apply_writes_then_runs_dahdi_cfg(tmp_path):
    path = tmp_path / "system.conf"
    run = FakeRun((0, "37 channels to configure.\n", ""))
    assert apply(validate({}), path, dahdi_cfg="/usr/sbin/dahdi_cfg", run=run) == "37 channels to configure.\n"
    (argv, kw, seen), = run.calls
    assert argv == ["/usr/sbin/dahdi_cfg", "-vv", "-c", str(path)]
    assert kw == {"capture_output": True, "text": True, "timeout": 60.0, "check": False}
    assert seen == path.read_text() == expected("default")


def test_a_failed_apply_puts_the_previous_file_back_and_applies_it(tmp_path):
    path = tmp_path / "system.conf"
    path.write_text(expected("r2"))
    run = FakeRun((1, "", ERR), (0, "ok", ""))
    with pytest.raises(DriverError) as e:
        apply(validate({}), path, run=run)
    assert str(e.value) == (f"dahdi_cfg -vv -c {path} failed with exit status 1: DAHDI Tools Version - 3.1.0 "
                            "Notice: Configuration file is x line 9: Unable to set echo canceller; "
                            "the previous file is back and applied")
    assert [seen for _, _, seen in run.calls] == [expected("default"), expected("r2")]
    assert path.read_text() == expected("r2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["system.conf"]


def test_a_failed_apply_says_when_the_old_file_fails_too(tmp_path):
    path = tmp_path / "system.conf"
    path.write_text("span=9\n")
    run = FakeRun((1, "", "line 6: bad\n"), (1, "", "line 1: bad span\n"))
    with pytest.raises(DriverError) as e:
        apply(validate({}), path, run=run)
    assert str(e.value) == (f"dahdi_cfg -vv -c {path} failed with exit status 1: line 6: bad; re-applying it failed "
                            f"too: dahdi_cfg -vv -c {path} failed with exit status 1: line 1: bad span")
    assert path.read_text() == "span=9\n"


def test_a_failed_first_apply_leaves_no_file(tmp_path):
    path = tmp_path / "system.conf"
    run = FakeRun((2, "", ""))
    with pytest.raises(DriverError) as e:
        apply(validate({}), path, run=run)
    assert str(e.value) == (f"dahdi_cfg -vv -c {path} failed with exit status 2: no message; "
                            f"{path} removed (there was none before)")
    assert list(tmp_path.iterdir()) == [] and len(run.calls) == 1


def test_apply_without_dahdi_cfg_or_when_it_hangs(tmp_path):
    path = tmp_path / "system.conf"
    path.write_text("old\n")
    run = FakeRun(FileNotFoundError(2, "No such file or directory"), (0, "", ""))
    with pytest.raises(DriverError, match=r"^cannot run dahdi_cfg: No such file or directory; the previous file"):
        apply(validate({}), path, run=run)
    assert path.read_text() == "old\n"
    run = FakeRun(subprocess.TimeoutExpired("dahdi_cfg", 60), (0, "", ""))
    with pytest.raises(DriverError, match=rf"^dahdi_cfg -vv -c {re.escape(str(path))} did not finish in 60 s; "):
        apply(validate({}), path, run=run)
    assert path.read_text() == "old\n"
