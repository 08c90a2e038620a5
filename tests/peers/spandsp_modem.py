"""What the spandsp modem peers (tests.peers.spandsp_v27ter, spandsp_v29) share: status codes and loading.

spandsp's modems hand bits out through get_bit and take them through put_bit
callbacks; the status codes of async.h (``SIG_STATUS_*``, all negative) travel
the same way. Each peer declares its own functions (cffi ABI mode) and opens
the shared library with them here.
"""

from __future__ import annotations

import ctypes.util

from tests.peers.spandsp import require_spandsp

SIG_STATUS_CARRIER_DOWN = -1
SIG_STATUS_CARRIER_UP = -2
SIG_STATUS_TRAINING_IN_PROGRESS = -3
SIG_STATUS_TRAINING_SUCCEEDED = -4
SIG_STATUS_TRAINING_FAILED = -5
SIG_STATUS_END_OF_DATA = -7

_opened: dict[str, tuple] = {}


def open_spandsp(cdef: str):
    """``(ffi, lib)`` for the declarations ``cdef``; skips without libspandsp, or fails when ``CI=true``."""
    if cdef not in _opened:
        require_spandsp()
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(cdef)
        _opened[cdef] = ffi, ffi.dlopen(ctypes.util.find_library("spandsp") or "libspandsp.so.2")
    return _opened[cdef]
