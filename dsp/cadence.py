"""Cadences as data the progress detector can match: a plan's tones as segments counted in analysis windows.

A *segment* is a run of analysis windows carrying one candidate (a set of
frequencies; label >= 0) or none (label -1, an off period). A tone's cadence is
one cycle of segments, each with its accepted length range; ``Segments`` cuts
every channel's window labels into segments, and ``align`` finds where the most
recent segments of a channel sit in that cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.toneplans import TonePlan

__all__ = ["Seg", "Pattern", "Segments", "compile_patterns", "checkpoints", "next_checkpoint", "align",
           "align_history", "align_run"]


@dataclass(frozen=True)
class Seg:
    """One period of a cadence: candidate label (-1 for off), nominal length and accepted range, in steps."""

    label: int
    nominal: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Pattern:
    """A tone's cadence cycle; ``final``: recognising it decides an outbound call's outcome."""

    name: str
    segs: tuple[Seg, ...]
    final: bool


def compile_patterns(plan: TonePlan, cands: list[tuple[float, ...]], steps_per_s: float, tol: float,
                     continuous_s: float, finals) -> list[Pattern]:
    """Every tone of ``plan`` as a Pattern, in plan order.

    Each period is accepted within ``tol`` (a fraction) of nominal plus one step:
    the step, not the block, is the quantisation, because China's busy (0.35 s)
    and vacant/call-waiting (0.4 s) on periods are only 14% apart. A continuous
    tone must last ``continuous_s`` and outlast every cadenced on period of
    the same frequencies.

    Parameters
    ----------
    plan : TonePlan
    cands : list of frequency tuples; a segment's label is its index here
    steps_per_s : float, analysis windows per second
    tol : float, e.g. 0.10
    continuous_s : float, seconds
    finals : collection of tone names whose recognition decides the outcome
    """
    pats = []
    for name, spec in plan.tones.items():
        segs = []
        for freqs, secs in spec.segments():
            n = secs * steps_per_s
            segs.append(Seg(cands.index(freqs) if freqs else -1, n, n * (1 - tol) - 1, n * (1 + tol) + 1))
        pats.append(Pattern(name, tuple(segs), name in finals))
    for i, p in enumerate(pats):
        if math.isinf(p.segs[0].nominal):
            longest = max([s.hi for o in pats for s in o.segs
                           if s.label == p.segs[0].label and not math.isinf(s.nominal)] or [0.0])
            lo = max(continuous_s * steps_per_s, math.floor(longest) + 1)
            pats[i] = Pattern(p.name, (Seg(p.segs[0].label, math.inf, lo, math.inf),), p.final)
    return pats


def checkpoints(patterns: list[Pattern], n_labels: int) -> tuple[np.ndarray, int]:
    """Where a running segment's length can change a match: the first length inside and past each range.

    Returns
    -------
    marks : ndarray, shape (n_labels + 1, top + 1), int64; ``marks[label + 1, n]`` counts the
        checkpoints at or below length n, so a length that moves from a to b crossed one
        when ``marks[label + 1, a] != marks[label + 1, b]``
    top : int, lengths beyond it are clipped to it
    """
    top = int(max(s.lo if math.isinf(s.hi) else s.hi for p in patterns for s in p.segs)) + 2
    marks = np.zeros((n_labels + 1, top + 1), np.int64)
    for p in patterns:
        for s in p.segs:
            marks[s.label + 1, min(top, math.ceil(s.lo))] += 1
            if not math.isinf(s.hi):
                marks[s.label + 1, min(top, math.floor(s.hi) + 1)] += 1
    return np.cumsum(marks, axis=1), top


def next_checkpoint(marks: np.ndarray) -> np.ndarray:
    """For each label and length, the next length at which a running segment crosses a checkpoint.

    Parameters
    ----------
    marks : ndarray, shape (n_labels + 1, top + 1), int64, from ``checkpoints``

    Returns
    -------
    nxt : ndarray, shape (n_labels + 1, top + 1), int64; ``nxt[label + 1, n]`` is the least
        length c in n+1..top with ``marks[label + 1, c] != marks[label + 1, c - 1]``, or a length
        no segment reaches when there is none: a segment that grows one step at a time from
        length n crosses nothing before it reaches that length
    """
    top = marks.shape[1] - 1
    never = np.iinfo(np.int64).max // 2
    at = np.where(marks[:, 1:] != marks[:, :-1], np.arange(1, top + 1), never)  # (labels, top): c = 1..top
    nxt = np.full(marks.shape, never, np.int64)
    nxt[:, :-1] = np.minimum.accumulate(at[:, ::-1], axis=1)[:, ::-1]  # least change point at or after n + 1
    return nxt


class Segments:
    """Every channel's running segment and its last completed ones, fed a block of window labels at a time.

    A window's label is its best candidate where that is valid and holds ``high`` of
    the window's energy (``low`` for the running segment's own candidate, so a
    segment rides through a dip), else -1. The running segment absorbs up to ``gap``
    windows in a row of other labels; one more confirms a change, and the new
    segment begins where they began. ``feed`` calls ``match(ch, changed, step)`` at
    window ``step`` of a channel whose segment changed (``changed``) or whose running
    length crossed a checkpoint (see ``checkpoints``): the only windows at which a
    cadence match can change.

    Parameters
    ----------
    n_channels : int
    steps : int, analysis windows per block
    gap : int, windows of other labels a segment absorbs
    patterns : list of Pattern
    n_labels : int, number of candidates
    low, high : float, energy shares that keep and that start a label

    Attributes
    ----------
    cur, start, length, miss : ndarray, shape (n_channels,), int64; the running segment's
        confirmed label, first window, windows so far (unconfirmed misses included) and
        trailing misses
    hist : ndarray, shape (n_channels, depth, 3), int64; completed segments as (label,
        start, length), newest last, length 0 for none
    """

    MANY = 6  # more channels than this may change in a block: step them all at once, vectorised

    def __init__(self, n_channels: int, steps: int, gap: int, patterns: list[Pattern], n_labels: int,
                 low: float, high: float):
        self.steps, self.gap, self.low, self.high = steps, gap, low, high
        self.marks, self.top = checkpoints(patterns, n_labels)
        self._nxt = next_checkpoint(self.marks)
        C = n_channels
        self.cur = np.full(C, -1, np.int64)
        self.start = np.zeros(C, np.int64)
        self.length = np.zeros(C, np.int64)
        self.miss = np.zeros(C, np.int64)
        self.hist = np.zeros((C, max(len(p.segs) for p in patterns) + 2, 3), np.int64)
        self._next = np.zeros(C, np.int64)  # running length at the next checkpoint
        self._calm = True  # every miss is 0
        self._lists: list = [None] * C  # history() of each channel, until its next change
        for ch in range(C):
            self.reset(ch, 0)

    def reset(self, ch: int, step: int) -> None:
        """Start channel ``ch`` afresh at window ``step``: no label, no history."""
        self.cur[ch], self.start[ch], self.length[ch], self.miss[ch] = -1, step, 0, 0
        self.hist[ch] = 0
        self.hist[ch, :, 0] = -1
        self._next[ch], self._lists[ch] = self._nxt[0, 0], None

    def history(self, ch: int) -> list[tuple[int, int, int]]:
        """Channel ``ch``'s completed segments as (label, start, length), oldest first.

        The same list object until the channel's next segment change, so callers may cache on it.
        """
        h = self._lists[ch]
        if h is None:
            h = self._lists[ch] = [tuple(r) for r in self.hist[ch].tolist() if r[2] > 0]
        return h

    def feed(self, best, frac, ok, step: int, match) -> np.ndarray:
        """Grow every channel's segments by one block.

        Parameters
        ----------
        best, frac, ok : ndarray, shape (n_channels, steps), or None each when no window carries
            a candidate; each window's best candidate, its share of the window's energy, its validity
        step : int, the block's first window
        match : callable (ch, changed, step)

        Returns
        -------
        toned : ndarray, shape (n_channels,), bool; a window of the block carried a label
        """
        cur = self.cur[:, None]
        if best is None:
            moved = cur >= 0
        else:
            raw = np.where(ok & (frac >= np.where(best == cur, self.low, self.high)), best, -1)
            moved = raw != cur  # windows off their channel's running label
        toned = self.cur >= 0  # a steady channel's every window carries its running label
        if self._calm and not np.count_nonzero(moved):  # the usual block: no segment can change
            self._grow(step, match)
            return toned
        unsteady = np.logical_or.reduce(moved, axis=1)
        if not self._calm:
            unsteady |= self.miss > 0
        chans = unsteady.nonzero()[0].tolist()
        if len(chans) > self.MANY:
            return self._all(best, frac, ok, step, match)
        self._grow(step, match, ~unsteady)
        for ch in chans:
            toned[ch] = self._one(ch, best, frac, ok, step, match)
        self._calm = not np.count_nonzero(self.miss)
        return toned

    def _grow(self, step: int, match, steady: np.ndarray | None = None) -> None:
        """Grow the ``steady`` channels' running segments (all: None) by a block, matching at checkpoints."""
        S, length, top = self.steps, self.length, self.top
        np.add(length, S, out=length, where=True if steady is None else steady)
        due = length >= self._next
        if steady is not None:
            due &= steady
        for ch in due.nonzero()[0].tolist():  # rare: lengths near a cadence's bounds
            lab, base = int(self.cur[ch]) + 1, int(length[ch]) - S
            marks = self.marks[lab]
            for s in range(S):
                if marks[min(base + s + 1, top)] != marks[min(base + s, top)]:
                    length[ch] = base + s + 1
                    match(ch, False, step + s)
            length[ch] = base + S
            self._next[ch] = self._nxt[lab, min(base + S, top)]

    def _one(self, ch: int, best, frac, ok, step: int, match) -> bool:
        """Channel ``ch``'s windows one by one; return whether one carried a label."""
        cur, length, miss = int(self.cur[ch]), int(self.length[ch]), int(self.miss[ch])
        marks, top = self.marks, self.top
        rows = None if best is None else (best[ch].tolist(), frac[ch].tolist(), ok[ch].tolist())
        toned = False
        for s in range(self.steps):
            raw = -1
            if rows is not None:
                b = rows[0][s]
                if rows[2][s] and rows[1][s] >= (self.low if b == cur else self.high):
                    raw = b
            toned |= raw >= 0
            before = length - miss
            miss = 0 if raw == cur else miss + 1
            length += 1
            flip = miss > self.gap  # a change confirmed: it began ``miss`` windows ago
            eff = length - miss
            if flip or marks[cur + 1, min(eff, top)] != marks[cur + 1, min(before, top)]:
                self.length[ch], self.miss[ch] = length, miss
                if flip:
                    self._push(ch, raw)
                match(ch, flip, step + s)
                cur, length, miss = int(self.cur[ch]), int(self.length[ch]), int(self.miss[ch])
        self.length[ch], self.miss[ch] = length, miss
        self._next[ch] = self._nxt[cur + 1, min(length - miss, top)]
        return toned

    def _all(self, best, frac, ok, step: int, match) -> np.ndarray:
        """``_one`` for every channel at once, window by window."""
        toned = np.zeros(self.cur.shape, bool)
        cur, length, miss, marks, top = self.cur, self.length, self.miss, self.marks, self.top
        raw = np.full(cur.shape, -1, np.int64)
        for s in range(self.steps):
            if best is not None:
                thresh = np.where(best[:, s] == cur, self.low, self.high)
                raw = np.where(ok[:, s] & (frac[:, s] >= thresh), best[:, s], -1)
                toned |= raw >= 0
            before = length - miss
            miss[:] = np.where(raw == cur, 0, miss + 1)
            length += 1
            flip = miss > self.gap
            eff = length - miss
            lab = cur + 1
            cross = marks[lab, np.minimum(eff, top)] != marks[lab, np.minimum(before, top)]
            for ch in np.flatnonzero(flip | cross).tolist():
                if flip[ch]:
                    self._push(ch, int(raw[ch]))
                match(ch, bool(flip[ch]), step + s)
        self._next = self._nxt[cur + 1, np.minimum(length - miss, top)]
        self._calm = not np.count_nonzero(miss)
        return toned

    def _push(self, ch: int, label: int) -> None:
        """Close the running segment ``miss`` windows back and start one of ``label`` there."""
        m = int(self.miss[ch])
        h = self.hist[ch]
        h[:-1] = h[1:]
        h[-1] = (self.cur[ch], self.start[ch], self.length[ch] - m)
        self.cur[ch], self.start[ch], self.length[ch], self.miss[ch] = label, self.start[ch] + self.length[ch] - m, m, 0
        self._lists[ch] = None


