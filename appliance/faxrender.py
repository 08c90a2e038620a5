"""Pixels of fax pages: plain text and pictures onto A4 at fax resolution, fax pages to PNG.

The half of ``appliance.faxdocs`` that needs no external program. Text is laid out
with Pillow and the Noto Sans Mono CJK SC face: a monospaced face with half-width
Latin and full-width Han keeps the space-aligned columns of the reports Chinese
business systems export as .txt, and drawing it ourselves is deterministic and
about a hundred times quicker than a LibreOffice round trip.

Geometry: a row is 1728 pixels at 204 dots per inch (215 mm, T.4's A4 width); an
A4 page is 1143 lines at standard resolution (98 lpi, 3.85 lines/mm) and 2287 at
fine (196 lpi). Text is drawn on a square 204 x 204 dpi grid, in grey, then
squeezed to the page's lines and thresholded.
"""

from __future__ import annotations

import os
import re
import unicodedata
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from appliance.atomicfile import replace_atomically
from appliance.errors import DspError
from dsp.fax.t4 import A4_WIDTH
from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, X_DPI, FaxPage, read_tiff_f

__all__ = ["A4_ROWS_FINE", "A4_ROWS_STANDARD", "page_rows", "decode_text", "text_pages", "picture_pages",
           "render_png", "tiff_to_pngs"]

A4_ROWS_STANDARD, A4_ROWS_FINE = 1143, 2287
FONT_PATH = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FONT_FACE = "Noto Sans Mono CJK SC"
FONT_PT = 12
LINE_SPACING = 1.4
TAB_COLUMNS = 8  # half-width columns, as in a terminal
MM = X_DPI / 25.4  # pixels per millimetre on the square drawing grid
# left 20 mm for a binding; top 20 mm leaves room for the header line the sending modem prints
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = (round(m * MM) for m in (20, 15, 20, 15))
SQUARE_ROWS = round(297 * MM)  # A4 height on the square grid
# after squeezing, grey up to a little lighter than mid-grey counts as black, so strokes that the
# halving for standard resolution smears over two rows still keep one
TEXT_THRESHOLD = 168
# closing punctuation may hang into the right margin rather than start a line
_CLOSING = set("，。、；：？！）」』》〉】〕’”％,.;:?!)]}%")
_TOKENS = re.compile(r"\t| +|[^\t ]")


def page_rows(fine: bool) -> int:
    """Lines in an A4 page: 2287 fine, 1143 standard."""
    return A4_ROWS_FINE if fine else A4_ROWS_STANDARD


def _resolution(fine: bool) -> int:
    return FINE_LPI if fine else STANDARD_LPI


