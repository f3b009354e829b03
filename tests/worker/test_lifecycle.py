"""Starting, stopping and changing a running worker: SIGTERM is a clean exit within
seconds, also in the middle of a fetch, and mailbox edits are picked up without
a restart."""

from __future__ import annotations

import time

from tests.support.mail import make_message, maildir_deliver
from tests.support.worker import WorkerProcess, metric, wait_for
from tests.worker.helpers import FAST, add_imap, add_maildir, logins, wait_for_requests

BULK = 150  # messages: two batches (pipeline.BATCH_MESSAGES = 100)
BATCH = 100
BULK_BODY = ("All work and no play makes Jack a dull boy, all work and no play makes Jack.\n" * 600)  # ~45 KB


def test_sigterm_stops_the_worker_cleanly_within_five_seconds(installation, dovecot, mail_user):
    pop3_user = dovecot.new_user(prefix="pop")
    add_imap(installation, dovecot, "imap", mail_user, security="starttls")
    add_imap(installation, dovecot, "pop3", pop3_user, protocol="pop3", after="delete", poll=1)
    local = add_maildir(installation, "local")
    dovecot.append(mail_user, make_message(subject="IMAP"))
    dovecot.append(pop3_user, make_message(subject="POP3"))
    maildir_deliver(local, make_message(subject="Maildir"))

    with WorkerProcess(installation, env=FAST) as worker:
        for name in ("imap", "pop3", "local"):
            wait_for_requests(worker, name, 1)
        wait_for(lambda: logins(dovecot, mail_user) >= 3, 10)  # the IDLE connection is open as well
        code, seconds = worker.stop()

    assert code == 0, worker.output()
    assert seconds < 5, seconds
    assert worker.lines[-1].endswith("INFO postdesk.worker worker stopped"), worker.output()
    assert not worker.matching(r"Traceback|ERROR|WARNING"), worker.output()
    assert sorted(r["subject"] for r in installation.requests()) == ["IMAP", "Maildir", "POP3"]


def test_sigterm_while_fetching_finishes_the_batch_in_hand_and_loses_nothing(installation, dovecot, mail_user):
    subjects = [f"Bulk {i:03d}" for i in range(BULK)]
    with dovecot.imap(mail_user) as client:  # one session: 150 APPENDs in well under a second
        for subject in subjects:
            client.append("INBOX", make_message(subject=subject, body=BULK_BODY))
    add_imap(installation, dovecot, "bulk", mail_user, after="move:Imported")

    before = logins(dovecot, mail_user)  # the APPENDs' own session
    worker = WorkerProcess(installation, env=FAST).start()
    try:
        # The runner logged in: its first pass is under way, SIGTERM comes during the fetch.
        wait_for(lambda: logins(dovecot, mail_user) > before, 10, interval=0.005)
        code, seconds = worker.stop()
    finally:
        if worker.running:
            worker.kill()

    assert code == 0 and seconds < 5, (code, seconds, worker.output())
    assert worker.matching(r"INFO postdesk\.worker worker stopped"), worker.output()
    assert not worker.matching(r"Traceback|ERROR"), worker.output()
    left, imported = dovecot.message_count(mail_user), dovecot.message_count(mail_user, "Imported")
    # Stopped in the middle: some batches were stored and moved, the rest is still at the server;
    # only whole batches were taken (the batch in hand was finished, acknowledgement included).
    assert 0 < imported < BULK, ("the pass was not stopped half-way; make the messages bigger", imported)
    assert imported % BATCH == 0 and left + imported == BULK, (left, imported)

    # Started again: the rest is fetched, and everything becomes a request exactly once.
    with WorkerProcess(installation, env=FAST) as again:
        wait_for(lambda: metric(again.metrics(), "postdesk_intake_messages", status="processed") == BULK, 30,
                 interval=0.2, what=again.output)
        samples = again.metrics()
    assert metric(samples, "postdesk_messages_fetched_total", mailbox="bulk") == left  # no message fetched twice
    assert metric(samples, "postdesk_intake_messages", status="pending") == 0
    assert metric(samples, "postdesk_intake_messages", status="duplicate") == 0
    requests = installation.requests()
    assert sorted(r["subject"] for r in requests) == subjects
    assert all(r["message_count"] == 1 for r in requests)
    assert (dovecot.message_count(mail_user), dovecot.message_count(mail_user, "Imported")) == (0, BULK)


def test_mailbox_edits_are_picked_up_without_a_restart(installation):
    first = add_maildir(installation, "first")
    maildir_deliver(first, make_message(subject="Before the edits"))

    with WorkerProcess(installation, env=FAST) as worker:  # POSTDESK_WORKER_RELOAD=0.5
        wait_for_requests(worker, "first", 1)

        installation.run("mailbox", "edit", "first", "--disable")
        time.sleep(1.0)  # two looks at the mailbox table: the runner is gone
        maildir_deliver(first, make_message(subject="While disabled"))
        time.sleep(2.0)  # longer than the Maildir watcher (1 s) and a reload (0.5 s) together
        assert len(worker.matching(r"request created .*mailbox=first")) == 1, worker.output()

        installation.run("mailbox", "edit", "first", "--enable")
        # Waits, not speed assertions (the mailboxes poll every 300 s, so only a reload
        # brings the mail in); generous, because a loaded CI machine once took over 20 s.
        wait_for_requests(worker, "first", 2, timeout=60)

        # A changed setting: the runner starts again with it (here: another Maildir).
        moved = installation.root / "maildirs" / "moved"
        maildir_deliver(moved, make_message(subject="In the new place"))
        installation.run("mailbox", "edit", "first", "--path", moved)
        wait_for_requests(worker, "first", 3, timeout=60)

        # A mailbox added while the worker runs is fetched too.
        second = add_maildir(installation, "second")
        maildir_deliver(second, make_message(subject="New mailbox"))
        wait_for_requests(worker, "second", 1, timeout=60)

        started = worker.matching(r"worker started")

    assert len(started) == 1
    subjects = sorted((r["mailbox"], r["subject"]) for r in installation.requests())
    assert subjects == [("first", "Before the edits"), ("first", "In the new place"), ("first", "While disabled"),
                        ("second", "New mailbox")]
