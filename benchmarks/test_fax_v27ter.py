"""Cost of the V.27ter modem on one channel: about 10 s of signal through the transmitter and the receiver,
at 4800 and 2400 bit/s, in 20 ms blocks. ``extra_info["x_real_time"]`` is seconds of signal per second of
CPU (the receiver's target at 4800 is 20 or better); each run also checks the bits came through."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.fax.v27ter import V27terTransmitter
from dsp.fax.v27ter_rx import V27terReceiver

BLOCK = 160
SECONDS = 10


def _bits(bit_rate: int) -> np.ndarray:
    return np.random.default_rng(bit_rate).integers(0, 2, SECONDS * bit_rate).astype(np.uint8)


def _transmit(bit_rate: int, bits: np.ndarray) -> np.ndarray:
    tx = V27terTransmitter(bit_rate, block=BLOCK)
    tx.send(bits)
    out = []
    while tx.busy:
        out.append(tx.take())
    out.append(np.zeros(4 * BLOCK, np.int16))
    return np.concatenate(out)


def _receive(bit_rate: int, x: np.ndarray) -> np.ndarray:
    rx = V27terReceiver(bit_rate, block=BLOCK)
    return np.concatenate([rx.process(x[i:i + BLOCK]) for i in range(0, x.size - BLOCK + 1, BLOCK)])


def _real_time(benchmark, seconds: float) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["signal_s"] = round(seconds, 2)
        benchmark.extra_info["x_real_time"] = round(seconds / stats.stats.median, 1)


@pytest.mark.parametrize("bit_rate", [4800, 2400])
def test_v27ter_transmit_10s(benchmark, bit_rate):
    bits = _bits(bit_rate)
    x = benchmark.pedantic(_transmit, args=(bit_rate, bits), rounds=3, iterations=1)
    _real_time(benchmark, x.size / 8000)
    assert x.size > SECONDS * 8000


@pytest.mark.parametrize("bit_rate", [4800, 2400])
def test_v27ter_receive_10s(benchmark, bit_rate):
    bits = _bits(bit_rate)
    x = _transmit(bit_rate, bits)
    got = benchmark.pedantic(_receive, args=(bit_rate, x), rounds=3, iterations=1)
    _real_time(benchmark, x.size / 8000)
    np.testing.assert_array_equal(got[: bits.size], bits)
