"""The sign-in limits from the environment (settings.py): POSTDESK_SIGNIN_FAILURES,
_FIRST_WAIT, _MAX_WAIT and _LOG_DAYS; a bad value stops start-up with a message
that names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from postdesk import settings as postdesk_settings

DAY = timedelta(hours=24)


def start(tmp_path, **env) -> subprocess.CompletedProcess:
    """Django set up in a fresh process with these variables; prints the limits."""
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.AXES_FAILURE_LIMIT, s.POSTDESK_SIGNIN_FIRST_WAIT, s.POSTDESK_SIGNIN_MAX_WAIT, s.POSTDESK_SIGNIN_LOG_DAYS)")
    environ = {**os.environ, **env, "POSTDESK_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "postdesk.settings"}
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)


def test_the_environment_sets_the_limits(tmp_path):
    started = start(tmp_path, POSTDESK_SIGNIN_FAILURES="3", POSTDESK_SIGNIN_FIRST_WAIT="2",
                    POSTDESK_SIGNIN_MAX_WAIT="30", POSTDESK_SIGNIN_LOG_DAYS="14")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["3", "0:02:00", "0:30:00", "14"]


def test_a_bad_value_stops_start_up_and_names_the_variable(tmp_path):
    started = start(tmp_path, POSTDESK_SIGNIN_MAX_WAIT="an hour")
    assert started.returncode != 0
    assert "ImproperlyConfigured: POSTDESK_SIGNIN_MAX_WAIT must be a whole number above 0, not 'an hour'" in started.stderr


def test_the_defaults(monkeypatch):
    for name in ("POSTDESK_SIGNIN_FAILURES", "POSTDESK_SIGNIN_FIRST_WAIT", "POSTDESK_SIGNIN_MAX_WAIT", "POSTDESK_SIGNIN_LOG_DAYS"):
        monkeypatch.delenv(name, raising=False)
    assert postdesk_settings._positive_int("POSTDESK_SIGNIN_FAILURES", 5) == 5
    assert postdesk_settings._signin_waits(remembered=DAY) == (timedelta(minutes=1), timedelta(minutes=60))


@pytest.mark.parametrize("value", ["0", "-3", "1.5", "five", " "])
def test_only_whole_numbers_above_zero(monkeypatch, value):
    monkeypatch.setenv("POSTDESK_SIGNIN_FAILURES", value)
    if not value.strip():
        assert postdesk_settings._positive_int("POSTDESK_SIGNIN_FAILURES", 5) == 5  # empty: the default
        return
    with pytest.raises(ImproperlyConfigured, match="POSTDESK_SIGNIN_FAILURES must be a whole number above 0"):
        postdesk_settings._positive_int("POSTDESK_SIGNIN_FAILURES", 5)


def test_the_first_wait_may_not_exceed_the_longest(monkeypatch):
    monkeypatch.setenv("POSTDESK_SIGNIN_FIRST_WAIT", "90")
    monkeypatch.setenv("POSTDESK_SIGNIN_MAX_WAIT", "60")
    with pytest.raises(ImproperlyConfigured, match=r"POSTDESK_SIGNIN_FIRST_WAIT \(90 minutes\) must not be longer than"):
        postdesk_settings._signin_waits(remembered=DAY)


def test_failures_must_be_remembered_longer_than_the_longest_wait(monkeypatch):
    monkeypatch.setenv("POSTDESK_SIGNIN_MAX_WAIT", str(24 * 60))
    with pytest.raises(ImproperlyConfigured, match="POSTDESK_SIGNIN_MAX_WAIT must be under 1440 minutes"):
        postdesk_settings._signin_waits(remembered=DAY)
    monkeypatch.setenv("POSTDESK_SIGNIN_MAX_WAIT", str(24 * 60 - 1))
    assert postdesk_settings._signin_waits(remembered=DAY)[1] == DAY - timedelta(minutes=1)
