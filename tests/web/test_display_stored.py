"""What the request page shows of a message is computed once, at processing time
(in a parser process, under the parse time limit), and stored: the page and the
frame read the stored parts and never split a reply or count images per view.
A message stored before that gets its parts on its first view, once.
Also: the quarantine page's re-run with a longer time limit."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from postdesk.models import AuditEvent, Customer, Intake, Mailbox, Message, Request
from postdesk.process import parallel
from postdesk.store import blobs
from tests.support.mail import make_message

pytestmark = pytest.mark.django_db
_serial = itertools.count()

REPLY = "Thanks, it works.\n\nOn Mon, 3 Jun 2024, Bob wrote:\n> Is it fixed?\n"


def stored_message(**fields) -> Message:
    customer, _ = Customer.objects.get_or_create(address="ann@example.com")
    req = Request.objects.create(subject="Printer", customer=customer)
    raw = b"Subject: x\r\n\r\n" + str(next(_serial)).encode()
    return Message.objects.create(request=req, fingerprint=hashlib.sha256(raw).hexdigest(), subject="Printer",
                                  sender_address="ann@example.com", date=timezone.now(), raw=blobs.put(raw), **fields)


def test_the_page_shows_the_stored_split_not_a_new_one(logged_in):
    # What is stored differs from what splitting the text again would give: the page
    # shows the stored parts, so it did not split again.
    message = stored_message(text=REPLY, text_parts={"new_text": "STORED NEW", "quoted_text": "STORED QUOTE", "signature": ""})
    page = logged_in.get(f"/requests/{message.request_id}/").content.decode()
    assert "STORED NEW" in page and "STORED QUOTE" in page and "Is it fixed?" not in page


def test_nothing_folded_shows_the_whole_text(logged_in):
    message = stored_message(text=REPLY, text_parts={})
    page = logged_in.get(f"/requests/{message.request_id}/").content.decode()
    assert "Is it fixed?" in page and 'class="quoted"' not in page


def test_the_page_and_the_frame_use_the_stored_html_parts_and_image_count(logged_in):
    html = "<p>all of it</p><blockquote>old</blockquote>"
    message = stored_message(text="x", html=html, text_parts={}, html_new="<p>STORED NEW HTML</p>", remote_images=3)
    page = logged_in.get(f"/requests/{message.request_id}/").content.decode()
    assert "3 remote images blocked" in page and "Show quoted history" in page
    frame = logged_in.get(f"/messages/{message.pk}/body/").content.decode()
    assert "STORED NEW HTML" in frame and "all of it" not in frame
    whole = logged_in.get(f"/messages/{message.pk}/body/?full=1").content.decode()
    assert "all of it" in whole


def test_a_message_stored_before_gets_its_parts_once_on_first_view(logged_in):
    parallel.shutdown()
    html = "<p>Thanks</p><img src='https://tracker.example/p.gif'><div>On Mon, 3 Jun 2024, Bob wrote:</div><blockquote>old</blockquote>"
    message = stored_message(text=REPLY, html=html)  # text_parts None: from before
    logged_in.get(f"/requests/{message.request_id}/")
    message.refresh_from_db()
    assert message.text_parts == {}  # shown in the frame: the text is not split
    assert message.html_new is not None and "old" not in message.html_new
    assert message.remote_images == 1
    # Saved: the next view reads what is stored (a stand-in value shows), nothing is recomputed.
    Message.objects.filter(pk=message.pk).update(html_new="<p>SECOND VIEW</p>", remote_images=7)
    assert "7 remote images blocked" in logged_in.get(f"/requests/{message.request_id}/").content.decode()
    assert "SECOND VIEW" in logged_in.get(f"/messages/{message.pk}/body/").content.decode()


def test_a_text_message_stored_before_gets_its_split_on_first_view(logged_in):
    message = stored_message(text=REPLY)
    assert "Is it fixed?" in logged_in.get(f"/requests/{message.request_id}/").content.decode()  # folded, still there
    message.refresh_from_db()
    assert message.text_parts["quoted_text"].endswith("> Is it fixed?")


def test_our_own_messages_get_no_display_parts(logged_in):
    message = stored_message(text=REPLY, direction="out", kind="reply")
    logged_in.get(f"/requests/{message.request_id}/")
    message.refresh_from_db()
    assert message.text_parts is None


# --- the quarantine page: re-run with a longer time limit ---------------------------------


@pytest.fixture
def as_admin(client):
    client.force_login(User.objects.create_user("ada", "ada@example.com", "pw", is_staff=True, is_superuser=True))
    return client


def test_a_message_that_took_too_long_is_queued_with_a_longer_limit(as_admin):
    mailbox = Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR, path="/srv/mail/support")
    raw = make_message(subject="Deep nesting")
    reason = "took longer than 30 s to read"
    intake = Intake.objects.create(mailbox=mailbox, source_key="1", raw=blobs.put(raw), size=len(raw), attempts=1,
                                   parse_timeouts=2, status=Intake.Status.QUARANTINED, quarantine_reason=reason)
    page = as_admin.get(f"/quarantine/{intake.pk}/").content.decode()
    assert 'name="parse_timeout"' in page and '<option value="600">' in page
    response = as_admin.post(f"/quarantine/{intake.pk}/rerun/", {"parse_timeout": "600"})
    assert response.status_code == 302
    intake.refresh_from_db()
    assert (intake.status, intake.parse_timeout, intake.attempts) == ("pending", 600, 0)  # for the worker
    event = AuditEvent.objects.get(kind="quarantine.rerun")
    assert "600 s" in event.detail
    # A limit the page does not offer is the plain re-run (processed now, default limit).
    Intake.objects.filter(pk=intake.pk).update(status=Intake.Status.QUARANTINED)
    as_admin.post(f"/quarantine/{intake.pk}/rerun/", {"parse_timeout": "999999"})
    intake.refresh_from_db()
    assert (intake.status, intake.parse_timeout) == ("processed", None)
