"""Staff replies and internal notes from the request page: what is queued, what
the customer gets, and that their answer comes back into the same request."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from django.test import Client
from django.utils import timezone

from postdesk import pipeline
from postdesk.models import Mailbox, Message, Outgoing, Request, RequestEvent
from postdesk.store import blobs
from tests.support.mail import make_message, maildir_deliver
from tests.support.desk import seen

pytestmark = pytest.mark.django_db


@pytest.fixture
def maildir(tmp_path):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "md" / sub).mkdir(parents=True)
    return tmp_path / "md"


@pytest.fixture
def mailbox(maildir):
    return Mailbox.objects.create(
        name="support", address="support@desk.example", from_name="Desk Support", protocol="maildir", path=str(maildir),
        after_import="keep", smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none", last_success_at=timezone.now(),
    )


@pytest.fixture
def customer_request(mailbox, maildir) -> Request:
    maildir_deliver(maildir, make_message(subject="Printer on fire", message_id="<first@customer.example>",
                                          sender="Alice Customer <alice@customer.example>"))
    pipeline.fetch_mailbox(mailbox)
    return Request.objects.get()


def sent_mail(message: Message):
    return message_from_bytes(blobs.read(message.raw_id), policy=default_policy)


def test_reply_is_queued_with_threading_headers(logged_in, staff, customer_request):
    response = logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "We are on it.\n\nPhil", "cc": "Bob <bob@customer.example>"})
    assert response.status_code == 302
    reply = Message.objects.get(direction="out")
    assert reply.kind == "reply" and reply.author == staff and reply.request == customer_request
    out = Outgoing.objects.get()
    assert out.status == "queued" and out.recipients == ["alice@customer.example", "bob@customer.example"]
    assert out.envelope_from == "support@desk.example"
    mail = sent_mail(reply)
    assert mail["From"] == "Desk Support <support@desk.example>"
    assert mail["To"] == "Alice Customer <alice@customer.example>" and mail["Cc"] == "Bob <bob@customer.example>"
    assert mail["Subject"] == f"Re: Printer on fire [PD-{customer_request.pk}]"
    assert mail["In-Reply-To"] == "<first@customer.example>"
    assert "<first@customer.example>" in mail["References"]
    assert mail["Message-ID"] == f"<{reply.message_id}>"
    assert "Auto-Submitted" not in mail  # a person wrote this
    assert mail.get_body(("plain",)).get_content().startswith("We are on it.")
    assert "<p>We are on it.</p>" in mail.get_body(("html",)).get_content()
    customer_request.refresh_from_db()
    assert customer_request.status == "open"
    assert RequestEvent.objects.filter(request=customer_request, kind="replied", actor=staff).exists()


def test_reply_status_is_shown_on_the_request_page(logged_in, customer_request):
    logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "On it."})
    page = logged_in.get(f"/requests/{customer_request.pk}/").content.decode()
    assert "Reply by phil" in page and "badge-send-queued" in page
    reply = Message.objects.get(direction="out")
    assert f"/messages/{reply.pk}/body/" not in page  # our own words as text, no frame for them
    out = Outgoing.objects.get()
    out.status, out.last_error, out.smtp_reply = "failed", "the server refused the mail: 550 5.1.1 no such user", "550 5.1.1 no such user"
    out.save()
    page = logged_in.get(f"/requests/{customer_request.pk}/").content.decode()
    assert "badge-send-failed" in page and "550 5.1.1 no such user" in page


def test_reply_with_attachment(logged_in, customer_request):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("fix.txt", b"turn it off and on", content_type="text/plain")
    logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "See attached.", "attachments": [upload]})
    reply = Message.objects.get(direction="out")
    [part] = list(sent_mail(reply).iter_attachments())
    assert part.get_filename() == "fix.txt" and part.get_content() == "turn it off and on"
    assert reply.attachments.get().filename == "fix.txt"


def test_empty_reply_or_bad_cc_is_refused_and_the_text_kept(logged_in, customer_request):
    response = logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "Hello", "cc": "not an address"}, follow=True)
    page = response.content.decode()
    assert "Not sent:" in page and "is not an email address" in page
    assert ">Hello</textarea>" in page  # what was typed is still there
    assert not Outgoing.objects.exists()
    response = logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "  \n"}, follow=True)
    assert "the reply is empty" in response.content.decode()


def test_reply_without_an_smtp_account_says_what_to_do(logged_in, customer_request, mailbox):
    mailbox.smtp_host = ""
    mailbox.save()
    response = logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "Hello"}, follow=True)
    assert "has no SMTP server" in response.content.decode()
    assert not Outgoing.objects.exists() and not Message.objects.filter(direction="out").exists()


def test_internal_note_is_never_sent(logged_in, staff, customer_request):
    response = logged_in.post(f"/requests/{customer_request.pk}/note/", {**seen(customer_request), "text": "Customer is on the old firmware."}, follow=True)
    page = response.content.decode()
    assert "Internal note" in page and "Customer is on the old firmware." in page and "never sent" in page
    note = Message.objects.get(direction="note")
    assert note.author == staff and not Outgoing.objects.exists()
    assert RequestEvent.objects.filter(kind="note", actor=staff).exists()


def test_reply_and_note_need_post_login_and_csrf(client, staff, customer_request):
    assert client.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "x"}).status_code == 302  # to the login
    assert not Outgoing.objects.exists()
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)
    assert csrf_client.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "x"}).status_code == 403
    assert csrf_client.post(f"/requests/{customer_request.pk}/note/", {**seen(customer_request), "text": "x"}).status_code == 403
    client.force_login(staff)
    assert client.get(f"/requests/{customer_request.pk}/reply/").status_code == 405


def test_customer_answer_with_a_new_subject_threads_by_references(logged_in, customer_request, mailbox, maildir):
    logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "Did you try turning it off?"})
    reply = Message.objects.get(direction="out")
    answer = make_message(
        subject="completely different subject", sender="Alice Customer <alice@customer.example>",
        in_reply_to=f"<{reply.message_id}>", references=["<first@customer.example>", f"<{reply.message_id}>"],
        body="Yes, still burning.\n",
    )
    maildir_deliver(maildir, answer)
    report = pipeline.fetch_mailbox(mailbox)
    assert report.threaded == 1 and report.created == 0
    assert Request.objects.count() == 1
    assert customer_request.messages.filter(direction="in").count() == 2


def test_our_own_reply_coming_back_is_not_imported_again(logged_in, customer_request, mailbox, maildir):
    """A Cc to one of our own mailboxes brings our mail back: it is recognised by its fingerprint."""
    logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "Copy to ourselves."})
    reply = Message.objects.get(direction="out")
    maildir_deliver(maildir, blobs.read(reply.raw_id))
    report = pipeline.fetch_mailbox(mailbox)
    assert report.duplicates == 1 and report.created == 0


# --- reading replies: the quoted history folded away -----------------------------


QUOTED_TEXT = (
    "Yes, it is still burning.\n\nAlice\n\n"
    "On Mon, 2 Jun 2025 at 10:00, Desk Support <support@desk.example> wrote:\n"
    "> Did you try turning it off?\n> \n> Phil\n"
)


def test_text_reply_shows_the_new_text_with_the_quote_folded(logged_in, mailbox, maildir):
    maildir_deliver(maildir, make_message(subject="Re: Printer", body=QUOTED_TEXT))
    pipeline.fetch_mailbox(mailbox)
    page = logged_in.get(f"/requests/{Request.objects.get().pk}/").content.decode()
    new_part, _, folded = page.partition('<details class="quoted">')
    assert "Yes, it is still burning." in new_part
    assert "&gt; Did you try turning it off?" not in new_part
    assert "Show quoted history" in folded and "&gt; Did you try turning it off?" in folded


def test_html_reply_frame_shows_the_new_part_until_asked(logged_in, mailbox, maildir):
    html = ("<p>Yes, still burning.</p><p>Alice</p>"
            "<div>On Mon, 2 Jun 2025 at 10:00, Desk Support &lt;support@desk.example&gt; wrote:</div>"
            "<blockquote><p>Did you try turning it off?</p></blockquote>")
    raw = make_message(subject="Re: Printer", body="Yes, still burning.\n")
    from email import message_from_bytes as parse_bytes
    from email.policy import SMTP as smtp_policy

    mail = parse_bytes(raw, policy=smtp_policy)
    mail.add_alternative(html, subtype="html")
    maildir_deliver(maildir, mail.as_bytes())
    pipeline.fetch_mailbox(mailbox)
    message = Message.objects.get()
    page = logged_in.get(f"/requests/{message.request_id}/").content.decode()
    assert f'href="?full={message.pk}#message-{message.pk}"' in page and "Show quoted history" in page
    folded = logged_in.get(f"/messages/{message.pk}/body/").content.decode()
    assert "Yes, still burning." in folded and "Did you try turning it off?" not in folded
    whole = logged_in.get(f"/messages/{message.pk}/body/?full=1").content.decode()
    assert "Did you try turning it off?" in whole
    page = logged_in.get(f"/requests/{message.request_id}/?full={message.pk}").content.decode()
    assert f'src="/messages/{message.pk}/body/?full=1"' in page


# --- whom a reply goes to: the customer and participants, never an unverified Reply-To ---


def receive(mailbox, maildir, raw: bytes) -> Message:
    maildir_deliver(maildir, raw)
    pipeline.fetch_mailbox(mailbox)
    return Message.objects.filter(direction="in").order_by("id").last()


def test_untrusted_reply_to_never_gets_the_reply_and_is_shown(logged_in, customer_request, mailbox, maildir):
    # Carol may join by the tag (the customer's own domain), but her Reply-To names a stranger.
    carol = receive(mailbox, maildir, make_message(
        subject=f"Re: [PD-{customer_request.pk}] Printer on fire", sender="Carol Colleague <carol@customer.example>",
        headers={"Reply-To": "Helpful <x@evil.example>"}, body="Please send the reset link to my other address.\n"))
    assert carol.request == customer_request and not carol.reply_to_trusted

    page = logged_in.get(f"/requests/{customer_request.pk}/").content.decode()
    assert "To <strong>carol@customer.example</strong>" in page
    assert "Reply-To: x@evil.example, not verified: replies go to carol@customer.example." in page
    assert "not verified: replies go to carol@customer.example</span>" in page  # beside the message too

    logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "Here is the link."})
    out = Outgoing.objects.get()
    assert out.recipients == ["carol@customer.example"]
    mail = sent_mail(out.message)
    assert mail["To"] == "Carol Colleague <carol@customer.example>" and "evil" not in str(mail)


def test_reply_to_naming_a_participant_is_used(logged_in, customer_request, mailbox, maildir):
    receive(mailbox, maildir, make_message(
        subject=f"Re: [PD-{customer_request.pk}] Printer on fire", sender="Carol Colleague <carol@customer.example>",
        headers={"Reply-To": "Alice Customer <alice@customer.example>"}))
    page = logged_in.get(f"/requests/{customer_request.pk}/").content.decode()
    assert "To <strong>alice@customer.example</strong>" in page and "not verified" not in page
    logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "Done."})
    assert Outgoing.objects.get().recipients == ["alice@customer.example"]


def test_answer_by_references_to_our_reply_joins_whoever_sends_it_and_its_reply_to_is_used(
        logged_in, customer_request, mailbox, maildir):
    logged_in.post(f"/requests/{customer_request.pk}/reply/", {**seen(customer_request), "text": "Did you try turning it off?"})
    ours = Message.objects.get(direction="out")
    forwarded = receive(mailbox, maildir, make_message(
        subject="Fwd: printer", sender="Frank Forwarded <frank@gmail.com>", references=[f"<{ours.message_id}>"],
        headers={"Reply-To": "frank.work@othercorp.example"}))
    assert forwarded.request == customer_request  # only holders of our Message-ID can name it
    assert (forwarded.thread_rule, forwarded.reply_to_trusted) == ("references", True)
    page = logged_in.get(f"/requests/{customer_request.pk}/").content.decode()
    assert "To <strong>frank.work@othercorp.example</strong>" in page


def test_mentions_are_links_on_both_request_pages(logged_in, mailbox, maildir):
    first = receive(mailbox, maildir, make_message(subject="Printer on fire", sender="Alice <alice@gmail.com>")).request
    second = receive(mailbox, maildir, make_message(subject=f"Re: [PD-{first.pk}] Printer on fire",
                                                    sender="Mallory <mallory@gmail.com>")).request
    assert second != first
    page = logged_in.get(f"/requests/{second.pk}/").content.decode()
    assert f'href="/requests/{first.pk}/" title="Printer on fire">Mentions #{first.pk}</a>' in page
    assert f"subject tag [PD-{first.pk}] ignored: mallory@gmail.com does not take part in #{first.pk}" in page
    page = logged_in.get(f"/requests/{first.pk}/").content.decode()
    assert f'href="/requests/{second.pk}/" title="Re: [PD-{first.pk}] Printer on fire">Mentioned by #{second.pk}</a>' in page
    assert "To <strong>alice@gmail.com</strong>" in page
