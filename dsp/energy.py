"""Signal/silence detection: a streaming detector for every channel at once, and offline trimming and end-of-message.

A 20 ms block is *active* when its level (dBm0) is above both an absolute
threshold and an adaptive noise floor plus a margin. The floor falls at once to
any quieter block and rises slowly (``floor_rise_db_s``), so steady line noise
soon becomes the floor while speech, whose syllables come and go, stays above
it; a steady tone also fades into the floor after some seconds, which lets
end-of-message detection ignore a dial tone left on a line. The state turns
*on* after ``attack_blocks`` active blocks in a row (a click is not speech) and
back *off* once ``hangover_s`` has passed without an active block (pauses
between words do not end a message).

With the defaults (threshold -45 dBm0, 9 dB over the floor, 0.5 s hangover, 3
dB/s) line noise up to about -54 dBm0 never counts; noise at -50 dBm0 stays
silence while speech at -30 dBm0 is signal. Line noise louder than the
threshold reads as signal after a reset until the floor has climbed to it:
(noise - 54 dBm0) / 3 dB/s, e.g. 3.3 s at -35 dBm0, plus the hangover.

The floor recursion ``floor[k] = max(lo, min(floor[k-1] + rise, level[k]))`` is a
running minimum in disguise, so the offline functions compute it (and the
attack and hangover rules) for a whole recording with array operations and
agree block for block with the streaming ``SignalDetector``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from appliance.errors import DspError
from dsp.levels import DBM0_RMS, FLOOR_DBM0, as_channels

__all__ = ["SignalDetector", "Transition", "block_activity", "trim_silence", "find_message_end"]

THRESHOLD_DBM0 = -45.0  # quietest block that can count as signal
SNR_DB = 9.0  # how far above the noise floor a block must be
HANGOVER_S = 0.5
ATTACK_BLOCKS = 2
FLOOR_RISE_DB_S = 3.0
BLOCK_S = 0.02


@dataclass(frozen=True)
class Transition:
    """A channel's state changed.

    ``time`` is when the signal really started (the first block of the attack run)
    or stopped (the end of the last active block), in the detector's time base;
    the event itself is reported ``attack_blocks - 1`` blocks or ``hangover_s`` later.
    """

    channel: int
    kind: str  # "signal" or "silence"
    time: float  # seconds


@dataclass(frozen=True)
class _Params:
    """The detector's settings turned into per-block quantities."""

    block: int
    rate: int
    threshold_dbm0: float
    snr_db: float
    attack: int  # blocks
    hang: int  # blocks, >= 1
    rise: float  # dB per block

    @property
    def floor_lo(self) -> float:
        # below this the floor cannot matter (threshold wins), and it never has to climb up from -120
        return self.threshold_dbm0 - self.snr_db


