"""Shared by bench/latency.py and bench/chaos.py: a private Dovecot, an isolated
installation, `postdesk worker` as a child process, generated messages.

Everything a benchmark starts is ended here, by its own id: the Dovecot
master (tests/servers/dovecot.py stops exactly the pid it started) and each
worker, which runs in a session (process group) of its own so that a kill
takes its parser processes along, as the kernel would on an OOM kill.  The
group is signalled only while its leader is not yet reaped, so the group id
cannot have been reused by anyone else.

The benchmark process itself reads the installation's database through the
Django ORM (settings from the same environment the worker gets), so that times
come from one clock: this machine's.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.servers.dovecot import Dovecot, MailUser, _die_with_parent  # noqa: E402
from tests.support.installation import Installation  # noqa: E402
from tests.support.mail import make_message  # noqa: E402

DOMAIN = "bench.postdesk.test"
STOP_SECONDS = 30.0  # a SIGTERM'd worker gets this long before SIGKILL


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def backend_note() -> str:
    url = os.environ.get("POSTDESK_DATABASE_URL") or ""
    return "PostgreSQL (a fresh database on POSTDESK_DATABASE_URL's server)" if url.startswith("postgres") else "SQLite (in the temporary data dir)"


# --- messages ------------------------------------------------------------------------


def message(tag: str, i: int, rng: random.Random, reply_to: str | None = None, body_bytes: int = 600,
            attachment_bytes: int = 0) -> tuple[str, bytes]:
    """(Message-ID without brackets, raw bytes): a customer message, unique by `tag` and `i`."""
    message_id = f"{tag}-{i}@{DOMAIN}"
    customer = f"customer{rng.randrange(1, 400)}"
    words = ("printer", "invoice", "refund", "login", "delivery", "order", "broken", "please", "help",
             "thanks", "account", "tomorrow", "urgent", "question", "payment", "password")
    text = []
    size = 0
    while size < body_bytes:
        line = " ".join(rng.choice(words) for _ in range(12)) + ".\n"
        text.append(line)
        size += len(line)
    date = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i * 37)
    subject = f"{'Re: ' if reply_to else ''}{tag} message {i}: {rng.choice(words)} {rng.choice(words)}"
    attachments = []
    if attachment_bytes:
        attachments.append((f"scan-{i}.pdf", "application/pdf", b"%PDF-1.4\n" + rng.randbytes(attachment_bytes)))
    raw = make_message(
        subject=subject,
        sender=f"Customer {customer} <{customer}@customer.example>",
        message_id=f"<{message_id}>",
        in_reply_to=f"<{reply_to}>" if reply_to else None,
        references=f"<{reply_to}>" if reply_to else None,
        body="".join(text),
        attachments=attachments,
        date=format_datetime(date),
    )
    return message_id, raw


# --- the bench's world: Dovecot + installation -----------------------------------------


class World:
    """A private Dovecot and an isolated installation in one temporary directory."""

    def __init__(self, prefix: str):
        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        self.server: Dovecot | None = None
        self.installation: Installation | None = None
        self.workers: list[WorkerProcess] = []

    def __enter__(self) -> World:
        try:
            self.server = Dovecot.create()
            self.server.start()
            self.installation = Installation(self.tmp / "installation")
            self.installation.run("migrate", "--noinput")  # also makes the data dir
            # The ORM in this process reads the same database the workers write.
            os.environ.update(self.installation.env())
            for name in ("POSTDESK_CRASH_AT", "POSTDESK_CRASH_MODE"):
                os.environ.pop(name, None)
            import django

            django.setup()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.kill()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self.installation is not None:
            with contextlib.suppress(Exception):
                self.installation.close()
        if self.server is not None:
            self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def add_mailbox(self, name: str, user: MailUser, after: str = "move:Imported", poll_interval: int = 60):
        from postdesk.models import Mailbox

        self.installation.run(
            "mailbox", "add", name, "--protocol", "imap", "--host", self.server.host,
            "--port", self.server.ports.imap, "--security", "none", "--username", user.username,
            "--password-env", "BENCH_PASSWORD", "--after", after, "--poll-interval", poll_interval,
            env={"BENCH_PASSWORD": user.password},
        )
        return Mailbox.objects.get(name=name)

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.installation.run("mailbox", "edit", name, "--enable" if enabled else "--disable")

    def worker(self, env: dict[str, str] | None = None, log_name: str = "worker.log") -> WorkerProcess:
        worker = WorkerProcess(self.installation, self.tmp / log_name, env or {})
        self.workers.append(worker)
        return worker


class WorkerProcess:
    """`postdesk worker` in a process group of its own; its log appended to one file."""

    def __init__(self, installation: Installation, log_file: Path, env: dict[str, str]):
        self.installation = installation
        self.log_file = log_file
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        assert self.proc is None
        with self.log_file.open("ab") as log:
            self._log_offset = log.tell()
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "postdesk", "worker"],
                cwd=self.installation.work_dir,
                env=self.installation.env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the parser pool goes with it
                preexec_fn=_die_with_parent,  # and it goes if the bench dies without cleaning up
            )

    def log_since_start(self) -> str:
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float) -> float | None:
        """Seconds from start until `text` appears in this run's log (None: it did not, or the worker exited)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_since_start():
                return time.monotonic() - self.started_at
            if self._exited():
                return None
            time.sleep(0.01)
        return None

    def alive(self) -> bool:
        return self.proc is not None and not self._exited()

    def kill(self) -> None:
        """SIGKILL the worker and its group at once; reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # Not reaped yet (a zombie at worst), so its pid is still its group's id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM, wait for a clean exit (SIGKILL after `timeout`); the exit status."""
        proc = self.proc
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while not self._exited() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = None if not self._exited() else "exited"
        self.kill()  # stragglers of the group (or the worker itself after the timeout)
        return proc.returncode if status else None

    def _exited(self) -> bool:
        """Has the leader exited?  Without reaping it (WNOWAIT), so its pid stays ours."""
        if self.proc is None:
            return True
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None and info.si_pid != 0


def wait_for(condition, timeout: float, step: float = 0.05) -> bool:
    """Whether `condition()` became true within `timeout` seconds (polled every `step`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
