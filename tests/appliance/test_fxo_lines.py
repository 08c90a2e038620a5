"""Analog lines on FXO ports (appliance.fxolines): the line logic alone with explicit events and times, then the
whole core on the simulated card in virtual time with real audio: ring bursts, caller ID as FSK or DTMF in the
line's audio, the answer, the IVR and an agent, far-end clearing by polarity or by busy tone only, withheld
numbers, missed calls and screening."""

from __future__ import annotations

import math

import pytest

from appliance.acd import Agent
from appliance.actions import (
    Answer, CallerIdHeard, Hangup, LineTone, LogEvent, Play, Publish, StopPlay, StopTone, WriteCall,
)
from appliance.clock import VirtualClock
from appliance.config import validate
from appliance.core import Core, render_prompts
from appliance.datadir import DataDir
from appliance.errors import ConfigError
from appliance.flows import default_flow
from appliance.fxolines import LineCallCentre
from appliance.prompts import PromptLibrary
from drivers.base import Digit, Polarity, Released, Ringing
from drivers.sim import AgentScript, SimCard
from drivers.sim.lines import DTMF_CID_GUARD_S, LineScript
from dsp.callerid import callerid_burst
from dsp.dtmf import dtmf_generate

EPOCH0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC: virtual time starts here
TICK = 0.02
LINE = 4  # SimCard(2 trunk channels, 2 seats, n_fxo=2): ports 0-1 E1, 2-3 FXS, 4-5 FXO
NUMBER = "13912345678"  # a Jiangsu mobile: 江苏省常州市
QUEUE = {"name": "default", "ring_timeout_s": 15.0, "max_wait_s": 300.0, "strategy": "longest_idle",
         "hold": "ringback", "announce_s": 0}


# --- the line logic alone -----------------------------------------------------------------------------

def centre(**kw) -> LineCallCentre:
    agents = [Agent(seat=s + 1, port=2 + s, name=f"A{s + 1}", extension=f"80{s + 1}") for s in range(2)]
    return LineCallCentre([0, 1], agents, default_flow({"1": "queue"}), QUEUE, record=False, call_id_prefix="t",
                          line_ports=[4, 5], box_number="4008001234", **kw)


def signalling(actions):
    return [a for a in actions if not isinstance(a, (LogEvent, Publish, WriteCall))]


def test_the_line_is_answered_at_the_second_burst_with_the_caller_id_heard_between():
    cc = centre()
    assert cc.handle(Ringing(4, True), 0.0) == []
    assert cc.handle(Ringing(4, False), 1.0) == []
    assert cc.handle(Polarity(4), 1.2) == []  # on hook: some exchanges reverse polarity before caller ID
    assert cc.handle(CallerIdHeard(4, NUMBER, None, "张三", "mdmf"), 2.2) == []
    assert cc.next_deadline() == 9.0  # the line stops counting as ringing 8 s after its last ring edge
    acts = cc.handle(Ringing(4, True), 5.0)
    assert signalling(acts) == [Answer(4), Play(4, "welcome")]
    assert acts[0] == LogEvent("t-000001", "line.answered", {"port": 4, "line": 1, "rings": 2,
                                                             "caller_id": "mdmf", "name": "张三"})
    offered = next(a for a in acts if isinstance(a, Publish)).data
    assert (offered["caller"], offered["called"], offered["caller_area"]) == (NUMBER, "4008001234", "江苏省常州市")
    assert cc.calls[4].start == 0.0 and cc.calls[4].answer == 5.0  # the record starts at the first ring
    assert cc.handle(Ringing(4, False), 5.9) == []  # ring edges while off hook: the line settling
    assert cc.handle(LineTone(4, "ringback"), 7.0) == []  # not a tone that means the caller has gone
    acts = cc.handle(Released(4, 16), 9.0)  # the card lost loop current
    assert acts[0] == LogEvent("t-000001", "line.cleared", {"port": 4, "by": "loop"})
    assert signalling(acts) == [StopPlay(4), StopTone(4), Hangup(4, 16)]  # call control cleared; the box hangs up
    record = next(a.record for a in acts if isinstance(a, WriteCall))
    assert (record["disposition"], record["ended_by"], record["start_ts"], record["answer_ts"], record["trunk_port"]) \
        == ("ivr", "caller", 0.0, 5.0, 4)
    assert cc.lines[4].state == "idle" and cc.calls == {} and cc.handle(Polarity(4), 9.5) == []


