"""What the notification tests share: the outbound tests' desk (a Maildir mailbox that
sends through the test SMTP server), staff members, and reading what was sent.

    staff("phil")                  an active member phil@staff.example
    notifications(smtp)            what the server took that is a notification, by recipient
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.outbound.conftest import desk  # noqa: F401  (the fixture, shared)


@pytest.fixture
def staff(transactional_db):
    def make(name: str, **fields) -> User:
        return User.objects.create_user(name, f"{name}@staff.example", "pw", **fields)

    return make


def notifications(smtp) -> list:
    return [m for m in smtp.received if m.message["Auto-Submitted"] == "auto-generated"]


def recipients(smtp) -> list[str]:
    return sorted(r for m in notifications(smtp) for r in m.rcpt_tos)
