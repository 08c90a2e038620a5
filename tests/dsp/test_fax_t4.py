"""T.4 coding (MH and MR) and TIFF-F files: exact code vectors from the T.4 tables, round trips on
seeded generated pages, corrupt-data errors, and interoperability with libtiff's tools."""

from __future__ import annotations

import re
import struct
import subprocess

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.fax.t4 import (A4_WIDTH, decode_page, decode_page_lenient, encode_page, encode_row_1d, encode_row_2d,
                        reverse_bits)
from dsp.fax.t4codes import BLACK_CODES, EOL, MODE_CODES, WHITE_CODES
from dsp.fax.tiff import read_tiff_f, write_tiff_f
from tests.dsp.faxpages import alternating_page, random_runs_page, text_page, three_pages
from tests.tools import require_tool


def pack(bits: str) -> bytes:
    """'0'/'1' string -> bytes, first bit in the MSB, zero-padded."""
    return np.packbits(np.array([int(b) for b in bits], dtype=np.uint8)).tobytes()


def row(width: int, *black: tuple[int, int]) -> np.ndarray:
    r = np.zeros(width, dtype=bool)
    for a, b in black:
        r[a:b] = True
    return r


# --- generated pages, all seeded ---------------------------------------------------------------

PAGES = {
    "text": lambda: text_page(8, rows=300),
    "random_runs": lambda: random_runs_page(9),
    "all_white": lambda: np.zeros((50, A4_WIDTH), dtype=bool),
    "all_black": lambda: np.ones((50, A4_WIDTH), dtype=np.uint8),
    "alternating": alternating_page,
}


# --- code tables and exact vectors from T.4 ----------------------------------------------------

def test_tables_are_complete_and_prefix_free():
    for codes in (WHITE_CODES, BLACK_CODES):
        assert sorted(codes) == list(range(64)) + list(range(64, 2561, 64))
        # Kraft sum: everything but the 8-zero prefix that only EOL may start with
        assert sum(2.0 ** -len(c) for c in codes.values()) == 1 - 2 ** -8
        assert not any(a != b and b.startswith(a) for a in codes.values() for b in codes.values())
    assert sum(2.0 ** -len(c) for c in MODE_CODES.values()) == 1 - 2 ** -6  # 0000001 is the extension


@pytest.mark.parametrize("codes,run,code", [
    (WHITE_CODES, 0, "00110101"), (WHITE_CODES, 1, "000111"), (WHITE_CODES, 63, "00110100"),
    (WHITE_CODES, 64, "11011"), (WHITE_CODES, 1728, "010011011"), (BLACK_CODES, 0, "0000110111"),
    (BLACK_CODES, 2, "11"), (BLACK_CODES, 63, "000001100111"), (BLACK_CODES, 64, "0000001111"),
    (BLACK_CODES, 1728, "0000001100101"), (WHITE_CODES, 1792, "00000001000"),
    (BLACK_CODES, 2560, "000000011111"),
])
def test_code_table_entries(codes, run, code):
    assert codes[run] == code


@pytest.mark.parametrize("r,bits", [
    (row(1728), "010011011" + "00110101"),  # white 1728 = make-up 1728 + terminating 0
    (row(1728, (0, 1728)), "00110101" + "0000001100101" + "0000110111"),  # white 0, black 1728 + 0
    (row(8, (2, 5)), "0111" + "10" + "1000"),  # white 2, black 3, white 3
    (row(1800), "00000001000" + "10011"),  # extended make-up 1792 + white 8
    (row(5200), "000000011111" + "000000011111" + "11011" + "101010"),  # 2560 + 2560 + 64 + 16
])
def test_mh_rows_bit_for_bit(r, bits):
    assert encode_row_1d(r) == bits
    assert np.array_equal(decode_page(pack(EOL + bits), r.size, rows=1)[0], r)


