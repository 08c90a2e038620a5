"""spandsp's V.29 modem (v29tx.h, v29rx.h) as a peer in tests, through cffi's ABI mode.

As ``tests.peers.spandsp``: only the shared library is used at run time, no
code of spandsp is copied. Bits go in and out through spandsp's get_bit and
put_bit callbacks; status codes (async.h ``SIG_STATUS_*``, all negative)
arrive through put_bit or the modem status handler.
"""

from __future__ import annotations

import numpy as np

from tests.peers.spandsp_modem import (SIG_STATUS_CARRIER_DOWN, SIG_STATUS_END_OF_DATA, SIG_STATUS_TRAINING_FAILED,
                                       SIG_STATUS_TRAINING_SUCCEEDED, open_spandsp)

_CDEF = """
typedef struct v29_tx_state_s v29_tx_state_t;
typedef struct v29_rx_state_s v29_rx_state_t;
typedef int (*get_bit_func_t)(void *user_data);
typedef void (*put_bit_func_t)(void *user_data, int bit);
typedef void (*modem_status_func_t)(void *user_data, int status);

v29_tx_state_t *v29_tx_init(v29_tx_state_t *s, int bit_rate, int tep, get_bit_func_t get_bit, void *user_data);
int v29_tx_restart(v29_tx_state_t *s, int bit_rate, int tep);
void v29_tx_power(v29_tx_state_t *s, float power);
void v29_tx_set_modem_status_handler(v29_tx_state_t *s, modem_status_func_t handler, void *user_data);
int v29_tx(v29_tx_state_t *s, int16_t amp[], int len);
int v29_tx_free(v29_tx_state_t *s);

v29_rx_state_t *v29_rx_init(v29_rx_state_t *s, int bit_rate, put_bit_func_t put_bit, void *user_data);
int v29_rx_restart(v29_rx_state_t *s, int bit_rate, int old_train);
void v29_rx_set_modem_status_handler(v29_rx_state_t *s, modem_status_func_t handler, void *user_data);
int v29_rx(v29_rx_state_t *s, const int16_t amp[], int len);
float v29_rx_carrier_frequency(v29_rx_state_t *s);
float v29_rx_signal_power(v29_rx_state_t *s);
int v29_rx_free(v29_rx_state_t *s);
"""


def load_v29():
    """(ffi, lib) with spandsp's V.29 modem; skip without libspandsp, or fail when ``CI=true``."""
    return open_spandsp(_CDEF)


def v29_tx(bits, bit_rate: int, level_dbm0: float = -13.0, lead_samples: int = 0,
           tail_samples: int = 800) -> np.ndarray:
    """spandsp's V.29 transmitter (no TEP tone): training, ``bits``, its shutdown; int16 at 8 kHz.

    get_bit hands out ``bits`` then ``SIG_STATUS_END_OF_DATA``, after which
    spandsp sends its own closing ones and stops. ``lead_samples`` of silence
    go before and ``tail_samples`` after.
    """
    ffi, lib = load_v29()
    data = [int(b) for b in np.asarray(bits).ravel()]
    pos = [0]

    @ffi.callback("int(void *)")
    def get_bit(_user):
        if pos[0] < len(data):
            pos[0] += 1
            return data[pos[0] - 1]
        return SIG_STATUS_END_OF_DATA

    s = lib.v29_tx_init(ffi.NULL, int(bit_rate), 0, get_bit, ffi.NULL)
    try:
        lib.v29_tx_restart(s, int(bit_rate), 0)
        lib.v29_tx_power(s, float(level_dbm0))
        out = [np.zeros(int(lead_samples), np.int16)]
        # training is about 0.27 s; spandsp's shutdown is short: stop once it returns a short block
        limit = int(8000 * (1.0 + len(data) / bit_rate))
        done = 0
        while done < limit:
            buf = np.zeros(160, np.int16)
            n = lib.v29_tx(s, ffi.cast("int16_t *", ffi.from_buffer(buf)), buf.size)
            out.append(buf[:n])
            done += 160
            if n < 160:
                break
        out.append(np.zeros(int(tail_samples), np.int16))
        return np.concatenate(out)
    finally:
        lib.v29_tx_free(s)


class V29Rx:
    """spandsp's V.29 receiver: ``process`` feeds int16 audio; ``bits`` collects the bits put after
    ``SIG_STATUS_TRAINING_SUCCEEDED`` (until the carrier drops), ``statuses`` every status code."""

    def __init__(self, bit_rate: int) -> None:
        self.ffi, self.lib = load_v29()
        self.bits: list[int] = []
        self.statuses: list[int] = []
        self._trained = False

        def status(code: int) -> None:
            self.statuses.append(code)
            if code == SIG_STATUS_TRAINING_SUCCEEDED:
                self._trained = True
            elif code in (SIG_STATUS_CARRIER_DOWN, SIG_STATUS_TRAINING_FAILED):
                self._trained = False

        @self.ffi.callback("void(void *, int)")
        def put_bit(_user, bit):
            if bit < 0:
                status(bit)
            elif self._trained:
                self.bits.append(bit)

        @self.ffi.callback("void(void *, int)")
        def on_status(_user, code):
            status(code)

        self._cbs = (put_bit, on_status)  # cffi callbacks die with their Python objects
        self._s = self.lib.v29_rx_init(self.ffi.NULL, int(bit_rate), put_bit, self.ffi.NULL)
        self.lib.v29_rx_set_modem_status_handler(self._s, on_status, self.ffi.NULL)

    def process(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, np.int16)
        for i in range(0, x.size, 160):
            chunk = x[i:i + 160]
            self.lib.v29_rx(self._s, self.ffi.cast("int16_t *", self.ffi.from_buffer(chunk)), chunk.size)

    def carrier_hz(self) -> float:
        return float(self.lib.v29_rx_carrier_frequency(self._s))

    def close(self) -> None:
        if self._s is not None:
            self.lib.v29_rx_free(self._s)
            self._s = None

    def __del__(self):
        self.close()
