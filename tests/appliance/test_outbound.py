"""Outbound calls end to end: click-to-dial on the simulated card in virtual time, with the network's signalling
and tones going through the real call-progress detector; the classified result of every far-end outcome the card
can play (signalled, and heard only as tones); the result of a transfer leg and of a callback in queue."""

from __future__ import annotations

import itertools
import numpy as np
import pytest

from appliance.config import validate
from appliance.control import CommandError
from appliance.datadir import DataDir
from appliance.journal import CHOICES
from appliance.outbound import FAX_WINDOW_S, RESULTS, RING_S, TONE_CLEAR_S, classify
from drivers.base import Released
from drivers.sim import AgentScript, CallerScript, OutboundScript, SimCard
from dsp.levels import tone_level_dbm0
from tests.appliance.simcore import cores

EPOCH0 = 1_764_300_000.0  # 2025-11-28 11:20 in Shanghai
TICK = 0.02
NUMBER = "13900000001"


@pytest.fixture
def make_core(tmp_path):
    """Cores on a sim card (``trunks`` E1 channels, ``seats`` phones) in virtual time; closed after the test."""
    with cores() as new_core:
        made = itertools.count()

        def make(network=None, *, agent=None, agents=None, trunks=4, seats=3, media=True, epoch=EPOCH0, data=None,
                 **cfg_updates):
            data = data or DataDir.open(tmp_path / f"data{next(made)}", create=True)
            cfg = validate({"card": {"trunk_channels": trunks, "seats": seats}, **cfg_updates})
            card = SimCard(trunks, seats, agent=agent or AgentScript(ring_delay_s=2.0, talk_s=120.0), agents=agents,
                           media=media, seed=1, network=network)
            return new_core(data, cfg, card, epoch=epoch, media=media), card

        yield make


def journal(core, call_id, *types):
    """The call's committed events (of ``types``, or all) as (seconds since EPOCH0, type, data)."""
    core.settle()
    return [(round(e["ts"] - EPOCH0, 3), e["type"], e["data"]) for e in core.journal.events(call_id)
            if not types or e["type"] in types]


def at(core, call_id, type_):
    [(t, _, _)] = journal(core, call_id, type_)
    return t


def rel(ts):
    return None if ts is None else round(ts - EPOCH0, 3)


# --- classification --------------------------------------------------------------------------------

# far-end outcome -> (what the network does, result, cause, tone heard before the result, decided by)
SIGNALLED = {
    "answered": (OutboundScript("answered", setup_s=0.5, ring_s=4.0, talk_s=10.0), "answered", 16, None, "answer"),
    "busy": (OutboundScript("busy", setup_s=0.5, tone_s=3.0), "busy", 17, "busy", "cause"),
    "no_answer": (OutboundScript("no_answer", setup_s=0.5, ring_s=20.0), "no_answer", 19, None, "cause"),
    "vacant": (OutboundScript("vacant", setup_s=0.5, tone_s=5.0), "vacant", 1, "vacant", "cause"),
    "special_information": (OutboundScript("special_information", setup_s=0.5, tone_s=5.0), "vacant", 1, "sit",
                            "cause"),
    "congestion": (OutboundScript("congestion", setup_s=0.5, tone_s=4.0), "congestion", 34, "congestion", "cause"),
    "fax": (OutboundScript("fax", setup_s=0.5, ring_s=4.0, talk_s=30.0), "fax", None, "ced", "tone"),
}
# seconds from the dial to the network's clearing (the end of the call)
CLEARS = {"answered": 14.5, "busy": 3.5, "no_answer": 20.5, "vacant": 5.5, "special_information": 5.5,
          "congestion": 4.5}


def dial_and_run(make_core, script, until=90.0):
    core, card = make_core({NUMBER: script})
    core.runtime.run_until(1.0)
    answer = core.call_dial(seat=1, number=NUMBER)
    assert answer == {"call_id": answer["call_id"], "seat": 1, "number": NUMBER}
    core.runtime.run_until(until)
    core.settle()
    return core, card, answer["call_id"]


