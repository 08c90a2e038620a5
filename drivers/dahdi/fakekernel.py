"""A fake DAHDI kernel for tests: ``/dev/dahdi/channel`` with spans, hook states, event queues and audio.

It serves the :class:`~drivers.dahdi.kernel.Kernel` calls the way DAHDI's own
code does (requests, struct layouts and codes come from the compiled binding),
so the channel layer and the DAHDI card run unchanged against it. The test
plays the world on the other side: phones going off hook, lines ringing, spans
raising alarms, audio arriving; ``tick`` moves the hardware on by 20 ms.

What it keeps of the real kernel's behaviour:

- a channel is opened once (EBUSY for a second ``DAHDI_SPECIFY``), and nothing
  but SPECIFY works before it (EINVAL);
- every ioctl takes a pointer: a plain int argument fails with EFAULT;
- ``read``/``write`` fail with ELAST while an event waits, with EAGAIN when a
  non-blocking descriptor has no block to read or no free buffer to write;
- ``DAHDI_HOOK``: RING/START/WINK/FLASH answer EINPROGRESS on a non-blocking
  descriptor; RING, START and WINK need the port on hook and FLASH off hook,
  else EBUSY; hook changes on clear (B-/D-) and CAS channels are EINVAL;
- a ringing phone port rings in the cadence (``DAHDI_SETCADENCE``, or 1 s on /
  4 s off as in the cn zone) with RINGEROFF/RINGERON events;
- flash, wink and start end with HOOKCOMPLETE, a dial string with DIALCOMPLETE;
- an unplugged span queues REMOVED on its channels, then fails calls with ENODEV;
- a stalled channel (``stall``) moves no audio while its signalling goes on;
- a D-channel (``hardhdlc``) reads and writes whole HDLC frames followed by their
  two FCS bytes, one frame per call; a frame with a bad FCS is dropped with a
  BADFCS event; a span in alarm carries no frames either way.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import binding, names
from .fakeworld import HDLC_SIGS, FakeWorld

PATH = "/dev/dahdi/channel"
CN_RING_CADENCE_MS = (1000, 4000)
DIGIT_MS = 200  # DAHDI's default DTMF: 100 ms of tone, 100 ms of silence
PAUSE_MS = 500  # 'w' in a dial string
FLASH_MS, WINK_MS, START_MS = 750, 150, 500  # DAHDI's default flash, wink and start times
AUDIO_SIGS = {"fxoks", "fxols", "fxogs", "fxsks", "fxsls", "fxsgs", "clear", "em", "em_e1", "cas"}
HOOK_SIGS = {"fxoks", "fxols", "fxogs", "fxsks", "fxsls", "fxsgs", "em", "em_e1"}


def _oserror(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)} ({what})")


@dataclass
class FakeSpan:
    spanno: int
    name: str
    desc: str
    spantype: str = "E1"
    alarms: int = 0
    syncsrc: int = 0
    counters: dict[str, int] = field(default_factory=dict)  # bpvcount, crc4count, ebitcount, fascount...
    removed: bool = False


@dataclass
class FakeChannel:
    """One channel's state on both sides: what the driver set and what the test made happen."""

    channo: int
    span: FakeSpan
    chanpos: int
    sig: str  # DAHDI's name: fxoks (a phone port), fxsks (a line port), clear (B-channel), hardhdlc, cas
    name: str
    owner: int | None = None  # fd that specified it
    txstate: str = "onhook"  # onhook | offhook | ringon | ringoff | flash | wink | start
    timer_ms: int = 0
    cadence: tuple[int, ...] = CN_RING_CADENCE_MS
    cadence_pos: int = 0
    ring_tripped: bool = False
    rx_offhook: bool = False  # the phone is off hook / the line carries loop current
    events: deque = field(default_factory=deque)
    rx: bytearray = field(default_factory=bytearray)  # received, waiting for read()
    tx: bytearray = field(default_factory=bytearray)  # written, waiting for the hardware
    sent: bytearray = field(default_factory=bytearray)  # what the hardware sent on the line
    line: bytearray = field(default_factory=bytearray)  # audio the test queued to arrive
    dial_buf: str = ""
    dial_ms: int = 0
    dials: list = field(default_factory=list)  # (op name, digits) as the driver asked
    blocksize: int = 1024
    numbufs: int = 2
    law: int = 0
    tonezone: int = 0
    echocan: tuple[int, dict[str, int]] | None = None
    rxbits: int = 0
    txbits: int = 0
    stalled: bool = False  # the hardware moves no audio on it (a dead port, a stuck transfer)
    frames_rx: deque = field(default_factory=deque)  # D-channel: frames (with FCS) waiting for read()
    frames_tx: deque = field(default_factory=deque)  # D-channel: frames written, waiting for the hardware
    frames_sent: list = field(default_factory=list)  # D-channel: frames (FCS removed) the hardware sent


