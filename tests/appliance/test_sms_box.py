"""SMS through the whole box: the core's control API on its real socket, its SMS worker, a simulated SMGP gateway
on localhost TCP (or a simulated modem on a pseudo-terminal), and ``python -m appliance.sms`` as a subprocess.
Restarts and unplugs neither lose nor duplicate a message."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from appliance.client import ApiError, subscribe
from drivers.hotplug import HotplugEvent
from tests.appliance.simgateway import SECRET, SimGateway
from tests.appliance.smsbox import Box, passes
from tests.appliance.simmodem import SimModem

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCOUNT = "12345678"


def smgp_config(server: SimGateway, **more) -> dict:
    return {"via": "smgp", "smgp_host": "127.0.0.1", "smgp_port": server.port, "smgp_account": ACCOUNT,
            "smgp_secret": SECRET, "smgp_src_id": "10690001", "retry_s": 1, **more}


@pytest.fixture
def gateway():
    server = SimGateway("smgp", ACCOUNT)
    yield server
    server.close()
    assert server.errors == []


def test_send_from_the_command_line_prints_the_id_and_the_delivery(tmp_path, gateway):
    box = Box(tmp_path / "data", smgp_config(gateway))
    try:
        def report():  # the carrier's delivery report, once the submit is answered
            if gateway.wait_for(lambda: len(gateway.refs) == 1, 15):
                gateway.send_report(gateway.refs[0], "DELIVRD")
        threading.Thread(target=report, daemon=True).start()
        out = subprocess.run([sys.executable, "-m", "appliance.sms", "send", "--to", "13800138000", "--text",
                              "您好，您的工单已受理。", "--socket", box.socket, "--timeout", "20"],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].startswith("id: ") and lines[-1] == "status: delivered"
        msg_id = lines[0][4:]
        m = box.call("sms.status", msg_id=msg_id)["message"]
        assert (m["to"], m["via"], m["state"], m["tries"], m["transport_ref"]) == (
            "13800138000", "smgp", "delivered", 0, gateway.refs[0])
        sub = gateway.submits[0][1]
        assert sub.dest_term_ids == ["13800138000"] and sub.msg_content.decode("utf-16-be") == "您好，您的工单已受理。"
        assert box.call("sms.list")["counts"]["delivered"] == 1
    finally:
        box.stop()


def test_bad_input_is_refused_naming_the_argument(tmp_path, gateway):
    box = Box(tmp_path / "data", smgp_config(gateway))
    try:
        with pytest.raises(ApiError, match="to: '12' must be 3 to 20 digits"):
            box.call("sms.send", to="12", text="hi")
        with pytest.raises(ApiError, match="via: 'cmpp' is not set up on this box"):
            box.call("sms.send", to="13800138000", text="hi", via="cmpp")
        with pytest.raises(ApiError, match="text: .* is not"):
            box.call("sms.send", to="13800138000", text=5)
        assert box.call("sms.list")["messages"] == []
    finally:
        box.stop()


def test_events_follow_a_message_on_the_control_api(tmp_path, gateway):
    box = Box(tmp_path / "data", smgp_config(gateway))
    try:
        with subscribe(box.socket, ["sms.*"], timeout=10) as events:
            msg_id = box.call("sms.send", to="13800138000", text="hello")["message"]["id"]
            seen = []
            for ev in events:
                assert ev is not None, f"no event; seen {seen}"
                if ev["event"] == "sms.state" and ev["data"]["id"] == msg_id:
                    seen.append(ev["data"]["state"])
                    if ev["data"]["state"] == "sent":
                        break
        assert seen == ["queued", "sending", "sent"]
    finally:
        box.stop()


def texts(gateway) -> list[str]:
    return [s.msg_content.decode("utf-16-be") if s.msg_format == 8 else s.msg_content.decode()
            for _, s in gateway.submits]


def test_a_message_handed_over_when_the_core_stops_is_unknown_after_and_not_sent_twice(tmp_path, gateway):
    root = tmp_path / "data"
    box = Box(root, smgp_config(gateway))
    try:
        gateway.answer_submits = False  # the gateway takes the submit and never answers
        first = box.call("sms.send", to="13800138000", text="first")["message"]["id"]
        assert gateway.wait_for(lambda: len(gateway.submits) == 1, 10)
        assert box.call("sms.status", msg_id=first)["message"]["state"] == "sending"
    finally:
        box.stop()
    gateway.answer_submits = True
    box = Box(root, smgp_config(gateway))
    try:
        m = box.wait_state(first, "unknown")
        assert m["reason"] == "restart: handed over, no answer from the transport"
        later = box.call("sms.send", to="13900139000", text="later")["message"]["id"]
        box.wait_state(later, "sent")  # the link is up and working ...
        assert texts(gateway) == ["first", "later"]  # ... and the unknown one was not sent again
        assert box.call("sms.list", state="unknown")["messages"][0]["id"] == first
        box.call("sms.resolve", msg_id=first, resend=True)  # a person decides
        box.wait_state(first, "sent")
        assert texts(gateway) == ["first", "later", "first"]
    finally:
        box.stop()


def test_a_message_queued_while_the_gateway_is_down_is_sent_once_after_a_restart(tmp_path, gateway):
    root = tmp_path / "data"
    gateway.login_status = 21  # authentication failed, until the carrier fixes the account
    box = Box(root, smgp_config(gateway))
    try:
        msg = box.call("sms.send", to="13800138000", text="queued")["message"]["id"]
        assert gateway.wait_for(lambda: gateway.logins >= 1, 10)
        deadline = time.monotonic() + 10
        while box.call("sms.transports")["transports"]["smgp"]["reason"] == "not connected yet":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        st = box.call("sms.transports")["transports"]["smgp"]
        assert st["up"] is False and "authentication failed" in st["reason"]
        assert box.call("status")["sms"]["transports"]["smgp"]["up"] is False
        assert "sms.down" not in box.call("status")["alarms"]["box"]  # not stuck for a minute yet
        box.core.sms_stuck_s = 0.0  # (60 s on a box)
        deadline = time.monotonic() + 10
        while "sms.down" not in box.call("status")["alarms"]["box"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert box.call("status")["alarms"]["box"]["sms.down"].startswith("smgp: SMGP login refused: authentication "
                                                                          "failed")
        m = box.call("sms.status", msg_id=msg)["message"]
        assert (m["state"], m["tries"]) == ("queued", 0)
    finally:
        box.stop()
    gateway.login_status = 0
    box = Box(root, smgp_config(gateway))
    try:
        box.core.sms_stuck_s = 0.0
        assert box.wait_state(msg, "sent")["tries"] == 0
        passes(box.core)
        assert texts(gateway) == ["queued"]
        assert box.call("status")["alarms"]["box"] == {}
    finally:
        box.stop()


class Hotplug:
    """Stands in for drivers.hotplug_watch.Hotplug: what udev would say is plugged in."""

    def __init__(self) -> None:
        self.devices: list[HotplugEvent] = []

    def start(self, loop, callback) -> None:
        pass

    def stop(self) -> None:
        pass

    def present(self) -> list[HotplugEvent]:
        return list(self.devices)


def modem_event(sim: SimModem, present: bool = True) -> HotplugEvent:
    return HotplugEvent("gsm_modem", present, "/devices/pci0000:00/0000:00:14.0/usb1/1-2",
                        "Huawei E3372 (12d1:1506)", 0x12D1, 0x1506, ttys=(sim.port,))


@pytest.fixture
def modems():
    made: list[SimModem] = []

    def make() -> SimModem:
        made.append(SimModem())
        return made[-1]
    yield make
    for sim in made:
        sim.close()
    assert not [e for sim in made for e in sim.errors]


def plug(box: Box, hp: Hotplug, sim: SimModem | None) -> None:
    """udev's word that the modem came (``sim``) or went (None): told to the core on its loop."""
    old = hp.devices[0] if hp.devices else None
    hp.devices = [] if sim is None else [modem_event(sim)]
    box.on_loop(box.core.on_hotplug, modem_event(sim) if sim is not None else
                HotplugEvent(old.kind, False, old.id, old.description, old.vendor_id, old.model_id))


