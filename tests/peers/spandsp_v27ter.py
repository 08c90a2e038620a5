"""spandsp's V.27ter modems (libspandsp2, LGPL) as a peer in tests and benchmarks, through cffi's ABI mode.

Only the shared library is linked at run time (no compiler, no copied code):
``v27ter_tx`` pulls the bits to send through a ``get_bit`` callback and
``v27ter_rx`` hands received bits and status changes (negative values from
async.h) to a ``put_bit`` callback.
"""

from __future__ import annotations

import numpy as np

from tests.peers.spandsp_modem import (SIG_STATUS_CARRIER_DOWN, SIG_STATUS_END_OF_DATA, SIG_STATUS_TRAINING_FAILED,
                                       SIG_STATUS_TRAINING_SUCCEEDED, open_spandsp)

_CDEF = """
typedef struct v27ter_tx_state_s v27ter_tx_state_t;
typedef struct v27ter_rx_state_s v27ter_rx_state_t;
typedef int (*get_bit_func_t)(void *user_data);
typedef void (*put_bit_func_t)(void *user_data, int bit);

v27ter_tx_state_t *v27ter_tx_init(v27ter_tx_state_t *s, int bit_rate, int tep, get_bit_func_t get_bit, void *user_data);
void v27ter_tx_power(v27ter_tx_state_t *s, float power);
int v27ter_tx(v27ter_tx_state_t *s, int16_t amp[], int len);
int v27ter_tx_free(v27ter_tx_state_t *s);

v27ter_rx_state_t *v27ter_rx_init(v27ter_rx_state_t *s, int bit_rate, put_bit_func_t put_bit, void *user_data);
int v27ter_rx(v27ter_rx_state_t *s, const int16_t amp[], int len);
int v27ter_rx_free(v27ter_rx_state_t *s);
float v27ter_rx_carrier_frequency(v27ter_rx_state_t *s);
"""


def load_v27ter():
    """(ffi, lib) with spandsp's V.27ter modems; skip without libspandsp, or fail when ``CI=true``."""
    return open_spandsp(_CDEF)


def v27ter_tx(bits, bit_rate: int = 4800, level_dbm0: float = -13.0, tail_samples: int = 800,
              tep: bool = False) -> np.ndarray:
    """spandsp's V.27ter transmitter sending ``bits``, int16 at 8 kHz; ``tep`` puts the echo-protection tone first.

    The signal runs until spandsp has sent the training, ``bits`` and its own
    turn-off and stops producing samples; ``tail_samples`` of silence follow.
    """
    ffi, lib = load_v27ter()
    data = [int(b) for b in np.asarray(bits).ravel()]
    pos = [0]

    @ffi.callback("int(void *)")
    def get_bit(_user):
        if pos[0] >= len(data):
            return SIG_STATUS_END_OF_DATA
        pos[0] += 1
        return data[pos[0] - 1]

    s = lib.v27ter_tx_init(ffi.NULL, int(bit_rate), int(bool(tep)), get_bit, ffi.NULL)
    if s == ffi.NULL:
        raise ValueError(f"spandsp refused bit rate {bit_rate}")
    try:
        lib.v27ter_tx_power(s, float(level_dbm0))
        out = []
        buf = np.zeros(160, np.int16)
        ptr = ffi.cast("int16_t *", ffi.from_buffer(buf))
        limit = 8000 * (5 + len(data) // int(bit_rate))
        total = 0
        while total < limit:
            n = lib.v27ter_tx(s, ptr, buf.size)
            if n > 0:
                out.append(buf[:n].copy())
                total += n
            if n < buf.size:
                break
        out.append(np.zeros(int(tail_samples), np.int16))
        return np.concatenate(out)
    finally:
        lib.v27ter_tx_free(s)


class V27terRx:
    """spandsp's V.27ter receiver: ``process`` feeds int16 audio; ``bits`` collects the bits delivered
    after each ``SIG_STATUS_TRAINING_SUCCEEDED`` (one list per trained burst), ``statuses`` every status."""

    def __init__(self, bit_rate: int = 4800) -> None:
        self.ffi, self.lib = load_v27ter()
        self.bursts: list[list[int]] = []
        self.statuses: list[int] = []
        self._trained = False

        @self.ffi.callback("void(void *, int)")
        def put_bit(_user, bit):
            if bit < 0:
                self.statuses.append(bit)
                if bit == SIG_STATUS_TRAINING_SUCCEEDED:
                    self._trained = True
                    self.bursts.append([])
                elif bit in (SIG_STATUS_CARRIER_DOWN, SIG_STATUS_TRAINING_FAILED):
                    self._trained = False
            elif self._trained:
                self.bursts[-1].append(bit & 1)

        self._cb = put_bit  # cffi frees the callback with its last reference
        self._s = self.lib.v27ter_rx_init(self.ffi.NULL, int(bit_rate), put_bit, self.ffi.NULL)
        if self._s == self.ffi.NULL:
            raise ValueError(f"spandsp refused bit rate {bit_rate}")

    def process(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, np.int16)
        for i in range(0, x.size, 160):
            chunk = x[i:i + 160]
            self.lib.v27ter_rx(self._s, self.ffi.cast("int16_t *", self.ffi.from_buffer(chunk)), chunk.size)

    def close(self) -> None:
        if self._s is not None:
            self.lib.v27ter_rx_free(self._s)
            self._s = None

    def __del__(self):
        self.close()


def v27ter_rx(x: np.ndarray, bit_rate: int = 4800) -> tuple[list[np.ndarray], list[int]]:
    """Bits spandsp's receiver delivers after training in each burst of ``x`` (uint8 arrays), and its statuses."""
    rx = V27terRx(bit_rate)
    try:
        rx.process(x)
        return [np.array(b, np.uint8) for b in rx.bursts], list(rx.statuses)
    finally:
        rx.close()
