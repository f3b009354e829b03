"""Hostile and unlucky servers (issue 10, items 3, 4 and 9): a slow server costs
only itself, memory stays bounded, and each failure reads as what it is.

    size          announced over the limit: left at the source with its header, never
                  acknowledged (two passes), imported by a re-run after raising the limit
    lies          a literal longer than announced is cut off; the other mailbox is fetched
    slow          a drip feed is cut as "too slow" while another mailbox's mail arrives;
                  the pass deadline ends a pass and keeps what was stored
    POP3          long lines imported exactly, a bounded RETR, a QUIT cut before +OK
    texts         a refused login, a server killed mid-fetch, no STARTTLS
    memory        `postdesk fetch` against an endless literal stays under 400 MB

The misbehaving servers are tests/servers/fakeimap.FakeImap; the well-behaved
one is the private Dovecot.  Most tests run the pipeline in this process
(pytest-django); the memory and the concurrent-drip tests run `postdesk fetch`
as a subprocess of a test installation.
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from postdesk import mailboxes, pipeline, quarantine
from postdesk.models import AuditEvent, Intake, Mailbox
from postdesk.sources import open_source
from postdesk.sources.pop3 import Pop3Source
from postdesk.store import blobs
from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.fakeimap import FakeImap
from tests.sources.test_mail_servers import add_mailbox, add_maildir, fetch
from tests.support.mail import make_message, maildir_deliver
from tests.support.worker import PostdeskProcess, wait_for

MB = 1048576
SEEN = "\\Seen"


# =========================================================================== helpers


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


def big_message(subject: str, size: int) -> bytes:
    """A message of about `size` bytes (an attachment of random-looking bytes)."""
    return make_message(subject=subject, attachments=[("big.bin", "application/octet-stream", bytes(range(256)) * (size // 256))])


def dovecot_mailbox(dovecot: Dovecot, user: MailUser, name: str = "support", *, protocol: str = "imap",
                    after: str = "keep", size_limit_mb: float = 50) -> Mailbox:
    port = dovecot.ports.imap if protocol == "imap" else dovecot.ports.pop3
    return mailboxes.add({"name": name, "protocol": protocol, "host": dovecot.host, "port": port, "security": "none",
                          "username": user.username, "password": user.password, "after": after,
                          "size_limit": size_limit_mb})


def fake_mailbox(server: FakeImap, name: str = "hostile", security: str = "none", **settings) -> Mailbox:
    return mailboxes.add({"name": name, "protocol": "imap", "host": server.host, "port": server.port,
                          "security": security, "username": server.username, "password": server.password,
                          "after": "keep", **settings})


def maildir_mailbox(tmp_path, name: str = "calm", messages: int = 1) -> Mailbox:
    path = tmp_path / name
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    for n in range(messages):
        maildir_deliver(path, make_message(subject=f"{name} question {n}"))
    return mailboxes.add({"name": name, "protocol": "maildir", "path": str(path), "after": "keep"})


def fetch_all(*mailboxes_: Mailbox) -> dict[str, pipeline.MailboxReport]:
    return {r.mailbox: r for r in pipeline.fetch_all([m.name for m in mailboxes_])}


def left_rows(mailbox: Mailbox) -> list[Intake]:
    return list(Intake.objects.filter(mailbox=mailbox, left_at_source=True))


# =========================================================================== size


@pytest.mark.django_db
def test_announced_too_large_is_left_on_the_imap_server_until_a_rerun(data_dir, dovecot, mail_user):
    big = big_message("Scanned contract", 2 * MB)
    dovecot.append(mail_user, big)
    dovecot.append(mail_user, make_message(subject="Small question"))
    mailbox = dovecot_mailbox(dovecot, mail_user, after="move:Imported", size_limit_mb=1)

    for _ in range(2):  # never acknowledged, on any later pass either
        report = fetch_all(mailbox)["support"]
        assert report.error is None, report
        [row] = left_rows(mailbox)
        assert row.status == Intake.Status.QUARANTINED and row.acknowledged_at is None
        assert row.quarantine_reason == f"too large ({row.size / MB:.1f} MB): left on the server"
        headers = blobs.read(row.raw_id)
        assert b"Subject: Scanned contract" in headers and len(headers) < 64 * 1024  # who sent what, not the body
        assert dovecot.fetch_flags(mail_user, "INBOX") == {1: ()}  # untouched: not moved, not even \Seen
    assert Intake.objects.filter(mailbox=mailbox).count() == 2  # no second placeholder
    assert quarantine.as_dict(row)["hint"] == "left on the server: raise the mailbox's size limit, then re-run"

    mailboxes.edit(mailbox, {"size_limit": 5})
    rerun = quarantine.rerun([row.pk])
    assert "downloads it again" in quarantine.describe_outcome(rerun.outcomes[row.pk])
    assert not Intake.objects.filter(pk=row.pk).exists()
    assert AuditEvent.objects.filter(kind="quarantine.rerun", target=quarantine.target(row.pk)).exists()

    report = fetch_all(mailbox)["support"]
    assert report.error is None and report.created == 1, report
    taken = Intake.objects.get(mailbox=mailbox, source_key=row.source_key)
    assert blobs.read(taken.raw_id) == big and taken.status == Intake.Status.PROCESSED
    assert dovecot.message_count(mail_user, "INBOX") == 0  # now moved, like any imported message


@pytest.mark.django_db
def test_announced_too_large_is_left_on_the_pop3_server(data_dir, dovecot, mail_user):
    dovecot.append(mail_user, big_message("Huge scan", 2 * MB))
    dovecot.append(mail_user, make_message(subject="Small one"))
    mailbox = dovecot_mailbox(dovecot, mail_user, protocol="pop3", after="delete", size_limit_mb=1)
    for _ in range(2):
        report = fetch_all(mailbox)["support"]
        assert report.error is None, report
        [row] = left_rows(mailbox)
        assert b"Subject: Huge scan" in blobs.read(row.raw_id)
        assert re.fullmatch(r"too large \(2\.\d MB\): left on the server", row.quarantine_reason)
        assert dovecot.message_count(mail_user, "INBOX") == 1  # the small one deleted, the large one kept


@pytest.mark.django_db
def test_a_too_large_maildir_file_is_not_read_whole(data_dir, tmp_path):
    mailbox = maildir_mailbox(tmp_path, messages=0)
    maildir_deliver(mailbox.path, big_message("Backup", 300 * 1024))
    mailboxes.edit(mailbox, {"size_limit": 0.1})
    report = fetch_all(mailbox)["calm"]
    assert report.error is None, report
    [row] = left_rows(mailbox)
    assert row.quarantine_reason.startswith("too large (") and " KB): left on the server" in row.quarantine_reason
    assert b"Subject: Backup" in blobs.read(row.raw_id)


def test_sizes_below_a_megabyte_read_in_kilobytes():
    from postdesk.intake import _size_reason

    assert _size_reason(300 * 1024, 100 * 1024) == "over the size limit: 300.0 KB > 100.0 KB (re-run to import it anyway)"


# =========================================================================== lies


@pytest.mark.django_db
def test_a_literal_longer_than_announced_is_cut_off_and_the_other_mailbox_fetched(data_dir, tmp_path):
    honest, liar = make_message(subject="Honest"), big_message("Liar", 200 * 1024)
    with FakeImap([honest, liar], lie={2: 1000}) as server:
        hostile, calm = fake_mailbox(server), maildir_mailbox(tmp_path)
        reports = fetch_all(hostile, calm)
        assert reports["calm"].error is None and reports["calm"].created == 1
        report = reports["hostile"]
        assert report.error_kind == "too-large"
        assert "for message 4242/2, over the 5.1 KB allowed; cut off (the message is left on the server)" in report.error
        [row] = left_rows(hostile)
        assert row.source_key == "4242/2"
        assert row.quarantine_reason == "too large (more than the 1000 bytes announced): left on the server"

        again = fetch_all(hostile)["hostile"]  # the liar is not tried again; the honest one comes
        assert again.error is None and again.created == 1, again
    assert not any("STORE" in c.upper() or "MOVE" in c.upper() for c in server.commands)


# =========================================================================== slow


def test_a_drip_feed_is_cut_as_too_slow_while_another_mailbox_is_fetched(installation):
    calm_path = add_maildir(installation, "calm")
    with FakeImap([make_message(subject="Dripping")], drip={1}, drip_seconds=1.0) as server:
        add_mailbox(installation, "hostile", protocol="imap", host=server.host, port=server.port, security="none",
                    username=server.username, password=server.password)
        slow = PostdeskProcess(installation, "fetch", "--mailbox", "hostile", "--json",
                               env={"POSTDESK_MIN_RATE_WINDOW": "15"})
        slow.start()
        try:
            wait_for(lambda: any("FETCH" in c and "BODY.PEEK[]" in c for c in server.commands), 60,
                     what="the slow fetch to ask for the message")
            maildir_deliver(calm_path, make_message(subject="Meanwhile"))
            assert fetch(installation, "--mailbox", "calm")["calm"]["created"] == 1
            assert slow.running  # the other mailbox's mail arrived while the slow one was pending
            wait_for(lambda: not slow.running, 120, what=slow.output)
        finally:
            if slow.running:
                slow.kill()
    output = "\n".join(slow.lines)
    assert '"error_kind": "slow"' in output and "is too slow:" in output and "below the minimum of 10.0 KB/s" in output


@pytest.mark.django_db
def test_the_pass_deadline_ends_a_pass_and_keeps_what_was_stored(data_dir, monkeypatch):
    monkeypatch.setattr(pipeline, "BATCH_MESSAGES", 1)  # one message a batch: three are stored before the drip
    monkeypatch.setenv("POSTDESK_MIN_RATE", "0")  # only the deadline can end it
    messages = [make_message(subject=f"Question {n}") for n in range(3)] + [make_message(subject="Drip")]
    with FakeImap(messages, drip={4}, drip_seconds=0.5) as server:
        mailbox = fake_mailbox(server)
        Mailbox.objects.filter(pk=mailbox.pk).update(pass_deadline=3)  # below what an admin may set: a short test
        report = fetch_all(mailbox)["hostile"]
    assert report.error_kind == "slow" and "did not finish within its deadline of 3 s" in report.error, report
    assert report.created == 3
    assert Intake.objects.filter(mailbox=mailbox).count() == 3
    assert Mailbox.objects.get(pk=mailbox.pk).consecutive_failures == 1  # a slow mailbox is a failing one


@pytest.mark.django_db
def test_the_pass_deadline_is_a_mailbox_setting(data_dir, tmp_path):
    mailbox = maildir_mailbox(tmp_path)
    assert mailboxes.as_dict(mailbox)["pass_deadline"] == 600
    mailboxes.edit(mailbox, {"pass_deadline": 120})
    assert mailboxes.as_dict(Mailbox.objects.get(pk=mailbox.pk))["pass_deadline"] == 120
    with pytest.raises(mailboxes.InvalidSettings, match="the pass deadline is at least 10 seconds"):
        mailboxes.edit(mailbox, {"pass_deadline": 1})


def test_pass_deadline_from_the_command_line(installation):
    installation.run("mailbox", "add", "box", "--protocol", "maildir", "--path", installation.root, "--pass-deadline", "90")
    assert installation.json("mailbox", "show", "box")["pass_deadline"] == 90
    installation.run("mailbox", "edit", "box", "--pass-deadline", "300")
    assert installation.json("mailbox", "show", "box")["pass_deadline"] == 300


# =========================================================================== POP3


@pytest.mark.django_db
def test_pop3_long_lines_and_dot_lines_are_imported_exactly(data_dir, dovecot, mail_user):
    raw = (b"From: Alice <alice@customer.example>\r\nTo: support@desk.example\r\nSubject: Long lines\r\n"
           b"Message-ID: <long-lines@customer.example>\r\nDate: Mon, 02 Jun 2025 10:00:00 +0000\r\n\r\n"
           + b"x" * 10000 + b"\r\n" + b".a line that starts with a dot\r\n..two dots\r\n.\r\n"
           + b"y" * 70000 + b"\r\nend\r\n")
    dovecot.append(mail_user, raw)
    mailbox = dovecot_mailbox(dovecot, mail_user, protocol="pop3")
    report = fetch_all(mailbox)["support"]
    assert report.error is None and report.created == 1, report
    assert blobs.read(Intake.objects.get(mailbox=mailbox).raw_id) == raw


@pytest.mark.django_db
def test_pop3_retr_stops_past_the_limit_when_the_listing_lied(data_dir, dovecot, mail_user):
    dovecot.append(mail_user, big_message("Liar", 1 * MB))
    mailbox = dovecot_mailbox(dovecot, mail_user, protocol="pop3", size_limit_mb=0.1)
    source = open_source(mailbox)
    try:
        [listed] = source.list()
        source._sizes[listed.key] = 1000  # what a lying LIST would have said
        items = []
        with pytest.raises(Exception) as failure:
            for item in source.fetch([listed.key]):
                items.append(item)
    finally:
        source.close()
    assert failure.value.kind == "too-large"
    assert "sent more than 102.4 KB for message" in failure.value.message and "(it announced 1000 bytes)" in failure.value.message
    [left] = items
    assert left.lied and b"Subject: Liar" in left.headers and len(left.headers) < 64 * 1024


@pytest.mark.django_db
def test_pop3_quit_cut_before_its_answer_says_the_server_may_have_deleted(data_dir, dovecot, mail_user, monkeypatch):
    for n in range(2):
        dovecot.append(mail_user, make_message(subject=f"Question {n}"))
    mailbox = dovecot_mailbox(dovecot, mail_user, protocol="pop3", after="delete")
    original = Pop3Source.close

    def quit_then_cut(self):
        self.client.file = io.BytesIO(b"")  # QUIT goes out; its +OK never comes back
        return original(self)

    monkeypatch.setattr(Pop3Source, "close", quit_then_cut)
    report = fetch_all(mailbox)["support"]
    assert report.error_kind == "network"
    assert "the server may have deleted the 2 messages marked for deletion" in report.error
    assert "rolled back" not in report.error
    monkeypatch.undo()
    assert dovecot.message_count(mail_user, "INBOX") == 0  # it had QUIT: it did delete them
    Intake.objects.update(fetched_at=timezone.now() - timedelta(minutes=5))
    assert fetch_all(mailbox)["support"].error is None  # the next listing settles it
    assert not Intake.objects.filter(acknowledged_at=None).exists()


# =========================================================================== texts


@pytest.mark.django_db
def test_a_refused_login_reads_as_the_server_said_it(data_dir, dovecot, mail_user):
    mailbox = dovecot_mailbox(dovecot, mail_user._replace(password="wrong"))
    report = fetch_all(mailbox)["support"]
    assert report.error_kind == "login"
    assert report.error == f"login as {mail_user.username!r} refused: [AUTHENTICATIONFAILED] Authentication failed."


@pytest.mark.django_db
def test_a_server_killed_mid_fetch_is_a_network_error_without_a_traceback(data_dir, caplog):
    with FakeImap([make_message(subject="One"), make_message(subject="Two")], kill={2}) as server:
        mailbox = fake_mailbox(server)
        with caplog.at_level(logging.INFO, logger="postdesk"):
            report = fetch_all(mailbox)["hostile"]
    assert report.error_kind == "network"
    assert report.error == f"{server.host}:{server.port} closed the connection during FETCH"
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.django_db
def test_a_server_without_starttls_is_refused(data_dir):
    with FakeImap([make_message()]) as server:
        mailbox = fake_mailbox(server, security="starttls")
        report = fetch_all(mailbox)["hostile"]
    assert report.error_kind == "tls" and "does not offer STARTTLS; refusing to log in without TLS" in report.error
    assert not any(c.split()[1:2] == ["LOGIN"] for c in server.commands)  # the password never left


# =========================================================================== memory


def test_an_endless_literal_keeps_fetch_under_400_mb(installation):
    with FakeImap([make_message(subject="Endless")], endless={1}, lie={1: 40 * MB}) as server:
        add_mailbox(installation, "hostile", protocol="imap", host=server.host, port=server.port, security="none",
                    username=server.username, password=server.password)
        proc, peak_mb = run_measured(installation, "fetch", "--json", env={"POSTDESK_MAX_MESSAGE_MB": "50"})
    print(f"peak RSS of the fetch: {peak_mb:.0f} MB")  # shown with -s
    assert peak_mb < 400, f"peak RSS of the fetch: {peak_mb:.0f} MB"
    assert '"error_kind": "too-large"' in proc.stdout, proc.stdout + proc.stderr


# The fetch runs under a small launcher whose RUSAGE_CHILDREN holds that one process:
# pytest's own RUSAGE_CHILDREN is the largest child it ever reaped (a browser, a server).
_LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)")


def run_measured(installation, *args, env) -> tuple[subprocess.CompletedProcess, float]:
    """`postdesk ARGS` and its peak RSS in MB (ru_maxrss is in kilobytes on Linux)."""
    argv = [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "postdesk", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=installation.work_dir, env=installation.env(env),
                          timeout=300)
    *stderr, peak_kb = proc.stderr.rstrip("\n").split("\n")
    proc.stderr = "\n".join(stderr)
    return proc, int(peak_kb) / 1024
    assert "over the 45.0 MB allowed; cut off" in proc.stdout


def test_one_fetch_answer_holds_no_more_than_a_batch():
    from postdesk.sources import imap

    assert imap.FETCH_BYTES == pipeline.BATCH_BYTES


@pytest.mark.django_db
def test_what_arrived_before_a_cut_is_kept_and_acknowledged_by_the_next_pass(data_dir, monkeypatch):
    from postdesk.sources import imap

    monkeypatch.setattr(imap, "FETCH_BYTES", 1)  # a FETCH per message: two arrive before the third is cut
    messages = [make_message(subject=f"Question {n}") for n in range(3)]
    with FakeImap(messages, kill={3}) as server:
        mailbox = fake_mailbox(server, after="seen")
        first = fetch_all(mailbox)["hostile"]
        assert first.error_kind == "network" and first.fetched == 2 and first.created == 2, first
        assert not [c for c in server.commands if "STORE" in c.upper()]  # not on a session cut off mid-answer
        second = fetch_all(mailbox)["hostile"]
        assert second.error_kind == "network" and second.fetched == 0
    [store] = [c for c in server.commands if "STORE" in c.upper()]
    assert "1,2" in store or "1:2" in store
    assert Intake.objects.filter(mailbox=mailbox, acknowledged_at__isnull=False).count() == 2
