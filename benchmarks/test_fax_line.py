"""Line time of a fax call: the three-page document (a text page and two dense drawings, standard
resolution, MR) sent at V.29 9600 bit/s through the simulated A-law line of tests/peers/faxline.py.

The figure that matters is ``extra_info["line_seconds"]``, seconds of simulated line from the first
block to both terminals hanging up; the benchmark's own timing is the wall time of the whole call
(one round, one iteration). Each terminal pair is one entry of ``PAIRS``, so our own terminal
(``python -m dsp.fax.terminal``) can be added next to spandsp's and the two compared in one report.
"""

from __future__ import annotations

import pytest

from tests.dsp.faxpages import three_page_document, write_document
from tests.peers.faxline import run_line
from tests.peers.spandsp_fax import faxpeer_command

MAX_SECONDS = 600.0


def spandsp_pair(sent, received) -> tuple[list[str], list[str]]:
    """spandsp sending (calling) to spandsp receiving (answering), V.29 only, MH and MR offered."""
    common = dict(modems="v29", compression="both", max_seconds=MAX_SECONDS - 10)
    return (faxpeer_command(send=sent, calling=True, ident="SENDER", **common),
            faxpeer_command(receive=received, calling=False, ident="RECEIVER", **common))


PAIRS = {"spandsp-spandsp": spandsp_pair}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_three_pages_v29_line_time(benchmark, tmp_path, pair):
    sent, received = tmp_path / "sent.tif", tmp_path / "received.tif"
    pages = three_page_document(fine=False)
    write_document(sent, pages, two_d=True)
    cmd_a, cmd_b = PAIRS[pair](sent, received)
    got = benchmark.pedantic(run_line, args=(cmd_a, cmd_b), kwargs=dict(max_seconds=MAX_SECONDS), rounds=1,
                             iterations=1)
    tx, rx = got.parsed(0), got.parsed(1)
    benchmark.extra_info.update(line_seconds=got.seconds, pages=len(pages), sender=got.results[0],
                                receiver=got.results[1])
    assert got.returncodes == (0, 0), got.describe()
    for side in (tx, rx):
        assert (side["status"], side["pages"], side["rate"]) == ("ok", "3", "9600"), got.describe()
