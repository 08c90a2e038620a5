"""Caller-ID bursts for an FXS port: FSK between the first and second ring, or DTMF before the first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.errors import DspError
from dsp.callerid.messages import CallerId, dtmf_keys, encode_message
from dsp.dtmf import dtmf_generate
from dsp.fsk import async_frame, fsk_modulate


def fsk_burst(message: bytes, level_dbm0: float = -13.5, rate: int = 8000, seizure_bits: int = 300,
              mark_bits: int = 180, baud: float = 1200.0) -> np.ndarray:
    """Bell 202 audio of one message: ``seizure_bits`` of 0101..., ``mark_bits`` of 1, the bytes, 10 mark bits.

    Returns
    -------
    x : ndarray, shape (n_samples,), int16, phase-continuous at ``level_dbm0``
    """
    if int(seizure_bits) < 0 or int(mark_bits) < 0:
        raise DspError(f"seizure_bits and mark_bits must be >= 0, got {seizure_bits!r}, {mark_bits!r}")
    bits = np.concatenate((np.arange(int(seizure_bits), dtype=np.uint8) & 1, np.ones(int(mark_bits), np.uint8),
                           async_frame(message), np.ones(10, np.uint8)))
    return fsk_modulate(bits, level_dbm0, rate, baud)


@dataclass(frozen=True, eq=False)
class CallerIdBurst:
    """Audio for an FXS port and when to play it, for a card driver.

    FSK (``before_first_ring`` False): in the silence after the first ring, starting at
    least ``min_lead_s`` after the ring ends and ending at least ``min_guard_s`` before the
    second ring. DTMF (True): before the first ring, which follows the end of the audio by
    ``min_guard_s`` .. ``max_guard_s``.

    samples : ndarray, shape (n,), int16 at ``rate``
    """

    samples: np.ndarray
    format: str
    before_first_ring: bool
    min_lead_s: float
    min_guard_s: float
    max_guard_s: float | None
    rate: int = 8000

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.rate

    def fits(self, silence_s: float) -> bool:
        """True if an FSK burst fits a ring cadence's silence of ``silence_s`` (China: 4.0 s)."""
        return self.before_first_ring or self.min_lead_s + self.duration_s + self.min_guard_s <= silence_s


def callerid_burst(cid: CallerId, fmt: str | None = None, level_dbm0: float | None = None,
                   rate: int = 8000) -> CallerIdBurst:
    """Caller ID for an FXS port: FSK (default -13.5 dBm0) or DTMF keys 'A<number>C' (-10 dBm0 a tone)."""
    fmt = fmt or cid.format
    if fmt == "dtmf":
        level = -10.0 if level_dbm0 is None else level_dbm0
        x = dtmf_generate(dtmf_keys(cid), level, 0.07, 0.07, rate=rate)
        return CallerIdBurst(x, fmt, True, 0.0, 0.2, 0.5, rate)
    level = -13.5 if level_dbm0 is None else level_dbm0
    return CallerIdBurst(fsk_burst(encode_message(cid, fmt), level, rate), fmt, False, 0.5, 0.2, None, rate)
