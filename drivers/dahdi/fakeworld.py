"""The world on the far side of the fake DAHDI kernel's channels: what a test makes happen, and the clock.

A mixin of ``drivers.dahdi.fakekernel.FakeKernel``: phones going off and on
hook, lines ringing and reversing polarity, CAS bits changing, HDLC frames
arriving on a D-channel, spans raising alarms or being unplugged, audio
arriving; ``tick`` moves the hardware on by 20 ms (audio both ways, ring
cadence, flash/wink/dial timers, D-channel frames out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from .fakekernel import FakeChannel

SILENCE = 0xD5  # A-law code of 0
HDLC_SIGS = {"hardhdlc", "hdlcfcs"}  # D-channels: whole frames, each read and written with its 2 FCS bytes


def fcs16(frame: bytes) -> int:
    """The HDLC frame check sequence (ISO 3309 / X.25 CRC-16), sent low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF



class FakeWorld:
    """What the test drives; the state lives in the kernel's ``channels`` and ``spans``."""

    # --- the world: what the test makes happen ------------------------------------------

    def queue_event(self, channo: int, code: int) -> None:
        """Queue a raw event code (any value, including ones DAHDI never sends)."""
        self.channels[channo].events.append(code)

    def phone_off_hook(self, channo: int) -> None:
        chan = self._analog(channo, "fxoks")
        chan.rx_offhook = True
        chan.ring_tripped = chan.txstate in ("ringon", "ringoff")  # ring trip: the ringer stops at once
        chan.events.append(self.lib.DAHDI_EVENT_RINGOFFHOOK)

    def phone_on_hook(self, channo: int) -> None:
        chan = self._analog(channo, "fxoks")
        chan.rx_offhook = False
        chan.events.append(self.lib.DAHDI_EVENT_ONHOOK)

    def phone_flash(self, channo: int) -> None:
        self._analog(channo, "fxoks").events.append(self.lib.DAHDI_EVENT_WINKFLASH)

    def line_ring(self, channo: int, on: bool) -> None:
        """A ring burst on a line port starts (RINGBEGIN) or has ended (RINGOFFHOOK)."""
        chan = self._analog(channo, "fxsks")
        chan.events.append(self.lib.DAHDI_EVENT_RINGBEGIN if on else self.lib.DAHDI_EVENT_RINGOFFHOOK)

    def line_polarity(self, channo: int) -> None:
        self._analog(channo, "fxsks").events.append(self.lib.DAHDI_EVENT_POLARITY)

    def line_disconnect(self, channo: int) -> None:
        """The exchange drops loop current; DAHDI reports it only while the port is off hook."""
        chan = self._analog(channo, "fxsks")
        chan.rx_offhook = False
        if chan.txstate == "offhook":
            chan.events.append(self.lib.DAHDI_EVENT_ONHOOK)

    def set_rx_bits(self, channo: int, bits: int) -> None:
        chan = self.channels[channo]
        chan.rxbits = bits
        chan.events.append(self.lib.DAHDI_EVENT_BITSCHANGED)

    def set_span_alarms(self, spanno: int, alarms: Iterable[str] | int) -> None:
        """Raise (names such as "RED", "LOS", or the bits) or clear (empty) a span's alarms."""
        bits = alarms if isinstance(alarms, int) else sum(getattr(self.lib, f"DAHDI_ALARM_{a}") for a in set(alarms))
        span = self.spans[spanno]
        span.alarms = bits
        code = self.lib.DAHDI_EVENT_ALARM if bits else self.lib.DAHDI_EVENT_NOALARM
        for chan in self.channels.values():
            if chan.span is span:
                chan.events.append(code)

    def unplug(self, spanno: int) -> None:
        """The span's hardware disappears: REMOVED on each channel, then ENODEV."""
        span = self.spans[spanno]
        span.removed = True
        for chan in self.channels.values():
            if chan.span is span:
                chan.events.append(self.lib.DAHDI_EVENT_REMOVED)

    def stall(self, channo: int, stalled: bool = True) -> None:
        """The channel's audio stops (reads find no block, writes back up) or moves again; events still flow."""
        self.channels[channo].stalled = stalled

    def hear(self, channo: int, audio: bytes) -> None:
        """Queue A-law ``audio`` to arrive on the channel over the next ticks."""
        self.channels[channo].line.extend(audio)

    def dchan_receive(self, channo: int, frame: bytes, *, bad_fcs: bool = False) -> None:
        """An HDLC frame (without FCS) arrives on D-channel ``channo``; lost when the span is in alarm."""
        chan = self.channels[channo]
        if chan.sig not in HDLC_SIGS:
            raise ValueError(f"channel {channo} is signalled {chan.sig!r}, not a D-channel")
        if chan.owner is None or chan.span.alarms or chan.span.removed:
            return
        if bad_fcs:
            chan.events.append(self.lib.DAHDI_EVENT_BADFCS)
        else:
            chan.frames_rx.append(frame + fcs16(frame).to_bytes(2, "little"))

    def dchan_sent(self, channo: int) -> list[bytes]:
        """The frames (FCS removed) the hardware sent on D-channel ``channo`` since the last call."""
        chan = self.channels[channo]
        out, chan.frames_sent = chan.frames_sent, []
        return out

    def tick(self, ms: int = 20) -> None:
        """Move the hardware on by ``ms``: audio in and out of open channels, signalling timers."""
        n = ms * 8
        for chan in self.channels.values():
            if chan.owner is None or chan.span.removed:
                continue
            if chan.sig in HDLC_SIGS:
                if not chan.span.alarms:
                    chan.frames_sent += [f[:-2] for f in chan.frames_tx]
                chan.frames_tx.clear()
                continue
            if not chan.stalled:
                chan.sent.extend(bytes(chan.tx[:n]).ljust(n, bytes([SILENCE])))  # underrun: silence
                del chan.tx[:n]
                heard = bytes(chan.line[:n]).ljust(n, bytes([SILENCE]))
                del chan.line[:n]
                chan.rx.extend(heard)
                del chan.rx[:max(0, len(chan.rx) - chan.numbufs * chan.blocksize)]  # overrun drops the oldest
            self._timers(chan, ms)

    def _timers(self, chan: FakeChannel, ms: int) -> None:
        L = self.lib
        if chan.dial_ms > 0:
            chan.dial_ms -= ms
            if chan.dial_ms <= 0:
                chan.dial_buf, chan.dial_ms = "", 0
                chan.events.append(L.DAHDI_EVENT_DIALCOMPLETE)
        if chan.txstate in ("ringon", "ringoff") and chan.ring_tripped:
            return
        if chan.timer_ms <= 0:
            return
        chan.timer_ms -= ms
        if chan.timer_ms > 0:
            return
        if chan.txstate in ("ringon", "ringoff"):
            chan.cadence_pos = (chan.cadence_pos + 1) % len(chan.cadence)
            chan.timer_ms = chan.cadence[chan.cadence_pos]
            chan.txstate = "ringoff" if chan.txstate == "ringon" else "ringon"
            chan.events.append(L.DAHDI_EVENT_RINGEROFF if chan.txstate == "ringoff" else L.DAHDI_EVENT_RINGERON)
        else:  # flash, wink or start finished
            chan.txstate = "onhook" if chan.txstate == "wink" else "offhook"
            chan.events.append(L.DAHDI_EVENT_HOOKCOMPLETE)

    def _analog(self, channo: int, sig: str) -> FakeChannel:
        chan = self.channels[channo]
        if chan.sig != sig:
            raise ValueError(f"channel {channo} is signalled {chan.sig!r}, not {sig!r}")
        return chan
