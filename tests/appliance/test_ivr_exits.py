"""IVR flows end to end, the ways out of a flow: a time branch to voicemail, a transfer to a number on a
second trunk channel (answered or busy), a transfer to one seat. The core on the simulated card in virtual
time, as in ``test_ivr_flows.py`` (whose fixture and helpers this file uses)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from appliance.prompts import beep
from appliance.promptset import beep_tone
from appliance.wavfile import read_alaw_wav
from drivers.sim import AgentScript, CallerScript, OutboundScript
from dsp.dtmf import dtmf_generate
from dsp.g711 import alaw_decode
from dsp.levels import rms_dbm0, tone_level_dbm0
from tests.appliance import test_ivr_flows
from tests.appliance.test_ivr_flows import TICK, TUESDAY_10AM, TZ, alaw, at, calls, journal, local, visits, when

make_core = test_ivr_flows.make_core  # the fixture: cores on the sim card in virtual time

HOURS = {day: ["09:00-12:00", "13:30-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
HOURS_FLOW = {"start": "hours", "nodes": {
    "hours": {"kind": "time", "schedule": HOURS, "open": "sales", "closed": "after_hours",
              "holidays": [f"2026-10-0{d}" for d in range(1, 8)],  # National Day week
              "workdays": ["2026-09-27", "2026-10-10"]},  # 调休: a Sunday and a Saturday worked instead
    "sales": {"kind": "queue", "queue": "default"},
    "after_hours": {"kind": "voicemail", "box": "general"},
}}


# --- time branch and voicemail --------------------------------------------------------------------

def test_closed_on_a_holiday_the_caller_hears_the_greeting_and_the_beep_and_leaves_a_message(make_core):
    """National Day, 10:00 on a Thursday: closed. The caller hears the voicemail greeting, the beep, then
    silence while the message (a key pressed, as the caller's sound) is recorded until they hang up."""
    epoch = local(2026, 10, 1, 9, 59, 59)
    core, card = make_core(HOURS_FLOW, epoch=epoch, media=True)
    arrived = 1.0  # 10:00:00
    caller = card.add_caller(CallerScript("13800138000", arrived, digits="", digit_delay_s=0.0,
                                          presses=((3.0, "5"),), patience_s=6.4, record=True))
    core.runtime.run_until(20.0)
    rec = calls(core)["13800138000"]
    cid = rec["call_id"]
    assert journal(core, cid)[1:] == [
        ("ivr.node", {"node": "hours", "kind": "time"}),
        ("ivr.node", {"node": "after_hours", "kind": "voicemail"}),
        ("ivr.exit", {"kind": "voicemail", "target": "general"}),
        ("voicemail.greeting", {"box": "general"}),
        ("voicemail.recording", {"box": "general"}),
        ("voicemail.recorded", {"box": "general", "seconds": 5.0, "caller": "13800138000"}),
        ("call.ended", {"call_id": cid, "disposition": "voicemail", "ended_by": "caller", "talk_s": None,
                        "wait_s": None})]
    assert when(core, cid, "voicemail.recording", epoch) == [2.4]  # greeting 1 s, beep 0.4 s
    assert (rec["disposition"], rec["ended_by"], rec["queue"], rec["seat"]) == ("voicemail", "caller", None, None)
    assert rec["recording"] == f"voicemail/2026/10/01/{cid}.wav"
    assert caller.outcome == "abandoned" and caller.ended_at == pytest.approx(7.4)

    greeting = beep()  # the fixture's prompts are the stand-in for speech
    expected = np.zeros(at(7.4, arrived), np.int16)
    expected[:greeting.size] = greeting
    expected[greeting.size:greeting.size + 3200] = beep_tone()
    np.testing.assert_array_equal(caller.heard_audio(), alaw(expected))
    tone = caller.heard_audio()[None, greeting.size:greeting.size + 3200].astype(np.float64)
    assert tone_level_dbm0(tone, 1000.0)[0] == pytest.approx(-12.0, abs=0.1)  # the beep: 1 kHz

    codes, rate = read_alaw_wav(core.data.root / rec["recording"])
    assert rate == 8000 and codes.shape == (1, 5 * 8000)
    message = np.zeros(5 * 8000, np.int16)
    key = dtmf_generate("5", level_dbm0=-10.0)
    message[at(4.0, 2.4):at(4.0, 2.4) + key.size] = key  # pressed 3 s after the answer, 1.6 s into the message
    np.testing.assert_array_equal(alaw_decode(codes[0]), alaw(message))


@pytest.mark.parametrize("day_time, branch", [
    ((2026, 10, 1, 10, 0), "closed"),  # Thursday, National Day
    ((2026, 10, 9, 10, 0), "open"),  # Friday
    ((2026, 10, 9, 12, 30), "closed"),  # Friday lunch
    ((2026, 10, 10, 10, 0), "open"),  # Saturday worked instead of a holiday: Monday's hours
    ((2026, 10, 10, 12, 30), "closed"),  # ... Monday's lunch too
    ((2026, 10, 11, 10, 0), "closed"),  # Sunday
    ((2026, 10, 12, 8, 59), "closed"), ((2026, 10, 12, 9, 0), "open"),  # Monday's opening
    ((2026, 10, 12, 17, 59), "open"), ((2026, 10, 12, 18, 0), "closed"),  # ... and closing
    ((2026, 9, 27, 13, 30), "open"),  # a Sunday worked before the holiday: Monday's afternoon
])
def test_business_hours_holidays_and_a_working_saturday(make_core, day_time, branch):
    """Without media: the time node decides on the box's local time (Asia/Shanghai) of the call's start.
    Open goes to the queue and seat 1; closed to voicemail, where the caller ends the message with #."""
    epoch = local(*day_time) - 1.0
    core, card = make_core(HOURS_FLOW, epoch=epoch)
    card.add_caller(CallerScript("13800138000", 1.0, digits="", digit_delay_s=0.0, presses=((4.0, "#"),)))
    core.runtime.run_until(30.0)
    rec = calls(core)["13800138000"]
    cid = rec["call_id"]
    assert dt.datetime.fromtimestamp(rec["start_ts"], TZ).timetuple()[:5] == day_time
    if branch == "open":
        assert visits(core, cid) == ["hours", "sales"]
        assert (rec["disposition"], rec["seat"], rec["talk_s"]) == ("answered", 1, pytest.approx(10.0))
        return
    assert visits(core, cid) == ["hours", "after_hours"]
    assert journal(core, cid, "voicemail.recorded") == [
        ("voicemail.recorded", {"box": "general", "seconds": 2.6, "caller": "13800138000"})]  # # at 4 s
    assert (rec["disposition"], rec["ended_by"], rec["seat"], rec["recording"]) == \
        ("voicemail", "caller", None, None)  # no audio without media


# --- transfer to a number -----------------------------------------------------------------------

DUTY, ENGINEER = "13900001111", "13900002222"
TRANSFER_FLOW = {"start": "menu", "nodes": {
    "menu": {"kind": "menu", "text": "值班经理请按1，工程师请按2。", "choices": {"1": "duty", "2": "engineer"},
             "on_fail": "duty"},
    "duty": {"kind": "transfer", "to": f"number:{DUTY}", "text": "正在为您转接值班电话，请稍候。"},
    "engineer": {"kind": "transfer", "to": f"number:{ENGINEER}"},
}}
NETWORK = {DUTY: OutboundScript("answered", setup_s=0.5, ring_s=3.0, talk_s=None, speech=True, level_dbm0=-18.0),
           ENGINEER: OutboundScript("busy", setup_s=0.5, tone_s=3.0)}


def test_transfer_to_a_number_dials_a_second_channel_and_bridges_caller_and_far_end(make_core):
    """The caller presses 1: told so (1 s), then hears ringback while channel 2 dials the duty phone; once it
    answers both hear each other (the caller's tone at the far end, the far end's voice at the caller), the
    call is recorded, and the caller hanging up clears both channels."""
    core, card = make_core(TRANSFER_FLOW, media=True, network=NETWORK)
    far = []  # what the box sends to the far end (channel 2)
    send = card.write
    card.write = lambda frames: (far.append(alaw_decode(frames[1])), send(frames))[1]
    arrived = 1.0
    caller = card.add_caller(CallerScript("13800138000", arrived, digits="1", digit_delay_s=0.5, talk_s=8.0,
                                          tone_hz=1000.0, tone_dbm0=-10.0, record=True))
    core.runtime.run_until(20.0)
    rec = calls(core)["13800138000"]
    cid = rec["call_id"]
    assert visits(core, cid) == ["menu", "duty"]
    assert journal(core, cid, "ivr.exit", "call.transfer", "call.leg_alerting", "call.transferred",
                   "call.ended") == [
        ("ivr.exit", {"kind": "transfer", "target": f"number:{DUTY}"}),
        ("call.transfer", {"to": DUTY, "port": 1}),
        ("call.leg_alerting", {"port": 1}),
        ("call.transferred", {"port": 1, "to": f"number:{DUTY}"}),
        ("call.ended", {"call_id": cid, "disposition": "transferred", "ended_by": "caller", "talk_s": 8.0,
                        "wait_s": None})]
    [dialled] = when(core, cid, "call.transfer", TUESDAY_10AM)
    [pressed] = when(core, cid, "ivr.digit", TUESDAY_10AM)
    assert dialled == pytest.approx(pressed + 1.0)  # after the node's text
    [connected] = when(core, cid, "call.transferred", TUESDAY_10AM)
    assert connected == pytest.approx(dialled + 0.5 + 3.0)
    assert (rec["disposition"], rec["ended_by"], rec["end_ts"] - TUESDAY_10AM) == \
        ("transferred", "caller", pytest.approx(connected + 8.0))
    [leg] = card.outbound
    assert (leg.port, leg.number, leg.state, leg.cause, leg.ended_at) == (1, DUTY, "ended", 16,
                                                                         pytest.approx(connected + 8.0))

    heard = caller.heard_audio().astype(np.float64)
    ringback = heard[None, at(dialled, arrived):at(dialled + 1.0, arrived)]  # China: 450 Hz, 1 s on 4 s off
    assert tone_level_dbm0(ringback, 450.0)[0] == pytest.approx(-10.0, abs=0.3)
    talk = heard[None, at(connected + 0.5, arrived):at(connected + 7.5, arrived)]
    assert rms_dbm0(talk)[0] == pytest.approx(-18.0, abs=0.5)  # the far end's voice
    assert tone_level_dbm0(talk, 1000.0)[0] < -50  # and no echo of the caller's own tone
    sent = np.concatenate(far).astype(np.float64)  # from the first tick, at 0.02
    assert np.abs(sent[:at(connected, TICK)]).max() <= 8  # nothing before the answer
    assert tone_level_dbm0(sent[None, at(connected + 0.5, TICK):at(connected + 7.5, TICK)], 1000.0)[0] == \
        pytest.approx(-10.0, abs=0.3)
    codes, _ = read_alaw_wav(core.data.root / rec["recording"])
    assert codes.shape[1] / 8000 == pytest.approx(8.0, abs=TICK)  # from the answer to the end


def test_a_busy_number_gives_the_caller_goodbye_and_the_call_fails(make_core):
    core, card = make_core(TRANSFER_FLOW, media=True, network=NETWORK)
    arrived = 1.0
    caller = card.add_caller(CallerScript("13800138000", arrived, digits="2", digit_delay_s=0.5, record=True))
    core.runtime.run_until(20.0)
    rec = calls(core)["13800138000"]
    cid = rec["call_id"]
    assert visits(core, cid) == ["menu", "engineer"]
    assert journal(core, cid, "call.transfer", "call.leg_alerting", "call.transferred", "call.transfer_failed",
                   "call.ended") == [
        ("call.transfer", {"to": ENGINEER, "port": 1}),
        ("call.transfer_failed", {"cause": 17}),  # user busy
        ("call.ended", {"call_id": cid, "disposition": "failed", "ended_by": "system", "talk_s": None,
                        "wait_s": None, "reason": "cause 17"})]
    [dialled] = when(core, cid, "call.transfer", TUESDAY_10AM)
    [failed] = when(core, cid, "call.transfer_failed", TUESDAY_10AM)
    assert failed == pytest.approx(dialled + 0.5 + 3.0)  # the exchange's busy tone, then its clearing
    assert (rec["disposition"], rec["ended_by"], rec["recording"], rec["end_ts"] - TUESDAY_10AM) == \
        ("failed", "system", None, pytest.approx(failed + 1.0))
    assert caller.outcome == "cleared"
    heard = caller.heard_audio()
    ringback = heard[None, at(dialled, arrived):at(dialled + 1.0, arrived)].astype(np.float64)
    assert tone_level_dbm0(ringback, 450.0)[0] == pytest.approx(-10.0, abs=0.3)
    goodbye = beep()  # the fixture's prompts are the stand-in for speech
    assert heard.size == at(failed, arrived) + goodbye.size  # goodbye whole, then cleared
    np.testing.assert_array_equal(heard[at(failed, arrived):], alaw(goodbye))


# --- transfer to a seat -------------------------------------------------------------------------

def test_transfer_to_a_seat_rings_that_seat_only_even_when_others_are_free(make_core):
    """Two callers ask for seat 2 and one for extension 803 (seat 3). Seat 2 takes the first; the second
    waits for seat 2 although seats 1 and 3 are free; 803 rings seat 3 at once. Seat 1 never rings."""
    flow = {"start": "main", "nodes": {
        "main": {"kind": "menu", "text": "销售请按1，张工请按2，李工请按3。",
                 "choices": {"1": "sales", "2": "zhang", "3": "li"}, "on_fail": "sales"},
        "sales": {"kind": "queue", "queue": "default"},
        "zhang": {"kind": "transfer", "to": "seat:2"},
        "li": {"kind": "transfer", "to": "ext:803"}}}
    core, card = make_core(flow, agent=AgentScript(ring_delay_s=2.0, talk_s=10.0))
    for number, arrive, key in [("13800000001", 1.0, "2"), ("13800000002", 3.0, "2"), ("13800000003", 5.0, "3")]:
        card.add_caller(CallerScript(number, arrive, digits=key, digit_delay_s=1.0))
    core.runtime.run_until(40.0)
    recs = calls(core)
    first, second, third = (recs[n]["call_id"] for n in ("13800000001", "13800000002", "13800000003"))
    assert journal(core, first, "ivr.exit", "call.queued", "call.ringing") == [
        ("ivr.exit", {"kind": "transfer", "target": "seat:2"}),
        ("call.queued", {"call_id": first, "position": 1, "queue": "default", "seat": 2}),
        ("call.ringing", {"call_id": first, "seat": 2, "queue": "default"})]
    assert journal(core, third, "ivr.exit", "call.ringing") == [
        ("ivr.exit", {"kind": "transfer", "target": "ext:803"}),
        ("call.ringing", {"call_id": third, "seat": 3, "queue": "default"})]
    assert journal(core, second, "call.ringing") == [("call.ringing", {"call_id": second, "seat": 2,
                                                                       "queue": "default"})]
    assert when(core, second, "call.ringing", TUESDAY_10AM) == when(core, first, "call.ended", TUESDAY_10AM)
    assert {n: (r["disposition"], r["seat"], r["wait_s"]) for n, r in recs.items()} == {
        "13800000001": ("answered", 2, pytest.approx(2.0)),
        "13800000002": ("answered", 2, pytest.approx(14.0 - 4.0 + 2.0)),  # seat 2 free at 14 s
        "13800000003": ("answered", 3, pytest.approx(2.0))}
    assert [card.phones[4 + i].rings for i in range(3)] == [0, 2, 1]  # seats 1-3 on FXS ports 4-6


def test_hash_during_the_greeting_leaves_no_message(make_core):
    """# ends a message being recorded; pressed during the greeting there is no message yet, so a caller who
    then hangs up (during the greeting or the beep) abandoned the call like one who just hangs up.
    Fails today: callcontrol ``_digit`` ends any call in state voicemail on # with disposition voicemail."""
    core, card = make_core(HOURS_FLOW, epoch=local(2026, 10, 1, 10, 0) - 1.0)
    card.add_caller(CallerScript("13800138000", 1.0, digits="", digit_delay_s=0.0, patience_s=0.8,
                                 presses=((0.5, "#"),)))
    core.runtime.run_until(20.0)
    rec = calls(core)["13800138000"]
    assert journal(core, rec["call_id"], "voicemail.recording", "voicemail.recorded") == []
    assert (rec["disposition"], rec["ended_by"], rec["end_ts"] - rec["start_ts"]) == \
        ("abandoned", "caller", pytest.approx(0.8))
