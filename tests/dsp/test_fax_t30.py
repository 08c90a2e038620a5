"""T.30 frames and whole sessions between two of our terminals through an A-law line."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.errors import DspError
from dsp.fax import t30frames as tf
from dsp.fax.t30 import FaxSession
from dsp.fax.t30pages import decode_received, page_bits
from dsp.fax.tiff import FINE_LPI, STANDARD_LPI, FaxPage
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import dbm0_to_amplitude
from tests.dsp.faxpages import drawing_page, text_page


# ---- frames --------------------------------------------------------------------------------------

def test_fcf_values_are_the_line_patterns_of_t30():
    # DIS is [0000 0001] on the line, first bit first: the octet's high bit
    assert tf.make_frame("DIS", b"\x00\x00\x00") == b"\xff\x13\x80\x00\x00\x00"
    assert tf.make_frame("DCS", b"", x=1, final=False) == b"\xff\x03\x83"
    assert tf.make_frame("MCF") == b"\xff\x13\x8c"
    assert tf.parse_frame(b"\xff\x13\x83\x01") == ("DCS", True, b"\x01")
    assert tf.parse_frame(b"\xff\x03\x81") == ("DTC", False, b"")  # no X bit in DTC: not a DIS
    assert tf.parse_frame(b"\xff\x13\xfb")[0] == "DCN"
    assert tf.fcf_name(0x77) == "FCF 0x77"
    with pytest.raises(DspError, match="not a T.30 frame"):
        tf.parse_frame(b"\x7f\x13\x80")
    with pytest.raises(DspError, match="unknown T.30 signal 'XYZ'"):
        tf.make_frame("XYZ")


def test_identity_is_sent_last_character_first():
    fif = tf.encode_ident("+86 10 1234")
    assert len(fif) == 20 and fif.startswith(b"         4321 01 68+")
    assert tf.decode_ident(fif) == "+86 10 1234"
    with pytest.raises(DspError, match="fax identity"):
        tf.encode_ident("ABC")


def test_dis_bits():
    caps = tf.Capabilities(frozenset({"v27ter", "v29"}), fine=True, two_d=True, min_scan_ms=0)
    fif = tf.encode_dis(caps)
    # bit 10 receive; 11, 12 V.27ter and V.29; 15 fine; 16 2-D; 20 unlimited length; 21-23 0 ms
    assert fif == bytes((0, 0b11001110, 0b01111000))  # bit n is 1 << ((n - 1) % 8) of octet (n - 1) // 8
    assert tf.decode_dis(fif) == caps
    assert caps.rates() == [9600, 7200, 4800, 2400]
    only27 = tf.Capabilities(frozenset({"v27ter"}), fine=False, two_d=False, min_scan_ms=20)
    assert tf.decode_dis(tf.encode_dis(only27)) == only27
    assert only27.rates() == [4800, 2400]


@pytest.mark.parametrize("rate", [9600, 7200, 4800, 2400])
def test_dcs_round_trip(rate):
    dcs = tf.Dcs(rate, fine=rate > 5000, two_d=rate == 9600, min_scan_ms=10)
    assert tf.decode_dcs(tf.encode_dcs(dcs)) == dcs
    assert dcs.min_row_bits() == rate // 100


def test_dcs_choice_and_fallback():
    remote = tf.Capabilities(frozenset({"v27ter", "v29"}), fine=False, two_d=True, min_scan_ms=20)
    ours = tf.Capabilities(frozenset({"v27ter", "v29"}))
    assert tf.choose_dcs(remote, ours, True, True) == tf.Dcs(9600, False, True, 20)
    assert tf.choose_dcs(remote, ours, True, True, below=9600).bit_rate == 7200
    assert tf.choose_dcs(remote, ours, True, True, below=2400) is None
    v27 = tf.Capabilities(frozenset({"v27ter"}))
    assert tf.choose_dcs(remote, v27, False, False).bit_rate == 4800


# ---- pages -------------------------------------------------------------------------------------

@pytest.mark.parametrize("two_d", [False, True])
def test_page_bits_decode_back_with_noise_before_the_first_eol(two_d):
    page = FaxPage(text_page(3, fine=True), y_resolution=FINE_LPI)
    dcs = tf.Dcs(9600, fine=True, two_d=two_d, min_scan_ms=10)
    bits = page_bits(page, dcs)
    rng = np.random.default_rng(1)
    lead = np.concatenate((rng.integers(0, 2, 37).astype(np.uint8), [1]))  # scrambler-ish garbage
    got, bad = decode_received(np.concatenate((lead, bits, np.ones(50, np.uint8))), dcs)
    assert bad == [] and np.array_equal(got.pixels, page.pixels) and got.y_resolution == FINE_LPI
    # each coded row takes at least 96 bits (10 ms at 9600)
    assert bits.size >= 96 * page.pixels.shape[0]


def test_fine_pages_go_as_standard_when_the_receiver_lacks_fine():
    page = FaxPage(drawing_page(5, fine=True), y_resolution=FINE_LPI)
    got, _ = decode_received(page_bits(page, tf.Dcs(4800, fine=False)), tf.Dcs(4800, fine=False))
    assert got.y_resolution == STANDARD_LPI and np.array_equal(got.pixels, page.pixels[::2])


# ---- sessions ----------------------------------------------------------------------------------

def run_pair(a: FaxSession, b: FaxSession, noise_dbm0=None, seed=0, max_s=300.0):
    """Both terminals on one line (A-law both ways, optional white noise) until both are done."""
    rng = np.random.default_rng(seed)
    sigma = dbm0_to_amplitude(noise_dbm0) / np.sqrt(2) if noise_dbm0 is not None else 0.0

    def line(x):
        y = alaw_decode(alaw_encode(x)).astype(float)
        if sigma:
            y = y + rng.normal(0.0, sigma, y.size)
        return np.clip(np.round(y), -32768, 32767).astype(np.int16)

    steps = 0
    while not (a.done and b.done) and steps < max_s * 50:
        xa, xb = a.transmit(), b.transmit()
        a.receive(line(xb))
        b.receive(line(xa))
        steps += 1
    return steps / 50.0


@pytest.mark.parametrize("modems,rate", [(("v29",), 9600), (("v27ter",), 4800)])
def test_two_of_ours_send_a_page(modems, rate):
    page = FaxPage(text_page(7, fine=False), y_resolution=STANDARD_LPI)
    tx = FaxSession(calling=True, pages=[page], ident="+86 10 5550101", modems=modems)
    rx = FaxSession(calling=False, ident="+86 21 5550202", modems=modems)
    run_pair(tx, rx)
    assert tx.result.ok and rx.result.ok, (tx.log, rx.log)
    assert tx.result.pages == rx.result.pages == 1 and tx.result.bit_rate == rate
    assert rx.result.remote_ident == "+86 10 5550101" and tx.result.remote_ident == "+86 21 5550202"
    assert np.array_equal(rx.result.received[0].pixels, page.pixels)
    assert tx.result.compression == "MR"


def test_polling_a_calling_receiver_gets_the_answerers_document():
    pages = [FaxPage(text_page(s, fine=True), y_resolution=FINE_LPI) for s in (1, 2)]
    rx = FaxSession(calling=True, modems=("v29",))
    tx = FaxSession(calling=False, pages=pages, modems=("v29",), compression="mh")
    run_pair(rx, tx)
    assert tx.result.ok and rx.result.ok, (tx.log, rx.log)
    assert [p.pixels.shape for p in rx.result.received] == [p.pixels.shape for p in pages]
    assert all(np.array_equal(r.pixels, p.pixels) for r, p in zip(rx.result.received, pages))
    assert rx.result.compression == "MH" and rx.result.resolution == "fine"


def test_no_answer_fails_after_t1():
    tx = FaxSession(calling=True, pages=[FaxPage(np.zeros((10, 1728), bool))])
    t = 0.0
    while not tx.done:
        tx.transmit()
        tx.receive(np.zeros(160, np.int16))
        t += 0.02
    assert not tx.result.ok and "T1" in tx.result.cause and 35.0 <= t <= 35.1


def test_bad_arguments():
    with pytest.raises(DspError, match="1728 pixels wide"):
        FaxSession(calling=True, pages=[FaxPage(np.zeros((10, 100), bool))])
    with pytest.raises(DspError, match="at least one page"):
        FaxSession(calling=True, pages=[])
    with pytest.raises(DspError, match="modems"):
        FaxSession(calling=True, modems=("v17",))
    with pytest.raises(DspError, match="compression"):
        FaxSession(calling=True, compression="jbig")
    s = FaxSession(calling=False)
    with pytest.raises(DspError, match="shape"):
        s.receive(np.zeros(80, np.int16))


def test_under_heavy_noise_two_of_ours_fall_back_to_2400_and_deliver():
    """-24 dBm0 of white noise (11 dB below the signal): V.29 and V.27ter 4800 fail TCF, 2400 carries the page."""
    page = FaxPage(text_page(11, False, rows=400), y_resolution=STANDARD_LPI)
    tx, rx = FaxSession(calling=True, pages=[page]), FaxSession(calling=False)
    run_pair(tx, rx, noise_dbm0=-24.0, seed=2)
    assert tx.result.ok and rx.result.ok, (tx.log, rx.log)
    assert tx.result.bit_rate == 2400
    assert [line.split()[-1] for line in rx.log if "rx TCF" in line and "bits" in line] == ["bad"] * 3 + ["good"]
    assert np.array_equal(rx.result.received[0].pixels, page.pixels)
