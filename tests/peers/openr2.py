"""libopenr2 (Debian libopenr2-dev, LGPL) as the far end of an MFC/R2 E1 channel, in tests only.

openr2 1.3.3 drives a DAHDI channel file descriptor: CAS bits and events by
``ioctl``, 20 ms of A-law audio by ``read``/``write``, its timers by
``gettimeofday``. There is no DAHDI device here, so a small C program (compiled
on first use with ``cc -lopenr2``, cached under the temporary directory by a
hash of its source) defines those four functions itself: the dynamic linker
binds libopenr2's calls to the program's definitions, which serve the channel
from memory (ioctl numbers from ``<dahdi/user.h>``) and pass every other file
descriptor to the kernel. The clock is virtual: each step is exactly 20 ms.

We link to the library and call only its public API (``<openr2.h>``); none of
its code is copied. The program talks to Python over stdin/stdout in lines:

- ``S BITS HEX``: one 20 ms step: our ABCD bits and 160 A-law bytes in; back
  come ``E``/``L`` lines, then ``T BITS HEX NEXT_MS`` (openr2's bits and audio,
  milliseconds to its next timer or -1);
- commands ``C ANI DNIS CATEGORY`` (make a call), ``A MODE`` (accept),
  ``N`` (answer), ``D CAUSE`` (disconnect), ``I`` (set idle), ``B`` (block):
  ``E``/``L`` lines, then ``R RESULT``;
- ``E ...``: openr2's callbacks (offered, accepted, answered, disconnect, end,
  protocol_error, ...); ``L ...``: its log, kept for failure messages.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from tests.tools import require_file, require_tool, skip_or_fail

SILENCE = 0xD5  # A-law code of 0

_SOURCE = r"""
#define _GNU_SOURCE
#include <stddef.h>
#include <openr2.h>
#include <dahdi/user.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static int chanfd = -1;
static long long now_us = 1000000000000LL;
static int rxbits = 0x9, txbits = 0x9, bits_event = 1;  /* DAHDI reports the first state too */
static unsigned char rxbuf[160], txbuf[160];
static int rx_ready = 0, tx_len = 0;

/* --- the fake DAHDI channel: libopenr2's calls on chanfd land here ---------------------- */
int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    tv->tv_sec = now_us / 1000000; tv->tv_usec = now_us % 1000000;
    return 0;
}

int ioctl(int fd, unsigned long req, ...) {
    va_list ap; va_start(ap, req); void *arg = va_arg(ap, void *); va_end(ap);
    if (fd != chanfd) return syscall(SYS_ioctl, fd, req, arg);
    if (req == DAHDI_GETRXBITS) { *(int *)arg = rxbits; return 0; }
    if (req == DAHDI_SETTXBITS) { txbits = *(int *)arg; return 0; }
    if (req == DAHDI_GETEVENT) { *(int *)arg = bits_event ? DAHDI_EVENT_BITSCHANGED : DAHDI_EVENT_NONE; bits_event = 0; return 0; }
    if (req == DAHDI_IOMUX) {
        int want = *(int *)arg, got = 0;
        if ((want & DAHDI_IOMUX_SIGEVENT) && bits_event) got |= DAHDI_IOMUX_SIGEVENT;
        if ((want & DAHDI_IOMUX_READ) && rx_ready) got |= DAHDI_IOMUX_READ;
        if (tx_len < 160) got |= want & (DAHDI_IOMUX_WRITE | DAHDI_IOMUX_WRITEEMPTY);  /* 20 ms of room a step */
        *(int *)arg = got;
        return 0;
    }
    if (req == DAHDI_GET_PARAMS) {
        struct dahdi_params *p = arg; memset(p, 0, sizeof *p);
        p->channo = 1; p->spanno = 1; p->chanpos = 1; p->sigtype = DAHDI_SIG_CAS; p->sigcap = DAHDI_SIG_CAS;
        p->rxbits = rxbits; p->txbits = txbits; p->curlaw = DAHDI_LAW_ALAW;
        return 0;
    }
    if (req == DAHDI_GET_BUFINFO) { struct dahdi_bufferinfo *b = arg; memset(b, 0, sizeof *b); b->numbufs = 2; b->bufsize = 160; return 0; }
    if (req == DAHDI_CHANNO) { *(int *)arg = 1; return 0; }
    return 0;  /* SET_BUFINFO, SETGAINS, SETLAW, ECHOCANCEL, FLUSH, ...: accepted, nothing to do */
}