def test_dtmf_caller_id_before_the_first_burst_answers_at_it_and_a_stale_one_is_dropped():
    cc = centre()
    assert cc.handle(CallerIdHeard(4, NUMBER, None, "", "dtmf"), 0.0) == []
    assert cc.handle(Digit(4, "C"), 0.02) == []  # the caller-ID keys reach the logic as digits too
    acts = cc.handle(Ringing(4, True), 0.3)
    assert signalling(acts) == [Answer(4), Play(4, "welcome")]
    assert acts[0].data == {"port": 4, "line": 1, "rings": 1, "caller_id": "dtmf"}
    # a caller ID more than CID_BEFORE_RING_S before a first burst belongs to no call: wait for the FSK one
    assert cc.handle(CallerIdHeard(5, NUMBER, None, "", "dtmf"), 10.0) == []
    assert cc.handle(Ringing(5, True), 20.0) == []
    acts = cc.handle(Ringing(5, True), 25.0)
    assert acts[0].data == {"port": 5, "line": 2, "rings": 2, "caller_id": None, "withheld": "unavailable"}
    assert cc.calls[5].caller is None and cc.calls[5].caller_national is None


@pytest.mark.parametrize("absent, withheld", [("P", "private"), ("O", "unavailable")])
def test_a_withheld_caller_id_gives_no_calling_number(absent, withheld):
    cc = centre()
    cc.handle(Ringing(4, True), 0.0)
    cc.handle(CallerIdHeard(4, None, absent, "", "sdmf"), 1.8)
    acts = cc.handle(Ringing(4, True), 5.0)
    assert acts[0].data == {"port": 4, "line": 1, "rings": 2, "caller_id": "sdmf", "withheld": withheld}
    assert next(a for a in acts if isinstance(a, Publish)).data["caller"] is None


def test_a_line_that_stops_ringing_is_a_missed_call_without_a_record():
    cc = centre(line_rings=3)
    cc.handle(Ringing(4, True), 0.0)
    cc.handle(Ringing(4, False), 1.0)
    cc.handle(CallerIdHeard(4, NUMBER, None, "", "mdmf"), 2.2)
    assert cc.handle(Ringing(4, True), 5.0) == [] and cc.handle(Ringing(4, False), 6.0) == []  # 2 of 3 rings
    snap = cc.snapshot(7.0)
    assert [t["kind"] for t in snap["trunks"]] == ["trunk", "trunk", "line", "line"]
    assert snap["trunks"][2:] == [
        {"port": 4, "channel": 1, "kind": "line", "state": "ringing", "caller": NUMBER, "call_id": None},
        {"port": 5, "channel": 2, "kind": "line", "state": "idle", "caller": None, "call_id": None}]
    assert cc.advance(13.9) == [] and cc.next_deadline() == 14.0
    data = {"port": 4, "line": 1, "caller": NUMBER, "caller_national": NUMBER, "caller_area": "江苏省常州市",
            "rings": 2, "ringing_s": 6.0}
    assert cc.advance(14.0) == [LogEvent("", "line.missed", data), Publish("line.missed", data)]
    assert cc.lines[4].state == "idle" and cc.counts == {"offered": 0, "answered": 0, "abandoned": 0}
    assert cc.handle(Ringing(4, False), 15.0) == [] and cc.lines[4].state == "idle"  # a stray edge starts nothing


def test_rings_before_answer_are_checked():
    with pytest.raises(ConfigError, match=r"card.line_rings: 0 is out of range; allowed 1..10 ring bursts"):
        centre(line_rings=0)
    with pytest.raises(ConfigError, match=r"card\.line_rings"):
        validate({"card": {"line_rings": 11}})
    assert validate({"card": {"line_rings": 1}})["card"]["line_rings"] == 1


# --- the whole core on the simulated card -------------------------------------------------------------------

@pytest.fixture
def make_core(tmp_path):
    made = []

    def make(agent: AgentScript | None = None, **cfg_updates):
        data = DataDir.open(tmp_path / f"data{len(made)}", create=True)
        cfg = validate({"card": {"trunk_channels": 2, "seats": 2, **cfg_updates.pop("card", {})}, **cfg_updates})
        card = SimCard(2, 2, agent=agent or AgentScript(ring_delay_s=3.0, talk_s=600.0), media=True, seed=1,
                       n_fxo=2)
        # beeps stand in for speech: the call path does not depend on TTS here
        prompts = render_prompts(PromptLibrary(data.prompts, espeak=None, warn=lambda m: None), cfg)
        core = Core(data, cfg, VirtualClock(EPOCH0), card=card, prompts=prompts, media=True)
        made.append(core)
        events = []
        core.bus.listen(events.append)
        return core, card, events

    yield make
    for core in made:
        core.close()


def press(card: SimCard, port: int, keys: str) -> None:
    """The caller on ``port``'s line presses ``keys`` now, as DTMF audio (LineScript has no key presses)."""
    card._play_clip(port, dtmf_generate(keys, level_dbm0=-10.0, on_s=0.1, off_s=0.1))


