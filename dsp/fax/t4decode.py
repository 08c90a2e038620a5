"""ITU-T T.4 decoding of modified Huffman and modified READ pages (the layout is described in :mod:`dsp.fax.t4`).

The coded bytes are unpacked to bits once; a 13-bit look-ahead window at every
bit position indexes the code tables of :mod:`dsp.fax.t4codes`, and a sorted
array of the 1 bits finds EOLs (eleven or more zeros, then a one) by binary
search. Rows come back as changing elements and are turned into pixels with a
cumulative sum.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

import numpy as np

from appliance.errors import DspError
from dsp.fax.t4codes import BLACK_CODES, MODE_CODES, WHITE_CODES, WINDOW, decode_table

__all__ = ["decode_page", "decode_page_lenient"]

A4_WIDTH = 1728


def changing_elements(row: np.ndarray) -> list[int]:
    """Positions where a row changes colour (T.4 §4.2.1.3.1), the first one being white -> black.

    Parameters
    ----------
    row : ndarray, shape (width,), bool or uint8
        Nonzero = black; an imaginary white pixel precedes the row.

    Returns
    -------
    list of int
        Strictly increasing positions in ``[0, width)``; elements at even
        indices are black pixels, at odd indices white ones.
    """
    r = np.asarray(row) != 0
    edges = np.flatnonzero(r[1:] != r[:-1]) + 1
    if r.size and r[0]:
        edges = np.concatenate(([0], edges))
    return edges.tolist()


_WHITE_T, _BLACK_T, _MODE_T = (decode_table(c) for c in (WHITE_CODES, BLACK_CODES, MODE_CODES))


class _Bits:
    """The coded stream as bits, with 13-bit look-ahead windows and a fast search for the next 1."""

    def __init__(self, data: bytes):
        bits = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))
        self.n = bits.size
        padded = np.concatenate((bits, np.zeros(WINDOW, dtype=np.uint8))).astype(np.uint16)
        win = np.zeros(self.n, dtype=np.uint16)
        for j in range(WINDOW):
            win |= padded[j:j + self.n] << (WINDOW - 1 - j)
        self.win = array("H", win.tobytes())
        self.bits = bits
        self.ones = np.flatnonzero(bits)

    def next_one(self, pos: int) -> int:
        """Position of the first 1 bit at or after ``pos``, or ``n`` if there is none."""
        i = int(np.searchsorted(self.ones, pos))
        return int(self.ones[i]) if i < self.ones.size else self.n


def _run(bits: _Bits, pos: int, colour: int, limit: int, row: int) -> tuple[int, int]:
    """Read one run (make-ups and a terminating code) starting at bit ``pos``; return (run, new pos)."""
    symbols, lengths = _BLACK_T if colour else _WHITE_T
    win, total = bits.win, 0
    while True:
        if pos >= bits.n:
            raise DspError(f"T.4 row {row}, bit {pos}: data ends inside a {'black' if colour else 'white'} run")
        w = win[pos]
        n = lengths[w]
        if n == 0:
            raise DspError(f"T.4 row {row}, bit {pos}: no {'black' if colour else 'white'} run code "
                           f"starts with {w:013b}")
        run = symbols[w]
        pos += n
        total += run
        if total > limit:
            raise DspError(f"T.4 row {row}, bit {pos}: run of {total} passes the row end ({limit} left)")
        if run < 64:
            return total, pos


def _decode_mh(bits: _Bits, pos: int, width: int, row: int) -> tuple[list[int], int]:
    changes, a0, colour = [], 0, 0
    while a0 < width:
        run, pos = _run(bits, pos, colour, width - a0, row)
        a0 += run
        changes.append(a0)
        colour ^= 1
    return changes, pos


def _decode_mr(bits: _Bits, pos: int, width: int, ref: list[int], row: int) -> tuple[list[int], int]:
    symbols, lengths = _MODE_T
    ref = ref + [width, width, width]
    win, changes, a0, colour = bits.win, [], -1, 0
    while a0 < width:
        if pos >= bits.n:
            raise DspError(f"T.4 row {row}, bit {pos}: data ends inside a 2-D coded row")
        w = win[pos]
        n = lengths[w]
        if n == 0:
            raise DspError(f"T.4 row {row}, bit {pos}: no 2-D mode code starts with {w:013b}")
        mode = symbols[w]
        at = pos
        pos += n
        j = bisect_right(ref, a0)
        if (j & 1) != colour:
            j += 1
        b1 = ref[j]
        if mode == "P":
            a0 = ref[j + 1]
            if a0 >= width:
                raise DspError(f"T.4 row {row}, bit {at}: pass mode with no b2 before the row end")
        elif mode == "H":
            start = max(a0, 0)
            r1, pos = _run(bits, pos, colour, width - start, row)
            r2, pos = _run(bits, pos, colour ^ 1, width - start - r1, row)
            changes += [start + r1, start + r1 + r2]
            a0 = start + r1 + r2
        else:
            a1 = b1 + mode
            if a1 > width or a1 <= a0 or a1 < 0:
                raise DspError(f"T.4 row {row}, bit {at}: vertical mode V({mode}) puts a1 at {a1}, "
                               f"outside ({a0}, {width}]")
            changes.append(a1)
            a0, colour = a1, colour ^ 1
    return changes, pos


def _pixels(changes: list[int], width: int) -> np.ndarray:
    counts = np.bincount(np.asarray(changes, dtype=np.int64), minlength=width + 1)
    return (np.cumsum(counts[:width]) & 1).astype(bool)


def decode_page(data: bytes, width: int = A4_WIDTH, *, two_d: bool = False,
                rows: int | None = None) -> np.ndarray:
    """Decode a T.4-coded page, strictly.

    Parameters
    ----------
    data : bytes
        Coded page, first bit in the most significant bit (see :func:`dsp.fax.t4.reverse_bits`).
    width : int
        Pixels per row.
    two_d : bool
        The stream is modified READ: every EOL is followed by a tag bit.
    rows : int, optional
        Stop after this many rows (TIFF strips); otherwise decode up to RTC or
        the end of the data.

    Returns
    -------
    ndarray, shape (rows, width), bool
        True = black.

    Raises
    ------
    DspError
        Corrupt data, naming the row and bit offset.
    """
    return _decode(data, width, two_d, rows, lenient=False)[0]


def decode_page_lenient(data: bytes, width: int = A4_WIDTH, *, two_d: bool = False,
                        rows: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Decode a T.4-coded page as a fax receiver does: a corrupt row is replaced by the row above.

    After a corrupt row, decoding resumes at the next EOL. Parameters are those
    of :func:`decode_page`.

    Returns
    -------
    page : ndarray, shape (rows, width), bool
        True = black; a bad first row is white.
    bad_rows : list of int
        Indices of the rows that were corrupt (for T.30's copy-quality check).
    """
    return _decode(data, width, two_d, rows, lenient=True)


