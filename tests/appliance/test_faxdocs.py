"""Documents to fax pages and faxes to PNG, with real LibreOffice and Ghostscript on files the tests make."""

from __future__ import annotations

import os
import pathlib
import subprocess
import threading

import numpy as np
import pytest
from PIL import Image

from appliance import faxdocs, faxrender
from appliance.errors import DriverError, DspError
from appliance.faxdocs import document_pages, render_png, tiff_to_pngs
from dsp.fax.tiff import FaxPage, write_tiff_f
from tests.tools import require_file, require_tool

A4_PT = (595.276, 841.89)
CJK_EN = ("报价单 Quotation No. 2026-118\n客户：上海某某贸易有限公司\tTel: 021-5555 1234\n"
          "这是一段很长的中文文本，用来测试自动换行。This long English sentence wraps at spaces, 中文 mixed in.\n")


@pytest.fixture(autouse=True)
def _font():
    require_file(faxrender.FONT_PATH, "fonts-noto-cjk")


def _bands(pix: np.ndarray, gap: int = 5) -> int:
    """Text lines on a page: runs of rows with ink separated by at least ``gap`` blank rows."""
    rows = np.flatnonzero(pix.any(axis=1))
    return 0 if rows.size == 0 else 1 + int((np.diff(rows) > gap).sum())


def _pdf_from_ps(tmp: pathlib.Path, ps: str, name: str = "doc.pdf", *extra: str) -> pathlib.Path:
    gs = require_tool("gs")
    src, out = tmp / (name + ".ps"), tmp / name
    src.write_text("%!PS\n" + ps)
    subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", *extra,
                    f"-sOutputFile={out}", str(src)], check=True, timeout=60)
    src.unlink()
    return out


def _rect_ps(x0: float, y0: float, w: float, h: float, size=A4_PT) -> str:
    return f"<< /PageSize [{size[0]} {size[1]}] >> setpagedevice\n0 setgray {x0} {y0} {w} {h} rectfill\nshowpage\n"


def _soffice(src: pathlib.Path, fmt: str, out_dir: pathlib.Path, *extra: str) -> pathlib.Path:
    soffice = require_tool("soffice")
    profile = (out_dir / "lo-profile").as_uri()
    subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless", "--norestore", *extra,
                    "--convert-to", fmt, "--outdir", str(out_dir), str(src)], check=True, timeout=120, capture_output=True)
    out = out_dir / (src.stem + "." + fmt.split(":")[0])
    assert out.stat().st_size > 0
    return out


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    """A .docx from a Chinese+English text and a .xlsx from a CSV, both written by LibreOffice."""
    tmp = tmp_path_factory.mktemp("office")
    (tmp / "报价单.txt").write_text(CJK_EN, encoding="utf-8")
    (tmp / "价格表.csv").write_text("名称,数量,单价\n螺栓 bolt,100,0.5\n螺母 nut,20,1.25\n", encoding="utf-8")
    return {"docx": _soffice(tmp / "报价单.txt", "docx", tmp),
            "xlsx": _soffice(tmp / "价格表.csv", "xlsx", tmp, "--infilter=CSV:44,34,76")}  # 76: UTF-8


# --- plain text ------------------------------------------------------------------------------------

def test_text_in_utf8_gb18030_and_bom_gives_the_same_pixels(tmp_path):
    (tmp_path / "u.txt").write_bytes(CJK_EN.encode("utf-8"))
    (tmp_path / "g.txt").write_bytes(CJK_EN.encode("gb18030"))
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf" + CJK_EN.encode("utf-8"))
    u, g, b = (document_pages(tmp_path / n) for n in ("u.txt", "g.txt", "b.txt"))
    assert len(u) == len(g) == len(b) == 1
    assert u[0].pixels.shape == (2287, 1728) and u[0].pixels.dtype == bool
    assert np.array_equal(u[0].pixels, g[0].pixels) and np.array_equal(u[0].pixels, b[0].pixels)
    assert _bands(u[0].pixels) == 4  # 3 source lines, the long third one wrapped once
    assert (u[0].x_resolution, u[0].y_resolution) == (204, 196)


def test_text_margins_leave_the_edges_white(tmp_path):
    (tmp_path / "m.txt").write_text("中" * 42 + "\n" + "x" * 85 + "\n", encoding="utf-8")
    pix = document_pages(tmp_path / "m.txt")[0].pixels
    cols, rows = np.flatnonzero(pix.any(axis=0)), np.flatnonzero(pix.any(axis=1))
    assert cols.min() >= faxrender.MARGIN_LEFT - 2 and cols.max() <= 1728 - faxrender.MARGIN_RIGHT
    assert rows.min() >= 150 and _bands(pix) == 2  # 42 wide and 85 half-width characters fill one line each


