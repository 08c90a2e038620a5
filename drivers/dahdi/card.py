"""The DAHDI voice card behind the Card protocol: E1 B-channels, FXS phones and FXO lines, one DahdiChannel each.

``poll(now)`` fetches every channel's events and lets its port's signalling
(``drivers.dahdi.ports``) turn them into the core's events; ``read``/``write``
move one 160-byte A-law frame per port and never wait for one. Nothing here
blocks or reads a clock: ``now`` comes from the runtime. A kernel error on one
channel takes that port out of service (``PortFault``) and the others go on.

Calls on a PRI span go through its D-channel (``drivers.dahdi.pri``, the stack
in ``drivers.isdn``); on an MFC/R2 span through the trunk channels' CAS bits and
MF tones (``drivers.dahdi.r2``, the stack in ``drivers.r2``). A card opened with
neither carries audio and span alarms on its trunk ports and refuses
``answer``/``dial`` on them.
"""

from __future__ import annotations

import logging
import math
import os
import select
from typing import Any, Callable, Iterable

import numpy as np

from appliance.errors import DriverError

from ..base import BLOCK, Alarm, CardEvent, PortFault, PortInfo, PortKind, check_frames
from . import binding
from .channel import PATH, DahdiChannel
from .events import EventDecoder
from .kernel import Kernel, OsKernel
from .pri import PriSpan
from .ports import LinePort, PhonePort, Port, PortDown, TrunkPort
from .r2 import MfcR2Span
from .sysconf import channel_numbers

log = logging.getLogger(__name__)
REOPEN_EVERY_S = 5.0  # how often a port out of service after a kernel error tries its channel again
ECHO_TAPS = 128  # 16 ms of tail at 8 taps per ms: enough for the box's own analog ports and the E1's hybrids

IDLE = 0xD5  # A-law code of silence: what a port without a frame this tick delivers
MISS_LIMIT = 25  # frames missed in a row (0.5 s) before a port is reported as giving none
SPANSTAT_EVERY_S = 1.0  # alarm changes arrive as events; this read catches any the events missed
TRUNK_SIGNALLING = ("clear", "cas")  # a PRI B-channel, an R2 channel
EXPECTED = {PortKind.TRUNK: "clear or cas", PortKind.FXS: "fxoks", PortKind.FXO: "fxsks"}


