"""spandsp (libspandsp2, LGPL) as a peer in tests and benchmarks, through cffi's ABI mode.

We only link to the shared library at run time (no compiler, no copied code):
its DTMF generator and receiver, its ADSI/caller-ID generator and receiver, its
MFC/R2 tones and its V.21 FSK modems with HDLC give an independent
implementation to check ours against.
"""

from __future__ import annotations

import ctypes.util

import numpy as np

from tests.tools import skip_or_fail

_CDEF = """
typedef struct dtmf_tx_state_s dtmf_tx_state_t;
typedef struct dtmf_rx_state_s dtmf_rx_state_t;
typedef struct adsi_tx_state_s adsi_tx_state_t;
typedef struct adsi_rx_state_s adsi_rx_state_t;
typedef void (*digits_rx_callback_t)(void *user_data, const char *digits, int len);
typedef void (*put_msg_func_t)(void *user_data, const uint8_t *msg, int len);

dtmf_tx_state_t *dtmf_tx_init(dtmf_tx_state_t *s);
int dtmf_tx_put(dtmf_tx_state_t *s, const char *digits, int len);
void dtmf_tx_set_level(dtmf_tx_state_t *s, int level, int twist);
void dtmf_tx_set_timing(dtmf_tx_state_t *s, int on_time, int off_time);
int dtmf_tx(dtmf_tx_state_t *s, int16_t amp[], int max_samples);
int dtmf_tx_free(dtmf_tx_state_t *s);

dtmf_rx_state_t *dtmf_rx_init(dtmf_rx_state_t *s, digits_rx_callback_t callback, void *user_data);
void dtmf_rx_parms(dtmf_rx_state_t *s, int filter_dialtone, int twist, int reverse_twist, int threshold);
int dtmf_rx(dtmf_rx_state_t *s, const int16_t amp[], int samples);
size_t dtmf_rx_get(dtmf_rx_state_t *s, char *digits, int max);
int dtmf_rx_free(dtmf_rx_state_t *s);

adsi_tx_state_t *adsi_tx_init(adsi_tx_state_t *s, int standard);
void adsi_tx_set_preamble(adsi_tx_state_t *s, int preamble_len, int preamble_ones_len,
                          int postamble_ones_len, int stop_bits);
int adsi_tx(adsi_tx_state_t *s, int16_t amp[], int max_len);
int adsi_tx_put_message(adsi_tx_state_t *s, const uint8_t *msg, int len);
int adsi_add_field(adsi_tx_state_t *s, uint8_t *msg, int len, uint8_t field_type,
                   const uint8_t *field_body, int field_len);
int adsi_tx_free(adsi_tx_state_t *s);

adsi_rx_state_t *adsi_rx_init(adsi_rx_state_t *s, int standard, put_msg_func_t put_msg, void *user_data);
int adsi_rx(adsi_rx_state_t *s, const int16_t amp[], int len);
int adsi_rx_free(adsi_rx_state_t *s);
"""

# adsi.h: ADSI_STANDARD_CLASS is Bellcore/Telcordia GR-30 FSK (what China's YD/T 1277 follows);
# ADSI_STANDARD_CLIP_DTMF is caller ID sent as DTMF digits.
ADSI_STANDARD_CLASS = 1
ADSI_STANDARD_CLIP = 2
ADSI_STANDARD_CLIP_DTMF = 5

_lib = None
_ffi = None


def load():
    """(ffi, lib) for libspandsp; raises OSError when the library is not installed."""
    global _lib, _ffi
    if _lib is None:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        name = ctypes.util.find_library("spandsp") or "libspandsp.so.2"
        _lib, _ffi = ffi.dlopen(name), ffi
    return _ffi, _lib


def require_spandsp():
    """(ffi, lib); skip the test without libspandsp, or fail it when ``CI=true``."""
    try:
        return load()
    except OSError as exc:
        skip_or_fail(f"libspandsp is not installed (.ci/run installs libspandsp-dev): {exc}")


def dtmf_tx(digits: str, level_dbm0: int = -10, twist_db: int = 0, on_ms: int = 100, off_ms: int = 100) -> np.ndarray:
    """spandsp's DTMF generator: ``digits`` with the low tone at ``level_dbm0``, int16 at 8 kHz.

    spandsp's ``twist`` puts the high tone at ``level_dbm0 + twist_db`` (checked by measurement).
    """
    ffi, lib = require_spandsp()
    s = lib.dtmf_tx_init(ffi.NULL)
    try:
        lib.dtmf_tx_set_level(s, int(level_dbm0), int(twist_db))
        lib.dtmf_tx_set_timing(s, int(on_ms), int(off_ms))
        out = []
        pending = digits.encode("ascii")
        buf = np.zeros(1600, np.int16)
        ptr = ffi.cast("int16_t *", ffi.from_buffer(buf))
        while True:
            if pending:
                taken = len(pending) if lib.dtmf_tx_put(s, pending, len(pending)) == 0 else 0
                pending = pending[taken:] if taken else pending
            n = lib.dtmf_tx(s, ptr, buf.size)
            if n <= 0 and not pending:
                break
            out.append(buf[:n].copy())
        return np.concatenate(out) if out else np.zeros(0, np.int16)
    finally:
        lib.dtmf_tx_free(s)