def _params(block, rate, threshold_dbm0, snr_db, hangover_s, attack_blocks, floor_rise_db_s) -> _Params:
    def finite(name, v, lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and lo <= v <= hi):
            raise DspError(f"{name} must be a number in {lo}..{hi}, got {v!r}")
        return float(v)

    for name, v in (("block", block), ("rate", rate), ("attack_blocks", attack_blocks)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise DspError(f"{name} must be an integer >= 1, got {v!r}")
    finite("threshold_dbm0", threshold_dbm0, -100.0, 3.14)
    finite("snr_db", snr_db, 0.0, 60.0)
    finite("hangover_s", hangover_s, 0.0, 3600.0)
    finite("floor_rise_db_s", floor_rise_db_s, 0.0, 1000.0)
    dt = int(block) / int(rate)
    return _Params(int(block), int(rate), float(threshold_dbm0), float(snr_db), int(attack_blocks),
                   max(1, round(hangover_s / dt)), float(floor_rise_db_s) * dt)


class SignalDetector:
    """Streaming signal/silence detector for the media tick: all channels per call, no per-channel Python.

    Parameters
    ----------
    n_channels : int
    block : int, samples per block (160 = 20 ms at 8 kHz)
    rate : int, samples per second
    threshold_dbm0 : float, dBm0, quietest block that can count as signal
    snr_db : float, dB a block must be above the channel's noise floor
    hangover_s : float, seconds the state stays on after the last active block
        (rounded to whole blocks, at least one)
    attack_blocks : int, active blocks in a row that turn the state on
    floor_rise_db_s : float, dB/s the noise floor climbs while blocks are louder than it

    Attributes
    ----------
    level : ndarray, shape (n_channels,), float64, dBm0 of the last block (read-only view)
    floor : ndarray, shape (n_channels,), float64, dBm0, noise floor after the last block (read-only view)
    state : ndarray, shape (n_channels,), bool, True while signal (read-only view)
    """

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000, *,
                 threshold_dbm0: float = THRESHOLD_DBM0, snr_db: float = SNR_DB, hangover_s: float = HANGOVER_S,
                 attack_blocks: int = ATTACK_BLOCKS, floor_rise_db_s: float = FLOOR_RISE_DB_S) -> None:
        if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
            raise DspError(f"n_channels must be an integer >= 1, got {n_channels!r}")
        self._p = _params(block, rate, threshold_dbm0, snr_db, hangover_s, attack_blocks, floor_rise_db_s)
        self.n_channels, self.block, self.rate = int(n_channels), self._p.block, self._p.rate
        self.n_blocks = 0  # blocks processed: the default time base
        c = self.n_channels
        self._buf = np.zeros((c, self.block))
        self._level = np.zeros(c)
        self._floor = np.full(c, self._p.floor_lo)
        self._tmp = np.zeros(c)
        self._active = np.zeros(c, bool)
        self._a = np.zeros(c, bool)
        self._b = np.zeros(c, bool)
        self._run = np.zeros(c, np.int64)  # active blocks in a row
        self._since = np.full(c, self._p.hang, np.int64)  # blocks since the last active one, capped at hang
        self._state = np.zeros(c, bool)
        # power (int16 units squared, summed over the block) -> dBm0: 10 log10(power * scale)
        self._scale = 1.0 / (self.block * DBM0_RMS**2)
        self._tiny = 10.0 ** (FLOOR_DBM0 / 10.0)
        self.level, self.floor, self.state = (_readonly(a) for a in (self._level, self._floor, self._state))

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s history (a new call): silence, floor back at its lowest; no event."""
        if isinstance(ch, bool) or not isinstance(ch, (int, np.integer)) or not 0 <= ch < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        self._floor[ch] = self._p.floor_lo
        self._run[ch] = 0
        self._since[ch] = self._p.hang
        self._state[ch] = False
        self._level[ch] = FLOOR_DBM0

    def process(self, x: np.ndarray, now: float | None = None) -> tuple[np.ndarray, list[Transition]]:
        """Take one block of every channel.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM (int16 scale)
        now : float, optional, seconds at the first sample of ``x``; defaults to
            ``n_blocks * block / rate`` (the detector's own count)

        Returns
        -------
        state : ndarray, shape (n_channels,), bool, True while signal; a read-only
            view that the next call overwrites
        events : list of Transition, in channel order; empty on most ticks
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"process: expected an int or float ndarray, got {got}")
        if x.shape != self._buf.shape:
            raise DspError(f"process: x must have shape {self._buf.shape}, got {x.shape}")
        p = self._p
        t0 = self.n_blocks * self.block / self.rate if now is None else float(now)
        self.n_blocks += 1
        buf, lvl, fl, tmp = self._buf, self._level, self._floor, self._tmp
        np.copyto(buf, x)
        np.einsum("ij,ij->i", buf, buf, out=lvl)
        lvl *= self._scale
        np.maximum(lvl, self._tiny, out=lvl)
        np.log10(lvl, out=lvl)
        lvl *= 10.0
        fl += p.rise
        np.maximum(lvl, p.floor_lo, out=tmp)
        np.minimum(fl, tmp, out=fl)
        np.add(fl, p.snr_db, out=tmp)
        np.maximum(tmp, p.threshold_dbm0, out=tmp)
        act = self._active
        np.greater(lvl, tmp, out=act)
        self._run += 1
        self._run *= act
        self._since += 1
        np.logical_not(act, out=self._a)
        self._since *= self._a
        np.minimum(self._since, p.hang, out=self._since)  # capped: no overflow on a quiet line
        # on stays on until the hangover runs out; off turns on after the attack run
        np.less(self._since, p.hang, out=self._a)
        np.logical_and(self._a, self._state, out=self._a)
        np.greater_equal(self._run, p.attack, out=self._b)
        np.logical_or(self._a, self._b, out=self._a)
        np.not_equal(self._a, self._state, out=self._b)
        events: list[Transition] = []
        if self._b.any():
            dt = self.block / self.rate
            for ch in np.flatnonzero(self._b).tolist():  # only channels that changed
                if self._a[ch]:
                    events.append(Transition(ch, "signal", t0 - (p.attack - 1) * dt))
                else:
                    events.append(Transition(ch, "silence", t0 + dt - p.hang * dt))
            np.copyto(self._state, self._a)
        return self.state, events


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def _offline(x: np.ndarray, rate: int, name: str, hangover_s: float, kw: dict) -> tuple[_Params, dict]:
    x = as_channels(x, name, min_samples=0)
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not 1000 <= rate <= 384000:
        raise DspError(f"{name}: rate must be an integer in 1000..384000, got {rate!r}")
    p = _params(round(BLOCK_S * rate), int(rate), kw.pop("threshold_dbm0", THRESHOLD_DBM0),
                kw.pop("snr_db", SNR_DB), hangover_s, kw.pop("attack_blocks", ATTACK_BLOCKS),
                kw.pop("floor_rise_db_s", FLOOR_RISE_DB_S))
    if kw:
        raise DspError(f"{name}: unknown detector setting {sorted(kw)[0]!r}")
    return p, _blocks(x, p)


