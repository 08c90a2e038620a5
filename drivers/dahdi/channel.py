"""One DAHDI channel through the system-call seam: open and configure, hook, events, dial, frames, span status.

``DahdiChannel(kernel, channo)`` runs DAHDI's opening sequence on
``/dev/dahdi/channel`` (non-blocking: SPECIFY, block size 160, A-law,
GET_PARAMS) and then never blocks: EAGAIN means "nothing now", EINPROGRESS
"accepted, finishing later", EBUSY "not now, ask again on a later tick". While
an event waits, DAHDI fails read and write with ELAST; the channel then fetches
the events (kept for :meth:`get_event`) and retries, so no frame and no event is
lost. The caller (the DAHDI card) owns the clock and the polling.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from appliance.errors import DriverError

from ..base import BLOCK, PortKind
from . import binding, names
from .events import ChannelEvent, EventDecoder, alarm_names, decode_alarms
from .kernel import Kernel

log = logging.getLogger(__name__)

PATH = "/dev/dahdi/channel"
HDLC_BUFFERS = 32  # frames queued each way on a D-channel, as ISDN stacks on DAHDI use
RETRIES = 3  # EINTR and ELAST retries: more than one in a row means something is wrong
DIAL_CHARS = frozenset("0123456789*#ABCDabcdwWTPMR")  # digits, 'w' pause, T/P/M/R: DTMF, pulse, MF, R2 mode


class HookResult(str, enum.Enum):
    DONE = "done"
    IN_PROGRESS = "in_progress"  # accepted; RINGEROFF/HOOKCOMPLETE follow (EINPROGRESS)
    BUSY = "busy"  # the port cannot do it in its present state; retry on a later tick (EBUSY)


@dataclass(frozen=True)
class ChannelParams:
    """What DAHDI_GET_PARAMS says about a channel.

    ``signalling`` is DAHDI's name in lower case ("fxoks" for a phone port,
    "fxsks" for a line port, "clear" for a B-channel, "broken"...); ``kind`` is
    the port kind it means for us.
    """

    channo: int
    span: int
    chanpos: int
    signalling: str
    kind: PortKind
    name: str
    law: str  # "alaw", "mulaw" or "default"
    rx_offhook: bool
    alarms: frozenset[str]


@dataclass(frozen=True)
class SpanInfo:
    """What DAHDI_SPANSTAT says about a span; ``alarms`` empty means the span is up."""

    span: int
    name: str
    description: str
    spantype: str  # "E1", "T1", "analog"...
    alarms: frozenset[str]
    channels: int
    sync_source: int  # span number giving the clock, 0 when free running
    bpv_count: int
    crc4_errors: int
    ebit_errors: int
    fas_errors: int


class DahdiChannel:
    """An open DAHDI channel.

    Parameters
    ----------
    kernel : Kernel
        The system calls (``OsKernel`` on a box, ``FakeKernel`` in tests).
    channo : int
        DAHDI's channel number (1-based, counted across spans).
    port : int, optional
        The port index its events carry (``PortInfo.index``); defaults to ``channo``.
    decoder : EventDecoder, optional
        Shared by every channel of a card so that an unknown code is logged once per card.
    blocksize : int
        Bytes (A-law samples) per read and write; 160 is one 20 ms frame.
    hdlc : bool
        A D-channel: no block size or law; buffers of ``blocksize`` bytes (1024 fits
        any LAPD frame), 32 each way, and each read or write is one whole frame
        followed by its two FCS bytes.
    """

    def __init__(self, kernel: Kernel, channo: int, *, port: int | None = None,
                 decoder: EventDecoder | None = None, blocksize: int = BLOCK, hdlc: bool = False) -> None:
        self.ffi, self.lib = binding.require()
        self.kernel = kernel
        self.channo = channo
        self.port = channo if port is None else port
        self.blocksize = blocksize
        self.decoder = decoder or EventDecoder(self.lib)
        self._alarm_table = alarm_names(self.lib)
        self._sig_names = {getattr(self.lib, n): n.removeprefix("DAHDI_SIG_").lower() for n in names.SIGNALLING}
        self._int = self.ffi.new("int *")  # reused: events are fetched every tick
        self._int_buf = self.ffi.buffer(self._int)
        self._pending: deque[ChannelEvent] = deque()  # fetched while clearing ELAST
        try:
            self.fd = kernel.open(PATH, os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            raise DriverError(f"cannot open {PATH} for DAHDI channel {channo}: {exc}; "
                              "is the dahdi kernel module loaded?") from exc
        try:
            self._set_int(self.lib.DAHDI_SPECIFY, channo, "DAHDI_SPECIFY")
            if hdlc:
                self.set_buffers(HDLC_BUFFERS)
            else:
                self._set_int(self.lib.DAHDI_SET_BLOCKSIZE, blocksize, "DAHDI_SET_BLOCKSIZE")
                self._set_int(self.lib.DAHDI_SETLAW, self.lib.DAHDI_LAW_ALAW, "DAHDI_SETLAW")
            self.params = self.get_params()
        except BaseException:
            kernel.close(self.fd)
            raise

    # --- system calls with errors turned into DriverError -------------------------------

    def _ioctl(self, request: int, arg: Any, what: str, ok: Callable[[int], bool] = lambda e: False) -> int:
        """Run an ioctl, retrying EINTR; errnos for which ``ok`` is true come back negated."""
        for _ in range(RETRIES):
            try:
                return self.kernel.ioctl(self.fd, request, arg)
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                if ok(exc.errno):
                    return -exc.errno
                raise DriverError(f"DAHDI channel {self.channo}: {what} failed: {exc}") from exc
        raise DriverError(f"DAHDI channel {self.channo}: {what} interrupted {RETRIES} times in a row")

    def _set_int(self, request: int, value: int, what: str) -> None:
        self._int[0] = value
        self._ioctl(request, self._int_buf, f"{what} {value}")

    def _get_int(self, request: int, what: str) -> int:
        self._ioctl(request, self._int_buf, what)
        return self._int[0]

    # --- configuration and status ----------------------------------------------------------

    def get_params(self) -> ChannelParams:
        p = self.ffi.new("struct dahdi_params *")  # channo 0: this channel
        self._ioctl(self.lib.DAHDI_GET_PARAMS, self.ffi.buffer(p), "DAHDI_GET_PARAMS")
        sig = "broken" if p.sigtype < 0 else self._sig_names.get(p.sigtype, f"0x{p.sigtype:X}")
        L = self.lib
        laws = {L.DAHDI_LAW_ALAW: "alaw", L.DAHDI_LAW_MULAW: "mulaw", L.DAHDI_LAW_DEFAULT: "default"}
        return ChannelParams(
            channo=p.channo, span=p.spanno, chanpos=p.chanpos, signalling=sig, kind=_kind(sig),
            name=self.ffi.string(p.name).decode("utf-8", "replace"), law=laws.get(p.curlaw, str(p.curlaw)),
            rx_offhook=bool(p.rxisoffhook), alarms=decode_alarms(p.chan_alarms, self._alarm_table))

    def span_info(self, span: int = 0) -> SpanInfo:
        """DAHDI_SPANSTAT of span number ``span`` (0: this channel's span)."""
        si = self.ffi.new("struct dahdi_spaninfo *")
        si.spanno = span
        self._ioctl(self.lib.DAHDI_SPANSTAT, self.ffi.buffer(si), f"DAHDI_SPANSTAT {span}")
        text = lambda field: self.ffi.string(field).decode("utf-8", "replace")  # noqa: E731
        return SpanInfo(
            span=si.spanno, name=text(si.name), description=text(si.desc), spantype=text(si.spantype),
            alarms=decode_alarms(si.alarms, self._alarm_table), channels=si.totalchans, sync_source=si.syncsrc,
            bpv_count=si.bpvcount, crc4_errors=si.crc4count, ebit_errors=si.ebitcount, fas_errors=si.fascount)

    def spanstat(self, span: int = 0) -> frozenset[str]:
        """The alarms of span ``span`` (0: this channel's span) as names: "RED", "YELLOW", "BLUE", "LOS"..."""
        return self.span_info(span).alarms

    def set_buffers(self, numbufs: int, policy: str = "immediate") -> None:
        """Use ``numbufs`` buffers of one block each way; ``policy``: immediate, when_full or half_full."""
        L = self.lib
        policies = {"immediate": L.DAHDI_POLICY_IMMEDIATE, "when_full": L.DAHDI_POLICY_WHEN_FULL,
                    "half_full": L.DAHDI_POLICY_HALF_FULL}
        if policy not in policies:
            raise DriverError(f"buffer policy {policy!r} unknown; expected one of {sorted(policies)}")
        if not 2 <= numbufs <= L.DAHDI_MAX_NUM_BUFS:
            raise DriverError(f"numbufs {numbufs} out of range; expected 2..{L.DAHDI_MAX_NUM_BUFS}")
        bi = self.ffi.new("struct dahdi_bufferinfo *")
        bi.txbufpolicy = bi.rxbufpolicy = policies[policy]
        bi.numbufs, bi.bufsize = numbufs, self.blocksize
        self._ioctl(L.DAHDI_SET_BUFINFO, self.ffi.buffer(bi), f"DAHDI_SET_BUFINFO {numbufs}x{self.blocksize}")

    def set_ring_cadence(self, steps_ms: Sequence[int]) -> None:
        """Ring an FXS port in this cadence: on, off, on, off... in ms (China: ``(1000, 4000)``)."""
        limit = self.lib.DAHDI_MAX_CADENCE
        if not steps_ms or len(steps_ms) > limit or len(steps_ms) % 2 or any(int(s) <= 0 for s in steps_ms):
            raise DriverError(f"ring cadence {list(steps_ms)} invalid; expected on/off pairs of positive ms, "
                              f"at most {limit} steps")
        rc = self.ffi.new("struct dahdi_ring_cadence *")
        rc.ringcadence[0:len(steps_ms)] = [int(s) for s in steps_ms]
        self._ioctl(self.lib.DAHDI_SETCADENCE, self.ffi.buffer(rc), f"DAHDI_SETCADENCE {list(steps_ms)}")

    def set_tone_zone(self, zone: int) -> None:
        """Use tone zone number ``zone`` (as loaded by dahdi_cfg; ``loadzone=cn`` makes one)."""
        self._set_int(self.lib.DAHDI_SETTONEZONE, zone, "DAHDI_SETTONEZONE")

    def set_echo_canceller(self, taps: int, params: Mapping[str, int] | None = None) -> None:
        """Enable the echo canceller with ``taps`` taps (8 per ms; 128 = 16 ms) and its parameters; 0 disables."""
        params = dict(params or {})
        ffi, L = self.ffi, self.lib
        name_len = ffi.sizeof(dict(ffi.typeof("struct dahdi_echocanparam").fields)["name"].type)
        if taps < 0 or len(params) > L.DAHDI_MAX_ECHOCANPARAMS:
            raise DriverError(f"echo canceller: taps {taps} and {len(params)} parameters; expected taps >= 0 "
                              f"and at most {L.DAHDI_MAX_ECHOCANPARAMS} parameters")
        head, item = ffi.sizeof("struct dahdi_echocanparams"), ffi.sizeof("struct dahdi_echocanparam")
        raw = ffi.new("char[]", head + item * len(params))
        hdr = ffi.cast("struct dahdi_echocanparams *", raw)
        hdr.tap_length, hdr.param_count = taps, len(params)
        items = ffi.cast("struct dahdi_echocanparam *", raw + head)
        for i, (key, value) in enumerate(params.items()):
            encoded = key.encode("ascii")
            if not encoded or len(encoded) >= name_len:
                raise DriverError(f"echo canceller parameter name {key!r}: expected 1..{name_len - 1} ASCII chars")
            items[i].name = encoded
            items[i].value = int(value)
        self._ioctl(L.DAHDI_ECHOCANCEL_PARAMS, ffi.buffer(raw), f"DAHDI_ECHOCANCEL_PARAMS {taps} taps")

    def flush(self, *, read: bool = True, write: bool = True, events: bool = False) -> None:
        """Drop buffered audio (and queued events when ``events``)."""
        L = self.lib
        what = (L.DAHDI_FLUSH_READ if read else 0) | (L.DAHDI_FLUSH_WRITE if write else 0) | \
            (L.DAHDI_FLUSH_EVENT if events else 0)
        if events:
            self._pending.clear()
        self._set_int(L.DAHDI_FLUSH, what, "DAHDI_FLUSH")

    # --- signalling ----------------------------------------------------------------------

    def hook(self, op: str) -> HookResult:
        """Set the hook: "onhook", "offhook", "ring", "ringoff", "flash", "wink" or "start".

        On a phone port "ring" rings it; on a line port "offhook" answers or seizes.
        """
        L = self.lib
        values = {"onhook": L.DAHDI_ONHOOK, "offhook": L.DAHDI_OFFHOOK, "ring": L.DAHDI_RING,
                  "ringoff": L.DAHDI_RINGOFF, "flash": L.DAHDI_FLASH, "wink": L.DAHDI_WINK, "start": L.DAHDI_START}
        if op not in values:
            raise DriverError(f"hook operation {op!r} unknown; expected one of {sorted(values)}")
        self._int[0] = values[op]
        res = self._ioctl(L.DAHDI_HOOK, self._int_buf, f"DAHDI_HOOK {op}",
                          ok=lambda e: e in (errno.EINPROGRESS, errno.EBUSY))
        return {-errno.EINPROGRESS: HookResult.IN_PROGRESS, -errno.EBUSY: HookResult.BUSY}.get(res, HookResult.DONE)

    def dial(self, digits: str, *, append: bool = False) -> None:
        """Play ``digits`` as tones (DAHDI_DIAL); DialComplete follows. Prefix "T" for DTMF, "w" pauses 0.5 s."""
        bad = sorted(set(digits) - DIAL_CHARS)
        limit = self.lib.DAHDI_MAX_DTMF_BUF - 2  # DAHDI keeps room for the NUL and refuses a full buffer
        if not digits or bad or len(digits) > limit:
            raise DriverError(f"dial string {digits!r} invalid: expected 1..{limit} of 0-9 * # A-D w T P M R"
                              + (f", got {''.join(bad)!r}" if bad else ""))
        self._dial_op(self.lib.DAHDI_DIAL_OP_APPEND if append else self.lib.DAHDI_DIAL_OP_REPLACE, digits)

    def cancel_dial(self) -> None:
        self._dial_op(self.lib.DAHDI_DIAL_OP_CANCEL, "")

    def dialing(self) -> bool:
        return bool(self._get_int(self.lib.DAHDI_DIALING, "DAHDI_DIALING"))

    def _dial_op(self, op: int, digits: str) -> None:
        do = self.ffi.new("struct dahdi_dialoperation *")
        do.op = op
        do.dialstr = digits.encode("ascii")
        self._ioctl(self.lib.DAHDI_DIAL, self.ffi.buffer(do), f"DAHDI_DIAL {digits!r}")

    def rx_bits(self) -> int:
        """The ABCD bits a CAS channel receives (bit 3 = A ... bit 0 = D)."""
        return self._get_int(self.lib.DAHDI_GETRXBITS, "DAHDI_GETRXBITS")

    def set_tx_bits(self, bits: int) -> None:
        self._set_int(self.lib.DAHDI_SETTXBITS, bits, "DAHDI_SETTXBITS")

    # --- events ----------------------------------------------------------------------------

    def get_event(self) -> ChannelEvent | None:
        """The next event on this channel, decoded; None when there is none. Never blocks."""
        if self._pending:
            return self._pending.popleft()
        while True:
            code = self._get_int(self.lib.DAHDI_GETEVENT, "DAHDI_GETEVENT")
            if code == self.lib.DAHDI_EVENT_NONE:
                return None
            event = self._decode(code)
            if event is not None:
                return event

    def events(self) -> list[ChannelEvent]:
        """Every event waiting on this channel, oldest first."""
        out = []
        while (event := self.get_event()) is not None:
            out.append(event)
        return out

    def _decode(self, code: int) -> ChannelEvent | None:
        return self.decoder.decode(code, port=self.port, kind=self.params.kind, span=self.params.span,
                                   span_alarms=self.spanstat)

    def _fetch_pending(self) -> None:
        """Take every queued event into ``_pending`` (clears the ELAST condition)."""
        while (code := self._get_int(self.lib.DAHDI_GETEVENT, "DAHDI_GETEVENT")) != self.lib.DAHDI_EVENT_NONE:
            event = self._decode(code)
            if event is not None:
                self._pending.append(event)

    # --- audio ---------------------------------------------------------------------------

    def read_frame(self) -> bytes | None:
        """One block of received A-law bytes, or None when none is ready (EAGAIN)."""
        return self._io("read", lambda: self.kernel.read(self.fd, self.blocksize))

    def write_frame(self, frame: bytes) -> bool:
        """Queue one block to send; False when DAHDI's write buffers are full (EAGAIN)."""
        return self._io("write", lambda: self.kernel.write(self.fd, frame)) is not None

    def _io(self, what: str, call: Callable[[], Any]) -> Any:
        for _ in range(RETRIES):
            try:
                return call()
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    return None
                if exc.errno == self.lib.ELAST:  # an event waits: take it, then the I/O works again
                    self._fetch_pending()
                    continue
                if exc.errno == errno.EINTR:
                    continue
                raise DriverError(f"DAHDI channel {self.channo}: {what} failed: {exc}") from exc
        log.warning("DAHDI channel %d: %s still refused after %d tries (events keep arriving); frame skipped",
                    self.channo, what, RETRIES)
        return None

    # --- lifetime --------------------------------------------------------------------------

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            self.kernel.close(fd)

    def __enter__(self) -> "DahdiChannel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DahdiChannel({self.channo}, {self.params.signalling}, {self.params.name!r})"


def _kind(signalling: str) -> PortKind:
    """DAHDI names ports by the far end's role: fxo* signalling drives a phone (our FXS port)."""
    if signalling.startswith("fxo"):
        return PortKind.FXS
    if signalling.startswith("fxs"):
        return PortKind.FXO
    return PortKind.TRUNK
