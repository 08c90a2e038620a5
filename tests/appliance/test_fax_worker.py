"""Where a fax session runs (``appliance.faxworker``): inline, in a thread, in a process. Fed the same line audio,
a worker's session produces exactly the inline session's blocks, ``SPARE`` + 0 blocks later on the line, and the
same result; a session that cannot be made fails on the caller's side; a bad mode is named."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import ApplianceError, DspError
from appliance.faxworker import SPARE, InlineFax, ProcessFax, ThreadFax, open_fax, stopped_result
from dsp.fax.t30 import FaxSession
from dsp.fax.tiff import STANDARD_LPI, FaxPage
from dsp.g711 import alaw_decode, alaw_encode
from tests.dsp.faxpages import text_page

PAGE = FaxPage(text_page(11, rows=40), y_resolution=STANDARD_LPI)


@pytest.fixture(scope="module")
def line_in() -> np.ndarray:
    """A sender's line audio (as heard through A-law) against an inline receiver, until a second after the
    receiver's end; shape (blocks, 160), int16."""
    tx = FaxSession(calling=True, pages=[PAGE], modems=("v27ter",))
    rx = FaxSession(calling=False, modems=("v27ter",))
    out = []
    while not rx.done:
        xa, xb = tx.transmit(), rx.transmit()
        heard = alaw_decode(alaw_encode(xa))
        rx.receive(heard)
        tx.receive(alaw_decode(alaw_encode(xb)))
        out.append(heard)
        assert len(out) < 4000, rx.log
    return np.stack(out + [np.zeros(160, np.int16)] * 50)


def drive(runner, blocks: np.ndarray) -> tuple[list[np.ndarray], object]:
    out = []
    if hasattr(runner, "sync"):
        assert runner.sync(30.0)
    for x in blocks:
        out.append(runner.exchange(x).copy())
        if hasattr(runner, "sync"):
            runner.sync(30.0)  # the test waits for the worker; the tick never does
        if runner.result is not None:
            break
    result = runner.result
    runner.close()
    return out, result


@pytest.mark.parametrize("kind", [ThreadFax, ProcessFax])
def test_a_worker_sends_exactly_the_inline_blocks_later_and_gets_the_same_page(line_in, kind):
    inline, want = drive(InlineFax(calling=False, modems=("v27ter",), ident="4008001234"), line_in)
    piped, got = drive(kind(calling=False, modems=("v27ter",), ident="4008001234"), line_in)
    assert want.ok and want.pages == 1 and np.array_equal(want.received[0].pixels, PAGE.pixels)
    assert got.ok and got.pages == 1 and np.array_equal(got.received[0].pixels, PAGE.pixels)
    assert (got.bit_rate, got.compression, got.seconds) == (want.bit_rate, want.compression, want.seconds)
    assert not np.any(np.stack(piped[:SPARE]))
    n = min(len(inline), len(piped) - SPARE)
    assert n > 500 and np.array_equal(np.stack(piped[SPARE:SPARE + n]), np.stack(inline[:n]))
    assert np.any(np.stack(inline[:n]))  # CED, frames and the rest really went


def test_the_inline_runner_is_transmit_then_receive():
    a = InlineFax(calling=True, pages=[PAGE])
    b = FaxSession(calling=True, pages=[PAGE])
    for _ in range(100):  # CNG: 0.5 s on, then silence
        x = np.zeros(160, np.int16)
        assert np.array_equal(a.exchange(x), b.transmit())
        b.receive(x)
    assert a.progress == b.progress == (1, 1) and a.result is None


@pytest.mark.parametrize("mode", ["inline", "thread", "process"])
def test_a_session_that_cannot_be_made_fails_on_the_callers_side(mode):
    with pytest.raises(DspError, match="compression must be 'mh' or 'mr', got 'g4'"):
        open_fax(mode, calling=True, pages=[PAGE], compression="g4")


def test_an_unknown_mode_is_named():
    with pytest.raises(ApplianceError, match="fax mode 'fork' is not one of inline, thread, process"):
        open_fax("fork", calling=False)


def test_a_session_stopped_from_outside_has_a_failed_result_with_the_cause():
    r = stopped_result("the line was cleared", (3, 4))
    assert (r.ok, r.cause, r.pages, r.bit_rate, r.received) == (False, "the line was cleared", 2, None, [])
    assert stopped_result("x", (2, None)).pages == 0  # a receiver's pages come only from its own result


@pytest.mark.parametrize("kind,prefix", [(InlineFax, "the fax session failed"), (ThreadFax, "the fax worker failed"),
                                         (ProcessFax, "the fax worker failed")])
def test_a_session_that_raises_fails_its_fax_and_not_the_tick(kind, prefix):
    runner = kind(calling=False)
    if hasattr(runner, "sync"):
        assert runner.sync(30.0)
    bad = np.zeros(80, np.int16)  # half a block: the session refuses it
    for _ in range(2 + SPARE):
        assert not np.any(runner.exchange(bad))
        if hasattr(runner, "sync"):
            runner.sync(30.0)
        if runner.result is not None:
            break
    runner.exchange(bad)
    r = runner.result
    assert not r.ok and r.cause == f"{prefix}: DspError: FaxSession.receive: expected shape (160,), got (80,)"
    runner.close()
