"""G.711 A-law and u-law codecs by table look-up over whole arrays, bit-exact with ``audioop``.

Linear samples are int16. The A-law scale is the ``audioop`` one: a 13-bit A-law
value shifted left by 3 (decoded magnitudes up to 32256); u-law is a 14-bit value
shifted left by 2 (up to 32124). Encoders index a 65,536-entry uint8 table with
the int16 bit pattern viewed as uint16; decoders index a 256-entry int16 table.
Any shape works, so the channel axis is kept; ``out=`` lets the media tick reuse
preallocated arrays.
"""

from __future__ import annotations

import sys

import numpy as np

from appliance.errors import DspError

__all__ = ["alaw_encode", "alaw_decode", "ulaw_encode", "ulaw_decode"]


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55  # undo the even-bit inversion
    mant = codes & 0x0F
    seg = (codes >> 4) & 0x07
    # magnitude in 16-bit units: segment 0 is linear, segment s >= 1 is (2m + 33) << (s - 1), x8
    mag = np.where(seg == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(seg - 1, 0))
    return np.where(codes & 0x80, mag, -mag).astype(np.int16)


def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    mant = codes & 0x0F
    seg = (codes >> 4) & 0x07
    t = ((mant << 3) + 0x84) << seg
    return np.where(codes & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _segment(mag: np.ndarray, first_top: int) -> np.ndarray:
    """Segment number of each magnitude: segment s holds values up to ``((first_top + 1) << s) - 1``."""
    tops = ((first_top + 1) << np.arange(8)) - 1
    return np.searchsorted(tops, mag, side="left")  # 8 means beyond the last segment


def _alaw_encode_table() -> np.ndarray:
    lin = np.arange(65536, dtype=np.int64).astype(np.uint16).view(np.int16).astype(np.int64)
    v = lin >> 3  # 13-bit value (arithmetic shift, as audioop does)
    neg = v < 0
    mag = np.where(neg, -v - 1, v)  # negative values use the one's complement magnitude
    seg = _segment(mag, 0x1F)
    shift = np.where(seg < 2, 1, seg)
    code = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    mask = np.where(neg, 0x55, 0xD5)
    return (code ^ mask).astype(np.uint8)


def _ulaw_encode_table() -> np.ndarray:
    lin = np.arange(65536, dtype=np.int64).astype(np.uint16).view(np.int16).astype(np.int64)
    v = lin >> 2  # 14-bit value
    neg = v < 0
    mag = np.minimum(np.where(neg, -v, v), 8159) + 0x21  # clip, then add the bias (0x84 >> 2)
    seg = _segment(mag, 0x3F)
    code = (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    mask = np.where(neg, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


ALAW_DECODE = _alaw_decode_table()
ULAW_DECODE = _ulaw_decode_table()
ALAW_ENCODE = _alaw_encode_table()
ULAW_ENCODE = _ulaw_encode_table()


def _pair_table(table: np.ndarray) -> np.ndarray:
    """Decode table for two codes at once: index = the two code bytes read as one little-endian uint16."""
    t = table.view(np.uint16).astype(np.uint32)
    v = np.arange(65536, dtype=np.uint32)
    return (t[v >> 8] << 16) | t[v & 0xFF]


# numpy's take converts every index to intp first: decoding pairs halves that work, which makes
# a whole tick faster than audioop's C loop (little-endian hosts; others use the byte table)
_PAIRS = sys.byteorder == "little"
ALAW_DECODE_PAIRS = _pair_table(ALAW_DECODE) if _PAIRS else None
ULAW_DECODE_PAIRS = _pair_table(ULAW_DECODE) if _PAIRS else None
for _t in (ALAW_DECODE, ULAW_DECODE, ALAW_ENCODE, ULAW_ENCODE, ALAW_DECODE_PAIRS, ULAW_DECODE_PAIRS):
    if _t is not None:
        _t.flags.writeable = False


def _check(arr, dtype, name: str, out) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
        got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise DspError(f"{name}: expected an ndarray of {np.dtype(dtype)}, got {got}")
    if out is not None:
        want = np.uint8 if dtype == np.int16 else np.int16
        if not isinstance(out, np.ndarray) or out.dtype != want or out.shape != arr.shape:
            got = (out.dtype, out.shape) if isinstance(out, np.ndarray) else type(out).__name__
            raise DspError(f"{name}: out must be an ndarray of {np.dtype(want)} with shape {arr.shape}, got {got}")


def _lookup(table: np.ndarray, idx: np.ndarray, out):
    # mode="clip" skips numpy's bounds check and its buffering of out; the index range is full anyway
    return np.take(table, idx, out=out, mode="clip")


def _decode(table: np.ndarray, pairs: np.ndarray | None, codes: np.ndarray, out):
    if pairs is not None and codes.flags.c_contiguous and codes.ndim and codes.shape[-1] % 2 == 0 \
            and (out is None or out.flags.c_contiguous):
        if out is None:
            out = np.empty(codes.shape, np.int16)
        np.take(pairs, codes.view(np.uint16), out=out.view(np.uint32), mode="clip")
        return out
    return _lookup(table, codes, out)


def alaw_encode(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Encode linear PCM to A-law.

    Parameters
    ----------
    x : ndarray, any shape (normally (n_channels, n_samples)), int16, linear PCM
    out : ndarray, same shape, uint8, optional; written in place and returned

    Returns
    -------
    codes : ndarray, same shape as ``x``, uint8, A-law code bytes as sent on the line
    """
    _check(x, np.int16, "alaw_encode", out)
    return _lookup(ALAW_ENCODE, x.view(np.uint16), out)


def alaw_decode(codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Decode A-law to linear PCM.

    Parameters
    ----------
    codes : ndarray, any shape, uint8, A-law code bytes
    out : ndarray, same shape, int16, optional

    Returns
    -------
    x : ndarray, same shape, int16, linear PCM (13-bit A-law values << 3, |x| <= 32256)
    """
    _check(codes, np.uint8, "alaw_decode", out)
    return _decode(ALAW_DECODE, ALAW_DECODE_PAIRS, codes, out)


def ulaw_encode(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Encode linear PCM to u-law.

    Parameters
    ----------
    x : ndarray, any shape, int16, linear PCM
    out : ndarray, same shape, uint8, optional

    Returns
    -------
    codes : ndarray, same shape, uint8, u-law code bytes
    """
    _check(x, np.int16, "ulaw_encode", out)
    return _lookup(ULAW_ENCODE, x.view(np.uint16), out)


def ulaw_decode(codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Decode u-law to linear PCM.

    Parameters
    ----------
    codes : ndarray, any shape, uint8, u-law code bytes
    out : ndarray, same shape, int16, optional

    Returns
    -------
    x : ndarray, same shape, int16, linear PCM (14-bit u-law values << 2, |x| <= 32124)
    """
    _check(codes, np.uint8, "ulaw_decode", out)
    return _decode(ULAW_DECODE, ULAW_DECODE_PAIRS, codes, out)