class DtmfRx:
    """spandsp's DTMF receiver for one channel; ``process`` feeds int16 audio, ``digits`` collects keys."""

    def __init__(self, twist_db: int = 8, reverse_twist_db: int = 4, threshold_dbm0: int = -99,
                 filter_dialtone: bool = False):
        self.ffi, self.lib = require_spandsp()
        self._s = self.lib.dtmf_rx_init(self.ffi.NULL, self.ffi.NULL, self.ffi.NULL)
        # threshold -99 keeps spandsp's own default; filter_dialtone turns on its notch for 350/440 Hz
        self.lib.dtmf_rx_parms(self._s, int(filter_dialtone), int(twist_db), int(reverse_twist_db),
                               int(threshold_dbm0))
        self._buf = self.ffi.new("char[]", 129)
        self.digits = ""

    def process(self, x: np.ndarray) -> str:
        x = np.ascontiguousarray(x, np.int16)
        self.lib.dtmf_rx(self._s, self.ffi.cast("int16_t *", self.ffi.from_buffer(x)), x.size)
        n = self.lib.dtmf_rx_get(self._s, self._buf, 128)
        new = self.ffi.string(self._buf, n).decode("ascii") if n else ""
        self.digits += new
        return new

    def close(self) -> None:
        if self._s is not None:
            self.lib.dtmf_rx_free(self._s)
            self._s = None

    def __del__(self):
        self.close()


def spandsp_detect(x: np.ndarray, **parms) -> str:
    """All keys spandsp's receiver hears in one int16 signal."""
    rx = DtmfRx(**parms)
    try:
        for i in range(0, x.size, 160):
            rx.process(x[i:i + 160])
        return rx.digits
    finally:
        rx.close()


def adsi_tx(message: bytes, standard: int = ADSI_STANDARD_CLASS, tail_samples: int = 800) -> np.ndarray:
    """spandsp's caller-ID (ADSI) transmitter sending one complete ``message``, int16 at 8 kHz.

    For FSK standards ``message`` is the whole message (type, length, parameters;
    spandsp adds the checksum and the channel seizure and mark preamble); for
    ``ADSI_STANDARD_CLIP_DTMF`` it is the digit string.
    """
    ffi, lib = require_spandsp()
    s = lib.adsi_tx_init(ffi.NULL, int(standard))
    try:
        if lib.adsi_tx_put_message(s, message, len(message)) < 0:
            raise ValueError(f"spandsp refused the message {message!r}")
        buf = np.zeros(1600, np.int16)
        ptr = ffi.cast("int16_t *", ffi.from_buffer(buf))
        out = []
        while True:
            n = lib.adsi_tx(s, ptr, buf.size)
            if n <= 0:
                break
            out.append(buf[:n].copy())
            if n < buf.size:
                break
        out.append(np.zeros(tail_samples, np.int16))
        return np.concatenate(out)
    finally:
        lib.adsi_tx_free(s)


def adsi_rx(x: np.ndarray, standard: int = ADSI_STANDARD_CLASS) -> list[bytes]:
    """Messages spandsp's caller-ID receiver decodes from int16 audio at 8 kHz."""
    ffi, lib = require_spandsp()
    got: list[bytes] = []

    @ffi.callback("void(void *, const uint8_t *, int)")
    def put_msg(_user, msg, length):
        if length > 0:
            got.append(bytes(ffi.buffer(msg, length)))

    s = lib.adsi_rx_init(ffi.NULL, int(standard), put_msg, ffi.NULL)
    try:
        x = np.ascontiguousarray(x, np.int16)
        lib.adsi_rx(s, ffi.cast("int16_t *", ffi.from_buffer(x)), x.size)
        return got
    finally:
        lib.adsi_rx_free(s)


# --- MFC/R2 tones (bell_r2_mf.h): a second cffi declaration set, so the one above stays as it is ------------

_R2_CDEF = """
typedef struct r2_mf_tx_state_s r2_mf_tx_state_t;
typedef struct r2_mf_rx_state_s r2_mf_rx_state_t;
typedef void (*tone_report_func_t)(void *user_data, int code, int level, int delay);
r2_mf_tx_state_t *r2_mf_tx_init(r2_mf_tx_state_t *s, int fwd);
int r2_mf_tx_put(r2_mf_tx_state_t *s, char digit);
int r2_mf_tx(r2_mf_tx_state_t *s, int16_t amp[], int samples);
int r2_mf_tx_free(r2_mf_tx_state_t *s);
r2_mf_rx_state_t *r2_mf_rx_init(r2_mf_rx_state_t *s, int fwd, tone_report_func_t callback, void *user_data);
int r2_mf_rx(r2_mf_rx_state_t *s, const int16_t amp[], int samples);
int r2_mf_rx_get(r2_mf_rx_state_t *s);
int r2_mf_rx_free(r2_mf_rx_state_t *s);
"""

