"""A running worker when the data dir's disk is full (a 1 MB tmpfs as the blob dir,
tests/support/disk.py): the mailbox whose mail does not fit fails with kind
"disk", one log line a pass and no traceback, its health says so, the other
mailbox keeps importing, and freeing space is enough for it to recover."""

from __future__ import annotations

import os

from tests.support.disk import small_disk, temp_files
from tests.support.mail import make_message, maildir_deliver
from tests.support.worker import WorkerProcess, metric, wait_for
from tests.worker.helpers import FAST, add_maildir, failures, show, wait_for_requests


def test_disk_full_is_reported_in_health_without_tracebacks_and_the_worker_recovers_when_space_is_freed(installation):
    big = add_maildir(installation, "big", after="move:Imported")
    local = add_maildir(installation, "local")
    for n in range(4):  # about 400 KB each: blob files, 1.6 MB in all
        maildir_deliver(big, make_message(subject=f"Big {n}", attachments=[("scan.bin", "application/octet-stream", os.urandom(300_000))]))

    with small_disk(installation.data_dir / "blobs", "1m") as disk:
        with WorkerProcess(installation, env={**FAST, "POSTDESK_BLOB_STORE": "fs"}) as worker:
            wait_for(lambda: len(failures(worker, "big")) >= 3, 20, what=worker.output)
            maildir_deliver(local, make_message(subject="Small question"))
            wait_for_requests(worker, "local", 1)

            shown = show(installation, "big")
            assert shown["last_error_kind"] == "disk", shown
            assert shown["last_error"].startswith("disk: disk full: ") and "bytes free in the data dir" in shown["last_error"]
            assert metric(worker.metrics(), "postdesk_fetch_errors_total", mailbox="big", kind="disk") >= 3
            assert temp_files(disk.path) == []
            output = "\n".join(worker.lines)
            assert "Traceback" not in output and "Exception in thread" not in output, worker.output()
            # One line a failed pass: the runner's (the pass itself logs nothing more).
            assert len([line for line in worker.lines if "disk full" in line]) == len(failures(worker, "big")), worker.output()

            disk.grow("64m")
            wait_for_requests(worker, "big", 4, timeout=20)
            wait_for(lambda: show(installation, "big")["consecutive_failures"] == 0, 10)
            assert any("mailbox recovered" in line and "mailbox=big" in line for line in worker.lines), worker.output()
