"""ITU-T Q.23/Q.24 sweeps for a DTMF receiver: seeded trial signals and the measured tables.

Every trial is one short signal holding one key (or a pair of keys for the gap
sweep); a *receiver* maps a batch of trials, shape (n_trials, n_samples) int16,
to the keys it reported for each. Our receiver runs the whole batch as channels
of one ``DtmfDetector``; spandsp's runs trial by trial. A trial counts as
detected only when the receiver reports exactly the expected keys.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dsp.dtmf import DTMF_FREQS, DTMF_KEYS, DtmfDetector
from dsp.g711 import alaw_decode, alaw_encode
from dsp.levels import dbm0_to_amplitude
from dsp.tones import noise, sine, to_int16

Receiver = Callable[[np.ndarray], list[str]]
RATE = 8000
LEAD = 480  # 60 ms before each key (plus a random 0-159 sample shift, so block alignment varies)
TAIL = 800  # 100 ms after


def ours(trials: np.ndarray) -> list[str]:
    """Our receiver: all trials as channels of one detector, 20 ms blocks."""
    n, length = trials.shape
    blocks = -(-length // 160)
    x = np.zeros((n, blocks * 160), np.int16)
    x[:, :length] = trials
    det = DtmfDetector(n, 160)
    got = [""] * n
    for b in range(blocks):
        for ch, key in det.process(x[:, b * 160:(b + 1) * 160]):
            got[ch] += key
    return got


def spandsp(trials: np.ndarray) -> list[str]:
    """spandsp's receiver (8 dB normal, 4 dB reverse twist, its default threshold), one trial at a time."""
    from tests.peers.spandsp import spandsp_detect

    return [spandsp_detect(row, twist_db=8, reverse_twist_db=4) for row in trials]


def spandsp_dialtone_filter(trials: np.ndarray) -> list[str]:
    """spandsp's receiver with its dial-tone filter on (its option for digits dialled over dial tone)."""
    from tests.peers.spandsp import spandsp_detect

    return [spandsp_detect(row, twist_db=8, reverse_twist_db=4, filter_dialtone=True) for row in trials]


