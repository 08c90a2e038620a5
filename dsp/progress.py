"""Call-progress detection: which plan tones a line carries, their cadences, and an outbound call's outcome."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.errors import DspError
from dsp.cadence import align, checkpoints, compile_patterns
from dsp.levels import DBM0_RMS
from dsp.toneplans import TonePlan, get_plan
from dsp.voice import VoiceDetector

__all__ = ["OUTCOMES", "ToneEvent", "OutcomeEvent", "ProgressDetector", "detect_progress"]

OUTCOMES = ("answered", "busy", "no_answer", "congestion", "vacant", "special_information", "fax", "silence")
# tones that end an outbound attempt as soon as they are recognised
_TONE_OUTCOME = {"busy": "busy", "congestion": "congestion", "vacant": "vacant",
                 "sit": "special_information", "cng": "fax", "ced": "fax"}


@dataclass(frozen=True)
class ToneEvent:
    """A plan tone on a channel, seconds since the channel's reset.

    Reported twice: when recognised (``end_s`` None) and when it stops. The
    tone runs from the start of its first matched on period to the start of
    the first period that breaks its cadence; an off period that runs long
    counts up to its nominal length.
    """

    channel: int
    tone: str
    start_s: float
    end_s: float | None = None


@dataclass(frozen=True)
class OutcomeEvent:
    """An outbound call's outcome (one of ``OUTCOMES``), decided once per channel at ``at_s``."""

    channel: int
    outcome: str
    at_s: float


