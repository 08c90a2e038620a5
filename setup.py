"""Build hook next to setup.cfg: compile the DAHDI binding (cffi) where it can be compiled, skip it elsewhere.

The binding needs <dahdi/user.h> (Debian: dahdi-source), a C compiler and Python's
headers at install time. Where any is missing the package installs without it and
drivers.dahdi says so when used. APPLIANCE_NO_DAHDI=1 skips it on purpose (tests
of the install without the binding).
"""

import os
import shutil
import sys
import sysconfig

from setuptools import setup

DAHDI_HEADER = "/usr/include/dahdi/user.h"


def dahdi_build_blocker():
    """Why the binding cannot be built here, or "" when it can."""
    if os.environ.get("APPLIANCE_NO_DAHDI", "") not in ("", "0"):
        return "APPLIANCE_NO_DAHDI is set"
    if not os.path.exists(DAHDI_HEADER):
        return f"{DAHDI_HEADER} not found (install dahdi-source)"
    compiler = os.environ.get("CC", "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler {compiler!r} (install build-essential)"
    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        return f"Python.h not found in {sysconfig.get_paths()['include']} (install python3-dev)"
    return ""


blocker = dahdi_build_blocker()
if blocker:
    print(f"setup.py: building without the DAHDI binding: {blocker}", file=sys.stderr)
    setup()
else:
    setup(cffi_modules=["drivers/dahdi/_build.py:ffibuilder"])
