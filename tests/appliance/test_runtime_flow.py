"""The runtime's side of IVR flows: HTTP lookups against a real server, spoken answers by espeak-ng, off the tick."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time

import numpy as np
import pytest

from appliance.actions import Answer, Hangup, HttpResult, Play, PromptDone, StopPlay
from appliance.clock import RealClock, VirtualClock
from appliance.flowrun import HttpLookup, Say
from appliance.lookup import LookupWorker
from appliance.player import PromptPlayer
from appliance.prompts import PromptLibrary, beep
from appliance.runtime import TICK_S, Runtime
from appliance.speech import SpeechWorker
from drivers.base import Digit, Seized
from drivers.sim import SimCard
from drivers.sim.parties import CallerScript
from dsp.tones import sine, to_int16
from tests.appliance.servers import Answering, http_server
from tests.tools import require_tool

SLOW_S = 0.6  # how long /slow takes to answer
ANSWER = "您的订单已发货"
CHIME = to_int16(sine(1000.0, -10.0, 800))  # a named prompt of 0.1 s


class Handler(Answering):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path == "/orders/2026113":
            self.answer("application/json", json.dumps({"status": "已发货", "eta": 2}, ensure_ascii=False).encode())
        elif self.path == "/orders/gbk":  # an older business system: JSON in GBK
            self.answer("application/json; charset=gbk", '{"status": "已签收"}'.encode("gbk"))
        elif self.path == "/slow":
            time.sleep(SLOW_S)
            self.answer("text/plain", b"late")
        else:
            self.send_error(500)


@pytest.fixture(scope="module")
def server():
    with http_server(Handler) as url:
        yield url


@pytest.fixture
def lookups():
    worker = LookupWorker(threads=4)
    yield worker
    worker.close()


class Script:
    """A stand-in for the call logic: actions at set times (``at``), answers to events (``on``), every event kept."""

    def __init__(self, at=(), on=None):
        self.plan = sorted(at, key=lambda p: p[0])
        self.on = on or (lambda ev, now: [])
        self.got = []  # (now, event)
        self.steps = []

    def handle(self, ev, now):
        self.got.append((now, ev))
        return self.on(ev, now)

    def advance(self, now):
        self.steps.append(now)
        out = []
        while self.plan and self.plan[0][0] <= now:
            out += self.plan.pop(0)[1]
        return out

    def next_deadline(self):
        return self.plan[0][0] if self.plan else None

    def seen(self, *kinds):
        return [(t, ev) for t, ev in self.got if isinstance(ev, kinds)]


def tick(k: int) -> float:
    """The time of tick ``k`` exactly as the virtual-time loop computes it."""
    return k * TICK_S


def runtime(logic, *, media=True, lookups=None, speech=None, clock=None, card=None, prompts=None):
    card = card or SimCard(2, 1, media=media)
    return Runtime(card, logic, clock or VirtualClock(0.0), PromptPlayer(len(card.ports), prompts or {}),
                   media=media, lookups=lookups, speech=speech)


# --- lookups --------------------------------------------------------------------------------------


def test_lookups_answer_the_logic_one_tick_later_in_virtual_time(server, lookups):
    """JSON, JSON in GBK, a 500 and an answer slower than its timeout: each an exact HttpResult at the next
    tick, in the order asked, although the threads finish in another order and the slow one takes real time."""
    logic = Script(at=[(tick(5), [HttpLookup("c1", f"{server}/orders/2026113", 2.0),
                                  HttpLookup("c2", f"{server}/slow", 0.3),
                                  HttpLookup("c3", f"{server}/orders/gbk", 2.0),
                                  HttpLookup("c4", f"{server}/boom", 2.0)])])
    rt = runtime(logic, lookups=lookups)
    rt.run_until(1.0)
    assert logic.seen(HttpResult) == [
        (tick(6), HttpResult("c1", True, {"status": "已发货", "eta": "2"})),
        (tick(6), HttpResult("c2", False, {"error": "TimeoutError: timed out"})),
        (tick(6), HttpResult("c3", True, {"status": "已签收"})),
        (tick(6), HttpResult("c4", False, {"error": "HTTP 500 Internal Server Error"})),
    ]


def test_event_mode_steps_for_an_outstanding_lookup_and_virtual_time_waits_for_it(server, lookups):
    """Without media, nothing else scheduled, the loop would jump to the end: it steps one tick after the
    question instead, and the answer (0.6 s of real time) is in by then."""
    logic = Script(at=[(100.0, [HttpLookup("c1", f"{server}/slow", 2.0)])])
    rt = runtime(logic, media=False, lookups=lookups)
    rt.run_until(3600.0)
    assert logic.seen(HttpResult) == [(100.0 + TICK_S, HttpResult("c1", True, {"text": "late"}))]
    assert logic.steps == [100.0, 100.0 + TICK_S]  # and no stepping once it is in


def test_without_a_lookup_worker_every_lookup_fails_at_the_next_step():
    logic = Script(at=[(tick(5), [HttpLookup("c1", "http://127.0.0.1:1/x", 2.0)])])
    runtime(logic).run_until(1.0)
    assert logic.seen(HttpResult) == [(tick(6), HttpResult("c1", False, {"error": "no lookup worker"}))]


def test_in_real_time_the_tick_goes_on_while_a_lookup_is_out(server, lookups):
    logic = Script(at=[(tick(5), [HttpLookup("c1", f"{server}/slow", 2.0)])])
    rt = runtime(logic, lookups=lookups, clock=RealClock())

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_realtime(stop))
        while not logic.seen(HttpResult) and rt.now < 5.0:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(main())
    [(answered, result)] = logic.seen(HttpResult)
    assert result == HttpResult("c1", True, {"text": "late"})
    assert answered >= tick(5) + SLOW_S - TICK_S
    # a tick that waited for the answer would be followed by the answer at once: here ticks ran meanwhile
    waiting = [t for t in logic.steps if tick(5) < t < answered]
    assert len(waiting) >= 0.5 * SLOW_S / TICK_S


# --- spoken answers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def espeak_library(tmp_path_factory):
    return PromptLibrary(tmp_path_factory.mktemp("speech"), espeak=require_tool("espeak-ng"), warn=pytest.fail)


def test_a_spoken_answer_is_heard_whole_by_the_caller_and_promptdone_comes_at_its_end(espeak_library):
    """A caller on the trunk is answered with a Say: what the card carried to the caller is exactly the
    espeak-ng rendering, from the tick after the Say, then silence; PromptDone within a tick of its end."""
    caller = CallerScript("13912345678", arrive_at=tick(5), digit_delay_s=1e6, record=True)

    def on(ev, now):
        if isinstance(ev, Seized):
            return [Answer(ev.port), Say(ev.port, ANSWER)]
        if isinstance(ev, PromptDone):
            return [Hangup(ev.port)]
        return []

    card = SimCard(2, 1)
    state = card.add_caller(caller)
    speech = SpeechWorker(functools.partial(espeak_library.render, voice="cmn"))
    try:
        logic = Script(on=on)
        runtime(logic, card=card, speech=speech).run_until(10.0)
    finally:
        speech.close()
    clip = espeak_library.render(ANSWER, "cmn")  # from the cache the worker filled
    n = clip.size
    assert 0.8 < n / 8000 < 5.0 and np.abs(clip).max() > 1000
    heard = state.heard_audio()
    np.testing.assert_array_equal(heard[160:160 + n], clip)
    assert np.abs(heard[:160]).max() <= 8 and np.abs(heard[160 + n:]).max(initial=0) <= 8  # A-law silence
    [(done, event)] = logic.seen(PromptDone)
    assert event == PromptDone(state.port)
    assert 0 <= done - (tick(6) + n / 8000) < TICK_S
    assert heard.size == round((done - tick(5)) / TICK_S) * 160  # nothing after the hang-up


def gated(render):
    """``render`` that waits for the test's go-ahead: a rendering still out when the port is stopped."""
    go = threading.Event()

    def slow(text):
        assert go.wait(10.0)
        return render(text)
    return slow, go


