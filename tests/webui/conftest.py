"""Fixtures of the web tests: Debian's chromium driven by Playwright, one browser per test module."""

from __future__ import annotations

import pytest

from tests.tools import require_tool, skip_or_fail


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (the test extra installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()