def test_cjk_wraps_anywhere_and_english_at_spaces(tmp_path):
    (tmp_path / "c.txt").write_text("中" * 100, encoding="utf-8")  # 42 a line: 42 + 42 + 16
    (tmp_path / "e.txt").write_text(" ".join(["abcdefghij"] * 30), encoding="utf-8")  # 7 words a line: 5 lines
    assert _bands(document_pages(tmp_path / "c.txt")[0].pixels) == 3
    assert _bands(document_pages(tmp_path / "e.txt")[0].pixels) == 5  # 4 if words were split
    (tmp_path / "w.txt").write_text("x" * 200, encoding="utf-8")  # a word longer than a line breaks anyway
    assert _bands(document_pages(tmp_path / "w.txt")[0].pixels) == 3
    (tmp_path / "p.txt").write_text("中" * 42 + "。\n" + "中" * 43, encoding="utf-8")  # a full stop hangs, 中 wraps
    assert _bands(document_pages(tmp_path / "p.txt")[0].pixels) == 3


def test_tab_goes_to_the_next_8_column_stop(tmp_path):
    (tmp_path / "t.txt").write_text("ab\tc\n中\td\n", encoding="utf-8")
    (tmp_path / "s.txt").write_text("ab      c\n中      d\n", encoding="utf-8")
    assert np.array_equal(document_pages(tmp_path / "t.txt")[0].pixels, document_pages(tmp_path / "s.txt")[0].pixels)


def test_long_text_makes_several_full_pages(tmp_path):
    lines = [f"第{i:03d}行 line {i}" for i in range(200)]
    (tmp_path / "long.txt").write_text("\n".join(lines), encoding="gb18030")
    pages = document_pages(tmp_path / "long.txt")
    per_page = 43  # (297 - 35 mm of margins) / (12 pt x 1.4)
    assert len(pages) == 5
    assert [_bands(p.pixels) for p in pages] == [per_page] * 4 + [200 - 4 * per_page]
    assert all(p.pixels.shape == (2287, 1728) for p in pages)


def test_form_feed_starts_a_page(tmp_path):
    (tmp_path / "ff.txt").write_text("第一页 page one\n\f第二页\n\fpage three\f\n", encoding="utf-8")
    pages = document_pages(tmp_path / "ff.txt")
    assert len(pages) == 3  # the trailing form feed makes no blank page
    tops = [np.flatnonzero(p.pixels.any(axis=1))[0] for p in pages]
    assert max(tops) - min(tops) <= 3 and all(_bands(p.pixels) == 1 for p in pages)


def test_standard_and_fine_resolution_rows(tmp_path):
    (tmp_path / "r.txt").write_text(CJK_EN, encoding="utf-8")
    fine, std = document_pages(tmp_path / "r.txt"), document_pages(tmp_path / "r.txt", fine=False)
    assert fine[0].pixels.shape == (2287, 1728) and std[0].pixels.shape == (1143, 1728)
    assert std[0].y_resolution == 98 and fine[0].y_resolution == 196
    assert _bands(std[0].pixels, gap=2) == _bands(fine[0].pixels) == 4


# --- PDF -------------------------------------------------------------------------------------------

def _expect_box(x0, y0, w, h, fine, size=A4_PT):
    """Where a rectangle (points, origin bottom left) lands after fitting the page to 1728 x A4 and centring."""
    lpi, rows = (196, 2287) if fine else (98, 1143)
    scale = min(1728 / (size[0] / 72 * 204), rows / (size[1] / 72 * lpi))
    left = (1728 - size[0] / 72 * 204 * scale) / 2
    top = (rows - size[1] / 72 * lpi * scale) / 2
    c0, c1 = left + x0 / 72 * 204 * scale, left + (x0 + w) / 72 * 204 * scale
    r0, r1 = top + (size[1] - y0 - h) / 72 * lpi * scale, top + (size[1] - y0) / 72 * lpi * scale
    return r0, r1, c0, c1


@pytest.mark.parametrize("fine", [True, False])
def test_pdf_rectangle_lands_where_it_should(tmp_path, fine):
    pdf = _pdf_from_ps(tmp_path, _rect_ps(100, 600, 200, 100) + _rect_ps(400, 50, 100, 50))
    pages = document_pages(pdf, fine=fine)
    assert len(pages) == 2
    for page, box in zip(pages, [(100, 600, 200, 100), (400, 50, 100, 50)]):
        assert page.pixels.shape == ((2287 if fine else 1143), 1728)
        assert page.y_resolution == (196 if fine else 98)
        rows, cols = np.nonzero(page.pixels)
        got = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert np.allclose(got, _expect_box(*box, fine), atol=3), (got, _expect_box(*box, fine))
        assert page.pixels[rows.min():rows.max() + 1, cols.min():cols.max() + 1].mean() > 0.99  # solid