@pytest.mark.parametrize("cur,ref,bits", [
    (row(16, (4, 8)), row(16, (4, 8)), "1" "1" "1"),  # V0 V0 V0
    (row(16), row(16, (2, 4)), "0001" "1"),  # pass, then V0 at the row end
    (row(16, (5, 7)), row(16), "001" "1100" "11" "1"),  # H(white 5, black 2), V0
    (row(16, (5, 8)), row(16, (4, 8)), "011" "1" "1"),  # VR1, V0, V0
    (row(16, (2, 8)), row(16, (4, 8)), "000010" "1" "1"),  # VL2
    (row(16, (7, 8)), row(16, (4, 8)), "0000011" "1" "1"),  # VR3
])
def test_mr_rows_bit_for_bit(cur, ref, bits):
    assert encode_row_2d(cur, ref) == bits
    data = pack(EOL + "1" + encode_row_1d(ref) + EOL + "0" + bits)
    assert np.array_equal(decode_page(data, 16, two_d=True), np.stack([ref, cur]))


def test_page_layout_eol_rtc_fill_and_tags():
    white = "010011011" + "00110101"
    assert encode_page(row(1728)[None]) == pack(EOL + white + EOL * 6)
    # fill bits: every EOL ends on a byte boundary
    assert encode_page(row(1728)[None], align_eol=True, rtc=False) == pack("0000" + EOL + white)
    assert encode_page(np.zeros((2, 1728), bool), align_eol=True) == pack(
        "0000" + EOL + white + "000" + EOL + white + "000" + EOL + ("0000" + EOL) * 5)
    # 2-D, k=2: EOL+1 then a 1-D row, EOL+0 then a 2-D row (all white against all white: V0)
    assert encode_page(np.zeros((3, 1728), bool), k=2, rtc=False) == pack(
        EOL + "1" + white + EOL + "0" + "1" + EOL + "1" + white)
    assert encode_page(np.zeros((1, 1728), bool), k=4) == pack(EOL + "1" + white + (EOL + "1") * 6)
    # minimum row length: zeros after the row data
    assert encode_page(row(1728)[None], rtc=False, min_row_bits=40) == pack(EOL + white + "0" * 11)


def test_fill_order_reversal():
    assert reverse_bits(b"\x01\x80\xf0\x35") == b"\x80\x01\x0f\xac"


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PAGES))
@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("align", [False, True])
def test_round_trip(name, k, align):
    page = PAGES[name]()
    data = encode_page(page, k=k, align_eol=align)
    assert np.array_equal(decode_page(data, two_d=k > 1), page != 0)
    assert np.array_equal(decode_page(encode_page(page, k=k, rtc=False), two_d=k > 1, rows=page.shape[0]),
                          page != 0)


def test_sizes_show_what_2d_buys():
    page = text_page(8, rows=300)
    mh, mr = len(encode_page(page)), len(encode_page(page, k=4))
    assert mr < 0.75 * mh
    # alternating pixels: 1728 one-pixel runs a row, white 1 = 6 bits, black 1 = 3 bits; rows starting
    # black begin with white 0 (8 bits)
    assert len(encode_page(alternating_page(10), rtc=False)) == (5 * (12 + 864 * 9) + 5 * (12 + 8 + 864 * 9)) // 8


def test_wide_rows_use_repeated_extended_makeup():
    rng = np.random.default_rng(3)
    page = np.zeros((20, 6000), dtype=bool)
    page[5:, 2700:2705] = True
    page[10, :] = True
    page[15] = rng.random(6000) < 0.01
    for k in (1, 2):
        assert np.array_equal(decode_page(encode_page(page, k=k), 6000, two_d=k > 1), page)


# --- corrupt data ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,width,two_d,rows,message", [
    ("1" + EOL, 8, False, None, "T.4 row 0, bit 0: expected EOL, found a 1 after 0 zeros"),
    (EOL + "000000001" + "0" * 7, 8, False, None, "T.4 row 0, bit 12: no white run code starts with 0000000010000"),
    (EOL + "00111", 8, False, None, "T.4 row 0, bit 17: run of 10 passes the row end (8 left)"),
    (EOL + "10011" + EOL, 8, False, 2, "T.4 row 1, bit 29: data ends after 1 of 2 rows"),
    (EOL + "1" + "10011" + EOL + "0" + "0000011", 8, True, None,
     "T.4 row 1, bit 31: vertical mode V(3) puts a1 at 11, outside (-1, 8]"),
    (EOL + "0" + "1", 8, True, None, "T.4 row 0, bit 12: first row is tagged 2-D, with no reference row"),
    (EOL + "0111", 8, False, None, "T.4 row 0, bit 16: data ends inside a black run"),
])
def test_corrupt_data_names_row_and_bit(bits, width, two_d, rows, message):
    with pytest.raises(DspError) as err:
        decode_page(pack(bits), width, two_d=two_d, rows=rows)
    assert str(err.value) == message


