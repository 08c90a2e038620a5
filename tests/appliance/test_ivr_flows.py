"""IVR flows end to end: the whole core on the simulated card in virtual time, one scenario per node kind.

Each test gives the config an ``ivr.flow``, lets scripted callers press keys (as DTMF
audio with media, as events without), and asserts the journal (node visits in order,
digits, lookups, the exit, the call events), the call record and, where audio matters,
exactly what the caller heard. Exits to voicemail, a number and a seat:
``test_ivr_exits.py``.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import zoneinfo

import numpy as np
import pytest

from appliance.config import validate
from appliance.core import render_prompts
from appliance.datadir import DataDir
from appliance.errors import ConfigError
from appliance.flowrun import text_prompt
from tests.appliance.servers import Answering, http_server
from tests.appliance.simcore import cores
from appliance.prompts import PromptLibrary
from drivers.sim import AgentScript, CallerScript, SimCard
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import tone_level_dbm0
from dsp.tones import sine, to_int16

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
TICK = 0.02
ANSWER = "您的订单已发货，预计2天送达。"  # the lookup's say, filled with the answer's fields


def local(*when: int) -> float:
    """Epoch seconds of a wall-clock time in Shanghai."""
    return dt.datetime(*when, tzinfo=TZ).timestamp()


TUESDAY_10AM = local(2026, 12, 1, 10, 0)  # a working day, within business hours


# --- the business system -----------------------------------------------------------------------

class Orders(Answering):
    ANSWERS = {"2026113": {"status": "已发货", "eta": 2}, "2026999": {"status": "lost"},
               "2026113000": {"status": "已签收", "eta": 0}}
    asked: list[str] = []

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        Orders.asked.append(self.path)
        order = self.path.partition("?")[0].removeprefix("/orders/")
        if order not in self.ANSWERS:
            self.send_error(500)
            return
        self.answer("application/json", json.dumps(self.ANSWERS[order], ensure_ascii=False).encode())


@pytest.fixture(scope="module")
def crm():
    with http_server(Orders) as url:
        yield url


@pytest.fixture
def asked(crm):
    Orders.asked.clear()
    return Orders.asked


def order_flow(url: str) -> dict:
    return {"start": "welcome", "nodes": {
        "welcome": {"kind": "menu", "text": "欢迎致电。查询订单请按1，人工服务请按0。",
                    "choices": {"1": "order_no", "0": "sales"}, "timeout_s": 4, "retries": 1, "invalid": "invalid",
                    "on_fail": "bye"},
        "order_no": {"kind": "collect", "text": "请输入订单号，以井号键结束。", "var": "order", "min": 6, "max": 10,
                     "terminator": "#", "pattern": "^20[0-9]+$", "timeout_s": 4, "retries": 2, "next": "tag",
                     "on_fail": "sales"},
        "tag": {"kind": "set", "var": "source", "value": "ivr-{called}", "next": "lookup"},
        "lookup": {"kind": "http", "url": url + "/orders/{order}?caller={caller}&from={source}", "timeout_s": 2,
                   "say": "您的订单{status}，预计{eta}天送达。", "cases": [{"if": {"status": "lost"}, "next": "sorry"}],
                   "next": "sales", "on_error": "sales"},
        "sorry": {"kind": "play", "text": "很抱歉，您的包裹出现异常，正在为您转接专员。", "next": "expert"},
        "expert": {"kind": "transfer", "to": "seat:3"},
        "sales": {"kind": "queue", "queue": "default", "text": "正在为您转接人工服务。"},
        "bye": {"kind": "hangup", "prompt": "goodbye"},
    }}


# --- the box -----------------------------------------------------------------------------------

@pytest.fixture
def make_core(tmp_path):
    """Cores on a 4-channel sim card with 3 seats, in virtual time from ``epoch``; closed after the test.

    ``prompts`` replaces rendered prompts by name (each must have been rendered); prompts
    are beeps (no espeak-ng) so the call path does not wait for speech at start.
    """
    with cores() as new_core:
        made = itertools.count()

        def make(flow, *, epoch=TUESDAY_10AM, media=False, agent=None, network=None, prompts=None, **cfg_updates):
            data = DataDir.open(tmp_path / f"data{next(made)}", create=True)
            cfg = validate({"card": {"trunk_channels": 4, "seats": 3}, "ivr": {"flow": flow}, **cfg_updates})
            card = SimCard(4, 3, agent=agent or AgentScript(ring_delay_s=2.0, talk_s=10.0), media=media, seed=1,
                           network=network)
            return new_core(data, cfg, card, epoch=epoch, media=media, prompts=prompts), card

        yield make


def calls(core) -> dict[str, dict]:
    """The call records by calling number."""
    core.settle()
    return {r["caller"]: r for r in core.journal.calls()}


def journal(core, call_id: str, *types: str) -> list[tuple]:
    """(type, data) of the call's events, only ``types`` if given."""
    return [(e["type"], e["data"]) for e in core.journal.events(call_id) if not types or e["type"] in types]


