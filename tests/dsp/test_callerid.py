"""Caller ID: message bytes, DTMF key strings, decoding through impairments, the streaming receiver, and peers
(spandsp both ways, multimon-ng on our MDMF)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from scipy.signal import resample_poly

from appliance.errors import DspError
from dsp.callerid import (CallerId, CallerIdReceiver, callerid_burst, checksum, decode_callerid, dtmf_keys,
                          encode_message, fsk_burst, parse_dtmf_keys, parse_message)
from dsp.dtmf import DtmfDetector
from dsp.g711 import alaw_decode, alaw_encode
from dsp.signals import speech_like
from dsp.tones import noise, to_int16
from tests.peers import spandsp
from tests.tools import require_tool

ZHANG = CallerId(number="01062345678", name="张三", datetime=(11, 28, 10, 30))
# a published SDMF example (MMDDHHMM 09301224, number 6095551212), checksum 0x51
SDMF_VECTOR = bytes.fromhex("0412303933303132323436303935353531323132" "51")


def padded(x: np.ndarray, before: int = 800, after: int = 800) -> np.ndarray:
    return np.concatenate((np.zeros(before, np.int16), x, np.zeros(after, np.int16)))


def reason(x: np.ndarray) -> str:
    with pytest.raises(DspError) as info:
        decode_callerid(x)
    return str(info.value)


# --- messages -------------------------------------------------------------------------------------

def test_sdmf_bytes_match_a_published_example_both_ways():
    cid = CallerId(number="6095551212", datetime=(9, 30, 12, 24), format="sdmf")
    assert encode_message(cid) == SDMF_VECTOR
    assert parse_message(SDMF_VECTOR) == cid
    assert checksum(SDMF_VECTOR[:-1]) == 0x51 and sum(SDMF_VECTOR) % 256 == 0


def test_mdmf_bytes_with_a_gbk_name():
    msg = encode_message(ZHANG)
    assert msg == (b"\x80\x1d" + b"\x01\x0811281030" + b"\x02\x0b01062345678" + b"\x07\x04\xd5\xc5\xc8\xfd"
                   + bytes([checksum(msg[:-1])]))
    assert msg[-1] == 0x19
    assert parse_message(msg) == ZHANG
    ascii_name = CallerId(number="13812345678", name="ZHANG SAN")
    assert parse_message(encode_message(ascii_name)) == ascii_name


def test_absent_number_and_name_reasons():
    private = CallerId(number_absent_reason="P", name_absent_reason="P", datetime=(1, 2, 3, 4))
    assert encode_message(private) == b"\x80\x10\x01\x0801020304\x04\x01P\x08\x01P" + bytes([0x2f])
    assert parse_message(encode_message(private)) == private
    unavailable = CallerId(number_absent_reason="O", datetime=(12, 31, 23, 59), format="sdmf")
    assert encode_message(unavailable)[2:-1] == b"12312359O"
    assert parse_message(encode_message(unavailable)) == unavailable
    assert [f for f in private.fields()] == [("format", "mdmf"), ("number_absent", "private"),
                                             ("name_absent", "private"), ("datetime", "01-02 03:04")]


def test_parse_reports_why_a_message_is_unusable():
    msg = encode_message(ZHANG)
    with pytest.raises(DspError, match=r"^truncated message: 2 bytes, need at least type, length and checksum$"):
        parse_message(msg[:2])
    with pytest.raises(DspError, match=r"^truncated message: type 0x80 declares 29 bytes of parameters, "
                                       r"got 18 of the 30 with the checksum$"):
        parse_message(msg[:20])
    bad = bytearray(msg)
    bad[5] ^= 0x01
    with pytest.raises(DspError, match=r"^bad checksum: message type 0x80 of 29 bytes ends in 0x19, "
                                       r"its bytes need 0x1a$"):
        parse_message(bytes(bad))
    broken = b"\x80\x04\x02\x09ab"
    with pytest.raises(DspError, match=r"malformed MDMF: parameter 0x02 at byte 0 runs past the 4 bytes"):
        parse_message(broken + bytes([checksum(broken)]))
    mwi = b"\x82\x03\x0b\x01\xff"
    with pytest.raises(DspError, match=r"message type 0x82 is not caller ID \(0x04 SDMF, 0x80 MDMF\)"):
        parse_message(mwi + bytes([checksum(mwi)]))
    # unknown MDMF parameters are skipped, a bad date loses only the date
    odd = b"\x80\x0e\x01\x0299\x11\x01X\x02\x05" + b"12345"
    assert parse_message(odd + bytes([checksum(odd)])) == CallerId(number="12345")


def test_encode_rejects_what_cannot_be_sent_by_name():
    with pytest.raises(DspError, match=r"number must be 1 to 32 digits 0-9, got '010-6234'"):
        encode_message(CallerId(number="010-6234"))
    with pytest.raises(DspError, match=r"number_absent_reason must be 'O' \(unavailable\) or 'P' \(private\), "
                                       r"got None"):
        encode_message(CallerId())
    with pytest.raises(DspError, match="SDMF carries no name"):
        encode_message(ZHANG, "sdmf")
    with pytest.raises(DspError, match=r"datetime \(13, 1, 0, 0\) is out of range"):
        encode_message(CallerId(number="1", datetime=(13, 1, 0, 0)))
    with pytest.raises(DspError, match=r"name '张三😀' has '😀', which GBK cannot encode"):
        encode_message(CallerId(number="1", name="张三😀"))
    with pytest.raises(DspError, match=r"at most 255 fit"):
        encode_message(CallerId(number="1", name="名" * 130))
    with pytest.raises(DspError, match=r"FSK message format must be 'sdmf' or 'mdmf', got 'dtmf'"):
        encode_message(ZHANG, "dtmf")


# --- DTMF key strings -----------------------------------------------------------------------------

def test_dtmf_key_strings_both_ways():
    assert dtmf_keys(CallerId(number="01062345678")) == "A01062345678C"
    assert dtmf_keys(CallerId(number="123"), start="D", end="#") == "D123#"
    assert dtmf_keys(CallerId(number_absent_reason="P")) == "B10C"
    assert dtmf_keys(CallerId(number_absent_reason="O")) == "B00C"
    assert dtmf_keys(CallerId(number_absent_reason="P"), end="#") == "D1#"
    assert dtmf_keys(CallerId(number_absent_reason="O"), end="#") == "D3#"
    cases = {
        "A01062345678C": ("01062345678", None), "D01062345678C": ("01062345678", None),
        "A123#": ("123", None), "0106#": ("0106", None), "0106C": ("0106", None),
        "A5551234D5550000B10C": ("5551234", None), "B10C": ("", "P"), "B00C": ("", "O"),
        "D1#": ("", "P"), "D2#": ("", "O"), "D3#": ("", "O"),
    }
    for keys, (number, absent) in cases.items():
        assert parse_dtmf_keys(keys) == CallerId(number=number, number_absent_reason=absent, format="dtmf"), keys
    with pytest.raises(DspError, match=r"DTMF caller ID 'A0106' has no end key \(C or #\)"):
        parse_dtmf_keys("A0106")
    with pytest.raises(DspError, match=r"DTMF caller ID 'B#' carries no number and no known absence code"):
        parse_dtmf_keys("B#")


# --- decoding offline through impairments ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["mdmf", "sdmf", "dtmf"])
def test_round_trip_each_format(fmt):
    cid = CallerId(number="13812345678", datetime=(2, 29, 0, 0), format=fmt)
    burst = callerid_burst(cid)
    want = cid if fmt != "dtmf" else CallerId(number="13812345678", format="dtmf")
    assert decode_callerid(padded(burst.samples)) == want


@pytest.mark.parametrize("level", [-5.0, -20.0, -35.0])
def test_decodes_after_an_alaw_round_trip_at_levels(level):
    x = padded(callerid_burst(ZHANG, level_dbm0=level).samples)
    assert decode_callerid(alaw_decode(alaw_encode(x))) == ZHANG


def test_decodes_with_white_noise_at_20_db_snr():
    x = padded(callerid_burst(ZHANG).samples).astype(np.float64)
    for seed in (1, 2, 3):
        assert decode_callerid(to_int16(x + noise(x.size, -13.5 - 20.0, seed))) == ZHANG


@pytest.mark.parametrize("baud", [1194.0, 1206.0])
def test_decodes_at_half_a_percent_bit_rate_error(baud):
    assert decode_callerid(padded(fsk_burst(encode_message(ZHANG), baud=baud))) == ZHANG


def test_private_and_unavailable_through_fsk_and_dtmf():
    private = CallerId(number_absent_reason="P", name_absent_reason="P", datetime=(5, 6, 7, 8))
    assert decode_callerid(padded(callerid_burst(private).samples)) == private
    unavailable = CallerId(number_absent_reason="O", datetime=(5, 6, 7, 8), format="sdmf")
    assert decode_callerid(padded(callerid_burst(unavailable).samples)) == unavailable
    for absent in ("O", "P"):
        dtmf = CallerId(number_absent_reason=absent, format="dtmf")
        assert decode_callerid(padded(callerid_burst(dtmf).samples)) == dtmf


def test_reasons_when_nothing_decodes():
    assert reason(np.zeros(8000, np.int16)) == ("no carrier: no Bell 202 signal (1200/2200 Hz) above -43 dBm0 "
                                                "and no DTMF caller ID")
    bad = bytearray(encode_message(ZHANG))
    bad[10] ^= 0x20
    assert reason(padded(fsk_burst(bytes(bad)))) == ("bad checksum: message type 0x80 of 29 bytes ends in "
                                                    "0x19, its bytes need 0x39")
    burst = fsk_burst(encode_message(ZHANG))
    # the message starts after 300 + 180 bits (3200 samples); cut it half way through its 10th byte
    assert reason(burst[:3200 + 600 + 33]) == "truncated message: the carrier stopped after 9 of 32 bytes"
    assert reason(burst[:3100]) == "truncated message: 148 mark bits, then no message"
    assert reason(padded(fsk_burst(encode_message(ZHANG), mark_bits=0))).startswith(
        "no mark preamble: FSK carrier for about 540 ms but never 40 mark bits in a row")
    assert reason(padded(callerid_burst(CallerId(number="0106"), "dtmf").samples[:-1200])) == (
        "DTMF caller ID 'A0106' has no end key (C or #)")


def test_speech_and_noise_decode_as_nothing():
    for seed in range(3):
        assert reason(to_int16(speech_like(3.0, seed))).startswith(("no mark preamble", "no carrier"))
    assert reason(to_int16(noise(16000, -15.0, seed=9))).startswith("no mark preamble")


def test_decode_rejects_other_shapes():
    with pytest.raises(DspError, match=r"expected an int16 or float array of shape \(n_samples,\), got int16 \(2, 8\)"):
        decode_callerid(np.zeros((2, 8), np.int16))


# --- sending --------------------------------------------------------------------------------------

def test_fsk_burst_timing_for_a_card_driver():
    burst = callerid_burst(ZHANG)
    bits = 300 + 180 + 10 * len(encode_message(ZHANG)) + 10
    assert burst.samples.size == int(np.ceil(bits * 8000 / 1200))
    assert (burst.before_first_ring, burst.min_lead_s, burst.min_guard_s) == (False, 0.5, 0.2)
    assert burst.fits(4.0) and not burst.fits(1.2)  # China: 1 s ring, 4 s silence
    dtmf = callerid_burst(ZHANG, "dtmf")
    assert (dtmf.before_first_ring, dtmf.min_guard_s, dtmf.max_guard_s) == (True, 0.2, 0.5)
    assert dtmf.duration_s == pytest.approx(13 * 0.14)


# --- the streaming receiver -----------------------------------------------------------------------

def test_36_channels_with_mixed_formats_in_one_pass():
    C, n = 36, 16800
    x = np.zeros((C, n))
    sent = {}
    for ch in range(C):
        fmt = ("mdmf", "sdmf", "dtmf")[ch % 3]
        cid = CallerId(number=f"1380000{ch:04d}", name="王五" if fmt == "mdmf" else "",
                       datetime=None if fmt == "dtmf" else (1, 1 + ch % 28, 9, 0), format=fmt)
        burst = callerid_burst(cid, level_dbm0=-8.0 - ch % 25).samples
        x[ch, 53 * ch:53 * ch + burst.size] = burst
        sent[ch] = cid
    rx = CallerIdReceiver(C)
    got = {}
    for i in range(0, n, 160):
        for ch, cid in rx.process(x[:, i:i + 160]):
            assert ch not in got
            got[ch] = cid
    assert got == sent


def test_keys_from_the_runtimes_own_detector_and_reset():
    x = padded(callerid_burst(CallerId(number="4006", format="dtmf")).samples, after=1600)
    x = np.stack((x, x))[:, : x.size - x.size % 160]
    rx, det = CallerIdReceiver(2), DtmfDetector(2)
    got = []
    for i in range(0, x.shape[1], 160):
        if i == 2240:  # after 'A4', before the end key: channel 1 forgets its keys
            rx.reset(1)
        got += rx.process(x[:, i:i + 160], keys=det.process(x[:, i:i + 160]))
    # channel 1 lost 'A4' and heard '006C', which passes as the start-less '<number>C' form
    assert got == [(0, CallerId(number="4006", format="dtmf")), (1, CallerId(number="006", format="dtmf"))]


def test_receiver_rejects_bad_block():
    with pytest.raises(DspError, match=r"block must be a multiple of 80 samples \(10 ms\), got 120"):
        CallerIdReceiver(1, block=120)


# --- peers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cid", [
    ZHANG,
    CallerId(number="13812345678", datetime=(1, 2, 3, 4), format="sdmf"),
    CallerId(number_absent_reason="P", name_absent_reason="P", datetime=(1, 2, 3, 4)),
])
def test_spandsp_fsk_both_ways(cid):
    spandsp.require_spandsp()
    msg = encode_message(cid)
    theirs = spandsp.adsi_tx(msg[:-1], spandsp.ADSI_STANDARD_CLASS)  # spandsp adds the checksum
    assert decode_callerid(theirs) == cid
    ours = padded(callerid_burst(cid).samples)
    assert spandsp.adsi_rx(ours, spandsp.ADSI_STANDARD_CLASS) == [msg[:-1]]  # it strips the checksum


@pytest.mark.parametrize("keys,number,absent", [
    ("A01062345678C", "01062345678", None), ("D01062345678C", "01062345678", None),
    ("A01062345678#", "01062345678", None), ("01062345678#", "01062345678", None),
    ("B10C", "", "P"), ("B00C", "", "O"), ("D1#", "", "P"), ("D3#", "", "O"),
])
def test_spandsp_dtmf_caller_id(keys, number, absent):
    spandsp.require_spandsp()
    theirs = spandsp.adsi_tx(keys.encode(), spandsp.ADSI_STANDARD_CLIP_DTMF)
    assert decode_callerid(theirs) == CallerId(number=number, number_absent_reason=absent, format="dtmf")


def test_spandsp_hears_our_dtmf_caller_id():
    spandsp.require_spandsp()
    for cid, keys in ((CallerId(number="01062345678"), b"A01062345678C"), (CallerId(number_absent_reason="P"),
                                                                           b"B10C")):
        burst = callerid_burst(cid, "dtmf").samples
        assert spandsp.adsi_rx(padded(burst), spandsp.ADSI_STANDARD_CLIP_DTMF) == [keys]


def test_multimon_ng_decodes_our_mdmf():
    tool = require_tool("multimon-ng")
    cid = CallerId(number="01062345678", name="ZHANG SAN", datetime=(11, 28, 10, 30))
    x = padded(callerid_burst(cid).samples, after=1600).astype(np.float64)
    raw = to_int16(resample_poly(x, 441, 160)).astype("<i2").tobytes()  # 22,050 Hz, as multimon-ng reads
    out = subprocess.run([tool, "-q", "-c", "-a", "CLIPFSK", "-"], input=raw, capture_output=True,
                         timeout=30, check=True).stdout.decode("utf-8", "replace")
    assert out.strip() == "CLIPFSK: CS DATE=11281030 CID=01062345678 CNT=ZHANG SAN"