@pytest.mark.parametrize("outcome", list(SIGNALLED))
def test_each_far_end_outcome_is_recorded_with_its_result_and_cause(make_core, outcome):
    script, result, cause, tone, by = SIGNALLED[outcome]
    core, card, cid = dial_and_run(make_core, script)
    dialled = at(core, cid, "call.dialling")
    assert dialled == 3.0  # asked at 1 s, the agent's phone rang 2 s
    [(decided, _, data)] = journal(core, cid, "call.dial_result")
    assert data == {"port": 0, "number": NUMBER, "result": result, "cause": None if outcome == "answered" else cause,
                    "tone": tone, "by": by}  # an answered call's clearing cause comes after its result
    rec = core.journal.get_call(cid)
    [leg] = card.outbound
    if outcome == "fax":  # the answer tone is heard within the fax window; the box hangs up at once
        connected = at(core, cid, "call.dial_answered")
        assert connected == pytest.approx(dialled + 4.5)
        assert decided == pytest.approx(connected + 2.0, abs=2 * TICK)  # CED: 2 s of 2100 Hz make it recognised
        assert journal(core, cid, "call.dial_tone") == [(decided, "call.dial_tone", {"port": 0, "tone": "ced"})]
        assert (leg.state, leg.cause, rel(rec["end_ts"])) == ("ended", 16, decided)  # our clearing
        assert (rec["ended_by"], rec["talk_s"], rel(rec["answer_ts"])) == ("system", None, connected)
    else:
        end = dialled + CLEARS[outcome]
        assert (leg.state, leg.cause, rel(rec["end_ts"])) == ("ended", cause, pytest.approx(end))
        if outcome == "answered":
            assert decided == pytest.approx(dialled + 4.5 + FAX_WINDOW_S)  # no fax tone within the window
            assert (rec["ended_by"], rec["talk_s"], rel(rec["answer_ts"])) == ("caller", pytest.approx(10.0),
                                                                                pytest.approx(dialled + 4.5))
        else:
            assert decided == pytest.approx(end)
            assert (rec["ended_by"], rec["talk_s"], rec["answer_ts"]) == ("system", None, None)
        tones = journal(core, cid, "call.dial_tone")
        if tone is None:
            assert tones == []
        else:  # the detector heard the network's tone first; the cause then agreed with it
            [(heard, _, tone_data)] = tones
            assert tone_data == {"port": 0, "tone": tone}
            assert dialled + 0.5 < heard < dialled + 2.5
    assert {k: rec[k] for k in ("direction", "caller", "called", "number", "result", "cause", "campaign", "seat",
                                "disposition", "caller_national", "caller_kind")} == {
        "direction": "out", "caller": "801", "called": NUMBER, "number": NUMBER, "result": result, "cause": cause,
        "campaign": None, "seat": 1, "disposition": "answered" if result == "answered" else "failed",
        "caller_national": NUMBER, "caller_kind": "mobile"}
    assert rel(rec["agent_answer_ts"]) == dialled and rel(rec["start_ts"]) == 1.0
    [(_, _, ended)] = journal(core, cid, "call.ended")
    assert (ended["direction"], ended["result"], ended["cause"], ended["number"]) == ("out", result, cause, NUMBER)
    assert "origin" not in ended


# the network plays its tone (or rings) and does not clear: the box decides by what it heard, with no cause
TONE_ONLY = {"busy": ("busy", "busy"), "vacant": ("vacant", "vacant"), "special_information": ("sit", "vacant"),
             "congestion": ("congestion", "congestion")}


@pytest.mark.parametrize("outcome", list(TONE_ONLY))
def test_a_tone_the_network_does_not_clear_after_decides_the_result_without_a_cause(make_core, outcome):
    tone, result = TONE_ONLY[outcome]
    core, card, cid = dial_and_run(make_core, OutboundScript(outcome, setup_s=0.5, tone_s=60.0))
    dialled = at(core, cid, "call.dialling")
    [(heard, _, _)] = journal(core, cid, "call.dial_tone")
    assert journal(core, cid, "call.dial_result") == [(
        pytest.approx(heard + TONE_CLEAR_S), "call.dial_result",
        {"port": 0, "number": NUMBER, "result": result, "cause": None, "tone": tone, "by": "tone"})]
    [leg] = card.outbound
    assert (leg.state, leg.cause, leg.ended_at) == ("ended", 16, pytest.approx(heard + TONE_CLEAR_S))  # we hung up
    rec = core.journal.get_call(cid)
    assert (rec["result"], rec["cause"], rec["disposition"], rec["ended_by"]) == (result, None, "failed", "system")
    assert dialled + 0.5 < heard < dialled + 2.5