def when(core, call_id: str, type_: str, epoch: float) -> list[float]:
    """Times (virtual seconds) of the call's events of one type."""
    return [round(e["ts"] - epoch, 3) for e in core.journal.events(call_id) if e["type"] == type_]


def visits(core, call_id: str) -> list[str]:
    return [d["node"] for t, d in journal(core, call_id, "ivr.node")]


def alaw(x: np.ndarray) -> np.ndarray:
    """``x`` as the caller hears it after the trunk's A-law coding."""
    return alaw_decode(alaw_encode(np.asarray(x, np.int16)))


def at(t: float, arrived: float) -> int:
    """Index in a caller's heard audio of the tick at ``t`` (the caller arrived at ``arrived``)."""
    return round((t - arrived) / TICK) * 160


def tone(hz: float, seconds: float) -> np.ndarray:
    return alaw(to_int16(sine(hz, -16.0, round(seconds * 8000))))


# --- menu, collect, lookup, spoken answer, queue ------------------------------------------------

def test_menu_collect_lookup_spoken_answer_then_the_queue_and_an_agent(make_core, crm, asked):
    """The caller presses 1 during the welcome, types the order number ended by #; the business system is
    asked with the caller's number and the order; its answer is spoken (exactly the TTS rendering) and the
    caller goes to the queue, where seat 1 answers."""
    core, card = make_core(order_flow(crm), media=True,
                           agent=AgentScript(ring_delay_s=2.0, talk_s=10.0, tone_hz=1500.0, tone_dbm0=-13.0))
    arrived = 1.0
    caller = card.add_caller(CallerScript("13800138000", arrived, digits="1", digit_delay_s=0.5,
                                          presses=((2.5, "2026113#"),), record=True))
    core.runtime.run_until(30.0)
    rec = calls(core)["13800138000"]
    cid = rec["call_id"]
    assert visits(core, cid) == ["welcome", "order_no", "tag", "lookup", "sales"]
    assert [d["digit"] for t, d in journal(core, cid, "ivr.digit")] == list("12026113#")
    assert [d["node"] for t, d in journal(core, cid, "ivr.digit")] == ["welcome"] + ["order_no"] * 8
    assert asked == ["/orders/2026113?caller=13800138000&from=ivr-4008001234"]
    assert journal(core, cid, "ivr.http", "ivr.exit", "ivr.fail") == [
        ("ivr.http", {"node": "lookup", "ok": True, "fields": {"status": "已发货", "eta": "2"}}),
        ("ivr.exit", {"kind": "queue", "target": "default"}),
    ]
    assert [t for t, d in journal(core, cid) if not t.startswith("ivr.")] == [
        "call.offered", "call.queued", "call.ringing", "call.answered", "call.ended"]
    assert (rec["disposition"], rec["ended_by"], rec["queue"], rec["seat"], rec["wait_s"], rec["talk_s"]) == \
        ("answered", "agent", "default", 1, pytest.approx(2.0), pytest.approx(10.0))
    assert rec["recording"].startswith("recordings/")

    # the answer, as espeak-ng (or its beep stand-in) renders it: from the tick after the lookup's answer
    [answered] = when(core, cid, "ivr.http", TUESDAY_10AM)
    speech = PromptLibrary(core.data.prompts, level_dbm0=core.cfg["ivr"]["prompt_level_dbm0"]).render(ANSWER)
    assert speech.size >= 8000  # a few seconds of espeak-ng, or its 1 s beep stand-in
    heard = caller.heard_audio()
    start = at(answered + TICK, arrived)
    np.testing.assert_array_equal(heard[start:start + speech.size], speech)
    assert np.abs(heard[start - 160:start]).max() <= 8  # silence while the lookup was out
    [queued] = when(core, cid, "ivr.exit", TUESDAY_10AM)
    said = np.ceil((answered + TICK + speech.size / 8000) / TICK - 1e-6) * TICK  # its end, at a tick
    assert queued == pytest.approx(said + 1.0)  # then the queue node's text (1 s), then the queue
    talk = heard[None, at(rec["agent_answer_ts"] - TUESDAY_10AM, arrived):][:, 8000:-8000].astype(np.float64)
    assert tone_level_dbm0(talk, 1500.0)[0] == pytest.approx(-13.0, abs=0.3)  # the agent, connected


