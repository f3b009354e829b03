"""A running worker when mail servers fail: each mailbox backs off and reports its own
error, the others keep importing, and a server that comes back is fetched again
without restarting anything.

Fast settings (tests/worker/helpers.FAST): retries after 0.1-0.2 s, at most one a
second; a mailbox is "failing" from its 2nd failure; network timeout 2 s.
"""

from __future__ import annotations

import re
import time

import pytest

from postdesk.sources import SourceError
from tests.servers.fixtures import running_dovecot
from tests.servers.sockets import SilentServer, closed_port
from tests.support.mail import make_message, maildir_deliver
from tests.support.worker import WorkerProcess, metric, wait_for
from tests.worker.helpers import FAST, add_imap, add_maildir, add_server, failures, show, wait_for_requests


def failure_count(worker, name: str) -> int:
    """The highest `failures=N` the worker logged for this mailbox."""
    counts = [int(m.group(1)) for line in failures(worker, name) if (m := re.search(r"\bfailures=(\d+)", line))]
    return max(counts, default=0)


def errors_logged(worker, name: str) -> list[str]:
    return [line for line in failures(worker, name) if " ERROR " in line]


@pytest.fixture
def private_dovecot():
    """A Dovecot of this test's own, to stop and start (the session one serves the other tests)."""
    yield from running_dovecot()


def test_dovecot_down_backs_off_and_reports_while_others_import_then_recovers_without_restart(
    installation, private_dovecot, dovecot
):
    down_user, other_user = private_dovecot.new_user(prefix="down"), dovecot.new_user(prefix="other")
    # A 1 s poll, so that the outage is noticed by a pass (an IDLE connection that drops
    # only reconnects; it does not fetch).
    add_imap(installation, private_dovecot, "down", down_user, poll=1)
    add_imap(installation, dovecot, "other", other_user)  # a second Dovecot user, on a server that stays up
    local = add_maildir(installation, "local")
    private_dovecot.append(down_user, make_message(subject="Before the outage"))

    with WorkerProcess(installation, env=FAST) as worker:
        wait_for_requests(worker, "down", 1)

        private_dovecot.stop()
        # Refused (the port is closed), retried with backoff: the 2nd failure says ERROR.
        wait_for(lambda: failure_count(worker, "down") >= 4, 15, what=worker.output)
        shown = show(installation, "down")
        assert shown["last_error"].startswith("refused: connection to 127.0.0.1:"), shown
        assert shown["consecutive_failures"] >= 4, shown
        assert metric(worker.metrics(), "postdesk_mailbox_consecutive_failures", mailbox="down") >= 4

        # Meanwhile the others import as usual.
        dovecot.append(other_user, make_message(subject="Other user during the outage"))
        maildir_deliver(local, make_message(subject="Maildir during the outage"))
        wait_for_requests(worker, "other", 1)
        wait_for_requests(worker, "local", 1)

        private_dovecot.start()  # the same ports
        private_dovecot.append(down_user, make_message(subject="After the outage"))
        wait_for_requests(worker, "down", 2, timeout=10)
        worker.wait_for_log(r"WARNING postdesk\.worker mailbox recovered after \d+ failed passes .*mailbox=down")

        assert len(errors_logged(worker, "down")) == 1, worker.output()
        assert failures(worker, "other") == failures(worker, "local") == [], worker.output()
        pid = worker.pid
        code, _ = worker.stop()
    assert code == 0, worker.output()
    assert pid == worker.pid and len(worker.matching(r"worker started")) == 1  # one process all along: no restart
    shown = show(installation, "down")
    assert (shown["last_error"], shown["consecutive_failures"]) == (None, 0), shown
    assert shown["last_success"] is not None
    subjects = sorted((r["mailbox"], r["subject"]) for r in installation.requests())
    assert subjects == [("down", "After the outage"), ("down", "Before the outage"),
                        ("local", "Maildir during the outage"), ("other", "Other user during the outage")]


