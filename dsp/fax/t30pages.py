"""Pages in and out of a T.30 session: T.4 bits for the page modem, decoded pages back, the session's outcome.

A sent page is coded for what the DCS settled: modified Huffman or modified
READ (K = 2 at standard resolution, 4 at fine), rows padded to the
receiver's minimum scan line time, RTC at the end. Its resolution is
converted when the receiver cannot take it (fine to standard drops every
other row; standard sent as fine repeats each row). A received page is
decoded from its first EOL the way a fax receiver does it: a damaged row
is replaced by the one above and counted, so T.30 can judge the copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from appliance.errors import DspError
from dsp.fax.t4 import A4_WIDTH, decode_page_lenient, encode_page
from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, FaxPage

__all__ = ["FaxResult", "prepare_pages", "page_bits", "decode_received"]

_EOL = np.array([0] * 11 + [1], np.uint8)


@dataclass
class FaxResult:
    """The outcome of a fax session.

    Attributes
    ----------
    ok : bool
    cause : str, why it failed ("" when ok)
    pages : int, pages sent and confirmed (MCF/RTP), or received and kept
    bit_rate : int or None, the last rate commanded by DCS
    resolution : "standard", "fine" or None
    compression : "MH", "MR" or None
    remote_ident : str, the other side's CSI/TSI/CIG
    received : list of FaxPage, the pages received
    bad_rows : int, damaged rows in the received pages (each replaced by the row above)
    seconds : float, line time
    """

    ok: bool
    cause: str
    pages: int
    bit_rate: int | None
    resolution: str | None
    compression: str | None
    remote_ident: str = ""
    received: list = field(default_factory=list)
    bad_rows: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """One line for logs and the terminal: ``result ok pages=3 rate=9600 ...``."""
        head = "result ok" if self.ok else f'result failed cause="{self.cause}"'
        return (f'{head} pages={self.pages} rate={self.bit_rate or 0} resolution={self.resolution or "-"} '
                f'compression={self.compression or "-"} remote="{self.remote_ident}" '
                f'bad_rows={self.bad_rows} seconds={self.seconds:.1f}')


def prepare_pages(pages) -> list[FaxPage]:
    """Check a document for sending: at least one page, each 1728 pixels wide, standard or fine."""
    pages = list(pages)
    if not pages:
        raise DspError("a fax to send needs at least one page")
    for i, p in enumerate(pages, 1):
        px = np.asarray(p.pixels)
        if px.ndim != 2 or px.shape[1] != A4_WIDTH or px.shape[0] < 1:
            raise DspError(f"page {i}: a fax page is {A4_WIDTH} pixels wide, got shape {px.shape}")
    return pages


def page_bits(page: FaxPage, dcs) -> np.ndarray:
    """The T.4 bits of ``page`` as ``dcs`` (a :class:`dsp.fax.t30frames.Dcs`) commands, in line order.

    Returns
    -------
    bits : ndarray, shape (n,), uint8
    """
    px = np.asarray(page.pixels, bool)
    fine_page = page.y_resolution > (STANDARD_LPI + FINE_LPI) / 2
    if fine_page and not dcs.fine:
        px = px[::2]
    elif dcs.fine and not fine_page:
        px = np.repeat(px, 2, axis=0)
    k = (4 if dcs.fine else 2) if dcs.two_d else 1
    data = encode_page(px, k=k, rtc=True, min_row_bits=dcs.min_row_bits())
    return np.unpackbits(np.frombuffer(data, np.uint8))


def decode_received(bits: np.ndarray, dcs) -> tuple[FaxPage, list[int]]:
    """A page from the page modem's bits: decoded from the first EOL, damaged rows repeated and listed.

    Returns
    -------
    page : FaxPage, at the resolution the DCS set
    bad_rows : list of int
    """
    bits = np.asarray(bits, np.uint8)
    start = _first_eol(bits)
    res = FINE_LPI if dcs.fine else STANDARD_LPI
    if start < 0:
        return FaxPage(np.zeros((0, A4_WIDTH), bool), y_resolution=res), []
    data = np.packbits(bits[start:]).tobytes()
    pixels, bad = decode_page_lenient(data, A4_WIDTH, two_d=dcs.two_d)
    return FaxPage(pixels, y_resolution=res), bad


def _first_eol(bits: np.ndarray) -> int:
    """Index of the first EOL (eleven or more zeros and a one), at its zeros; -1 if none."""
    ones = np.flatnonzero(bits)
    if not ones.size:
        return -1
    gaps = np.diff(np.concatenate(([-1], ones))) - 1
    hit = np.flatnonzero(gaps >= 11)
    if not hit.size:
        return -1
    return int(ones[hit[0]]) - 11
