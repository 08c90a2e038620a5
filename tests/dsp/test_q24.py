"""Our DTMF receiver swept over every Q.24 parameter, each table printed (``pytest -s`` shows them).

The sweeps are in ``tests.dsp.q24``; ``benchmarks/q24_compare.py`` runs the same
sweeps on spandsp's receiver and writes both side by side.
"""

from __future__ import annotations

import pytest

from dsp.dtmf import detect_digits, dtmf_generate
from dsp.g711 import alaw_decode, alaw_encode
from tests.dsp import q24
from tests.dsp.speech import espeak_corpus, music_like
from tests.peers.spandsp import dtmf_tx, spandsp_detect
from tests.tools import require_tool


def show(title, table):
    print(f"\n{title}")
    for k, v in table.items():
        print(f"  {k!s:>8}: {v}")


def test_frequency_accepted_within_1_5_percent_plus_2_hz_and_rejected_beyond_3_5_percent():
    offsets = [-5.0, -4.0, -3.5, -3.0, -2.5, -2.0, -1.5, 0.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]
    table = q24.frequency_sweep(q24.ours, offsets)
    show("detected fraction by frequency offset (%)", {f: " ".join(f"{o:+}:{v:.2f}" for o, v in row.items())
                                                       for f, row in table.items()})
    for f, row in table.items():
        assert all(row[o] == 1.0 for o in (-1.5, 0.0, 1.5)), (f, row)
        assert all(row[o] == 0.0 for o in (-5.0, -4.0, -3.5, 3.5, 4.0, 5.0)), (f, row)
    # the accept band's edge exactly: 1.5% plus 2 Hz either way
    edge = {f: (100 * (0.015 + 2 / f), -100 * (0.015 + 2 / f)) for f in table}
    for f, (up, down) in edge.items():
        got = q24.frequency_sweep(q24.ours, [up, down])[f]
        assert got == {up: 1.0, down: 1.0}, (f, got)


def test_twist_8_db_normal_and_4_db_reverse_accepted_clearly_beyond_rejected():
    twists = [-8, -6, -5, -4, -2, 0, 2, 4, 6, 8, 10, 12]
    table = q24.twist_sweep(q24.ours, twists)
    show("detected fraction by twist (dB, + normal: high group weaker)", table)
    assert all(table[t] == 1.0 for t in (-4, -2, 0, 2, 4, 6, 8))
    assert all(table[t] == 0.0 for t in (-8, -6, 10, 12))


def test_levels_from_plus_3_to_minus_35_dbm0_per_tone_after_alaw():
    levels = [3, 0, -5, -10, -15, -20, -26, -30, -33, -35, -37, -40, -45]
    table = q24.level_sweep(q24.ours, levels)
    show("detected fraction by level (dBm0 per tone, A-law round trip)", table)
    assert all(table[lv] == 1.0 for lv in levels if lv >= -35)  # 38 dB of dynamic range
    assert table[-40] == 0.0 and table[-45] == 0.0


def test_40_ms_tones_accepted_20_ms_rejected_at_every_alignment():
    durations = [10, 15, 20, 25, 30, 35, 40, 45, 50, 60]
    table = q24.duration_sweep(q24.ours, durations, repeats=5)
    show("detected fraction by tone duration (ms), 16 keys x 5 alignments", table)
    assert all(table[d] == 1.0 for d in (40, 45, 50, 60))
    assert all(table[d] == 0.0 for d in (10, 15, 20))


def test_40_ms_gaps_separate_two_presses_of_one_key():
    gaps = [10, 20, 30, 40, 50]
    table = q24.gap_sweep(q24.ours, gaps, repeats=5)
    show("fraction of same-key pairs heard as two, by gap (ms)", table)
    assert table[40] == 1.0 and table[50] == 1.0
    assert table[10] == 0.0  # a 10 ms break is one press


def test_99_percent_of_digits_at_6_db_snr_in_white_noise_after_alaw():
    snrs = [3, 4, 5, 6, 8, 10, 15]
    table = q24.snr_sweep(q24.ours, snrs, n_keys=1000)
    show("1000 digits per step: detected fraction and false keys, by S/N (dB)", table)
    assert table[6]["detected"] >= 0.99
    assert all(table[s]["detected"] >= 0.99 for s in (8, 10, 15))
    assert all(row["false"] == 0 for row in table.values())


@pytest.mark.parametrize("dial", [(450.0,), (350.0, 440.0)], ids=["china-450", "itu-350+440"])
def test_digits_under_dial_tone_10_db_stronger(dial):
    assert q24.under_dial_tone(q24.ours, dial, above_db=10.0) == 1.0


@pytest.fixture(scope="module")
def speech():
    espeak = require_tool("espeak-ng")
    x = espeak_corpus(espeak, minutes=32.0, seed=1)
    return alaw_decode(alaw_encode(x))


def test_no_false_digit_in_30_minutes_of_mandarin_and_english_speech(speech):
    minutes = speech.size / 8000 / 60
    assert minutes >= 30.0
    hits = q24.talk_off(q24.ours, speech)
    print(f"\ntalk-off: {hits} false keys in {minutes:.1f} min of espeak-ng speech (8 voices)")
    assert hits == 0


def test_no_false_digit_in_10_minutes_of_chords_and_sweeps():
    hits = q24.talk_off(q24.ours, music_like(600.0, seed=2))
    print(f"\ntalk-off: {hits} false keys in 10 min of chords and sweeps")
    assert hits == 0


def test_keys_pressed_while_talking_are_heard_15_db_above_the_speech(speech):
    belows = [6, 10, 15, 20]
    table = q24.talk_down(q24.ours, speech, belows)
    show("talk-down: detected fraction by speech level below each tone (dB)", table)
    assert table[15] == 1.0 and table[20] == 1.0


# --- spandsp as a peer, both ways ------------------------------------------------------------

@pytest.mark.parametrize("level,twist", [(-4, 0), (-10, 0), (-20, 0), (-26, 0), (-12, -4), (-10, 3)])
def test_we_decode_spandsp_generator(level, twist):
    x = dtmf_tx("0123456789*#ABCD", level_dbm0=level, twist_db=twist, on_ms=50, off_ms=55)
    assert detect_digits(alaw_decode(alaw_encode(x))) == "0123456789*#ABCD"


@pytest.mark.parametrize("level", [-4.0, -10.0, -20.0, -26.0])
def test_spandsp_decodes_our_generator(level):
    x = dtmf_generate("0123456789*#ABCD", level_dbm0=level, on_s=0.05, off_s=0.055)
    assert spandsp_detect(alaw_decode(alaw_encode(x))) == "0123456789*#ABCD"
