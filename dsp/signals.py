"""Synthetic speech-like signals: seeded stand-ins for voices in tests, benchmarks and the simulated card."""

from __future__ import annotations

import numpy as np

from dsp.levels import DBM0_RMS


def speech_like(seconds: float, seed: int, level_dbm0: float = -15.0, rate: int = 8000) -> np.ndarray:
    """Seeded voiced-speech stand-in: 39 harmonics of a gliding, vibrato pitch (90-260 Hz)
    shaped by three moving formants, cut into 120-350 ms syllables with pauses; float64."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    knots = np.arange(0, seconds + 0.15, 0.15)
    f0 = np.interp(t, knots, rng.uniform(90, 260, knots.size)) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    fk = np.arange(0, seconds + 0.1, 0.1)
    formants = [np.interp(t, fk, rng.uniform(lo, hi, fk.size)) for lo, hi in ((300, 900), (800, 2300), (2200, 3200))]
    x = np.zeros(n)
    for h in range(1, 40):
        fh = h * f0
        gain = sum(1.0 / (1.0 + ((fh - f) / 90.0) ** 2) for f in formants) / h ** 0.5
        x += np.where(fh < rate / 2 - 100, gain, 0.0) * np.sin(h * phase)
    env = np.zeros(n)
    i = 0
    while i < n:
        length = int(rng.uniform(0.12, 0.35) * rate)
        env[i:i + length] = np.hanning(length)[: n - i]
        i += length + int(rng.uniform(0.0, 0.12) * rate)
    x = x * env + 0.02 * rng.standard_normal(n) * env
    return x * (DBM0_RMS * 10 ** (level_dbm0 / 20) / np.sqrt(np.mean(x ** 2)))
