"""Tone generation: sines at dBm0 levels, cadenced call-progress tones, noise, a streaming generator.

Tone plans (``ToneSpec``, ``CHINA_TONES``, ``PLANS``) live in ``dsp.toneplans``;
the detector in ``dsp.progress``. ``python -m dsp.tones FILE.wav [--plan cn|us]``
lists the call-progress tones in a recording and the outbound-call outcome.
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from appliance.errors import DspError
from dsp.levels import DBM0_RMS, dbm0_to_amplitude
from dsp.toneplans import CHINA_TONES, PLANS, ToneSpec

__all__ = [
    "ToneSpec", "CHINA_TONES", "ToneGenerator", "MAX_FREQS",
    "sine", "tone", "cadence", "tone_signal", "noise", "to_int16", "main",
]

MAX_FREQS = 4  # frequencies one ToneGenerator channel can sum


def _freqs(freqs, rate: int) -> np.ndarray:
    f = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    if f.ndim != 1 or f.size == 0 or not np.all((f > 0) & (f < rate / 2.0)):
        raise DspError(f"freqs must be one or more frequencies in (0, {rate / 2.0}) Hz, got {freqs!r}")
    return f


def _amplitudes(level_dbm0, n_freqs: int) -> np.ndarray:
    lv = np.atleast_1d(np.asarray(level_dbm0, dtype=np.float64))
    if lv.size == 1:
        lv = np.repeat(lv, n_freqs)
    if lv.shape != (n_freqs,):
        raise DspError(f"level_dbm0 must be one level or one per frequency ({n_freqs}), got {level_dbm0!r}")
    return np.array([dbm0_to_amplitude(v) for v in lv])


def _n_samples(seconds: float, rate: int, name: str) -> int:
    if not np.isfinite(seconds) or seconds < 0:
        raise DspError(f"{name} must be a duration >= 0 s, got {seconds!r}")
    return int(round(seconds * rate))


def to_int16(x: np.ndarray) -> np.ndarray:
    """Round float PCM to int16, clipping to [-32768, 32767]."""
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def sine(freqs, level_dbm0, n_samples: int, rate: int = 8000, phase: float = 0.0) -> np.ndarray:
    """Sum of sines, each at ``level_dbm0``.

    Parameters
    ----------
    freqs : float or sequence of float, Hz
    level_dbm0 : float, dBm0 of each sine, or a sequence with one level per frequency
    n_samples : int
    rate : int, samples per second
    phase : float, radians, starting phase of every sine

    Returns
    -------
    x : ndarray, shape (n_samples,), float64, int16 linear scale
    """
    f = _freqs(freqs, rate)
    amp = _amplitudes(level_dbm0, f.size)
    if int(n_samples) < 0:
        raise DspError(f"n_samples must be >= 0, got {n_samples!r}")
    t = np.arange(int(n_samples)) / rate
    return amp @ np.sin(2.0 * np.pi * f[:, None] * t[None, :] + phase)


def tone(freqs, level_dbm0, duration_s: float, rate: int = 8000) -> np.ndarray:
    """A continuous tone, shape (round(duration_s * rate),), int16."""
    return to_int16(sine(freqs, level_dbm0, _n_samples(duration_s, rate, "duration_s"), rate))


def _cadence_mask(on_off: Sequence[tuple[float, float]], rate: int) -> np.ndarray | None:
    """One cycle of the cadence as a bool array (True = tone on), or None for continuous."""
    if on_off is None or len(on_off) == 0:
        return None
    parts = []
    for pair in on_off:
        if len(pair) != 2:
            raise DspError(f"on_off must be (on, off) pairs of seconds, got {pair!r}")
        on = _n_samples(pair[0], rate, "cadence on time")
        off = _n_samples(pair[1], rate, "cadence off time")
        parts += [np.ones(on, bool), np.zeros(off, bool)]
    mask = np.concatenate(parts)
    if mask.size == 0:
        raise DspError(f"on_off cadence lasts 0 samples: {on_off!r}")
    return mask


def cadence(freqs, level_dbm0, on_off_s, total_s: float, rate: int = 8000) -> np.ndarray:
    """A cadenced tone: the (on, off) pairs repeat until ``total_s``; starts with tone on.

    The oscillator runs through the off periods, so each burst continues the phase.

    Returns
    -------
    x : ndarray, shape (round(total_s * rate),), int16
    """
    n = _n_samples(total_s, rate, "total_s")
    x = sine(freqs, level_dbm0, n, rate)
    mask = _cadence_mask(on_off_s, rate)
    if mask is not None:
        x *= np.resize(mask, n)
    return to_int16(x)


def tone_signal(spec: ToneSpec, total_s: float, level_dbm0: float | None = None, rate: int = 8000) -> np.ndarray:
    """A plan's tone as it sounds on the line, cycle after cycle from its start, for ``total_s``.

    Same samples as ``cadence`` for a one-frequency-set tone; with ``spec.on_freqs``
    (SIT) each on period sounds its own frequencies, each with its own
    oscillator running from the start of the signal.

    Parameters
    ----------
    spec : ToneSpec
    total_s : float, seconds
    level_dbm0 : float, dBm0 of each sine; None for ``spec.level_dbm0``
    rate : int, samples per second

    Returns
    -------
    x : ndarray, shape (round(total_s * rate),), int16
    """
    level = spec.level_dbm0 if level_dbm0 is None else level_dbm0
    if not spec.on_freqs:
        return cadence(spec.freqs, level, spec.on_off, total_s, rate)
    n = _n_samples(total_s, rate, "total_s")
    x = np.zeros(n)
    for i, freqs in enumerate(spec.on_freqs):  # gate each step's oscillator with its own slot of the cycle
        only = [(on, off) if j == i else (0.0, on + off) for j, (on, off) in enumerate(spec.on_off)]
        x += sine(freqs, level, n, rate) * np.resize(_cadence_mask(only, rate), n)
    return to_int16(x)


def noise(n_samples: int, level_dbm0: float, seed: int) -> np.ndarray:
    """White Gaussian noise scaled so that its RMS over the block is exactly ``level_dbm0``.

    Returns
    -------
    x : ndarray, shape (n_samples,), float64, int16 linear scale (use ``to_int16`` to send it)
    """
    n = int(n_samples)
    if n < 1:
        raise DspError(f"n_samples must be >= 1, got {n_samples!r}")
    x = np.random.default_rng(seed).standard_normal(n)
    target = DBM0_RMS * 10.0 ** (float(level_dbm0) / 20.0)
    return x * (target / np.sqrt(np.mean(x * x)))


class ToneGenerator:
    """Streaming tones for the media tick: one tone (up to ``MAX_FREQS`` sines) per channel.

    Each channel runs its own oscillator, phase-continuous from block to block,
    gated by its cadence. Per block every channel comes from one batched matrix
    product with precomputed one-block cos/sin tables, using
    ``sin(p + w k) = sin p cos(w k) + cos p sin(w k)``; only cadenced channels
    get a Python-level step (their gate).

    Parameters
    ----------
    n_channels : int
    block : int, samples per block (160 = 20 ms at 8 kHz)
    rate : int, samples per second
    """

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000):
        if int(n_channels) < 1 or int(block) < 1 or int(rate) < 1:
            raise DspError(f"n_channels, block and rate must be >= 1, got {n_channels!r}, {block!r}, {rate!r}")
        self.n_channels, self.block, self.rate = int(n_channels), int(block), int(rate)
        shape = (self.n_channels, MAX_FREQS)
        self._omega = np.zeros(shape)  # rad/sample
        self._amp = np.zeros(shape)  # peak amplitude per sine, 0 for unused slots
        self._phase = np.zeros(shape)  # rad, at the start of the next block
        # rows 0..F-1: cos(w k), rows F..2F-1: sin(w k); inactive channels keep zero coefficients
        self._basis = np.zeros((self.n_channels, 2 * MAX_FREQS, self.block))
        self._coef = np.zeros((self.n_channels, 1, 2 * MAX_FREQS))
        self._blk = np.zeros((self.n_channels, 1, self.block))
        self._mask: list[np.ndarray | None] = [None] * self.n_channels
        self._pos = np.zeros(self.n_channels, dtype=np.int64)  # sample index within the cadence cycle
        self._active = np.zeros(self.n_channels, dtype=bool)
        self._active_list: list[int] = []
        self._k = np.arange(self.block)

    def _check_ch(self, ch: int) -> int:
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        return int(ch)

    def start(self, ch: int, freqs, level_dbm0, on_off: Sequence[tuple[float, float]] | None = None) -> None:
        """Start (or replace) channel ``ch``'s tone; phase 0 and cadence 'on' at the next block.

        freqs : up to ``MAX_FREQS`` Hz; level_dbm0 : dBm0 of each sine (or one per frequency);
        on_off : (on, off) seconds repeated, None for continuous.
        """
        ch = self._check_ch(ch)
        f = _freqs(freqs, self.rate)
        if f.size > MAX_FREQS:
            raise DspError(f"at most {MAX_FREQS} frequencies per channel, got {f.size}: {freqs!r}")
        amp = _amplitudes(level_dbm0, f.size)
        mask = _cadence_mask(on_off, self.rate)
        self._omega[ch] = 0.0
        self._amp[ch] = 0.0
        self._omega[ch, : f.size] = 2.0 * np.pi * f / self.rate
        self._amp[ch, : f.size] = amp
        self._phase[ch] = 0.0
        wk = self._omega[ch][:, None] * self._k[None, :]
        self._basis[ch, :MAX_FREQS] = np.cos(wk)
        self._basis[ch, MAX_FREQS:] = np.sin(wk)
        self._mask[ch] = mask
        self._pos[ch] = 0
        if not self._active[ch]:
            self._active[ch] = True
            self._active_list = sorted(self._active_list + [ch])

    def stop(self, ch: int) -> None:
        """Silence channel ``ch`` from the next block on."""
        ch = self._check_ch(ch)
        if self._active[ch]:
            self._active[ch] = False
            self._active_list.remove(ch)
            self._mask[ch] = None
            self._amp[ch] = 0.0

    def active(self, ch: int) -> bool:
        """True while channel ``ch`` has a tone started and not stopped (also during cadence 'off')."""
        return bool(self._active[self._check_ch(ch)])

    def add_to(self, out: np.ndarray) -> None:
        """Add the next block of every active channel's tone into ``out`` and advance.

        Parameters
        ----------
        out : ndarray, shape (n_channels, block), float32 or float64, int16 linear scale; modified in place
        """
        if not isinstance(out, np.ndarray) or out.dtype not in (np.float32, np.float64):
            got = out.dtype if isinstance(out, np.ndarray) else type(out).__name__
            raise DspError(f"add_to: out must be a float32 or float64 ndarray, got {got}")
        if out.shape != (self.n_channels, self.block):
            raise DspError(f"add_to: out must have shape {(self.n_channels, self.block)}, got {out.shape}")
        if not self._active_list:
            return
        ph = self._phase
        coef = self._coef[:, 0, :]
        np.multiply(self._amp, np.sin(ph), out=coef[:, :MAX_FREQS])
        np.multiply(self._amp, np.cos(ph), out=coef[:, MAX_FREQS:])
        np.matmul(self._coef, self._basis, out=self._blk)  # (C, 1, block): every channel at once
        blk = self._blk[:, 0, :]
        for ch in self._active_list:  # cadence gates, only for channels that have one
            mask = self._mask[ch]
            if mask is not None:
                pos = int(self._pos[ch])
                end = pos + self.block
                blk[ch] *= mask[pos:end] if end <= mask.size else mask[(pos + self._k) % mask.size]
                self._pos[ch] = end % mask.size
        out += blk
        ph += self._omega * self.block
        np.mod(ph, 2.0 * np.pi, out=ph)


def main(argv: list[str] | None = None) -> int:
    """``python -m dsp.tones FILE.wav [--plan cn|us]``: one ``TONE START_S END_S`` line per tone, then the outcome.

    Exit status 0, or 2 with the error on stderr for a file that is not 8 kHz mono audio.
    """
    import argparse

    from dsp.progress import detect_progress  # the detector builds on this module
    from dsp.wavio import read_wav_8k

    ap = argparse.ArgumentParser(prog="python -m dsp.tones", description="List the call-progress tones in a "
                                 "recording (8 kHz mono WAV, 16-bit PCM or A-law) and the outbound-call outcome.")
    ap.add_argument("file", help="WAV file")
    ap.add_argument("--plan", choices=sorted(PLANS), default="cn", help="tone plan (default: cn)")
    args = ap.parse_args(argv)
    try:
        x = read_wav_8k(args.file)
        tones, outcome = detect_progress(x, args.plan)
    except (DspError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, start, end in tones:
        print(f"{name} {start:.2f} {end:.2f}")
    print(f"outcome: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
