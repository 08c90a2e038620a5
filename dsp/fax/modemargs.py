"""What the page modems (V.27ter, V.29) share: argument checks and the square-root raised-cosine pulse."""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError

__all__ = ["check_bit_rate", "check_modem", "check_bits", "rrc"]


def check_bit_rate(bit_rate, rates, modem: str) -> int:
    """``bit_rate`` as an int if it is one of ``rates``; DspError naming it otherwise."""
    if isinstance(bit_rate, bool) or bit_rate not in rates:
        raise DspError(f"{modem} bit_rate must be one of {tuple(rates)}, got {bit_rate!r}")
    return int(bit_rate)


def check_modem(bit_rate, block, rate, rates, modem: str) -> tuple[int, int, int]:
    """``(bit_rate, block, rate)`` as ints: a rate of ``rates``, a positive block, 8000 samples/s."""
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise DspError(f"block must be a positive number of samples, got {block!r}")
    if rate != 8000:
        raise DspError(f"{modem} runs at 8000 samples/s only, got rate {rate!r}")
    return check_bit_rate(bit_rate, rates, modem), int(block), int(rate)


def check_bits(bits, where: str) -> np.ndarray:
    """``bits`` as a 1-D uint8 array of 0 and 1; DspError naming ``where`` otherwise."""
    b = np.asarray(bits)
    if b.ndim != 1 or (b.size and (b.dtype.kind not in "biuf" or not np.all((b == 0) | (b == 1)))):
        raise DspError(f"{where}: bits must be a 1-D sequence of 0 and 1, got shape {b.shape}")
    return b.astype(np.uint8)


def rrc(t: np.ndarray, beta: float) -> np.ndarray:
    """Square-root raised-cosine impulse response at ``t`` symbol periods (peak 1 - beta + 4 beta / pi at 0).

    Transmitter and receiver each apply it, so together they make a raised cosine: no interference
    between symbols at the symbol instants, and the best signal to noise.
    """
    t = np.asarray(t, np.float64)
    out = np.empty_like(t)
    zero = np.abs(t) < 1e-9
    edge = np.abs(np.abs(t) - 1.0 / (4.0 * beta)) < 1e-9
    rest = ~(zero | edge)
    tr = t[rest]
    out[rest] = (np.sin(np.pi * tr * (1 - beta)) + 4 * beta * tr * np.cos(np.pi * tr * (1 + beta))) / (
        np.pi * tr * (1 - (4 * beta * tr) ** 2))
    out[zero] = 1 - beta + 4 * beta / np.pi
    a = np.pi / (4 * beta)
    out[edge] = beta / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(a) + (1 - 2 / np.pi) * np.cos(a))
    return out
