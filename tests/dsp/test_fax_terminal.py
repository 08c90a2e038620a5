"""``python -m dsp.fax.terminal``: the line protocol, results, exit codes, and what it leaves on disk."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from dsp.fax.tiff import STANDARD_LPI, X_DPI, FaxPage, read_tiff_f
from tests.dsp.faxpages import text_page, write_document
from tests.peers.faxline import run_line

TERMINAL = [sys.executable, "-m", "dsp.fax.terminal"]


def page() -> FaxPage:
    return FaxPage(text_page(4, False, rows=200), X_DPI, STANDARD_LPI)


def test_two_terminals_fax_a_page_and_the_file_is_tiff_f(tmp_path):
    write_document(tmp_path / "in.tif", [page()])
    got = run_line(TERMINAL + ["--send", "in.tif", "--ident", "+86 10 1234", "--modems", "v29"],
                   TERMINAL + ["--receive", "out.tif", "--ident", "020 5678"], cwd=str(tmp_path))
    assert got.returncodes == (0, 0), got.describe()
    assert got.parsed(0) == {"status": "ok", "pages": "1", "rate": "9600", "resolution": "standard",
                             "compression": "MR", "remote": "020 5678", "bad_rows": "0",
                             "seconds": got.parsed(0)["seconds"]}
    assert got.parsed(1)["remote"] == "+86 10 1234"
    assert np.array_equal(read_tiff_f(tmp_path / "out.tif")[0].pixels, page().pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def run(*args, stdin=b""):
    return subprocess.run(TERMINAL + list(args), input=stdin, capture_output=True, timeout=60)


def test_usage_errors_exit_2_and_name_the_problem(tmp_path):
    p = run("--send", str(tmp_path / "missing.tif"))
    assert p.returncode == 2 and b"missing.tif" in p.stderr
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    p = run("--send", str(tmp_path / "bad.tif"))
    assert p.returncode == 2 and p.stderr.startswith(b"error: ")
    p = run("--receive", "x.tif", "--modems", "v34")
    assert p.returncode == 2 and b"modems" in p.stderr
    p = run("--receive", "x.tif", "--rates", "fast")
    assert p.returncode == 2 and b"--rates" in p.stderr
    p = run("--receive", "x.tif", "--modems", "v27ter", "--rates", "9600")
    assert p.returncode == 2 and b"rates" in p.stderr
    assert run().returncode == 2


def test_a_dropped_line_fails_and_leaves_no_file(tmp_path):
    # two seconds of line, then EOF: the caller's CED has not even ended
    p = subprocess.run(TERMINAL + ["--receive", "out.tif"], input=bytes(320 * 100), capture_output=True,
                       timeout=60, cwd=tmp_path)
    assert p.returncode == 1
    assert p.stderr.decode().strip().splitlines()[-1] == 'result failed cause="the line dropped" pages=0'
    assert len(p.stdout) == 320 * 101  # it wrote a block before each read, and one more before EOF
    assert list(tmp_path.iterdir()) == []


def test_silence_ends_in_t1_as_a_failed_fax(tmp_path):
    write_document(tmp_path / "in.tif", [page()])
    p = subprocess.run(TERMINAL + ["--send", "in.tif"], input=bytes(320 * 50 * 40), capture_output=True,
                       timeout=120, cwd=tmp_path)
    assert p.returncode == 1
    assert b'result failed cause="no fax answer: no DIS within T1 (35 s)"' in p.stderr