class DahdiCard:
    """A DAHDI card: ``span_channels`` as trunk ports, then ``fxs_channels``, then ``fxo_channels``.

    Parameters
    ----------
    kernel : Kernel
        ``OsKernel`` on a box, ``FakeKernel`` in tests.
    span_channels, fxs_channels, fxo_channels : iterable of int
        DAHDI channel numbers; their order is the ports' order in the frame arrays.
        An FXS port must be signalled ``fxoks`` and an FXO port ``fxsks`` (DAHDI names
        the far end's role), trunk channels ``clear`` (PRI) or ``cas`` (R2).
    callerid : bool
        Send FSK caller ID (MDMF) to ringing phones after the first ring.
    miss_limit : int
        Ticks without a frame before ``PortFault(port, False, "no frames")``.
    pri : dict, optional
        The span's PRI signalling: ``{"dchan": DAHDI channel of the D-channel,
        "network": True on the network side, "calling_number": shown on our calls}``.
    r2 : dict, optional
        The span's MFC/R2 signalling (China No.1; trunk channels ``cas``): ``{"max_dnis": 4,
        "max_ani": 12, "category": "national-subscriber", "calling_number": None, "cd_bits": 0b01}``,
        any of them (``drivers.dahdi.r2.DEFAULTS``; ``{}`` takes them all). With neither ``pri``
        nor ``r2`` the trunk ports carry no calls.

    Opening fails with DriverError (every channel opened so far closed again)
    when a channel cannot be opened or its signalling does not match.
    """

    def __init__(self, kernel: Kernel, *, span_channels: Iterable[int] = (), fxs_channels: Iterable[int] = (),
                 fxo_channels: Iterable[int] = (), callerid: bool = True, miss_limit: int = MISS_LIMIT,
                 echo_taps: int = ECHO_TAPS, pri: dict | None = None, r2: dict | None = None) -> None:
        _, lib = binding.require()
        if pri is not None and r2 is not None:
            raise DriverError("a span runs PRI or MFC/R2, not both: give pri or r2")
        self.kernel = kernel
        self.miss_limit = int(miss_limit)
        plan = ([(c, PortKind.TRUNK) for c in span_channels] + [(c, PortKind.FXS) for c in fxs_channels]
                + [(c, PortKind.FXO) for c in fxo_channels])
        seen: set[int] = set()
        for channo, _kind in plan:
            if channo in seen:
                raise DriverError(f"DAHDI channel {channo} is given twice; each port needs its own channel")
            seen.add(channo)
        decoder = EventDecoder(lib)  # one per card: an unknown code is logged once for the card
        self._decoder, self._echo_taps = decoder, echo_taps
        self._reopen_at: dict[int, float] = {}  # port -> when to try opening its channel again
        self._ports: list[Port] = []
        self._epoll: Any = None
        self._loop: Any = None
        counts = {PortKind.FXS: 0, PortKind.FXO: 0}
        try:
            for index, (channo, kind) in enumerate(plan):
                chan = _open(kernel, channo, index, kind, decoder, echo_taps)
                p = chan.params
                if kind is PortKind.TRUNK:
                    self._ports.append(TrunkPort(PortInfo(index, kind, f"E1 {p.span}/{p.chanpos}", p.span), chan))
                    continue
                counts[kind] += 1
                info = PortInfo(index, kind, f"{kind.value.upper()} {counts[kind]}")
                self._ports.append(PhonePort(info, chan, callerid) if kind is PortKind.FXS else LinePort(info, chan))
        except BaseException:
            self.close()
            raise
        self.ports: tuple[PortInfo, ...] = tuple(p.info for p in self._ports)
        spans = sorted({p.info.span for p in self._ports if isinstance(p, TrunkPort)})
        self.span_alarms: dict[int, frozenset[str]] = {s: frozenset() for s in spans}  # what we last reported
        self._pri: PriSpan | None = None
        self._pri_failed = False
        self._r2: MfcR2Span | None = None
        trunk_ports = [p for p in self._ports if isinstance(p, TrunkPort)]
        try:
            if pri is not None and spans:
                trunks = {p.chan.params.chanpos: p.info.index for p in trunk_ports}
                self._pri = PriSpan(kernel, pri["dchan"], spans[0], trunks, network=pri.get("network", False),
                                    decoder=decoder, calling_number=pri.get("calling_number"))
            elif r2 is not None and spans:
                self._r2 = MfcR2Span(trunk_ports, spans[0], r2, self._fault)
        except BaseException:
            self.close()
            raise
        for p in trunk_ports:
            p.signalling = self._pri or self._r2
        self._next_spanstat = -math.inf
        self._misses = [0] * len(self._ports)
        self._starved: set[int] = set()  # ports reported as giving no frames
        self._out: list[CardEvent] = []  # events for the next poll

    @classmethod
    def from_config(cls, cfg: dict, kernel: Kernel | None = None) -> "DahdiCard":
        """The card ``cfg`` describes: the first ``card.trunk_channels`` of ``span.channels`` (when
        ``span.enabled``), then the ``analog`` ports, FXS before FXO, each in the config's order.

        Without ``kernel``, the real one; DriverError when the binding or ``/dev/dahdi`` is missing.
        """
        if kernel is None:
            binding.require()
            if not os.path.exists(PATH):
                raise DriverError(f"card.driver is 'dahdi' but {PATH} does not exist: the dahdi kernel module is "
                                  "not loaded or found no card (see dmesg; lsmod | grep dahdi)")
            kernel = OsKernel()
        span = cfg["span"]
        trunks = channel_numbers(span["channels"])[:cfg["card"]["trunk_channels"]] if span["enabled"] else []
        analog = cfg["analog"]
        pri = r2 = None
        if trunks and span["signalling"] in ("pri_cpe", "pri_net"):  # span 1: DAHDI channel = timeslot
            pri = {"dchan": span["dchan"], "network": span["signalling"] == "pri_net",
                   "calling_number": span["calling_number"] or None}
        elif trunks and span["signalling"] == "mfcr2":
            r2 = {"calling_number": span["calling_number"] or None}
        return cls(kernel, span_channels=trunks, fxs_channels=[a["channel"] for a in analog if a["kind"] == "fxs"],
                   fxo_channels=[a["channel"] for a in analog if a["kind"] == "fxo"],
                   echo_taps=0 if cfg["card"]["echo_canceller"] == "none" else ECHO_TAPS, pri=pri, r2=r2)

    # --- events --------------------------------------------------------------------------

    def poll(self, now: float) -> list[CardEvent]:
        seen: dict[int, frozenset[str]] = {}  # span -> latest alarms its channels reported this poll
        for p in self._ports:
            if p.down is None:
                self._poll_port(p, now, seen)
            else:
                self._maybe_reopen(p, now)
        if self._pri is not None:
            self._poll_pri(now, seen)
        if self._r2 is not None:
            self._out += self._r2.poll(now)
        for span, alarms in seen.items():
            self._alarms(span, alarms)
        if self.span_alarms and now >= self._next_spanstat:
            self._next_spanstat = now + SPANSTAT_EVERY_S
            self._read_spans()
        out, self._out = self._out, []
        return out

    def _poll_port(self, p: Port, now: float, seen: dict[int, frozenset[str]]) -> None:
        try:
            while (ev := p.chan.get_event()) is not None:
                if isinstance(ev, Alarm):
                    if ev.span in self.span_alarms:  # an analog module's span has no trunk to take down
                        seen[ev.span] = ev.alarms
                elif isinstance(ev, PortFault):
                    self._fault(p, ev.reason)
                    return
                else:
                    self._out += p.handle(ev, now)
            p.due(now)
        except DriverError as exc:  # PortDown from the signalling, or the channel's own calls
            self._fault(p, str(exc))

    def _poll_pri(self, now: float, seen: dict[int, frozenset[str]]) -> None:
        try:
            events, alarms = self._pri.poll(now)
        except DriverError as exc:  # the D-channel failed: its calls cannot be signalled any more
            if not self._pri_failed:
                log.error("DAHDI PRI span %d: D-channel failed: %s", self._pri.span, exc)
            self._pri_failed = True
            self._out += self._pri.span_alarm(frozenset({"DCHAN"}))
            return
        self._pri_failed = False
        self._out += events
        for a in alarms:
            seen[a.span] = a.alarms

    def _maybe_reopen(self, p: Port, now: float) -> None:
        """A port out of service after a kernel error tries its channel again every ``REOPEN_EVERY_S``."""
        index = p.info.index
        due = self._reopen_at.setdefault(index, now + REOPEN_EVERY_S)
        if now < due:
            return
        try:
            chan = _open(self.kernel, p.chan.channo, index, p.info.kind, self._decoder, self._echo_taps)
        except DriverError as exc:
            self._reopen_at[index] = now + REOPEN_EVERY_S
            log.debug("DAHDI %s still out of service: %s", p, exc)
            return
        del self._reopen_at[index]
        p.chan, p.down, p.state = chan, None, "idle"
        self._misses[index] = 0
        log.warning("DAHDI %s is back in service", p)
        self._out.append(PortFault(index, True))

    def _read_spans(self) -> None:
        for span in self.span_alarms:
            for p in self._ports:
                if p.down is None and p.info.span == span:
                    try:
                        self._alarms(span, p.chan.spanstat(span))
                        break
                    except DriverError as exc:
                        self._fault(p, str(exc))  # then ask through the next channel of the span

    def _alarms(self, span: int, alarms: frozenset[str]) -> None:
        if alarms != self.span_alarms[span]:
            self.span_alarms[span] = alarms
            self._out.append(Alarm(span, alarms))
            if self._pri is not None and self._pri.span == span:
                self._out += self._pri.span_alarm(alarms)
            if self._r2 is not None and self._r2.span == span:
                self._out += self._r2.span_alarm(alarms)

    def _fault(self, p: Port, reason: str) -> None:
        if p.down is not None:  # already reported; a command that reached it leaves no state behind
            p.go_down(p.down)
            return
        log.warning("DAHDI %s is out of service: %s", p, reason)
        p.go_down(reason)
        self._starved.discard(p.info.index)
        self._out.append(PortFault(p.info.index, False, reason))
        _close_quietly(p)

    def next_deadline(self) -> float | None:
        times = [t for p in self._ports if p.down is None and (t := p.deadline()) is not None]
        if self.span_alarms:
            times.append(self._next_spanstat)
        for sig in (self._pri, self._r2):
            if sig is not None and (t := sig.next_deadline()) is not None:
                times.append(t)
        return min(times) if times else None

    def port_state(self, port: int) -> str:
        """The port's signalling state ("idle", "ringing", "offhook", "dialing"...) or "down"."""
        p = self._port(port)
        return "down" if p.down is not None else p.state

    # --- frames ----------------------------------------------------------------------------

    def read(self, out: np.ndarray) -> None:
        check_frames(out, len(self._ports), "read")
        for p in self._ports:
            i = p.info.index
            frame = None
            if p.down is None:
                try:
                    frame = p.chan.read_frame()
                except DriverError as exc:
                    self._fault(p, str(exc))
            if frame is not None and len(frame) == BLOCK:
                out[i] = np.frombuffer(frame, np.uint8)
                self._misses[i] = 0
                if i in self._starved:
                    self._starved.discard(i)
                    self._out.append(PortFault(i, True))
                continue
            out[i] = IDLE
            if p.down is None:
                self._misses[i] += 1
                if self._misses[i] == self.miss_limit:
                    self._starved.add(i)
                    self._out.append(PortFault(i, False, "no frames"))
        if self._r2 is not None:
            self._r2.process(out)  # the MF register signals in the trunk rows

    def write(self, frames: np.ndarray) -> None:
        check_frames(frames, len(self._ports), "write")
        if self._r2 is not None:
            frames = self._r2.fill_tx(frames)  # a copy, with our MF register signals in their rows
        for p in self._ports:
            if p.down is None:
                try:
                    # False: DAHDI's buffers are full (we are ahead of the hardware); the frame is dropped
                    p.chan.write_frame(p.mix(frames[p.info.index]).tobytes())
                except DriverError as exc:
                    self._fault(p, str(exc))

    # --- commands --------------------------------------------------------------------------

    def _port(self, port: int) -> Port:
        if not isinstance(port, (int, np.integer)) or not 0 <= port < len(self._ports):
            raise DriverError(f"port {port!r} does not exist; this card has ports 0..{len(self._ports) - 1}")
        return self._ports[port]

    def _command(self, port: int, call: Callable[[Port], None]) -> None:
        p = self._port(port)
        try:
            call(p)
        except PortDown as exc:  # the kernel failed, or the port already is out of service (its fault is reported)
            self._fault(p, str(exc))

    def answer(self, port: int) -> None:
        self._command(port, lambda p: p.answer())

    def hangup(self, port: int, cause: int = 16) -> None:
        self._command(port, lambda p: p.hangup(cause))  # an analog line carries no cause

    def dial(self, port: int, number: str) -> None:
        self._command(port, lambda p: p.dial(number))

    def ring(self, port: int, caller: str | None) -> None:
        self._command(port, lambda p: p.ring(caller))

    def stop_ring(self, port: int) -> None:
        self._command(port, lambda p: p.stop_ring())

    def bridge(self, a: int, b: int | None) -> None:
        """Nothing to do: the runtime's switch mixes the audio (DAHDI's own conferencing is not used)."""
        self._port(a)
        if b is not None:
            self._port(b)

    # --- waking the loop ---------------------------------------------------------------------

    def attach(self, loop: Any, on_ready: Callable[[], None] | None = None) -> bool:
        """Wake ``loop`` when a channel has an event (POLLPRI) or a frame (POLLIN); True if attached.

        asyncio does not watch POLLPRI, so the channels go into one epoll set whose
        descriptor the loop watches. Edge-triggered: a frame or event that waits for
        the next tick would otherwise wake the loop again and again until then.
        ``on_ready`` (optional) runs on each wake-up. A kernel without real
        descriptors (the fake) cannot be watched: then this does nothing and returns
        False, which loses nothing, since the runtime calls ``poll`` every 20 ms tick.
        """
        if not getattr(self.kernel, "pollable", False):
            return False
        self.detach()
        ep = select.epoll()
        for p in self._ports:
            if p.down is None:
                ep.register(p.chan.fileno(), select.EPOLLIN | select.EPOLLPRI | select.EPOLLET)

        def ready() -> None:
            if ep.poll(0) and on_ready is not None:  # reading the epoll set takes its edges
                on_ready()

        loop.add_reader(ep.fileno(), ready)
        self._epoll, self._loop = ep, loop
        return True

    def detach(self) -> None:
        if self._epoll is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = self._loop = None

    def close(self) -> None:
        """Release every channel (idempotent); DAHDI puts each back on hook on its last close."""
        self.detach()
        for p in self._ports:
            _close_quietly(p)
        if getattr(self, "_pri", None) is not None:
            self._pri.close()