R2_MF_CODES = "1234567890BCDEF"  # spandsp's (and openr2's) character for MF signal n is R2_MF_CODES[n - 1]

_r2 = None


def load_r2():
    """(ffi, lib) with spandsp's R2 MF sender and receiver; skip without libspandsp, or fail when ``CI=true``."""
    global _r2
    if _r2 is None:
        require_spandsp()
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(_R2_CDEF)
        _r2 = ffi, ffi.dlopen(ctypes.util.find_library("spandsp") or "libspandsp.so.2")
    return _r2


def r2_mf_tx(signal: int, forward: bool, n_samples: int) -> np.ndarray:
    """spandsp's MFC/R2 sender: ``n_samples`` of MF ``signal`` 1..15 (forward or backward group), int16 at 8 kHz."""
    ffi, lib = load_r2()
    s = lib.r2_mf_tx_init(ffi.NULL, int(bool(forward)))
    try:
        if lib.r2_mf_tx_put(s, R2_MF_CODES[signal - 1].encode()) != 0:
            raise ValueError(f"spandsp refused R2 MF signal {signal}")
        out = np.zeros(int(n_samples), np.int16)
        done = 0
        while done < out.size:
            chunk = out[done:done + 160]
            n = lib.r2_mf_tx(s, ffi.cast("int16_t *", ffi.from_buffer(chunk)), chunk.size)
            if n <= 0:
                break
            done += n
        return out
    finally:
        lib.r2_mf_tx_free(s)


class R2MfRx:
    """spandsp's MFC/R2 receiver for one channel: ``process`` feeds int16 audio, ``changes`` collects
    ``(sample_index, signal or None)`` each time the tone it hears changes."""

    def __init__(self, forward: bool) -> None:
        self.ffi, self.lib = load_r2()
        self.changes: list[tuple[int, int | None]] = []
        self._n = 0

        @self.ffi.callback("void(void *, int, int, int)")
        def report(_user, code, _level, _delay):
            self.changes.append((self._n, R2_MF_CODES.index(chr(code)) + 1 if code else None))

        self._cb = report
        self._s = self.lib.r2_mf_rx_init(self.ffi.NULL, int(bool(forward)), report, self.ffi.NULL)

    def process(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, np.int16)
        self.lib.r2_mf_rx(self._s, self.ffi.cast("int16_t *", self.ffi.from_buffer(x)), x.size)
        self._n += x.size

    def signals(self) -> list[int]:
        """The signals heard, in order (their ends left out)."""
        return [s for _, s in self.changes if s is not None]

    def close(self) -> None:
        if self._s is not None:
            self.lib.r2_mf_rx_free(self._s)
            self._s = None

    def __del__(self):
        self.close()


# --- V.21 channel 2 FSK and HDLC (fsk.h, hdlc.h): the T.30 control channel, a third declaration set ------------

_V21_CDEF = """
typedef struct {
    const char *name; int freq_zero; int freq_one; int tx_level; int min_level; int baud_rate;
} fsk_spec_t;
extern const fsk_spec_t preset_fsk_specs[];
typedef struct fsk_tx_state_s fsk_tx_state_t;
typedef struct fsk_rx_state_s fsk_rx_state_t;
typedef struct hdlc_tx_state_s hdlc_tx_state_t;
typedef struct hdlc_rx_state_s hdlc_rx_state_t;
typedef int (*get_bit_func_t)(void *user_data);
typedef void (*put_bit_func_t)(void *user_data, int bit);
typedef void (*hdlc_frame_handler_t)(void *user_data, const uint8_t *pkt, int len, int ok);
typedef void (*hdlc_underflow_handler_t)(void *user_data);

fsk_tx_state_t *fsk_tx_init(fsk_tx_state_t *s, const fsk_spec_t *spec, get_bit_func_t get_bit, void *user_data);
void fsk_tx_power(fsk_tx_state_t *s, float power);
int fsk_tx(fsk_tx_state_t *s, int16_t amp[], int len);
int fsk_tx_free(fsk_tx_state_t *s);
fsk_rx_state_t *fsk_rx_init(fsk_rx_state_t *s, const fsk_spec_t *spec, int framing_mode,
                            put_bit_func_t put_bit, void *user_data);
int fsk_rx(fsk_rx_state_t *s, const int16_t *amp, int len);
int fsk_rx_free(fsk_rx_state_t *s);

hdlc_tx_state_t *hdlc_tx_init(hdlc_tx_state_t *s, int crc32, int inter_frame_flags, int progressive,
                              hdlc_underflow_handler_t handler, void *user_data);
int hdlc_tx_frame(hdlc_tx_state_t *s, const uint8_t *frame, size_t len);
int hdlc_tx_flags(hdlc_tx_state_t *s, int len);
int hdlc_tx_get_bit(hdlc_tx_state_t *s);
int hdlc_tx_free(hdlc_tx_state_t *s);
hdlc_rx_state_t *hdlc_rx_init(hdlc_rx_state_t *s, int crc32, int report_bad_frames, int framing_ok_threshold,
                              hdlc_frame_handler_t handler, void *user_data);
void hdlc_rx_put_bit(hdlc_rx_state_t *s, int new_bit);
int hdlc_rx_free(hdlc_rx_state_t *s);
"""

