"""DTMF keys in a whole recorded signal, with their start and end times."""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.dtmf.generator import DTMF_KEYS
from dsp.dtmf.receiver import DtmfDetector

__all__ = ["dtmf_events", "detect_digits"]


def dtmf_events(x: np.ndarray, rate: int = 8000) -> list[tuple[str, float, float]]:
    """Every DTMF key in one signal with when it started and ended.

    The start is the beginning of the first 20 ms window the tone filled (the
    window before the first hit), the end the end of the last hit window: both
    within 10 ms of the tone's edges.

    Parameters
    ----------
    x : ndarray, shape (n_samples,) or (1, n_samples), int16 or float, linear PCM on the int16 scale
    rate : int, samples per second

    Returns
    -------
    events : list of (key, start_s, end_s)
    """
    if not isinstance(x, np.ndarray) or not (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)):
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"dtmf events: expected shape (n_samples,) or (1, n_samples), got {got}")
    sub = rate // 100
    block = 2 * sub
    n_blocks = -(-x.size // block) + 1  # one block of silence after, so a key at the very end closes
    padded = np.zeros((1, n_blocks * block), np.float64)
    padded[0, :x.size] = x.reshape(-1)
    det = DtmfDetector(1, block, rate)
    events: list[list] = []
    run_start = None  # window index where the current run of the same key began
    last_key, last_hit = -1, -1
    for i in range(n_blocks):
        fired = det.process(padded[:, i * block:(i + 1) * block])
        for s, k in enumerate(det.window_keys[0]):
            w = 2 * i + s  # window w spans samples (w - 1) * sub .. (w + 1) * sub
            if k >= 0:
                if k != last_key or w - last_hit > det.GAP:
                    run_start = w
                last_key, last_hit = int(k), w
                if events and events[-1][0] == DTMF_KEYS[k] and events[-1][3] == run_start:
                    events[-1][2] = (w + 1) * sub / rate
            if fired and s == 1:  # keys go down at the end of a call: after its second window
                for _, key in fired:
                    events.append([key, max(run_start - 2, 0) * sub / rate, (last_hit + 1) * sub / rate, run_start])
    return [(k, round(a, 3), round(b, 3)) for k, a, b, _ in events]


def detect_digits(x: np.ndarray, rate: int = 8000) -> str:
    """All DTMF keys in one signal, in order.

    Parameters
    ----------
    x : ndarray, shape (n_samples,) or (1, n_samples), int16 or float, linear PCM on the int16 scale
    rate : int, samples per second

    Returns
    -------
    keys : str
    """
    return "".join(k for k, _, _ in dtmf_events(x, rate))
