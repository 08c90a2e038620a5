"""`appliance demo --sip-port`: IP phones 2001-2006 with generated passwords, and a trunk for test calls.

baresip registers as 2001 with the password from demo.json and its seat becomes available; SIPp then
places 30 concurrent calls into the IVR over the trunk, each with PCMA audio and an RFC 4733 "1", and
every call must succeed (SIPp exits non-zero if one fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from appliance.client import ControlClient
from tests.appliance.test_cli import APPLIANCE, free_port
from tests.drivers.sip.test_sip_card_interop import baresip_config
from tests.tools import require_tool

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a caller of the 400 number: PCMA audio, presses 1, hangs up">
  <send retrans="500"><![CDATA[
INVITE sip:400@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:1390000[call_number]@[local_ip]:[local_port]>;tag=[pid]c[call_number]
To: <sip:400@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:caller@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[local_ip_type] [local_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:1390000[call_number]@[local_ip]:[local_port]>;tag=[pid]c[call_number]
To: <sip:400@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec play_pcap_audio="pcap/g711a.pcap"/></action></nop>
  <pause milliseconds="3000"/>
  <nop><action><exec play_pcap_audio="pcap/dtmf_2833_1.pcap"/></action></nop>
  <pause milliseconds="4000"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:1390000[call_number]@[local_ip]:[local_port]>;tag=[pid]c[call_number]
To: <sip:400@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


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
        os.symlink("/usr/share/sip-tester", tmp_path / "pcap")
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