FSK_V21CH2 = 1  # fsk.h
FSK_FRAME_MODE_SYNC = 1
_v21 = None


def load_v21():
    """(ffi, lib) with spandsp's FSK modems and HDLC; skip without libspandsp, or fail when ``CI=true``."""
    global _v21
    if _v21 is None:
        require_spandsp()
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(_V21_CDEF)
        _v21 = ffi, ffi.dlopen(ctypes.util.find_library("spandsp") or "libspandsp.so.2")
    return _v21


def v21_hdlc_tx(frames: list[bytes], preamble_flags: int = 38, level_dbm0: float = -13.0,
                tail_samples: int = 1600) -> np.ndarray:
    """spandsp's HDLC (CRC-16) over its V.21 channel 2 modulator: flags, the frames, int16 at 8 kHz.

    spandsp's transmitter idles flags once its frames are out; the signal ends
    ``tail_samples`` after the bits of the last frame and its closing flag.
    """
    ffi, lib = load_v21()
    queue = list(frames)

    @ffi.callback("void(void *)")
    def underflow(_user):  # spandsp holds one frame at a time: hand it the next when it asks
        if queue:
            f = queue.pop(0)
            if lib.hdlc_tx_frame(h, f, len(f)) != 0:
                raise ValueError(f"spandsp refused the frame {f!r}")

    h = lib.hdlc_tx_init(ffi.NULL, 0, 1, 0, underflow, ffi.NULL)
    t = ffi.NULL
    try:
        lib.hdlc_tx_flags(h, int(preamble_flags))
        n_bits = 8 * int(preamble_flags)
        for f in frames:
            n_bits += 8 * (len(f) + 2) * 6 // 5 + 16  # worst-case stuffing and a flag
        underflow(ffi.NULL)
        get_bit = ffi.cast("get_bit_func_t", ffi.addressof(lib, "hdlc_tx_get_bit"))
        t = lib.fsk_tx_init(ffi.NULL, ffi.addressof(lib.preset_fsk_specs, FSK_V21CH2), get_bit, h)
        lib.fsk_tx_power(t, float(level_dbm0))
        x = np.zeros(int(np.ceil(n_bits * 8000 / 300)) + int(tail_samples), np.int16)
        lib.fsk_tx(t, ffi.cast("int16_t *", ffi.from_buffer(x)), x.size)
        return x
    finally:
        if t != ffi.NULL:
            lib.fsk_tx_free(t)
        lib.hdlc_tx_free(h)


def v21_hdlc_rx(x: np.ndarray) -> list[tuple[bytes, bool]]:
    """Frames spandsp's V.21 channel 2 receiver and HDLC receiver find in int16 audio: (data without FCS, FCS ok)."""
    ffi, lib = load_v21()
    got: list[tuple[bytes, bool]] = []

    @ffi.callback("void(void *, const uint8_t *, int, int)")
    def handler(_user, pkt, length, ok):
        if length >= 0:  # negative: a status (carrier up/down, framing ok)
            got.append((bytes(ffi.buffer(pkt, length)), bool(ok)))

    h = lib.hdlc_rx_init(ffi.NULL, 0, 1, 5, handler, ffi.NULL)
    put_bit = ffi.cast("put_bit_func_t", ffi.addressof(lib, "hdlc_rx_put_bit"))
    r = lib.fsk_rx_init(ffi.NULL, ffi.addressof(lib.preset_fsk_specs, FSK_V21CH2), FSK_FRAME_MODE_SYNC, put_bit, h)
    try:
        x = np.ascontiguousarray(x, np.int16)
        for i in range(0, x.size, 160):
            chunk = x[i:i + 160]
            lib.fsk_rx(r, ffi.cast("int16_t *", ffi.from_buffer(chunk)), chunk.size)
        return got
    finally:
        lib.fsk_rx_free(r)
        lib.hdlc_rx_free(h)
