"""System tools that tests use as peers: skip without them on a developer machine, fail under CI."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Return the path of ``name``; skip the test if absent, or fail it when ``CI=true``."""
    path = shutil.which(name)
    if path:
        return path
    skip_or_fail(f"system tool {name!r} is not installed (.ci/run installs it)")


def skip_or_fail(msg: str) -> None:
    """Skip the test on a developer machine; fail it under CI (CI=true), where everything must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def require_file(path: str, package: str) -> str:
    """Return ``path`` if it exists; skip the test if absent, or fail it when ``CI=true``."""
    if not os.path.exists(path):
        skip_or_fail(f"{path} is not installed (Debian package {package}; .ci/run installs it)")
    return path


def require_dahdi_binding():
    """``(ffi, lib)`` of the DAHDI binding compiled at install time; skip without it, fail under CI."""
    from drivers.dahdi import binding

    require_tool("cc")
    require_file(binding.HEADER, "dahdi-source")
    if not binding.available():
        skip_or_fail(binding.missing_reason())
    return binding.require()
