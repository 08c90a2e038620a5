"""G.711 codecs: bit-exact against the ITU-T segment rules (always) and audioop (where it exists)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


# --- an independent, one-value-at-a-time reading of ITU-T G.711 -------------------------------

def ref_alaw_encode(sample: int) -> int:
    v = sample >> 3  # 13-bit linear
    if v >= 0:
        sign, mag = 0x80, v
    else:
        sign, mag = 0x00, -v - 1
    if mag < 32:  # segment 0: step 2, no leading one
        seg, mant = 0, mag >> 1
    else:
        seg = 1
        while seg < 8 and mag >= (32 << seg):
            seg += 1
        if seg == 8:
            seg, mant = 7, 15  # overload: clip to the top code
        else:
            mant = (mag >> seg) & 15
    return (sign | (seg << 4) | mant) ^ 0x55  # invert the even bits


def ref_alaw_decode(code: int) -> int:
    c = code ^ 0x55
    seg, mant = (c >> 4) & 7, c & 15
    mag = 2 * mant + 1 if seg == 0 else (2 * mant + 33) << (seg - 1)  # mid-point of the interval
    mag <<= 3
    return mag if c & 0x80 else -mag


def ref_ulaw_encode(sample: int) -> int:
    v = sample >> 2  # 14-bit linear
    sign = 0x00 if v >= 0 else 0x80
    mag = min(abs(v), 8159) + 33  # clip, add the bias (0x84 in 16-bit units)
    seg = 0
    while seg < 7 and mag >= (64 << seg):
        seg += 1
    mant = (mag >> (seg + 1)) & 15
    if mag > 8191:  # only the clip value 8159 + 33 lands here: top code
        mant = 15
    return ~(sign | (seg << 4) | mant) & 0xFF  # all bits inverted


def ref_ulaw_decode(code: int) -> int:
    c = ~code & 0xFF
    seg, mant = (c >> 4) & 7, c & 15
    mag = (((2 * mant + 33) << seg) - 33) << 2
    return -mag if c & 0x80 else mag


def test_alaw_encode_matches_itu_rules_for_all_inputs():
    want = np.array([ref_alaw_encode(int(s)) for s in ALL_LINEAR], np.uint8)
    np.testing.assert_array_equal(alaw_encode(ALL_LINEAR), want)


def test_ulaw_encode_matches_itu_rules_for_all_inputs():
    want = np.array([ref_ulaw_encode(int(s)) for s in ALL_LINEAR], np.uint8)
    np.testing.assert_array_equal(ulaw_encode(ALL_LINEAR), want)


def test_decoders_match_itu_rules_for_all_codes():
    np.testing.assert_array_equal(alaw_decode(ALL_CODES), [ref_alaw_decode(int(c)) for c in ALL_CODES])
    np.testing.assert_array_equal(ulaw_decode(ALL_CODES), [ref_ulaw_decode(int(c)) for c in ALL_CODES])


def test_known_code_points():
    assert alaw_encode(np.array([0, -1, 32767, -32768], np.int16)).tolist() == [0xD5, 0x55, 0xAA, 0x2A]
    assert ulaw_encode(np.array([0, -1, 32767, -32768], np.int16)).tolist() == [0xFF, 0x7E, 0x80, 0x00]
    assert alaw_decode(ALL_CODES).max() == 32256 and alaw_decode(ALL_CODES).min() == -32256
    assert ulaw_decode(ALL_CODES).max() == 32124 and ulaw_decode(ALL_CODES).min() == -32124
    assert alaw_decode(np.array([0xD5], np.uint8))[0] == 8


def test_encode_of_decode_gives_the_code_back():
    np.testing.assert_array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)
    back = ulaw_encode(ulaw_decode(ALL_CODES))
    # u-law has two zeros (0x7F is "-0"); it re-encodes as +0 (0xFF)
    assert back[0x7F] == 0xFF
    np.testing.assert_array_equal(np.delete(back, 0x7F), np.delete(ALL_CODES, 0x7F))


def _audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip("audioop is gone (Python >= 3.13); the ITU reference tests still run")
    return audioop


def test_bit_exact_with_audioop():
    audioop = _audioop()
    lin, codes = ALL_LINEAR.tobytes(), ALL_CODES.tobytes()
    np.testing.assert_array_equal(alaw_encode(ALL_LINEAR), np.frombuffer(audioop.lin2alaw(lin, 2), np.uint8))
    np.testing.assert_array_equal(ulaw_encode(ALL_LINEAR), np.frombuffer(audioop.lin2ulaw(lin, 2), np.uint8))
    np.testing.assert_array_equal(alaw_decode(ALL_CODES), np.frombuffer(audioop.alaw2lin(codes, 2), np.int16))
    np.testing.assert_array_equal(ulaw_decode(ALL_CODES), np.frombuffer(audioop.ulaw2lin(codes, 2), np.int16))


@pytest.mark.parametrize("enc,dec", [(alaw_encode, alaw_decode), (ulaw_encode, ulaw_decode)])
def test_out_arrays_are_filled_in_place_keeping_the_channel_axis(enc, dec):
    rng = np.random.default_rng(7)
    x = rng.integers(-32768, 32768, size=(36, 160)).astype(np.int16)
    codes_out = np.empty((36, 160), np.uint8)
    lin_out = np.empty((36, 160), np.int16)
    assert enc(x, out=codes_out) is codes_out
    np.testing.assert_array_equal(codes_out, enc(x.ravel()).reshape(36, 160))
    assert dec(codes_out, out=lin_out) is lin_out
    np.testing.assert_array_equal(lin_out, dec(codes_out.ravel()).reshape(36, 160))
    # a strided view (every other channel) works as well
    np.testing.assert_array_equal(enc(x[::2]), codes_out[::2])
    assert dec(codes_out[:, None, :]).shape == (36, 1, 160)


def test_wrong_dtypes_and_outs_raise_dsp_error_naming_them():
    with pytest.raises(DspError, match=r"alaw_encode: expected an ndarray of int16, got float64"):
        alaw_encode(np.zeros(4))
    with pytest.raises(DspError, match=r"ulaw_decode: expected an ndarray of uint8, got int16"):
        ulaw_decode(np.zeros(4, np.int16))
    with pytest.raises(DspError, match=r"got list"):
        alaw_decode([1, 2])
    with pytest.raises(DspError, match=r"out must be an ndarray of uint8 with shape \(2, 3\)"):
        alaw_encode(np.zeros((2, 3), np.int16), out=np.zeros((2, 3), np.int16))
    with pytest.raises(DspError, match=r"out must be an ndarray of int16 with shape \(4,\)"):
        ulaw_decode(np.zeros(4, np.uint8), out=np.zeros(5, np.int16))
    with pytest.raises(ValueError):  # DspError is also a ValueError
        ulaw_encode(np.zeros(4, np.int32))
