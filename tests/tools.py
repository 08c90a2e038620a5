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
    msg = f"system tool {name!r} is not installed (.ci/run installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)