@pytest.mark.parametrize("stop", [StopPlay(0), Hangup(0), Play(0, "chime")], ids=["StopPlay", "Hangup", "Play"])
def test_a_say_stopped_before_its_rendering_is_in_is_never_played(espeak_library, stop):
    render, go = gated(functools.partial(espeak_library.render, voice="cmn"))
    speech = SpeechWorker(render)
    logic = Script(at=[(tick(5), [Say(0, ANSWER)]), (tick(8), [stop])])
    rt = runtime(logic, speech=speech, prompts={"chime": CHIME})
    sent = []
    try:
        for k in range(150):
            if k == 12:
                go.set()
                assert speech.wait(10.0)  # the rendering is in: the next step collects it
            rt.step(tick(k))
            sent.append(rt.tx[0].copy())
    finally:
        speech.close()
    sent = np.concatenate(sent)
    expected = np.zeros_like(sent)
    if isinstance(stop, Play):  # only the chime, from the tick the Play came, and its PromptDone
        expected[8 * 160:8 * 160 + CHIME.size] = CHIME
        assert logic.seen(PromptDone) == [(tick(13), PromptDone(0))]
    else:
        assert logic.seen(PromptDone) == []
    np.testing.assert_array_equal(sent, expected)
    assert rt.next_time() == tick(150)  # nothing left outstanding


