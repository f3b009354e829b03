"""Disk full, for real: the blob dir is a tmpfs of 1 MB (tests/support/disk.py), so
writes fail with ENOSPC from the kernel while the machine's disk is untouched.
(Root only, to mount; RLIMIT_FSIZE would give EFBIG without root, but it limits
one file's size, not the disk, and would hit SQLite's files too.)

    write_files     the 3rd file fails: no temp file is left, not even the first two
    postdesk fetch  the failing mailbox is reported (kind "disk", the bytes free),
                    the next mailbox is fetched, exit 1 only at the end, no traceback;
                    once space is freed, a re-run imports everything exactly once
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re

import pytest

from postdesk.store import blobs
from tests.support.disk import small_disk, temp_files
from tests.support.installation import Installation
from tests.support.mail import make_message, maildir_deliver, maildir_files

FS = {"POSTDESK_BLOB_STORE": "fs"}  # files, also on PostgreSQL (where the default is the database)
DISK_FULL = re.compile(r"^disk full: \d+ bytes free in the data dir$")


def big_message(n: int) -> bytes:
    """About 400 KB: stored as a blob file (over blobs.INLINE_MAX)."""
    return make_message(subject=f"Big {n}", attachments=[(f"scan{n}.bin", "application/octet-stream", os.urandom(300_000))])


def test_write_files_removes_every_temp_file_when_the_third_fails(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    items = [(f"{n:02x}" + "0" * 62, os.urandom(400_000)) for n in range(3)]
    with small_disk(blobs.blob_dir(), "1m"):
        with pytest.raises(OSError) as raised:
            blobs.write_files(items)
        assert raised.value.errno == errno.ENOSPC
        assert temp_files(blobs.blob_dir()) == []
        assert not any(blobs.path_for(sha).exists() for sha, _ in items)
        assert DISK_FULL.match(blobs.disk_full(raised.value))


def test_fetch_reports_the_full_disk_goes_on_and_exits_1_at_the_end(installation: Installation):
    big = installation.root / "maildirs" / "a-big"
    small = installation.root / "maildirs" / "b-small"
    for path in (big, small):
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True)
        installation.run("mailbox", "add", path.name, "--protocol", "maildir", "--path", path, "--after", "move:Imported")
    for n in range(4):
        maildir_deliver(big, big_message(n))
    maildir_deliver(small, make_message(subject="Small question"))

    with small_disk(installation.data_dir / "blobs", "1m") as disk:
        failed = installation.run("fetch", "--json", env=FS, check=False)

        assert failed.returncode == 1, (failed.stdout, failed.stderr)
        assert "Traceback" not in failed.stderr + failed.stdout, failed.stderr
        reports = {r["mailbox"]: r for r in json.loads(failed.stdout)}
        assert reports["a-big"]["error_kind"] == "disk" and DISK_FULL.match(reports["a-big"]["error"]), reports
        assert reports["a-big"]["fetched"] == 0
        assert reports["b-small"]["error"] is None and reports["b-small"]["created"] == 1, reports
        assert "a-big: disk: disk full:" in failed.stderr  # the one-line reason for the exit status
        assert temp_files(disk.path) == []
        assert len(maildir_files(big)["new"]) == 4  # nothing acknowledged: it all waits at the source
        shown = installation.json("mailbox", "show", "a-big")
        assert shown["last_error_kind"] == "disk" and shown["last_error"].startswith("disk: disk full: "), shown
        assert shown["consecutive_failures"] == 1

        text = installation.run("fetch", env=FS, check=False)  # the plain-text report says the same
        assert text.returncode == 1 and "Traceback" not in text.stderr
        assert re.search(r"^a-big: fetched 0, .*; ERROR \(disk\): disk full: \d+ bytes free in the data dir$",
                         text.stdout, re.M), text.stdout

        disk.grow("64m")  # space freed
        again = {r["mailbox"]: r for r in installation.json("fetch", env=FS)}

    assert again["a-big"]["error"] is None and again["a-big"]["created"] == 4, again
    assert again["b-small"]["fetched"] == 0, again
    assert sorted(r["subject"] for r in installation.requests()) == ["Big 0", "Big 1", "Big 2", "Big 3", "Small question"]
    assert maildir_files(big)["new"] == [] and len(maildir_files(big / ".Imported")["cur"]) == 4
    shown = installation.json("mailbox", "show", "a-big")
    assert (shown["last_error"], shown["last_error_kind"], shown["consecutive_failures"]) == (None, None, 0)


def test_a_full_disk_while_processing_quarantines_nothing_and_the_message_waits(installation: Installation):
    """The attachment's blob file cannot be written (its directory is a full tmpfs):
    that is the disk's fault, not the message's.  Nothing is quarantined; the row
    stays pending and becomes a request once there is room."""
    inbox = installation.root / "maildirs" / "scans"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    installation.run("mailbox", "add", "scans", "--protocol", "maildir", "--path", inbox, "--after", "move:Imported")
    raw, scan = _message_whose_attachment_has_a_directory_of_its_own()
    maildir_deliver(inbox, raw)

    attachment_dir = installation.data_dir / "blobs" / hashlib.sha256(scan).hexdigest()[:2]
    with small_disk(attachment_dir, "64k") as disk:
        failed = installation.run("fetch", "--json", env=FS, check=False)

        assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
        [report] = json.loads(failed.stdout)
        assert report["error_kind"] == "disk" and report["quarantined"] == 0, report
        assert installation.json("quarantine", "list") == []
        assert installation.requests() == []

        disk.grow("64m")  # space freed
        installation.run("process", env=FS)

    assert [r["subject"] for r in installation.requests()] == ["Scan"]
    assert installation.json("quarantine", "list") == []


def _message_whose_attachment_has_a_directory_of_its_own() -> tuple[bytes, bytes]:
    """A message (over blobs.INLINE_MAX, so a file) with a 300 KB attachment whose
    blob lands in another blobs/xx/ directory than the raw message's."""
    for n in range(100):
        scan = bytes([n]) * 300_000
        raw = make_message(subject="Scan", attachments=[("scan.bin", "application/octet-stream", scan)])
        if hashlib.sha256(raw).hexdigest()[:2] != hashlib.sha256(scan).hexdigest()[:2]:
            return raw, scan
    raise AssertionError("no attachment found that lands apart")
