"""Call-progress detection: which plan tones a line carries, their cadences, and an outbound call's outcome."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from appliance.errors import DspError
from dsp.cadence import Segments, align_history, align_run, compile_patterns
from dsp.levels import DBM0_RMS
from dsp.toneplans import TonePlan, get_plan
from dsp.voice import VoiceDetector

__all__ = ["OUTCOMES", "ToneEvent", "OutcomeEvent", "ProgressDetector", "detect_progress"]

OUTCOMES = ("answered", "busy", "no_answer", "congestion", "vacant", "special_information", "fax", "silence")
# tones that end an outbound attempt as soon as they are recognised
_TONE_OUTCOME = {"busy": "busy", "congestion": "congestion", "vacant": "vacant",
                 "sit": "special_information", "cng": "fax", "ced": "fax"}
_NEVER = np.iinfo(np.int64).max // 2  # a step no channel reaches


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
    neither tone nor speech means silence. Only undecided channels go through the
    speech classifier (``voice``); tones are followed on every channel.

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
        self._no_tone = self._min_energy * (1.0 - 1e-9)  # below it no candidate reaches _min_energy, rounding too
        self._gap = max(1, int(round(self.GAP_S * self._sps)))
        self._min_span = self.MIN_MATCH_S * self._sps
        ring = self.plan.tones.get("ringback")
        limit = float(no_answer_s)
        if no_answer_rings is not None and ring is not None and ring.on_off:
            limit = min(limit, int(no_answer_rings) * sum(map(sum, ring.on_off)))
        self._no_answer = limit * self._sps
        self._ring_wait = math.ceil(self._no_answer)  # whole steps: now - start >= _no_answer, in integers
        self._silence = float(silence_s) * self._sps
        self.voice = VoiceDetector(n_channels, block, rate)  # follows undecided channels only

        C = n_channels
        self._step = 0  # analysis windows since construction
        self._seg = Segments(C, self._steps, self._gap, self._patterns, len(self._cands),
                             self.LOW_FRACTION, self.HIGH_FRACTION)
        self._active = np.full(C, -1, np.int64)  # pattern index of the recognised tone
        self._act_start = np.zeros(C, np.int64)
        self._last_end = np.zeros(C)  # step where the last tone ended: the next may not start before
        self._pos = np.zeros(C, np.int64)  # index in its segments that the running segment should be
        self._pending = np.zeros(C, bool)  # a final-outcome tone is part-way matched
        self._outcome = np.full(C, -1, np.int64)  # index in OUTCOMES
        self._ring_start = np.full(C, -1, np.int64)  # step of the first ringback burst
        self._ring_due = np.full(C, _NEVER, np.int64)  # step from which that ringback means no answer
        self._quiet = np.zeros(C, np.int64)  # steps without tone or voiced frame
        self._origin = np.zeros(C, np.int64)  # step of the last reset
        self._places: list = [None] * C  # (history, floor, {pattern: align_history}) of the last match
        self._xs = np.zeros((C * self._steps, self.window))  # the block as float windows
        self._proj = np.zeros((C * self._steps, self._basis.shape[1]))
        self._energy = np.zeros((C * self._steps, len(self._cands)))
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
        # patterns with a segment of each label (index label + 1): no other can align with a running segment
        self._with_label = [[i for i, p in enumerate(self._patterns) if any(sg.label == lab for sg in p.segs)]
                            for lab in range(-1, len(self._cands))]

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
        self._seg.reset(ch, self._step)
        self._active[ch], self._pending[ch], self._outcome[ch], self._last_end[ch] = -1, False, -1, self._step
        self._ring_start[ch], self._ring_due[ch], self._quiet[ch], self._origin[ch] = -1, _NEVER, 0, self._step
        self._places[ch] = None
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
            run = self._seg.length[ch] - self._seg.miss[ch]
            end = self._seg.start[ch] + run  # still within its cadence, or it would have ended
            events.append(ToneEvent(ch, self._patterns[a].name, self._secs(ch, self._act_start[ch]),
                                    self._secs(ch, end)))
            self._active[ch], self._last_end[ch] = -1, end
        self._decide(ch, "no_answer" if self._ring_start[ch] >= 0 else "silence", self._step, events)
        return events

    # --- the block --------------------------------------------------------------------------------

    def _labels(self, total: np.ndarray):
        """Best candidate, its energy share and its validity for every window of ``self._xs``: each shape (C, steps).

        ``total`` : ndarray, shape (C * steps,), each window's energy.
        """
        C, S = self.n_channels, self._steps
        proj = np.matmul(self._xs, self._basis, out=self._proj)
        energy = np.matmul(proj * proj, self._group, out=self._energy)  # (C * S, K)
        best = energy.argmax(axis=1)
        eb = np.maximum.reduce(energy, axis=1)  # the best candidate's energy
        ok = eb >= self._min_energy
        for i, (cols, rinv) in self._rinv.items():
            rows = (ok & (best == i)).nonzero()[0]  # a dual tone's twist matters only where it won
            if rows.size:
                c = proj[rows, cols] @ rinv  # (rows, 2m): cos then sin coefficients of each sine
                m = c.shape[1] // 2
                amp = c[:, :m] ** 2 + c[:, m:] ** 2
                ok[rows] = amp.min(axis=1) >= self._twist * amp.max(axis=1)
        eb /= np.maximum(total, 1e-30)
        return best.reshape(C, S), eb.reshape(C, S), ok.reshape(C, S)

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
        C, xs = self.n_channels, self._xs
        np.copyto(xs, x.reshape(xs.shape), casting="unsafe")
        total = np.einsum("ij,ij->i", xs, xs)
        open_ = self._outcome < 0
        n_open = np.count_nonzero(open_)
        speaking = None
        if n_open:  # speech only decides outcomes: decided channels skip the voice classifier
            speaking = self.voice.process(xs.reshape(C, self.block), None if n_open == C else open_)
        best = frac = ok = None  # no window carries a candidate: all below MIN_TONE_DBM0, no projection needed
        if np.maximum.reduce(total) >= self._no_tone:
            best, frac, ok = self._labels(total)
        events: list = []

        def match(ch: int, changed: bool, step: int) -> None:
            self._match(ch, changed, step, events)

        toned = self._seg.feed(best, frac, ok, self._step, match)
        self._step += self._steps
        if n_open:  # no channel opens within a tick: only reset() opens one
            self._outcomes(open_, speaking, toned, events)
        if len(events) > 1:
            events.sort(key=lambda e: e.channel)  # stable: a channel's events stay in time order
        return events

    def _outcomes(self, open_: np.ndarray, speaking: np.ndarray, toned: np.ndarray, events: list) -> None:
        """Decide the channels ``open_`` at the start of the block that speech, ringback or silence now decide."""
        busy = self.voice.voiced | toned
        busy |= self._active >= 0  # a cadence's off period is not silence
        self._quiet += self._steps
        self._quiet[busy] = 0
        now = self._step
        due = self._quiet >= self._silence
        due |= speaking > self._pending  # speaking and no final tone part-way matched
        due |= self._ring_due <= now
        due &= open_
        for ch in due.nonzero()[0].tolist():  # _decide skips a channel a tone decided in this block
            answered = speaking[ch] and not self._pending[ch]
            no_answer = self._ring_due[ch] <= now
            self._decide(ch, "answered" if answered else "no_answer" if no_answer else "silence", now, events)

    # --- cadence matching, for one channel at a segment change or a duration checkpoint ----------

    def _match(self, ch: int, changed: bool, step: int, events: list) -> None:
        """Follow the recognised tone and look for new ones at window ``step``; ``changed``: a segment completed."""
        track = self._seg
        hist = track.history(ch)
        run_lab = int(track.cur[ch])
        run_start = int(track.start[ch])
        run_len = int(track.length[ch] - track.miss[ch])
        now = step + 1
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
        a, floor = int(self._active[ch]), float(self._last_end[ch])
        cache = self._places[ch]
        if cache is None or cache[0] is not hist or cache[1] != floor:
            # the history's part of each alignment holds while the running segment grows
            cache = self._places[ch] = (hist, floor, {i: align_history(self._patterns[i], hist, run_lab, floor)
                                                      for i in self._with_label[run_lab + 1]})
        for i, places in cache[2].items():
            if i == a:
                continue
            pat = self._patterns[i]
            got = align_run(pat, places, hist, run_lab, run_start, run_len, self._min_span, floor)
            if got is not None:
                (complete if got[2] else partial).append((got[1], i, pat, got[0]))
        # the earliest-starting whole match wins, unless a part-way match began even earlier
        # (a longer cadence, such as vacant's, whose tail looks like another tone)
        if complete and a < 0 and not any(q[0] < min(complete)[0] for q in partial):
            start, i, pat, p = min(complete)
            self._active[ch], self._act_start[ch], self._pos[ch] = i, start, p
            events.append(ToneEvent(ch, pat.name, self._secs(ch, start)))
            if pat.name == "ringback" and self._ring_start[ch] < 0:
                self._ring_start[ch], self._ring_due[ch] = start, start + self._ring_wait
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
