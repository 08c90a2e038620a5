"""Agents at the seats, end to end on the simulated card in virtual time: feature codes dialled as DTMF audio,
the control API on its Unix socket, wrap-up and missed offers, each checked by the journal's agent events."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest

from appliance.client import ApiError
from appliance.control import CommandError
from appliance.config import validate
from appliance.datadir import DataDir
from drivers.sim import AgentScript, CallerScript, SimCard
from dsp.levels import dbm0_to_amplitude, tone_level_dbm0
from tests.appliance.servers import control_api
from tests.appliance.simcore import cores

EPOCH0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC: virtual time starts here
TICK = 0.02
TRUNKS = 4
AGENTS = [{"id": "1001", "name": "王芳", "pin": "1234"}, {"id": "1002", "name": "李强", "pin": "4321"},
          {"id": "1003", "name": "张伟"}, {"id": "1004", "name": "刘洋", "pin": "1111"}]
DONE_HZ, FAILED_HZ = 1100.0, 600.0  # the code.done and code.failed prompts, told apart by their tone


def port(seat: int) -> int:
    return TRUNKS + seat - 1  # the trunk channels come first, then the seats' FXS ports


def tone(hz: float, seconds: float = 0.6, dbm0: float = -12.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return np.round(dbm0_to_amplitude(dbm0) * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@pytest.fixture
def make_core():
    """A factory of cores on the simulated card in virtual time, all on one data dir (a second core is the
    first one restarted); every core is closed after the test."""
    root = tempfile.mkdtemp(prefix="agents-")  # short: the control socket's path is limited to 107 bytes
    with cores() as new_core:
        def make(scripts, *, epoch=EPOCH0, agents=AGENTS[:3], media=False, **cfg_updates):
            data = DataDir.open(f"{root}/data", create=True)
            cfg = validate({"card": {"trunk_channels": TRUNKS, "seats": len(scripts)}, "agents": agents,
                            **cfg_updates})
            card = SimCard(TRUNKS, len(scripts), agents=scripts, media=media, seed=1)
            prompts = {"code.done": tone(DONE_HZ), "code.failed": tone(FAILED_HZ)}
            return new_core(data, cfg, card, epoch=epoch, media=media, prompts=prompts), card

        yield make
    shutil.rmtree(root)


def states(core, epoch=EPOCH0, since=None):
    """The journal's agent.state events: (time, seat, agent id, prev, prev_s, state, reason)."""
    core.settle()
    return [(round(e["ts"] - epoch, 3), d["seat"], d["agent_id"], d["prev"], d["prev_s"], d["state"], d["reason"])
            for e in core.journal.events_of("agent.state", since) for d in [e["data"]]]


def seat_states(core, seat, epoch=EPOCH0):
    return [s[:1] + s[2:] for s in states(core, epoch) if s[1] == seat]


def assert_durations(core, start=EPOCH0):
    """Every agent.state event's prev is the seat's state before it and prev_s how long that lasted."""
    core.settle()
    last: dict[int, tuple[str, float]] = {}
    for e in core.journal.events_of("agent.state"):
        d = e["data"]
        prev, since = last.get(d["seat"], ("logged_out", start))
        assert (d["prev"], d["prev_s"]) == (prev, pytest.approx(e["ts"] - since, abs=1e-3)), e
        last[d["seat"]] = d["state"], e["ts"]


def rung(core, epoch=EPOCH0):
    """(time, seat) of every call.ringing in the journal."""
    core.settle()
    return [(round(e["ts"] - epoch, 3), e["data"]["seat"]) for e in core.journal.events_of("call.ringing")]


# --- 1. feature codes from an analog phone, as DTMF audio ----------------------------------------------------

def code_heard_at(lift: float, code: str) -> float:
    """When the detector reports the last key of ``code`` dialled at ``lift``: the phone listens to dial tone
    for 0.5 s, sends each key for 80 ms with 80 ms gaps, and the detector reports in the key's second frame."""
    return round(lift + 0.5 + 0.16 * (len(code) - 1) + TICK, 3)


