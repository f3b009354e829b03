"""What every Postdesk command shares: a migrated database, JSON output, one-line errors."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

USAGE = 2  # exit status for a usage error (argparse's own)
FAILED = 1


# Django's own options: they still work, but `--help` shows only ours (`--help-all` shows them too).
DJANGO_OPTIONS = {"--version", "--verbosity", "--settings", "--pythonpath", "--traceback", "--no-color",
                  "--force-color", "--skip-checks"}


class _HelpAll(argparse.Action):
    """--help-all: the help with Django's options as well."""

    def __init__(self, option_strings, dest, command=None, prog=None, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.command, self.prog = command, prog

    def __call__(self, parser, namespace, values, option_string=None):
        full = type(self.command)(stdout=self.command.stdout._out, stderr=self.command.stderr._out)
        full.suppressed_base_arguments = set()
        full.create_parser(*self.prog).print_help()
        parser.exit()


class PlainCommand(BaseCommand):
    """Our help (our options; Django's under --help-all) and our errors (one sentence, no
    "CommandError:"), for every Postdesk command, even one that needs no database."""

    requires_system_checks: list = []
    requires_migrations_checks = False
    suppressed_base_arguments = DJANGO_OPTIONS
    _from_command_line = False

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if self.suppressed_base_arguments:
            parser.add_argument("--help-all", action=_HelpAll, command=self, prog=(prog_name, subcommand),
                                help="show this help with Django's own options too")
        return parser

    def run_from_argv(self, argv):
        self._from_command_line = True
        return super().run_from_argv(argv)

    def execute(self, *args, **options):
        try:
            self.before_run()
            return super().execute(*args, **options)
        except CommandError as error:
            if not self._from_command_line or options.get("traceback"):
                raise  # call_command (tests, other commands) and --traceback get the exception
            # Django would print "CommandError: ..."; a person reads one sentence.  Same exit status.
            self.stderr.write(sentence(str(error)))
            sys.exit(error.returncode)

    def before_run(self) -> None:
        """What a command needs before it runs (PostdeskCommand: a migrated database)."""


class PostdeskCommand(PlainCommand):
    def before_run(self) -> None:
        ensure_migrated()

    def emit_json(self, data) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))

    def fail(self, message: str, status: int = FAILED) -> CommandError:
        return CommandError(message, returncode=status)


def sentence(message: str) -> str:
    """An error as one line: the message's own words, whitespace and line breaks folded.
    Its case and punctuation are left alone: it often begins with a name ("a-big: disk
    full", "support: login refused") or ends with a server's own words, never to be changed."""
    return " ".join(message.split()) or "failed"


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