def test_pdf_long_page_is_scaled_whole_and_centred(tmp_path):
    size = (595.276, 1683.78)  # A4 wide, two A4 long
    pdf = _pdf_from_ps(tmp_path, _rect_ps(0, 0, 595.276, 50, size) + "")
    (page,) = document_pages(pdf)
    rows, cols = np.nonzero(page.pixels)
    assert page.pixels.shape == (2287, 1728)
    assert np.allclose((rows.min(), rows.max() + 1, cols.min(), cols.max() + 1),
                       _expect_box(0, 0, 595.276, 50, True, size), atol=3)
    assert 835 < cols.max() + 1 - cols.min() < 850  # half the width, centred: the bottom strip is not cut off


def test_password_protected_pdf_is_refused(tmp_path):
    pdf = _pdf_from_ps(tmp_path, _rect_ps(100, 100, 100, 100), "合同.pdf", "-sOwnerPassword=o", "-sUserPassword=u")
    with pytest.raises(DspError, match=r"^合同\.pdf: the PDF is password-protected"):
        document_pages(pdf)


@pytest.mark.parametrize("content", [b"%PDF-1.4\nthis is no PDF at all\n", b"%PDF-1.4\n1 0 obj << /Type /Catalog"])
def test_corrupt_pdf_is_refused(tmp_path, content):
    require_tool("gs")
    (tmp_path / "坏.pdf").write_bytes(content)
    with pytest.raises(DspError, match=r"^坏\.pdf: the PDF is damaged"):
        document_pages(tmp_path / "坏.pdf")


# --- office documents ------------------------------------------------------------------------------

def test_docx_and_xlsx_convert_to_pages_with_ink(office, tmp_path):
    for kind in ("docx", "xlsx"):
        pages = document_pages(office[kind], workdir=tmp_path)
        assert len(pages) == 1 and pages[0].pixels.shape == (2287, 1728)
        ink = pages[0].pixels
        assert ink.sum() > 1000 and ink[:800].sum() > 1000  # the text sits at the top of the page
    assert os.listdir(tmp_path) == []  # the private folder is gone


def test_rtf_written_by_hand_converts(tmp_path):
    require_tool("soffice")
    (tmp_path / "note.rtf").write_text(r"{\rtf1\ansi{\fonttbl\f0 Arial;}\f0\fs48 Hello fax\par}", encoding="ascii")
    (page,) = document_pages(tmp_path / "note.rtf", fine=False)
    assert page.pixels.shape == (1143, 1728) and page.pixels[:400].sum() > 500


def test_encrypted_office_file_is_refused(tmp_path):
    # what Word writes for a .docx with a password: an OLE container with an EncryptedPackage stream
    (tmp_path / "密.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200)
                                      + "EncryptedPackage".encode("utf-16-le") + bytes(200))
    with pytest.raises(DspError, match=r"^密\.docx: the document is password-protected"):
        document_pages(tmp_path / "密.docx")


def test_docx_renamed_to_pdf_suffix_is_taken_by_content(office, tmp_path):
    (tmp_path / "x.pdf").write_bytes(office["docx"].read_bytes())
    assert document_pages(tmp_path / "x.pdf")[0].pixels.sum() > 1000


def test_two_conversions_at_once_do_not_clash(office):
    out: dict = {}
    threads = [threading.Thread(target=lambda k=k: out.__setitem__(k, document_pages(office[k])))
               for k in ("docx", "xlsx")]
    [t.start() for t in threads]
    [t.join(180) for t in threads]
    assert set(out) == {"docx", "xlsx"} and all(out[k][0].pixels.any() for k in out)