ssize_t read(int fd, void *buf, size_t n) {
    if (fd != chanfd) return syscall(SYS_read, fd, buf, n);
    if (!rx_ready) { errno = EAGAIN; return -1; }
    size_t m = n < 160 ? n : 160;
    memcpy(buf, rxbuf, m); rx_ready = 0;
    return m;
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (fd != chanfd) return syscall(SYS_write, fd, buf, n);
    size_t m = n > (size_t)(160 - tx_len) ? (size_t)(160 - tx_len) : n;
    memcpy(txbuf + tx_len, buf, m); tx_len += m;
    return n;
}

/* --- openr2's callbacks, as lines ------------------------------------------------------- */
static void logline(const char *fmt, va_list ap) {
    char buf[1024]; vsnprintf(buf, sizeof buf, fmt, ap);
    for (char *p = buf; *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
    printf("L %lld %s\n", now_us / 1000, buf);
}
static void ctx_log(openr2_context_t *c, openr2_log_level_t l, const char *fmt, va_list ap) { (void)c; (void)l; logline(fmt, ap); }
static void chan_log(openr2_chan_t *c, openr2_log_level_t l, const char *fmt, va_list ap) { (void)c; (void)l; logline(fmt, ap); }
static const char *orempty(const char *s) { return (s && *s) ? s : "-"; }
static void on_init(openr2_chan_t *c) { (void)c; printf("E init\n"); }
static void on_offered(openr2_chan_t *c, const char *ani, const char *dnis, openr2_calling_party_category_t cat) {
    (void)c; printf("E offered %s %s %d\n", orempty(ani), orempty(dnis), (int)cat);
}
static void on_accepted(openr2_chan_t *c, openr2_call_mode_t m) { (void)c; printf("E accepted %d\n", (int)m); }
static void on_answered(openr2_chan_t *c) { (void)c; printf("E answered\n"); }
static void on_disconnect(openr2_chan_t *c, openr2_call_disconnect_cause_t cause) { (void)c; printf("E disconnect %d\n", (int)cause); }
static void on_end(openr2_chan_t *c) { (void)c; printf("E end\n"); }
static void on_read(openr2_chan_t *c, const unsigned char *b, int n) { (void)c; (void)b; (void)n; }
static void on_os_error(openr2_chan_t *c, int e) { (void)c; printf("E os_error %d\n", e); }
static void on_alarm(openr2_chan_t *c, int a) { (void)c; printf("E alarm %d\n", a); }
static void on_proto_error(openr2_chan_t *c, openr2_protocol_error_t e) { (void)c; printf("E protocol_error %d\n", (int)e); }
static void on_blocked(openr2_chan_t *c) { (void)c; printf("E blocked\n"); }
static void on_idle(openr2_chan_t *c) { (void)c; printf("E idle\n"); }
static int on_dnis(openr2_chan_t *c, char d) { (void)c; printf("E dnis_digit %c\n", d); return 1; }
static void on_ani(openr2_chan_t *c, char d) { (void)c; printf("E ani_digit %c\n", d); }
static void on_billing(openr2_chan_t *c) { (void)c; printf("E billing_pulse\n"); }

static void hex_in(const char *s, unsigned char *out) {
    for (int i = 0; i < 160; i++) { unsigned v = 0xD5; if (s && sscanf(s + 2 * i, "%2x", &v) != 1) v = 0xD5; out[i] = (unsigned char)v; }
}

int main(int argc, char **argv) {
    /* argv: VARIANT MAX_ANI MAX_DNIS ANI_FIRST SKIP_CATEGORY IMMEDIATE_ACCEPT MF_BACK_TIMEOUT_MS DOUBLE_ANSWER [FILE] */
    if (argc != 9 && argc != 10) {
        fprintf(stderr, "usage: %s VARIANT MAX_ANI MAX_DNIS ANI_FIRST SKIP_CAT IMMEDIATE MF_BACK_MS DOUBLE [R2PROTO_FILE]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    openr2_event_interface_t ev;
    memset(&ev, 0, sizeof ev);
    ev.on_call_init = on_init; ev.on_call_offered = on_offered; ev.on_call_accepted = on_accepted;
    ev.on_call_answered = on_answered; ev.on_call_disconnect = on_disconnect; ev.on_call_end = on_end;
    ev.on_call_read = on_read; ev.on_hardware_alarm = on_alarm; ev.on_os_error = on_os_error;
    ev.on_protocol_error = on_proto_error; ev.on_line_blocked = on_blocked; ev.on_line_idle = on_idle;
    ev.on_context_log = ctx_log; ev.on_dnis_digit_received = on_dnis; ev.on_ani_digit_received = on_ani;
    ev.on_billing_pulse_received = on_billing;
    chanfd = open("/dev/null", O_RDWR);
    openr2_variant_t variant = openr2_proto_get_variant(argv[1]);
    if (variant == OR2_VAR_UNKNOWN) { fprintf(stderr, "unknown variant %s\n", argv[1]); return 2; }
    openr2_context_t *ctx = openr2_context_new(NULL, &ev, NULL, variant, atoi(argv[2]), atoi(argv[3]));
    if (!ctx) { fprintf(stderr, "openr2_context_new failed\n"); return 1; }
    openr2_context_set_log_level(ctx, OR2_LOG_ALL);
    openr2_context_set_ani_first(ctx, atoi(argv[4]));
    openr2_context_set_skip_category_request(ctx, atoi(argv[5]));
    openr2_context_set_immediate_accept(ctx, atoi(argv[6]));
    if (atoi(argv[7]) > 0) openr2_context_set_mf_back_timeout(ctx, atoi(argv[7]));
    openr2_context_set_double_answer(ctx, atoi(argv[8]));
    if (argc == 10 && openr2_context_configure_from_advanced_file(ctx, argv[9])) { fprintf(stderr, "bad file %s\n", argv[9]); return 1; }
    openr2_chan_t *ch = openr2_chan_new_from_fd(ctx, chanfd, NULL, NULL);
    if (!ch) { fprintf(stderr, "openr2_chan_new_from_fd: %s\n", openr2_context_error_string(openr2_context_get_last_error(ctx))); return 1; }
    openr2_chan_set_logging_func(ch, chan_log);
    openr2_chan_set_log_level(ch, OR2_LOG_ALL);
    openr2_chan_enable_read(ch);
    openr2_chan_set_idle(ch);
    openr2_chan_process_event(ch);  /* reads the far end's idle bits (the pending BITSCHANGED) */
    printf("R 0\n");
    fflush(stdout);
    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        int rc = 0;
        char a[128], b[128];
        int n;
        switch (line[0]) {
        case 'S': {
            char *hex = NULL;
            int bits = (int)strtol(line + 2, &hex, 16);
            if (hex && *hex == ' ') hex++;
            if (bits != rxbits) { rxbits = bits; bits_event = 1; }
            hex_in(hex, rxbuf);
            rx_ready = 1; tx_len = 0;
            now_us += 20000;
            openr2_chan_process_event(ch);
            rx_ready = 0;
            for (int i = tx_len; i < 160; i++) txbuf[i] = 0xD5;
            printf("T %x ", txbits);
            for (int i = 0; i < 160; i++) printf("%02x", txbuf[i]);
            printf(" %d\n", openr2_chan_get_time_to_next_event(ch));
            fflush(stdout);
            continue;
        }
        case 'C':
            if (sscanf(line + 2, "%127s %127s %d", a, b, &n) != 3) { rc = -100; break; }
            rc = openr2_chan_make_call(ch, strcmp(a, "-") ? a : "", b, (openr2_calling_party_category_t)n);
            break;
        case 'A': rc = openr2_chan_accept_call(ch, (openr2_call_mode_t)atoi(line + 2)); break;
        case 'N': rc = openr2_chan_answer_call(ch); break;
        case 'D': rc = openr2_chan_disconnect_call(ch, (openr2_call_disconnect_cause_t)atoi(line + 2)); break;
        case 'I': rc = openr2_chan_set_idle(ch); break;
        case 'B': rc = openr2_chan_set_blocked(ch); break;
        case 'Q': fflush(stdout); return 0;
        default: rc = -101;
        }
        printf("R %d\n", rc);
        fflush(stdout);
    }
    return 0;
}
"""

# openr2's enums (r2proto.h), by position
CAUSES = ["busy_number", "network_congestion", "unallocated_number", "out_of_order", "unspecified", "no_answer",
          "normal_clearing", "collect_call_rejected", "forced_release", "number_changed"]
CATEGORIES = ["national_subscriber", "national_priority_subscriber", "international_subscriber",
              "international_priority_subscriber", "collect_call", "unknown", "test_equipment"]
MODES = ["with_charge", "no_charge", "special", "unknown"]


@dataclass
class PeerEvent:
    """One openr2 callback: ``name`` and, by event, ani/dnis/category, cause, mode or a number."""

    name: str
    ani: str = ""
    dnis: str = ""
    category: str = ""
    cause: str = ""
    mode: str = ""
    value: str = ""


def _build() -> str:
    """Path of the compiled peer program; skip (or fail under CI) without cc, openr2 or the DAHDI header."""
    cc = require_tool("cc")
    require_file("/usr/include/openr2.h", "libopenr2-dev")
    require_file("/usr/include/dahdi/user.h", "dahdi-source")
    digest = hashlib.sha256(_SOURCE.encode()).hexdigest()[:16]
    where = os.path.join(tempfile.gettempdir(), f"appliance-openr2-peer-{digest}")
    exe = os.path.join(where, "openr2-peer")
    if os.path.exists(exe):
        return exe
    build = tempfile.mkdtemp(prefix="openr2-peer-build-")
    try:
        src = os.path.join(build, "peer.c")
        with open(src, "w") as f:
            f.write(_SOURCE)
        res = subprocess.run([cc, "-O1", "-o", os.path.join(build, "openr2-peer"), src, "-rdynamic", "-lopenr2"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            skip_or_fail(f"cannot build the openr2 peer: {res.stderr.strip()[:2000]}")
        try:
            os.rename(build, where)  # atomic: two test processes may build at once; the loser's copy goes
        except OSError:
            if not os.path.exists(exe):
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return exe


class OpenR2Peer:
    """libopenr2 on one E1 channel (``variant`` as openr2 names it: "CN" is China), stepped 20 ms at a time.

    ``step(bits, alaw)`` gives openr2 our ABCD bits and 160 A-law bytes and returns its own;
    its callbacks collect in ``events``, its log in ``log``.
    """

    def __init__(self, variant: str = "CN", max_ani: int = 12, max_dnis: int = 4, *, ani_first: bool = False,
                 skip_category: bool = False, immediate_accept: bool = False, mf_back_timeout_ms: int = -1,
                 double_answer: bool = False, overrides: dict[str, str] | None = None) -> None:
        exe = _build()
        args = [exe, variant, str(max_ani), str(max_dnis), str(int(ani_first)), str(int(skip_category)),
                str(int(immediate_accept)), str(mf_back_timeout_ms), str(int(double_answer))]
        self._conf = None
        if overrides:  # openr2's advanced protocol file (doc/r2proto.conf): tone and timer overrides
            fd, self._conf = tempfile.mkstemp(prefix="openr2-peer-", suffix=".conf")
            with os.fdopen(fd, "w") as f:
                f.write("".join(f"{k}={v}\n" for k, v in overrides.items()))
            args.append(self._conf)
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, bufsize=1)
        self.events: list[PeerEvent] = []
        self.log: list[str] = []
        self.tx_bits = 0x9
        self.next_timer_ms = -1
        self._until("R")

    # --- the line ----------------------------------------------------------------------------
    def step(self, rx_bits: int, rx_alaw: bytes | None = None) -> tuple[int, bytes]:
        """One 20 ms tick: our ``rx_bits`` (ABCD nibble) and audio in; openr2's bits and audio out."""
        audio = bytes(rx_alaw) if rx_alaw is not None else bytes([SILENCE]) * 160
        if len(audio) != 160:
            raise ValueError(f"a step carries 160 A-law bytes, got {len(audio)}")
        self._send(f"S {rx_bits & 0xF:x} {audio.hex()}")
        _, bits, hexaudio, next_ms = self._until("T").split(" ")
        self.tx_bits, self.next_timer_ms = int(bits, 16), int(next_ms)
        return self.tx_bits, bytes.fromhex(hexaudio)

    # --- commands ----------------------------------------------------------------------------
    def make_call(self, ani: str, dnis: str, category: str = "national_subscriber") -> int:
        return self._command(f"C {ani or '-'} {dnis} {CATEGORIES.index(category)}")

    def accept(self, mode: str = "with_charge") -> int:
        return self._command(f"A {MODES.index(mode)}")

    def answer(self) -> int:
        return self._command("N")

    def disconnect(self, cause: str = "normal_clearing") -> int:
        return self._command(f"D {CAUSES.index(cause)}")

    def set_idle(self) -> int:
        return self._command("I")

    def block(self) -> int:
        return self._command("B")

    def seen(self, name: str) -> PeerEvent | None:
        return next((e for e in self.events if e.name == name), None)

    def log_text(self, last: int = 80) -> str:
        return "\n".join(self.log[-last:])

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._send("Q")
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            f.close()
        if self._conf:
            os.unlink(self._conf)
            self._conf = None

    # --- plumbing ----------------------------------------------------------------------------
    def _command(self, line: str) -> int:
        self._send(line)
        return int(self._until("R").split(" ")[1])

    def _send(self, line: str) -> None:
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def _until(self, kind: str) -> str:
        """Read lines, keeping events and log, up to the first line of ``kind``; return that line."""
        while True:
            line = self._proc.stdout.readline()
            if not line:
                err = self._proc.stderr.read()
                raise RuntimeError(f"the openr2 peer exited ({self._proc.wait()}): {err.strip()}\n{self.log_text()}")
            line = line.rstrip("\n")
            if line.startswith(kind + " ") or line == kind:
                return line
            if line.startswith("L "):
                self.log.append(line[2:])
            elif line.startswith("E "):
                self.events.append(_event(line[2:].split(" ")))


def _event(parts: list[str]) -> PeerEvent:
    name, args = parts[0], parts[1:]
    if name == "offered":
        ani, dnis, cat = args
        return PeerEvent(name, ani="" if ani == "-" else ani, dnis="" if dnis == "-" else dnis,
                         category=CATEGORIES[int(cat)] if 0 <= int(cat) < len(CATEGORIES) else cat)
    if name == "disconnect":
        i = int(args[0])
        return PeerEvent(name, cause=CAUSES[i] if 0 <= i < len(CAUSES) else args[0])
    if name == "accepted":
        i = int(args[0])
        return PeerEvent(name, mode=MODES[i] if 0 <= i < len(MODES) else args[0])
    return PeerEvent(name, value=" ".join(args))
