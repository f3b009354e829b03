"""The skeleton: settings from the environment, the console command, both databases."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import User


def test_database_engine_follows_the_environment():
    url = os.environ.get("POSTDESK_DATABASE_URL") or ""
    engine = settings.DATABASES["default"]["ENGINE"]
    if url.startswith("postgres"):
        assert engine == "django.db.backends.postgresql"
    else:
        assert engine == "django.db.backends.sqlite3"


@pytest.mark.django_db
def test_migrated_database_stores_and_reads_a_user():
    User.objects.create_user("phil", "phil@example.com", "pw-not-used")
    assert User.objects.get(username="phil").email == "phil@example.com"


def _postdesk(*args: str, env_extra: dict | None = None, tmp_path=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "postdesk", *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_lists_postdesk_and_django_commands(tmp_path):
    result = _postdesk("--help", env_extra={"POSTDESK_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0
    assert "inspect" in result.stdout and "migrate" in result.stdout
    assert not (tmp_path / "data").exists(), "--help must not create the data dir"


def test_migrate_creates_sqlite_in_the_data_dir(tmp_path):
    data = tmp_path / "data"
    result = _postdesk("migrate", "--noinput", env_extra={"POSTDESK_DATA_DIR": str(data), "POSTDESK_DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    assert (data / "postdesk.sqlite3").is_file()
    assert (data / "secret.key").stat().st_mode & 0o077 == 0, "the key must be private to its owner"
