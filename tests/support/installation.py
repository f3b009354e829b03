"""An isolated Postdesk installation for tests that run `postdesk` as a subprocess.

pytest-django's test database is invisible to other processes (SQLite in
memory), so a test that runs the real command gets a data dir of its own and
a database of its own:

  SQLite      (POSTDESK_DATABASE_URL unset, empty or sqlite://...)  a fresh file in the data dir
  PostgreSQL  (POSTDESK_DATABASE_URL=postgres://...)                a fresh database pd_<random> on
                                                                     that server, dropped at teardown

Commands migrate on first use, so there is no setup step.
"""

from __future__ import annotations

import json as _json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TIMEOUT = 300  # seconds for one command
# Never inherited from the test process: each run says what it wants.
_SCRUBBED = ("POSTDESK_CRASH_AT", "POSTDESK_CRASH_MODE", "POSTDESK_DATA_DIR", "POSTDESK_DATABASE_URL")


def server_url() -> str:
    """The database URL the test process was started with ("" for SQLite)."""
    url = os.environ.get("POSTDESK_DATABASE_URL") or ""
    return url if url.startswith(("postgres://", "postgresql://")) else ""


class Installation:
    """One data dir + one database; `run` executes `python -m postdesk ...` against them."""

    def __init__(self, root: Path):
        self.root = root
        self.data_dir = root / "data"
        self.work_dir = root / "cwd"  # the commands' working directory: nothing relative leaks out
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._pg_name: str | None = None
        pg = server_url()
        if pg:
            self._pg_name = f"pd_{secrets.token_hex(6)}"
            self._pg_admin(f'CREATE DATABASE "{self._pg_name}"')
            parts = urlsplit(pg)
            self.database_url = urlunsplit(parts._replace(path="/" + self._pg_name))
        else:
            self.database_url = f"sqlite:///{self.data_dir / 'postdesk.sqlite3'}"

    @property
    def backend(self) -> str:
        return "postgresql" if self._pg_name else "sqlite"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(
            POSTDESK_DATA_DIR=str(self.data_dir),
            POSTDESK_DATABASE_URL=self.database_url,
            DJANGO_SETTINGS_MODULE="postdesk.settings",
        )
        env.update(extra or {})
        return env

    def run(
        self,
        *args,
        input: str | bytes | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        binary: bool = False,
    ) -> subprocess.CompletedProcess:
        """`postdesk ARGS...`; text output unless binary=True.  With check, a non-zero
        exit fails the test with the command's output in the message."""
        argv = [sys.executable, "-m", "postdesk", *map(str, args)]
        if binary and isinstance(input, str):
            input = input.encode()
        elif not binary and isinstance(input, bytes):
            input = input.decode()
        proc = subprocess.run(
            argv,
            input=input if input is not None else (b"" if binary else ""),
            capture_output=True,
            text=not binary,
            cwd=self.work_dir,
            env=self.env(env),
            timeout=TIMEOUT,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"postdesk {' '.join(argv[3:])} exited {proc.returncode}\n"
                f"--- stdout\n{_text(proc.stdout)}\n--- stderr\n{_text(proc.stderr)}"
            )
        return proc

    def json(self, *args, input: str | None = None, env: dict[str, str] | None = None):
        """Run with --json appended and return the parsed standard output."""
        proc = self.run(*args, "--json", input=input, env=env)
        try:
            return _json.loads(proc.stdout)
        except ValueError as exc:
            raise AssertionError(f"postdesk {' '.join(map(str, args))} --json printed no JSON: {exc}\n{proc.stdout}") from None

    def requests(self, *filters) -> list[dict]:
        """The parsed `postdesk requests list [FILTERS] --json`."""
        return self.json("requests", "list", *filters)

    def close(self) -> None:
        if self._pg_name:
            name, self._pg_name = self._pg_name, None
            self._pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            self._pg_admin(f'DROP DATABASE IF EXISTS "{name}"')

    @staticmethod
    def _pg_admin(sql: str, params: tuple = ()) -> None:
        import psycopg

        parts = urlsplit(server_url())
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql, params or None)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")
