"""Fixtures shared by the web tests."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from postdesk import secrets


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    secrets._fernet.cache_clear()  # the mailbox key lives in this test's data dir
    yield tmp_path
    secrets._fernet.cache_clear()


@pytest.fixture
def admin(db):
    return User.objects.create_user("ada", "ada@example.com", "pw", is_staff=True, is_superuser=True)


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def staff(db):
    """A staff member who is not an admin."""
    return User.objects.create_user("phil", "phil@example.com", "pw")


@pytest.fixture
def logged_in(client, staff):
    client.force_login(staff)
    return client
