"""Line time of a fax call: the three-page document (a text page and two dense drawings, standard
resolution, MR) sent at V.29 9600 bit/s through the simulated A-law line of tests/peers/faxline.py.

The figure that matters is ``extra_info["line_seconds"]``, seconds of simulated line from the first
block to both terminals hanging up; the benchmark's own timing is the wall time of the whole call
(one round, one iteration). Each terminal pair is one entry of ``PAIRS``, so our own terminal
(``python -m dsp.fax.terminal``) can be added next to spandsp's and the two compared in one report.
"""

from __future__ import annotations

import sys

import pytest

from tests.dsp.faxpages import assert_identical_files, three_page_document, write_document
from tests.peers.faxline import run_line
from tests.peers.spandsp_fax import faxpeer_command

MAX_SECONDS = 600.0


def spandsp_pair(sent, received) -> tuple[list[str], list[str]]:
    """spandsp sending (calling) to spandsp receiving (answering), V.29 only, MH and MR offered."""
    common = dict(modems="v29", compression="both", max_seconds=MAX_SECONDS - 10)
    return (faxpeer_command(send=sent, calling=True, ident="SENDER", **common),
            faxpeer_command(receive=received, calling=False, ident="RECEIVER", **common))


def ours(*args) -> list[str]:
    return [sys.executable, "-m", "dsp.fax.terminal", "--modems", "v29", "--max-seconds", str(MAX_SECONDS - 10),
            *map(str, args)]


def ours_to_spandsp(sent, received):
    return (ours("--send", sent, "--calling"),
            faxpeer_command(receive=received, calling=False, modems="v29", compression="both",
                            max_seconds=MAX_SECONDS - 10))


def spandsp_to_ours(sent, received):
    return (faxpeer_command(send=sent, calling=True, modems="v29", compression="both", max_seconds=MAX_SECONDS - 10),
            ours("--receive", received, "--answering"))


def ours_to_ours(sent, received):
    return ours("--send", sent, "--calling"), ours("--receive", received, "--answering")


PAIRS = {"spandsp-spandsp": spandsp_pair, "ours-spandsp": ours_to_spandsp, "spandsp-ours": spandsp_to_ours,
         "ours-ours": ours_to_ours}


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
    assert_identical_files(sent, received, pages)


def test_line_time_against_spandsps_own_pairing(benchmark, tmp_path):
    """The three pages through every pairing in one run; ``extra_info`` has each line time and its ratio to
    spandsp-to-spandsp (the issue's reference; 1.0 means the same line time)."""
    pages = three_page_document(fine=False)
    sent = tmp_path / "sent.tif"
    write_document(sent, pages, two_d=True)

    def all_pairs():
        out = {}
        for name, pair in PAIRS.items():
            got = run_line(*pair(sent, tmp_path / f"{name}.tif"), max_seconds=MAX_SECONDS, cwd=str(tmp_path))
            assert got.returncodes == (0, 0), got.describe()
            out[name] = got.seconds
        return out

    times = benchmark.pedantic(all_pairs, rounds=1, iterations=1)
    ref = times["spandsp-spandsp"]
    benchmark.extra_info.update({f"{k}_line_s": v for k, v in times.items()})
    benchmark.extra_info.update({f"{k}_ratio": round(v / ref, 3) for k, v in times.items()})
    for name in PAIRS:
        assert_identical_files(sent, tmp_path / f"{name}.tif", pages)
