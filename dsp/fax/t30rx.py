"""The receiving side of a T.30 session (a mixin of :class:`dsp.fax.t30.FaxSession`).

Phase B: DCS sets the page modem and resolution, TCF is judged (CFR or FTT);
a calling receiver polls with CIG and DTC when the answerer's DIS offers a
document. Phases C and D: each page burst is decoded as it ends, and its
post-page command answered MCF (kept) or RTN (dropped, to be sent again); a
repeated command, when our answer was lost, gets the same answer again.
"""

from __future__ import annotations

import numpy as np

from dsp.fax import t30frames as tf
from dsp.fax.t30pages import decode_received

T2_S, T4_S = 6.0, 3.0
TCF_GOOD_S = 1.0  # clean zeros in the 1.5 s TCF for a CFR
TCF_WAIT_S = 3.5  # the longest training (V.27ter 2400, 0.94 s) and TCF end well before; the sender's T4 later
TRIES = 3
MAX_BAD_FRACTION = 0.05


class Receiving:
    """Methods of the receiving side; the state lives in the session."""

    def _receiver_command(self, name: str, fif: bytes) -> None:
        st = self._state
        if name == "DIS" and self.calling and st == "wait_dis":
            self._tx.clear()
            self._listen_while_sending = False
            self._x = 1
            self._remote = tf.decode_dis(fif)
            if not self._remote.has_document:
                return self._fail("the other side has no document to send (poll refused)", send_dcn=True)
            self._state = "wait_dcs"
            self._tries = 0
            return self._send_dtc()
        if name == "DCS":
            self._dcs = tf.decode_dcs(fif)
            if self._dcs.modem not in self.ours.modems:
                return self._fail(f"DCS asks for {self._dcs.modem}, which is not enabled", send_dcn=True)
            self._state = "tcf"
            self._rx.expect_page(self._dcs.bit_rate)
            self._note(f"expect TCF {self._dcs.bit_rate} bit/s")
            return self._after(TCF_WAIT_S, self._no_tcf)
        if name in ("MPS", "EOP", "EOM"):
            if st == "page":  # the page modem missed the end of the burst: the command marks it
                self._end_page()
                st = self._state
            if st == "wait_post":
                return self._judge_page(name)
            if st == "wait_page" and self._rx.page_carrier_seen:  # a page came but never trained
                return self._reply("RTN", name)
            if st in ("wait_page", "wait_dcn") and self._last_reply:  # our reply was lost: say it again
                return self._reply(self._last_reply, name)

    def _send_dtc(self) -> None:
        self._tries += 1
        if self._tries > TRIES:
            return self._fail("no DCS after DTC, 3 tries", send_dcn=True)
        caps = tf.Capabilities(self.ours.modems, True, self.ours.two_d, 0, True, False)
        self._send([("CIG", tf.encode_ident(self.ident)), ("DTC", tf.encode_dis(caps))],
                   then=lambda: self._after(T4_S, self._send_dtc))

    def _no_tcf(self) -> None:
        """TCF did not end in time: judge what came (a burst whose end we missed) or say FTT."""
        self._tcf_verdict()

    def _no_command(self) -> None:
        self._fail("no command from the sender within T2 (6 s)")

    def _page_event(self, ev: str) -> None:
        st = self._state
        if ev == "trained":
            self._note(f"rx {'TCF' if st == 'tcf' else 'page'} training")
            if st == "wait_page":
                self._state = "page"
                self._timer = None
            return
        if ev != "carrier_down":
            return
        if st == "tcf":
            self._tcf_verdict()
        elif st == "page":
            self._end_page()

    def _tcf_verdict(self) -> None:
        """CFR when at least TCF_GOOD_S of clean zeros came at a rate we take, FTT otherwise."""
        bits = self._rx.page_bits()
        self._rx.stop_page()
        good = (_longest_zero_run(bits) >= TCF_GOOD_S * self._dcs.bit_rate and
                self._dcs.bit_rate in self.rates)
        self._note(f"rx TCF {bits.size} bits, {'good' if good else 'bad'}")
        if good:
            self._state = "wait_page"
            self._rx.expect_page(self._dcs.bit_rate)
            return self._send([("CFR", b"")], then=lambda: self._after(T2_S, self._no_command))
        self._state = "wait_dcs"
        self._send([("FTT", b"")], then=lambda: self._after(T2_S, self._no_command))

    def _end_page(self) -> None:
        bits = self._rx.page_bits()
        self._rx.stop_page()
        self._pending = decode_received(bits, self._dcs)
        page, bad = self._pending
        self._note(f"rx page: {bits.size} bits, {page.pixels.shape[0]} rows, {len(bad)} bad")
        self._state = "wait_post"
        self._after(T2_S, self._no_command)

    def _judge_page(self, name: str) -> None:
        page, bad = self._pending
        rows = page.pixels.shape[0]
        good = rows > 0 and len(bad) <= MAX_BAD_FRACTION * rows
        if good:
            self._received.append(page)
            self._bad_rows += len(bad)
        self._reply("MCF" if good else "RTN", name)

    def _reply(self, reply: str, command: str) -> None:
        self._last_reply = reply
        if command == "EOP" and reply == "MCF":
            self._state = "wait_dcn"
            return self._send([("MCF", b"")], then=lambda: self._after(T2_S, lambda: self._finish(True)))
        if command == "EOM" or reply == "RTN":
            self._state = "wait_dcs"
            return self._send([(reply, b"")], then=lambda: self._after(T2_S, self._no_command))
        self._state = "wait_page"
        self._rx.expect_page(self._dcs.bit_rate)
        self._send([(reply, b"")], then=lambda: self._after(T2_S, self._no_command))


def _longest_zero_run(bits: np.ndarray) -> int:
    """Length of the longest run of zeros in ``bits``."""
    if not bits.size:
        return 0
    ones = np.flatnonzero(np.concatenate(([1], bits, [1])))
    return int(np.max(np.diff(ones)) - 1)
