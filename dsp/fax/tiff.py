"""TIFF class F (TIFF-F) fax documents: our own multi-page writer and reader, T.4 coded.

Each page is one IFD with one strip: Compression 3 (T.4), T4Options bit 0 for
2-D (modified READ) and bit 2 for fill bits (EOLs byte-aligned), FillOrder 1
or 2, PhotometricInterpretation 0 (WhiteIsZero: 1 = black, as our arrays),
XResolution 204 and YResolution 98 (standard) or 196 (fine) dots per inch,
NewSubfileType 2 (a page of a multi-page document), PageNumber, and
CleanFaxData 0. Strips carry no RTC, as libtiff writes them. The reader takes
what libtiff ``tiffcp -c g3`` / ``g3:2d`` writes too: either byte order, one
or more strips, either FillOrder, PhotometricInterpretation 0 or 1.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from appliance.errors import DspError
from dsp.fax.t4 import decode_page, encode_page, reverse_bits

__all__ = ["FaxPage", "write_tiff_f", "read_tiff_f"]

STANDARD_LPI, FINE_LPI, X_DPI = 98, 196, 204
_SHORT, _LONG, _RATIONAL = 3, 4, 5
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


@dataclass
class FaxPage:
    """One fax page.

    Attributes
    ----------
    pixels : ndarray, shape (rows, width), bool
        True = black.
    x_resolution, y_resolution : float
        Dots per inch across and lines per inch down (204 x 98 standard, 204 x 196 fine).
    """

    pixels: np.ndarray
    x_resolution: float = X_DPI
    y_resolution: float = STANDARD_LPI


def write_tiff_f(path: str | os.PathLike, pages: list, *, two_d: bool = False, fill_order: int = 1,
                 align_eol: bool = True) -> None:
    """Write a multi-page TIFF-F file.

    Parameters
    ----------
    path : str or PathLike
    pages : list of FaxPage or ndarray of shape (rows, width), bool or uint8
        Bare arrays are standard resolution.
    two_d : bool
        Modified READ with k = 2 (standard) or 4 (fine); otherwise modified Huffman.
    fill_order : {1, 2}
        1: first bit in the most significant bit; 2: in the least (fax modem order).
    align_eol : bool
        Fill bits so every EOL ends on a byte boundary (T4Options bit 2).
    """
    if fill_order not in (1, 2):
        raise DspError(f"TIFF FillOrder must be 1 or 2, got {fill_order!r}")
    if not pages:
        raise DspError(f"a TIFF-F file needs at least one page, got 0 pages for {os.fspath(path)!r}")
    pages = [p if isinstance(p, FaxPage) else FaxPage(np.asarray(p)) for p in pages]
    out = bytearray(b"II*\0\0\0\0\0")
    link = 4  # where the offset of the next IFD goes
    for number, page in enumerate(pages):
        pix = np.asarray(page.pixels)
        if pix.ndim != 2 or 0 in pix.shape:
            raise DspError(f"page {number}: pixels must have shape (rows, width), got {pix.shape}")
        fine = page.y_resolution > 150
        k = (4 if fine else 2) if two_d else 1
        strip = encode_page(pix, k=k, align_eol=align_eol, rtc=False)
        if fill_order == 2:
            strip = reverse_bits(strip)
        strip_at = len(out)
        out += strip
        out += b"\0" * (len(out) % 2)
        rational_at = len(out)
        for value in (page.x_resolution, page.y_resolution):
            out += struct.pack("<II", int(round(value * 100)), 100)
        rows, width = pix.shape
        entries = [
            (254, _LONG, 1, 2), (256, _LONG, 1, width), (257, _LONG, 1, rows), (258, _SHORT, 1, 1),
            (259, _SHORT, 1, 3), (262, _SHORT, 1, 0), (266, _SHORT, 1, fill_order),
            (273, _LONG, 1, strip_at), (277, _SHORT, 1, 1), (278, _LONG, 1, rows),
            (279, _LONG, 1, len(strip)), (282, _RATIONAL, 1, rational_at),
            (283, _RATIONAL, 1, rational_at + 8), (292, _LONG, 1, int(two_d) | (4 if align_eol else 0)),
            (296, _SHORT, 1, 2), (297, _SHORT, 2, number | (len(pages) << 16)), (327, _SHORT, 1, 0),
        ]
        ifd_at = len(out)
        struct.pack_into("<I", out, link, ifd_at)
        out += struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            fmt = "<HHIHH" if typ == _SHORT and count == 1 else "<HHII"
            out += struct.pack(fmt, tag, typ, count, value, 0) if fmt == "<HHIHH" else \
                struct.pack(fmt, tag, typ, count, value)
        link = len(out)
        out += b"\0\0\0\0"
    with open(path, "wb") as f:
        f.write(out)


def _values(data: bytes, order: str, typ: int, count: int, field: bytes, where: str) -> list:
    size = _SIZES.get(typ)
    if size is None:
        raise DspError(f"{where}: unknown TIFF field type {typ}")
    raw = field if size * count <= 4 else _slice(data, struct.unpack(order + "I", field)[0], size * count, where)
    if typ == _RATIONAL:
        pairs = struct.unpack(f"{order}{2 * count}I", raw)
        return [pairs[i] / pairs[i + 1] if pairs[i + 1] else 0.0 for i in range(0, 2 * count, 2)]
    code = {1: "B", 2: "B", 3: "H", 4: "I", 6: "b", 7: "B", 8: "h", 9: "i", 11: "f", 12: "d"}[typ]
    return list(struct.unpack(f"{order}{count}{code}", raw[:size * count]))


def _slice(data: bytes, at: int, n: int, where: str) -> bytes:
    if at + n > len(data):
        raise DspError(f"{where}: {n} bytes at offset {at} pass the end of the file ({len(data)} bytes)")
    return data[at:at + n]


def read_tiff_f(path: str | os.PathLike) -> list[FaxPage]:
    """Read every page of a TIFF-F (T.4-compressed, bitonal) file.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    list of FaxPage
        Pixels of shape (rows, width), bool, True = black.

    Raises
    ------
    DspError
        Not TIFF, not T.4 (Compression other than 3), uncompressed-mode T.4,
        or corrupt page data; the message names the file, page and value.
    """
    name = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"II*\0":
        order = "<"
    elif data[:4] == b"MM\0*":
        order = ">"
    else:
        raise DspError(f"{name}: not a TIFF file (starts with {data[:4]!r})")
    pages: list[FaxPage] = []
    at = struct.unpack(order + "I", data[4:8])[0]
    seen = set()
    while at:
        where = f"{name} page {len(pages)}"
        if at in seen:
            raise DspError(f"{where}: IFD chain loops back to offset {at}")
        seen.add(at)
        (n,) = struct.unpack(order + "H", _slice(data, at, 2, where))
        tags = {}
        for i in range(n):
            tag, typ, count, field = struct.unpack(order + "HHI4s", _slice(data, at + 2 + 12 * i, 12, where))
            tags[tag] = _values(data, order, typ, count, field, f"{where} tag {tag}")
        at = struct.unpack(order + "I", _slice(data, at + 2 + 12 * n, 4, where))[0]
        pages.append(_page(data, tags, where))
    return pages


def _page(data: bytes, tags: dict, where: str) -> FaxPage:
    def one(tag: int, default=None):
        if tag not in tags:
            if default is None:
                raise DspError(f"{where}: required TIFF tag {tag} is missing")
            return default
        return tags[tag][0]

    compression = one(259, 1)
    if compression != 3:
        raise DspError(f"{where}: Compression is {compression}, not 3 (T.4); not a TIFF-F page")
    if one(258, 1) != 1:
        raise DspError(f"{where}: BitsPerSample is {one(258)}, not 1")
    options = one(292, 0)
    if options & 2:
        raise DspError(f"{where}: T4Options {options} asks for uncompressed mode, which is not supported")
    photometric, fill_order = one(262, 0), one(266, 1)
    if photometric not in (0, 1):
        raise DspError(f"{where}: PhotometricInterpretation is {photometric}, not 0 or 1")
    if fill_order not in (1, 2):
        raise DspError(f"{where}: FillOrder is {fill_order}, not 1 or 2")
    width, rows = one(256), one(257)
    per_strip = one(278, rows)
    offsets, counts = tags.get(273), tags.get(279)
    if not offsets or not counts or len(offsets) != len(counts):
        raise DspError(f"{where}: StripOffsets {offsets} and StripByteCounts {counts} do not match")
    parts = []
    for s, (off, cnt) in enumerate(zip(offsets, counts)):
        strip = _slice(data, off, cnt, f"{where} strip {s}")
        if fill_order == 2:
            strip = reverse_bits(strip)
        want = min(per_strip, rows - s * per_strip)
        try:
            parts.append(decode_page(strip, width, two_d=bool(options & 1), rows=want))
        except DspError as e:
            raise DspError(f"{where} strip {s}: {e}") from None
    pix = np.concatenate(parts) if parts else np.zeros((0, width), dtype=bool)
    if photometric == 1:
        pix = ~pix
    return FaxPage(pix, float(one(282, X_DPI)), float(one(283, STANDARD_LPI)))