def journal(core: Core, call_id: str) -> list[tuple[float, str]]:
    core.settle()
    return [(round(e["ts"] - EPOCH0, 3), e["type"]) for e in core.journal.events(call_id)]


def line_status(core: Core, port: int = LINE) -> dict:
    return next(t for t in core.status()["trunks"] if t["port"] == port)


def tick_at(t: float) -> float:
    """The first tick at or after ``t``: when the core hears what the card scheduled for ``t``."""
    return round(math.ceil(t / TICK - 1e-9) * TICK, 3)


@pytest.mark.parametrize("clear_by, cleared_at", [("polarity", 36.0), ("busy", 37.0)])
def test_a_line_call_with_mdmf_caller_id_goes_through_ivr_and_agent_and_the_caller_hangs_up(make_core, clear_by,
                                                                                             cleared_at):
    core, card, events = make_core()
    line = card.add_line_call(LineScript(NUMBER, arrive_at=1.0, talk_s=30.0, clear_by=clear_by), LINE)
    core.runtime.run_until(5.9)  # rang once (1.0-2.0); the FSK caller ID came 0.6 s after the burst
    assert line_status(core) == {"port": LINE, "channel": 1, "kind": "line", "state": "ringing", "caller": NUMBER,
                                 "call_id": None, "name": "FXO 1"}
    assert events == []
    core.runtime.run_until(8.0)  # answered at the second burst (6.0); the welcome menu plays
    assert line.state == "talking" and line.answered_at == 6.0 and line.rings == 2
    press(card, LINE, "1")
    core.runtime.run_until(20.0)
    call_id = events[0]["data"]["call_id"]
    assert line_status(core)["state"] == "agent" and line_status(core)["call_id"] == call_id
    core.runtime.run_until(45.0)

    # the caller hung up at 36.0: the exchange reversed the polarity at once, or played busy tone only,
    # which the core recognised a whole cadence cycle and a little later
    assert journal(core, call_id) == [
        (6.0, "line.answered"), (6.0, "call.offered"), (6.0, "ivr.node"),
        (8.04, "ivr.digit"), (8.04, "ivr.node"), (8.04, "ivr.exit"), (8.04, "call.queued"), (8.04, "call.ringing"),
        (11.04, "call.answered"), (cleared_at, "line.cleared"), (cleared_at, "call.ended")]
    by_type = {e["type"]: e["data"] for e in core.journal.events(call_id)}
    assert by_type["line.answered"] == {"port": LINE, "line": 1, "rings": 2, "caller_id": "mdmf"}
    assert by_type["line.cleared"] == {"port": LINE, "by": clear_by}
    assert by_type["call.offered"] == {"call_id": call_id, "caller": NUMBER, "called": "4008001234", "port": LINE,
                                       "caller_national": NUMBER, "caller_area": "江苏省常州市",
                                       "caller_kind": "mobile"}
    assert [e["event"] for e in events][:2] == ["call.offered", "call.queued"]
    assert events[0]["data"] == by_type["call.offered"]
    rec = core.journal.get_call(call_id)
    times = {k: round(rec[k] - EPOCH0, 3) for k in ("start_ts", "answer_ts", "queued_ts", "agent_answer_ts",
                                                    "end_ts")}
    assert times == {"start_ts": 1.0, "answer_ts": 6.0, "queued_ts": 8.04, "agent_answer_ts": 11.04,
                     "end_ts": cleared_at}
    assert (rec["disposition"], rec["ended_by"], rec["caller"], rec["caller_national"], rec["caller_area"],
            rec["trunk_port"], rec["seat"]) == ("answered", "caller", NUMBER, NUMBER, "江苏省常州市", LINE, 1)
    assert rec["talk_s"] == pytest.approx(cleared_at - 11.04)
    # the box put the line on hook when it heard the caller go
    assert line.state == "ended" and line.ended_at == pytest.approx(cleared_at) and card.line_calls == {}
    assert line_status(core)["state"] == "idle"


