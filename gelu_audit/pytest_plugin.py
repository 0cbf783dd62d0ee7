"""pytest plugin (registered through the ``pytest11`` entry point): GELU accuracy in your tests.

Loading it costs nothing: torch, NumPy and mpmath are imported only when a test uses it::

    def test_my_gelu_is_accurate(gelu_audit_check):
        gelu_audit_check(my_gelu, dtype="bf16", max_ulp=2, value_range="-8:8")

The fixture is :func:`gelu_audit.check`; a broken limit fails the test with the worst input,
the accurate domain and the share correctly rounded in the message.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def gelu_audit_check() -> Any:
    """:func:`gelu_audit.check`, imported when first used."""
    from gelu_audit.api import check

    return check
