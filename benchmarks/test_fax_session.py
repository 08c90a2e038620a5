"""CPU cost of whole fax sessions (T.30, V.21 and the page modem, block by block), as a multiple of real time.

Two of our sessions exchange one standard page in-process, so the figure is the
cost of one sending and one receiving terminal together; the box runs one of
them per fax channel. Measured about 32x for the pair (a channel under 2 % of
a core on average); the assertion allows 10x, 10 % of a core for the pair.
"""

from __future__ import annotations

import time

import pytest

from dsp.fax.t30 import FaxSession
from dsp.fax.tiff import STANDARD_LPI, X_DPI, FaxPage
from tests.dsp.faxpages import text_page
from tests.dsp.test_fax_t30 import run_pair


@pytest.mark.parametrize("modems,rate", [(("v29",), 9600), (("v27ter",), 4800)])
def test_one_page_both_ends(benchmark, modems, rate):
    page = FaxPage(text_page(11, False, rows=400), X_DPI, STANDARD_LPI)
    line = {}

    def call():
        tx, rx = FaxSession(calling=True, pages=[page], modems=modems), FaxSession(calling=False, modems=modems)
        t = time.perf_counter()
        line["s"] = run_pair(tx, rx)
        line["wall"] = time.perf_counter() - t
        assert tx.result.ok and rx.result.ok and tx.result.bit_rate == rate
        return line

    benchmark.pedantic(call, rounds=2, iterations=1)
    x = line["s"] / line["wall"]
    benchmark.extra_info.update(line_s=line["s"], x_real_time_both_ends=round(x, 1))
    assert x >= 10.0, f"two fax sessions ran at {x:.1f}x real time; one channel may take at most 10 % of a core"