def dial(core, card, seat: int, code: str, lift: float, down: float) -> tuple[np.ndarray, str]:
    """The agent at ``seat`` lifts the phone at ``lift``, dials ``code`` and puts the phone down at ``down``.
    Returns what the agent heard (int16 at 8 kHz from the lift) and the seat's state just before ``down``."""
    phone = card.phones[port(seat)]
    core.runtime.run_until(lift - TICK)  # on the tick grid (a run to a time between ticks can skip one)
    card.schedule_phone(lift, "phone_dials", port(seat), code)
    card.schedule_phone(down, "phone_hangs_up", port(seat))
    phone.heard.clear()
    core.runtime.run_until(down - TICK)
    before = core.logic.acd.by_seat[seat].state
    core.runtime.run_until(down)
    return phone.heard_audio(), before


def prompt_heard(heard: np.ndarray, lift: float, code: str) -> str:
    """Which of the two prompts the agent heard after dialling ``code``, each checked at its level."""
    start = int(round((code_heard_at(lift, code) - lift + 0.1) * 8000))
    x = heard[None, start:start + 3200].astype(np.float64)
    done, failed = tone_level_dbm0(x, DONE_HZ)[0], tone_level_dbm0(x, FAILED_HZ)[0]
    if done == pytest.approx(-12.0, abs=0.3) and failed < -40:
        return "code.done"
    if failed == pytest.approx(-12.0, abs=0.3) and done < -40:
        return "code.failed"
    return f"neither ({done:.1f} dBm0 at {DONE_HZ} Hz, {failed:.1f} dBm0 at {FAILED_HZ} Hz)"


