"""The whole box on SIP, in real time: SIPp plays the carrier calling the 400 number over the SIP trunk and
presses 1 (RFC 4733), the IVR queues the call, baresip is the agent's IP phone: it registers with its
extension, rings, answers by itself, and the caller hangs up later. The journal must tell exactly that."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from appliance.clock import RealClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from tests.drivers.sip.test_sip_card_interop import HOST, baresip_config, free_port
from tests.peers.sipp import caller_scenario, link_pcaps
from tests.tools import require_tool

SCENARIO = caller_scenario("4008001234", "13912345678", audio=False, dtmf_after_ms=2000, hangup_after_ms=6000)


def test_a_sip_trunk_caller_reaches_an_agent_on_an_ip_phone(tmp_path):
    sipp, baresip = require_tool("sipp"), require_tool("baresip")
    box_port, phone_port, ctrl, sipp_port = free_port(), free_port(), free_port(), free_port()
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"driver": "sip", "trunk_channels": 2, "seats": 1},
                    "seats": [{"sip_password": "pw801pw801"}],
                    "sip": {"address": HOST, "port": box_port, "trunk_host": HOST, "trunk_port": free_port(),
                            "trunk_username": "4008001234", "trunk_register": False},
                    "queue": {"ring_timeout_s": 10}})
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, RealClock(), prompts=prompts)
    where = baresip_config(str(tmp_path / "baresip"), box_port, phone_port, ctrl, password="pw801pw801")
    (tmp_path / "scenario.xml").write_text(SCENARIO)
    link_pcaps(tmp_path)
    phone = None

    async def run():
        nonlocal phone
        stop = asyncio.Event()
        await core.start()
        ticking = asyncio.create_task(core.runtime.run_realtime(stop, core.paced))
        phone = subprocess.Popen([baresip, "-f", where], stdin=subprocess.DEVNULL,
                                 stdout=open(tmp_path / "baresip.log", "w"), stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while core.status()["seats"][0]["state"] != "available" and time.monotonic() < end:
            await asyncio.sleep(0.1)
        assert core.status()["seats"][0]["state"] == "available", "the IP phone never registered"
        carrier = await asyncio.create_subprocess_exec(
            sipp, f"{HOST}:{box_port}", "-sf", str(tmp_path / "scenario.xml"), "-i", HOST, "-p", str(sipp_port),
            "-m", "1", "-nostdin", "-timeout", "30", "-trace_err", "-error_file", str(tmp_path / "sipp_err.log"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=tmp_path)
        rc = await carrier.wait()
        await asyncio.sleep(1.0)
        stop.set()
        await ticking
        core.settle()
        calls = core.journal.calls()
        events = core.journal.events(calls[0]["call_id"]) if calls else []
        await core.stop()
        return rc, calls, events

    try:
        rc, calls, events = asyncio.run(run())
    finally:
        if phone is not None:
            phone.kill()  # baresip may sit out a SIGTERM while it unregisters from a box that is gone
            phone.wait(5)
    err = (tmp_path / "sipp_err.log").read_text() if (tmp_path / "sipp_err.log").exists() else ""
    assert rc == 0, err
    (rec,) = calls
    assert (rec["caller"], rec["disposition"], rec["ended_by"], rec["seat"]) == ("13912345678", "answered",
                                                                                  "caller", 1)
    digits = [e["data"]["digit"] for e in events if e["type"] == "ivr.digit"]
    assert digits == ["1"]  # RFC 4733, out of band
    assert rec["talk_s"] == pytest.approx(6.0 - (rec["agent_answer_ts"] - rec["queued_ts"]), abs=1.0)