def test_a_number_that_rings_on_is_no_answer_after_the_ring_time(make_core):
    core, card, cid = dial_and_run(make_core, OutboundScript("no_answer", setup_s=0.5, ring_s=100.0), until=60.0)
    dialled = at(core, cid, "call.dialling")
    assert journal(core, cid, "call.dial_result") == [(
        pytest.approx(dialled + RING_S), "call.dial_result",
        {"port": 0, "number": NUMBER, "result": "no_answer", "cause": None, "tone": None, "by": "ringing"})]
    [leg] = card.outbound
    assert (leg.state, leg.cause, leg.ended_at) == ("ended", 16, pytest.approx(dialled + RING_S))
    assert core.journal.get_call(cid)["result"] == "no_answer"


def test_causes_and_tones_map_to_results():
    assert CHOICES["result"] == RESULTS
    cases = {(17, None, True): ("busy", "cause"), (18, None, True): ("no_answer", "cause"),
             (21, None, False): ("rejected", "cause"), (28, None, False): ("invalid", "cause"),
             (41, None, False): ("congestion", "cause"), (42, None, False): ("congestion", "cause"),
             (38, None, False): ("failed", "cause"), (1, "busy", False): ("vacant", "cause"),  # the cause wins
             (16, "sit", False): ("vacant", "tone"), (16, None, True): ("no_answer", "ringing"),
             (16, None, False): ("failed", "none"), (None, "ced", False): ("fax", "tone")}
    for (cause, tone, alerting), want in cases.items():
        assert classify(cause, tone, alerting, False, False) == want, (cause, tone, alerting)
    assert classify(16, None, True, True, False) == ("answered", "answer")
    assert classify(None, None, True, True, True) == ("fax", "tone")


# --- click-to-dial -----------------------------------------------------------------------------------

def test_click_to_dial_rings_the_agent_first_then_dials_with_the_agent_listening(make_core):
    agent = AgentScript(ring_delay_s=3.0, talk_s=120.0, record=True)
    core, card = make_core({NUMBER: OutboundScript("answered", setup_s=0.5, ring_s=5.0, talk_s=10.0)}, agent=agent)
    events = []
    core.bus.listen(events.append)
    core.runtime.run_until(2.0)
    cid = core.call_dial(seat=2, number="139 0000 0001")["call_id"]
    phone = card.phones[card.n_trunks + 1]
    core.runtime.run_until(4.9)
    assert card.outbound == [] and phone.hook == "ringing"  # nothing dialled while the agent's phone rings
    assert core.status()["seats"][1]["state"] == "ringing"
    core.runtime.run_until(40.0)
    assert phone.ring_log[0][0] == pytest.approx(2.0) and phone.shown_caller == NUMBER  # the display: the number
    [leg] = card.outbound
    assert (leg.port, leg.number, leg.dialled_at) == (0, NUMBER, pytest.approx(5.0))  # at the pick-up
    assert [(t, k) for t, k, _ in journal(core, cid, "call.outbound", "call.ringing", "call.dialling",
                                          "call.leg_alerting", "call.dial_answered", "call.dial_result",
                                          "call.ended")] == [
        (2.0, "call.outbound"), (2.0, "call.ringing"), (5.0, "call.dialling"), (5.5, "call.leg_alerting"),
        (10.5, "call.dial_answered"), (16.5, "call.dial_result"), (20.5, "call.ended")]
    assert [e["event"] for e in events if e["event"].startswith("call.")] == [
        "call.outbound", "call.ringing", "call.dial_answered", "call.ended"]
    heard = phone.heard_audio().astype(np.float64)  # from the pick-up at 5 s
    ringback = heard[None, int(0.6 * 8000):int(1.4 * 8000)]  # the network's 450 Hz, 1 s on
    assert tone_level_dbm0(ringback, 450.0)[0] == pytest.approx(-10.0, abs=0.3)
    rec = core.journal.get_call(cid)
    assert (rec["caller"], rec["seat"], rec["result"], rec["talk_s"]) == ("802", 2, "answered", pytest.approx(10.0))
    assert rec["recording"] is not None  # recorded from the answer, as any answered call


