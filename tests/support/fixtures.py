"""Fixtures from tests.support, star-imported by tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.support.installation import Installation

__all__ = ["installation"]


@pytest.fixture
def installation(tmp_path):
    """A fresh Postdesk installation (data dir + its own database) for subprocess tests."""
    inst = Installation(tmp_path / "installation")
    try:
        yield inst
    finally:
        inst.close()