def wait_up(box: Box, up: bool = True, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while box.call("sms.transports")["transports"]["modem"]["up"] != up:
        assert time.monotonic() < end, box.call("sms.transports")
        time.sleep(0.05)


def test_modem_found_by_hotplug_sends_a_long_chinese_message(tmp_path, modems):
    hp, sim = Hotplug(), modems()
    hp.devices = [modem_event(sim)]  # plugged in before the core starts
    box = Box(tmp_path / "data", {"via": "modem"}, hotplug=hp)
    try:
        wait_up(box)
        st = box.call("sms.transports")["transports"]["modem"]
        assert (st["state"], st["port"], st["signal_dbm"]) == ("ready", sim.port, -73)
        text = ("您好，这是呼叫中心的测试短信。" * 11)[:150]
        msg = box.call("sms.send", to="13912345678", text=text)["message"]
        assert msg["parts"] == 3
        m = box.wait_state(msg["id"], "sent")
        assert [s.text for s in sim.submits] == [text[:67], text[67:134], text[134:]]
        assert m["transport_ref"] == ",".join(str(s.mr) for s in sim.submits)
        for s in sim.submits:
            sim.report(s.mr, 0x00)
        box.wait_state(msg["id"], "delivered")
    finally:
        box.stop()


def test_modem_unplugged_mid_send_neither_loses_nor_duplicates(tmp_path, modems):
    """Unplugged while the modem had not asked for the PDU: the message cannot have gone, so it is sent by the
    next modem, once. Unplugged after the PDU went and before the network's answer: unknown, never re-sent by
    itself (a person resolves it)."""
    hp, first = Hotplug(), modems()
    box = Box(tmp_path / "data", {"via": "modem", "retry_s": 1}, hotplug=hp)
    try:
        plug(box, hp, first)
        wait_up(box)
        first.hold_prompt = True
        waiting = box.call("sms.send", to="13912345678", text="not yet written")["message"]["id"]
        deadline = time.monotonic() + 10
        while not any(c.startswith("AT+CMGS=") for c in first.commands):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        first.unplug()
        plug(box, hp, None)
        m = box.wait_state(waiting, "queued")
        assert m["tries"] == 0 and m["reason"].startswith("not sent: GSM modem on ")  # nothing went: no try used
        wait_up(box, False)
        second = modems()
        second.hold_submits = True
        plug(box, hp, second)
        wait_up(box)
        box.wait_state(waiting, "sending")  # on the new modem: its PDU goes, no answer
        deadline = time.monotonic() + 10
        while len(second.submits) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second.unplug()
        plug(box, hp, None)
        m = box.wait_state(waiting, "unknown")
        assert "handed over" in m["reason"]
        third = modems()
        plug(box, hp, third)
        wait_up(box)
        other = box.call("sms.send", to="13800138000", text="after")["message"]["id"]
        box.wait_state(other, "sent")
        assert [s.text for s in third.submits] == ["after"]  # the unknown one is not sent again by itself
        assert (first.submits, [s.text for s in second.submits]) == ([], ["not yet written"])
    finally:
        box.stop()


def test_a_reply_td_opts_out_of_every_later_campaign(tmp_path, gateway):
    box = Box(tmp_path / "data", smgp_config(gateway, allowed_hours="00:00-24:00"))
    try:
        box.core.customers.add("13800138000", "张三", vip=True)
        box.core.customers.add("13900139000", "李四")
        box.core.customers.add("13700137000", "王五", company="华中科技")
        wait = time.monotonic() + 10
        while not box.call("sms.transports")["transports"]["smgp"]["up"]:
            assert time.monotonic() < wait
            time.sleep(0.05)
        gateway.send_inbound("8613900139000", ["ＴＤ".encode("utf-16-be")])  # 李四 replies (full-width letters)
        while not box.call("sms.inbound")["messages"]:
            assert time.monotonic() < wait
            time.sleep(0.05)
        (inbound,) = box.call("sms.inbound")["messages"]
        assert (inbound["text"], inbound["opt_out"], inbound["via"]) == ("ＴＤ", True, "smgp")
        assert [o["number"] for o in box.call("sms.optouts")["optouts"]] == ["13900139000"]
        with pytest.raises(ApiError, match=r"\{姓名\}"):
            box.call("sms.template_save", name="发货", text="尊敬的{姓名}，您好")
        box.call("sms.template_save", name="发货", text="尊敬的{客户姓名}，您的{产品}已于{日期}发货。")
        assert [t["name"] for t in box.call("sms.templates")["templates"]] == ["发货"]
        box.call("sms.campaign_create", name="双十二", template="发货", recipients={"group": "all"},
                 schedule={"kind": "now"}, values={"product": "空调", "date": "2026-12-12"})
        assert gateway.wait_for(lambda: len(gateway.submits) == 2, 10)
        assert sorted(zip([s.dest_term_ids[0] for _, s in gateway.submits], texts(gateway))) == [
            ("13700137000", "尊敬的王五，您的空调已于2026年12月12日发货。回复TD退订"),
            ("13800138000", "尊敬的张三，您的空调已于2026年12月12日发货。回复TD退订")]
        while box.call("sms.campaign", name="双十二")["campaign"]["state"] != "done":
            assert time.monotonic() < wait
            time.sleep(0.05)
        camp = box.call("sms.campaign", name="双十二")["campaign"]
        assert camp["counts"]["total"] == {"added": 2, "opted_out": 1, "missing_value": 0, "bad_number": 0,
                                           "refused": 0}
        assert [c["name"] for c in box.call("sms.campaigns")["campaigns"]] == ["双十二"]
        with pytest.raises(ApiError, match="双十二"):  # the name is taken
            box.call("sms.campaign_create", name="双十二", template="发货", recipients={"group": "all"},
                     schedule={"kind": "now"}, values={"product": "空调"})
        passes(box.core)
        assert len(gateway.submits) == 2
    finally:
        box.stop()
