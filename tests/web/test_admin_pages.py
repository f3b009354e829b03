"""Admin pages that read well: the quarantine's rows (sender, subject, date, sizes in
KB/MB, a reason that never reads "0.0 MB > 0.0 MB"), and the mailbox form per protocol
(plain labels, only that protocol's fields, sections that fold away)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.template import Context, Template

from postdesk import mailboxes, pipeline, quarantine
from postdesk.models import Intake, Mailbox
from postdesk.sizes import MB, describe_over, describe_size
from postdesk.store import blobs
from tests.support.mail import maildir_deliver, make_message

pytestmark = pytest.mark.django_db


# --- sizes: one formatter ------------------------------------------------------------------


@pytest.mark.parametrize("size, said", [(0, "0 bytes"), (900, "900 bytes"), (1536, "1.5 KB"),
                                        (5 * MB, "5.0 MB"), (3 * 1024 * MB, "3.0 GB")])
def test_a_size_in_words(size, said):
    assert describe_size(size) == said
    assert Template("{% load sizes %}{{ n|size }}").render(Context({"n": size})) == said


def test_over_a_limit_never_reads_the_same_on_both_sides():
    assert describe_over(3 * MB, 1 * MB) == "3.0 MB > 1.0 MB"
    assert describe_over(1100, 1080) == "1,100 bytes > 1,080 bytes"  # both would read "1.1 KB"
    assert describe_over(600, 100) == "600 bytes > 100 bytes"


def test_a_message_over_a_tiny_limit_says_how_big_in_kb(as_admin, data_dir):
    inbox = data_dir / "maildir"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    call_command("mailbox", "add", "support", "--protocol", "maildir", "--path", str(inbox), "--after", "keep",
                 "--size-limit", "0.001", stdout=io.StringIO(), stderr=io.StringIO())
    maildir_deliver(inbox, make_message(subject="Big scan", sender="Jürgen Weiß <jurgen@example.com>",
                                        attachments=[("scan.bin", "application/octet-stream", bytes(range(256)) * 16)]))
    pipeline.fetch_all(["support"])
    intake = Intake.objects.get()
    assert "0.0 MB" not in intake.quarantine_reason and re.search(r"\d\.\d KB", intake.quarantine_reason)
    html = as_admin.get("/quarantine/").content.decode()
    assert "Big scan" in html and "Jürgen Weiß" in html and "jurgen@example.com" in html
    assert describe_size(intake.size) in html and "0.0 MB" not in html


# --- the quarantine list -------------------------------------------------------------------------


def _held(mailbox, raw: bytes, reason: str = "the parser gave up") -> Intake:
    return Intake.objects.create(mailbox=mailbox, source_key=f"k{Intake.objects.count()}", raw=blobs.put(raw), size=len(raw),
                                 status=Intake.Status.QUARANTINED, quarantine_reason=reason)


def test_the_list_shows_sender_subject_date_and_size(as_admin):
    box = Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR, path="/srv/mail")
    raw = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\nSubject: =?utf-8?q?Lizenzen_f=C3=BCr_2027?=\r\n"
           b"Date: Tue, 01 Dec 2026 09:30:00 +0000\r\n\r\n" + b"x" * 3000)
    _held(box, raw)
    _held(box, b"\x00\xff garbage without headers")  # a broken one still gets a row
    response = as_admin.get("/quarantine/")
    html = response.content.decode()
    assert "Jürgen &lt;j@example.com&gt;" in html and "Lizenzen für 2027" in html
    assert re.search(r'sent <time datetime="2026-12-01T\d\d:30:00', html) and describe_size(len(raw)) in html
    assert "(no subject)" in html and html.count('data-label="From"') == 2
    assert "style=" not in html


def test_the_cli_list_shows_the_same_rows(as_admin):
    box = Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR, path="/srv/mail")
    _held(box, b"From: ann@example.com\r\nSubject: Invoice\r\n\r\n" + b"y" * 2048)
    out = io.StringIO()
    call_command("quarantine", "list", stdout=out)
    text = out.getvalue()
    assert "2.0 KB" in text and "from ann@example.com: Invoice" in text
    (row,) = [quarantine.as_dict(h.intake, h.envelope) for h in quarantine.with_envelopes(quarantine.held())]
    assert (row["from"], row["subject"], row["size_text"]) == ("ann@example.com", "Invoice", "2.0 KB")


# --- the mailbox form, per protocol ---------------------------------------------------------------


def _field(html: str, name: str) -> str:
    at = html.index(f'name="{name}"')
    start = html.rindex('<div class="field', 0, at)
    return html[start:html.index(">", start) + 1]


def _shown(html: str, name: str) -> bool:
    return " hidden" not in _field(html, name)


@pytest.mark.parametrize("protocol, shown, hidden", [
    ("maildir", ["path", "folder", "after"], ["host", "port", "username", "password", "sent_folder", "verify_tls"]),
    ("pop3", ["host", "port", "username", "password", "verify_tls"], ["path", "folder", "move_folder", "sent_folder"]),
    ("imap", ["host", "folder", "move_folder", "sent_folder", "password"], ["path", "oauth_client_id"]),
])
def test_the_edit_form_shows_only_its_protocols_fields(as_admin, protocol, shown, hidden):
    settings = {"name": "box", "protocol": protocol, "after": "keep"}
    settings.update({"path": "/srv/mail"} if protocol == "maildir" else {"host": "mail.example", "username": "desk"})
    box = mailboxes.add(settings)
    html = as_admin.get(f"/mailboxes/{box.pk}/edit/").content.decode()
    for name in shown:
        assert _shown(html, name), name
    for name in hidden:
        assert not _shown(html, name), name


def test_labels_are_plain_language(as_admin):
    html = as_admin.get("/mailboxes/add/").content.decode()
    for label in ("Verify the server&#x27;s certificate", "CA certificate file (PEM)", "Size limit (MB)",
                  "Check for new mail every (seconds)", "Time limit of one fetch (seconds)"):
        assert label in html, label
    for machine_words in ("Verify tls", "Ca file", "Size limit mb", "Pass deadline"):
        assert machine_words not in html, machine_words


def test_every_section_after_the_first_folds(as_admin):
    html = as_admin.get("/mailboxes/add/").content.decode()
    names = re.findall(r'<summary><span class="fold-name">([^<]+)</span>', html)
    assert names == ["Connection", "Sign-in", "After import", "Sending", "Acknowledgement", "Advanced"]
    assert "<textarea" in html and 'class="settings-form"' in html
