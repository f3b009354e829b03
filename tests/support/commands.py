"""Postdesk commands run in the test's own process (pytest-django), returning their --json."""

from __future__ import annotations

import io
import json

from django.core.management import call_command


def fetch(*names: str) -> list[dict]:
    """`postdesk fetch --mailbox NAME ... --json`; a mailbox that reports an error fails the test."""
    out = io.StringIO()
    call_command("fetch", *[arg for name in names for arg in ("--mailbox", name)], "--json", stdout=out)
    reports = json.loads(out.getvalue())
    for report in reports:
        assert report["error"] is None, report
    return reports