def test_lookup_cases_errors_and_bad_order_numbers_take_their_branches(make_core, crm, asked):
    """Without media (keys as events): a case of the answer leads to a spoken apology and seat 3; a failing
    business system to on_error (the queue); a number failing the pattern, then one too short, is asked
    again, then one longer than max is cut at max and looked up."""
    core, card = make_core(order_flow(crm))
    card.add_caller(CallerScript("13900000001", 1.0, digits="1", digit_delay_s=0.5, presses=((2.0, "2026999#"),)))
    card.add_caller(CallerScript("13900000002", 1.0, digits="1", digit_delay_s=0.5, presses=((2.0, "2026500#"),)))
    card.add_caller(CallerScript("13900000003", 1.0, digits="1", digit_delay_s=0.5,
                                 presses=((2.0, "99999999#"), (4.0, "2026#"), (6.0, "20261130009"))))
    core.runtime.run_until(40.0)
    recs = calls(core)
    lost, error, retried = (recs[n]["call_id"] for n in ("13900000001", "13900000002", "13900000003"))
    assert asked == [f"/orders/{order}?caller={caller}&from=ivr-4008001234" for order, caller in [
        ("2026999", "13900000001"), ("2026500", "13900000002"), ("2026113000", "13900000003")]]

    assert visits(core, lost) == ["welcome", "order_no", "tag", "lookup", "sorry", "expert"]
    assert journal(core, lost, "ivr.http", "ivr.exit", "call.ringing") == [
        ("ivr.http", {"node": "lookup", "ok": True, "fields": {"status": "lost"}}),
        ("ivr.exit", {"kind": "transfer", "target": "seat:3"}),
        ("call.ringing", {"call_id": lost, "seat": 3, "queue": "default"})]
    assert when(core, lost, "ivr.exit", TUESDAY_10AM) == [pytest.approx(3.0 + TICK + 1.0)]  # "sorry" (1 s) said

    assert visits(core, error) == ["welcome", "order_no", "tag", "lookup", "sales"]
    assert journal(core, error, "ivr.http") == [
        ("ivr.http", {"node": "lookup", "ok": False, "fields": {"error": "HTTP 500 Internal Server Error"}})]
    assert when(core, error, "ivr.exit", TUESDAY_10AM) == [pytest.approx(3.0 + TICK + 1.0)]  # "sales" said (1 s)

    assert visits(core, retried) == ["welcome", "order_no", "tag", "lookup", "sales"]
    assert journal(core, retried, "ivr.fail") == [
        ("ivr.fail", {"node": "order_no", "reason": "invalid", "count": 1}),  # 99999999: not ^20
        ("ivr.fail", {"node": "order_no", "reason": "invalid", "count": 2})]  # 2026: under min 6
    digits = [d["digit"] for t, d in journal(core, retried, "ivr.digit")]
    assert "".join(digits) == "1" + "99999999#" + "2026#" + "2026113000"  # the 11th key came too late to count
    assert when(core, retried, "ivr.http", TUESDAY_10AM) == [pytest.approx(7.0 + TICK)]  # asked at the 10th key
    assert {n: (r["disposition"], r["seat"]) for n, r in recs.items()} == {
        "13900000001": ("answered", 3), "13900000002": ("answered", 1), "13900000003": ("answered", 2)}


# --- play, retries, on_fail ---------------------------------------------------------------------