class FakeKernel(FakeWorld):
    """The :class:`~drivers.dahdi.kernel.Kernel` calls, served from memory.

    Needs the compiled binding (``binding.require()``): the numbers it answers to
    are the ones the real kernel would see.
    """

    pollable = False  # its descriptors are numbers in a dict: nothing select or epoll could watch

    def __init__(self) -> None:
        self.ffi, self.lib = binding.require()
        self.spans: dict[int, FakeSpan] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.calls: list[tuple] = []  # (ioctl name, channo, int argument or None), in order
        self._files: dict[int, dict[str, Any]] = {}
        self._next_fd = 100
        L = self.lib
        self._ioctl_names = {getattr(L, n): n for n in names.IOCTLS}
        self._sig_codes = {n.removeprefix("DAHDI_SIG_").lower(): getattr(L, n) for n in names.SIGNALLING}
        self._handlers = {
            L.DAHDI_SET_BLOCKSIZE: self._set_blocksize, L.DAHDI_GET_BLOCKSIZE: self._get_blocksize,
            L.DAHDI_SET_BUFINFO: self._set_bufinfo, L.DAHDI_GET_BUFINFO: self._get_bufinfo,
            L.DAHDI_GET_PARAMS: self._get_params, L.DAHDI_SETLAW: self._setlaw, L.DAHDI_HOOK: self._hook,
            L.DAHDI_GETEVENT: self._getevent, L.DAHDI_SPANSTAT: self._spanstat, L.DAHDI_DIAL: self._dial,
            L.DAHDI_DIALING: self._dialing, L.DAHDI_FLUSH: self._flush, L.DAHDI_SETCADENCE: self._setcadence,
            L.DAHDI_GETTONEZONE: self._gettonezone, L.DAHDI_SETTONEZONE: self._settonezone,
            L.DAHDI_ECHOCANCEL_PARAMS: self._echocan, L.DAHDI_GETRXBITS: self._getrxbits,
            L.DAHDI_SETTXBITS: self._settxbits, L.DAHDI_CHANNO: self._channo,
        }

    # --- building the box -------------------------------------------------------------

    def add_span(self, spanno: int, *, name: str = "", desc: str = "", spantype: str = "E1") -> FakeSpan:
        span = FakeSpan(spanno, name or f"FAKE/{spanno}", desc or f"fake {spantype} span {spanno}", spantype)
        self.spans[spanno] = span
        return span

    def add_channel(self, channo: int, spanno: int, sig: str, *, name: str = "") -> FakeChannel:
        if sig not in self._sig_codes:
            raise ValueError(f"signalling {sig!r} unknown; expected one of {sorted(self._sig_codes)}")
        span = self.spans[spanno]
        chanpos = 1 + sum(1 for c in self.channels.values() if c.span is span)
        chan = FakeChannel(channo, span, chanpos, sig, name or f"{span.name}/{chanpos}")
        chan.blocksize = self.lib.DAHDI_DEFAULT_BLOCKSIZE
        chan.numbufs = self.lib.DAHDI_DEFAULT_NUM_BUFS
        self.channels[channo] = chan
        return chan

    @classmethod
    def appliance(cls, *, fxs: int = 6, fxo: int = 2, signalling: str = "pri") -> "FakeKernel":
        """The box's card: span 1 an E1 (channels 1-31, D-channel 16), span 2 the analog ports.

        ``signalling`` "r2": the E1 has cas framing for MFC/R2 instead, channels 1-15
        and 17-31 signalled ``cas`` and no channel 16 (timeslot 16 carries every
        channel's ABCD bits); each sends the idle bits of system.conf (1101) and
        receives an idle R2 line (1001) until the driver and the test set others.
        Phones (``fxoks``) are channels 32 to 31+fxs, lines (``fxsks``) follow.
        """
        if signalling not in ("pri", "r2"):
            raise ValueError(f"signalling {signalling!r} unknown; expected 'pri' or 'r2'")
        k = cls()
        k.add_span(1, name="FAKE-E1/0/1", desc=f"fake E1 span, {'PRI' if signalling == 'pri' else 'MFC/R2'}",
                   spantype="E1")
        for ts in range(1, 32):
            if signalling == "pri":
                k.add_channel(ts, 1, "hardhdlc" if ts == 16 else "clear")
            else:
                chan = k.add_channel(ts, 1, "cas")
                chan.txbits, chan.rxbits = 0b1101, 0b1001
        if signalling == "r2":
            del k.channels[16]  # after the others were added, so that chanpos stays the timeslot
        k.add_span(2, name="FAKE-ANALOG/0", desc="fake analog module", spantype="analog")
        for i in range(fxs + fxo):
            k.add_channel(32 + i, 2, "fxoks" if i < fxs else "fxsks", name=f"FAKE-ANALOG/0/{i}")
        return k

    # --- the Kernel protocol --------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        if path != PATH:
            raise _oserror(errno.ENOENT, path)
        fd = self._next_fd
        self._next_fd += 1
        self._files[fd] = {"chan": None, "nonblock": bool(flags & os.O_NONBLOCK)}
        return fd

    def close(self, fd: int) -> None:
        chan = self._file(fd)["chan"]
        del self._files[fd]
        if chan is not None:  # DAHDI hangs up and resets a channel on its last close
            chan.owner = None
            chan.txstate, chan.timer_ms, chan.dial_buf, chan.dial_ms = "onhook", 0, "", 0
            chan.law, chan.blocksize = 0, self.lib.DAHDI_DEFAULT_BLOCKSIZE
            chan.rx.clear()
            chan.tx.clear()
            chan.frames_rx.clear()
            chan.frames_tx.clear()

    def read(self, fd: int, n: int) -> bytes:
        chan = self._chan(fd)
        if chan.events:
            raise _oserror(self.lib.ELAST, "an event is pending")
        if chan.sig in HDLC_SIGS:
            if not chan.frames_rx:
                raise _oserror(errno.EAGAIN, "no frame received yet")
            return chan.frames_rx.popleft()[:n]
        if len(chan.rx) < chan.blocksize:
            raise _oserror(errno.EAGAIN, "no block received yet")
        data = bytes(chan.rx[:min(n, chan.blocksize)])
        del chan.rx[:chan.blocksize]
        return data

    def write(self, fd: int, data: bytes) -> int:
        chan = self._chan(fd)
        if chan.events:
            raise _oserror(self.lib.ELAST, "an event is pending")
        if chan.sig in HDLC_SIGS:
            if len(data) < 3 or len(data) > chan.blocksize:
                raise _oserror(errno.EINVAL, f"an HDLC frame of {len(data)} bytes (with FCS)")
            if len(chan.frames_tx) >= chan.numbufs:
                raise _oserror(errno.EAGAIN, "all write buffers are full")
            chan.frames_tx.append(bytes(data))
            return len(data)
        if len(chan.tx) + chan.blocksize > chan.numbufs * chan.blocksize:
            raise _oserror(errno.EAGAIN, "all write buffers are full")
        taken = bytes(data[:chan.blocksize])
        chan.tx.extend(taken)
        return len(taken)

    def ioctl(self, fd: int, request: int, arg: object) -> int:
        f = self._file(fd)
        name = self._ioctl_names.get(request)
        if isinstance(arg, int):
            raise _oserror(errno.EFAULT, f"{name or hex(request)} takes a pointer, got the int {arg}")
        if request == self.lib.DAHDI_SPECIFY:
            return self._specify(f, fd, self._int_in(arg))
        chan = self._chan(fd, removed_ok=request == self.lib.DAHDI_GETEVENT)  # REMOVED must be fetchable
        if name is None:
            raise _oserror(errno.ENOTTY, f"request 0x{request:X}")
        return self._handlers[request](chan, f, arg)

    # --- helpers for arguments --------------------------------------------------------------

    def _file(self, fd: int) -> dict[str, Any]:
        if fd not in self._files:
            raise _oserror(errno.EBADF, f"fd {fd}")
        return self._files[fd]

    def _chan(self, fd: int, removed_ok: bool = False) -> FakeChannel:
        chan = self._file(fd)["chan"]
        if chan is None:
            raise _oserror(errno.EINVAL, "DAHDI_SPECIFY a channel first")
        if chan.span.removed and not removed_ok:
            raise _oserror(errno.ENODEV, f"channel {chan.channo} was removed")
        return chan

    def _struct(self, arg: Any, ctype: str) -> Any:
        if len(arg) < self.ffi.sizeof(ctype):
            raise _oserror(errno.EFAULT, f"buffer of {len(arg)} bytes for {ctype}")
        return self.ffi.from_buffer(f"{ctype} *", arg, require_writable=True)

    def _int_in(self, arg: Any) -> int:
        return self._struct(arg, "int")[0]

    def _int_out(self, arg: Any, value: int) -> int:
        self._struct(arg, "int")[0] = value
        return 0

    def _log(self, name: str, chan: FakeChannel | None, value: int | None = None) -> None:
        self.calls.append((name, chan.channo if chan else None, value))

    # --- ioctl handlers: (channel, open file, argument buffer) -> result ------------------

    def _specify(self, f: dict[str, Any], fd: int, channo: int) -> int:
        chan = self.channels.get(channo)
        self._log("DAHDI_SPECIFY", chan, channo)
        if chan is None or f["chan"] is not None:
            raise _oserror(errno.EINVAL, f"DAHDI_SPECIFY {channo}")
        if chan.owner is not None:
            raise _oserror(errno.EBUSY, f"channel {channo} is open")
        chan.owner, f["chan"] = fd, chan
        return 0

    def _set_blocksize(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        size = self._int_in(arg)
        self._log("DAHDI_SET_BLOCKSIZE", chan, size)
        if not 16 <= size <= self.lib.DAHDI_MAX_BLOCKSIZE:
            raise _oserror(errno.EINVAL, f"block size {size}")
        chan.blocksize = size
        chan.rx.clear()
        chan.tx.clear()
        return 0

    def _get_blocksize(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        return self._int_out(arg, chan.blocksize)

    def _set_bufinfo(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        bi = self._struct(arg, "struct dahdi_bufferinfo")
        self._log("DAHDI_SET_BUFINFO", chan, bi.numbufs)
        if not 2 <= bi.numbufs <= self.lib.DAHDI_MAX_NUM_BUFS or not 16 <= bi.bufsize <= self.lib.DAHDI_MAX_BLOCKSIZE:
            raise _oserror(errno.EINVAL, f"{bi.numbufs} buffers of {bi.bufsize}")
        chan.numbufs, chan.blocksize = bi.numbufs, bi.bufsize
        return 0

    def _get_bufinfo(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        bi = self._struct(arg, "struct dahdi_bufferinfo")
        bi.numbufs, bi.bufsize = chan.numbufs, chan.blocksize
        bi.readbufs, bi.writebufs = len(chan.rx) // chan.blocksize, len(chan.tx) // chan.blocksize
        return 0

    def _get_params(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        p = self._struct(arg, "struct dahdi_params")
        self._log("DAHDI_GET_PARAMS", chan, p.channo)
        if p.channo:  # another channel's parameters, by number
            if p.channo not in self.channels:
                raise _oserror(errno.EINVAL, f"no channel {p.channo}")
            chan = self.channels[p.channo]
        p.channo, p.spanno, p.chanpos = chan.channo, chan.span.spanno, chan.chanpos
        p.sigtype = p.sigcap = self._sig_codes[chan.sig]
        p.rxisoffhook = int(chan.rx_offhook)
        p.rxbits, p.txbits, p.curlaw = chan.rxbits, chan.txbits, chan.law
        p.name = chan.name.encode()[:39]
        p.flashtime, p.winktime, p.starttime = FLASH_MS, WINK_MS, START_MS
        p.chan_alarms = chan.span.alarms
        return 0

    def _setlaw(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        law = self._int_in(arg)
        self._log("DAHDI_SETLAW", chan, law)
        if law not in (self.lib.DAHDI_LAW_DEFAULT, self.lib.DAHDI_LAW_MULAW, self.lib.DAHDI_LAW_ALAW):
            raise _oserror(errno.EINVAL, f"law {law}")
        chan.law = law
        return 0

    def _hook(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        L, value = self.lib, self._int_in(arg)
        self._log("DAHDI_HOOK", chan, value)
        if chan.sig not in HOOK_SIGS:
            raise _oserror(errno.EINVAL, f"no hook on a {chan.sig} channel")
        chan.dial_buf, chan.dial_ms = "", 0  # a hook change stops dialing
        state = chan.txstate
        if value in (L.DAHDI_ONHOOK, L.DAHDI_RINGOFF):
            chan.txstate, chan.timer_ms = "onhook", 0
            return 0
        if value == L.DAHDI_OFFHOOK:
            chan.txstate, chan.timer_ms = "offhook", 0
            return 0
        if value in (L.DAHDI_RING, L.DAHDI_START, L.DAHDI_WINK):
            if state != "onhook":
                raise _oserror(errno.EBUSY, f"hook {value} while {state}")
            if value == L.DAHDI_WINK:
                chan.txstate, chan.timer_ms = "wink", WINK_MS
            elif chan.sig.startswith("fxo"):  # a phone port: ring it
                chan.txstate, chan.cadence_pos, chan.timer_ms = "ringon", 0, chan.cadence[0]
                chan.ring_tripped = False
            else:  # a line or trunk: seize it
                chan.txstate, chan.timer_ms = "start", START_MS
        elif value == L.DAHDI_FLASH:
            if state != "offhook":
                raise _oserror(errno.EBUSY, f"flash while {state}")
            chan.txstate, chan.timer_ms = "flash", FLASH_MS
        else:
            raise _oserror(errno.EINVAL, f"hook value {value}")
        if f["nonblock"]:
            raise _oserror(errno.EINPROGRESS, f"hook {value}")
        return 0

    def _getevent(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        return self._int_out(arg, chan.events.popleft() if chan.events else self.lib.DAHDI_EVENT_NONE)

    def _spanstat(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        si = self._struct(arg, "struct dahdi_spaninfo")
        span = chan.span if si.spanno == 0 else self.spans.get(si.spanno)
        if span is None:
            raise _oserror(errno.EINVAL, f"no span {si.spanno}")
        members = [c for c in self.channels.values() if c.span is span]
        si.spanno, si.alarms, si.syncsrc = span.spanno, span.alarms, span.syncsrc
        si.name, si.desc, si.spantype = span.name.encode()[:19], span.desc.encode()[:39], span.spantype.encode()[:5]
        si.numchans = si.totalchans = len(members)
        si.totalspans = len(self.spans)
        for counter, value in span.counters.items():
            setattr(si, counter, value)
        return 0

    def _dial(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        L = self.lib
        do = self._struct(arg, "struct dahdi_dialoperation")
        digits = self.ffi.string(do.dialstr).decode("ascii", "replace")
        ops = {L.DAHDI_DIAL_OP_APPEND: "append", L.DAHDI_DIAL_OP_REPLACE: "replace", L.DAHDI_DIAL_OP_CANCEL: "cancel"}
        self._log("DAHDI_DIAL", chan, do.op)
        if do.op not in ops or chan.sig not in AUDIO_SIGS:
            raise _oserror(errno.EINVAL, f"dial op {do.op} on a {chan.sig} channel")
        chan.dials.append((ops[do.op], digits))
        if do.op == L.DAHDI_DIAL_OP_CANCEL:
            chan.dial_buf, chan.dial_ms = "", 0
            return 0
        if do.op == L.DAHDI_DIAL_OP_APPEND and len(chan.dial_buf) + len(digits) >= L.DAHDI_MAX_DTMF_BUF - 1:
            raise _oserror(errno.EBUSY, "dial buffer full")
        chan.dial_buf = digits if do.op == L.DAHDI_DIAL_OP_REPLACE else chan.dial_buf + digits
        chan.dial_ms = sum(PAUSE_MS if c in "wW" else DIGIT_MS if c.upper() in "0123456789*#ABCD" else 0
                           for c in chan.dial_buf)
        if chan.dial_ms == 0:  # nothing audible to play: done at once
            chan.dial_buf = ""
            chan.events.append(L.DAHDI_EVENT_DIALCOMPLETE)
        return 0

    def _dialing(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        return self._int_out(arg, int(chan.dial_ms > 0))

    def _flush(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        L, what = self.lib, self._int_in(arg)
        self._log("DAHDI_FLUSH", chan, what)
        if what & L.DAHDI_FLUSH_READ:
            chan.rx.clear()
        if what & L.DAHDI_FLUSH_WRITE:
            chan.tx.clear()
        if what & L.DAHDI_FLUSH_EVENT:
            chan.events.clear()
        return 0

    def _setcadence(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        rc = self._struct(arg, "struct dahdi_ring_cadence")
        steps = []
        for ms in rc.ringcadence:
            if ms <= 0:
                break
            steps.append(ms)
        self._log("DAHDI_SETCADENCE", chan, len(steps))
        chan.cadence = tuple(steps) if steps else CN_RING_CADENCE_MS
        return 0

    def _gettonezone(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        return self._int_out(arg, chan.tonezone)

    def _settonezone(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        zone = self._int_in(arg)
        self._log("DAHDI_SETTONEZONE", chan, zone)
        if not 0 <= zone < self.lib.DAHDI_TONE_ZONE_MAX:
            raise _oserror(errno.EINVAL, f"tone zone {zone}")
        chan.tonezone = zone
        return 0

    def _echocan(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        hdr = self._struct(arg, "struct dahdi_echocanparams")
        self._log("DAHDI_ECHOCANCEL_PARAMS", chan, hdr.tap_length)
        if chan.sig not in AUDIO_SIGS:
            raise _oserror(errno.EINVAL, f"no echo canceller on a {chan.sig} channel")
        if hdr.param_count > self.lib.DAHDI_MAX_ECHOCANPARAMS:
            raise _oserror(errno.E2BIG, f"{hdr.param_count} echo canceller parameters")
        head, item = self.ffi.sizeof("struct dahdi_echocanparams"), self.ffi.sizeof("struct dahdi_echocanparam")
        if len(arg) < head + hdr.param_count * item:
            raise _oserror(errno.EFAULT, "echo canceller parameters past the buffer")
        raw = self.ffi.from_buffer(arg)
        params = self.ffi.cast("struct dahdi_echocanparam *", raw + head)
        chan.echocan = None if hdr.tap_length == 0 else (
            hdr.tap_length, {self.ffi.string(params[i].name).decode(): params[i].value for i in range(hdr.param_count)})
        return 0

    def _getrxbits(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        if chan.sig != "cas":
            raise _oserror(errno.EINVAL, f"no CAS bits on a {chan.sig} channel")
        return self._int_out(arg, chan.rxbits)

    def _settxbits(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        if chan.sig != "cas":
            raise _oserror(errno.EINVAL, f"no CAS bits on a {chan.sig} channel")
        chan.txbits = self._int_in(arg)
        return 0

    def _channo(self, chan: FakeChannel, f: dict, arg: Any) -> int:
        return self._int_out(arg, chan.channo)