def test_dtmf_caller_id_before_the_first_ring_answers_at_the_first_ring(make_core):
    core, card, events = make_core()
    line = card.add_line_call(LineScript(NUMBER, arrive_at=1.0, cid="dtmf"), LINE + 1)
    burst = callerid_burst(LineScript(NUMBER, arrive_at=1.0, cid="dtmf").callerid(), "dtmf")
    first_ring = 1.0 + burst.duration_s + DTMF_CID_GUARD_S
    core.runtime.run_until(first_ring + 1.0)
    answered = tick_at(first_ring)
    assert line.state == "talking" and line.rings == 1 and line.answered_at == pytest.approx(answered)
    call_id = events[0]["data"]["call_id"]
    # the caller-ID keys (A13912345678C) never reached the IVR as a caller's digits
    assert journal(core, call_id) == [(answered, "line.answered"), (answered, "call.offered"), (answered, "ivr.node")]
    by_type = {e["type"]: e["data"] for e in core.journal.events(call_id)}
    assert by_type["line.answered"] == {"port": LINE + 1, "line": 2, "rings": 1, "caller_id": "dtmf"}
    assert (by_type["call.offered"]["caller"], by_type["call.offered"]["caller_area"]) == (NUMBER, "江苏省常州市")


@pytest.mark.parametrize("script, caller_id, withheld", [
    (LineScript(None, arrive_at=1.0, withheld="private"), "mdmf", "private"),
    (LineScript(None, arrive_at=1.0, withheld="unavailable", cid="sdmf"), "sdmf", "unavailable"),
    (LineScript(NUMBER, arrive_at=1.0, cid=None), None, "unavailable"),  # the line has no caller-ID service
])
def test_a_withheld_or_missing_caller_id_gives_a_call_without_a_number(make_core, script, caller_id, withheld):
    core, card, events = make_core()
    card.add_line_call(script, LINE)
    core.runtime.run_until(7.0)
    call_id = events[0]["data"]["call_id"]
    core.settle()
    by_type = {e["type"]: e["data"] for e in core.journal.events(call_id)}
    assert by_type["line.answered"] == {"port": LINE, "line": 1, "rings": 2, "caller_id": caller_id,
                                        "withheld": withheld}
    offered = by_type["call.offered"]
    assert (offered["caller"], offered["caller_national"], offered["caller_area"]) == (None, None, None)
    assert journal(core, call_id)[:3] == [(6.0, "line.answered"), (6.0, "call.offered"), (6.0, "ivr.node")]


@pytest.mark.parametrize("line_rings, max_rings, missed_at, ringing_s", [(2, 1, 10.0, 1.0), (3, 2, 15.0, 6.0)])
def test_a_line_that_stops_ringing_before_the_answer_is_a_missed_call(make_core, line_rings, max_rings, missed_at,
                                                                      ringing_s):
    core, card, events = make_core(card={"line_rings": line_rings})
    line = card.add_line_call(LineScript(NUMBER, arrive_at=1.0, max_rings=max_rings), LINE)
    core.runtime.run_until(30.0)
    core.settle()
    assert line.state == "missed" and line.rings == max_rings and line.answered_at is None
    data = {"port": LINE, "line": 1, "caller": NUMBER, "caller_national": NUMBER, "caller_area": "江苏省常州市",
            "rings": max_rings, "ringing_s": ringing_s}
    missed = core.journal.events_of("line.missed")
    assert [(round(e["ts"] - EPOCH0, 3), e["call_id"], e["data"]) for e in missed] == [(missed_at, "", data)]
    assert [(e["event"], e["data"]) for e in events] == [("line.missed", data)]
    assert core.journal.calls() == [] and core.status()["today"]["offered"] == 0
    assert line_status(core)["state"] == "idle"


def test_a_blacklisted_line_caller_is_blocked_like_a_trunk_caller_and_the_line_is_free_again(make_core):
    core, card, events = make_core(screening={"blacklist": [NUMBER]})
    line = card.add_line_call(LineScript(NUMBER, arrive_at=1.0), LINE)
    core.runtime.run_until(20.0)
    core.settle()
    call_id = events[0]["data"]["call_id"]
    rec = core.journal.get_call(call_id)
    end = round(rec["end_ts"] - EPOCH0, 3)
    assert journal(core, call_id) == [(6.0, "line.answered"), (6.0, "call.offered"), (6.0, "call.blocked"),
                                      (end, "call.ended")]
    assert 6.0 < end < 10.0  # the blocked prompt, then cleared with cause 21
    assert (rec["disposition"], rec["ended_by"], rec["caller"], rec["trunk_port"]) == ("blocked", "system", NUMBER,
                                                                                        LINE)
    assert line.state == "ended" and line.ended_at == pytest.approx(end)  # the box put the line on hook

    # the line is free: the next caller on it is answered and offered as usual
    other = card.add_line_call(LineScript("075512345678", arrive_at=21.0), LINE)
    core.runtime.run_until(27.0)
    assert other.state == "talking" and other.answered_at == 26.0
    offered = [e["data"] for e in events if e["event"] == "call.offered"]
    assert [(o["caller"], o["caller_area"]) for o in offered] == [(NUMBER, "江苏省常州市"),
                                                                   ("075512345678", "广东省深圳市")]
