"""Seeded fax test pages: text-like and dense drawn A4 pages (1728 pixels wide), and TIFF-F documents.

Pages are bool arrays of shape (rows, 1728), True = black. A4 is 297 mm long:
1143 rows at standard resolution (3.85 lines/mm), 2287 at fine (7.7 lines/mm).
Drawings are made in standard-resolution coordinates and sampled twice as
densely down the page at fine resolution, so both show the same picture.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np

from dsp.fax.t4 import A4_WIDTH
from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, X_DPI, FaxPage, read_tiff_f, write_tiff_f
from tests.tools import require_tool

__all__ = ["A4_ROWS_STANDARD", "A4_ROWS_FINE", "a4_rows", "text_page", "random_runs_page", "alternating_page",
           "drawing_page", "three_pages", "three_page_document", "write_document"]

A4_ROWS_STANDARD, A4_ROWS_FINE = 1143, 2287


def a4_rows(fine: bool) -> int:
    """Rows of an A4 page at fine or standard resolution."""
    return A4_ROWS_FINE if fine else A4_ROWS_STANDARD


def text_page(seed: int, fine: bool = False, rows: int | None = None) -> np.ndarray:
    """Typewritten-looking text: lines of glyphs of 2-4 random strokes in a 16x24 cell, with margins.

    Parameters
    ----------
    seed : int
    fine : bool
        Fine resolution: glyphs and line pitch twice as many rows tall.
    rows : int, optional
        Page length; an A4 page by default.

    Returns
    -------
    ndarray, shape (rows, 1728), bool
    """
    rng = np.random.default_rng(seed)
    font = np.zeros((60, 24, 16), dtype=bool)
    for glyph in font:
        for _ in range(rng.integers(2, 5)):
            if rng.random() < 0.5:  # vertical stroke
                c, r0 = rng.integers(0, 10), rng.integers(0, 8)
                glyph[r0:r0 + rng.integers(8, 19), c:c + 2] = True
            else:  # horizontal stroke
                r, c0 = rng.integers(0, 19), rng.integers(0, 6)
                glyph[r:r + 2, c0:c0 + rng.integers(4, 7)] = True
    font[:, :, 12:] = False  # letter spacing
    font[:, 20:, :] = False  # line spacing
    scale = 2 if fine else 1
    font = np.repeat(font, scale, axis=1)
    rows = a4_rows(fine) if rows is None else rows
    height = 24 * scale
    page = np.zeros((rows, A4_WIDTH), dtype=bool)
    for top in range(40 * scale, rows - height, 30 * scale):
        for left in range(100, A4_WIDTH - 116, 16):
            if rng.random() < 0.85:
                page[top:top + height, left:left + 16] = font[rng.integers(60)]
    return page


def random_runs_page(seed: int, rows: int = 200) -> np.ndarray:
    """Rows of geometric run lengths (mean 40), some very long, some of one pixel."""
    rng = np.random.default_rng(seed)
    page = np.zeros((rows, A4_WIDTH), dtype=bool)
    for i in range(rows):
        runs = np.minimum(rng.geometric(1 / rng.choice([2, 40, 900]), size=A4_WIDTH), A4_WIDTH)
        colour = np.arange(runs.size) % 2 == int(rng.integers(2))
        page[i] = np.repeat(colour, runs)[:A4_WIDTH]
    return page


def alternating_page(rows: int = 100) -> np.ndarray:
    """Checkerboard of single pixels: every run is 1, the worst case for T.4."""
    return (np.add.outer(np.arange(rows), np.arange(A4_WIDTH)) % 2).astype(bool)


def three_pages() -> list[FaxPage]:
    """A text page, random runs at fine resolution, and a checkerboard with its first column white.

    The first column is white because libtiff 4.5's 1-D decoder reports "Buffer overflow" on a
    1728-pixel row of 1729 runs (white 0, then 1728 one-pixel runs), even one libtiff encoded itself
    (``tiffcp -c g3:fill`` of a checkerboard); that row is valid T.4 and our own tests cover it.
    """
    board = alternating_page(40)
    board[:, 0] = False
    return [FaxPage(text_page(1, rows=300), X_DPI, STANDARD_LPI), FaxPage(random_runs_page(2, 150), X_DPI, FINE_LPI),
            FaxPage(board, X_DPI, FINE_LPI)]


class _Canvas:
    """A page to draw on in standard-resolution coordinates (x across, y down, in pixels of 1/204 inch
    across and 1/98 inch down); ``scale`` rows per standard row."""

    def __init__(self, rows: int, scale: int) -> None:
        self.pix = np.zeros((rows, A4_WIDTH), dtype=bool)
        self.scale = scale

    def _box(self, x0: float, y0: float, x1: float, y1: float):
        """Pixel-centre coordinates of the rows and columns that a box covers (clipped to the page)."""
        c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)) + 1, A4_WIDTH)
        r0 = max(int(np.floor(y0 * self.scale)), 0)
        r1 = min(int(np.ceil(y1 * self.scale)) + 1, self.pix.shape[0])
        if c0 >= c1 or r0 >= r1:
            return None
        ys = (np.arange(r0, r1) / self.scale)[:, None]
        xs = np.arange(c0, c1)[None, :].astype(float)
        return (slice(r0, r1), slice(c0, c1)), xs, ys

    def fill(self, box, mask_fn) -> None:
        got = self._box(*box)
        if got is not None:
            where, xs, ys = got
            self.pix[where] |= mask_fn(xs, ys)

    def line(self, x0: float, y0: float, x1: float, y1: float, width: float) -> None:
        """A straight stroke: points within width/2 of the segment."""
        dx, dy = x1 - x0, y1 - y0
        length2 = max(dx * dx + dy * dy, 1e-9)
        half = width / 2

        def mask(xs, ys):
            t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
            return (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2 <= half * half

        self.fill((min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half), mask)

    def ring(self, cx: float, cy: float, r: float, width: float, filled: bool = False) -> None:
        def mask(xs, ys):
            d2 = (xs - cx) ** 2 + (ys - cy) ** 2
            return d2 <= r * r if filled else (d2 <= r * r) & (d2 >= (r - width) ** 2)

        self.fill((cx - r, cy - r, cx + r, cy + r), mask)

    def hatch(self, box, period: float, width: float, angle: float, shape: str) -> None:
        """Parallel lines at ``angle`` (radians), clipped to the box or to the ellipse inside it."""
        x0, y0, x1, y1 = box
        cx, cy, ax, ay = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        ca, sa = np.cos(angle), np.sin(angle)

        def mask(xs, ys):
            m = np.mod(xs * ca + ys * sa, period) < width
            if shape == "ellipse":
                m &= ((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2 <= 1.0
            return m

        self.fill(box, mask)

    def triangle(self, pts: np.ndarray) -> None:
        (ax, ay), (bx, by), (cx, cy) = pts

        def mask(xs, ys):
            d1 = (xs - bx) * (ay - by) - (ax - bx) * (ys - by)
            d2 = (xs - cx) * (by - cy) - (bx - cx) * (ys - cy)
            d3 = (xs - ax) * (cy - ay) - (cx - ax) * (ys - ay)
            neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
            pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
            return ~(neg & pos)

        self.fill((pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()), mask)


def drawing_page(seed: int, fine: bool = False) -> np.ndarray:
    """A dense technical drawing that T.4 codes poorly: hatched areas, many thin lines at all angles,
    circles, filled shapes and stippled regions, inside a frame.

    Parameters
    ----------
    seed : int
    fine : bool

    Returns
    -------
    ndarray, shape (1143 or 2287, 1728), bool
    """
    rng = np.random.default_rng(seed)
    c = _Canvas(a4_rows(fine), 2 if fine else 1)
    h = A4_ROWS_STANDARD
    for inset in (30.0, 36.0):  # double frame
        left, right, top, bottom = inset, A4_WIDTH - inset, inset, h - inset
        for x0, y0, x1, y1 in ((left, top, right, top), (left, bottom, right, bottom), (left, top, left, bottom),
                               (right, top, right, bottom)):
            c.line(x0, y0, x1, y1, 2.0)

    def spot() -> tuple[float, float]:
        return float(rng.uniform(60, A4_WIDTH - 60)), float(rng.uniform(60, h - 60))

    for _ in range(14):  # hatched rectangles and ellipses: short runs on every row they cross
        x, y = spot()
        w, hh = rng.uniform(80, 320), rng.uniform(40, 180)
        c.hatch((x - w / 2, y - hh / 2, x + w / 2, y + hh / 2), float(rng.uniform(5, 11)),
                float(rng.uniform(1.5, 3.5)), float(rng.uniform(0, np.pi)), str(rng.choice(["box", "ellipse"])))
    for _ in range(40):  # circles of all sizes, some filled
        x, y = spot()
        c.ring(x, y, float(rng.uniform(8, 150)), float(rng.uniform(1.5, 4)), filled=rng.random() < 0.2)
    for _ in range(10):  # filled triangles
        x, y = spot()
        c.triangle(np.array([x, y]) + rng.uniform(-90, 90, size=(3, 2)))
    for _ in range(160):  # thin lines at random angles
        x, y = spot()
        a, n = rng.uniform(0, 2 * np.pi), rng.uniform(40, 700)
        c.line(x, y, x + n * np.cos(a), y + n * np.sin(a) / 2, float(rng.uniform(1.0, 3.0)))
    for _ in range(5):  # stippled (random dot) areas, the hardest thing for run-length codes
        x, y = spot()
        c.fill((x - 70, y - 30, x + 70, y + 30), lambda xs, ys: rng.random((ys.size, xs.size)) < 0.3)
    return c.pix


def three_page_document(fine: bool = False) -> list[FaxPage]:
    """A text page and two dense drawings, all at the one resolution."""
    lpi = FINE_LPI if fine else STANDARD_LPI
    return [FaxPage(text_page(1, fine), X_DPI, lpi), FaxPage(drawing_page(2, fine), X_DPI, lpi),
            FaxPage(drawing_page(3, fine), X_DPI, lpi)]


def write_document(path: str | os.PathLike, pages: list[FaxPage], two_d: bool = False) -> None:
    """Write ``pages`` as a TIFF-F file, modified READ (``two_d``) or modified Huffman."""
    write_tiff_f(path, pages, two_d=two_d)


def assert_identical_files(sent, received, pages) -> None:
    """The received TIFF-F holds ``pages`` pixel for pixel and resolution, by our reader and by ``tiffcmp -t``."""
    got = read_tiff_f(received)
    assert len(got) == len(pages)
    for want, page in zip(pages, got):
        assert np.array_equal(page.pixels, want.pixels)
        assert (page.x_resolution, page.y_resolution) == (want.x_resolution, want.y_resolution)
    proc = subprocess.run([require_tool("tiffcmp"), "-t", str(sent), str(received)], capture_output=True, text=True,
                          timeout=60)
    # -t: tags differ (spandsp writes its own), so tiffcmp lists them but exits 0 when every pixel matches
    assert proc.returncode == 0, proc.stdout + proc.stderr