class ProgressDetector:
    """Streaming call-progress tone detector and outbound outcome classifier for many channels.

    Each block is cut into analysis windows (the longest whole fraction of a
    block over which a tone ``plan.freq_tol_hz`` off nominal keeps 80% of its
    energy: 10 ms for China's 450 +-25 Hz, 20 ms for the US plan). Every window
    of every channel is projected, in one matrix product, onto an orthonormal
    basis of each *candidate* (a set of frequencies some tone sounds). A window
    carries a candidate when that candidate holds ``HIGH_FRACTION`` of the
    window's energy (``LOW_FRACTION`` to keep going), is above
    ``MIN_TONE_DBM0``, and, for a dual tone, each frequency is within
    ``MAX_TWIST_DB`` of the other. Dropouts and steps of up to ``GAP_S``
    are absorbed into the segment they interrupt (SIT steps, noise).

    Segments are matched against each tone's cadence, every duration within
    ``CADENCE_TOL`` of nominal plus one analysis window. A tone is recognised once a whole
    cycle and at least ``MIN_MATCH_S`` match (a continuous tone once it has lasted
    ``CONTINUOUS_S``, and longer than any cadenced on period of the same
    frequencies), and no longer cadence is part-way matched from earlier.

    Outcomes: a recognised busy, congestion, vacant, SIT, CNG or CED tone
    decides its outcome; speech (``dsp.voice.VoiceDetector``) means answered,
    unless such a tone is part-way matched; ringback for ``no_answer_s``, or
    for ``no_answer_rings`` whole cycles, means no answer; ``silence_s`` with
    neither tone nor speech means silence.

    Parameters
    ----------
    n_channels : int
    block : int, samples per ``process`` call (160 = 20 ms at 8 kHz)
    rate : int, samples per second
    plan : str or TonePlan, a key of ``dsp.toneplans.PLANS``
    no_answer_s : float, seconds of ringback, from its first burst, that mean no answer
    no_answer_rings : int or None, ringback cycles that mean no answer, if sooner
    silence_s : float, seconds without tone or speech that mean silence
    """

    HIGH_FRACTION = 0.7
    LOW_FRACTION = 0.5
    MIN_TONE_DBM0 = -42.0
    MAX_TWIST_DB = 10.0
    CADENCE_TOL = 0.10
    CONTINUOUS_S = 2.0
    MIN_MATCH_S = 1.0
    GAP_S = 0.03

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000, plan: str | TonePlan = "cn",
                 no_answer_s: float = 30.0, no_answer_rings: int | None = None, silence_s: float = 10.0):
        n_channels, block, rate = int(n_channels), int(block), int(rate)
        if n_channels < 1 or block < 32 or rate < 4000:
            raise DspError(f"need n_channels >= 1, block >= 32, rate >= 4000, got {n_channels}, {block}, {rate}")
        for name, v in (("no_answer_s", no_answer_s), ("silence_s", silence_s)):
            if not (np.isfinite(v) and v > 0):
                raise DspError(f"{name} must be a number of seconds > 0, got {v!r}")
        if no_answer_rings is not None and int(no_answer_rings) < 1:
            raise DspError(f"no_answer_rings must be >= 1 or None, got {no_answer_rings!r}")
        self.plan = get_plan(plan)
        self.n_channels, self.block, self.rate = n_channels, block, rate
        fit = rate / (4.0 * self.plan.freq_tol_hz)  # a quarter bin off nominal keeps sinc^2(1/4) = 81%
        self.window = max([d for d in range(1, block + 1) if block % d == 0 and d <= fit] or [0])
        if self.window < 16:
            raise DspError(f"block {block} has no divisor of 16..{int(fit)} samples for the "
                           f"{self.plan.name!r} plan's +-{self.plan.freq_tol_hz} Hz")
        self._steps = block // self.window  # analysis windows per block
        self._sps = rate / self.window  # steps per second
        self._build_basis()
        self._build_patterns()
        self._min_energy = self.window * DBM0_RMS**2 * 10.0 ** (self.MIN_TONE_DBM0 / 10.0)
        self._gap = max(1, int(round(self.GAP_S * self._sps)))
        self._min_span = self.MIN_MATCH_S * self._sps
        ring = self.plan.tones.get("ringback")
        limit = float(no_answer_s)
        if no_answer_rings is not None and ring is not None and ring.on_off:
            limit = min(limit, int(no_answer_rings) * sum(map(sum, ring.on_off)))
        self._no_answer = limit * self._sps
        self._silence = float(silence_s) * self._sps
        self.voice = VoiceDetector(n_channels, block, rate)

        C, H = n_channels, max(len(p.segs) for p in self._patterns) + 2
        self._step = 0  # analysis windows since construction
        self._cur = np.full(C, -1, np.int64)  # confirmed label of the running segment
        self._start = np.zeros(C, np.int64)  # step where it began
        self._len = np.zeros(C, np.int64)  # its steps so far, including unconfirmed misses
        self._miss = np.zeros(C, np.int64)  # trailing steps whose raw label differs from _cur
        self._hist = np.zeros((C, H, 3), np.int64)  # completed segments (label, start, length), newest last
        self._active = np.full(C, -1, np.int64)  # pattern index of the recognised tone
        self._act_start = np.zeros(C, np.int64)
        self._last_end = np.zeros(C)  # step where the last tone ended: the next may not start before
        self._pos = np.zeros(C, np.int64)  # index in its segments that the running segment should be
        self._pending = np.zeros(C, bool)  # a final-outcome tone is part-way matched
        self._outcome = np.full(C, -1, np.int64)  # index in OUTCOMES
        self._ring_start = np.full(C, -1, np.int64)  # step of the first ringback burst
        self._quiet = np.zeros(C, np.int64)  # steps without tone or voiced frame
        self._origin = np.zeros(C, np.int64)  # step of the last reset
        self._xs = np.zeros((C * self._steps, self.window))
        self.reset_all()

    # --- set-up ---------------------------------------------------------------------------------

    def _build_basis(self) -> None:
        cands: list[tuple[float, ...]] = []
        for spec in self.plan.tones.values():
            for freqs, _ in spec.segments():
                if freqs and freqs not in cands:
                    cands.append(freqs)
        self._cands = cands
        k = np.arange(self.window)[:, None]
        cols, groups, self._rinv, at = [], [], {}, 0
        for i, freqs in enumerate(cands):
            w = 2.0 * np.pi * np.asarray(freqs) / self.rate
            q, r = np.linalg.qr(np.concatenate([np.cos(w * k), np.sin(w * k)], axis=1))  # cos f1.., sin f1..
            if len(freqs) > 1:  # maps projections back to each sine's coefficients, for a dual tone's twist
                self._rinv[i] = (slice(at, at + q.shape[1]), np.linalg.inv(r).T)
            cols.append(q)
            groups += [i] * q.shape[1]
            at += q.shape[1]
        self._basis = np.concatenate(cols, axis=1)  # (window, columns): orthonormal per candidate
        self._group = (np.asarray(groups)[:, None] == np.arange(len(cands))[None, :]).astype(np.float64)
        self._twist = 10.0 ** (-self.MAX_TWIST_DB / 10.0)

    def _build_patterns(self) -> None:
        self._patterns = compile_patterns(self.plan, self._cands, self._sps, self.CADENCE_TOL,
                                          self.CONTINUOUS_S, _TONE_OUTCOME)
        self._marks, self._top = checkpoints(self._patterns, len(self._cands))

    # --- per-channel control --------------------------------------------------------------------

    def _check_ch(self, ch: int) -> int:
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        return int(ch)

    def reset_all(self) -> None:
        """Reset every channel."""
        for ch in range(self.n_channels):
            self.reset(ch)

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s tones and outcome (a new call); its times restart from 0."""
        ch = self._check_ch(ch)
        self._cur[ch], self._start[ch], self._len[ch], self._miss[ch] = -1, self._step, 0, 0
        self._hist[ch] = 0
        self._hist[ch, :, 0] = -1
        self._active[ch], self._pending[ch], self._outcome[ch], self._last_end[ch] = -1, False, -1, self._step
        self._ring_start[ch], self._quiet[ch], self._origin[ch] = -1, 0, self._step
        self.voice.reset(ch)

    def outcome(self, ch: int) -> str | None:
        """Channel ``ch``'s outcome, one of ``OUTCOMES``, or None while undecided."""
        o = int(self._outcome[self._check_ch(ch)])
        return OUTCOMES[o] if o >= 0 else None

    def tone(self, ch: int) -> str | None:
        """The tone recognised on channel ``ch`` and still going, or None."""
        a = int(self._active[self._check_ch(ch)])
        return self._patterns[a].name if a >= 0 else None

    def _secs(self, ch: int, step) -> float:
        return float(step - self._origin[ch]) / self._sps

    def _decide(self, ch: int, outcome: str, now: int, events: list) -> None:
        if self._outcome[ch] < 0:
            self._outcome[ch] = OUTCOMES.index(outcome)
            events.append(OutcomeEvent(ch, outcome, self._secs(ch, now)))

    def finish(self, ch: int) -> list:
        """End channel ``ch``'s observation now (the call or the recording ended).

        Returns the end of a tone still going and, if none was decided, the
        outcome: no answer after ringback, silence otherwise.
        """
        ch = self._check_ch(ch)
        events: list = []
        a = int(self._active[ch])
        if a >= 0:
            run = self._len[ch] - self._miss[ch]
            end = self._start[ch] + run  # still within its cadence, or it would have ended
            events.append(ToneEvent(ch, self._patterns[a].name, self._secs(ch, self._act_start[ch]),
                                    self._secs(ch, end)))
            self._active[ch], self._last_end[ch] = -1, end
        self._decide(ch, "no_answer" if self._ring_start[ch] >= 0 else "silence", self._step, events)
        return events

    # --- the block --------------------------------------------------------------------------------

    def _labels(self, x: np.ndarray):
        """Best candidate, its energy share and its validity for every window: each shape (C, steps)."""
        C, S, W = self.n_channels, self._steps, self.window
        xs = self._xs
        np.copyto(xs, x.reshape(C * S, W), casting="unsafe")
        proj = xs @ self._basis
        energy = (proj * proj) @ self._group  # (C * S, K)
        total = np.einsum("ij,ij->i", xs, xs)
        best = np.argmax(energy, axis=1)
        eb = energy[np.arange(C * S), best]
        ok = eb >= self._min_energy
        for i, (cols, rinv) in self._rinv.items():
            c = proj[:, cols] @ rinv  # (C * S, 2m): cos then sin coefficients of each sine
            m = c.shape[1] // 2
            amp = c[:, :m] ** 2 + c[:, m:] ** 2
            ok &= (best != i) | (amp.min(axis=1) >= self._twist * amp.max(axis=1))
        frac = eb / np.maximum(total, 1e-30)
        return best.reshape(C, S), frac.reshape(C, S), ok.reshape(C, S)

    def process(self, x: np.ndarray) -> list:
        """Feed one block of every channel; return the tone and outcome events it produced.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale

        Returns
        -------
        events : list of ToneEvent and OutcomeEvent, in channel order, in time order within a channel
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"ProgressDetector.process: expected an int16 or float ndarray, got {got}")
        if x.shape != (self.n_channels, self.block):
            raise DspError(f"ProgressDetector.process: expected shape {(self.n_channels, self.block)}, got {x.shape}")
        best, frac, ok = self._labels(x)
        speaking = self.voice.process(x)
        events: list = []
        toned = np.zeros(self.n_channels, bool)
        cur, length, miss, marks, top = self._cur, self._len, self._miss, self._marks, self._top
        for s in range(self._steps):
            thresh = np.where(best[:, s] == cur, self.LOW_FRACTION, self.HIGH_FRACTION)
            raw = np.where(ok[:, s] & (frac[:, s] >= thresh), best[:, s], -1)
            toned |= raw >= 0
            before = length - miss
            miss[:] = np.where(raw == cur, 0, miss + 1)
            length += 1
            flip = miss > self._gap  # a change confirmed: it began ``miss`` steps ago
            eff = length - miss
            lab = cur + 1
            cross = marks[lab, np.minimum(eff, top)] != marks[lab, np.minimum(before, top)]
            for ch in np.flatnonzero(flip | cross):
                if flip[ch]:
                    self._push(ch, int(raw[ch]))
                self._match(int(ch), bool(flip[ch]), events)
            self._step += 1
        self._outcomes(speaking, toned, events)
        if len(events) > 1:
            events.sort(key=lambda e: e.channel)  # stable: a channel's events stay in time order
        return events

    def _push(self, ch: int, label: int) -> None:
        """Close the running segment ``miss`` steps back and start one of ``label`` there."""
        m = int(self._miss[ch])
        h = self._hist[ch]
        h[:-1] = h[1:]
        h[-1] = (self._cur[ch], self._start[ch], self._len[ch] - m)
        self._cur[ch], self._start[ch], self._len[ch], self._miss[ch] = label, self._start[ch] + self._len[ch] - m, m, 0

    def _outcomes(self, speaking: np.ndarray, toned: np.ndarray, events: list) -> None:
        quiet = ~toned & ~self.voice.voiced & (self._active < 0)  # a cadence's off period is not silence
        self._quiet[:] = np.where(quiet, self._quiet + self._steps, 0)
        open_ = self._outcome < 0
        now = self._step
        answered = open_ & speaking & ~self._pending
        no_answer = open_ & (self._ring_start >= 0) & (now - self._ring_start >= self._no_answer)
        silence = open_ & (self._quiet >= self._silence)
        for ch in np.flatnonzero(answered | no_answer | silence):
            self._decide(int(ch), "answered" if answered[ch] else "no_answer" if no_answer[ch] else "silence",
                         now, events)

    # --- cadence matching, for one channel at a segment change or a duration checkpoint ----------

    def _match(self, ch: int, changed: bool, events: list) -> None:
        """Follow the recognised tone and look for new ones; ``changed``: a segment just completed."""
        hist = [tuple(r) for r in self._hist[ch].tolist() if r[2] > 0]
        run_lab = int(self._cur[ch])
        run_start = int(self._start[ch])
        run_len = int(self._len[ch] - self._miss[ch])
        now = self._step + 1
        a = int(self._active[ch])
        if a >= 0:
            pat = self._patterns[a]
            pos = int(self._pos[ch])
            end = None
            if changed:
                lab, start, n = hist[-1]
                seg = pat.segs[pos]
                if lab != seg.label or not seg.lo <= n <= seg.hi:
                    end = start
                else:
                    pos = (pos + 1) % len(pat.segs)
                    if run_lab != pat.segs[pos].label:
                        end = run_start
            elif run_len > pat.segs[pos].hi:  # the running segment outlasted its place in the cadence
                seg = pat.segs[pos]
                end = run_start + (seg.nominal if seg.label < 0 else 0)
            if end is None:
                self._pos[ch] = pos
            else:
                events.append(ToneEvent(ch, pat.name, self._secs(ch, self._act_start[ch]), self._secs(ch, end)))
                self._active[ch], self._last_end[ch] = -1, end
        complete, partial = [], []  # (start, plan order, pattern, position of the running segment)
        for i, pat in enumerate(self._patterns):
            if i == self._active[ch]:
                continue
            got = align(pat, hist, run_lab, run_start, run_len, self._min_span, self._last_end[ch])
            if got is not None:
                (complete if got[2] else partial).append((got[1], i, pat, got[0]))
        # the earliest-starting whole match wins, unless a part-way match began even earlier
        # (a longer cadence, such as vacant's, whose tail looks like another tone)
        if complete and self._active[ch] < 0 and not any(q[0] < min(complete)[0] for q in partial):
            start, i, pat, p = min(complete)
            self._active[ch], self._act_start[ch], self._pos[ch] = i, start, p
            events.append(ToneEvent(ch, pat.name, self._secs(ch, start)))
            if pat.name == "ringback" and self._ring_start[ch] < 0:
                self._ring_start[ch] = start
            if pat.final:
                self._decide(ch, _TONE_OUTCOME[pat.name], now, events)
        self._pending[ch] = any(q[2].final for q in partial)

def detect_progress(x: np.ndarray, plan: str | TonePlan = "cn", rate: int = 8000, block: int = 160,
                    **options) -> tuple[list[tuple[str, float, float]], str]:
    """Call-progress tones and the outcome of one channel's whole signal.

    Parameters
    ----------
    x : ndarray, shape (n_samples,) or (1, n_samples), int16 or float, linear PCM on the int16 scale
    plan : str or TonePlan
    rate : int, samples per second
    block : int, samples per step of the streaming detector
    **options : no_answer_s, no_answer_rings, silence_s of ``ProgressDetector``

    Returns
    -------
    tones : list of (name, start_s, end_s), in order of start
    outcome : str, one of ``OUTCOMES``; at the end of the signal an undecided call is
        no_answer if ringback was heard, silence otherwise
    """
    if not isinstance(x, np.ndarray) or not (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)):
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        raise DspError(f"detect_progress: expected shape (n_samples,) or (1, n_samples), got {got}")
    x = x.reshape(1, -1)
    det = ProgressDetector(1, block, rate, plan, **options)
    n_blocks = -(-x.shape[1] // block)
    padded = np.zeros((1, n_blocks * block))
    padded[:, : x.shape[1]] = x
    events = []
    for i in range(n_blocks):
        events += det.process(padded[:, i * block:(i + 1) * block])
    events += det.finish(0)
    end_s = x.shape[1] / rate
    tones = [(e.tone, e.start_s, min(e.end_s, end_s))
             for e in events if isinstance(e, ToneEvent) and e.end_s is not None]
    outcome = next(e.outcome for e in events if isinstance(e, OutcomeEvent))
    return sorted(tones, key=lambda t: t[1]), outcome
