"""Fixtures the DAHDI tests share: the compiled binding and a fresh fake kernel laid out as the box."""

from __future__ import annotations

import pytest

from tests.tools import require_dahdi_binding


@pytest.fixture(scope="module")
def lib():
    """The binding's ``lib`` (constants from the compiler); skip without it, fail under CI."""
    return require_dahdi_binding()[1]


@pytest.fixture
def kernel(lib):
    """``FakeKernel.appliance()``: span 1 an E1, then the phone and line ports."""
    from drivers.dahdi.fakekernel import FakeKernel
    return FakeKernel.appliance()
