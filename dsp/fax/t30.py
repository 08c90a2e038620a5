"""A T.30 group 3 fax session over audio (no ECM): one terminal, calling or answering, sending or receiving.

Sans-I/O and clock-free: the owner calls :meth:`FaxSession.transmit` for
each 20 ms block to put on the line and :meth:`FaxSession.receive` with the
block heard from it; time is counted in blocks. The session follows T.30's
phases:

- A (call set-up): the caller sends CNG until it hears a DIS (T1, 35 s);
  the answerer waits 0.2 s, sends CED for 3 s, then CSI and DIS, repeating
  them every T4 (3 s) until a command comes or T1 runs out.
- B (pre-message): a sender picks the fastest modem both ends have, sends
  TSI and DCS, then TCF (1.5 s of zeros on the page modem); the receiver
  answers CFR when it heard at least a second of clean zeros, FTT if not,
  and the sender then falls back one rate (9600, 7200, 4800, 2400). A
  calling receiver that hears a DIS offering a document (polling) answers
  CIG and DTC and the answerer becomes the sender.
- C (message): a page is a page-modem burst of T.4 data ending in RTC; the
  sender follows it with MPS (more pages) or EOP (the last).
- D (post-message): the receiver decodes the page and answers MCF when at
  most ``MAX_BAD_FRACTION`` of its rows were damaged, otherwise RTN; after
  RTN the sender retrains (one rate lower when it can) and sends the page
  again, up to ``PAGE_TRIES`` times.
- E: the sender ends with DCN; a command unanswered after three tries,
  a DCN out of turn, or a silent line ends the session with a named cause.

The outcome is a :class:`FaxResult`; ``log`` keeps every signal sent and heard.
"""

from __future__ import annotations

import numpy as np

from appliance.errors import DspError
from dsp.fax import t30frames as tf
from dsp.fax.t30line import Listener, Sender, page_modem
from dsp.fax.t30pages import FaxResult, page_bits, prepare_pages
from dsp.fax.t30rx import MAX_BAD_FRACTION, T2_S, T4_S, TCF_WAIT_S, TRIES, Receiving
from dsp.fax.tones import ced, cng

__all__ = ["FaxSession", "FaxResult", "MAX_BAD_FRACTION", "T2_S", "T4_S", "TCF_WAIT_S"]

T1_S = 35.0
GAP_S = 0.075  # T.30 §5.3.2: 75 ms between signals in opposite directions
TCF_S = 1.5
PAGE_TRIES = 3