def _open(kernel: Kernel, channo: int, index: int, kind: PortKind, decoder: EventDecoder,
          echo_taps: int) -> DahdiChannel:
    """Open channel ``channo`` as port ``index``: its signalling must be what ``kind`` needs."""
    chan = DahdiChannel(kernel, channo, port=index, decoder=decoder)
    p = chan.params
    if p.kind is not kind or (kind is PortKind.TRUNK and p.signalling not in TRUNK_SIGNALLING):
        chan.close()
        raise DriverError(f"DAHDI channel {channo} is signalled {p.signalling!r}, but the configuration "
                          f"makes it a {kind.value} port, which needs {EXPECTED[kind]}; apply the "
                          "configuration (appliance dahdi-conf --apply)")
    _echo_canceller(chan, echo_taps)
    return chan


def _echo_canceller(chan, taps: int) -> None:
    """Turn on the channel's echo canceller (system.conf chose which one); a kernel without one is only
    worth a warning: calls still work, with echo on long analog loops."""
    if taps <= 0:
        return
    try:
        chan.set_echo_canceller(taps)
    except DriverError as e:
        log.warning("DAHDI channel %s: echo canceller not enabled: %s", chan.channo, e)


def _close_quietly(p: Port) -> None:
    try:
        p.chan.close()
    except OSError as exc:  # a channel the kernel already lost
        log.warning("DAHDI %s: close failed: %s", p, exc)