def _blocks(x: np.ndarray, p: _Params) -> dict:
    """The streaming rules over whole recordings; arrays shape (n_channels, n_blocks)."""
    n_ch = x.shape[0]
    nb = x.shape[1] // p.block
    xf = x[:, :nb * p.block].astype(np.float64).reshape(n_ch, nb, p.block)
    power = np.einsum("ijk,ijk->ij", xf, xf) / (p.block * DBM0_RMS**2)
    level = 10.0 * np.log10(np.maximum(power, 10.0 ** (FLOOR_DBM0 / 10.0)))
    k = np.arange(nb)
    # floor[k] = min(floor[k-1] + rise, max(level[k], lo)), floor[-1] = lo: a running minimum of level - rise*k
    ramp = np.maximum(level, p.floor_lo) - p.rise * k
    start = np.full((n_ch, 1), p.floor_lo + p.rise)  # index -1 on the same ramp
    floor = np.minimum.accumulate(np.concatenate([start, ramp], axis=1), axis=1)[:, 1:] + p.rise * k
    active = level > np.maximum(floor + p.snr_db, p.threshold_dbm0)
    # trigger: the attack run is complete; brk: the hangover has run out (the state must be off)
    run_sum = np.cumsum(active, axis=1)
    prev = np.concatenate([np.zeros((n_ch, p.attack), np.int64), run_sum[:, :-p.attack]], axis=1)[:, :nb]
    trigger = (run_sum - prev) >= p.attack
    last_active = np.maximum.accumulate(np.where(active, k, -p.hang - 1), axis=1)
    brk = (k - last_active) >= p.hang
    last_trigger = np.maximum.accumulate(np.where(trigger, k, -1), axis=1)
    last_brk = np.maximum.accumulate(np.where(brk, k, -1), axis=1)
    on = ~brk & (last_trigger > last_brk)
    return {"level": level, "floor": floor, "active": active, "on": on}


