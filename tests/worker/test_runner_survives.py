"""A runner thread never dies on an exception (in-process, a real database failure):
with the mailbox table gone (renamed away) every pass raises around the pipeline;
the runner logs one line a pass, backs off and goes on, and fetches again as soon
as the table is back."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import connection

from postdesk.models import Intake, Mailbox
from postdesk.worker.config import WorkerConfig
from postdesk.worker.runner import MailboxRunner
from tests.support.mail import make_message, maildir_deliver
from tests.support.worker import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

QUICK = WorkerConfig(backoff_base=0.05, backoff_cap=0.2, max_idle=0)


def rename_table(old: str, new: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")


def test_a_runner_survives_a_broken_database_and_recovers(settings, tmp_path, caplog):
    settings.DATA_DIR = tmp_path / "data"
    path = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    mailbox = Mailbox.objects.create(name="support", protocol="maildir", path=str(path), after_import="keep", poll_interval=1)
    stop = threading.Event()
    runner = MailboxRunner(mailbox, stop, QUICK, threading.BoundedSemaphore(1), threading.BoundedSemaphore(1), lambda: None)
    caplog.set_level(logging.INFO, logger="postdesk")
    rename_table("postdesk_mailbox", "postdesk_mailbox_away")
    try:
        runner.start()
        wait_for(lambda: len([r for r in caplog.records if "mailbox pass failed: database:" in r.getMessage()]) >= 3, 10)
        assert runner.is_alive() and runner.passes == 0
    finally:
        rename_table("postdesk_mailbox_away", "postdesk_mailbox")
    try:
        maildir_deliver(path, make_message(subject="After the outage"))
        runner.new_mail()
        wait_for(lambda: Intake.objects.count() == 1, 10)
        assert runner.is_alive()
    finally:
        stop.set()
        runner.request_stop()
        runner.join(5)
    crashed = [r for r in caplog.records if r.name == "postdesk.worker" and "mailbox pass failed" in r.getMessage()]
    assert all(r.exc_info is None for r in crashed)  # one line each, no traceback
    assert not [r for r in caplog.records if r.name == "postdesk.pipeline" and r.levelno >= logging.WARNING]