def test_no_free_trunk_channel_is_a_congestion_result_and_the_agent_hears_congestion(make_core):
    core, card = make_core({}, trunks=1, seats=2, agents=[AgentScript(ring_delay_s=2.0, talk_s=60.0),
                                                          AgentScript(ring_delay_s=2.0, record=True)])
    caller = card.add_caller(CallerScript("13800138000", arrive_at=0.5, digits="1", digit_delay_s=0.5))
    core.runtime.run_until(5.0)
    assert caller.outcome == "talking"  # the only channel carries a call to seat 1
    cid = core.call_dial(seat=2, number=NUMBER)["call_id"]
    core.runtime.run_until(9.0)
    assert card.outbound == []
    assert journal(core, cid, "call.dial_result", "call.ended") == [
        (7.0, "call.dial_result", {"port": None, "number": NUMBER, "result": "congestion", "cause": None,
                                   "tone": None, "by": "no_trunk"}),
        (7.0, "call.ended", {"call_id": cid, "disposition": "failed", "ended_by": "system", "talk_s": None,
                             "wait_s": None, "reason": "no free trunk channel", "direction": "out",
                             "number": NUMBER, "result": "congestion", "cause": None})]
    rec = core.journal.get_call(cid)
    assert (rec["result"], rec["cause"], rec["disposition"], rec["seat"]) == ("congestion", None, "failed", 2)
    heard = card.phones[card.n_trunks + 1].heard_audio().astype(np.float64)  # from the pick-up at 7 s
    on = heard[None, int(0.36 * 8000):int(0.68 * 8000)]  # congestion is on here (0.7 s), busy (0.35 s) is not
    assert tone_level_dbm0(on, 450.0)[0] == pytest.approx(-10.0, abs=0.3)


def test_a_seat_that_is_not_available_an_unknown_seat_and_a_bad_number_are_refused(make_core):
    core, card = make_core({NUMBER: OutboundScript("answered", setup_s=0.5, ring_s=2.0, talk_s=None)})
    core.runtime.run_until(1.0)
    core.agent_state(seat=3, state="busy", reason="meal")
    cid = core.call_dial(seat=1, number=NUMBER)["call_id"]
    core.runtime.run_until(10.0)  # seat 1 talks
    for seat, number, code, message in [
            (1, NUMBER, "conflict", "seat: seat 1 is talking; it must be available (phone on hook) to dial out"),
            (3, NUMBER, "conflict", "seat: seat 3 is busy; it must be available (phone on hook) to dial out"),
            (9, NUMBER, "not_found", "seat: seat 9 is not a configured seat"),
            (2, "12", "bad_argument", "number: number '12' is not a phone number that can be dialled (a mobile, a "
                                      "landline, a service or a valid international number)"),
            (2, "abc", "bad_argument", "number: number 'abc' is not a phone number that can be dialled (a mobile, a "
                                       "landline, a service or a valid international number)")]:
        with pytest.raises(CommandError) as e:
            core.call_dial(seat=seat, number=number)
        assert (e.value.code, e.value.message) == (code, message)
    assert len(card.outbound) == 1 and list(core.logic.by_id) == [cid]


def test_an_agent_who_does_not_pick_up_ends_the_call_before_anything_is_dialled(make_core):
    core, card = make_core({}, agent=AgentScript(ring_delay_s=100.0))
    core.runtime.run_until(1.0)
    cid, acts = core.logic.dial_out(1, NUMBER, 1.0, origin={"missed": 7})  # as the missed-call list does
    core.runtime.apply(acts, 1.0)
    _, acts = core.logic.dial_out(2, "87654321", 1.0)  # a local number gets the box's area code
    core.runtime.apply(acts, 1.0)
    core.runtime.run_until(30.0)
    assert card.outbound == []
    rings = journal(core, cid, "call.ring_no_answer", "call.ended")
    assert rings == [(16.0, "call.ring_no_answer", {"seat": 1, "ring_s": 15.0}),
                     (16.0, "call.ended", {"call_id": cid, "disposition": "failed", "ended_by": "system",
                                           "talk_s": None, "wait_s": None, "reason": "agent did not answer",
                                           "direction": "out", "number": NUMBER, "result": "failed", "cause": None,
                                           "origin": {"missed": 7}})]
    assert core.status()["seats"][0]["state"] == "available"
    calls = {c["called"]: c for c in core.journal.calls()}
    assert set(calls) == {NUMBER, "02787654321"}


# --- the other outbound attempts: a transfer to a number, a callback in queue ----------------------------

TRANSFER = "13900002222"
TRANSFER_FLOW = {"start": "menu", "nodes": {
    "menu": {"kind": "menu", "text": "转接请按1。", "choices": {"1": "out"}, "on_fail": "out"},
    "out": {"kind": "transfer", "to": f"number:{TRANSFER}"},
}}


