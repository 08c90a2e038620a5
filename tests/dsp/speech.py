"""Seeded talk-off material: real Mandarin and English speech from espeak-ng, and music-like synthetic signals.

Nothing is stored: the English text is the GPL-3 licence text every Debian
system ships, the Mandarin text is seeded random GB2312 level-1 characters
(espeak-ng reads each as a syllable with its tone), punctuated into phrases.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.signal import resample_poly

from dsp.levels import DBM0_RMS
from dsp.wavio import parse_wav

ENGLISH_TEXT = "/usr/share/common-licenses/GPL-3"
# (voice, words per minute, pitch 0-99): men, women, slow and fast speakers
VOICES = [("cmn", 150, 50), ("cmn+f3", 190, 70), ("cmn+m3", 240, 35), ("cmn+f5", 120, 80),
          ("en", 175, 50), ("en-us+f3", 210, 75), ("en+m3", 140, 30), ("en-gb+f4", 260, 60)]


def _mandarin_text(n_chars: int, rng: np.random.Generator) -> str:
    hi = rng.integers(0xB0, 0xD8, n_chars)
    lo = rng.integers(0xA1, 0xFF, n_chars)
    chars = [bytes([h, lo_]).decode("gb2312", errors="ignore") for h, lo_ in zip(hi, lo)]
    out = []
    for i, c in enumerate(chars):
        out.append(c)
        if i % 9 == 8:
            out.append("，" if rng.random() < 0.7 else "。")
    return "".join(out)


def _english_text(n_words: int, rng: np.random.Generator) -> str:
    with open(ENGLISH_TEXT, encoding="utf-8") as f:
        words = f.read().split()
    start = int(rng.integers(0, max(1, len(words) - n_words)))
    return " ".join(words[start:start + n_words])


def _speak(espeak: str, voice: str, wpm: int, pitch: int, text: str) -> np.ndarray:
    run = subprocess.run([espeak, "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdout"],
                         input=text.encode("utf-8"), capture_output=True, check=True, timeout=120)
    info = parse_wav(run.stdout, f"espeak-ng -v {voice}", streaming=True)
    x = np.frombuffer(info.data, "<i2").astype(np.float64)
    return resample_poly(x, 8000 // 50, info.rate // 50) if info.rate % 50 == 0 else x


def espeak_corpus(espeak: str, minutes: float, seed: int = 0) -> np.ndarray:
    """About ``minutes`` of speech, half Mandarin and half English, over every voice in ``VOICES``.

    Each utterance is set to a seeded active level between -30 and -8 dBm0; the
    result is int16 at 8 kHz.
    """
    rng = np.random.default_rng(seed)
    per_voice_s = minutes * 60.0 / len(VOICES)
    jobs = []
    for voice, wpm, pitch in VOICES:
        # chars and words per second at that rate, with pauses, rounded up a little
        if voice.startswith("cmn"):
            text = _mandarin_text(int(per_voice_s * wpm / 60.0 * 1.15), rng)
        else:
            text = _english_text(int(per_voice_s * wpm / 60.0 * 1.1), rng)
        jobs.append((voice, wpm, pitch, text))
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(lambda j: _speak(espeak, *j), jobs))
    out = []
    for x in parts:
        for piece in np.array_split(x, max(1, x.size // 80000)):  # ~10 s pieces, each at its own level
            active = piece[np.abs(piece) > 0.05 * np.abs(piece).max()] if piece.any() else piece
            rms = np.sqrt(np.mean(active ** 2)) if active.size else 1.0
            level = rng.uniform(-30.0, -8.0)
            out.append(piece * (DBM0_RMS * 10 ** (level / 20.0) / max(rms, 1e-9)))
    return np.clip(np.rint(np.concatenate(out)), -32768, 32767).astype(np.int16)


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Chords of 3-4 equal-tempered notes with harmonics, and sweeps with harmonics, int16 at 8 kHz.

    Notes are A4 = 440 Hz equal temperament between 200 and 1700 Hz, each with
    four harmonics at 1/h, an attack-decay envelope and slight vibrato; sweeps
    glide log-linearly over 300-3000 Hz at 0.5-4 octaves per second.
    """
    rng = np.random.default_rng(seed)
    n_total = int(seconds * 8000)
    out = np.zeros(n_total)
    pos = 0
    while pos < n_total:
        n = int(rng.uniform(0.15, 0.8) * 8000)
        t = np.arange(n) / 8000.0
        seg = np.zeros(n)
        if rng.random() < 0.7:
            semis = rng.choice(np.arange(-10, 25), size=int(rng.integers(3, 5)), replace=False)
            for s in semis:
                f0 = 440.0 * 2 ** (s / 12.0) * (1 + 0.003 * np.sin(2 * np.pi * 5 * t))
                ph = 2 * np.pi * np.cumsum(f0) / 8000.0
                for h in range(1, 5):
                    if h * 440.0 * 2 ** (s / 12.0) < 3800:
                        seg += np.sin(h * ph + rng.uniform(0, 6.28)) / h
            seg *= np.minimum(1.0, t / 0.02) * np.exp(-t * rng.uniform(0.5, 4.0))
        else:
            f_start = rng.uniform(300, 3000)
            rate_oct = rng.uniform(0.5, 4.0) * rng.choice([-1, 1])
            f = np.clip(f_start * 2 ** (rate_oct * t), 200, 3800)
            ph = 2 * np.pi * np.cumsum(f) / 8000.0
            for h in range(1, 4):
                seg += np.where(h * f < 3900, np.sin(h * ph) / h, 0.0)
        level = rng.uniform(-25.0, -8.0)
        seg *= DBM0_RMS * 10 ** (level / 20.0) / max(np.sqrt(np.mean(seg ** 2)), 1e-9)
        end = min(n_total, pos + n)
        out[pos:end] += seg[:end - pos]
        pos += int(n * rng.uniform(0.6, 1.0))
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)