def align(pat: Pattern, hist: list[tuple[int, int, int]], run_lab: int, run_start: int, run_len: int,
          min_span: float, floor: float) -> tuple[int, int, bool] | None:
    """Where the recent segments sit in ``pat``'s cycle.

    Parameters
    ----------
    pat : Pattern
    hist : completed segments as (label, start step, length), oldest first
    run_lab, run_start, run_len : the running segment's label, start step and length so far
    min_span : float, steps a whole match must cover
    floor : float, step before which a match may not start (the previous tone's end)

    Returns
    -------
    None if no alignment holds an on period; else (position of the running segment in
    ``pat.segs``, start step of the match, whether a whole cycle and ``min_span`` matched).
    A whole match is returned first; otherwise the part-way match that starts earliest.
    """
    return align_run(pat, align_history(pat, hist, run_lab, floor), hist, run_lab, run_start, run_len,
                     min_span, floor)


def align_history(pat: Pattern, hist: list[tuple[int, int, int]], run_lab: int,
                  floor: float) -> list[tuple[int, Seg, int]]:
    """The part of ``align`` that the running segment's length does not change, to reuse while it grows.

    Returns
    -------
    places : list of (position p in ``pat.segs`` with the running label, that segment, index in
        ``hist`` of the first completed segment matched before p: ``len(hist)`` when none is)
    """
    n = len(pat.segs)
    places = []
    for p, sp in enumerate(pat.segs):
        if run_lab != sp.label:
            continue
        k = 0
        while k < len(hist):
            seg = pat.segs[(p - 1 - k) % n]
            lab, _, length = hist[-1 - k]
            if lab != seg.label or not seg.lo <= length <= seg.hi:
                break
            k += 1
        first = len(hist) - k
        # a cadence starts with an on period, and not inside the tone before it
        while first < len(hist) and (hist[first][0] < 0 or hist[first][1] < floor):
            first += 1
        places.append((p, sp, first))
    return places


def align_run(pat: Pattern, places: list[tuple[int, Seg, int]], hist: list[tuple[int, int, int]], run_lab: int,
              run_start: int, run_len: int, min_span: float, floor: float) -> tuple[int, int, bool] | None:
    """``align`` from the ``places`` that ``align_history`` found for the same arguments."""
    n, nh = len(pat.segs), len(hist)
    found = None
    for p, sp, first in places:
        if run_len > sp.hi:
            continue
        grown = run_len >= sp.lo
        if first == nh and not (run_lab >= 0 and grown and run_start >= floor):
            continue
        start = hist[first][1] if first < nh else run_start
        if nh - first + grown >= n and run_start + run_len - start >= min_span:
            return p, start, True
        if found is None or start < found[1]:
            found = (p, start, False)
    return found