class FaxSession(Receiving):
    """One fax call.

    Parameters
    ----------
    calling : bool, we placed the call (CNG, wait for DIS) or answered it (CED, DIS)
    pages : list of FaxPage, the document to send; None to receive
    ident : str, our CSI/TSI/CIG identity (up to 20 digits, + or spaces)
    modems : sequence of "v27ter", "v29"
    compression : "mh" (1-D only) or "mr" (2-D when the other side has it)
    rates : sequence of int, the bit rates we accept (default: all those of ``modems``); as a
        receiver we answer FTT to a TCF at any other rate, so the sender falls back
    block : int, samples per block at 8 kHz
    max_seconds : float, give up after this much line time
    """

    def __init__(self, *, calling: bool, pages=None, ident: str = "", modems=("v27ter", "v29"),
                 compression: str = "mr", rates=None, block: int = 160, max_seconds: float = 600.0):
        if compression not in ("mh", "mr"):
            raise DspError(f"compression must be 'mh' or 'mr', got {compression!r}")
        mods = frozenset(modems)
        if not mods or not mods <= {"v27ter", "v29"}:
            raise DspError(f"modems must be some of v27ter, v29; got {sorted(modems)}")
        self.calling, self.block, self.max_s = bool(calling), int(block), float(max_seconds)
        self.pages = prepare_pages(pages) if pages is not None else None
        self.ident = ident
        tf.encode_ident(ident)  # checks it
        self.ours = tf.Capabilities(mods, fine=True, two_d=compression == "mr", min_scan_ms=0,
                                    can_receive=pages is None, has_document=pages is not None)
        self.rates = tuple(self.ours.rates()) if rates is None else tuple(int(r) for r in rates)
        if not self.rates or not set(self.rates) <= set(self.ours.rates()):
            raise DspError(f"rates must be some of {self.ours.rates()} for modems {sorted(mods)}, got {rates!r}")
        self.log: list[str] = []
        self.result: FaxResult | None = None
        self._t = 0.0
        self._tx, self._rx = Sender(block), Listener(block)
        self._when_idle = None
        self._listen_while_sending = False
        self._timer: tuple[float, object] | None = None
        self._burst: list[tuple[str, bytes]] = []
        self._x = 0  # X bit: 1 once we received a DIS
        self._tries = 0
        self._state = ""
        self._dcs: tf.Dcs | None = None
        self._remote: tf.Capabilities | None = None
        self._remote_ident = ""
        self._last: list[tuple[str, bytes]] = []
        self._page = 0  # index of the page being sent, or pages received so far
        self._page_tries = 0
        self._received = []
        self._bad_rows = 0
        self._last_reply = ""
        self._pending = None  # (page, bad rows) heard, awaiting its post-page command
        self._start()

    # ---- the owner's side -------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def progress(self) -> tuple[int, int | None]:
        """``(page, of)``: the page in flight (1-based) and the total when sending (None when receiving)."""
        if self.pages is None:
            return len(self._received) + (0 if self.done else 1), None
        return min(self._page + 1, len(self.pages)), len(self.pages)

    def transmit(self) -> np.ndarray:
        """The next block to send, shape (block,), int16."""
        x = self._tx.take()
        if not self._tx.busy and self._when_idle is not None:
            fn, self._when_idle = self._when_idle, None
            self._rx.reset_v21()
            fn()
        return x

    def receive(self, x: np.ndarray) -> None:
        """Take the block heard on the line, shape (block,), int16."""
        x = np.asarray(x)
        if x.shape != (self.block,):
            raise DspError(f"FaxSession.receive: expected shape ({self.block},), got {x.shape}")
        self._t += self.block / 8000.0
        if self.done:
            return
        if self._t > self.max_s:
            return self._fail(f"line time exceeded {self.max_s:g} s")
        if self._tx.busy and not self._listen_while_sending:
            return  # half duplex: our own signal is on the line
        for frame in self._rx.process(x):
            self._frame(frame.data)
            if self.done:
                return
        for ev in self._rx.page_events:
            self._page_event(ev)
        if self._timer is not None and self._t >= self._timer[0]:
            fn, self._timer = self._timer[1], None
            fn()

    # ---- plumbing ---------------------------------------------------------------------------

    def _note(self, text: str) -> None:
        self.log.append(f"{self._t:7.2f} {text}")

    def _after(self, seconds: float, fn) -> None:
        self._timer = (self._t + seconds, fn)

    def _send(self, frames: list[tuple[str, bytes]], then=None, gap: bool = True) -> None:
        """Send frames (the last one final) over V.21; ``then`` runs when they are out."""
        self._timer = None
        self._last = frames
        if gap:
            self._tx.silence(GAP_S)
        built = [tf.make_frame(n, fif, final=i == len(frames) - 1, x=self._x) for i, (n, fif) in enumerate(frames)]
        self._tx.frames(built)
        self._note("tx " + " ".join(n for n, _ in frames))
        self._when_idle = then

    def _fail(self, cause: str, send_dcn: bool = False) -> None:
        self._note(f"failed: {cause}")
        if send_dcn:
            self._send([("DCN", b"")])
        self._finish(False, cause)

    def _finish(self, ok: bool, cause: str = "") -> None:
        self._timer = None
        self._rx.stop_page()
        dcs = self._dcs
        done = self._page if self.pages is not None else len(self._received)
        self.result = FaxResult(ok, cause, done, dcs.bit_rate if dcs else None,
                                ("fine" if dcs.fine else "standard") if dcs else None,
                                ("MR" if dcs.two_d else "MH") if dcs else None,
                                self._remote_ident, list(self._received), self._bad_rows, round(self._t, 2))

    # ---- phase A ----------------------------------------------------------------------------

    def _start(self) -> None:
        if self.calling:
            self._state = "wait_dis"
            self._listen_while_sending = True
            for _ in range(int(T1_S // 3.5) + 1):
                self._tx.samples(cng(3.5))
            self._after(T1_S, lambda: self._fail("no fax answer: no DIS within T1 (35 s)"))
        else:
            self._tx.silence(0.2)
            self._tx.samples(ced(3.0))
            self._send_dis()

    def _send_dis(self) -> None:
        self._state = "wait_dcs" if self.pages is None else "wait_dtc"
        self._tries += 1
        if self._t > T1_S:
            return self._fail("no command from the caller within T1 (35 s)", send_dcn=True)
        self._send([("CSI", tf.encode_ident(self.ident)), ("DIS", tf.encode_dis(self.ours))],
                   then=lambda: self._after(T4_S, self._send_dis))

    # ---- frames heard -----------------------------------------------------------------------

    def _frame(self, data: bytes) -> None:
        try:
            name, final, fif = tf.parse_frame(data)
        except DspError:
            return
        self._burst.append((name, fif))
        if not final:
            return
        frames, self._burst = self._burst, []
        self._note("rx " + " ".join(n for n, _ in frames))
        for n, fif in frames:
            if n in ("CSI", "TSI", "CIG"):
                self._remote_ident = tf.decode_ident(fif)
        self._command(name, fif)

    def _command(self, name: str, fif: bytes) -> None:
        st = self._state
        if name == "DCN":
            if st == "wait_dcn":
                return self._finish(True)
            return self._fail(f"the other side disconnected (DCN) in state {st}")
        if name == "CRP" and self._last:
            return self._send(self._last, then=self._when_sent_again())
        if self.pages is not None:
            return self._sender_command(name, fif)
        return self._receiver_command(name, fif)

    def _when_sent_again(self):
        return {"wait_cfr": lambda: self._after(T4_S, self._no_cfr),
                "wait_mcf": lambda: self._after(T4_S, self._no_mcf)}.get(self._state)

    # ---- the sending side -------------------------------------------------------------------

    def _sender_command(self, name: str, fif: bytes) -> None:
        st = self._state
        if (name == "DIS" and self.calling) or (name == "DTC" and not self.calling):
            if st not in ("wait_dis", "wait_dtc", "wait_cfr"):
                return
            self._tx.clear()  # stop CNG
            self._listen_while_sending = False
            self._x = 1 if name == "DIS" else 0
            self._remote = tf.decode_dis(fif)
            if not self._remote.can_receive:
                return self._fail("the other side cannot receive faxes", send_dcn=True)
            self._tries = 0
            return self._train(None)
        if name == "CFR" and st == "wait_cfr":
            self._tries = 0
            return self._send_page()
        if name == "FTT" and st == "wait_cfr":
            self._tries = 0
            return self._train(self._dcs.bit_rate)
        if name in ("MCF", "RTP", "RTN") and st == "wait_mcf":
            return self._post_page_reply(name)

    def _train(self, below: int | None) -> None:
        """Phase B for the sender: pick a rate (under ``below`` after a failure), TSI, DCS, TCF."""
        first = self.pages[0]
        dcs = tf.choose_dcs(self._remote, self.ours, first.y_resolution > 150, self.ours.two_d, below)
        while dcs is not None and dcs.bit_rate not in self.rates:
            dcs = tf.choose_dcs(self._remote, self.ours, first.y_resolution > 150, self.ours.two_d, dcs.bit_rate)
        if dcs is None:
            return self._fail(f"training failed down to {below} bit/s (FTT)", send_dcn=True)
        self._dcs = dcs
        self._state = "wait_cfr"
        self._tries += 1
        self._send([("TSI", tf.encode_ident(self.ident)), ("DCS", tf.encode_dcs(dcs))], then=None)
        self._note(f"tx TCF {dcs.bit_rate} bit/s ({dcs.modem})")
        self._tx.silence(GAP_S)
        self._tx.burst(page_modem(dcs.bit_rate, "tx", self.block), np.zeros(int(TCF_S * dcs.bit_rate), np.uint8))
        self._when_idle = lambda: self._after(T4_S, self._no_cfr)

    def _no_cfr(self) -> None:
        if self._tries >= TRIES:
            return self._fail("no answer to DCS after 3 tries", send_dcn=True)
        self._train(None if self._dcs is None else self._dcs.bit_rate + 1)

    def _send_page(self) -> None:
        dcs = self._dcs
        self._state = "sending_page"
        bits = page_bits(self.pages[self._page], dcs)
        self._note(f"tx page {self._page + 1} of {len(self.pages)}: {bits.size} bits at {dcs.bit_rate}")
        self._tx.silence(GAP_S)
        self._tx.burst(page_modem(dcs.bit_rate, "tx", self.block), bits)
        self._when_idle = self._post_page

    def _post_page(self) -> None:
        self._state = "wait_mcf"
        self._tries += 1
        last = self._page == len(self.pages) - 1
        self._send([("EOP" if last else "MPS", b"")], then=lambda: self._after(T4_S, self._no_mcf))

    def _no_mcf(self) -> None:
        if self._tries >= TRIES:
            return self._fail(f"no answer after page {self._page + 1} after 3 tries", send_dcn=True)
        self._post_page()

    def _post_page_reply(self, name: str) -> None:
        self._tries = 0
        last = self._page == len(self.pages) - 1
        if name == "RTN":
            self._page_tries += 1
            if self._page_tries >= PAGE_TRIES:
                return self._fail(f"page {self._page + 1} rejected (RTN) {PAGE_TRIES} times", send_dcn=True)
            lower = [r for r in self._remote.rates() if r < self._dcs.bit_rate]
            return self._train(self._dcs.bit_rate if lower else self._dcs.bit_rate + 1)
        self._page += 1
        self._page_tries = 0
        if last:
            self._state = "wait_dcn"
            return self._send([("DCN", b"")], then=lambda: self._finish(True))
        if name == "RTP":
            return self._train(self._dcs.bit_rate + 1)
        self._send_page()
