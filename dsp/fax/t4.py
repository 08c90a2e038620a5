"""ITU-T T.4 page coding: modified Huffman (1-D, §4.1) and modified READ (2-D, §4.2), both ways.

A page is an array of shape ``(rows, width)``, bool or uint8, nonzero = black
(A4 is 1728 pixels wide). The coded form is bytes in transmission order, the
first bit sent being the most significant bit of the first byte (TIFF
FillOrder 1; :func:`reverse_bits` gives FillOrder 2, the order of fax modems).

Layout written by :func:`encode_page`: every row is preceded by an EOL
(``000000000001``), followed in 2-D coding by a tag bit (1: the row is 1-D
coded, 0: 2-D coded against the row above); with ``k`` = 2 (standard
resolution) or 4 (fine) every k-th row is 1-D coded. Optional fill bits (zeros)
before each EOL make it end on a byte boundary; ``min_row_bits`` pads rows for
the receiver's minimum scan line time. The page ends with RTC (six EOLs, each
with tag bit 1 in 2-D coding) unless ``rtc=False`` (TIFF strips carry none).

:func:`decode_page` (in :mod:`dsp.fax.t4decode`) reads that layout, with or
without fill bits and RTC, and raises :class:`DspError` naming the row and bit
offset of corrupt data; :func:`decode_page_lenient` instead resynchronises at
the next EOL and repeats the row above, as a fax receiver does, and reports
which rows were bad.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

import numpy as np

from appliance.errors import DspError
from dsp.fax.t4codes import BLACK_CODES, EOL, MODE_CODES, WHITE_CODES
from dsp.fax.t4decode import A4_WIDTH, changing_elements, decode_page, decode_page_lenient

__all__ = [
    "A4_WIDTH", "encode_page", "decode_page", "decode_page_lenient", "encode_row_1d", "encode_row_2d",
    "changing_elements", "reverse_bits",
]

_MAX_K = 1 << 16


@lru_cache(maxsize=8)
def _run_codes(width: int) -> tuple[list[str], list[str]]:
    """Complete code strings (make-ups + terminating code) for every run 0..width, white and black."""
    out = []
    for codes in (WHITE_CODES, BLACK_CODES):
        table = []
        for run in range(width + 1):
            parts, rest = [], run
            while rest > 2560 + 63:
                parts.append(codes[2560])
                rest -= 2560
            if rest >= 64:
                parts.append(codes[rest & ~63])
            parts.append(codes[rest & 63])
            table.append("".join(parts))
        out.append(table)
    return out[0], out[1]


def _check_page(page: np.ndarray) -> np.ndarray:
    p = np.asarray(page)
    if p.ndim != 2 or p.shape[1] == 0:
        raise DspError(f"a T.4 page must be a 2-D array (rows, width), got shape {p.shape}")
    if p.dtype != bool and p.dtype != np.uint8:
        raise DspError(f"a T.4 page must be bool or uint8, got dtype {p.dtype}")
    return p != 0


def encode_row_1d(row: np.ndarray) -> str:
    """Modified Huffman code of one row, as a string of '0'/'1' (no EOL).

    Parameters
    ----------
    row : ndarray, shape (width,), bool or uint8
    """
    r = np.asarray(row) != 0
    return _mh_row(changing_elements(r), r.size)


def _mh_row(changes: list[int], width: int) -> str:
    white, black = _run_codes(width)
    tables = (white, black)
    parts, a0 = [], 0
    for i, pos in enumerate(changes + [width]):
        parts.append(tables[i & 1][pos - a0])
        a0 = pos
    return "".join(parts)


def encode_row_2d(row: np.ndarray, ref: np.ndarray) -> str:
    """Modified READ code of one row against the reference row above, as '0'/'1' (no EOL, no tag).

    Parameters
    ----------
    row, ref : ndarray, shape (width,), bool or uint8
    """
    r = np.asarray(row) != 0
    return _mr_row(changing_elements(r), changing_elements(np.asarray(ref) != 0), r.size)


def _mr_row(cur: list[int], ref: list[int], width: int) -> str:
    white, black = _run_codes(width)
    runs = (white, black)
    cur = cur + [width, width]
    ref = ref + [width, width, width]
    parts, a0, colour = [], -1, 0
    while a0 < width:
        i = bisect_right(cur, a0)
        a1 = cur[i]
        j = bisect_right(ref, a0)
        if (j & 1) != colour:  # b1 must be of the colour opposite to a0's: skip one element
            j += 1
        b1, b2 = ref[j], ref[j + 1]
        if b2 < a1:
            parts.append(MODE_CODES["P"])
            a0 = b2
        elif abs(a1 - b1) <= 3:
            parts.append(MODE_CODES[a1 - b1])
            a0, colour = a1, colour ^ 1
        else:
            a2 = cur[i + 1]
            start = max(a0, 0)
            parts += [MODE_CODES["H"], runs[colour][a1 - start], runs[colour ^ 1][a2 - a1]]
            a0 = a2
    return "".join(parts)


def encode_page(page: np.ndarray, *, k: int = 1, align_eol: bool = False, rtc: bool = True,
                min_row_bits: int = 0) -> bytes:
    """T.4-code a page.

    Parameters
    ----------
    page : ndarray, shape (rows, width), bool or uint8
        Nonzero = black.
    k : int
        1 for modified Huffman (1-D, no tag bits); 2 or more for modified READ,
        every k-th row 1-D coded (T.4: 2 at standard, 4 at fine resolution).
    align_eol : bool
        Insert fill bits so that every EOL ends on a byte boundary.
    rtc : bool
        End with RTC (six EOLs).
    min_row_bits : int
        Pad every row (coded data plus EOL and tag) with zeros to at least this many bits.

    Returns
    -------
    bytes
        The coded page, first bit in the most significant bit; the last byte is padded with zeros.
    """
    p = _check_page(page)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= _MAX_K:
        raise DspError(f"T.4 parameter k must be 1 (1-D) or 2..{_MAX_K} (2-D), got {k!r}")
    if min_row_bits < 0:
        raise DspError(f"min_row_bits must be >= 0, got {min_row_bits!r}")
    width = p.shape[1]
    out: list[str] = []
    length = 0

    def eol(tag: str) -> None:
        nonlocal length
        if align_eol:
            pad = -(length + len(EOL)) % 8
            out.append("0" * pad)
            length += pad
        out.append(EOL + tag)
        length += len(EOL) + len(tag)

    ref: list[int] = []
    for i in range(p.shape[0]):
        cur = changing_elements(p[i])
        start = length
        if k == 1:
            eol("")
            code = _mh_row(cur, width)
        elif i % k == 0:
            eol("1")
            code = _mh_row(cur, width)
        else:
            eol("0")
            code = _mr_row(cur, ref, width)
        out.append(code)
        length += len(code)
        short = min_row_bits - (length - start)
        if short > 0:
            out.append("0" * short)
            length += short
        ref = cur
    if rtc:
        for _ in range(6):
            eol("" if k == 1 else "1")
    bits = np.frombuffer("".join(out).encode("ascii"), dtype=np.uint8) - ord("0")
    return np.packbits(bits).tobytes()


_REVERSE = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], dtype=np.uint8)


def reverse_bits(data: bytes) -> bytes:
    """Reverse the bit order within every byte (TIFF FillOrder 1 <-> 2)."""
    return _REVERSE[np.frombuffer(bytes(data), dtype=np.uint8)].tobytes()