def decode_text(data: bytes, name: str) -> str:
    """Bytes of a text file as str: UTF-8 (BOM or not), UTF-16 with a BOM, else GB18030 (which covers GBK).

    Raises
    ------
    DspError
        Neither decodes; the message names ``name``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Windows Notepad's "Unicode"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise DspError(f"{name}: the UTF-16 text is damaged at byte {e.start}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise DspError(f"{name}: the text is neither UTF-8 nor GB18030/GBK (bad byte at offset {e.start})") from None


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    size = round(FONT_PT / 72 * X_DPI)
    for index in range(10):  # find the face by name: the order inside the .ttc is the packager's choice
        try:
            font = ImageFont.truetype(FONT_PATH, size, index=index)
        except OSError:
            break
        if font.getname()[0] == FONT_FACE:
            return font
    raise DspError(f"font {FONT_FACE!r} not found in {FONT_PATH} (Debian package fonts-noto-cjk)")


@lru_cache(maxsize=8192)
def _advance(ch: str) -> int:
    return round(_font().getlength(ch))


def _length(run: str) -> int:
    """Width of a run in pixels: the sum of its characters' advances (a monospaced face does not kern)."""
    return sum(_advance(c) for c in run)


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _layout_line(text: str, width: int) -> list[list[tuple[int, str]]]:
    """One source line as display lines, each a list of (x, run) with x in pixels from the left margin."""
    half = _advance("0")
    tab = TAB_COLUMNS * half
    # runs of narrow non-space characters form words; a wide (CJK) character is a token on its own
    tokens: list[str] = []
    for m in _TOKENS.finditer(text):
        tok = m.group()
        narrow = tok[0] not in "\t " and not _wide(tok[0])
        if narrow and tokens and tokens[-1][0] not in "\t " and not _wide(tokens[-1][-1]):
            tokens[-1] += tok
        else:
            tokens.append(tok)
    lines: list[list[tuple[int, str]]] = [[]]
    x, end = 0, -1  # end: where the last run drawn on this line stops

    def newline() -> None:
        nonlocal x, end
        lines.append([])
        x, end = 0, -1

    def put(run: str, w: int) -> None:
        # runs that touch are drawn with one call: a monospaced face has whole-pixel advances
        nonlocal x, end
        line = lines[-1]
        if line and end == x:
            line[-1] = (line[-1][0], line[-1][1] + run)
        else:
            line.append((x, run))
        x = end = x + w

    for tok in tokens:
        if tok == "\t":
            x = (x // tab + 1) * tab
            if x > width:
                newline()
            continue
        w = _length(tok)
        if tok[0] == " ":
            if x or len(lines) == 1:  # spaces that open a wrapped line are dropped, an indent is kept
                put(tok, w)
            continue
        if x + w > width and x and not (tok in _CLOSING and x + w <= width + 2 * half):
            newline()
        while w > width:  # a word longer than a line breaks anywhere
            cut = len(tok) - 1
            while cut > 1 and _length(tok[:cut]) > width - x:
                cut -= 1
            put(tok[:cut], _length(tok[:cut]))
            tok = tok[cut:]
            w = _length(tok)
            newline()
        put(tok, w)
    return lines


def text_pages(text: str, *, fine: bool = True) -> list[FaxPage]:
    """Plain text on A4 pages: margins, wrapping, tabs every 8 columns, a form feed starts a page.

    Parameters
    ----------
    text : str
        Chinese and English mixed; CJK wraps at any character, other text at spaces.
    fine : bool
        204 x 196 dpi (2287 rows a page); else 204 x 98 (1143 rows).

    Returns
    -------
    list of FaxPage
        At least one page; each (page_rows(fine), 1728), bool.
    """
    font = _font()
    width = A4_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    line_h = round(font.size * LINE_SPACING)
    per_page = (SQUARE_ROWS - MARGIN_TOP - MARGIN_BOTTOM) // line_h
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\t\n\f" or unicodedata.category(c) != "Cc")
    sheets: list[list[list[tuple[int, str]]]] = []
    for chunk in text.rstrip("\f\n").split("\f"):
        lines = [ln for src in chunk.split("\n") for ln in _layout_line(src.rstrip(), width)]
        sheets += [lines[i:i + per_page] for i in range(0, max(len(lines), 1), per_page)]
    pages = []
    for sheet in sheets:
        img = Image.new("L", (A4_WIDTH, SQUARE_ROWS), 255)
        draw = ImageDraw.Draw(img)
        for row, runs in enumerate(sheet):
            for x, run in runs:
                draw.text((MARGIN_LEFT + x, MARGIN_TOP + row * line_h), run, font=font, fill=0)
        img = img.resize((A4_WIDTH, page_rows(fine)), Image.Resampling.BOX)
        pages.append(FaxPage(np.asarray(img) < TEXT_THRESHOLD, X_DPI, _resolution(fine)))
    return pages


def _is_photo(grey: Image.Image) -> bool:
    """Many mid-grey pixels: a photograph (dither it); few: line art or a scan of text (threshold it)."""
    hist = grey.histogram()
    return sum(hist[40:216]) > 0.3 * sum(hist)


def _cut_rows(ink: np.ndarray, rows: int) -> list[int]:
    """Where to cut a tall picture into pages: at a blank row in the last eighth of a page if there is one."""
    cuts, at = [], 0
    blank = ~ink.any(axis=1)
    while ink.shape[0] - at > rows:
        end = at + rows
        look = np.flatnonzero(blank[end - rows // 8:end])
        end = end - rows // 8 + look[-1] + 1 if look.size else end
        cuts.append(end)
        at = end
    return cuts


def picture_pages(img: Image.Image, name: str, *, fine: bool = True) -> list[FaxPage]:
    """A picture scaled to the 1728-pixel width, thresholded or dithered, split into A4-long pages.

    Parameters
    ----------
    img : PIL.Image.Image
        Any mode; transparency is laid on white.
    name : str
        The file's name, for messages.
    fine : bool
        204 x 196 dpi; else 204 x 98.

    Returns
    -------
    list of FaxPage
        Each 1728 wide and at most page_rows(fine) long; the last may be shorter.
    """
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        back = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(back, img)
    grey = img.convert("L")
    w, h = grey.size
    if not w or not h:
        raise DspError(f"{name}: the picture has no pixels ({w} x {h})")
    res = _resolution(fine)
    rows = max(1, round(h * A4_WIDTH / w * res / X_DPI))
    if rows > 40 * page_rows(fine):
        raise DspError(f"{name}: the picture is {w} x {h} pixels: more than 40 pages long once fitted to the width")
    photo = _is_photo(grey)
    grey = grey.resize((A4_WIDTH, rows), Image.Resampling.LANCZOS)
    # Pillow's "1" is Floyd-Steinberg by default; Dither.NONE thresholds at 128
    bits = grey.convert("1", dither=Image.Dither.FLOYDSTEINBERG if photo else Image.Dither.NONE)
    ink = ~np.asarray(bits)
    bounds = [0, *_cut_rows(ink, page_rows(fine)), rows]
    return [FaxPage(ink[a:b].copy(), X_DPI, res) for a, b in zip(bounds, bounds[1:])]


def render_png(page: FaxPage, path: str | os.PathLike) -> None:
    """Write a fax page as a 1-bit PNG for the web page, atomically, with square pixels.

    A standard-resolution page (98 lpi against 204 dpi across) has each row
    repeated twice so it is not shown squashed; a fine page is written as is.

    Parameters
    ----------
    page : FaxPage
    path : str or PathLike
        Replaced atomically; readable by all (0644) so a separate web server can serve it.
    """
    pix = np.asarray(page.pixels, dtype=bool)
    if pix.ndim != 2 or 0 in pix.shape:
        raise DspError(f"{os.fspath(path)}: page pixels must have shape (rows, width), got {pix.shape}")
    if page.y_resolution <= 0 or page.x_resolution <= 0:
        raise DspError(f"{os.fspath(path)}: page resolution {page.x_resolution} x {page.y_resolution} is not positive")
    repeat = max(1, round(page.x_resolution / page.y_resolution))
    if repeat > 1:
        pix = np.repeat(pix, repeat, axis=0)
    img = Image.fromarray(~pix)  # bool array -> mode "1", True = white
    dpi = (round(page.x_resolution), round(page.y_resolution * repeat))
    replace_atomically(path, lambda tmp: img.save(tmp, format="PNG", dpi=dpi, optimize=True), mode=0o644,
                       suffix=".png")


def tiff_to_pngs(tiff_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[str]:
    """Every page of a received TIFF-F fax as ``<out_dir>/<stem>-001.png``, ``-002.png``, ...

    Parameters
    ----------
    tiff_path : str or PathLike
    out_dir : str or PathLike
        Must exist.

    Returns
    -------
    list of str
        The paths written, in page order. On a failure none of them is left behind.

    Raises
    ------
    DspError
        The file is missing or not a TIFF-F we can read; the message names it.
    """
    name = os.fspath(tiff_path)
    try:
        pages = read_tiff_f(tiff_path)
    except OSError as e:
        raise DspError(f"{name}: cannot read the fax: {e.strerror or e}") from None
    except DspError as e:
        msg = str(e)
        raise DspError(msg if name in msg else f"{name}: {msg}") from None
    if not pages:
        raise DspError(f"{name}: the fax has no pages")
    stem = os.path.splitext(os.path.basename(name))[0]
    written: list[str] = []
    try:
        for number, page in enumerate(pages, 1):
            out = os.path.join(os.fspath(out_dir), f"{stem}-{number:03d}.png")
            render_png(page, out)
            written.append(out)
    except BaseException:
        for out in written:
            try:
                os.unlink(out)
            except FileNotFoundError:
                pass
        raise
    return written