def test_a_wrong_key_and_silence_are_retried_then_on_fail_and_the_caller_hears_each_prompt(make_core):
    """play (a text, rendered as prompt flow:hello) -> menu; a wrong key hears 'invalid' then the menu again,
    silence the menu again, a third failure goes to on_fail, whose text is said before the call is cleared.
    The whole of what the caller hears is those prompts at those times, and silence."""
    flow = {"start": "hello", "nodes": {
        "hello": {"kind": "play", "text": "您好，这里是客服中心。", "next": "menu"},
        "menu": {"kind": "menu", "text": "人工服务请按1。", "choices": {"1": "sales"}, "timeout_s": 3, "retries": 2,
                 "invalid": "invalid", "on_fail": "bye"},
        "sales": {"kind": "queue", "queue": "default"},
        "bye": {"kind": "hangup", "text": "没有收到有效的按键，再见。"}}}
    name = {n: text_prompt(n, node["text"]) for n, node in flow["nodes"].items() if "text" in node}
    clips = {name["hello"]: tone(500.0, 0.6), name["menu"]: tone(600.0, 0.8), "invalid": tone(1100.0, 0.5),
             name["bye"]: tone(1300.0, 0.7)}
    core, card = make_core(flow, media=True, prompts=clips)
    arrived = 1.0
    caller = card.add_caller(CallerScript("13800138000", arrived, digits="7", digit_delay_s=2.0,
                                          presses=((8.0, "9"),), record=True))
    core.runtime.run_until(20.0)
    rec = calls(core)["13800138000"]
    cid = rec["call_id"]
    assert visits(core, cid) == ["hello", "menu", "bye"]
    assert journal(core, cid, "ivr.digit", "ivr.fail", "ivr.exit") == [
        ("ivr.digit", {"digit": "7", "node": "menu"}),
        ("ivr.fail", {"node": "menu", "reason": "invalid", "count": 1}),
        ("ivr.fail", {"node": "menu", "reason": "timeout", "count": 2}),
        ("ivr.digit", {"digit": "9", "node": "menu"}),
        ("ivr.fail", {"node": "menu", "reason": "invalid", "count": 3}),
        ("ivr.exit", {"kind": "hangup", "target": None})]
    t = dict(zip(["hello", "menu", "bye"], when(core, cid, "ivr.node", TUESDAY_10AM)))
    wrong, silence, third = when(core, cid, "ivr.fail", TUESDAY_10AM)
    assert (t["hello"], t["menu"]) == (1.0, 1.6)
    assert 3.0 + TICK <= wrong <= 3.0 + 3 * TICK  # the key's tone began at 3.0; detected within 2 frames
    assert silence == pytest.approx(wrong + 0.5 + 0.8 + 3.0)  # 'invalid', the menu, then 3 s of nothing
    assert t["bye"] == third and 9.0 + TICK <= third <= 9.0 + 3 * TICK
    assert (rec["disposition"], rec["ended_by"], rec["end_ts"] - TUESDAY_10AM) == \
        ("ivr", "system", pytest.approx(third + 0.7))

    expected = np.zeros(at(third + 0.7, arrived), np.int16)
    for start, prompt in [(t["hello"], name["hello"]), (t["menu"], name["menu"]), (wrong, "invalid"),
                          (wrong + 0.5, name["menu"]), (silence, name["menu"]), (third, name["bye"])]:
        expected[at(start, arrived):at(start, arrived) + clips[prompt].size] = clips[prompt]
    np.testing.assert_array_equal(caller.heard_audio(), alaw(expected))


# --- a changed flow ------------------------------------------------------------------------------

OLD = {"start": "main", "nodes": {
    "main": {"kind": "menu", "text": "人工服务请按1。", "choices": {"1": "sales"}, "timeout_s": 5, "on_fail": "bye"},
    "sales": {"kind": "queue", "queue": "default"},
    "bye": {"kind": "hangup", "prompt": "goodbye"}}}


