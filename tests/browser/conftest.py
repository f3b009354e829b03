"""Fixtures for the browser tests: Debian's Chromium driven by Playwright against
the real `postdesk serve` process of an isolated installation.

    browser          (package) Chromium at /usr/bin/chromium (POSTDESK_CHROMIUM overrides);
                               never a browser download.  Missing: the tests FAIL, they do not skip.
    admin_password   (module)  an admin (ADMIN) of the desk; desk.login(page, ADMIN, admin_password)
    desk             (module)  an installation (SQLite, or PostgreSQL with POSTDESK_DATABASE_URL),
                               a staff member, an IMAP mailbox on the private Dovecot, and
                               `postdesk serve` on a free loopback port; desk.deliver(raw) APPENDs
                               a message to Dovecot and runs `postdesk fetch`.
    foreign_host     (function) an HTTP listener on another origin that records what reaches it.
    screenshot_dir   (session) build/screenshots/ at the repo root, or $POSTDESK_SCREENSHOT_DIR.

Package-scoped (not session-scoped) on purpose: Playwright's sync API keeps an event
loop alive while it runs, which Django's ORM refuses to work beside (SynchronousOnlyOperation);
the browser is shut before the rest of the suite runs.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.dovecot import Dovecot, _die_with_parent  # PR_SET_PDEATHSIG: no server outlives pytest
from tests.support.installation import Installation

from .support import ADMIN, ForeignHost

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("POSTDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--password-store=basic",
]
START_TIMEOUT = 60.0  # seconds for `postdesk serve` to listen
STOP_TIMEOUT = 10.0  # seconds from SIGTERM to exit before SIGKILL
HOST = "127.0.0.1"
STAFF = "phil"


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="package")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run scripts/test, which installs Debian's "
            "`chromium` package (or: apt-get install chromium; POSTDESK_CHROMIUM=PATH for another binary). "
            "The browser tests never download a browser.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as error:
            pytest.fail(f"Chromium at {CHROMIUM} did not start under Playwright: {error}", pytrace=False)
        try:
            yield chromium
        finally:
            chromium.close()


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class PostdeskServer:
    """`postdesk serve` as our child: started with the installation's environment (plus `env`), stopped by
    terminating exactly its pid (SIGTERM, then SIGKILL after STOP_TIMEOUT)."""

    def __init__(self, inst: Installation, env: dict[str, str] | None = None) -> None:
        self.inst = inst
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_file = inst.root / "serve.log"
        self.stdout: list[str] = []
        self.exit_code: int | None = None
        self.killed = False
        argv = [sys.executable, "-m", "postdesk", "serve", "--host", HOST, "--port", str(self.port)]
        self._log = self.log_file.open("w")
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True,
            cwd=inst.work_dir, env=inst.env(env), preexec_fn=_die_with_parent,
        )
        self._announced = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, name="serve-stdout", daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            self.stdout.append(line.rstrip("\n"))
            if f"http://{HOST}:{self.port}/" in line:
                self._announced.set()

    def wait_until_listening(self) -> None:
        """Until it printed http://HOST:PORT/ and the port accepts; a server that exits or
        takes too long fails the test with its output."""
        deadline = time.monotonic() + START_TIMEOUT
        accepted_at = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"postdesk serve exited {self.process.returncode} before listening\n{self.output()}", pytrace=False)
            if accepted_at is None and _accepts(self.port):
                accepted_at = time.monotonic()
            if accepted_at is not None and self._announced.is_set():
                return
            if accepted_at is not None and time.monotonic() - accepted_at > 10:
                pytest.fail(f"postdesk serve accepts on port {self.port} but printed no line with {self.url}/ "
                            f"(is its standard output flushed?)\n{self.output()}", pytrace=False)
            self._announced.wait(0.05)
        pytest.fail(f"postdesk serve did not listen on {self.url} within {START_TIMEOUT:.0f} s\n{self.output()}", pytrace=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # exactly our pid
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.process.kill()
                self.process.wait()
        self.exit_code = self.process.returncode
        self._reader.join(timeout=5)
        self._log.close()

    def output(self) -> str:
        try:
            log = self.log_file.read_text(errors="replace")
        except OSError:
            log = ""
        tail = "\n".join(log.splitlines()[-40:])
        return "--- stdout\n" + "\n".join(self.stdout[-40:]) + f"\n--- stderr (tail)\n{tail}"


class Desk:
    """One installation served over HTTP, with a staff member and an IMAP mailbox."""

    def __init__(self, inst: Installation, server: PostdeskServer, dovecot: Dovecot, mail_user, password: str):
        self.inst = inst
        self.server = server
        self.url = server.url
        self.dovecot = dovecot
        self.mail_user = mail_user
        self.username = STAFF
        self.password = password

    def deliver(self, *raws: bytes) -> None:
        """APPEND each message to the test Dovecot, then `postdesk fetch` (which also processes)."""
        self.dovecot.start()  # no-op while running; another test may have stopped it
        for raw in raws:
            self.dovecot.append(self.mail_user, raw)
        reports = json.loads(self.inst.run("fetch", "--json").stdout)
        assert all(not r["error"] for r in reports), reports

    def login(self, page, username: str | None = None, password: str | None = None) -> None:
        """Sign in on the login page (as the staff member unless told otherwise)."""
        page.goto(self.url + "/login/")
        page.fill("input[name=username]", username or self.username)
        page.fill("input[name=password]", password or self.password)
        page.click("form button[type=submit]")
        page.wait_for_url(self.url + "/queue/general/")


@pytest.fixture(scope="module")
def desk(tmp_path_factory, dovecot) -> Iterator[Desk]:
    inst = Installation(tmp_path_factory.mktemp("desk") / "installation")
    server = None
    try:
        password = secrets.token_urlsafe(12)
        # The first command migrates, so the server starts on a ready database.
        inst.run("staff", "add", STAFF, "--email", "phil@desk.example", "--name", "Phil Staff",
                 "--password-env", "POSTDESK_TEST_STAFF_PASSWORD", env={"POSTDESK_TEST_STAFF_PASSWORD": password})
        dovecot.start()
        user = dovecot.new_user("desk")
        inst.run("mailbox", "add", "support", "--protocol", "imap", "--host", dovecot.host,
                 "--port", dovecot.ports.imap, "--security", "none", "--username", user.username,
                 "--password-stdin", "--after", "keep", input=user.password + "\n")
        server = PostdeskServer(inst)
        server.wait_until_listening()
        yield Desk(inst, server, dovecot, user, password)
    finally:
        try:
            if server is not None:
                server.stop()
        finally:
            inst.close()
    if server is not None:
        if server.killed:
            pytest.fail(f"postdesk serve did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM\n{server.output()}", pytrace=False)
        if server.exit_code != 0:
            pytest.fail(f"postdesk serve exited {server.exit_code} on SIGTERM (expected 0)\n{server.output()}", pytrace=False)


@pytest.fixture(scope="module")
def admin_password(desk) -> str:
    """An admin (ADMIN) of the module's desk: sign in with desk.login(page, ADMIN, admin_password)."""
    password = secrets.token_urlsafe(12)
    desk.inst.run("staff", "add", ADMIN, "--email", "ada@desk.example", "--admin", "--password-env", "ADMIN_PW",
                  env={"ADMIN_PW": password})
    return password


# --------------------------------------------------------------------------- the rest


@pytest.fixture
def foreign_host() -> Iterator[ForeignHost]:
    host = ForeignHost()
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = Path(os.environ.get("POSTDESK_SCREENSHOT_DIR") or REPO_ROOT / "build" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
