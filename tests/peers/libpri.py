"""libpri (Debian libpri-dev, GPL) as the far end of our PRI D-channel, in tests only.

We link to the library and never copy from it: it is the ISDN stack inside
Asterisk, so a call that libpri accepts is one that real exchanges and PBXs
accept. A small C shim, compiled with cffi's API mode on first use (the struct
layouts come from the installed ``libpri.h``), flattens libpri's event union
into one plain struct.

The D-channel between us is a ``SOCK_SEQPACKET`` socket pair, so every write
is one HDLC frame, as on DAHDI's D-channel; libpri writes two FCS bytes after
each frame and drops two from each frame it reads, as DAHDI's HDLC channels
do, so ``send_frame``/``frames`` add and strip them. libpri keeps its own
timers on the real clock.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import select
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass

from tests.tools import require_file, skip_or_fail

HEADER = "/usr/include/libpri.h"
FCS = b"\0\0"  # libpri and DAHDI carry two FCS bytes with each frame; the hardware fills in the real ones

_CDEF = """
struct pri;
typedef struct q931_call q931_call;
struct peer_event {
    int e;
    int channel;
    int cause;
    int callingpres;
    int complete;
    int progress;
    q931_call *call;
    char calling[64];
    char called[64];
    char text[256];
};
struct pri *peer_new(int fd, int network);
int peer_event_take(struct pri *pri, int from_timer, struct peer_event *out);
long peer_next_ms(struct pri *pri);
int peer_setup(struct pri *pri, q931_call *call, int channel, int exclusive, const char *called,
               const char *calling, int pres);
q931_call *pri_new_call(struct pri *pri);
int pri_acknowledge(struct pri *pri, q931_call *call, int channel, int info);
int pri_proceeding(struct pri *pri, q931_call *c, int channel, int info);
int pri_answer(struct pri *pri, q931_call *call, int channel, int nonisdn);
int pri_hangup(struct pri *pri, q931_call *call, int cause);
int pri_reset(struct pri *pri, int channel);
int pri_set_timer(struct pri *pri, int timer, int value);
int pri_timer2idx(const char *timer_name);
void pri_destroycall(struct pri *pri, q931_call *call);
char *peer_log(void);
void pri_set_debug(struct pri *pri, int debug);
"""

_SOURCE = r"""
#include <libpri.h>
#include <string.h>
#include <stdio.h>
#include <sys/time.h>

struct peer_event {
    int e; int channel; int cause; int callingpres; int complete; int progress;
    q931_call *call; char calling[64]; char called[64]; char text[256];
};

static char peer_log_buf[1 << 20];
static void peer_message(struct pri *pri, char *s) {
    (void)pri;
    size_t used = strlen(peer_log_buf);
    if (used + strlen(s) + 1 < sizeof(peer_log_buf)) strcat(peer_log_buf, s);
}
char *peer_log(void) { return peer_log_buf; }

struct pri *peer_new(int fd, int network) {
    pri_set_message(peer_message);
    pri_set_error(peer_message);
    return pri_new(fd, network ? PRI_NETWORK : PRI_CPE, PRI_SWITCH_EUROISDN_E1);
}

static void copy(char *dst, const char *src, size_t n) { strncpy(dst, src, n - 1); dst[n - 1] = 0; }

int peer_event_take(struct pri *pri, int from_timer, struct peer_event *out) {
    pri_event *ev = from_timer ? pri_schedule_run(pri) : pri_check_event(pri);
    memset(out, 0, sizeof(*out));
    if (!ev) return 0;
    out->e = ev->e;
    switch (ev->e) {
    case PRI_EVENT_RING:
        out->channel = ev->ring.channel; out->call = ev->ring.call;
        out->callingpres = ev->ring.callingpres; out->complete = ev->ring.complete;
        copy(out->calling, ev->ring.callingnum, sizeof(out->calling));
        copy(out->called, ev->ring.callednum, sizeof(out->called));
        break;
    case PRI_EVENT_HANGUP: case PRI_EVENT_HANGUP_REQ: case PRI_EVENT_HANGUP_ACK:
        out->channel = ev->hangup.channel; out->call = ev->hangup.call; out->cause = ev->hangup.cause;
        break;
    case PRI_EVENT_RINGING:
        out->channel = ev->ringing.channel; out->call = ev->ringing.call; out->progress = ev->ringing.progress;
        break;
    case PRI_EVENT_ANSWER:
        out->channel = ev->answer.channel; out->call = ev->answer.call;
        break;
    case PRI_EVENT_PROCEEDING:
        out->channel = ev->proceeding.channel; out->call = ev->proceeding.call;
        break;
    case PRI_EVENT_RESTART:
        out->channel = ev->restart.channel;
        break;
    case PRI_EVENT_RESTART_ACK:
        out->channel = ev->restartack.channel;
        break;
    case PRI_EVENT_CONFIG_ERR:
        copy(out->text, ev->err.err, sizeof(out->text));
        break;
    }
    return 1;
}