@pytest.mark.parametrize("k", [1, 2])
def test_damaged_pages_raise_only_dsp_errors(k):
    """Seeded single-bit flips, a third of them also truncated: a page or a DspError, nothing else."""
    rng = np.random.default_rng(5)
    page = random_runs_page(3, 30)
    data = np.frombuffer(encode_page(page, k=k), dtype=np.uint8)
    outcomes = {"page": 0, "error": 0}
    for trial in range(300):
        bad = data.copy()
        i = int(rng.integers(bad.size * 8))
        bad[i // 8] ^= np.uint8(0x80 >> (i % 8))
        if trial % 3 == 0:
            bad = bad[:rng.integers(bad.size)]
        try:
            got = decode_page(bad.tobytes(), two_d=k > 1)
        except DspError as e:
            assert re.fullmatch(r"T\.4 row \d+, bit \d+: .+", str(e)), str(e)
            outcomes["error"] += 1
        else:
            assert got.shape[1] == A4_WIDTH and got.shape[0] <= page.shape[0]
            outcomes["page"] += 1
    assert outcomes["error"] > 250 and outcomes["page"] + outcomes["error"] == 300


def test_lenient_decoding_repeats_the_row_above_and_resynchronises():
    page = text_page(4, rows=80)
    pieces = [EOL + encode_row_1d(r) for r in page]
    pieces[50] = EOL + "0000000010" + "11111"  # no white code starts with 8 zeros
    pieces[51] = EOL + "0111" + "0111"  # white 2, black 2 ... then EOL: the row ends 1724 pixels short
    data = pack("".join(pieces) + EOL * 6)
    got, bad = decode_page_lenient(data)
    assert bad == [50, 51]
    want = page.copy()
    want[50] = want[51] = page[49]
    assert np.array_equal(got, want)
    with pytest.raises(DspError, match=rf"^T.4 row 50, bit {len(''.join(pieces[:50])) + 12}: no white run code"):
        decode_page(data)
    # 2-D: the bad row is replaced, later rows decode against it, and no error escapes
    pieces = [EOL + "1" + encode_row_1d(page[0])]
    pieces += [EOL + "0" + encode_row_2d(page[i], page[i - 1]) for i in range(1, 80)]
    pieces[30] = EOL + "0" + "0000001" + "111"  # the 2-D extension code, which we do not accept
    got, bad = decode_page_lenient(pack("".join(pieces)), two_d=True)
    assert bad == [30] and np.array_equal(got[:30], page[:30]) and got.shape == page.shape


def test_bad_arguments():
    with pytest.raises(DspError, match=r"got shape \(1728,\)"):
        encode_page(np.zeros(1728, bool))
    with pytest.raises(DspError, match="got dtype float64"):
        encode_page(np.zeros((1, 1728)))
    with pytest.raises(DspError, match="got 0"):
        encode_page(np.zeros((1, 1728), bool), k=0)


# --- TIFF-F -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("two_d", [False, True])
@pytest.mark.parametrize("fill_order", [1, 2])
@pytest.mark.parametrize("align", [False, True])
def test_tiff_round_trip(tmp_path, two_d, fill_order, align):
    path = tmp_path / "doc.tif"
    write_tiff_f(path, three_pages(), two_d=two_d, fill_order=fill_order, align_eol=align)
    got = read_tiff_f(path)
    assert len(got) == 3
    for want, page in zip(three_pages(), got):
        assert np.array_equal(page.pixels, want.pixels)
        assert (page.x_resolution, page.y_resolution) == (want.x_resolution, want.y_resolution)


def test_tiff_tags(tmp_path):
    path = tmp_path / "doc.tif"
    write_tiff_f(path, [np.zeros((10, 1728), bool)], two_d=True, fill_order=2)
    data = path.read_bytes()
    assert data[:4] == b"II*\0"
    ifd = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[ifd:ifd + 2])[0]
    tags = {}
    for i in range(n):
        tag, typ, count, value = struct.unpack("<HHII", data[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
        tags[tag] = value & 0xFFFF if typ == 3 and count == 1 else value
    assert tags[259] == 3 and tags[262] == 0 and tags[266] == 2 and tags[292] == 5
    assert tags[256] == 1728 and tags[257] == 10 and tags[278] == 10 and tags[254] == 2
    assert struct.unpack("<II", data[tags[283]:tags[283] + 8]) == (9800, 100)


def test_tiff_errors(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"GIF89a..")
    with pytest.raises(DspError, match=r"bad.tif: not a TIFF file \(starts with b'GIF8'\)"):
        read_tiff_f(bad)
    path = tmp_path / "doc.tif"
    write_tiff_f(path, [np.zeros((10, 1728), bool)])
    data = bytearray(path.read_bytes())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        at = ifd + 2 + 12 * i
        if struct.unpack("<H", data[at:at + 2])[0] == 259:
            data[at + 8:at + 10] = struct.pack("<H", 4)
    bad.write_bytes(bytes(data))
    with pytest.raises(DspError, match=r"page 0: Compression is 4, not 3 \(T.4\)"):
        read_tiff_f(bad)
    data = path.read_bytes()
    bad.write_bytes(data[:9] + b"\xff" + data[10:])  # a 1 in the fill before the first EOL
    with pytest.raises(DspError, match=r"page 0 strip 0: T.4 row 0, bit 0: expected EOL"):
        read_tiff_f(bad)
    with pytest.raises(DspError, match="FillOrder must be 1 or 2, got 3"):
        write_tiff_f(path, [np.zeros((1, 1728), bool)], fill_order=3)


# --- interoperability with libtiff ---------------------------------------------------------------

def run(*args):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    assert proc.stderr == "", proc.stderr  # libtiff reports decoding trouble on stderr, even with exit 0
    return proc.stdout


@pytest.mark.parametrize("two_d", [False, True])
@pytest.mark.parametrize("fill_order", [1, 2])
def test_libtiff_reads_ours(tmp_path, two_d, fill_order):
    for tool in ("tiffinfo", "tiffcp", "tiffcmp"):
        require_tool(tool)
    ours = tmp_path / "ours.tif"
    write_tiff_f(ours, three_pages(), two_d=two_d, fill_order=fill_order)
    info = run("tiffinfo", "-D", str(ours))
    assert info.count("Compression Scheme: CCITT Group 3") == 3
    assert info.count("Image Width: 1728") == 3
    assert "Resolution: 204, 196 pixels/inch" in info and "Resolution: 204, 98 pixels/inch" in info
    for codec in ("g3", "g3:2d", "g3:2d:fill", "none"):
        theirs = tmp_path / f"theirs-{codec.replace(':', '-')}.tif"
        run("tiffcp", "-c", codec, str(ours), str(theirs))
        run("tiffcmp", "-t", str(ours), str(theirs))  # exit 0: identical pixels on every page


@pytest.mark.parametrize("codec", ["g3", "g3:2d", "g3:fill", "g3:2d:fill"])
@pytest.mark.parametrize("fill", ["msb2lsb", "lsb2msb"])
def test_we_read_libtiff(tmp_path, codec, fill):
    require_tool("tiffcp")
    ours = tmp_path / "ours.tif"
    write_tiff_f(ours, three_pages())
    theirs = tmp_path / "theirs.tif"
    order = "-B" if fill == "lsb2msb" else "-L"  # big-endian files too
    run("tiffcp", "-c", codec, "-f", fill, order, "-r", "37", str(ours), str(theirs))  # several strips a page
    assert theirs.read_bytes()[:2] == (b"MM" if order == "-B" else b"II")
    got = read_tiff_f(theirs)
    assert len(got) == 3
    for want, page in zip(three_pages(), got):
        assert np.array_equal(page.pixels, want.pixels)