def test_feature_codes_dialled_as_dtmf_audio_log_in_set_busy_available_and_log_out(make_core):
    core, card = make_core([AgentScript(ring_delay_s=1.0, talk_s=5.0, record=True)] * 3, media=True,
                           queue={"strategy": "ring-all"})
    assert [(a.state, a.agent_id) for a in core.logic.acd.agents] == [("logged_out", None)] * 3
    steps = [  # seat, code, lift, down, what the agent hears
        (1, "*11001*1234#", 1.0, 5.0, "code.done"),
        (2, "*11001*4321#", 6.0, 10.0, "code.failed"),  # agent 1001 with 1002's PIN
        (2, "*11009*1#", 11.0, 15.0, "code.failed"),  # nobody has id 1009
        (3, "*3#", 16.0, 19.0, "code.failed"),  # available at a seat nobody is logged in at
        (2, "*11002*4321#", 20.0, 24.0, "code.done"),
        (3, "*11001*1234#", 25.0, 29.0, "code.failed"),  # 1001 is logged in at seat 1
        (1, "*42#", 30.0, 33.0, "code.done"),  # busy: meal
    ]
    for seat, code, lift, down, prompt in steps:
        heard, before = dial(core, card, seat, code, lift, down)
        assert prompt_heard(heard, lift, code) == prompt, code
        if seat == 1 and code.startswith("*1"):  # logged in, but available only once the phone is down
            assert before == "logged_out" and core.logic.acd.by_seat[1].state == "available"
    # the dial tone (China: 450 Hz) until the first key
    heard, _ = dial(core, card, 3, "*2#", 40.0, 42.0)
    assert prompt_heard(heard, 40.0, "*2#") == "code.failed"
    assert tone_level_dbm0(heard[None, 800:3200].astype(np.float64), 450.0)[0] == pytest.approx(-10.0, abs=0.3)
    assert tone_level_dbm0(heard[None, 4400:].astype(np.float64), 450.0)[0] < -40

    core.settle()
    codes = [(round(e["ts"] - EPOCH0, 3), e["data"]) for e in core.journal.events_of("agent.code")]
    assert codes == [
        (code_heard_at(1.0, "*11001*1234#"), {"seat": 1, "code": "*11001*1234#", "ok": True}),
        (code_heard_at(6.0, "*11001*4321#"), {"seat": 2, "code": "*11001*4321#", "ok": False,
                                              "error": "agent 1001: wrong PIN"}),
        (code_heard_at(11.0, "*11009*1#"), {"seat": 2, "code": "*11009*1#", "ok": False,
                                            "error": "agent '1009' is not configured"}),
        (code_heard_at(16.0, "*3#"), {"seat": 3, "code": "*3#", "ok": False,
                                      "error": "seat 3 has nobody logged in; log in first (*1 ID * PIN #)"}),
        (code_heard_at(20.0, "*11002*4321#"), {"seat": 2, "code": "*11002*4321#", "ok": True}),
        (code_heard_at(25.0, "*11001*1234#"), {"seat": 3, "code": "*11001*1234#", "ok": False,
                                               "error": "agent 1001 is logged in at seat 1; log out there first"}),
        (code_heard_at(30.0, "*42#"), {"seat": 1, "code": "*42#", "ok": True}),
        (code_heard_at(40.0, "*2#"), {"seat": 3, "code": "*2#", "ok": False,
                                      "error": "seat 3 has nobody logged in; log in first (*1 ID * PIN #)"}),
    ]
    assert states(core) == [
        (5.0, 1, "1001", "logged_out", 5.0, "available", None),
        (24.0, 2, "1002", "logged_out", 24.0, "available", None),
        (30.0, 1, "1001", "available", 25.0, "busy", "off_hook"),  # lifted: no call is offered
        (33.0, 1, "1001", "busy", 3.0, "busy", "meal"),
    ]

    # ring-all rings every agent who may take a call: only seat 2 (seat 1 is at a meal, seat 3 logged out)
    card.add_caller(CallerScript("13800138000", arrive_at=43.0))
    card.schedule_phone(55.0, "phone_dials", port(1), "*3#")
    card.schedule_phone(58.0, "phone_hangs_up", port(1))
    card.schedule_phone(60.0, "phone_dials", port(2), "*2#")
    card.schedule_phone(63.0, "phone_hangs_up", port(2))
    card.add_caller(CallerScript("13800138001", arrive_at=64.0))
    core.runtime.run_until(80.0)
    core.settle()
    first, second = (round(e["ts"] - EPOCH0, 3) for e in core.journal.events_of("call.queued"))
    assert 44.0 < first < 44.1 and 65.0 < second < 65.1  # the callers' key heard in their audio 1 s after answer
    assert rung(core) == [(first, 2), (second, 1)]  # rung as soon as queued
    assert states(core)[4:] == [
        (first, 2, "1002", "available", round(first - 24.0, 3), "ringing", None),
        (first + 1.0, 2, "1002", "ringing", 1.0, "talking", None),
        (first + 6.0, 2, "1002", "talking", 5.0, "available", None),
        (58.0, 1, "1001", "busy", 25.0, "available", None),  # *3# while busy: the phone's lift changes nothing
        (60.0, 2, "1002", "available", round(60.0 - first - 6.0, 3), "busy", "off_hook"),
        (63.0, 2, "1002", "busy", 3.0, "logged_out", None),  # who logged out is named
        (second, 1, "1001", "available", round(second - 58.0, 3), "ringing", None),
        (second + 1.0, 1, "1001", "ringing", 1.0, "talking", None),
        (second + 6.0, 1, "1001", "talking", 5.0, "available", None),
    ]
    assert [(a.state, a.agent_id, a.name) for a in core.logic.acd.agents] == [
        ("available", "1001", "王芳"), ("logged_out", None, "坐席2"), ("logged_out", None, "坐席3")]
    assert_durations(core)


# --- 2. the control API ----------------------------------------------------------------------------------

@pytest.fixture
def api(make_core):
    """A core whose control API listens on its socket (served by a loop thread, as the core process does)
    and a client of it; the runtime runs in the test's thread between calls."""
    core, card = make_core([AgentScript(ring_delay_s=1.0, talk_s=5.0)] * 3)
    with control_api(core) as client:
        yield core, card, client


