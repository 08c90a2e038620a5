"""`appliance demo --sip-port`: IP phones 2001-2006 with generated passwords, and a trunk for test calls.

baresip registers as 2001 with the password from demo.json and its seat becomes available; SIPp then
places 30 concurrent calls into the IVR over the trunk, each with PCMA audio and an RFC 4733 "1", and
every call must succeed (SIPp exits non-zero if one fails).
"""

from __future__ import annotations

import json
import subprocess
import time

from appliance.client import ControlClient
from tests.appliance.test_cli import APPLIANCE, free_port
from tests.drivers.sip.test_sip_card_interop import baresip_config
from tests.peers.sipp import caller_scenario, link_pcaps
from tests.tools import require_tool

SCENARIO = caller_scenario("400", "1390000[call_number]", audio=True, dtmf_after_ms=3000, hangup_after_ms=4000)


def wait_for(what, check, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_demo_with_sip_phones_and_thirty_calls_from_sipp(tmp_path):
    sipp, baresip = require_tool("sipp"), require_tool("baresip")
    web, sip_port, phone_port, ctrl = free_port(), free_port(), free_port(), free_port()
    data = tmp_path / "demo"
    demo = subprocess.Popen([*APPLIANCE, "demo", "--seconds", "60", "--port", str(web), "--data-dir", str(data),
                             "--seed", "5", "--calls-per-hour", "1", "--sip-port", str(sip_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    phone = None
    try:
        ready, sip_line = demo.stdout.readline(), demo.stdout.readline()
        assert f"http://127.0.0.1:{web}/" in ready, ready + demo.stderr.read()
        assert f"127.0.0.1:{sip_port}" in sip_line and "2001, 2002, 2003, 2004, 2005, 2006" in sip_line
        info = json.loads((data / "demo.json").read_text(encoding="utf-8"))["sip"]
        assert sorted(info["extensions"]) == [f"200{i}" for i in range(1, 7)]
        assert len(set(info["extensions"].values())) == 6 and all(len(p) >= 12 for p in info["extensions"].values())
        assert info["trunk"] == f"sip:400@127.0.0.1:{sip_port}"

        where = baresip_config(str(tmp_path / "baresip"), sip_port, phone_port, ctrl, ext="2001",
                               password=info["extensions"]["2001"])
        phone = subprocess.Popen([baresip, "-f", where], stdin=subprocess.DEVNULL,
                                 stdout=open(tmp_path / "baresip.log", "w"), stderr=subprocess.STDOUT)
        with ControlClient(str(data / "control.sock")) as client:
            def seat_2001():
                seats = client.call("status")["seats"]
                return next(s for s in seats if s["extension"] == "2001")
            assert seat_2001()["state"] == "out_of_service"  # not registered yet
            wait_for("2001 to register", lambda: seat_2001()["state"] != "out_of_service")

        (tmp_path / "scenario.xml").write_text(SCENARIO)
        link_pcaps(tmp_path)
        carrier = subprocess.run([sipp, f"127.0.0.1:{sip_port}", "-sf", str(tmp_path / "scenario.xml"),
                                  "-i", "127.0.0.1", "-p", str(free_port()), "-m", "30", "-l", "30", "-r", "30",
                                  "-nostdin", "-timeout", "40", "-trace_err", "-error_file",
                                  str(tmp_path / "sipp_err.log")],
                                 cwd=tmp_path, capture_output=True, text=True, timeout=60)
        errors = (tmp_path / "sipp_err.log").read_text() if (tmp_path / "sipp_err.log").exists() else ""
        assert carrier.returncode == 0, errors[-3000:]
    finally:
        if phone is not None:
            phone.kill()
            phone.wait(5)
        demo.terminate()
        demo.wait(30)
