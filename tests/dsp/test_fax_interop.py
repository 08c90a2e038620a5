"""Our fax terminal against spandsp's (the engine inside Asterisk and FreeSWITCH), both directions, on an A-law line.

Each case runs two processes on the line protocol: ``python -m dsp.fax.terminal``
and the C peer built on libspandsp (tests/peers/faxpeer.c). The received file
must hold the sent pages pixel for pixel (``tiffcmp -t`` and our own reader),
and both sides must report success with the same page count and rate.

Rates: V.29 9600 and V.27ter 4800 are what the two sides settle on; 7200 and
2400 come from fallback. When we receive, we refuse the faster TCF (FTT) and
spandsp steps down; when we send, we choose the lower rate ourselves.
"""

from __future__ import annotations

import sys

import pytest

from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, X_DPI, FaxPage, read_tiff_f
from tests.dsp.faxpages import assert_identical_files, text_page, three_page_document, write_document
from tests.peers.faxline import parse_result, run_line
from tests.peers.spandsp_fax import faxpeer_command

VERBOSE = False  # True: spandsp also logs its T.30 on stderr, shown when a case fails
RATES = {9600: ("v29", "9600"), 7200: ("v29", "7200"), 4800: ("v27ter", "4800"), 2400: ("v27ter", "2400")}


def ours(*args: str) -> list[str]:
    return [sys.executable, "-m", "dsp.fax.terminal", "--verbose", *args]


def one_page() -> list[FaxPage]:
    return [FaxPage(text_page(11, False, rows=400), X_DPI, STANDARD_LPI)]


def fax(tmp_path, pages, rate, compression, we_send, noise_dbm0=None, seed=0, limit_s=590):
    """Send ``pages`` across; return (line result, sent path, received path)."""
    modems, rates = RATES[rate]
    src, dst = tmp_path / "sent.tif", tmp_path / "received.tif"
    write_document(src, pages, two_d=False)
    spandsp_comp = "both" if compression == "mr" else "mh"
    limit = ["--max-seconds", str(limit_s)]
    peer = dict(modems=modems, compression=spandsp_comp, ident="020 5550100", verbose=VERBOSE, max_seconds=limit_s)
    if we_send:
        a = ours("--send", str(src), "--calling", "--modems", modems, "--rates", rates, "--compression", compression,
                 "--ident", "+86 10 88880001", *limit)
        b = faxpeer_command(receive=dst, calling=False, **peer)
    else:
        a = faxpeer_command(send=src, calling=True, **peer)
        b = ours("--receive", str(dst), "--answering", "--modems", modems, "--rates", rates,
                 "--compression", compression, "--ident", "+86 10 88880001", *limit)
    res = run_line(a, b, noise_dbm0=noise_dbm0, seed=seed, max_seconds=limit_s + 10, cwd=str(tmp_path))
    return res, src, dst


def check(res, src, dst, pages, rate, compression):
    a, b = (parse_result(r) for r in res.results)
    assert res.returncodes == (0, 0), res.stderr
    assert a["status"] == b["status"] == "ok"
    assert int(a["pages"]) == int(b["pages"]) == len(pages)
    assert int(a["rate"]) == int(b["rate"]) == rate
    assert a["compression"] == b["compression"] == compression.upper()
    assert_identical_files(src, dst, pages)


@pytest.mark.parametrize("compression", ["mh", "mr"])
@pytest.mark.parametrize("rate", [9600, 7200, 4800, 2400])
@pytest.mark.parametrize("we_send", [True, False], ids=["ours-to-spandsp", "spandsp-to-ours"])
def test_one_page(tmp_path, we_send, rate, compression):
    pages = one_page()
    res, src, dst = fax(tmp_path, pages, rate, compression, we_send)
    check(res, src, dst, pages, rate, compression)
    if not we_send and rate in (7200, 2400):  # we refused the faster training, then took this one
        log = res.stderr[1]
        assert "TCF" in log and ", bad" in log and ", good" in log


@pytest.mark.parametrize("rate,compression", [(9600, "mr"), (7200, "mh"), (4800, "mr"), (2400, "mh")])
@pytest.mark.parametrize("we_send", [True, False], ids=["ours-to-spandsp", "spandsp-to-ours"])
def test_three_pages(tmp_path, we_send, rate, compression):
    pages = three_page_document()  # dense: over 10 minutes of line at 2400 bit/s
    res, src, dst = fax(tmp_path, pages, rate, compression, we_send, limit_s=1200)
    check(res, src, dst, pages, rate, compression)


def completes(res) -> bool:
    a, b = (parse_result(r) for r in res.results)
    return res.returncodes == (0, 0) and a.get("status") == b.get("status") == "ok" and a.get("pages") == "1"


def test_spandsp_gets_a_page_to_us_through_noise_that_stops_it_reaching_itself(tmp_path):
    """At -47 dBm0 of white noise spandsp's own pairing fails (its V.29 receiver starts training on the
    noise); sending to us, the page arrives. (benchmarks/test_fax_noise.py measures every pairing's limit.)"""
    pages = one_page()
    res, src, dst = fax(tmp_path, pages, 9600, "mr", we_send=False, noise_dbm0=-47.0, seed=1)
    assert completes(res), res.stderr
    assert read_tiff_f(dst)[0].pixels.shape == pages[0].pixels.shape
    peer = dict(modems="v29", compression="both", max_seconds=300)
    alone = run_line(faxpeer_command(send=src, calling=True, **peer),
                     faxpeer_command(receive=tmp_path / "spandsp.tif", calling=False, **peer),
                     noise_dbm0=-47.0, seed=1, max_seconds=310)
    assert not completes(alone)


def test_we_get_a_page_to_spandsp_where_spandsp_reaches_itself(tmp_path):
    """Into spandsp's receiver the limit is its own: at -49 dBm0 every seed gets through from spandsp and from us."""
    res, src, dst = fax(tmp_path, one_page(), 9600, "mr", we_send=True, noise_dbm0=-49.0, seed=1)
    assert completes(res), res.stderr


@pytest.mark.parametrize("we_send", [True, False], ids=["ours-answering-sends", "spandsp-answering-sends"])
def test_polling_the_answerer_sends(tmp_path, we_send):
    """The caller receives: the answerer's DIS offers a document (bit 9), the caller answers CIG and DTC."""
    pages = one_page()
    src, dst = tmp_path / "sent.tif", tmp_path / "received.tif"
    write_document(src, pages)
    if we_send:
        caller = faxpeer_command(receive=dst, calling=True, modems="v29", compression="both")
        answerer = ours("--send", str(src), "--answering", "--modems", "v29")
    else:
        caller = ours("--receive", str(dst), "--calling", "--modems", "v29")
        answerer = faxpeer_command(send=src, calling=False, modems="v29", compression="both")
    res = run_line(caller, answerer, max_seconds=300, cwd=str(tmp_path))
    check(res, src, dst, pages, 9600, "mr")
    ours_log = res.stderr[1 if we_send else 0]
    assert ("rx CIG DTC" if we_send else "tx CIG DTC") in ours_log


@pytest.mark.parametrize("we_send", [True, False], ids=["ours-to-spandsp", "spandsp-to-ours"])
def test_a_fine_page(tmp_path, we_send):
    """7.7 lines/mm: DCS bit 15, and modified READ with K = 4."""
    pages = [FaxPage(text_page(12, True, rows=600), X_DPI, FINE_LPI)]
    res, src, dst = fax(tmp_path, pages, 9600, "mr", we_send)
    check(res, src, dst, pages, 9600, "mr")
    assert all(parse_result(r)["resolution"] == "fine" for r in res.results)
