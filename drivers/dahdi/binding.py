"""The compiled DAHDI binding (``drivers.dahdi._dahdi``), or a clear error saying why it is missing.

The binding is built at install time only where ``<dahdi/user.h>``, a C compiler
and Python's headers exist (see setup.py). Everything else in ``drivers.dahdi``
imports without it and calls :func:`require` at the point it needs the kernel ABI.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sysconfig
from typing import Any

from appliance.errors import DriverError

from . import names

HEADER = "/usr/include/dahdi/user.h"

_load_error = ""
try:
    _dahdi: Any = importlib.import_module("._dahdi", __package__)
except ModuleNotFoundError as exc:  # not built here: report it when someone needs it
    if exc.name != f"{__package__}._dahdi":
        raise
    _dahdi = None
except ImportError as exc:  # built, but not loadable (built for another Python, or broken)
    _dahdi, _load_error = None, str(exc)


def available() -> bool:
    """True when the compiled binding is importable."""
    return _dahdi is not None


def explain_missing(header_found: bool, compiler_found: bool, python_h_found: bool) -> str:
    """The message for an absent binding, given what this machine has now."""
    if not header_found:
        return (f"DAHDI binding not built: {HEADER} was not found at install time; "
                "install dahdi-source and reinstall (pip install -e .)")
    missing = [what for what, found in (("a C compiler (build-essential)", compiler_found),
                                        ("Python headers (python3-dev)", python_h_found)) if not found]
    if missing:
        verb, them = ("are", "them") if len(missing) > 1 else ("is", "it")
        return (f"DAHDI binding not built: {HEADER} is present but {' and '.join(missing)} "
                f"{verb} missing; install {them} and reinstall (pip install -e .)")
    return (f"DAHDI binding not built: the package was installed without it (before {HEADER} appeared, "
            "or with APPLIANCE_NO_DAHDI set); reinstall (pip install -e .)")


def missing_reason() -> str:
    """Why the binding is absent, with what to install; empty when it is there."""
    if _dahdi is not None:
        return ""
    if _load_error:
        return f"DAHDI binding present but not loadable: {_load_error}; reinstall (pip install -e .)"
    return explain_missing(
        os.path.exists(HEADER),
        shutil.which(os.environ.get("CC", "cc").split()[0]) is not None,
        os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))


def require() -> tuple[Any, Any]:
    """Return ``(ffi, lib)`` of the compiled binding, or raise DriverError saying what to install."""
    if _dahdi is None:
        raise DriverError(missing_reason())
    return _dahdi.ffi, _dahdi.lib


def constants() -> list[tuple[str, str, int]]:
    """Every constant the binding uses as ``(group, name, value)``, values from the compiled module."""
    _, lib = require()
    return [(group, name, getattr(lib, name)) for group, members in names.GROUPS.items() for name in members]
