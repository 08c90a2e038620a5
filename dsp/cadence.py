"""Cadences as data the progress detector can match: a plan's tones as segments counted in analysis windows.

A *segment* is a run of analysis windows carrying one candidate (a set of
frequencies; label >= 0) or none (label -1, an off period). A tone's cadence is
one cycle of segments, each with its accepted length range; ``align`` finds
where the most recent segments of a channel sit in that cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.toneplans import TonePlan

__all__ = ["Seg", "Pattern", "compile_patterns", "checkpoints", "align"]


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
    n = len(pat.segs)
    found = None
    for p, sp in enumerate(pat.segs):
        if run_lab != sp.label or run_len > sp.hi:
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
        grown = run_len >= sp.lo
        if first == len(hist) and not (run_lab >= 0 and grown and run_start >= floor):
            continue
        start = hist[first][1] if first < len(hist) else run_start
        if len(hist) - first + grown >= n and run_start + run_len - start >= min_span:
            return p, start, True
        if found is None or start < found[1]:
            found = (p, start, False)
    return found
