"""Shared by the worker tests: mailboxes added the way an admin adds them, fast settings, and
waiting on what the worker logs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.servers.dovecot import Dovecot, MailUser
from tests.support.installation import Installation
from tests.support.worker import PostdeskProcess

# Seconds, not minutes: a failing mailbox retries after 0.1-0.2 s, then at most every second;
# a silent server is cut off after 2 s; edits are seen within half a second.
FAST = {
    "POSTDESK_NETWORK_TIMEOUT": "2",
    "POSTDESK_BACKOFF_BASE": "0.2",
    "POSTDESK_BACKOFF_CAP": "1",
    "POSTDESK_FAILING_AFTER": "2",
    "POSTDESK_WORKER_RELOAD": "0.5",
    "POSTDESK_WORKER_SWEEP": "0.5",
}
LONG_POLL = 300  # seconds: a message that arrives sooner was pushed (IDLE, the Maildir watcher)


def add_imap(inst: Installation, dovecot: Dovecot, name: str, user: MailUser, *, protocol: str = "imap",
             security: str = "none", after: str = "keep", poll: int = LONG_POLL, options: tuple = (),
             password: str | None = None) -> None:
    """`postdesk mailbox add` against the test Dovecot, the password on standard input."""
    if protocol == "imap":
        port = dovecot.ports.imaps if security == "tls" else dovecot.ports.imap
    else:
        port = dovecot.ports.pop3s if security == "tls" else dovecot.ports.pop3
    args = ["mailbox", "add", name, "--protocol", protocol, "--host", dovecot.host, "--port", port,
            "--security", security, "--username", user.username, "--after", after, "--poll-interval", poll]
    if security != "none":
        args += ["--ca-file", dovecot.ca_file]
    if "--oauth" in options:  # signs in with a grant: no password
        inst.run(*args, *options)
        return
    inst.run(*args, "--password-stdin", *options, input=(password if password is not None else user.password) + "\n")


OAUTH_SCOPE = "mail offline_access"


def add_imap_by(auth: str, inst: Installation, dovecot: Dovecot, name: str, user: MailUser, provider=None, **options) -> None:
    """`add_imap`, signing in with a password or (auth "oauth") with an OAuth2 grant from
    the test provider: the same mailbox, so the same test holds for both."""
    if auth == "password":
        add_imap(inst, dovecot, name, user, **options)
        return
    client_id = f"postdesk-{name}-{user.username}"
    provider.add_client(client_id, redirect_uris=("http://127.0.0.1/callback",))
    extra = tuple(options.pop("options", ()))
    add_imap(inst, dovecot, name, user, **options, options=(
        "--oauth", provider.issuer, "--oauth-client-id", client_id, "--oauth-scope", OAUTH_SCOPE, *extra))
    connect_by_device(inst, provider, name, user.username)


def connect_by_device(inst: Installation, provider, name: str, username: str, timeout: float = 60) -> str:
    """`postdesk mailbox connect NAME` as an admin runs it: the device grant, approved at the
    provider as `username` would on its verification page.  Returns what the command printed."""
    proc = subprocess.Popen([sys.executable, "-m", "postdesk", "mailbox", "connect", name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=inst.work_dir, env=inst.env())
    try:
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if "enter the code" in line:
                provider.approve_device(line.rsplit(" ", 1)[1].strip(), username)
                break
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(printed) + out + err
    return "".join(printed) + out


def add_server(inst: Installation, name: str, host: str, port: int, *, poll: int = LONG_POLL) -> None:
    """An IMAP mailbox at any address (a closed port, a silent server)."""
    inst.run("mailbox", "add", name, "--protocol", "imap", "--host", host, "--port", port, "--security", "none",
             "--username", "nobody", "--password-stdin", "--after", "keep", "--poll-interval", poll, input="secret\n")


def add_maildir(inst: Installation, name: str, *, poll: int = LONG_POLL, after: str = "keep") -> Path:
    path = inst.root / "maildirs" / name
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    inst.run("mailbox", "add", name, "--protocol", "maildir", "--path", path, "--after", after, "--poll-interval", poll)
    return path


def show(inst: Installation, name: str) -> dict:
    return inst.json("mailbox", "show", name)


def exported(inst: Installation) -> list[dict]:
    """`postdesk export`: every request with its messages."""
    return [json.loads(line) for line in inst.run("export").stdout.splitlines() if line.strip()]


def wait_for_requests(worker: PostdeskProcess, mailbox: str, count: int, timeout: float = 10.0) -> list[str]:
    """The processing loop's lines for this mailbox (`request created|threaded ... mailbox=NAME`), once
    there are `count` of them."""
    return worker.wait_for_log(rf"INFO postdesk\.worker request (created|threaded) .*\bmailbox={re.escape(mailbox)}(?=\s|$)",
                               count=count, timeout=timeout)


def failures(worker: PostdeskProcess, mailbox: str) -> list[str]:
    """The runner's lines about failed passes of this mailbox (any level)."""
    return worker.matching(rf"postdesk\.worker mailbox (pass failed|pass failed again|failing).*\bmailbox={re.escape(mailbox)}(?=\s|$)")


def logins(dovecot: Dovecot, user: MailUser) -> int:
    """How many times `user` logged in (auth_verbose logs each: imap-login / pop3-login)."""
    text = dovecot.log_file.read_text(errors="replace")
    return len(re.findall(rf"-login: Info: Login: user=<{re.escape(user.username)}>", text))
