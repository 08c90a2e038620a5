"""Faxes kept (``appliance.faxstore``): a received fax's TIFF-F decodes to its pages and each page has its PNG; a
fax whose pages cannot be written leaves no file, not even a temporary one, and keeps its record with the reason;
rows go in and come back with their lists, the latest first, filtered by direction."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3

import numpy as np
import pytest
from PIL import Image

from appliance.faxstore import FaxStore, FaxStoreError, setup
from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, FaxPage, read_tiff_f
from tests.dsp.faxpages import drawing_page, text_page

UTC = dt.timezone.utc
T0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC


def record(key: str, direction: str = "in", started: float = T0, **more) -> dict:
    return {"key": key, "direction": direction, "number": "02155500202", "started_ts": started, "result": "ok",
            "cause": None, "pages": 2, "bit_rate": 9600, "resolution": "fine", "compression": "MR",
            "remote_ident": "+86 21 5550202", "bad_rows": 0, "seconds": 61.5, **more}


@pytest.fixture
def con():
    c = sqlite3.connect(":memory:")
    c.row_factory = sqlite3.Row
    setup(c)
    yield c
    c.close()


def test_received_pages_become_a_tiff_and_one_png_each(tmp_path):
    pages = [FaxPage(text_page(1, fine=True, rows=500), y_resolution=FINE_LPI),
             FaxPage(drawing_page(2)[:400], y_resolution=STANDARD_LPI)]
    rec = FaxStore(tmp_path, UTC).save_files(record("c-1"), pages)
    assert rec["tiff"] == "fax/in/2025-11-28/c-1.tif" and rec["stored"] and rec["store_error"] is None
    assert rec["pngs"] == ["fax/in/2025-11-28/c-1-001.png", "fax/in/2025-11-28/c-1-002.png"]
    back = read_tiff_f(tmp_path / rec["tiff"])
    assert [p.y_resolution for p in back] == [FINE_LPI, STANDARD_LPI]
    assert all(np.array_equal(b.pixels, p.pixels) for b, p in zip(back, pages))
    sizes = [Image.open(tmp_path / p).size for p in rec["pngs"]]
    assert sizes == [(1728, 500), (1728, 800)]  # a standard page's rows twice: square pixels
    assert sorted(os.listdir(tmp_path / "fax/in/2025-11-28")) == ["c-1-001.png", "c-1-002.png", "c-1.tif"]
    assert oct(os.stat(tmp_path / rec["tiff"]).st_mode & 0o777) == "0o644"


def test_pages_that_cannot_be_written_leave_no_file_and_the_record_says_why(tmp_path):
    # a good page, then one with no rows: the writer gives up on the second, with the first written
    bad = [FaxPage(text_page(1, rows=100), y_resolution=STANDARD_LPI), FaxPage(np.zeros((0, 1728), bool))]
    rec = FaxStore(tmp_path, UTC).save_files(record("c-2", result="failed", cause="T2"), bad)
    assert (rec["tiff"], rec["pngs"], rec["stored"]) == (None, [], False)
    assert rec["store_error"] == "c-2.tif: page 1: pixels must have shape (rows, width), got (0, 1728)"
    assert rec["cause"] == "T2"
    assert os.listdir(tmp_path / "fax/in/2025-11-28") == []  # no half-written TIFF, no temp file


def test_a_fax_without_pages_is_a_record_only(tmp_path):
    rec = FaxStore(tmp_path, UTC).save_files(record("c-3", pages=0, result="failed"), [])
    assert (rec["tiff"], rec["pngs"], rec["stored"], rec["store_error"]) == (None, [], False, None)
    assert not (tmp_path / "fax").exists()


def test_a_document_to_send_is_kept_as_a_tiff(tmp_path):
    pages = [FaxPage(text_page(5, rows=100), y_resolution=STANDARD_LPI)]
    rel = FaxStore(tmp_path, UTC).write_document("fax-j-0001", pages, T0 + 86400)
    assert rel == "fax/out/2025-11-29/fax-j-0001.tif"
    assert np.array_equal(read_tiff_f(tmp_path / rel)[0].pixels, pages[0].pixels)


def test_rows_come_back_latest_first_with_their_lists(con):
    attempts = [{"attempt": 1, "result": "busy", "cause": 17}]
    FaxStore.insert(con, {**record("c-1"), "tiff": "fax/in/x.tif", "pngs": ["fax/in/x-001.png"], "stored": True})
    FaxStore.insert(con, {**record("j-1", "out", T0 + 60, document="offer.pdf", result="failed",
                                   cause="busy (cause 17)", pages=0), "attempts": attempts, "stored": False})
    rows = FaxStore.entries(con)
    assert [r["key"] for r in rows] == ["j-1", "c-1"]
    assert rows[0]["attempts"] == attempts and rows[0]["pngs"] == [] and rows[0]["stored"] is False
    assert rows[0]["document"] == "offer.pdf" and rows[0]["cause"] == "busy (cause 17)"
    assert rows[1]["pngs"] == ["fax/in/x-001.png"] and rows[1]["stored"] is True and rows[1]["attempts"] == []
    assert [r["key"] for r in FaxStore.entries(con, "in")] == ["c-1"]
    assert [r["key"] for r in FaxStore.entries(con, None, T0 + 30)] == ["j-1"]
    assert [r["key"] for r in FaxStore.entries(con, limit=1)] == ["j-1"]
    with pytest.raises(FaxStoreError, match="direction: 'sideways' is not one of in, out"):
        FaxStore.entries(con, "sideways")
