"""How new mail reaches a running worker: pushed (IMAP IDLE, the Maildir watcher) or polled.

Every mailbox that should be pushed has a poll interval of 300 s, so a message
that becomes a request within seconds was pushed; the mailbox on a Dovecot
without IDLE polls every 3 s and must get its message that way.
"""

from __future__ import annotations

import time

import pytest

from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import running_dovecot
from tests.support.mail import make_message, maildir_deliver
from tests.support.worker import WorkerProcess, wait_for
from tests.worker.helpers import FAST, add_imap, add_maildir, logins, wait_for_requests

PUSH_SECONDS = 3.0  # a pushed message is a request within this (it takes well under a second)
SHORT_POLL = 3  # seconds, for the mailbox on the server without IDLE


@pytest.fixture(scope="module")
def dovecot_without_idle(dovecot) -> Dovecot:
    """A private Dovecot that does not offer IDLE: `imap_capability` replaces the list it
    sends after login with the session Dovecot's own, minus IDLE."""
    probe = dovecot.new_user(prefix="capabilities")
    with dovecot.imap(probe) as client:
        capabilities = [c.decode() for c in client.capabilities()]
    assert "IDLE" in capabilities, capabilities

    def without_idle(server: Dovecot) -> None:
        listed = " ".join(c for c in capabilities if c != "IDLE")
        server.config_file.write_text(server.config_file.read_text() + f"\nimap_capability = {listed}\n")

    yield from running_dovecot(without_idle)


def test_a_message_appended_while_the_worker_idles_is_a_request_at_once(installation, dovecot, mail_user):
    add_imap(installation, dovecot, "support", mail_user, security="tls")  # TLS with our CA, polls every 300 s
    dovecot.append(mail_user, make_message(subject="Waiting before the worker started"))

    with WorkerProcess(installation, env=FAST) as worker:
        wait_for_requests(worker, "support", 1)
        # Logins: the first pass, the IDLE connection, then the pass the watcher asks for
        # once IDLE runs (mail may have come while it connected).  From the third, IDLE is on.
        wait_for(lambda: logins(dovecot, mail_user) >= 3, 10, what=lambda: dovecot.log_tail())

        appended = time.monotonic()
        dovecot.append(mail_user, make_message(subject="Pushed by IDLE"))
        wait_for_requests(worker, "support", 2, timeout=PUSH_SECONDS)
        took = time.monotonic() - appended

        assert took < PUSH_SECONDS
        assert not worker.matching(r"no IDLE|IDLE connection lost|WARNING|ERROR"), worker.output()
    subjects = sorted(r["subject"] for r in installation.requests())
    assert subjects == ["Pushed by IDLE", "Waiting before the worker started"]


def test_without_idle_a_message_arrives_with_the_next_poll(installation, dovecot_without_idle):
    server = dovecot_without_idle
    user = server.new_user()
    add_imap(installation, server, "polled", user, poll=SHORT_POLL)

    with WorkerProcess(installation, env=FAST) as worker:
        worker.wait_for_log(r"server offers no IDLE; polling .*mailbox=polled")
        passes = logins(server, user)
        server.append(user, make_message(subject="Found by polling"))
        appended = time.monotonic()
        wait_for_requests(worker, "polled", 1, timeout=SHORT_POLL + 3)
        took = time.monotonic() - appended

        assert took < SHORT_POLL + 3
        # It came with a poll: logins since are the APPEND's own, the pass that fetched it and
        # at most one poll before it (no pass a second).
        assert logins(server, user) - passes <= 3
        assert not worker.matching(r"WARNING|ERROR"), worker.output()
    assert [r["subject"] for r in installation.requests()] == ["Found by polling"]


def test_a_maildir_delivery_is_a_request_within_two_seconds(installation):
    inbox = add_maildir(installation, "drop")  # polls every 300 s
    maildir_deliver(inbox, make_message(subject="There before the start"))

    with WorkerProcess(installation, env=FAST) as worker:
        wait_for_requests(worker, "drop", 1)
        delivered = time.monotonic()
        maildir_deliver(inbox, make_message(subject="Dropped into new/"))
        wait_for_requests(worker, "drop", 2, timeout=PUSH_SECONDS)
        took = time.monotonic() - delivered

    assert took < 2.5, took  # the watcher looks once a second
    assert sorted(r["subject"] for r in installation.requests()) == ["Dropped into new/", "There before the start"]