def refused(client, cmd, **args) -> tuple[str, str]:
    with pytest.raises(ApiError) as err:
        client.call(cmd, **args)
    return err.value.code, err.value.message


def test_control_api_logs_agents_in_and_out_and_sets_states_with_reasons(api):
    core, card, client = api
    core.runtime.run_until(1.0)
    assert client.call("agent.login", seat=1, agent_id="1001", pin="1234") == {
        "seat": 1, "state": "available", "reason": None, "agent_id": "1001"}
    assert refused(client, "agent.login", seat=1, agent_id="1002", pin="4321") == (
        "conflict", "seat 1 already has an agent logged in; log out first")
    assert refused(client, "agent.login", seat=2, agent_id="1001", pin="1234") == (
        "conflict", "agent 1001 is logged in at seat 1; log out there first")
    assert refused(client, "agent.login", seat=2, agent_id="1002", pin="1234") == ("conflict", "agent 1002: wrong PIN")
    assert refused(client, "agent.login", seat=2, agent_id="1009") == ("conflict", "agent '1009' is not configured")
    assert refused(client, "agent.login", seat=2) == (
        "conflict", "an agent id is needed to log in: agents are configured (*1 ID * PIN #)")
    assert refused(client, "agent.login", seat=9, agent_id="1002") == ("not_found", "seat: 9 is not a configured seat")
    assert refused(client, "agent.state", seat=25, state="busy") == (
        "bad_argument", "seat: 25 is out of range; allowed 1..24")
    assert refused(client, "agent.state", seat=1, state="busy", reason="nap") == (
        "bad_argument", 'reason: "nap" is not one of them; allowed other, rest, meal, meeting, training, paperwork, '
                        'no_answer, supervisor')
    assert refused(client, "agent.state", seat=1, state="available", reason="meal") == (
        "bad_argument", "reason: only a busy state has a reason, not 'available'")
    assert refused(client, "agent.state", seat=3, state="busy") == (
        "conflict", "seat 3 has nobody logged in; log in first")

    core.runtime.run_until(3.0)
    assert client.call("agent.login", seat=2, agent_id="1002", pin="4321")["state"] == "available"
    core.runtime.run_until(5.0)
    assert client.call("agent.state", seat=1, state="busy", reason="training") == {
        "seat": 1, "state": "busy", "reason": "training", "agent_id": "1001"}
    card.add_caller(CallerScript("13800138000", arrive_at=6.0))  # queued at 7, rings seat 2, answered at 8
    core.runtime.run_until(10.0)
    for cmd, args in (("agent.state", {"state": "busy", "reason": "rest"}), ("agent.logout", {})):
        assert refused(client, cmd, seat=2, **args) == ("conflict", "seat 2 is talking; its state can change after "
                                                                    "the call")
    core.runtime.run_until(20.0)  # the agent put the phone down at 13
    assert client.call("agent.state", seat=1, state="available") == {
        "seat": 1, "state": "available", "reason": None, "agent_id": "1001"}
    assert client.call("agent.state", seat=2, state="busy") == {
        "seat": 2, "state": "busy", "reason": "other", "agent_id": "1002"}
    core.runtime.run_until(25.0)
    assert client.call("agent.logout", seat=2) == {"seat": 2, "state": "logged_out", "reason": None, "agent_id": None}
    assert client.call("agent.login", seat=3, agent_id="1002", pin="4321")["agent_id"] == "1002"  # free again
    seats = client.call("status")["seats"]
    assert [(s["seat"], s["state"], s["reason"], s["agent_id"], s["name"]) for s in seats] == [
        (1, "available", None, "1001", "王芳"), (2, "logged_out", None, None, "坐席2"),
        (3, "available", None, "1002", "李强")]
    assert states(core) == [
        (1.0, 1, "1001", "logged_out", 1.0, "available", None),
        (3.0, 2, "1002", "logged_out", 3.0, "available", None),
        (5.0, 1, "1001", "available", 4.0, "busy", "training"),
        (7.0, 2, "1002", "available", 4.0, "ringing", None),
        (8.0, 2, "1002", "ringing", 1.0, "talking", None),
        (13.0, 2, "1002", "talking", 5.0, "available", None),
        (20.0, 1, "1001", "busy", 15.0, "available", None),
        (20.0, 2, "1002", "available", 7.0, "busy", "other"),
        (25.0, 2, "1002", "busy", 5.0, "logged_out", None),
        (25.0, 3, "1002", "logged_out", 25.0, "available", None),
    ]
    assert_durations(core)


