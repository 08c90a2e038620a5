"""The whole core on the DAHDI card (fake kernel) with libpri as the carrier on the E1's D-channel.

The same call path as on the simulated card, but every signalling step is a
real Q.931 message through our LAPD, and the caller's key press is DTMF audio
on the B-channel: the carrier calls the 400 number, the IVR answers, the
caller presses 1, an agent's analog phone rings and answers, and the agent's
hang-up clears the call toward the carrier with cause 16.
"""

from __future__ import annotations

import pytest

from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.prompts import PromptLibrary
from dsp.dtmf import dtmf_digit
from dsp.g711 import alaw_encode
from tests.drivers.test_conformance import DahdiFakeHarness

EPOCH0 = 1_764_300_000.0


class CardWithItsWorld:
    """The harness's DAHDI card, with the far side (carrier, phones, fake hardware) played before each poll."""

    def __init__(self, harness: DahdiFakeHarness) -> None:
        self.h = harness

    def poll(self, now: float):
        self.h.now = now
        self.h.far_side()
        return self.h.card.poll(now)

    def __getattr__(self, name):
        return getattr(self.h.card, name)


@pytest.fixture
def box(tmp_path):
    h = DahdiFakeHarness()
    h._network()  # libpri up on the D-channel (skips, or fails under CI, without libpri-dev)
    data = DataDir.open(tmp_path / "data", create=True)
    cfg = validate({"card": {"driver": "dahdi", "trunk_channels": 4, "seats": 2}})
    prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
    core = Core(data, cfg, VirtualClock(EPOCH0), card=CardWithItsWorld(h), prompts=prompts, media=True)
    events = []
    core.bus.listen(events.append)
    yield core, h, events
    core.close()
    h.card.close()
    h.peer.close()


def test_a_call_from_the_carrier_reaches_an_agent_and_the_agent_clears_it(box):
    core, h, events = box
    h.inbound_call("13912345678")  # libpri sends SETUP on B-channel 1
    core.runtime.run_until(1.5)
    assert h.seen_by_network("answer"), "the IVR's answer (CONNECT) did not reach the carrier"
    h.kernel.hear(1, alaw_encode(dtmf_digit("1", -10.0, 0.1)).tobytes())  # the caller presses 1
    core.runtime.run_until(10.0)
    core.settle()
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["call.offered", "call.queued"] and "call.answered" in kinds and kinds[-1] == "call.ended"
    (rec,) = core.journal.calls()
    assert (rec["caller"], rec["disposition"], rec["ended_by"], rec["seat"]) == ("13912345678", "answered",
                                                                                  "agent", 1)
    # the phone answered 1 s after it began to ring and hung up 2 s later (the harness's agent)
    assert rec["end_ts"] - rec["agent_answer_ts"] == pytest.approx(2.0, abs=0.05)
    cleared = h.seen_by_network("hangup_req")
    assert cleared is not None and cleared.cause == 16  # our DISCONNECT, normal clearing
    assert not h.card._pri.pri.busy(1)  # RELEASE / RELEASE COMPLETE done: the B-channel is idle