def test_corrupt_office_files_are_refused(tmp_path):
    require_tool("soffice")
    rng = np.random.default_rng(1)
    for n in ("坏.docx", "坏.doc", "坏.xlsx", "坏.rtf"):
        (tmp_path / n).write_bytes(b"Q" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
        with pytest.raises(DspError, match=rf"^{n.replace('.', '[.]')}: not a valid \.\w+ file"):
            document_pages(tmp_path / n)
    import zipfile
    with zipfile.ZipFile(tmp_path / "报价单.docx", "w") as z:
        z.writestr("word/document.xml", "<garbage")
    with pytest.raises(DspError, match=r"^报价单\.docx: LibreOffice could not convert it: .*could not be loaded"):
        document_pages(tmp_path / "报价单.docx")
    (tmp_path / "截断.docx").write_bytes((tmp_path / "报价单.docx").read_bytes()[:60])
    with pytest.raises(DspError, match=r"^截断\.docx: the \.docx file is damaged"):
        document_pages(tmp_path / "截断.docx")


# --- pictures and fax TIFFs ------------------------------------------------------------------------

def test_image_of_known_shapes_is_scaled_to_the_width(tmp_path):
    img = Image.new("L", (864, 600), 255)
    img.paste(0, (100, 50, 300, 150))  # 200 x 100 black box: x 2, y 2 x 196/204
    img.save(tmp_path / "shapes.png")
    (page,) = document_pages(tmp_path / "shapes.png")
    assert page.pixels.shape == (round(600 * 2 * 196 / 204), 1728)
    rows, cols = np.nonzero(page.pixels)
    assert np.allclose((rows.min(), rows.max() + 1, cols.min(), cols.max() + 1),
                       (50 * 2 * 196 / 204, 150 * 2 * 196 / 204, 200, 600), atol=2)
    img.convert("RGB").save(tmp_path / "shapes.jpg", quality=95)
    (jpg,) = document_pages(tmp_path / "shapes.jpg", fine=False)
    assert jpg.pixels.shape == (round(600 * 2 * 98 / 204), 1728) and abs(int(jpg.pixels.sum()) - 400 * 96) < 800


def test_photo_is_dithered_and_tall_image_split(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 432).astype(np.uint8), (300, 1))
    Image.fromarray(ramp).save(tmp_path / "photo.bmp")
    (page,) = document_pages(tmp_path / "photo.bmp")
    left, mid = page.pixels[:, :200].mean(), page.pixels[:, 800:928].mean()
    assert left > 0.85 and 0.4 < mid < 0.6  # grey comes out as a dot pattern, not a hard edge
    bars = np.ones((5000, 1728), bool)
    for top in range(0, 5000, 100):
        bars[top:top + 60, 100:1600] = False  # lines of "text" 60 rows high, 40 rows apart
    Image.fromarray(bars).save(tmp_path / "tall.gif")
    pages = document_pages(tmp_path / "tall.gif", fine=False)
    heights = [p.pixels.shape[0] for p in pages]
    assert len(pages) == 3 and sum(heights) == round(5000 * 98 / 204) and max(heights) <= 1143
    assert all(p.pixels.shape[1] == 1728 for p in pages)
    assert not pages[0].pixels[-1].any() and not pages[1].pixels[-1].any()  # cut between lines, not through one


def test_fax_tiff_is_read_as_is_and_other_tiff_as_a_picture(tmp_path):
    rng = np.random.default_rng(2)
    pix = [rng.random((300, 1728)) < 0.05, rng.random((120, 1728)) < 0.05]
    write_tiff_f(tmp_path / "fax.tif", [FaxPage(pix[0], 204, 98), FaxPage(pix[1], 204, 196)])
    pages = document_pages(tmp_path / "fax.tif")
    assert [p.y_resolution for p in pages] == [98, 196]
    assert all(np.array_equal(p.pixels, q) for p, q in zip(pages, pix))
    data = bytearray((tmp_path / "fax.tif").read_bytes())
    data[8:400] = b"\x00\x01\xff\xff" * 98  # garbage where the first page's T.4 data is
    (tmp_path / "坏传真.tif").write_bytes(bytes(data))
    with pytest.raises(DspError, match=r"^坏传真\.tif: the fax TIFF is damaged: page 0"):
        document_pages(tmp_path / "坏传真.tif")
    Image.new("RGB", (1728, 200), "black").save(tmp_path / "pic.tiff", compression="tiff_lzw")
    (page,) = document_pages(tmp_path / "pic.tiff")
    assert page.pixels.shape == (round(200 * 196 / 204), 1728) and page.pixels.all()


# --- errors ----------------------------------------------------------------------------------------

