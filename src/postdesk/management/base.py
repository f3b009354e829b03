"""What every Postdesk command shares: a migrated database, JSON output, one-line errors."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

USAGE = 2  # exit status for a usage error (argparse's own)
FAILED = 1


class PostdeskCommand(BaseCommand):
    requires_system_checks: list = []
    requires_migrations_checks = False

    def execute(self, *args, **options):
        ensure_migrated()
        return super().execute(*args, **options)

    def emit_json(self, data) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))

    def fail(self, message: str, status: int = FAILED) -> CommandError:
        return CommandError(message, returncode=status)


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def ensure_migrated() -> None:
    """The embedded default needs no setup step: apply pending migrations on first use.

    On PostgreSQL an advisory lock keeps workers on several hosts from
    migrating at the same time."""
    executor = MigrationExecutor(connection)
    if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(74657351)")
            try:
                call_command("migrate", verbosity=0, interactive=False)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(74657351)")
    else:
        call_command("migrate", verbosity=0, interactive=False)


def read_password(options) -> str | None:
    """From standard input (--password-stdin) or an environment variable (--password-env):
    never from the command line, where `ps` and shell history would show it."""
    import os

    if options.get("password_stdin"):
        return sys.stdin.readline().rstrip("\r\n")
    var = options.get("password_env")
    if var:
        if var not in os.environ:
            raise CommandError(f"environment variable {var} is not set", returncode=USAGE)
        return os.environ[var]
    return None