def fails(text):
    raise RuntimeError("espeak-ng exited with 1")


@pytest.mark.parametrize("worker, say, warning", [
    ("raises", "x", "speech on port 1 failed (RuntimeError: espeak-ng exited with 1)"),
    ("empty", "  ", "speech on port 1 failed (ValueError: prompt text must be a non-empty string"),
    (None, "x", "no speech worker: port 1 skips saying 'x'"),
])
def test_a_failed_rendering_gives_promptdone_at_the_next_tick(tmp_path, caplog, worker, say, warning):
    """espeak-ng failing, a flow's text filled with empty fields (the library refuses it), no worker at all:
    the caller is not left waiting in silence; the flow goes on a tick later."""
    speech = {"raises": lambda: SpeechWorker(fails),
              "empty": lambda: SpeechWorker(PromptLibrary(tmp_path, espeak=None, warn=pytest.fail).render),
              None: lambda: None}[worker]()
    logic = Script(at=[(tick(5), [Say(1, say)])])
    try:
        with caplog.at_level(logging.WARNING):
            rt = runtime(logic, speech=speech)
            rt.run_until(1.0)
    finally:
        if speech is not None:
            speech.close()
    assert logic.seen(PromptDone) == [(tick(6), PromptDone(1))]
    assert warning in caplog.text
    assert not rt.tx[1].any()


def test_event_mode_plays_a_spoken_answer_by_its_deadline(tmp_path):
    """Without media the clip is not mixed but lasts as long: PromptDone a tick plus the beep's 1 s later."""
    speech = SpeechWorker(PromptLibrary(tmp_path, espeak=None, warn=lambda m: None).render)
    logic = Script(at=[(100.0, [Say(0, ANSWER)])])
    try:
        runtime(logic, media=False, speech=speech).run_until(3600.0)
    finally:
        speech.close()
    [(done, event)] = logic.seen(PromptDone)
    assert event == PromptDone(0) and done == pytest.approx(100.0 + TICK_S + beep().size / 8000, abs=1e-9)


# --- determinism ----------------------------------------------------------------------------------


def flow(server):
    """Like a flow's http node: look the order up, say the answer, hang up when it has been said."""
    def on(ev, now):
        if isinstance(ev, Seized):
            return [Answer(ev.port), HttpLookup(f"call-{ev.port}", f"{server}/orders/2026113", 2.0)]
        if isinstance(ev, HttpResult):
            port = int(ev.call_id.removeprefix("call-"))
            return [Say(port, f"订单{ev.fields['status']}")]
        if isinstance(ev, PromptDone):
            return [Hangup(ev.port)]
        return []
    return on


