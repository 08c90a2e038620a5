"""Stepping a simulated card by hand in 20 ms frames, as the runtime would, for driver tests."""

from __future__ import annotations

import numpy as np

from drivers.base import BLOCK
from dsp.g711 import alaw_decode


def run(card, seconds: float, port: int = 0, start: float = 0.0):
    """Poll and read ``card`` for ``seconds``; the events with their times, and what ``port`` received.

    Returns
    -------
    events : list of (time_s rounded to 10 ms, event)
    audio : ndarray, shape (n,), int16, the frames ``port`` received, decoded
    """
    events, audio = [], []
    frame = np.zeros((len(card.ports), BLOCK), np.uint8)
    for i in range(int(round(seconds / 0.02))):
        now = start + i * 0.02
        events += [(round(now, 2), ev) for ev in card.poll(now)]
        card.read(frame)
        audio.append(alaw_decode(frame[port]))
    return events, np.concatenate(audio)