def test_missing_empty_unknown_and_folder_are_refused(tmp_path):
    with pytest.raises(DspError, match=r"^无.docx: no such file"):
        document_pages(tmp_path / "无.docx")
    (tmp_path / "空.pdf").write_bytes(b"")
    with pytest.raises(DspError, match=r"^空\.pdf: the file is empty"):
        document_pages(tmp_path / "空.pdf")
    (tmp_path / "x.xyz").write_bytes(b"\x00\x01binary")
    with pytest.raises(DspError, match=r"^x\.xyz: unknown file type \.xyz"):
        document_pages(tmp_path / "x.xyz")
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(DspError, match=r"^dir\.txt: not a regular file"):
        document_pages(tmp_path / "dir.txt")
    (tmp_path / "bad.txt").write_bytes(b"\x81\x30\xff\xff")
    with pytest.raises(DspError, match=r"^bad\.txt: the text is neither UTF-8 nor GB18030"):
        document_pages(tmp_path / "bad.txt")
    (tmp_path / "ff.txt").write_text("a\fb\fc", encoding="utf-8")
    with pytest.raises(DspError, match=r"^ff\.txt: 3 pages, more than the 2"):
        document_pages(tmp_path / "ff.txt", max_pages=2)
    (tmp_path / "ff.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(DriverError, match=r"^ff\.pdf: cannot make a temporary folder in .*nowhere"):
        document_pages(tmp_path / "ff.pdf", workdir=tmp_path / "nowhere")


def test_converter_missing_or_hanging_is_a_driver_error(tmp_path, office, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(faxdocs, "SOFFICE", "no-such-soffice-here")
    with pytest.raises(DriverError, match=r"^报价单\.docx: LibreOffice \(no-such-soffice-here\) is not installed"):
        document_pages(office["docx"], workdir=work)
    monkeypatch.setattr(faxdocs, "GHOSTSCRIPT", "no-such-gs-here")
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(DriverError, match=r"^a\.pdf: Ghostscript \(no-such-gs-here\) is not installed"):
        document_pages(tmp_path / "a.pdf", workdir=work)
    hang = tmp_path / "hang"
    pidfile = tmp_path / "child.pid"
    hang.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pidfile}\nwait\n")
    hang.chmod(0o755)
    monkeypatch.setattr(faxdocs, "SOFFICE", str(hang))
    with pytest.raises(DriverError, match=r"^报价单\.docx: LibreOffice did not finish within 0\.5 s"):
        document_pages(office["docx"], workdir=work, timeout_s=0.5)
    child = pathlib.Path(f"/proc/{pidfile.read_text().strip()}/stat")
    assert not child.exists() or child.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # the grandchild is killed too
    assert os.listdir(work) == []  # nothing left behind


# --- PNG for the web page --------------------------------------------------------------------------

def test_render_png_doubles_standard_rows_and_keeps_pixels(tmp_path):
    pix = np.zeros((1143, 1728), bool)
    pix[100:110, 200:300] = True
    render_png(FaxPage(pix, 204, 98), tmp_path / "s.png")
    render_png(FaxPage(pix, 204, 196), tmp_path / "f.png")
    with Image.open(tmp_path / "s.png") as s, Image.open(tmp_path / "f.png") as f:
        assert s.mode == f.mode == "1" and s.size == (1728, 2286) and f.size == (1728, 1143)
        assert np.array_equal(~np.asarray(s), np.repeat(pix, 2, axis=0))
        assert np.array_equal(~np.asarray(f), pix)
    render_png(FaxPage(~pix, 204, 196), tmp_path / "f.png")  # replaces the old file
    with Image.open(tmp_path / "f.png") as f:
        assert np.array_equal(np.asarray(f), pix)
    assert sorted(os.listdir(tmp_path)) == ["f.png", "s.png"]  # no temp files left


def test_tiff_to_pngs_writes_every_page(tmp_path):
    rng = np.random.default_rng(3)
    pix = [rng.random((200, 1728)) < 0.1, rng.random((400, 1728)) < 0.1]
    write_tiff_f(tmp_path / "in.tif", [FaxPage(pix[0], 204, 98), FaxPage(pix[1], 204, 196)], two_d=True)
    out = tmp_path / "web"
    out.mkdir()
    paths = tiff_to_pngs(tmp_path / "in.tif", out)
    assert paths == [str(out / "in-001.png"), str(out / "in-002.png")]
    with Image.open(paths[0]) as a, Image.open(paths[1]) as b:
        assert a.size == (1728, 400) and b.size == (1728, 400)
        assert np.array_equal(~np.asarray(a), np.repeat(pix[0], 2, axis=0))
        assert np.array_equal(~np.asarray(b), pix[1])
    with pytest.raises(DspError, match=r"missing\.tif: cannot read the fax"):
        tiff_to_pngs(tmp_path / "missing.tif", out)
    (tmp_path / "not.tif").write_bytes(b"hello")
    with pytest.raises(DspError, match=r"not\.tif: not a TIFF file"):
        tiff_to_pngs(tmp_path / "not.tif", out)
    assert sorted(os.listdir(out)) == ["in-001.png", "in-002.png"]
