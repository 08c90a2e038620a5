"""The `appliance` command as a person runs it: real processes, real sockets, real files."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest

from appliance.client import ControlClient
from appliance.config import DEFAULTS
from appliance.storage import open_db

APPLIANCE = [sys.executable, "-m", "appliance"]


def run(*args, timeout=120, **kw):
    return subprocess.run([*APPLIANCE, *args], capture_output=True, text=True, timeout=timeout, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_simulate_prints_the_summary(tmp_path):
    args = ("simulate", "--hours", "8", "--calls-per-hour", "100", "--seats", "6", "--aht", "180", "--patience", "60")
    first = run(*args)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert set(out) == {"offered", "answered", "abandoned", "asa_s", "service_level_20s", "occupancy", "blocked",
                        "mean_wait_s", "wait_over_20s", "wall_s"}
    assert 800 - 4 * 28 < out["offered"] < 800 + 4 * 28  # Poisson(800): four standard deviations
    assert out["answered"] + out["abandoned"] == out["offered"]
    assert 0 < out["abandoned"] < out["answered"]
    assert 0.0 < out["service_level_20s"] <= 1.0 and 0.0 < out["occupancy"] < 1.0
    assert out["wall_s"] < 30
    again = json.loads(run(*args).stdout)  # the same seed gives the same day
    assert {k: v for k, v in again.items() if k != "wall_s"} == {k: v for k, v in out.items() if k != "wall_s"}


def test_simulate_nobody_abandons_with_infinite_patience():
    res = run("simulate", "--hours", "2", "--calls-per-hour", "60", "--seats", "3", "--aht", "120",
              "--patience", "inf", "--seed", "4")
    out = json.loads(res.stdout)
    assert out["abandoned"] == 0 and out["answered"] == out["offered"] > 0


def test_simulate_with_media_moves_digits_as_audio():
    res = run("simulate", "--hours", "0.05", "--calls-per-hour", "200", "--seats", "6", "--aht", "30",
              "--media", "--seed", "2")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["offered"] > 0 and out["answered"] == out["offered"]


@pytest.mark.parametrize("args, message", [
    (("simulate", "--hours", "1", "--calls-per-hour", "10", "--seats", "30"), "error: --seats: 30 is out of range; allowed 1..24"),
    (("simulate", "--hours", "1", "--calls-per-hour", "10", "--strategy", "best"),
     "error: queue.strategy: 'best' is not allowed; one of fewest-calls, fixed-order, least-talk-time, longest-idle, "
     "random, ring-all, round-robin, skill-level"),
])
def test_simulate_bad_arguments(args, message):
    res = run(*args)
    assert res.returncode == 1
    assert res.stderr.strip() == message


def test_missing_data_dir_is_one_clear_line(tmp_path):
    missing = tmp_path / "nowhere"
    res = run("run", "--data-dir", str(missing))
    assert res.returncode == 1
    assert res.stderr.strip() == f"error: data directory {missing} does not exist; create it or pass --init"
    assert not missing.exists()


def test_bad_config_value_and_unknown_key_leave_the_file_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    ok = run("config", "--data-dir", str(data), "set", "queue.ring_timeout_s", "20")
    assert ok.returncode == 0, ok.stderr
    before = (data / "config.json").read_bytes()
    bad = run("config", "--data-dir", str(data), "set", "queue.ring_timeout_s", "500")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: queue.ring_timeout_s: 500 is out of range; allowed 5..120 (seconds)"
    unknown = run("config", "--data-dir", str(data), "set", "queue.ring_timout_s", "20")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == ("error: queue.ring_timout_s: unknown key; "
                                      "allowed keys: announce_s, callback_key, hold, max_length, "
                                      "max_wait_s, missed_offers, name, overflow, ring_timeout_s, strategy, wrap_up_s")
    assert (data / "config.json").read_bytes() == before


def test_core_refuses_a_malformed_config_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = open_db(data / "config.json")
    db.table("settings").insert({"section": "queue", "values": {**DEFAULTS["queue"], "max_wait_s": "long"}})
    db.close()
    before = (data / "config.json").read_bytes()
    res = run("run", "--data-dir", str(data))
    assert res.returncode == 1
    assert res.stderr.startswith("error: ") and "queue.max_wait_s" in res.stderr and "'long'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert (data / "config.json").read_bytes() == before


def test_core_serves_status_and_refuses_a_second_instance(tmp_path):
    data = tmp_path / "data"
    core = subprocess.Popen([*APPLIANCE, "run", "--data-dir", str(data), "--init"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (data / "control.sock").exists(), what="the control socket")
        with ControlClient(str(data / "control.sock")) as client:
            wait_for(lambda: client.call("ping")["pong"], what="ping")
            status = client.call("status")
        assert len(status["trunks"]) == 30 and len(status["seats"]) == 6
        assert [s["extension"] for s in status["seats"]] == ["801", "802", "803", "804", "805", "806"]
        assert all(t["state"] == "idle" for t in status["trunks"])
        second = run("run", "--data-dir", str(data))
        assert second.returncode == 1
        assert second.stderr.strip() == (f"error: another appliance core (pid {core.pid}) is already running "
                                         f"on data directory {data}")
    finally:
        core.send_signal(signal.SIGTERM)
        out, err = core.communicate(timeout=20)
    assert core.returncode == 0, err
    assert not (data / "control.sock").exists()  # removed on a clean stop


def test_demo_refuses_a_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run("demo", "--seconds", "5", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == f"error: port {port} on 127.0.0.1 is already in use"


def _http(port, method, path, body=None, cookie=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_demo_answers_calls_and_serves_the_web_page(tmp_path):
    port = free_port()
    data = tmp_path / "demo"
    demo = subprocess.Popen([*APPLIANCE, "demo", "--seconds", "30", "--port", str(port), "--data-dir", str(data),
                             "--seed", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = demo.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in ready and str(data) in ready
        info = json.loads((data / "demo.json").read_text(encoding="utf-8"))
        assert info["url"] == f"http://127.0.0.1:{port}/" and info["user"] == "admin"
        assert info["password"] in ready
        assert oct((data / "demo.json").stat().st_mode & 0o777) == "0o600"
        assert info["password"] not in (data / "config.json").read_text(encoding="utf-8")  # only its hash

        resp, _ = _http(port, "GET", "/")
        assert resp.status == 303 and resp.getheader("Location").endswith("/login")
        body = urllib.parse.urlencode({"user": "admin", "password": info["password"]})
        resp, _ = _http(port, "POST", "/login", body)
        assert resp.status in (302, 303), resp.status
        cookie = resp.getheader("Set-Cookie").split(";")[0]
        resp, page = _http(port, "GET", "/", cookie=cookie)
        assert resp.status == 200 and "坐席" in page.decode("utf-8")
        resp, raw = _http(port, "GET", "/api/status", cookie=cookie)
        status = json.loads(raw)
        assert resp.status == 200 and len(status["trunks"]) == 30 and len(status["seats"]) == 6
        # the browser's event stream relays the core's call events (replayed from the start)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/events", headers={"Cookie": cookie, "Last-Event-ID": "0"})
        stream = conn.getresponse()
        assert stream.status == 200 and stream.getheader("Content-Type").startswith("text/event-stream")
        event, block = {}, {}
        while event.get("event") != "call.offered":
            line = stream.fp.readline().decode("utf-8").rstrip("\n")
            if line.startswith(("id: ", "event: ", "data: ")):
                key, _, value = line.partition(": ")
                block[key] = value
            elif not line:  # a blank line ends one event
                event, block = block, {}
        conn.close()
        offered = json.loads(event["data"])
        assert offered["called"] == "4008001234" and len(offered["caller"]) == 11 and int(event["id"]) >= 1
        out, err = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, err
    summary = dict(kv.split("=") for kv in out.strip().splitlines()[-1].split())
    assert set(summary) == {"offered", "answered", "abandoned"}
    assert int(summary["answered"]) >= 1 and int(summary["offered"]) >= int(summary["answered"])
    recordings = list((data / "recordings").rglob("*.wav"))
    assert len(recordings) >= int(summary["answered"]) - 1  # calls still talking at the end are recorded too


def test_dahdi_conf_prints_and_applies_the_generated_file(tmp_path):
    import os
    import stat

    data = tmp_path / "data"
    data.mkdir()
    done = run("dahdi-conf", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    expected = open(os.path.join(os.path.dirname(__file__), "..", "drivers", "data", "system.conf.default"),
                    encoding="utf-8").read()
    assert done.stdout == "".join(line for line in expected.splitlines(True) if not line.startswith("#|"))
    # --apply writes the file, then runs dahdi_cfg (a stand-in here, first on PATH)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dahdi_cfg"
    fake.write_text("#!/bin/sh\necho \"dahdi_cfg $*\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    target = tmp_path / "system.conf"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    done = run("dahdi-conf", "--data-dir", str(data), "--apply", "--path", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"dahdi_cfg -vv -c {target}\n"
    assert target.read_text(encoding="utf-8") == run("dahdi-conf", "--data-dir", str(data)).stdout


def test_core_on_a_dahdi_card_without_dahdi_is_one_clear_line(tmp_path):
    import os

    from drivers.dahdi import binding

    if os.path.exists("/dev/dahdi/channel"):
        pytest.skip("this machine has DAHDI")
    data = tmp_path / "data"
    data.mkdir()
    assert run("config", "--data-dir", str(data), "set", "card.driver", "dahdi").returncode == 0
    res = run("run", "--data-dir", str(data))
    assert res.returncode == 1
    why = binding.missing_reason() or ("card.driver is 'dahdi' but /dev/dahdi/channel does not exist: the dahdi "
                                       "kernel module is not loaded or found no card (see dmesg; lsmod | grep dahdi)")
    assert res.stderr.strip() == f"error: {why}"
    assert not (data / "control.sock").exists()