def test_a_transfer_to_a_number_records_the_legs_result_in_the_inbound_call(make_core):
    core, card = make_core({TRANSFER: OutboundScript("vacant", setup_s=0.5, tone_s=60.0)},
                           ivr={"flow": TRANSFER_FLOW})
    card.add_caller(CallerScript("13800138000", arrive_at=1.0, digits="1", digit_delay_s=0.5))
    core.runtime.run_until(40.0)
    core.settle()
    [rec] = core.journal.calls()
    cid = rec["call_id"]
    dialled = at(core, cid, "call.transfer")
    [(heard, _, _)] = journal(core, cid, "call.dial_tone")
    assert dialled + 0.5 < heard < dialled + 2.5
    assert journal(core, cid, "call.dial_result", "call.transfer_failed") == [
        (pytest.approx(heard + TONE_CLEAR_S), "call.dial_result",
         {"port": 1, "number": TRANSFER, "result": "vacant", "cause": None, "tone": "vacant", "by": "tone"}),
        (pytest.approx(heard + TONE_CLEAR_S), "call.transfer_failed", {"cause": None})]  # then goodbye
    assert {k: rec[k] for k in ("direction", "caller", "called", "number", "result", "cause", "campaign",
                                "disposition")} == {
        "direction": "in", "caller": "13800138000", "called": "4008001234", "number": TRANSFER, "result": "vacant",
        "cause": None, "campaign": None, "disposition": "failed"}
    [leg] = card.outbound
    assert (leg.port, leg.state, leg.cause) == (1, "ended", 16)


def test_a_callback_in_queue_records_its_result():
    from tests.appliance.test_queueing import BASE, arrive, centre, logged, record
    from appliance.actions import PromptDone
    from drivers.base import Alerting, Connected, Digit, OffHook, OnHook

    cc = centre({**BASE, "callback_key": "*"}, n=1)
    arrive(cc, 3, 0.0)
    cc.handle(OffHook(30), 2.0)  # the only agent talks
    arrive(cc, 5, 20.0, number="02787654321")
    cc.handle(Digit(5, "*"), 25.0)
    cc.handle(PromptDone(5), 30.0)  # parked
    cc.handle(OnHook(30), 60.0)
    cc.handle(OffHook(30), 62.0)  # the callback is dialled on channel 0
    assert cc.handle(Alerting(0), 63.0) and cc.handle(Connected(0), 70.0)
    assert logged(cc.advance(75.9), "call.dial_result") == []
    assert logged(cc.advance(76.0), "call.dial_result") == [  # the fax window passed: answered
        {"port": 0, "number": "02787654321", "result": "answered", "cause": None, "tone": None, "by": "answer"}]
    acts = cc.handle(Released(0, 16), 100.0)
    rec = record(acts)
    assert (rec["direction"], rec["disposition"], rec["number"], rec["result"], rec["cause"]) == \
        ("in", "answered", "02787654321", "answered", 16)
    assert cc.attempts == {} and cc.tried == {}


def test_the_control_api_checks_call_dial_s_arguments_and_an_origin_must_be_json(make_core):
    core, card = make_core({NUMBER: OutboundScript("busy", setup_s=0.5, tone_s=3.0)})
    core.runtime.run_until(1.0)
    server = core.server
    assert server.execute(1, "call.dial", {"seat": 1}) == {
        "id": 1, "ok": False, "error": "bad_argument",
        "message": "number: required argument is missing; allowed a string of at most 32 characters"}
    assert server.execute(2, "call.dial", {"seat": 0, "number": NUMBER})["message"] == \
        "seat: 0 is out of range; allowed 1..24"
    with pytest.raises(ValueError) as e:
        core.logic.dial_out(1, NUMBER, 1.0, origin={"missed": {1, 2}})
    assert (e.value.arg, e.value.code, str(e.value)) == ("origin", "bad_argument",
                                                         "origin must be a JSON object (a dict) or None")
    answer = server.execute(3, "call.dial", {"seat": 1, "number": "+86 139 0000 0001"})
    assert answer == {"id": 3, "ok": True, "call_id": answer["call_id"], "seat": 1, "number": NUMBER}
    core.runtime.run_until(20.0)
    assert [(o.number, o.cause) for o in card.outbound] == [(NUMBER, 17)]
