"""The streaming, all-channels-at-once DTMF receiver (ITU-T Q.24)."""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.dtmf.generator import DTMF_FREQS, DTMF_KEYS
from dsp.levels import DBM0_RMS

__all__ = ["DtmfDetector"]


class DtmfDetector:
    """Streaming DTMF receiver (Q.24) for many channels at once.

    Every 10 ms the receiver looks at the last 20 ms of each channel through a
    Hann window: one matrix product gives the window's spectrum at the 8 DTMF
    frequencies and at the DFT bins of the DTMF band, 600-1750 Hz. The Hann window keeps dial tone (350-450 Hz) and
    other out-of-band signals from leaking into the DTMF frequencies, and
    measuring against in-band energy only leaves most of any white noise out.

    A window is a *hit* for a key when:

    * the strongest low and strongest high tones are each above ``MIN_TONE_DBM0``
      and beat the runner-up of their group by ``GROUP_MARGIN_DB``;
    * the twist is within ``NORMAL_TWIST_DB`` (high group weaker) and
      ``REVERSE_TWIST_DB`` (high group stronger);
    * the two tones carry ``MIN_BAND_FRACTION`` of the window's in-band energy
      (rejects speech, music and noise);
    * each tone is as strong as in the window 10 ms earlier, within ``STEADY_DB``
      (the tone fills both windows at least 56%: rejects the edges of bursts), and
      its phase advance since then puts its frequency within ``FREQ_TOL`` of
      nominal.

    A key goes down after ``HOLD`` consecutive hits of the same key (a 40 ms tone
    always gives 2, a 20 ms tone at most 1) if the channel has had ``GAP``
    consecutive windows without a hit since its last key (a 40 ms pause always
    gives 5, a 10 ms break in a tone at most 3).

    Parameters
    ----------
    n_channels : int
    block : int, samples per ``process`` call; a multiple of 10 ms (160 = 20 ms at 8 kHz)
    rate : int, samples per second, a multiple of 100
    """

    MIN_TONE_DBM0 = -36.0
    GROUP_MARGIN_DB = 6.0
    NORMAL_TWIST_DB = 8.5
    REVERSE_TWIST_DB = 4.5
    MIN_BAND_FRACTION = 0.8
    MIN_FULL_FRACTION = 0.6
    DIAL_HZ = (350.0, 445.0)
    HARMONIC_DB = 10.0
    RESIDUAL_DB = -5.5
    STEADY_DB = 4.0
    FREQ_TOL = 0.02
    BAND_HZ = (600.0, 1750.0)
    HOLD = 2
    GAP = 4

    def __init__(self, n_channels: int, block: int = 160, rate: int = 8000):
        n_channels, block, rate = int(n_channels), int(block), int(rate)
        if n_channels < 1:
            raise DspError(f"n_channels must be >= 1, got {n_channels}")
        if rate < 4000 or rate % 100:
            raise DspError(f"rate must be a multiple of 100 Hz and >= 4000, got {rate}")
        sub = rate // 100
        if block < sub or block % sub:
            raise DspError(f"block must be a positive multiple of {sub} samples (10 ms), got {block}")
        self.n_channels, self.block, self.rate, self._sub = n_channels, block, rate, sub
        S = self._n_sub = block // sub
        win = 2 * sub
        hann = np.hanning(win + 2)[1:-1]  # no zero end points
        k = np.arange(win)[:, None]
        freqs = np.array(DTMF_FREQS["low"] + DTMF_FREQS["high"])
        w = 2.0 * np.pi * freqs / rate
        # columns 0-15: the DTMF frequencies, interleaved (cos, -sin) so that the product viewed
        # as complex is sum h x e^{-jwk}; then (cos, sin) pairs at the window's DFT bins in BAND_HZ
        bins = np.arange(int(np.ceil(self.BAND_HZ[0] * win / rate)), int(self.BAND_HZ[1] * win / rate) + 1)
        wb = 2.0 * np.pi * bins / win
        wd = 2.0 * np.pi * np.array(self.DIAL_HZ) / rate
        nd = 2 * len(self.DIAL_HZ)
        basis = np.empty((win, 24 + nd + 2 * bins.size))
        basis[:, 0:16:2] = np.cos(w * k)
        basis[:, 1:16:2] = -np.sin(w * k)
        # second harmonics of the high group (the low group's fall next to high-group tones)
        basis[:, 16:24:2] = np.cos(2 * w[4:] * k)
        basis[:, 17:24:2] = -np.sin(2 * w[4:] * k)
        # dial tone: a weighted least-squares fit of its sines (weights h^2, like the windowed energy);
        # the energy it explains is b' G^-1 b with b the h^2-weighted correlations
        dial = np.empty((win, nd))
        dial[:, 0::2] = np.cos(wd * k)
        dial[:, 1::2] = np.sin(wd * k)
        basis[:, 24:24 + nd] = hann[:, None] * dial  # times h again below: weights h^2
        basis[:, 24 + nd::2] = np.cos(wb * k)
        basis[:, 25 + nd::2] = np.sin(wb * k)
        basis *= hann[:, None]
        self._tone_basis = np.ascontiguousarray(basis[:, :16])  # every window
        self._check_basis = np.ascontiguousarray(basis[:, 16:])  # only windows that pass the first tests
        self._dial_ginv = np.linalg.inv(dial.T @ (hann[:, None] ** 2 * dial))
        self._nd = nd
        self._hann2 = hann ** 2
        # a sine's |coef|^2 is (A sum(h) / 2)^2 and its windowed energy sum(h^2 x^2) is A^2 sum(h^2) / 2
        self._full_scale = 2.0 * (hann ** 2).sum() / hann.sum() ** 2
        # a sine's in-band DFT bins sum to (A^2 / 4) win sum(h^2) (Parseval): this scale makes its fraction 1
        self._band_scale = (hann.sum() ** 2) / (win * (hann ** 2).sum())
        self._rot = np.exp(-1j * w * sub)  # nominal phase advance over one hop, removed
        self._cos_tol = np.cos(2.0 * np.pi * self.FREQ_TOL * freqs * sub / rate)
        amp = DBM0_RMS * np.sqrt(2.0) * 10.0 ** (self.MIN_TONE_DBM0 / 20.0)
        self._min_energy = (amp * hann.sum() / 2.0) ** 2
        self._harmonic = 10.0 ** (self.HARMONIC_DB / 10.0)
        self._residual = 10.0 ** (-self.RESIDUAL_DB / 10.0)
        # each tone's Hann main lobe (+-2 bins) among the band's bins: where its energy lands whatever
        # its offset, so the residual outside both lobes is what else is in the band
        self._lobes = (np.abs(bins[None, :] * rate / win - freqs[:, None]) <= 2.0 * rate / win).astype(float)
        self._steady = 10.0 ** (self.STEADY_DB / 10.0)
        C = n_channels
        self._buf = np.zeros((C, (S + 1) * sub))  # the previous call's last sub-block, then this call's
        # window s of channel c is buf[c, s * sub : s * sub + win]; copied into _frames, since a
        # contiguous matrix product is twice as fast as one over the overlapping view
        self._windows = np.lib.stride_tricks.as_strided(self._buf, (C, S, win), (self._buf.strides[0], sub * 8, 8))
        self._frames = np.zeros((C, S, win))
        self._frames2d = self._frames.reshape(C * S, win)
        self._tone_prod = np.zeros((C * S, 16))
        self._coef = np.zeros((C, S + 1, 16))  # DTMF coefficients per window; slot 0: previous call's last
        self._sq = np.zeros((C, S + 1, 16))
        self._e_all = np.zeros((C, S + 1, 8))
        self._eight = np.arange(8)
        self._logs = np.zeros((C, S + 1, 8))  # log10 energies, each group sorted ascending
        # window s sees 16 values: the window before (sorted low group, sorted high group), then itself
        self._pairs = np.lib.stride_tricks.as_strided(self._logs, (C, S, 16), (self._logs.strides[0], 8 * 8, 8))
        self._slack_m, self._slack_b = self._slack_matrix()
        self._key = np.full((C, S), -1, np.int64)
        self._prev_key = np.full(C, -1, np.int64)  # hit key of the last window, -1 none
        self._run = np.zeros(C, np.int64)  # consecutive hits of _prev_key
        self._miss = np.full(C, self.GAP, np.int64)  # consecutive windows without a hit
        self._armed = np.ones(C, bool)  # may report the next key
        self._idle = True  # every channel armed with no run: a call without hits changes nothing

    def _slack_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(M, b) so that ``v @ M + b >= 0`` holds for every first test of a window.

        ``v`` is 16 log10 energies: the window before (low group sorted ascending, then high),
        then the window itself; index 11 is the strongest low tone now, 10 the runner-up,
        15 and 14 the same for the high group, 3 and 7 the strongest tones before.
        """
        rows = []  # (coefficients by index, constant)
        m, st = self.GROUP_MARGIN_DB / 10.0, self.STEADY_DB / 10.0
        rows.append(({11: 1, 10: -1}, -m))
        rows.append(({15: 1, 14: -1}, -m))
        rows.append(({11: -1, 3: 1}, st))
        rows.append(({11: 1, 3: -1}, st))
        rows.append(({15: -1, 7: 1}, st))
        rows.append(({15: 1, 7: -1}, st))
        lmin = np.log10(self._min_energy)
        rows.append(({11: 1}, -lmin))
        rows.append(({15: 1}, -lmin))
        rows.append(({11: -1, 15: 1}, self.NORMAL_TWIST_DB / 10.0))  # low above high by at most this
        rows.append(({15: -1, 11: 1}, self.REVERSE_TWIST_DB / 10.0))
        M = np.zeros((16, len(rows)))
        b = np.zeros(len(rows))
        for j, (coefs, const) in enumerate(rows):
            for i, v in coefs.items():
                M[i, j] = v
            b[j] = const
        return M, b

    @property
    def window_keys(self) -> np.ndarray:
        """Key index hit by each 10 ms window of the last ``process`` call, -1 for none.

        Window ``s`` ends at the end of the call's ``s``-th 10 ms sub-block and spans 20 ms.
        Read-only view, shape (n_channels, block // (rate // 100)), int64.
        """
        v = self._key.view()
        v.flags.writeable = False
        return v

    def reset(self, ch: int) -> None:
        """Forget channel ``ch``'s history (a call ended)."""
        if not 0 <= int(ch) < self.n_channels:
            raise DspError(f"channel must be in 0..{self.n_channels - 1}, got {ch!r}")
        ch = int(ch)
        self._buf[ch] = 0.0
        self._coef[ch] = 0.0
        self._prev_key[ch] = -1
        self._run[ch] = 0
        self._miss[ch] = self.GAP
        self._armed[ch] = True

    def process(self, x: np.ndarray) -> list[tuple[int, str]]:
        """Feed one block of every channel; return the keys that went down, in channel order.

        Parameters
        ----------
        x : ndarray, shape (n_channels, block), int16 or float, linear PCM on the int16 scale

        Returns
        -------
        events : list of (channel, key) with key one of ``DTMF_KEYS``
        """
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise DspError(f"DtmfDetector.process: expected an int16 or float ndarray, got {got}")
        if x.shape != (self.n_channels, self.block):
            raise DspError(f"DtmfDetector.process: expected shape {(self.n_channels, self.block)}, got {x.shape}")
        C, S, N = self.n_channels, self._n_sub, self._sub
        buf = self._buf
        buf[:, :N] = buf[:, S * N:]
        np.copyto(buf[:, N:], x, casting="unsafe")
        coef = self._coef
        coef[:, 0] = coef[:, S]
        np.copyto(self._frames, self._windows)
        np.matmul(self._frames2d, self._tone_basis, out=self._tone_prod)
        coef[:, 1:] = self._tone_prod.reshape(C, S, 16)
        sq = np.multiply(coef, coef, out=self._sq)
        e_all = np.add(sq[:, :, 0::2], sq[:, :, 1::2], out=self._e_all)  # (C, S + 1, 8), slot 0 the window before
        # first tests, on every window at once: the group margin, steadiness since the window
        # before, level and twist are all linear in the sorted log energies of the two windows, so
        # one small matrix product gives every test's slack (>= 0 passes)
        logs = self._logs
        np.maximum(e_all, 1e-30, out=logs)
        np.log10(logs, out=logs)
        logs.reshape(C, S + 1, 2, 4).sort(axis=3)
        slack = np.matmul(self._pairs, self._slack_m)
        slack += self._slack_b
        cand = (slack.min(axis=2) >= 0.0).reshape(C * S).nonzero()[0]
        key = self._key
        key.fill(-1)
        if not cand.size:
            return self._count(None)
        energy = e_all.reshape(-1).take(((cand + cand // S) * 8 + 8)[:, None] + self._eight).reshape(-1, 2, 4)
        best = energy.max(axis=2)
        self._check(cand, np.argmax(energy, axis=2), best[:, 0], best[:, 1])
        return self._count(key)

    def _check(self, cand: np.ndarray, arg: np.ndarray, el: np.ndarray, eh: np.ndarray) -> None:
        """The remaining tests for the windows ``cand`` (flat indices c * S + s) that passed the first ones.

        Cheap ones first (each chosen tone steady and on frequency since the window before), then the
        spectrum around them, only for the windows still left.
        """
        S = self._n_sub
        c = cand // S
        tone = arg + (0, 4)  # (n, 2): indices of the low and the high tone
        # flat indices into the (C, S + 1, 8) arrays: take() is much cheaper than 3-D fancy indexing
        at_prev = ((cand + c) * 8)[:, None] + tone  # window s of channel c is slot s + 1
        at_now = at_prev + 8
        zf = self._coef.view(np.complex128).reshape(-1)
        ef = self._e_all.reshape(-1)
        z_prev = zf.take(at_prev)
        adv = zf.take(at_now) * z_prev.conj()
        adv *= self._rot.take(tone)
        e_prev, e_now = ef.take(at_prev), ef.take(at_now)
        ok = adv.real >= self._cos_tol.take(tone) * np.abs(adv)
        ok &= e_prev * self._steady >= e_now
        ok &= e_now * self._steady >= e_prev
        ok = ok[:, 0] & ok[:, 1]
        if not ok.any():
            return
        s = cand - c * S
        cand, c, s, arg, tone, el, eh = cand[ok], c[ok], s[ok], arg[ok], tone[ok], el[ok], eh[ok]
        fr = self._frames[c, s]  # (n, win) copies of the few windows left
        extra = fr @ self._check_basis
        harm = extra[:, :8].reshape(-1, 4, 2)
        e_harm = np.einsum("rkj,rkj->rk", harm, harm)[np.arange(cand.size), arg[:, 1]]
        nd = self._nd
        dialc = extra[:, 8:8 + nd]
        bandc = extra[:, 8 + nd:]
        pw = bandc[:, 0::2] ** 2 + bandc[:, 1::2] ** 2  # (n, bins) in-band DFT power
        lobe_l = np.einsum("rk,rk->r", pw, self._lobes[tone[:, 0]])
        lobe_h = np.einsum("rk,rk->r", pw, self._lobes[tone[:, 1]])
        total = pw.sum(axis=1)
        full = (fr * fr) @ self._hann2 - np.einsum("rk,kl,rl->r", dialc, self._dial_ginv, dialc)
        tones = el + eh
        hit = (
            (tones >= self.MIN_BAND_FRACTION * self._band_scale * total)
            & ((total - lobe_l - lobe_h) * self._residual <= np.minimum(lobe_l, lobe_h))
            & (tones * self._full_scale >= self.MIN_FULL_FRACTION * full)
            & (e_harm * self._harmonic <= eh)
        )
        self._key.reshape(-1)[cand[hit]] = 4 * arg[hit, 0] + arg[hit, 1]

    def _count(self, key: np.ndarray | None) -> list[tuple[int, str]]:
        """Advance every channel's hit run and gap count over this call's windows (``key`` None: no hits);
        return the keys that went down."""
        S = self._n_sub
        prev_key, run, miss, armed = self._prev_key, self._run, self._miss, self._armed
        if key is None or not (key >= 0).any():  # the usual case: no window anywhere looked like a key
            if self._idle:  # and nothing pending from before: all armed, no runs
                return []
            run.fill(0)
            miss += S
            armed |= miss >= self.GAP
            prev_key.fill(-1)
            self._idle = bool(armed.all())
            return []
        self._idle = False
        events = []
        for s in range(S):
            k = key[:, s]
            run[:] = np.where(k >= 0, np.where(k == prev_key, run + 1, 1), 0)
            miss[:] = np.where(k >= 0, 0, miss + 1)
            armed |= miss >= self.GAP
            fire = armed & (run >= self.HOLD)
            if fire.any():
                chans = np.flatnonzero(fire)
                events.extend((int(c), DTMF_KEYS[int(k[c])]) for c in chans)
                armed[chans] = False
            prev_key[:] = k
        if S > 1 and len(events) > 1:
            events.sort(key=lambda e: e[0])  # stable: one channel's keys stay in time order
        return events