def test_a_state_set_while_the_phone_is_off_hook_holds_once_it_is_down(make_core):
    core, card = make_core([AgentScript()] * 3)
    core.runtime.run_until(1.0)
    core.agent_login(1, "1001", "1234")
    card.schedule_phone(2.0, "phone_dials", port(1), "")  # lifted, nothing dialled
    card.schedule_phone(6.0, "phone_hangs_up", port(1))
    core.runtime.run_until(3.0)
    assert core.agent_logout(1) == {"seat": 1, "state": "busy", "reason": "off_hook", "agent_id": None}
    core.runtime.run_until(4.0)
    with pytest.raises(CommandError) as err:  # nobody will be logged in once the phone is down
        core.agent_state(1, "available")
    assert (err.value.code, str(err.value)) == (
        "conflict", "an agent id is needed to log in: agents are configured (*1 ID * PIN #)")
    core.runtime.run_until(10.0)
    assert states(core) == [
        (1.0, 1, "1001", "logged_out", 1.0, "available", None),
        (2.0, 1, "1001", "available", 1.0, "busy", "off_hook"),
        (6.0, 1, "1001", "busy", 4.0, "logged_out", None),
    ]
    assert core.agent_login(2, "1001", "1234")["state"] == "available"  # free to log in elsewhere


# --- 3. wrap-up ----------------------------------------------------------------------------------------------

def test_wrap_up_after_each_call_holds_the_next_call_for_its_time(make_core):
    core, card = make_core([AgentScript(ring_delay_s=2.0, talk_s=10.0)] * 3, queue={"wrap_up_s": 10})
    core.runtime.run_until(1.0)
    core.agent_login(1, "1001", "1234")
    card.add_caller(CallerScript("13800138000", arrive_at=2.0))  # answered at 5, the agent ends it at 15
    card.add_caller(CallerScript("13800138001", arrive_at=6.0))  # waits from 7 for the end of the wrap-up
    card.add_caller(CallerScript("13800138002", arrive_at=30.0, talk_s=3.0))  # hangs up first, at 52
    card.add_caller(CallerScript("13800138003", arrive_at=70.0))  # answered at 73, ended by the agent at 83
    card.schedule_phone(85.0, "phone_dials", port(1), "*3#")  # during the wrap-up: available at once ...
    card.schedule_phone(87.0, "phone_hangs_up", port(1))  # ... when the phone is down
    card.add_caller(CallerScript("13800138004", arrive_at=84.0))
    core.runtime.run_until(120.0)
    assert rung(core) == [(3.0, 1), (25.0, 1), (47.0, 1), (71.0, 1), (87.0, 1)]
    assert seat_states(core, 1) == [
        (1.0, "1001", "logged_out", 1.0, "available", None),
        (3.0, "1001", "available", 2.0, "ringing", None),
        (5.0, "1001", "ringing", 2.0, "talking", None),
        (15.0, "1001", "talking", 10.0, "wrap_up", None),
        (25.0, "1001", "wrap_up", 10.0, "available", None),  # the waiting caller is rung at exactly +10 s
        (25.0, "1001", "available", 0.0, "ringing", None),
        (27.0, "1001", "ringing", 2.0, "talking", None),
        (37.0, "1001", "talking", 10.0, "wrap_up", None),
        (47.0, "1001", "wrap_up", 10.0, "available", None),
        (47.0, "1001", "available", 0.0, "ringing", None),
        (49.0, "1001", "ringing", 2.0, "talking", None),
        (52.0, "1001", "talking", 3.0, "busy", "off_hook"),  # the caller left: busy tone until the phone is down
        (52.5, "1001", "busy", 0.5, "wrap_up", None),  # the wrap-up starts when it is
        (62.5, "1001", "wrap_up", 10.0, "available", None),
        (71.0, "1001", "available", 8.5, "ringing", None),
        (73.0, "1001", "ringing", 2.0, "talking", None),
        (83.0, "1001", "talking", 10.0, "wrap_up", None),
        (85.0, "1001", "wrap_up", 2.0, "busy", "off_hook"),
        (87.0, "1001", "busy", 2.0, "available", None),  # *3# ended the wrap-up 6 s early
        (87.0, "1001", "available", 0.0, "ringing", None),
        (89.0, "1001", "ringing", 2.0, "talking", None),
        (99.0, "1001", "talking", 10.0, "wrap_up", None),
        (109.0, "1001", "wrap_up", 10.0, "available", None),
    ]
    assert [c["ok"] for c in (e["data"] for e in core.journal.events_of("agent.code"))] == [True]
    assert_durations(core)


