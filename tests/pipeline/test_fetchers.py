"""Several fetchers on one mailbox, against Dovecot with after-import move: real
processes, each with its own database connection.  Without the fetch lease,
two passes MOVE the same UIDs (500 messages left 700 copies in Imported, and
`[EXPUNGEISSUED]` errors); with it they take turns.

    overlapping fetches    two `postdesk fetch` at once (a cron overlap)
    fetch beside a worker  `postdesk fetch` while `postdesk worker` imports
    a dead holder          a fetch that died holding the lease (os._exit at a
                           crash point, or SIGKILL mid-pass: no finally runs)
                           is taken over at once by the next one on this host
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys

from tests.servers.dovecot import Dovecot, MailUser
from tests.support.installation import TIMEOUT, Installation
from tests.support.mail import make_message
from tests.support.worker import WorkerProcess, wait_for
from tests.worker.helpers import FAST

CRASH_EXIT = 75  # os._exit status of postdesk.crashpoints


def fill(dovecot: Dovecot, user: MailUser, count: int, prefix: str) -> None:
    with dovecot.imap(user) as client:
        for n in range(count):
            client.append("INBOX", make_message(subject=f"{prefix} {n}"))


def add_moving_mailbox(inst: Installation, dovecot: Dovecot, user: MailUser, poll: int = 300) -> None:
    inst.run("mailbox", "add", "support", "--protocol", "imap", "--host", dovecot.host, "--port", dovecot.ports.imap,
             "--security", "none", "--username", user.username, "--password-stdin", "--after", "move:Imported",
             "--poll-interval", poll, input=user.password + "\n")


def start_fetch(inst: Installation, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "postdesk", "fetch", "--json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=inst.work_dir, env=inst.env(env))


def finish(proc: subprocess.Popen) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    reports = json.loads(out) if out.strip() else []
    return proc.returncode, (reports[0] if reports else {}), err


def fetch_lease_row(inst: Installation) -> tuple[str, object]:
    sql = "SELECT fetch_lease_owner, fetch_lease_until FROM postdesk_mailbox WHERE name = 'support'"
    if inst.backend == "sqlite":
        with sqlite3.connect(inst.data_dir / "postdesk.sqlite3") as db:
            return db.execute(sql).fetchone()
    import psycopg

    with psycopg.connect(inst.database_url) as db:
        return db.execute(sql).fetchone()


def assert_each_message_once(inst: Installation, dovecot: Dovecot, user: MailUser, count: int) -> None:
    assert dovecot.message_count(user, "INBOX") == 0
    assert dovecot.message_count(user, "Imported") == count
    requests = inst.requests()
    assert len(requests) == count and all(r["message_count"] == 1 for r in requests)


def test_two_overlapping_fetches_move_each_of_500_messages_once(installation, dovecot, mail_user):
    fill(dovecot, mail_user, 500, "Overlap")
    add_moving_mailbox(installation, dovecot, mail_user)

    first, second = start_fetch(installation), start_fetch(installation)
    results = [finish(first), finish(second)]

    for code, report, err in results:
        assert code == 0, (report, err)
        assert report["error"] is None, report
        assert "EXPUNGEISSUED" not in err and "Traceback" not in err, err
    assert sum(report["fetched"] for _, report, _ in results) == 500, results
    busy = [report["busy"] for _, report, _ in results if report["status"] == "busy"]
    assert all(b.startswith("mailbox support is being fetched by pid ") for b in busy), busy
    assert_each_message_once(installation, dovecot, mail_user, 500)


def test_fetch_beside_a_running_worker_moves_each_message_once(installation, dovecot, mail_user):
    add_moving_mailbox(installation, dovecot, mail_user, poll=1)
    with WorkerProcess(installation, env=FAST) as worker:
        fill(dovecot, mail_user, 300, "Beside")
        outcomes = [finish(start_fetch(installation)) for _ in range(3)]  # while the worker imports them too
        wait_for(lambda: dovecot.message_count(mail_user, "INBOX") == 0, 60)
        wait_for(lambda: len(installation.requests()) == 300, 60, interval=0.5)
        output = "\n".join(worker.lines)
    for code, report, err in outcomes:
        assert code == 0 and report["status"] in ("ok", "busy"), (report, err)
        assert "EXPUNGEISSUED" not in err and "Traceback" not in err, err
    assert "EXPUNGEISSUED" not in output and "Traceback" not in output, worker.output()
    assert_each_message_once(installation, dovecot, mail_user, 300)


def test_a_dead_holder_is_taken_over_at_once_on_the_same_host(installation, dovecot, mail_user):
    fill(dovecot, mail_user, 20, "Dead")
    add_moving_mailbox(installation, dovecot, mail_user)

    # --intake-only: no parser pool, whose orphaned children would hold our pipes open.
    code, _, err = finish(start_fetch(installation, "--intake-only",
                                      env={"POSTDESK_CRASH_AT": "after-intake", "POSTDESK_CRASH_MODE": "exit"}))
    assert code == CRASH_EXIT, err
    owner, until = fetch_lease_row(installation)
    assert owner.startswith(socket.gethostname()[:80] + ":") and until is not None  # still "held" by the dead pid

    code, report, err = finish(start_fetch(installation))

    assert code == 0 and report["status"] == "ok", (report, err)
    assert fetch_lease_row(installation) == ("", None)
    assert_each_message_once(installation, dovecot, mail_user, 20)


def test_a_fetch_killed_with_sigkill_mid_pass_is_taken_over_at_once(installation, dovecot, mail_user):
    fill(dovecot, mail_user, 300, "Killed")
    add_moving_mailbox(installation, dovecot, mail_user)
    victim = start_fetch(installation, "--intake-only")  # no parser pool: no orphans holding our pipes
    try:
        wait_for(lambda: fetch_lease_row(installation)[0] == f"{socket.gethostname()[:80]}:{victim.pid}", 60, interval=0.02)
    finally:
        victim.kill()  # SIGKILL: no finally, no release
        victim.communicate(timeout=TIMEOUT)
    assert victim.returncode == -9
    assert fetch_lease_row(installation)[0].endswith(f":{victim.pid}")

    code, report, err = finish(start_fetch(installation))

    assert code == 0 and report["status"] == "ok", (report, err)
    assert_each_message_once(installation, dovecot, mail_user, 300)