long peer_next_ms(struct pri *pri) {
    struct timeval *tv = pri_schedule_next(pri), now;
    if (!tv) return -1;
    gettimeofday(&now, NULL);
    long ms = (tv->tv_sec - now.tv_sec) * 1000 + (tv->tv_usec - now.tv_usec) / 1000;
    return ms < 0 ? 0 : ms;
}

int peer_setup(struct pri *pri, q931_call *call, int channel, int exclusive, const char *called,
               const char *calling, int pres) {
    struct pri_sr *sr = pri_sr_new();
    int res;
    pri_sr_set_channel(sr, channel, exclusive, 0);
    pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, PRI_LAYER_1_ALAW);
    pri_sr_set_called(sr, (char *)called, PRI_NATIONAL_ISDN, 1);
    if (calling) pri_sr_set_caller(sr, (char *)calling, NULL, PRI_NATIONAL_ISDN, pres);
    res = pri_setup(pri, call, sr);
    pri_sr_free(sr);
    return res;
}
"""

EVENTS = {1: "dchan_up", 2: "dchan_down", 3: "restart", 4: "config_err", 5: "ring", 6: "hangup", 7: "ringing",
          8: "answer", 9: "hangup_ack", 10: "restart_ack", 11: "facility", 12: "info", 13: "proceeding",
          14: "setup_ack", 15: "hangup_req", 16: "notify", 17: "progress", 27: "connect_ack"}
PRES = {"allowed": 0x00, "restricted": 0x20, "unavailable": 0x43}


@dataclass
class PeerEvent:
    name: str
    channel: int = 0  # B-channel number (timeslot), libpri's span and flag bits removed
    cause: int = 0
    call: object = None  # libpri's q931_call pointer, to pass back
    calling: str = ""
    called: str = ""
    callingpres: int = 0
    complete: bool = False
    text: str = ""


def _load():
    require_file(HEADER, "libpri-dev")
    digest = hashlib.sha256((_CDEF + _SOURCE + sys.version).encode()).hexdigest()[:16]
    where = os.path.join(tempfile.gettempdir(), f"appliance-libpri-peer-{digest}")
    name = "_libpri_peer"
    if not os.path.isdir(where):
        import cffi
        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        ffi.set_source(name, _SOURCE, libraries=["pri"])
        build = tempfile.mkdtemp(prefix="libpri-peer-build-")
        try:
            ffi.compile(tmpdir=build, verbose=False)
            os.rename(build, where)  # atomic: two test processes may build at once
        except OSError:
            if not os.path.isdir(where):
                shutil.rmtree(build, ignore_errors=True)
                skip_or_fail("cannot build the libpri peer (a C compiler and Python.h are needed)")
            shutil.rmtree(build, ignore_errors=True)
    so = next(f for f in os.listdir(where) if f.startswith(name) and f.endswith(".so"))
    spec = importlib.util.spec_from_file_location(name, os.path.join(where, so))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_module = None


class LibpriPeer:
    """libpri as the network (``network=True``) or as the user side of a EuroISDN E1 PRI."""

    def __init__(self, network: bool, timers_ms: dict[str, int] | None = None) -> None:
        global _module
        _module = _module or _load()
        self.ffi, self.lib = _module.ffi, _module.lib
        self._ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._theirs = theirs
        self._ours.setblocking(False)
        self.pri = self.lib.peer_new(theirs.fileno(), int(network))
        if self.pri == self.ffi.NULL:
            raise RuntimeError("libpri refused to start: " + self.log())
        for timer, ms in (timers_ms or {}).items():
            self.lib.pri_set_timer(self.pri, self.lib.pri_timer2idx(timer.encode()), ms)
        self._ev = self.ffi.new("struct peer_event *")
        self._freed: set[int] = set()  # calls completed with pri_hangup

    # --- the D-channel --------------------------------------------------------------
    def send_frame(self, frame: bytes) -> None:
        """Give libpri one frame of ours (without FCS)."""
        self._ours.send(frame + FCS)

    def frames(self) -> list[bytes]:
        """The frames libpri sent since the last call, FCS removed."""
        out = []
        while True:
            try:
                out.append(self._ours.recv(4096)[:-2])
            except BlockingIOError:
                return out

    # --- libpri's work ----------------------------------------------------------------
    def run(self) -> list[PeerEvent]:
        """Let libpri read every frame waiting for it and run its due timers; its events, in order.

        A "hangup" (the call's RELEASE arrived) is completed at once with ``pri_hangup``,
        which sends RELEASE COMPLETE and frees the call, as Asterisk's chan_dahdi does.
        """
        events = []
        while select.select([self._theirs], [], [], 0)[0]:
            events += self._take(False)
        while self.lib.peer_next_ms(self.pri) == 0:
            got = self._take(True)
            if not got and self.lib.peer_next_ms(self.pri) == 0:
                break
            events += got
        for ev in events:
            key = int(self.ffi.cast("uintptr_t", ev.call)) if ev.call is not None else None
            if ev.name == "ring":
                self._freed.discard(key)  # libpri reuses a freed call's memory
            elif ev.name == "hangup" and key is not None and key not in self._freed:
                self._freed.add(key)  # a second HANGUP for the same call must not free it twice
                self.lib.pri_hangup(self.pri, ev.call, ev.cause or 16)
        return events

    def next_timer_s(self) -> float | None:
        ms = self.lib.peer_next_ms(self.pri)
        return None if ms < 0 else ms / 1000

    def _take(self, from_timer: bool) -> list[PeerEvent]:
        if not self.lib.peer_event_take(self.pri, int(from_timer), self._ev):
            return []
        e = self._ev
        name = EVENTS.get(e.e, f"event {e.e}")
        return [PeerEvent(name, e.channel & 0xFF, e.cause, e.call if e.call != self.ffi.NULL else None,
                          self.ffi.string(e.calling).decode(), self.ffi.string(e.called).decode(), e.callingpres,
                          bool(e.complete), self.ffi.string(e.text).decode(errors="replace"))]

    # --- calls --------------------------------------------------------------------------
    def call(self, channel: int, called: str, calling: str | None = None, presentation: str = "allowed",
             exclusive: bool = True):
        """Send a SETUP on B-channel ``channel``; the call, to pass to the other methods."""
        c = self.lib.pri_new_call(self.pri)
        self._freed.discard(int(self.ffi.cast("uintptr_t", c)))
        res = self.lib.peer_setup(self.pri, c, channel, int(exclusive), called.encode(),
                                  calling.encode() if calling is not None else self.ffi.NULL, PRES[presentation])
        if res:
            raise RuntimeError(f"libpri refused the SETUP ({res}): " + self.log())
        return c

    def proceeding(self, call, channel: int) -> None:
        self.lib.pri_proceeding(self.pri, call, channel, 0)

    def alerting(self, call, channel: int, inband: bool = True) -> None:
        self.lib.pri_acknowledge(self.pri, call, channel, int(inband))

    def answer(self, call, channel: int) -> None:
        self.lib.pri_answer(self.pri, call, channel, 0)

    def hangup(self, call, cause: int = 16) -> None:
        self.lib.pri_hangup(self.pri, call, cause)

    def reset(self, channel: int) -> None:
        """Send RESTART for one B-channel (libpri's ``pri_restart`` puts nothing on the wire)."""
        self.lib.pri_reset(self.pri, channel)

    def log(self) -> str:
        return self.ffi.string(self.lib.peer_log()).decode(errors="replace")

    def close(self) -> None:
        self._ours.close()
        self._theirs.close()  # libpri's context is left to the process: it has no destructor worth calling