def test_refused_login_is_permanent_transient_errors_retry_and_each_is_logged_as_error_once(
    installation, dovecot, mail_user, silent_server
):
    add_imap(installation, dovecot, "wrong-password", mail_user, password=mail_user.password + "-wrong")
    add_server(installation, "closed-port", "127.0.0.1", closed_port())
    add_server(installation, "silent", silent_server.host, silent_server.port)
    local = add_maildir(installation, "local")
    names = ("wrong-password", "closed-port", "silent")

    with WorkerProcess(installation, env={**FAST, "POSTDESK_NETWORK_TIMEOUT": "1"}) as worker:
        # The silent server costs 1 s a pass (the network timeout), the others a few ms.
        wait_for(lambda: all(failure_count(worker, n) >= 3 for n in names), 20, what=worker.output)
        maildir_deliver(local, make_message(subject="Beside three broken mailboxes"))
        wait_for_requests(worker, "local", 1)
        samples = worker.metrics()
    shown = {m["name"]: m for m in installation.json("mailbox", "list")}

    kinds = {"wrong-password": "login", "closed-port": "refused", "silent": "timeout"}
    assert "login" in SourceError.PERMANENT and not {"refused", "timeout"} & SourceError.PERMANENT
    for name, kind in kinds.items():
        lines = failures(worker, name)
        # The first failure: a warning that tells a permanent error (a person must act)
        # from a transient one (retrying helps).
        assert f"WARNING postdesk.worker mailbox pass failed: {kind}: " in lines[0], lines
        advice = "(will not fix itself: check the mailbox settings)" if kind == "login" else "(retrying)"
        assert advice in lines[0], lines
        assert f"kind={kind}" in lines[0], lines
        # ERROR exactly once, at the 2nd failure in a row (POSTDESK_FAILING_AFTER=2), not per retry.
        errors = errors_logged(worker, name)
        assert len(errors) == 1 and re.search(r"\bfailures=2\b", errors[0]) and "mailbox failing (2 passes in a row)" in errors[0], lines
        assert len(lines) >= 3, lines
        assert shown[name]["last_error"].startswith(f"{kind}: "), shown[name]
        assert shown[name]["consecutive_failures"] >= 3, shown[name]
        assert metric(samples, "postdesk_fetch_errors_total", mailbox=name, kind=kind) >= 3
    assert f"login as {mail_user.username!r} refused" in shown["wrong-password"]["last_error"]
    # The backoff grows: more than 3 s of failing is well under one pass per 0.2 s.
    assert failure_count(worker, "closed-port") < 20
    assert [r["subject"] for r in installation.requests()] == ["Beside three broken mailboxes"]


def test_a_server_that_accepts_and_never_answers_is_cut_off_by_the_timeout(installation, silent_server):
    add_server(installation, "silent", silent_server.host, silent_server.port)
    local = add_maildir(installation, "local")

    with WorkerProcess(installation, env=FAST) as worker:
        began = time.monotonic()
        worker.wait_for_log(r"mailbox pass failed: timeout: .* did not answer in time .*mailbox=silent", timeout=10)
        cut_off = time.monotonic() - began
        # While the silent server holds its runner, the Maildir is fetched at once.
        maildir_deliver(local, make_message(subject="Not held up"))
        wait_for_requests(worker, "local", 1, timeout=3)
        # And the runner tries again: a new connection after the backoff.
        wait_for(lambda: silent_server.connection_count >= 2, 10)
        code, seconds = worker.stop()

    assert 1.5 <= cut_off < 5, cut_off  # POSTDESK_NETWORK_TIMEOUT=2
    assert code == 0 and seconds < 5, (code, seconds)
    assert show(installation, "silent")["last_error"].startswith(f"timeout: {silent_server.host}:{silent_server.port} did not answer in time")


def test_sigterm_while_runners_hang_on_silent_servers_still_exits_within_seconds(installation):
    # A long network timeout: three runners are stuck in a read when SIGTERM comes.
    servers = [SilentServer() for _ in range(3)]
    try:
        for index, server in enumerate(servers):
            add_server(installation, f"silent-{index}", server.host, server.port)
        with WorkerProcess(installation, env={**FAST, "POSTDESK_NETWORK_TIMEOUT": "60"}) as worker:
            wait_for(lambda: all(s.connection_count >= 1 for s in servers), 10)
            code, seconds = worker.stop()
        assert code == 0, worker.output()
        # The runners are daemon threads: the worker waits a bounded time for all of them
        # together (not 5 s each), then exits.
        assert seconds < 7.5, seconds
        assert worker.matching(r"INFO postdesk\.worker worker stopped"), worker.output()
    finally:
        for server in servers:
            server.close()
