"""spandsp fax terminal to spandsp fax terminal through the simulated line (tests/peers/faxline.py):
the peer and the line checked on their own first, then whole calls compared pixel for pixel, and the
line noise at which spandsp stops getting one page through, measured and recorded."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, X_DPI, FaxPage, read_tiff_f
from dsp.levels import rms_dbm0
from tests.dsp.faxpages import (a4_rows, assert_identical_files, drawing_page, text_page, three_page_document,
                                write_document)
from tests.peers.faxline import parse_result, run_line
from tests.peers.spandsp_fax import build_faxpeer, faxpeer_command
from tests.tools import require_tool

# a terminal that sends `n` blocks of a constant, records what it hears in argv[2] and exits 0
_STUB = """
import sys
n, value = int(sys.argv[1]), int(sys.argv[3])
heard = bytearray()
for _ in range(n):
    sys.stdout.buffer.write(value.to_bytes(2, 'little', signed=True) * 160)
    sys.stdout.buffer.flush()
    block = sys.stdin.buffer.read(320)
    if len(block) < 320:
        break
    heard += block
open(sys.argv[2], 'wb').write(heard)
print('result ok pages=0 remote="stub \\\\"q\\\\""', file=sys.stderr)
"""


def stub(tmp_path, name: str, n: int, value: int = 0) -> list[str]:
    return [sys.executable, "-c", _STUB, str(n), str(tmp_path / name), str(value)]


def heard(tmp_path, name: str) -> np.ndarray:
    return np.frombuffer((tmp_path / name).read_bytes(), "<i2")


# --- the line on its own ---------------------------------------------------------------------------

def test_line_carries_blocks_both_ways_and_feeds_silence_after_exit(tmp_path):
    # A sends 1000 for 30 blocks, B sends -2000 for 10 blocks then exits: A hears B's 10 blocks
    # (A-law: -2000 decodes to -2016) then silence (A-law has no zero: 0 decodes to 8)
    got = run_line(stub(tmp_path, "a", 30, 1000), stub(tmp_path, "b", 10, -2000))
    assert got.returncodes == (0, 0) and not got.timed_out
    assert got.seconds == 30 * 160 / 8000
    a, b = heard(tmp_path, "a"), heard(tmp_path, "b")
    assert a.size == 30 * 160 and b.size == 10 * 160
    assert np.all(a[:1600] == -2016) and np.all(a[1600:] == 8)
    assert np.all(b == 1008)
    assert got.parsed(0) == {"status": "ok", "pages": "0", "remote": 'stub "q"'}


def test_line_noise_is_calibrated_in_dbm0_and_seeded(tmp_path):
    runs = [run_line(stub(tmp_path, "a", 500), stub(tmp_path, "b", 500), alaw=False, noise_dbm0=-30.0, seed=s,
                     record=True) for s in (7, 7, 8)]
    assert runs[0].audio.shape == (2, 500 * 160)
    assert np.array_equal(runs[0].audio, runs[1].audio) and not np.array_equal(runs[0].audio, runs[2].audio)
    np.testing.assert_allclose(rms_dbm0(runs[0].audio), [-30.0, -30.0], atol=0.05)
    assert np.array_equal(heard(tmp_path, "a"), runs[2].audio[0])  # what the stub heard is what was recorded
    quantised = run_line(stub(tmp_path, "a", 500), stub(tmp_path, "b", 500), noise_dbm0=-30.0, seed=7, record=True)
    np.testing.assert_allclose(rms_dbm0(quantised.audio), [-30.0, -30.0], atol=0.2)  # A-law adds little at -30


def test_line_gives_up_on_a_terminal_that_never_writes(tmp_path):
    got = run_line(stub(tmp_path, "a", 100), [sys.executable, "-c", "import sys; sys.stdin.buffer.read()"],
                   stall_seconds=1.0)
    assert got.stalled and got.timed_out and got.seconds == 0.0
    assert got.returncodes[1] is not None and got.returncodes[1] < 0


def test_line_time_limit_kills_both(tmp_path):
    got = run_line(stub(tmp_path, "a", 10_000), stub(tmp_path, "b", 10_000), max_seconds=2.0)
    assert got.timed_out and got.seconds == 2.0
    assert all(code is not None and code < 0 for code in got.returncodes)


def test_parse_result():
    assert parse_result('result failed cause="Far end is not able to receive" pages=0') == {
        "status": "failed", "cause": "Far end is not able to receive", "pages": "0"}
    assert parse_result(None) == {}


# --- the peer on its own ---------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    ([], "give exactly one of --send and --receive"),
    (["--send", "a.tif", "--receive", "b.tif"], "give exactly one of --send and --receive"),
    (["--receive", "b.tif", "--modems", "v34"], "--modems takes v27ter, v29 and v17, comma separated"),
    (["--receive", "b.tif", "--compression", "t6"], "--compression takes mh, mr or both"),
    (["--send", "missing.tif"], "cannot read the file to send"),
    (["--receive"], "missing value after an option"),
])
def test_faxpeer_usage_errors_exit_2(tmp_path, args, message):
    proc = subprocess.run([build_faxpeer(), *args], capture_output=True, text=True, cwd=tmp_path, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"faxpeer: {message}\nusage: faxpeer ")


def test_faxpeer_reports_a_dropped_line(tmp_path):
    proc = subprocess.run(faxpeer_command(receive=tmp_path / "r.tif"), capture_output=True, timeout=30,
                          input=b"\0" * 320 * 10)
    assert proc.returncode == 1 and len(proc.stdout) == 11 * 320  # wrote 11 blocks, read 10, then EOF
    assert proc.stderr.decode() == 'result failed cause="line dropped" pages=0\n'


# --- spandsp to spandsp -----------------------------------------------------------------------------

DOCUMENTS = {
    # one fine page (so fine resolution goes over the line too) and the standard three-page document
    "one_fine": lambda: [FaxPage(text_page(1, fine=True), X_DPI, FINE_LPI)],
    "three": lambda: three_page_document(fine=False),
}


def send(tmp_path, pages, *, modems="v27ter,v29", compression="both", sender_calls=True, max_seconds=900.0, **line):
    """Write ``pages`` (MR-coded unless only MH is offered), send them spandsp to spandsp, return the result."""
    sent, received = tmp_path / "sent.tif", tmp_path / "received.tif"
    write_document(sent, pages, two_d=compression != "mh")
    common = dict(modems=modems, compression=compression, max_seconds=max_seconds - 10)
    tx = faxpeer_command(send=sent, calling=sender_calls, ident="SENDER 1", **common)
    rx = faxpeer_command(receive=received, calling=not sender_calls, ident="RECEIVER 2", **common)
    got = run_line(tx, rx, max_seconds=max_seconds, **line) if sender_calls else \
        run_line(rx, tx, max_seconds=max_seconds, **line)
    tx_side = 0 if sender_calls else 1
    return got, got.parsed(tx_side), got.parsed(1 - tx_side), sent, received


def test_tiffcmp_t_still_compares_pixels(tmp_path):
    """``tiffcmp -t`` ignores tags only: one pixel changed makes it exit 1 (so identical files mean pixels)."""
    page = text_page(7, rows=100)
    write_document(tmp_path / "a.tif", [page])
    page[50, 700] ^= True
    write_document(tmp_path / "b.tif", [page], two_d=True)
    proc = subprocess.run([require_tool("tiffcmp"), "-t", str(tmp_path / "a.tif"), str(tmp_path / "b.tif")],
                          capture_output=True, timeout=60)
    assert proc.returncode == 1


def test_unreadable_document_fails_the_sender(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    got = run_line(faxpeer_command(send=bad), faxpeer_command(receive=tmp_path / "r.tif"), max_seconds=120)
    assert got.returncodes == (1, 1), got.describe()
    assert got.parsed(0) == {"status": "failed", "cause": "TIFF/F file cannot be opened", "pages": "0"}


@pytest.mark.parametrize("doc", sorted(DOCUMENTS))
@pytest.mark.parametrize("compression", ["mh", "mr"])
@pytest.mark.parametrize("modems,rate", [("v27ter", 4800), ("v29", 9600)])
def test_spandsp_to_spandsp(tmp_path, doc, compression, modems, rate):
    pages = DOCUMENTS[doc]()
    got, tx, rx, sent, received = send(tmp_path, pages, modems=modems, compression=compression)
    assert got.returncodes == (0, 0), got.describe()
    resolution = "fine" if pages[0].y_resolution == FINE_LPI else "standard"
    want = {"status": "ok", "pages": str(len(pages)), "rate": str(rate), "resolution": resolution,
            "compression": compression.upper()}
    assert tx == {**want, "remote": "RECEIVER 2"}, got.describe()
    assert rx == {**want, "remote": "SENDER 1"}, got.describe()
    assert_identical_files(sent, received, pages)


def test_answering_sender_and_calling_receiver(tmp_path):
    pages = [FaxPage(drawing_page(4), X_DPI, STANDARD_LPI)]
    got, tx, rx, sent, received = send(tmp_path, pages, modems="v29", sender_calls=False)
    assert got.returncodes == (0, 0), got.describe()
    assert tx["status"] == rx["status"] == "ok" and tx["pages"] == rx["pages"] == "1", got.describe()
    assert tx["rate"] == "9600" and tx["compression"] == "MR" and rx["remote"] == "SENDER 1"
    assert_identical_files(sent, received, pages)


def test_linear_line_without_alaw(tmp_path):
    pages = [FaxPage(text_page(5, rows=a4_rows(False)), X_DPI, STANDARD_LPI)]
    got, tx, rx, sent, received = send(tmp_path, pages, modems="v29", alaw=False)
    assert (tx["status"], rx["status"]) == ("ok", "ok"), got.describe()
    assert_identical_files(sent, received, pages)


def test_two_receivers_fail_cleanly(tmp_path):
    a = faxpeer_command(receive=tmp_path / "a.tif", calling=True)
    b = faxpeer_command(receive=tmp_path / "b.tif", calling=False)
    got = run_line(a, b, max_seconds=120)
    assert got.returncodes == (1, 1) and not got.timed_out, got.describe()
    assert got.parsed(0) == {"status": "failed", "cause": "Far end is not able to transmit", "pages": "0"}
    assert got.parsed(1)["status"] == "failed"


def test_silent_far_end_times_out_in_t30(tmp_path):
    sent = tmp_path / "sent.tif"
    write_document(sent, [text_page(6, rows=200)])
    got = run_line(faxpeer_command(send=sent), stub(tmp_path, "b", 100 * 50), max_seconds=120)
    assert got.returncodes[0] == 1, got.describe()
    assert got.parsed(0) == {"status": "failed", "cause": "Timed out waiting for initial communication", "pages": "0"}


# --- noise: where spandsp to spandsp stops getting a page through -------------------------------------

NOISE_STEPS_DBM0 = [-60, -55, -50, -45, -40, -35]


def one_page_through_noise(tmp_path, modems: str, noise_dbm0: float | None, seed: int) -> bool:
    pages = [FaxPage(text_page(1), X_DPI, STANDARD_LPI)]
    got, tx, rx, _, received = send(tmp_path, pages, modems=modems, noise_dbm0=noise_dbm0, seed=seed,
                                    max_seconds=240.0)
    return tx.get("status") == rx.get("status") == "ok" and tx.get("pages") == "1" and \
        np.array_equal(read_tiff_f(received)[0].pixels, pages[0].pixels)


@pytest.mark.parametrize("modems", ["v29", "v27ter"])
def test_noise_threshold_is_measured(tmp_path, request, record_property, capsys, modems):
    """Records, not a timed assertion: the clean line must work; the noise level (5 dB steps, then 1 dB
    steps below the first failure, three seeds each) at which one page stops getting through is written
    to the test's properties, pytest's cache (fax/spandsp_noise/<modem>) and its output.

    Measured with spandsp 0.0.6: -48 dBm0 for V.29 and V.27ter alike (2 of 3 seeds at -48, none from
    -47): the noise then turns spandsp's carrier detectors on and off, and image modem training started on it
    fails (its log: "Training failed"), so the limit is detection, not the modems' SNR.
    """
    assert one_page_through_noise(tmp_path, modems, None, 0)
    outcomes = {}
    for level in NOISE_STEPS_DBM0:
        outcomes[level] = one_page_through_noise(tmp_path, modems, level, 1)
    failing = [lvl for lvl in NOISE_STEPS_DBM0 if not outcomes[lvl]]
    first_fail = failing[0] if failing else None
    fine = {}
    if first_fail is not None:
        for level in range(first_fail - 4, first_fail + 1):
            fine[level] = sum(one_page_through_noise(tmp_path, modems, level, s) for s in (1, 2, 3))
    # the threshold: the quietest noise at which fewer than all three seeds get through
    threshold = min((lvl for lvl, ok in fine.items() if ok < 3), default=first_fail)
    report = {"coarse": {str(k): v for k, v in outcomes.items()}, "passes_of_3": {str(k): v for k, v in fine.items()},
              "threshold_dbm0": threshold}
    record_property("spandsp_noise_threshold_dbm0", threshold)
    record_property("spandsp_noise_outcomes", report)
    request.config.cache.set(f"fax/spandsp_noise/{modems}", report)
    with capsys.disabled():
        print(f"\nspandsp -> spandsp, one {modems} page through A-law and noise: {report}")
    assert outcomes[-60], "spandsp should get a page through -60 dBm0 noise"