def test_a_changed_flow_applies_to_new_calls_while_a_call_in_the_ivr_finishes_on_the_old_one(make_core):
    """The flow changes while the first caller is at the old menu: their 1 still leads to the queue; the
    next caller walks the new flow, where 1 says goodbye."""
    new = {"start": "closed", "nodes": {  # prompts already loaded: the welcome, then goodbye
        "closed": {"kind": "menu", "prompt": "welcome", "choices": {"1": "bye2"}, "timeout_s": 2, "retries": 0,
                   "on_fail": "bye2"},
        "bye2": {"kind": "hangup", "prompt": "goodbye"}}}
    core, card = make_core(copy.deepcopy(OLD))
    card.add_caller(CallerScript("13800000001", 1.0, digits="1", digit_delay_s=4.0))
    card.add_caller(CallerScript("13800000002", 3.0, digits="1", digit_delay_s=2.0))
    core.runtime.run_until(2.0)
    core.logic.set_flow(new)  # the first caller is in 'main' now
    core.runtime.run_until(30.0)
    recs = calls(core)
    old_call, new_call = recs["13800000001"]["call_id"], recs["13800000002"]["call_id"]
    assert visits(core, old_call) == ["main", "sales"]
    assert journal(core, old_call, "ivr.digit", "ivr.exit") == [
        ("ivr.digit", {"digit": "1", "node": "main"}), ("ivr.exit", {"kind": "queue", "target": "default"})]
    assert visits(core, new_call) == ["closed", "bye2"]
    assert journal(core, new_call, "ivr.digit", "ivr.exit") == [
        ("ivr.digit", {"digit": "1", "node": "closed"}), ("ivr.exit", {"kind": "hangup", "target": None})]
    assert (recs["13800000001"]["disposition"], recs["13800000001"]["seat"]) == ("answered", 1)
    assert (recs["13800000002"]["disposition"], recs["13800000002"]["end_ts"] - TUESDAY_10AM) == \
        ("ivr", pytest.approx(5.0 + 1.0))  # key at 5.0, goodbye (1 s), cleared


def test_a_changed_flow_with_a_new_text_is_spoken_to_new_calls(make_core):
    """A changed flow usually says something new: ``Core.set_flow`` renders its texts and loads them before
    new calls walk it."""
    new = {"start": "notice", "nodes": {
        "notice": {"kind": "play", "text": "系统维护中，请稍后再拨。", "next": "bye2"},
        "bye2": {"kind": "hangup", "prompt": "goodbye"}}}
    core, card = make_core(copy.deepcopy(OLD))
    card.add_caller(CallerScript("13800000002", 3.0, digits="", digit_delay_s=2.0))
    core.runtime.run_until(2.0)
    core.set_flow(new)
    core.runtime.run_until(30.0)
    rec = calls(core)["13800000002"]
    assert visits(core, rec["call_id"]) == ["notice", "bye2"]
    assert (rec["disposition"], rec["end_ts"] - TUESDAY_10AM) == ("ivr", pytest.approx(3.0 + 1.0 + 1.0))


# --- the configuration refuses a broken flow, naming the node -------------------------------------

def broken(change) -> dict:
    flow = order_flow("http://crm.example.cn")
    change(flow["nodes"])
    return flow


@pytest.mark.parametrize("change, message", [
    (lambda n: n["sales"].update(queue="vip"),
     "ivr.flow: node 'sales' field 'queue': 'queue:vip' names no queue; queues: default"),
    (lambda n: n["expert"].update(to="seat:4"),
     "ivr.flow: node 'expert' field 'to': 'seat:4' names no seat; seats: 1, 2, 3"),
    (lambda n: n["expert"].update(to="ext:809"),
     "ivr.flow: node 'expert' field 'to': 'ext:809' names no seat's extension; extensions: 801, 802, 803"),
    (lambda n: n["welcome"]["choices"].update({"2": "survey"}),
     "ivr.flow: node 'welcome' leads to 'survey', which is not a node"),
    (lambda n: n.update(orphan={"kind": "hangup", "prompt": "goodbye"}),
     "ivr.flow: node 'orphan' cannot be reached from the start 'welcome'"),
    (lambda n: (n["welcome"]["choices"].update({"9": "loop"}),
                n.update(loop={"kind": "menu", "text": "按1重听。", "choices": {"1": "loop"}, "on_fail": "loop"})),
     "ivr.flow: node 'loop' has no way out: no path from it reaches a queue, transfer, voicemail or hangup"),
])
def test_a_broken_flow_is_refused_naming_the_node(change, message):
    with pytest.raises(ConfigError) as err:
        validate({"card": {"seats": 3}, "ivr": {"flow": broken(change)}})
    assert str(err.value) == message


def test_a_prompt_neither_built_in_nor_imported_is_refused_naming_the_node(tmp_path):
    cfg = validate({"ivr": {"flow": broken(lambda n: n["sorry"].update(prompt="apology"))}})
    with pytest.raises(ConfigError, match=r"^ivr.flow: node 'sorry' field 'prompt': prompt 'apology' is neither "
                                          r"built in \(beep, blocked, .*\) nor imported$"):
        render_prompts(PromptLibrary(tmp_path, espeak=None, warn=lambda m: None), cfg)