@pytest.mark.parametrize("threads", [0, 3])
def test_virtual_time_gives_the_same_timeline_with_or_without_threads(server, tmp_path, threads):
    """Three callers at once through lookup, speech and hang-up: events, times and what they heard are those
    of the inline workers (threads=0), whatever order the threads finish in."""
    def run(n_threads):
        card = SimCard(3, 0)
        states = [card.add_caller(CallerScript(f"1391234567{i}", arrive_at=tick(5), digit_delay_s=1e6,
                                               record=True)) for i in range(3)]
        library = PromptLibrary(tmp_path, espeak=None, warn=lambda m: None)
        lookups, speech = LookupWorker(n_threads), SpeechWorker(library.render, n_threads)
        logic = Script(on=flow(server))
        try:
            runtime(logic, card=card, lookups=lookups, speech=speech).run_until(3.0)
        finally:
            lookups.close()
            speech.close()
        return logic.got, [s.heard_audio() for s in states]

    got, heard = run(threads)
    want, want_heard = run(0)
    assert got == want
    assert [t for t, ev in got if isinstance(ev, HttpResult)] == [tick(6)] * 3
    assert [t for t, ev in got if isinstance(ev, PromptDone)] == [tick(57)] * 3  # Say at 6, collected at 7, 1 s
    for h, w in zip(heard, want_heard):
        np.testing.assert_array_equal(h, w)


def test_inline_workers_work_in_submit_and_hand_out_at_the_next_results(server):
    said = []
    speech = SpeechWorker(lambda text: said.append(text) or np.full(3, len(said), np.int16), threads=0)
    speech.submit("k1", "一")
    speech.submit("k2", "二")
    assert said == ["一", "二"]  # rendered already, in submit
    [(k1, x1, e1), (k2, x2, e2)] = speech.results()
    assert (k1, x1.tolist(), e1, k2, x2.tolist(), e2) == ("k1", [1, 1, 1], None, "k2", [2, 2, 2], None)
    assert speech.results() == [] and speech.wait(0.0)
    speech = SpeechWorker(lambda text: np.zeros((2, 3), np.int16), threads=0)
    speech.submit("k", "x")
    assert speech.results() == [("k", None, "render gave int16 (2, 3), expected int16 samples of shape (n,)")]
    lookups = LookupWorker(threads=0)
    lookups.submit("c1", f"{server}/orders/gbk", 2.0)
    assert lookups.results() == [("c1", True, {"status": "已签收"})]
    with pytest.raises(ValueError, match=r"threads -1 must be an integer >= 0"):
        LookupWorker(threads=-1)


def test_a_prompt_missing_from_the_set_is_logged_and_skipped_not_raised_into_the_tick(caplog):
    logic = Script(at=[(tick(5), [Play(1, "nope")])])
    with caplog.at_level(logging.ERROR):
        rt = runtime(logic, prompts={"welcome": np.ones(800, np.int16)})
        rt.run_until(0.5)
    assert logic.seen(PromptDone) == [(tick(6), PromptDone(1))]
    assert "prompt 'nope' is not loaded; loaded: welcome; port 1 plays nothing" in caplog.text


def test_a_prompt_ending_in_the_step_where_a_key_starts_the_next_is_not_reported_for_the_next():
    """The welcome ends in the same step as a key that starts the voicemail greeting: the logic must not hear
    "prompt done" for the greeting just begun (it would skip it)."""
    card = SimCard(2, 1, media=False)
    logic = Script(at=[(0.1, [Play(1, "a")])], on=lambda ev, now: [Play(1, "b")] if isinstance(ev, Digit) else [])
    rt = runtime(logic, media=False, card=card, prompts={"a": np.ones(3200, np.int16), "b": np.ones(3200, np.int16)})
    card.phone_dials(2, "5")  # the key arrives 0.5 s from now: when "a" (0.4 s from 0.1) ends
    rt.run_until(2.0)
    assert [(round(t, 6), ev) for t, ev in logic.seen(Digit, PromptDone)] == [(0.5, Digit(2, "5")),
                                                                              (0.9, PromptDone(1))]