# --- 4. missed offers ----------------------------------------------------------------------------------------

def test_an_agent_who_lets_calls_ring_out_is_skipped_then_set_busy_no_answer(make_core):
    never = AgentScript(ring_delay_s=1000.0)
    core, card = make_core([never, AgentScript(ring_delay_s=1.0, talk_s=20.0), never],
                           queue={"ring_timeout_s": 5, "missed_offers": 2})
    core.runtime.run_until(1.0)
    core.agent_login(1, "1001", "1234")  # idle longest: offered first
    core.runtime.run_until(2.0)
    core.agent_login(2, "1002", "4321")
    card.add_caller(CallerScript("13800138000", arrive_at=3.0))  # queued at 4: seat 1 rings out, then seat 2
    card.add_caller(CallerScript("13800138001", arrive_at=12.0))  # queued at 13: only seat 1 is free
    card.add_caller(CallerScript("13800138002", arrive_at=60.0))  # queued at 61: seat 1 is busy (no answer)
    core.runtime.run_until(90.0)
    core.settle()
    assert rung(core) == [(4.0, 1), (9.0, 2), (13.0, 1), (30.0, 2), (61.0, 2)]
    missed = [(round(e["ts"] - EPOCH0, 3), e["data"]) for e in core.journal.events_of("call.ring_no_answer")]
    assert missed == [(9.0, {"seat": 1, "ring_s": 5.0, "missed": 1}), (18.0, {"seat": 1, "ring_s": 5.0, "missed": 2})]
    assert seat_states(core, 1) == [
        (1.0, "1001", "logged_out", 1.0, "available", None),
        (4.0, "1001", "available", 3.0, "ringing", None),
        (9.0, "1001", "ringing", 5.0, "available", None),
        (13.0, "1001", "available", 4.0, "ringing", None),
        (18.0, "1001", "ringing", 5.0, "busy", "no_answer"),
    ]
    assert card.phones[port(1)].rings == 2
    assert [e["data"]["seat"] for e in core.journal.events_of("call.answered")] == [2, 2, 2]
    assert_durations(core)


def test_a_call_that_rang_out_is_offered_to_the_next_agent_whatever_the_strategy(make_core):
    """Under fixed-order seat 1 comes first for every call, but not again for the call it has just let ring out."""
    core, card = make_core([AgentScript(ring_delay_s=1000.0), AgentScript(ring_delay_s=1.0, talk_s=20.0)],
                           queue={"ring_timeout_s": 5, "missed_offers": 3, "strategy": "fixed-order"})
    core.runtime.run_until(1.0)
    core.agent_login(1, "1001", "1234")
    core.agent_login(2, "1002", "4321")
    card.add_caller(CallerScript("13800138000", arrive_at=3.0))
    core.runtime.run_until(30.0)
    core.settle()
    assert rung(core) == [(4.0, 1), (9.0, 2)]
    assert [e["data"]["seat"] for e in core.journal.events_of("call.answered")] == [2]
