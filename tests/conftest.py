"""Shared test fixtures.

The corpora of real messages live beside the checkout in ../shared/corpora
(read-only, never copied into this repo).  POSTDESK_SHARED_DIR overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.servers.fixtures import *  # noqa: F403  (dovecot, mail_user, silent_server, closed_port)
from tests.support.fixtures import *  # noqa: F401,F403

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("POSTDESK_SHARED_DIR", REPO_ROOT.parent / "shared"))
CORPORA_DIR = SHARED_DIR / "corpora"


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    if not CORPORA_DIR.is_dir():
        pytest.skip(f"the shared corpora are not at {CORPORA_DIR} (set POSTDESK_SHARED_DIR)")
    return CORPORA_DIR
