"""The intake pipeline end to end, on Maildir mailboxes (real directories, no server).

Two ways of running Postdesk here:
  in-process   pytest-django's database (`desk` fixture), `call_command` and the ORM:
               routing, threading, duplicates, after-import policies, export --since
  subprocess   `python -m postdesk` against an isolated installation (`installation`):
               the CLI's output and exit status, quarantine, reprocess, crash injection
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from postdesk.models import Intake, Message, Request
from tests.support.installation import Installation
from tests.support import commands
from tests.support.mail import make_bounce, make_message, maildir_deliver, maildir_files, new_message_id

ALICE = "Alice Customer <alice@customer.example>"
CAROL = "Carol Colleague <carol@customer.example>"  # same domain as Alice
MALLORY = "Mallory Stranger <mallory@elsewhere.example>"  # never took part

SUMMARY_KEYS = {"number", "subject", "status", "assignee", "mailbox", "customer", "message_count", "created"}
MESSAGE_KEYS = {"message_id", "from", "date", "subject", "text", "auto_submitted", "attachments"}
ATTACHMENT_KEYS = {"filename", "content_type", "size", "sha256", "inline"}
QUARANTINE_KEYS = {"id", "mailbox", "source_key", "size", "fetched", "reason"}
MAILBOX_KEYS = {"name", "protocol", "host", "port", "security", "username", "password", "folder", "path", "after",
                "assign", "enabled"}


# =========================================================================== in-process


class Desk:
    """Maildir mailboxes under a tmp dir, driven through the management commands in-process."""

    def __init__(self, root: Path):
        self.root = root

    def mailbox(self, name: str, *options: str, after: str = "keep") -> Path:
        path = self.root / "maildirs" / name
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        call_command("mailbox", "add", name, "--protocol", "maildir", "--path", str(path), "--after", after, *options,
                     stdout=io.StringIO(), stderr=io.StringIO())
        return path

    def fetch(self, *names: str) -> list[dict]:
        return commands.fetch(*names)

    def receive(self, name: str, raw: bytes) -> dict:
        """Deliver one message into mailbox `name` and fetch that mailbox."""
        maildir_deliver(self.root / "maildirs" / name, raw)
        (report,) = self.fetch(name)
        return report


@pytest.fixture
def desk(transactional_db, settings, tmp_path) -> Desk:
    # The processing transaction must really commit (transactional_db), and the
    # blob store must live in this test's tmp dir, not the checkout.
    settings.DATA_DIR = tmp_path / "data"
    return Desk(tmp_path)


@pytest.fixture
def phil(transactional_db) -> User:
    return User.objects.create_user("phil", "phil@desk.example", is_staff=True)


def request_of(message_id: str) -> Request:
    return Message.objects.get(message_id=message_id.strip("<>")).request


def opened(desk: Desk, mailbox: str = "support", sender: str = ALICE, subject: str = "Printer on fire") -> tuple[Request, str]:
    """A first message that opens a request; returns (request, its Message-ID)."""
    mid = new_message_id()
    desk.receive(mailbox, make_message(subject=subject, sender=sender, message_id=mid))
    return request_of(mid), mid


# --------------------------------------------------------------------------- routing


def test_mailbox_without_assign_puts_new_requests_in_the_general_queue(desk):
    desk.mailbox("support")
    request, _ = opened(desk)
    assert request.assignee is None
    assert request.mailbox.name == "support"
    assert request.customer.address == "alice@customer.example"


def test_mailbox_with_assign_gives_new_requests_to_that_user(desk, phil):
    desk.mailbox("sales", "--assign", "phil")
    request, _ = opened(desk, "sales")
    assert request.assignee == phil


def test_follow_up_through_another_mailbox_keeps_the_assignee(desk, phil):
    desk.mailbox("sales", "--assign", "phil")
    desk.mailbox("support")
    assigned, assigned_mid = opened(desk, "sales", subject="Quote please")
    general, general_mid = opened(desk, "support", subject="Broken login")

    desk.receive("support", make_message(subject="Re: Quote please", in_reply_to=assigned_mid))
    desk.receive("sales", make_message(subject="Re: Broken login", in_reply_to=general_mid))

    assigned.refresh_from_db()
    general.refresh_from_db()
    assert assigned.messages.count() == 2 and assigned.assignee == phil
    assert general.messages.count() == 2 and general.assignee is None


def test_customer_reply_to_a_closed_request_reopens_it(desk):
    desk.mailbox("support")
    request, mid = opened(desk)
    Request.objects.filter(pk=request.pk).update(status=Request.Status.CLOSED)

    desk.receive("support", make_message(subject="Re: Printer on fire", in_reply_to=mid, body="It is on fire again.\n"))

    request.refresh_from_db()
    assert request.status == Request.Status.OPEN
    assert request.messages.count() == 2
    assert request.events.filter(kind="reopened").exists()


# --------------------------------------------------------------------------- threading


def test_reply_threads_by_references(desk):
    desk.mailbox("support")
    request, mid = opened(desk)
    reply = make_message(subject="a different subject", references=[new_message_id(), f"<{mid.strip('<>')}>"])
    report = desk.receive("support", reply)
    assert report["threaded"] == 1 and report["created"] == 0
    assert request.messages.count() == 2


def test_reply_threads_by_in_reply_to(desk):
    desk.mailbox("support")
    request, mid = opened(desk)
    report = desk.receive("support", make_message(subject="unrelated words", in_reply_to=mid))
    assert report["threaded"] == 1
    assert request.messages.count() == 2


@pytest.mark.parametrize("prefix", ["Re:", "RE:", "AW:", "SV:", "VS:", "Fwd:", "TR:", "Antw:"])
def test_subject_tag_behind_a_reply_prefix_threads(desk, prefix):
    desk.mailbox("support")
    request, _ = opened(desk)
    report = desk.receive("support", make_message(subject=f"{prefix} [PD-{request.pk}] Printer on fire"))
    assert report["threaded"] == 1, report
    assert request.messages.count() == 2


@pytest.mark.parametrize("tag", ["[#{n}]", "[XX-{n}]"])
def test_another_systems_tag_never_matches(desk, tag):
    desk.mailbox("support")
    request, _ = opened(desk)
    subject = f"Re: {tag.format(n=request.pk)} Printer on fire"
    report = desk.receive("support", make_message(subject=subject))
    assert report["created"] == 1 and report["threaded"] == 0
    assert request.messages.count() == 1


def test_subject_tag_from_a_stranger_opens_a_new_request(desk):
    desk.mailbox("support")
    request, _ = opened(desk)
    report = desk.receive("support", make_message(subject=f"Re: [PD-{request.pk}] Printer on fire", sender=MALLORY))
    assert report["created"] == 1
    assert request.messages.count() == 1
    assert list(request.mentioned_by.values_list("customer__address", flat=True)) == ["mallory@elsewhere.example"]


def test_subject_tag_from_the_customers_domain_joins(desk):
    desk.mailbox("support")
    request, _ = opened(desk)
    report = desk.receive("support", make_message(subject=f"Re: [PD-{request.pk}] Printer on fire", sender=CAROL))
    assert report["threaded"] == 1
    assert request.messages.count() == 2
    assert request.messages.order_by("id").last().thread_rule == "subject-tag"
    assert not request.mentioned_by.exists()


# --------------------------------------------------------------------------- strangers and subject tags
# A tag alone lets a message join only when its sender takes part in the request, or
# writes from the customer's own organisation domain and that domain is not public.

ALICE_FREEMAIL = "Alice Customer <alice@gmail.com>"
MALLORY_FREEMAIL = "Mallory Stranger <mallory@gmail.com>"  # the customer's domain, but anyone can get one


def tagged(request: Request, **fields) -> bytes:
    return make_message(subject=f"Re: [PD-{request.pk}] Printer on fire", **fields)


def history(request: Request) -> list[str]:
    return [f"{e.kind}: {e.detail}" for e in request.events.order_by("id")]


def test_stranger_at_the_customers_free_mail_domain_opens_a_request_that_mentions_the_tagged_one(desk):
    desk.mailbox("support")
    request, _ = opened(desk, sender=ALICE_FREEMAIL)

    report = desk.receive("support", tagged(request, sender=MALLORY_FREEMAIL, headers={"Reply-To": "x@evil.example"}))

    assert (report["created"], report["threaded"]) == (1, 0)
    assert request.messages.count() == 1
    new = Request.objects.exclude(pk=request.pk).get()
    assert list(new.mentions.all()) == [request] and list(request.mentioned_by.all()) == [new]
    why = (f"subject tag [PD-{request.pk}] ignored: mallory@gmail.com does not take part in #{request.pk} "
           "(gmail.com is a public mail domain, on the shipped free-mail list)")
    assert history(new)[-1] == f"mentions: #{request.pk} ({why})"
    assert history(request)[-1] == f"mentioned: by #{new.pk}, a request of its own ({why})"
    message = new.messages.get()
    assert (message.thread_rule, message.reply_to_trusted) == ("created", True)  # its own request: its own Reply-To
    # `requests show --json` and `export` carry the link both ways.
    from postdesk import serialize

    assert serialize.detail(new)["mentions"] == [request.pk] and serialize.detail(request)["mentioned_by"] == [new.pk]
    assert serialize.detail(new)["messages"][0]["joined_by"] == "created"


def test_stranger_answering_our_reply_on_their_own_request_joins_it_despite_the_first_tag(desk):
    desk.mailbox("support")
    request, _ = opened(desk, sender=ALICE_FREEMAIL)
    desk.receive("support", tagged(request, sender=MALLORY_FREEMAIL))
    own = Request.objects.get(customer__address="mallory@gmail.com")
    # Our reply on her request carries both tags; her answer comes back without References.
    subject = f"Re: [PD-{request.pk}] Printer on fire [PD-{own.pk}]"

    report = desk.receive("support", make_message(subject=subject, sender=MALLORY_FREEMAIL, body="still broken\n"))

    assert report["threaded"] == 1 and own.messages.count() == 2 and request.messages.count() == 1
    assert Request.objects.count() == 2


def test_colleague_at_the_customers_organisation_domain_joins(desk):
    desk.mailbox("support")
    request, _ = opened(desk)
    report = desk.receive("support", tagged(request, sender="Carol Colleague <CAROL@Customer.Example>"))
    assert report["threaded"] == 1
    assert not Request.objects.exclude(pk=request.pk).exists()


def test_participant_in_cc_of_an_earlier_message_joins_whatever_their_domain(desk):
    desk.mailbox("support")
    mid = new_message_id()
    desk.receive("support", make_message(subject="Printer on fire", message_id=mid, cc="Dave <Dave@gmail.com>"))
    request = request_of(mid)

    report = desk.receive("support", tagged(request, sender="Dave <dave@gmail.com>"))

    assert report["threaded"] == 1
    assert request.messages.order_by("id").last().thread_rule == "subject-tag"


def test_sender_of_an_earlier_message_joins_by_the_tag_later(desk):
    desk.mailbox("support")
    request, mid = opened(desk)
    desk.receive("support", make_message(subject="Re: Printer on fire", sender=MALLORY_FREEMAIL, in_reply_to=mid))
    assert request.messages.count() == 2  # In-Reply-To: the strong link, whoever sends it

    report = desk.receive("support", tagged(request, sender=MALLORY_FREEMAIL))

    assert report["threaded"] == 1 and request.messages.count() == 3


def test_participant_staged_earlier_in_the_same_batch_joins(desk):
    inbox = desk.mailbox("support")
    request, mid = opened(desk)
    maildir_deliver(inbox, make_message(subject="Re: Printer on fire", in_reply_to=mid, cc="dave@gmail.com"))
    maildir_deliver(inbox, tagged(request, sender="Dave <dave@gmail.com>"))

    (report,) = desk.fetch("support")

    assert (report["threaded"], report["created"]) == (2, 0)
    assert request.messages.count() == 3


def test_stranger_at_a_domain_an_admin_added_is_refused(desk):
    desk.mailbox("support")
    request, _ = opened(desk, sender="Alice <alice@bigisp.example>")
    desk.receive("support", tagged(request, sender="Carol <carol@bigisp.example>"))
    assert request.messages.count() == 2  # not listed yet: a colleague

    call_command("domains", "add", "bigisp.example", stdout=io.StringIO())
    report = desk.receive("support", tagged(request, sender="Bob <bob@bigisp.example>"))

    assert report["created"] == 1 and request.messages.count() == 2
    new = Request.objects.get(customer__address="bob@bigisp.example")
    assert list(new.mentions.all()) == [request]
    assert "(bigisp.example is a public mail domain, added by an admin))" in history(new)[-1]


def test_message_without_a_sender_never_joins_by_the_tag(desk):
    desk.mailbox("support")
    request, _ = opened(desk)
    raw = tagged(request).replace(b"From: Alice Customer <alice@customer.example>\r\n", b"")
    report = desk.receive("support", raw)
    assert report["created"] == 1 and request.messages.count() == 1
    assert "the message has no sender address" in history(request)[-1]


def test_tag_of_a_request_that_does_not_exist_opens_a_plain_request(desk):
    desk.mailbox("support")
    report = desk.receive("support", make_message(subject="Re: [PD-999] Printer on fire", sender=MALLORY_FREEMAIL))
    assert report["created"] == 1
    assert not Request.objects.get().mentions.exists()


def test_joined_by_tag_reply_to_is_trusted_only_when_it_names_participants(desk):
    desk.mailbox("support")
    request, _ = opened(desk)
    desk.receive("support", tagged(request, sender=CAROL, headers={"Reply-To": "alice@customer.example"}, body="one\n"))
    desk.receive("support", tagged(request, sender=CAROL, headers={"Reply-To": "Carol <carol@customer.example>"}, body="two\n"))
    desk.receive("support", tagged(request, sender=CAROL, headers={"Reply-To": "x@evil.example, alice@customer.example"},
                                   body="three\n"))
    trusted = [m.reply_to_trusted for m in request.messages.order_by("id")]
    assert trusted == [True, True, True, False]


def test_stranger_message_processed_twice_changes_nothing(desk):
    desk.mailbox("support")
    request, _ = opened(desk, sender=ALICE_FREEMAIL)
    raw = tagged(request, sender=MALLORY_FREEMAIL)
    desk.receive("support", raw)
    before = (Request.objects.count(), Request.mentions.through.objects.count(), history(request))

    report = desk.receive("support", raw)  # the same message again: a second delivery, another mailbox's copy

    assert (report["duplicates"], report["created"]) == (1, 0)
    assert (Request.objects.count(), Request.mentions.through.objects.count(), history(request)) == before


def test_bounce_joins_the_request_of_the_message_it_reports_and_is_flagged(desk):
    desk.mailbox("support")
    original = make_message(subject="Printer on fire", message_id=new_message_id())
    desk.receive("support", original)
    request = Request.objects.get()

    report = desk.receive("support", make_bounce(original))

    assert report["threaded"] == 1, report
    bounce = request.messages.order_by("id").last()
    assert bounce.auto_submitted == "bounce"
    assert bounce.sender_address == "mailer-daemon@mx.customer.example"


def test_out_of_office_reply_joins_quietly_and_is_flagged(desk):
    desk.mailbox("support")
    request, mid = opened(desk)
    Request.objects.filter(pk=request.pk).update(status=Request.Status.CLOSED)

    ooo = make_message(subject="Out of office: Printer on fire", in_reply_to=mid,
                       headers={"Auto-Submitted": "auto-replied"}, body="I am away until Monday.\n")
    report = desk.receive("support", ooo)

    assert report["threaded"] == 1
    request.refresh_from_db()
    assert request.status == Request.Status.CLOSED, "an auto-reply must not reopen a request"
    assert request.auto_submitted == ""
    assert request.messages.order_by("id").last().auto_submitted == "auto-replied"


def test_auto_reply_that_matches_nothing_opens_a_flagged_request(desk):
    desk.mailbox("support")
    desk.receive("support", make_message(subject="Automatic reply: hello", in_reply_to=new_message_id(),
                                         headers={"Auto-Submitted": "auto-replied"}))
    request = Request.objects.get()
    assert request.auto_submitted == "auto-replied"
    assert request.messages.get().auto_submitted == "auto-replied"


# --------------------------------------------------------------------------- exactly once


def test_same_message_through_two_mailboxes_makes_one_request_with_one_message(desk):
    sales, support = desk.mailbox("sales"), desk.mailbox("support")
    raw = make_message(subject="Order 1234", to="sales@desk.example", cc="support@desk.example")
    maildir_deliver(sales, b"Delivered-To: sales@desk.example\r\n" + raw)
    maildir_deliver(support, b"Delivered-To: support@desk.example\r\n" + raw)

    desk.fetch()

    request = Request.objects.get()
    assert request.messages.count() == 1
    assert sorted(Intake.objects.values_list("status", flat=True)) == ["duplicate", "processed"]


def test_two_different_messages_sharing_a_message_id_make_two_requests(desk):
    desk.mailbox("support")
    mid = new_message_id()
    desk.receive("support", make_message(subject="First", sender=ALICE, message_id=mid, body="one\n"))
    desk.receive("support", make_message(subject="Second", sender=MALLORY, message_id=mid, body="two\n"))
    assert Request.objects.count() == 2
    assert Message.objects.filter(message_id=mid.strip("<>")).count() == 2


def test_two_notes_without_message_id_or_date_from_one_sender_are_both_kept(desk):
    # The same text sent at 8:00 and again at 17:30 by a mailer that writes neither
    # Message-ID nor Date: not provably one message, so neither is hidden.
    inbox = desk.mailbox("support")
    for when in ("08:00", "17:30"):
        note = make_message(subject="Call me", body="Please call me back.\n", message_id="", date=None)
        maildir_deliver(inbox, f"Received: by mx.desk.example; Mon, 2 Jun 2025 {when}:00 +0000\r\n".encode() + note)
    desk.fetch()
    assert Request.objects.count() == 2
    assert sorted(Intake.objects.values_list("status", flat=True)) == ["processed", "processed"]


def test_the_same_bytes_without_message_id_fetched_twice_are_one_message(desk):
    # A mailbox whose identity changed (UIDVALIDITY, a re-listed POP3 box) hands the
    # same copy over again under a new key: the same bytes, one message.
    sales, support = desk.mailbox("sales"), desk.mailbox("support")
    raw = make_message(subject="No id", message_id="", date=None)
    maildir_deliver(sales, raw)
    maildir_deliver(support, raw)
    desk.fetch()
    assert Request.objects.get().messages.count() == 1
    assert sorted(Intake.objects.values_list("status", flat=True)) == ["duplicate", "processed"]


def test_fetching_twice_imports_nothing_new(desk):
    inbox = desk.mailbox("support", after="keep")
    for i in range(3):
        maildir_deliver(inbox, make_message(subject=f"Question {i}"))
    (first,) = desk.fetch()
    (second,) = desk.fetch()
    assert (first["fetched"], first["created"]) == (3, 3)
    assert (second["listed"], second["fetched"], second["created"], second["duplicates"]) == (3, 0, 0, 0)
    assert Request.objects.count() == 3 and Message.objects.count() == 3


# --------------------------------------------------------------------------- after-import policies


@pytest.mark.parametrize("after", ["keep", "seen", "move:Done", "delete"])
def test_after_import_policy_leaves_the_maildir_files_where_they_belong(desk, after):
    inbox = desk.mailbox("support", after=after)
    names = sorted(maildir_deliver(inbox, make_message(subject=f"Question {i}")) for i in range(2))

    desk.fetch()
    (again,) = desk.fetch()

    files = maildir_files(inbox)
    done = maildir_files(inbox / ".Done")
    if after == "keep":
        assert files["new"] == names and files["cur"] == []
    elif after == "seen":
        assert files["new"] == [] and files["cur"] == [f"{n}:2,S" for n in names]
    elif after == "move:Done":
        assert files["new"] == [] and files["cur"] == []
        assert done["cur"] == [f"{n}:2,S" for n in names]
    else:
        assert files == {"new": [], "cur": [], "tmp": []}
    if after != "move:Done":
        assert not (inbox / ".Done").exists()
    assert Request.objects.count() == 2
    assert again["created"] == 0 and again["fetched"] == 0


# --------------------------------------------------------------------------- export --since


def test_export_since_selects_requests_by_their_last_activity(desk):
    desk.mailbox("support")
    old, _ = opened(desk, subject="Old question")
    new, _ = opened(desk, subject="New question")
    Request.objects.filter(pk=old.pk).update(updated_at=datetime(2020, 3, 1, tzinfo=timezone.utc))

    def export(*args) -> list[dict]:
        out = io.StringIO()
        call_command("export", *args, stdout=out)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    assert [r["number"] for r in export()] == [old.pk, new.pk]
    assert [r["number"] for r in export("--since", "2024-01-01")] == [new.pk]
    assert [r["number"] for r in export("--since", "2020-02-29T00:00:00+00:00")] == [old.pk, new.pk]
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    assert export("--since", tomorrow) == []


# =========================================================================== subprocess


def add_maildir(inst: Installation, name: str, *options: str, after: str = "keep") -> Path:
    path = inst.root / "maildirs" / name
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    inst.run("mailbox", "add", name, "--protocol", "maildir", "--path", path, "--after", after, *options)
    return path


def fetch(inst: Installation, *args: str, env: dict | None = None) -> list[dict]:
    reports = json.loads(inst.run("fetch", *args, "--json", env=env).stdout)
    for report in reports:
        assert report["error"] is None, report
    return reports


def blob_path(inst: Installation, raw: bytes) -> Path:
    """Where the file blob store keeps these bytes (found by name: the layout is its own business)."""
    sha = hashlib.sha256(raw).hexdigest()
    (path,) = (inst.data_dir / "blobs").rglob(sha)
    return path


# --------------------------------------------------------------------------- size limit, quarantine


def test_size_limit_leaves_a_big_message_at_the_source_and_reprocess_after_raising_it_imports_it(installation):
    inbox = add_maildir(installation, "support", "--size-limit", "0.001")  # about 1 KB
    big = make_message(subject="Big scan", attachments=[("scan.bin", "application/octet-stream", bytes(range(256)) * 16)])
    small = make_message(subject="Small question")
    assert len(big) > int(0.001 * 1048576) > len(small)
    maildir_deliver(inbox, big)
    maildir_deliver(inbox, small)

    (report,) = fetch(installation)

    assert report["created"] == 1 and report["quarantined"] == 1
    assert [r["subject"] for r in installation.requests()] == ["Small question"]
    (held,) = installation.json("quarantine", "list")
    assert set(held) >= QUARANTINE_KEYS
    assert held["mailbox"] == "support" and held["size"] == len(big) and held["left_at_source"]
    assert held["reason"] == f"too large ({len(big) / 1024:.1f} KB): left on the server"
    shown = installation.run("quarantine", "show", held["id"], "--raw", binary=True)
    assert shown.stdout == big[: big.index(b"\r\n\r\n") + 4]  # its header only: the file stays in the Maildir

    installation.run("mailbox", "edit", "support", "--size-limit", "1")
    assert "the next pass downloads them again" in installation.run("reprocess", held["id"]).stdout
    assert installation.json("quarantine", "list") == []
    (again,) = fetch(installation)

    assert again["created"] == 1 and again["quarantined"] == 0
    assert sorted(r["subject"] for r in installation.requests()) == ["Big scan", "Small question"]
    (third,) = fetch(installation)
    assert third["created"] == 0 and third["quarantined"] == 0


def test_reprocess_all_releases_every_message_left_at_the_source(installation):
    inbox = add_maildir(installation, "support", "--size-limit", "0.001")
    for i in range(2):
        maildir_deliver(inbox, make_message(subject=f"Big {i}", body="x" * 2000 + "\n"))
    (report,) = fetch(installation)
    assert report["quarantined"] == 2 and installation.requests() == []

    installation.run("mailbox", "edit", "support", "--size-limit", "1")
    installation.run("reprocess", "--all")
    assert installation.json("quarantine", "list") == []
    fetch(installation)

    assert sorted(r["subject"] for r in installation.requests()) == ["Big 0", "Big 1"]


def test_message_that_fails_to_process_is_quarantined_while_the_rest_import(installation):
    # A real failure: the raw bytes went missing from the blob store between intake
    # and processing.  The intake rows are committed by a run that dies right after
    # intake; the blob file of one message is then removed.
    fs = {"POSTDESK_BLOB_STORE": "fs"}
    inbox = add_maildir(installation, "support")
    # Over the inline limit (64 KB), so each raw message is a file of its own.
    long_body = "A long question about the printer.\n" * 2500
    raws = [make_message(subject=f"Question {i}", body=long_body) for i in range(3)]
    for raw in raws:
        maildir_deliver(inbox, raw)
    crashed = installation.run("fetch", env={**fs, "POSTDESK_CRASH_AT": "after-intake", "POSTDESK_CRASH_MODE": "exit"},
                               check=False)
    assert crashed.returncode != 0
    lost = blob_path(installation, raws[1])
    lost.unlink()

    (report,) = fetch(installation, env=fs)

    assert report["created"] == 2 and report["quarantined"] == 1
    assert sorted(r["subject"] for r in installation.requests()) == ["Question 0", "Question 2"]
    (held,) = installation.json("quarantine", "list", env=fs)
    assert "missing" in held["reason"] or "No such file" in held["reason"], held

    lost.write_bytes(raws[1])  # the store is repaired
    installation.run("reprocess", held["id"], env=fs)

    assert sorted(r["subject"] for r in installation.requests()) == ["Question 0", "Question 1", "Question 2"]
    assert installation.json("quarantine", "list", env=fs) == []


def test_message_dated_past_year_9999_in_utc_does_not_break_intake_or_export(installation):
    # 9999-12-31 23:59:59 -1200 is 10000-01-01 in UTC: outside Python's datetime and
    # PostgreSQL's readable range.  It must end up imported or quarantined, and
    # must never make the listing or the export fail.
    inbox = add_maildir(installation, "support")
    maildir_deliver(inbox, make_message(subject="From the far future", date="Fri, 31 Dec 9999 23:59:59 -1200"))
    maildir_deliver(inbox, make_message(subject="Ordinary"))

    (report,) = fetch(installation)

    assert report["created"] + report["quarantined"] == 2, report
    requests = installation.requests()
    assert "Ordinary" in [r["subject"] for r in requests]
    for r in requests:
        installation.run("requests", "show", r["number"], "--json")
    lines = installation.run("export").stdout.splitlines()
    assert len(lines) == len(requests)


# --------------------------------------------------------------------------- crash injection

CRASH_POINTS = ["after-intake", "after-acknowledge", "before-process", "inside-process"]


@pytest.mark.parametrize("mode", ["exit", "raise"])
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_then_rerun_imports_every_message_exactly_once(installation, point, mode):
    # Two mailboxes, one per policy (keep, move:Done): each gets its own crashing run,
    # then one ordinary run must finish both.
    inboxes = {after: add_maildir(installation, after.replace(":", "-"), after=after) for after in ("keep", "move:Done")}
    subjects = {after: [f"{after} question {i}" for i in range(5)] for after in inboxes}
    names = {after: sorted(maildir_deliver(inboxes[after], make_message(subject=s)) for s in subjects[after])
             for after in inboxes}
    # Processing points are reached once per message: crash on the third.
    spec = f"{point}:3" if point in ("before-process", "inside-process") else point

    for after in inboxes:
        crashed = installation.run("fetch", "--mailbox", after.replace(":", "-"),
                                   env={"POSTDESK_CRASH_AT": spec, "POSTDESK_CRASH_MODE": mode}, check=False)
        assert crashed.returncode != 0, crashed.stdout + crashed.stderr
        if mode == "exit":
            assert crashed.returncode == 75

    fetch(installation)

    requests = installation.requests()
    assert sorted(r["subject"] for r in requests) == sorted(subjects["keep"] + subjects["move:Done"])
    assert all(r["message_count"] == 1 for r in requests)
    keep, moved = maildir_files(inboxes["keep"]), maildir_files(inboxes["move:Done"])
    assert keep["new"] == names["keep"] and keep["cur"] == []
    assert moved["new"] == [] and moved["cur"] == []
    assert maildir_files(inboxes["move:Done"] / ".Done")["cur"] == [f"{n}:2,S" for n in names["move:Done"]]


# --------------------------------------------------------------------------- CLI: staff and mailboxes


def one_line_error(proc, status: int = 2) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_staff_add_reads_the_password_from_stdin(installation):
    installation.run("staff", "add", "phil", "--email", "phil@desk.example", "--name", "Phil Jones", "--password-stdin",
                     input="correct horse\n")
    (row,) = installation.json("staff", "list")
    assert row["username"] == "phil" and row["email"] == "phil@desk.example" and row["name"] == "Phil Jones"
    check = installation.run("shell", "--no-imports", "-c", "from django.contrib.auth.models import User; "
                             "u = User.objects.get(username='phil'); print('CHECK', u.check_password('correct horse'), u.is_staff)")
    assert check.stdout.split()[-3:] == ["CHECK", "True", "True"]


def test_mailbox_add_list_show_edit_remove(installation):
    installation.run("staff", "add", "phil", "--email", "phil@desk.example")
    path = add_maildir(installation, "support", "--address", "support@desk.example", after="seen")

    (listed,) = installation.json("mailbox", "list")
    shown = installation.json("mailbox", "show", "support")
    assert set(shown) >= MAILBOX_KEYS and listed == shown
    assert (shown["protocol"], shown["path"], shown["after"], shown["assign"]) == ("maildir", str(path), "seen", None)
    assert shown["enabled"] is True

    installation.run("mailbox", "edit", "support", "--after", "move:Done", "--assign", "phil")
    shown = installation.json("mailbox", "show", "support")
    assert (shown["after"], shown["assign"]) == ("move:Done", "phil")
    installation.run("mailbox", "edit", "support", "--unassign")
    assert installation.json("mailbox", "show", "support")["assign"] is None

    installation.run("mailbox", "remove", "support")
    assert installation.json("mailbox", "list") == []


def test_mailbox_add_edit_remove_print_json_with_json(installation):
    # The issue: every command prints JSON with --json.
    path = installation.root / "maildirs" / "support"
    added = installation.json("mailbox", "add", "support", "--protocol", "maildir", "--path", path, "--after", "keep")
    assert set(added) >= MAILBOX_KEYS and added["name"] == "support" and added["after"] == "keep"
    edited = installation.json("mailbox", "edit", "support", "--after", "seen")
    assert set(edited) >= MAILBOX_KEYS and edited["after"] == "seen"
    installation.json("mailbox", "remove", "support")
    assert installation.json("mailbox", "list") == []


def test_mailbox_with_imported_mail_is_disabled_not_removed(installation):
    inbox = add_maildir(installation, "support")
    maildir_deliver(inbox, make_message(subject="Hello"))
    fetch(installation)

    installation.run("mailbox", "remove", "support")

    assert installation.json("mailbox", "show", "support")["enabled"] is False
    assert len(installation.requests()) == 1


def test_mailbox_password_is_never_printed(installation):
    secret = "hunter2-very-secret"
    added = installation.run("mailbox", "add", "office", "--protocol", "imap", "--host", "imap.desk.example",
                             "--security", "tls", "--username", "desk", "--password-stdin", input=secret + "\n")
    outputs = [added]
    outputs.append(installation.run("mailbox", "show", "office", "--json"))
    outputs.append(installation.run("mailbox", "show", "office"))
    outputs.append(installation.run("mailbox", "list", "--json"))
    outputs.append(installation.run("mailbox", "list"))
    for proc in outputs:
        assert secret not in proc.stdout and secret not in proc.stderr
    assert json.loads(outputs[1].stdout)["password"] == "(set)"
    assert json.loads(outputs[3].stdout)[0]["password"] == "(set)"
    assert json.loads(outputs[1].stdout)["port"] == 993


def test_domains_add_list_check_remove(installation):
    assert "gmail.com is a public mail domain, on the shipped free-mail list" in installation.run("domains", "check", "Bob@GMail.com").stdout
    assert installation.json("domains", "check", "x@eu.mailinator.com")["listed_as"] == "mailinator.com"
    assert installation.json("domains", "check", "alice@bigisp.example")["public"] is False

    installation.run("domains", "add", "BigISP.example.", "other.example")
    listed = installation.json("domains", "list")
    assert [row["domain"] for row in listed["added"]] == ["bigisp.example", "other.example"]
    assert listed["shipped"]["Postdesk's own"] > 0
    checked = installation.json("domains", "check", "alice@mail.bigisp.example")
    assert (checked["public"], checked["listed_as"], checked["source"]) == (True, "bigisp.example", "added by an admin")

    installation.run("domains", "remove", "other.example")
    assert [row["domain"] for row in installation.json("domains", "list")["added"]] == ["bigisp.example"]
    audit = installation.run("shell", "--no-imports", "-c", "from postdesk.models import AuditEvent; "
                             "print('AUDIT', *AuditEvent.objects.order_by('id').values_list('kind', flat=True))")
    assert audit.stdout.split()[-4:] == ["AUDIT", "public-domain.added", "public-domain.added", "public-domain.removed"]


@pytest.mark.parametrize("args, says", [
    (("add", "gmail.com"), "listed already: gmail.com is a public mail domain, on the shipped free-mail list; nothing changed"),
    (("add", "new.example", "not a domain"), "'not a domain' is not a domain name (e.g. example.com); nothing changed"),
    (("add", "bob@new.example"), "is an address: give its domain alone"),
    (("remove", "gmail.com"), "gmail.com is on the shipped free-mail list, which cannot be changed here"),
    (("remove", "never.example"), "never.example was not added by an admin"),
])
def test_domains_errors_are_one_line_and_change_nothing(installation, args, says):
    assert says.lower() in one_line_error(installation.run("domains", *args, check=False)).lower()  # a sentence: its first word capitalised
    assert installation.json("domains", "list")["added"] == []


# --------------------------------------------------------------------------- CLI: requests, export


PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """One installation shared by the read-only CLI tests: staff phil; mailbox sales
    (assigned to phil) with two requests, support (general queue) with one."""
    inst = Installation(tmp_path_factory.mktemp("populated"))
    try:
        inst.run("staff", "add", "phil", "--email", "phil@desk.example")
        sales = add_maildir(inst, "sales", "--assign", "phil")
        support = add_maildir(inst, "support")
        maildir_deliver(sales, make_message(subject="Quote for 10 printers", attachments=[("quote.pdf", "application/pdf", PDF)]))
        maildir_deliver(sales, make_message(subject="Quote for toner", sender=CAROL))
        maildir_deliver(support, make_message(subject="Printer on fire", body="Smoke everywhere.\n"))
        fetch(inst)
        yield inst
    finally:
        inst.close()


@pytest.mark.parametrize(
    "filters, expected",
    [
        ((), {"Quote for 10 printers", "Quote for toner", "Printer on fire"}),
        (("--queue", "general"), {"Printer on fire"}),
        (("--queue", "all"), {"Quote for 10 printers", "Quote for toner", "Printer on fire"}),
        (("--assignee", "phil"), {"Quote for 10 printers", "Quote for toner"}),
        (("--mailbox", "support"), {"Printer on fire"}),
        (("--mailbox", "sales"), {"Quote for 10 printers", "Quote for toner"}),
    ],
    ids=["all", "general", "queue-all", "assignee", "mailbox-support", "mailbox-sales"],
)
def test_requests_list_filters(populated, filters, expected):
    assert {r["subject"] for r in populated.requests(*filters)} == expected


def test_requests_list_json_has_the_documented_keys(populated):
    rows = populated.requests()
    assert len(rows) == 3
    for row in rows:
        assert set(row) >= SUMMARY_KEYS
        assert row["message_count"] == 1 and row["status"] == "new"
    by_subject = {r["subject"]: r for r in rows}
    assert by_subject["Quote for toner"]["customer"] == "carol@customer.example"
    assert by_subject["Quote for toner"]["assignee"] == "phil" and by_subject["Quote for toner"]["mailbox"] == "sales"
    assert by_subject["Printer on fire"]["assignee"] is None
    datetime.fromisoformat(by_subject["Printer on fire"]["created"])


def test_requests_show_json_has_messages_and_attachments(populated):
    number = next(r["number"] for r in populated.requests() if r["subject"] == "Quote for 10 printers")
    shown = populated.json("requests", "show", number)
    assert set(shown) >= SUMMARY_KEYS | {"messages"}
    (message,) = shown["messages"]
    assert set(message) >= MESSAGE_KEYS
    assert message["from"]["address"] == "alice@customer.example"
    assert message["subject"] == "Quote for 10 printers" and message["auto_submitted"] is None
    (attachment,) = message["attachments"]
    assert set(attachment) >= ATTACHMENT_KEYS
    assert attachment == {**attachment, "filename": "quote.pdf", "content_type": "application/pdf", "size": len(PDF),
                          "sha256": hashlib.sha256(PDF).hexdigest(), "inline": False}


@pytest.mark.parametrize(
    "args, named",
    [
        (("mailbox", "show", "nosuch"), "nosuch"),
        (("mailbox", "edit", "nosuch", "--after", "keep"), "nosuch"),
        (("mailbox", "remove", "nosuch"), "nosuch"),
        (("fetch", "--mailbox", "nosuch"), "nosuch"),
        (("mailbox", "add", "bad", "--protocol", "maildir", "--path", "/tmp/nowhere", "--after", "sideways"), "sideways"),
        (("mailbox", "add", "pop", "--protocol", "pop3", "--host", "pop.desk.example", "--username", "desk",
          "--password-env", "HOME", "--after", "move:Done"), "pop3"),
    ],
    ids=["show-missing", "edit-missing", "remove-missing", "fetch-missing", "bad-after", "pop3-move"],
)
def test_mailbox_errors_are_one_line_with_exit_status_2(populated, args, named):
    line = one_line_error(populated.run(*args, check=False))
    assert named in line
    if args[:2] == ("mailbox", "add"):
        assert [m["name"] for m in populated.json("mailbox", "list")] == ["sales", "support"]


def test_requests_show_of_a_missing_number_is_a_one_line_error(populated):
    line = one_line_error(populated.run("requests", "show", "999999", "--json", check=False))
    assert "999999" in line


def test_export_prints_one_json_object_per_request(populated):
    lines = populated.run("export").stdout.splitlines()
    exported = [json.loads(line) for line in lines]
    assert sorted(r["number"] for r in exported) == sorted(r["number"] for r in populated.requests())
    for request in exported:
        assert set(request) >= SUMMARY_KEYS | {"messages"}
        assert len(request["messages"]) == 1
    assert populated.run("export", "--since", "2999-01-01").stdout == ""
    assert len(populated.run("export", "--since", "2000-01-01").stdout.splitlines()) == 3
    one_line_error(populated.run("export", "--since", "last tuesday", check=False))


# --------------------------------------------------------------------------- derived attachment files


@pytest.mark.django_db(transaction=True)
def test_torn_attachment_file_is_made_again_from_the_raw_message(desk):
    """Attachment files are written without a sync; a crash may leave one torn.
    Reading verifies the sha256 and re-makes it from the (synced) raw message."""
    from postdesk.models import Attachment
    from postdesk.store import blobs
    from postdesk.store.attachments import read_attachment

    payload = bytes(range(256)) * 400  # over INLINE_MAX: kept as a file
    desk.mailbox("support")
    desk.receive("support", make_message(subject="with a file", attachments=[("data.bin", "application/octet-stream", payload)]))
    attachment = Attachment.objects.get(filename="data.bin")
    path = blobs.path_for(attachment.blob_id)
    if blobs.backend() == "db":
        pytest.skip("attachments live in the database here: nothing to tear")
    path.write_bytes(b"\0" * len(payload))  # torn: right size, wrong bytes
    assert read_attachment(attachment) == payload
    assert path.read_bytes() == payload
    path.unlink()
    assert read_attachment(attachment) == payload