def block_activity(x: np.ndarray, rate: int = 8000, *, hangover_s: float = HANGOVER_S,
                   **settings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The streaming detector's view of a whole recording, 20 ms block by block.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples) or (n_samples,), int16 or float, linear PCM
    rate : int, samples per second; blocks are ``round(0.02 * rate)`` samples, a partial last block is dropped
    hangover_s : float
    **settings : threshold_dbm0, snr_db, attack_blocks, floor_rise_db_s as for ``SignalDetector``

    Returns
    -------
    level : ndarray, shape (n_channels, n_blocks), float64, dBm0 of each block
    active : ndarray, shape (n_channels, n_blocks), bool, the block itself is above threshold and floor
    state : ndarray, shape (n_channels, n_blocks), bool, the detector's state after each block
        (what ``SignalDetector.process`` returns block by block from a fresh start)
    """
    _, b = _offline(x, rate, "block_activity", hangover_s, dict(settings))
    return b["level"], b["active"], b["on"]


def _spans(b: dict, p: _Params) -> list[tuple[int, int]]:
    """(onset block, end block) of each signal segment of row 0: attack run's start to just after its last active block."""
    on, active = b["on"][0], b["active"][0]
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    # a segment is on from its trigger to (last active block + hang - 1), so its last active block is in it
    return [(s - (p.attack - 1), s + int(np.flatnonzero(active[s:e])[-1]) + 1)
            for s, e in zip(starts.tolist(), stops.tolist())]


def _mixed(x: np.ndarray, name: str) -> np.ndarray:
    x = as_channels(x, name, min_samples=0)
    return x.astype(np.float64).mean(axis=0, keepdims=True) if x.shape[0] > 1 else x


def trim_silence(x: np.ndarray, rate: int = 8000, margin_s: float = 0.1, *,
                 hangover_s: float = HANGOVER_S, **settings) -> tuple[int, int]:
    """Where the signal starts and ends, with a margin: ``x[..., start:stop]`` keeps it.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples) or (n_samples,), int16 or float, linear PCM;
        channels are mixed for the decision, the bounds apply to all
    rate : int, samples per second
    margin_s : float, seconds kept before the first signal and after the last, within ``x``
    hangover_s, **settings : as for ``block_activity``

    Returns
    -------
    start, stop : int, sample indices, ``0 <= start <= stop <= n_samples``; ``(0, 0)`` if ``x`` holds no signal
    """
    if isinstance(margin_s, bool) or not isinstance(margin_s, (int, float)) or not 0.0 <= margin_s <= 60.0:
        raise DspError(f"trim_silence: margin_s must be 0..60 s, got {margin_s!r}")
    mono = _mixed(x, "trim_silence")
    p, b = _offline(mono, rate, "trim_silence", hangover_s, dict(settings))
    spans = _spans(b, p)
    if not spans:
        return 0, 0
    margin = round(margin_s * rate)
    n = mono.shape[1]
    return max(0, spans[0][0] * p.block - margin), min(n, spans[-1][1] * p.block + margin)


def find_message_end(x: np.ndarray, rate: int = 8000, silence_s: float = 3.0, **settings) -> int | None:
    """End of a spoken message: the end of the last speech before the first ``silence_s`` of silence.

    For voicemail and recording: the caller spoke, then stayed quiet for ``silence_s``
    (pauses shorter than that belong to the message). In the media tick the same
    answer comes from a ``SignalDetector`` with ``hangover_s=silence_s``: its
    "silence" event carries this time.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples) or (n_samples,), int16 or float, linear PCM (channels mixed)
    rate : int, samples per second
    silence_s : float, seconds of silence that end a message (rounded to 20 ms blocks)
    **settings : threshold_dbm0, snr_db, attack_blocks, floor_rise_db_s as for ``SignalDetector``

    Returns
    -------
    end : int or None, sample index just after the message's last active block; None if
        there was no speech, or the speech had not been followed by ``silence_s`` of silence
    """
    if isinstance(silence_s, bool) or not isinstance(silence_s, (int, float)) or not 0.02 <= silence_s <= 3600:
        raise DspError(f"find_message_end: silence_s must be 0.02..3600 s, got {silence_s!r}")
    mono = _mixed(x, "find_message_end")
    p, b = _offline(mono, rate, "find_message_end", silence_s, dict(settings))
    spans = _spans(b, p)
    if not spans:
        return None
    first_end = spans[0][1]
    if first_end + p.hang > b["on"].shape[1]:  # still on at the end of x: the silence has not lasted yet
        return None
    return first_end * p.block