def key_freqs(key: str) -> tuple[float, float]:
    i = DTMF_KEYS.index(key)
    return DTMF_FREQS["low"][i // 4], DTMF_FREQS["high"][i % 4]


def _batch(rows: list[np.ndarray]) -> np.ndarray:
    length = max(r.size for r in rows)
    out = np.zeros((len(rows), length))
    for i, r in enumerate(rows):
        out[i, :r.size] = r
    return out


def _burst(f_low, f_high, low_dbm0, high_dbm0, on_s, rng) -> np.ndarray:
    """LEAD + shift samples of silence, the two tones with random phases, TAIL of silence; float."""
    n = int(round(on_s * RATE))
    t = np.arange(n) / RATE
    ph = rng.uniform(0, 2 * np.pi, 2)
    tone = (dbm0_to_amplitude(low_dbm0) * np.sin(2 * np.pi * f_low * t + ph[0])
            + dbm0_to_amplitude(high_dbm0) * np.sin(2 * np.pi * f_high * t + ph[1]))
    shift = int(rng.integers(0, 160))
    return np.concatenate([np.zeros(LEAD + shift), tone, np.zeros(TAIL)])


def _score(receiver: Receiver, rows: list[np.ndarray], expected: list[str]) -> np.ndarray:
    got = receiver(to_int16(_batch(rows)))
    return np.array([g == e for g, e in zip(got, expected)])


def frequency_sweep(receiver: Receiver, offsets_pct, seed: int = 1) -> dict[float, dict[float, float]]:
    """Fraction detected for each DTMF frequency moved by each offset (%), the other tone nominal.

    Each cell is four trials: the frequency paired with each tone of the other group, at -10 dBm0.
    """
    rng = np.random.default_rng(seed)
    rows, expected, cells = [], [], []
    for group, other in (("low", "high"), ("high", "low")):
        for i, f in enumerate(DTMF_FREQS[group]):
            for off in offsets_pct:
                for j, g in enumerate(DTMF_FREQS[other]):
                    key = DTMF_KEYS[4 * i + j] if group == "low" else DTMF_KEYS[4 * j + i]
                    fl, fh = (f * (1 + off / 100), g) if group == "low" else (g, f * (1 + off / 100))
                    rows.append(_burst(fl, fh, -10.0, -10.0, 0.06, rng))
                    expected.append(key)
                    cells.append((f, off))
    ok = _score(receiver, rows, expected)
    table: dict[float, dict[float, list]] = {}
    for (f, off), hit in zip(cells, ok):
        table.setdefault(f, {}).setdefault(off, []).append(hit)
    return {f: {off: float(np.mean(v)) for off, v in row.items()} for f, row in table.items()}


def twist_sweep(receiver: Receiver, twists_db, seed: int = 2) -> dict[float, float]:
    """Fraction of the 16 keys detected at each twist: low tone at -10 dBm0, high at -10 - twist.

    Positive twist is *normal* (high group weaker), negative is *reverse*.
    """
    rng = np.random.default_rng(seed)
    rows, expected, cells = [], [], []
    for tw in twists_db:
        for key in DTMF_KEYS:
            fl, fh = key_freqs(key)
            rows.append(_burst(fl, fh, -10.0, -10.0 - tw, 0.06, rng))
            expected.append(key)
            cells.append(tw)
    ok = _score(receiver, rows, expected)
    return {tw: float(np.mean(ok[np.array(cells) == tw])) for tw in twists_db}


def level_sweep(receiver: Receiver, levels_dbm0, alaw: bool = True, seed: int = 3) -> dict[float, float]:
    """Fraction of the 16 keys detected with both tones at each level (dBm0 per tone), A-law round trip."""
    rng = np.random.default_rng(seed)
    rows, expected, cells = [], [], []
    for lv in levels_dbm0:
        for key in DTMF_KEYS:
            fl, fh = key_freqs(key)
            r = to_int16(_burst(fl, fh, lv, lv, 0.06, rng))
            rows.append(alaw_decode(alaw_encode(r)) if alaw else r)
            expected.append(key)
            cells.append(lv)
    ok = _score(receiver, rows, expected)
    return {lv: float(np.mean(ok[np.array(cells) == lv])) for lv in levels_dbm0}


def duration_sweep(receiver: Receiver, durations_ms, repeats: int = 3, seed: int = 4) -> dict[float, float]:
    """Fraction detected for tones of each duration (16 keys x ``repeats`` random alignments each)."""
    rng = np.random.default_rng(seed)
    rows, expected, cells = [], [], []
    for d in durations_ms:
        for _ in range(repeats):
            for key in DTMF_KEYS:
                fl, fh = key_freqs(key)
                rows.append(_burst(fl, fh, -10.0, -10.0, d / 1000.0, rng))
                expected.append(key)
                cells.append(d)
    ok = _score(receiver, rows, expected)
    return {d: float(np.mean(ok[np.array(cells) == d])) for d in durations_ms}


def gap_sweep(receiver: Receiver, gaps_ms, repeats: int = 3, seed: int = 5) -> dict[float, float]:
    """Fraction of same-key pairs (50 ms tones) heard as two keys, for each gap between them."""
    rng = np.random.default_rng(seed)
    rows, expected, cells = [], [], []
    for gap in gaps_ms:
        for _ in range(repeats):
            for key in DTMF_KEYS:
                fl, fh = key_freqs(key)
                a = _burst(fl, fh, -10.0, -10.0, 0.05, rng)
                on = a[LEAD:]
                on = on[np.flatnonzero(on)[0]:][:400]
                rows.append(np.concatenate([a[:-TAIL], np.zeros(int(gap * 8)), on, np.zeros(TAIL)]))
                expected.append(key + key)
                cells.append(gap)
    ok = _score(receiver, rows, expected)
    return {g: float(np.mean(ok[np.array(cells) == g])) for g in gaps_ms}


def noisy_keys(snr_db: float, n_keys: int, seed: int, level_dbm0: float = -10.0,
               on_s: float = 0.05) -> tuple[np.ndarray, list[str]]:
    """``n_keys`` trials of a random key in white noise at ``snr_db``, after an A-law round trip.

    S/N is the power of the two tones together (each at ``level_dbm0``) over the
    power of the noise across the whole band (0-4 kHz); the noise runs through
    each trial.
    """
    rng = np.random.default_rng(seed)
    keys = [DTMF_KEYS[k] for k in rng.integers(0, 16, n_keys)]
    rows = [_burst(*key_freqs(k), level_dbm0, level_dbm0, on_s, rng) for k in keys]
    x = _batch(rows)
    noise_dbm0 = level_dbm0 + 10 * np.log10(2.0) - snr_db
    x += noise(x.size, noise_dbm0, seed=seed + 1).reshape(x.shape)
    return alaw_decode(alaw_encode(to_int16(x))), keys


def snr_sweep(receiver: Receiver, snrs_db, n_keys: int = 1000, seed: int = 6) -> dict[float, dict[str, float]]:
    """For each S/N: the fraction of keys detected exactly, and the count of extra (false) keys."""
    out = {}
    for i, snr in enumerate(snrs_db):
        x, keys = noisy_keys(snr, n_keys, seed + 1000 * i)
        got = receiver(x)
        out[snr] = {"detected": float(np.mean([g == k for g, k in zip(got, keys)])),
                    "false": float(sum(max(0, len(g) - 1) + (len(g) == 1 and g != k) for g, k in zip(got, keys)))}
    return out


def under_dial_tone(receiver: Receiver, dial_freqs, above_db: float = 10.0, level_dbm0: float = -20.0,
                    seed: int = 7) -> float:
    """Fraction of 16 keys x 4 trials detected with a continuous dial tone ``above_db`` stronger per tone."""
    rng = np.random.default_rng(seed)
    rows, expected = [], []
    for _ in range(4):
        for key in DTMF_KEYS:
            b = _burst(*key_freqs(key), level_dbm0, level_dbm0, 0.05, rng)
            rows.append(b + sine(dial_freqs, level_dbm0 + above_db, b.size, RATE, rng.uniform(0, 6.28)))
            expected.append(key)
    return float(np.mean(_score(receiver, rows, expected)))


def talk_off(receiver: Receiver, x: np.ndarray, chunk_s: float = 20.0) -> int:
    """Keys reported in a long signal holding no DTMF; it is cut into ``chunk_s`` pieces run as channels."""
    n = int(chunk_s * RATE)
    pieces = -(-x.size // n)
    padded = np.zeros(pieces * n, np.int16)
    padded[:x.size] = x
    return sum(len(g) for g in receiver(padded.reshape(pieces, n)))


def talk_down(receiver: Receiver, speech: np.ndarray, belows_db, n_keys: int = 200,
              seed: int = 8) -> dict[float, float]:
    """Fraction of keys heard while someone talks, for speech ``below`` dB under each tone (-10 dBm0).

    Each trial is 400 ms of speech (a random stretch that is talking, its RMS set
    to -10 - below dBm0) with a 60 ms key in the middle.
    """
    rng = np.random.default_rng(seed)
    n = 3200
    starts, keys = [], []
    while len(starts) < n_keys:
        st = int(rng.integers(0, speech.size - n))
        piece = speech[st:st + n].astype(np.float64)
        if np.sqrt(np.mean(piece ** 2)) > 300.0:  # about -35 dBm0: someone is talking here
            starts.append(st)
            keys.append(DTMF_KEYS[int(rng.integers(0, 16))])
    out = {}
    for below in belows_db:
        rows = []
        for st, k in zip(starts, keys):
            piece = speech[st:st + n].astype(np.float64)
            piece *= dbm0_to_amplitude(-10.0 - below) / np.sqrt(2.0) / np.sqrt(np.mean(piece ** 2))
            tone = _burst(*key_freqs(k), -10.0, -10.0, 0.06, rng)[LEAD:LEAD + 480 + 160]
            piece[1400:1400 + tone.size] += tone
            rows.append(piece)
        out[below] = float(np.mean(_score(receiver, rows, keys)))
    return out
