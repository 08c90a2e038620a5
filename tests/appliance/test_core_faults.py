"""The core with faults from below: a voice card unplugged (hotplug) raises the box alarm until one is
back; a span alarm and a dead seat port on the simulated card reach the status the dashboard shows."""

from __future__ import annotations

import asyncio

from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.clock import VirtualClock
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from drivers.hotplug import HotplugEvent
from drivers.sim import AgentScript, SimCard


class FakeHotplug:
    """Stands in for drivers.hotplug_watch.Hotplug: what is present, and the callback it was given."""

    def __init__(self, present):
        self.devices = list(present)
        self.callback = None
        self.stopped = False

    def start(self, loop, callback):
        self.callback = callback

    def stop(self):
        self.stopped = True

    def present(self):
        return list(self.devices)


CARD = HotplugEvent("voice_card", True, "/devices/pci0000:00/0000:00:1c.0/0000:03:00.0",
                    "Digium Wildcard TE131 (E1)", 0xD161, 0x800B)


def core_with(tmp_path, driver="sim", hotplug=None):
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"driver": driver, "trunk_channels": 4, "seats": 2}})
    card = SimCard(4, 2, agent=AgentScript(ring_delay_s=1.0), media=False)
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, VirtualClock(1_800_000_000.0), card=card, prompts=prompts, media=False, hotplug=hotplug)
    events = []
    core.bus.listen(events.append)
    return core, card, events


def test_a_voice_card_unplugged_raises_the_box_alarm_until_one_is_back(tmp_path):
    hp = FakeHotplug([CARD])
    core, _, events = core_with(tmp_path, driver="dahdi", hotplug=hp)
    try:
        asyncio.run(core.start())
        assert hp.callback == core.on_hotplug
        assert core.status()["devices"] == [{"kind": "voice_card", "id": CARD.id,
                                             "description": "Digium Wildcard TE131 (E1)"}]
        hp.devices = []
        core.on_hotplug(HotplugEvent("voice_card", False, CARD.id, CARD.description))
        assert core.status()["alarms"]["box"] == {"card.removed": "Digium Wildcard TE131 (E1)"}
        hp.devices = [CARD]
        core.on_hotplug(CARD)
        assert core.status()["alarms"]["box"] == {}
        assert [(e["event"], e["data"].get("raised")) for e in events] == [
            ("device", None), ("alarm", True), ("device", None), ("alarm", False)]
    finally:
        asyncio.run(core.stop())
    assert hp.stopped


def test_span_alarm_and_dead_seat_port_reach_the_status(tmp_path):
    core, card, events = core_with(tmp_path)
    try:
        card.schedule_alarm(1.0, 1, {"RED"})
        card.schedule_fault(1.0, "fail_port", 5)  # seat 2's phone
        core.runtime.run_until(2.0)
        st = core.status()
        assert st["alarms"] == {"spans": {"1": ["RED"]}, "ports": {"FXS 2": "no frames"}, "box": {}}
        assert {t["state"] for t in st["trunks"]} == {"alarm"}
        assert [s["state"] for s in st["seats"]] == ["available", "out_of_service"]
        assert {"span.alarm", "port.fault"} <= {e["event"] for e in events}
        card.schedule_alarm(3.0, 1, set())
        card.schedule_fault(3.0, "restore_port", 5)
        core.runtime.run_until(4.0)
        st = core.status()
        assert st["alarms"] == {"spans": {}, "ports": {}, "box": {}}
        assert [s["state"] for s in st["seats"]] == ["available", "available"]
    finally:
        core.close()


def test_a_card_with_its_own_clock_is_attached_at_start_and_detached_at_stop(tmp_path):
    calls = []

    class PacedCard(SimCard):
        def attach(self, loop, on_ready):
            calls.append(("attach", on_ready))
            return True

        def detach(self):
            calls.append(("detach", None))

    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"trunk_channels": 2, "seats": 1}})
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, VirtualClock(1_800_000_000.0), card=PacedCard(2, 1, media=False), prompts=prompts,
                media=False)

    async def run():
        await core.start()
        assert core.paced is not None and calls == [("attach", core.paced.set)]
        await core.stop()

    asyncio.run(run())
    assert calls[-1] == ("detach", None) and core.paced is None
