"""Install-time build of the DAHDI binding (cffi API mode) against the real ``<dahdi/user.h>``.

setup.py hands this file to cffi (``cffi_modules``) only when the header, a C
compiler and Python's headers are there; the result is the extension module
``drivers.dahdi._dahdi``. Every struct below ends in ``...;`` and every constant is
``#define NAME ...``, so field offsets, struct sizes (``dahdi_spaninfo`` is packed)
and ioctl numbers all come from the target's compiler, never from us.

By hand: ``python drivers/dahdi/_build.py`` builds it in place.
"""

import importlib.util
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_names():
    # By path: at install time the package is not importable yet (its imports need numpy).
    spec = importlib.util.spec_from_file_location("_dahdi_names", os.path.join(HERE, "names.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_STRUCTS = """
struct dahdi_params {
    int channo;
    int spanno;
    int chanpos;
    int sigtype;
    int sigcap;
    int rxisoffhook;
    int rxbits;
    int txbits;
    int txhooksig;
    int rxhooksig;
    int curlaw;
    int idlebits;
    char name[40];
    int prewinktime;
    int preflashtime;
    int winktime;
    int flashtime;
    int starttime;
    int rxwinktime;
    int rxflashtime;
    int debouncetime;
    int pulsebreaktime;
    int pulsemaketime;
    int pulseaftertime;
    uint32_t chan_alarms;
    ...;
};

struct dahdi_spaninfo {
    int spanno;
    char name[20];
    char desc[40];
    int alarms;
    int txlevel;
    int rxlevel;
    int bpvcount;
    int crc4count;
    int ebitcount;
    int fascount;
    uint32_t fecount;
    uint32_t cvcount;
    uint32_t becount;
    uint32_t prbs;
    uint32_t errsec;
    int irqmisses;
    int syncsrc;
    int numchans;
    int totalchans;
    int totalspans;
    int lbo;
    int lineconfig;
    char lboname[40];
    char location[40];
    char manufacturer[40];
    char devicetype[40];
    int irq;
    int linecompat;
    char spantype[6];
    ...;
};

struct dahdi_dialoperation {
    int op;
    char dialstr[...];
    ...;
};

struct dahdi_bufferinfo {
    int txbufpolicy;
    int rxbufpolicy;
    int numbufs;
    int bufsize;
    int readbufs;
    int writebufs;
    ...;
};

struct dahdi_ring_cadence {
    int ringcadence[...];
    ...;
};

struct dahdi_echocanparam {
    char name[...];
    int32_t value;
    ...;
};

/* followed in memory by param_count struct dahdi_echocanparam */
struct dahdi_echocanparams {
    uint32_t tap_length;
    uint32_t param_count;
    ...;
};
"""


def make_ffibuilder():
    names = _load_names()
    ffi = FFI()
    ffi.cdef(_STRUCTS + "".join(f"#define {name} ...\n" for name in names.ALL))
    ffi.set_source("drivers.dahdi._dahdi", "#include <dahdi/user.h>\n")
    return ffi


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    # writes drivers/dahdi/_dahdi.*.so next to this file
    ffibuilder.compile(tmpdir=os.path.dirname(os.path.dirname(HERE)), verbose=True)