def _decode(data: bytes, width: int, two_d: bool, rows: int | None, lenient: bool):
    if width <= 0:
        raise DspError(f"T.4 width must be positive, got {width!r}")
    bits = _Bits(data)
    gaps = np.diff(bits.ones, prepend=-1) - 1
    eol_ends = bits.ones[gaps >= 11]  # the final 1 of every EOL
    out: list[np.ndarray] = []
    bad: list[int] = []
    ref: list[int] = []
    pos = 0
    while rows is None or len(out) < rows:
        row = len(out)
        try:
            one = bits.next_one(pos)
            if one >= bits.n:
                if rows is not None and not lenient:
                    raise DspError(f"T.4 row {row}, bit {pos}: data ends after {row} of {rows} rows")
                break
            if one - pos < 11:
                raise DspError(f"T.4 row {row}, bit {pos}: expected EOL, found a 1 after {one - pos} zeros")
            pos = one + 1
            if two_d:
                if pos >= bits.n:
                    break
                tag = int(bits.bits[pos])
                pos += 1
            nxt = bits.next_one(pos)
            if nxt >= bits.n or nxt - pos >= 11:  # another EOL straight after (RTC), or the data ends
                if rows is not None and nxt >= bits.n and not lenient:
                    raise DspError(f"T.4 row {row}, bit {pos}: data ends after {row} of {rows} rows")
                break
            if two_d:
                if tag == 0 and not out:
                    raise DspError(f"T.4 row {row}, bit {pos - 1}: first row is tagged 2-D, "
                                   "with no reference row")
                changes, pos = (_decode_mh(bits, pos, width, row) if tag
                                else _decode_mr(bits, pos, width, ref, row))
            else:
                changes, pos = _decode_mh(bits, pos, width, row)
            pix = _pixels(changes, width)
        except DspError:
            if not lenient:
                raise
            bad.append(row)
            pix = out[-1] if out else np.zeros(width, dtype=bool)
            i = int(np.searchsorted(eol_ends, pos + 1))  # an EOL that ends after the row's own
            pos = int(eol_ends[i]) - 11 if i < eol_ends.size else bits.n
        out.append(pix)
        ref = changing_elements(pix)
    page = np.stack(out) if out else np.zeros((0, width), dtype=bool)
    return page, bad
