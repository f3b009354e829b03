"""Answering by email (postdesk.notify.answer): a staff member's reply to a notification,
sent to its reply address, becomes a staff reply to the customer -- and a forged one
(wrong From, bad or expired token, token of another request, inactive member) becomes
an internal note "not sent: unverified sender", with nothing ever mailed to the customer.

Maildir mailboxes sending through the test SMTP server (tests/outbound/conftest.py);
the last test goes through Dovecot (IMAP) end to end."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.contrib.auth.models import User

from postdesk import mailboxes
from postdesk.mail import ParsedMessage
from postdesk.models import EmailAnswer, Intake, Mailbox, Message, Request
from postdesk.notify.answer import new_text
from postdesk.notify.reply_address import ANSWER_ABOVE, reply_address
from tests.outbound.conftest import ALICE, SUPPORT, history
from tests.support.mail import make_message, new_message_id

QUOTED = (
    "On Tue, 1 Dec 2026 at 10:00, Postdesk <support@desk.example> wrote:\n"
    f"> {ANSWER_ABOVE}\n"
    "> Alice Customer wrote on request 1:\n"
    "> The printer is on fire.\n"
)
ANSWER = "Please unplug it and step away.\n\n-- \nPhil Staff, Desk Support\n\n" + QUOTED


@pytest.fixture
def phil(transactional_db) -> User:
    # Mixed case on purpose: the From is compared case-insensitively.
    return User.objects.create_user("phil", "Phil@Desk.example", is_staff=True, first_name="Phil")


def opened(desk, subject: str = "Printer on fire") -> tuple[Request, str]:
    """A customer's request, its acknowledgement already sent and forgotten."""
    if not Mailbox.objects.filter(name="support").exists():
        desk.mailbox("support")
    mid = new_message_id("customer.example")
    desk.receive("support", make_message(subject=subject, sender=ALICE, message_id=mid, body="The printer is on fire.\n"))
    desk.send()
    desk.smtp.clear()
    return Message.objects.get(message_id=mid.strip("<>")).request, mid


def answer(request: Request, staff: User, *, sender: str = "Phil Staff <phil@desk.example>", to: str | None = None,
           body: str = ANSWER, **kwargs) -> bytes:
    """A staff member's answer to the notification about `request`, from their mail client."""
    return make_message(subject=f"Re: New message on [PD-{request.pk}] Printer on fire", sender=sender,
                        to=to or reply_address(staff, request, SUPPORT), body=body, **kwargs)


def sent_to_customer(desk) -> list:
    desk.send()
    return [mail for mail in desk.smtp.received if "alice@customer.example" in mail.rcpt_tos]


def note_of(request: Request) -> Message:
    (note,) = request.messages.filter(direction="note")
    return note


def assert_refused(desk, request: Request, why: str) -> None:
    """A note on `request` says why; nothing went to anyone; no customer message was made."""
    note = note_of(request)
    assert note.text.startswith("not sent: unverified sender (") and why in note.text.splitlines()[0]
    assert note.author is None  # an unverified mail is nobody's word
    assert sent_to_customer(desk) == [] and desk.smtp.received == []  # nor an answer to the sender
    assert not request.messages.filter(direction="out", kind="reply").exists()
    assert request.messages.filter(direction="in").count() == 1  # only the customer's first message
    assert Request.objects.count() == 1
    assert EmailAnswer.objects.get().outcome == "refused"


# --------------------------------------------------------------------------- a good answer


def test_answer_from_the_staff_members_address_is_a_staff_reply_mailed_to_the_customer(desk, phil):
    request, first_id = opened(desk)

    report = desk.receive("support", answer(request, phil))

    assert (report["created"], report["threaded"]) == (0, 0)
    (mail,) = sent_to_customer(desk)
    assert mail.rcpt_tos == ["alice@customer.example"]
    assert mail.message["In-Reply-To"] == first_id  # threads as a reply from the web page does
    text = mail.text
    assert "Please unplug it and step away." in text and "Phil Staff, Desk Support" in text  # signature kept
    assert "The printer is on fire" not in text and "wrote:" not in text  # the quoted notification cut off
    reply = request.messages.get(direction="out", kind="reply")
    assert reply.author == phil
    assert request.messages.filter(direction="in").count() == 1  # never a customer message
    assert any(line.startswith("answered-by-email: sent by email from phil@desk.example") for line in history(request))
    assert any(line.startswith("replied:") for line in history(request))
    assert Intake.objects.order_by("id").last().message == reply


def test_reply_address_upper_or_lower_cased_by_a_server_still_works(desk, phil):
    request, _ = opened(desk)
    address = reply_address(phil, request, SUPPORT)
    local, _, domain = address.partition("@")

    desk.receive("support", answer(request, phil, to=f"{local.upper()}@{domain}"))

    assert len(sent_to_customer(desk)) == 1
    assert address.lower() == address  # what a lower-casing server makes of it is what we made


def test_reply_address_seen_only_in_delivered_to_counts(desk, phil):
    """A Bcc or a forward: the token is only in what the delivering server adds."""
    request, _ = opened(desk)
    raw = answer(request, phil, to=SUPPORT)

    desk.receive("support", f"Delivered-To: {reply_address(phil, request, SUPPORT)}\r\n".encode() + raw)

    assert len(sent_to_customer(desk)) == 1


def test_the_same_answer_processed_twice_sends_one_reply(desk, phil):
    request, _ = opened(desk)
    raw = answer(request, phil)
    desk.receive("support", raw)

    report = desk.receive("support", raw)  # a second delivery of the same mail

    assert report["duplicates"] == 1
    assert len(sent_to_customer(desk)) == 1
    assert request.messages.filter(direction="out", kind="reply").count() == 1
    assert EmailAnswer.objects.count() == 1


def test_the_same_answer_twice_in_one_batch_sends_one_reply(desk, phil):
    request, _ = opened(desk)
    raw = answer(request, phil)

    desk.receive("support", raw, raw)

    assert len(sent_to_customer(desk)) == 1
    assert sorted(Intake.objects.values_list("status", flat=True)) == ["duplicate", "processed", "processed"]


# --------------------------------------------------------------------------- forged or stale


def test_answer_from_another_address_is_a_note_and_nothing_is_sent(desk, phil):
    request, _ = opened(desk)

    desk.receive("support", answer(request, phil, sender="Mallory <mallory@elsewhere.example>"))

    assert_refused(desk, request, "From mallory@elsewhere.example is not the address of phil")


def test_tampered_token_is_a_note_on_the_request_the_message_threads_to(desk, phil):
    request, first_id = opened(desk)
    address = reply_address(phil, request, SUPPORT)
    local, _, domain = address.partition("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b")

    desk.receive("support", answer(request, phil, to=f"{forged}@{domain}", in_reply_to=first_id))

    assert_refused(desk, request, "the reply address is not one we made")


def test_tampered_token_on_a_message_that_answers_nothing_is_quarantined_not_a_request(desk, phil):
    request, _ = opened(desk)
    forged = "support+" + "a" * 30 + "@desk.example"

    desk.receive("support", make_message(subject="hello", sender="Mallory <mallory@elsewhere.example>", to=forged))

    assert Request.objects.count() == 1
    assert Intake.objects.order_by("id").last().status == "quarantined"
    assert sent_to_customer(desk) == [] and desk.smtp.received == []


def test_expired_reply_address_is_a_note(desk, phil):
    request, _ = opened(desk)
    long_ago = datetime.now(dt_timezone.utc) - timedelta(days=31)

    desk.receive("support", answer(request, phil, to=reply_address(phil, request, SUPPORT, now=long_ago)))

    assert_refused(desk, request, "the reply address expired on")


def test_token_of_another_request_is_a_note_on_the_request_it_names(desk, phil):
    first, first_id = opened(desk, "Printer on fire")
    second, _ = opened(desk, "Scanner jammed")

    # A reply in the thread of the first request, sent to the reply address of the second.
    desk.receive("support", answer(second, phil, in_reply_to=first_id))

    note = note_of(second)
    assert f"the reply address is for request #{second.pk}, the message answers #{first.pk}" in note.text
    assert not first.messages.filter(direction="note").exists()
    assert sent_to_customer(desk) == [] and desk.smtp.received == []


def test_answer_of_a_member_no_longer_active_is_a_note(desk, phil):
    request, _ = opened(desk)
    address = reply_address(phil, request, SUPPORT)
    phil.is_active = False
    phil.save()

    desk.receive("support", answer(request, phil, to=address))

    assert_refused(desk, request, "no longer active")


def test_automatic_reply_to_a_notification_is_a_note(desk, phil):
    """The staff member's own out-of-office answering a notification must not reach the customer."""
    request, _ = opened(desk)

    desk.receive("support", answer(request, phil, body="I am away until Monday.\n", headers={"Auto-Submitted": "auto-replied"}))

    assert_refused(desk, request, "an automatic message")


def test_answer_with_nothing_new_is_a_note_saying_why_and_nothing_is_sent(desk, phil):
    """A verified sender, but send_reply refuses (here: only the quoted notification)."""
    request, _ = opened(desk)

    desk.receive("support", answer(request, phil, body=QUOTED))

    note = note_of(request)
    assert note.text.startswith("not sent: the reply is empty")
    assert sent_to_customer(desk) == [] and desk.smtp.received == []
    assert EmailAnswer.objects.get().staff == phil


def test_inline_answer_between_quoted_lines_is_never_sent(desk, phil):
    """The notification may quote an internal note: an answer written inside the quote
    (no marker line, the splitter folds nothing) is noted, not mailed."""
    request, _ = opened(desk)
    body = "> Anna wrote an internal note: the customer owes us money\nNo, they paid.\n> Shall we ask?\nNo.\n"

    desk.receive("support", answer(request, phil, body=body))

    assert note_of(request).text.startswith("not sent: the answer quotes the notification")
    assert sent_to_customer(desk) == [] and desk.smtp.received == []


def test_everything_from_the_marker_line_on_is_cut_whatever_the_client_did(desk, phil):
    request, _ = opened(desk)
    body = f"Fixed it.\n\n{ANSWER_ABOVE}\nAnna wrote an internal note: the customer owes us money\n"

    desk.receive("support", answer(request, phil, body=body))

    (mail,) = sent_to_customer(desk)
    assert "Fixed it." in mail.text and "owes" not in mail.text and "Reply above" not in mail.text


def test_plain_plus_addressing_is_ordinary_customer_mail(desk):
    """support+billing@ is not a token: the message opens a request as any other."""
    desk.mailbox("support")

    report = desk.receive("support", make_message(sender=ALICE, to="support+billing@desk.example"))

    assert report["created"] == 1 and not EmailAnswer.objects.exists()


# --------------------------------------------------------------------------- through IMAP


def test_answer_through_dovecot_reaches_the_customer_over_smtp(desk, smtp, dovecot, mail_user, phil):
    mailboxes.add({
        "name": "support", "protocol": "imap", "host": dovecot.host, "port": dovecot.ports.imap, "security": "starttls",
        "ca_file": str(dovecot.ca_file), "username": mail_user.username, "password": mail_user.password, "after": "keep",
        "address": SUPPORT, **desk.smtp_settings(),
    })
    dovecot.append(mail_user, make_message(subject="Printer on fire", sender=ALICE, body="The printer is on fire.\n"))
    desk.fetch("support")
    request = Request.objects.get()

    dovecot.append(mail_user, answer(request, phil))
    dovecot.append(mail_user, answer(request, phil, sender="Mallory <mallory@elsewhere.example>"))
    desk.fetch("support")

    (mail,) = sent_to_customer(desk)
    assert "Please unplug it" in mail.text and "wrote:" not in mail.text
    assert smtp.received == [mail]
    assert "From mallory@elsewhere.example" in note_of(request).text
    assert Request.objects.count() == 1


# --------------------------------------------------------------------------- what is cut (pure)

ATTRIBUTION = "On Tue, 1 Dec 2026 at 10:00, Postdesk <\nsupport@desk.example> wrote:\n"  # wrapped, as Gmail does
OUTLOOK = "From: Postdesk <support@desk.example>\nSent: Tuesday, December 1, 2026 10:00\nTo: Phil\nSubject: Re: x\n\n"


@pytest.mark.parametrize("text, expected", [
    (f"Fixed.\n\n{ATTRIBUTION}> {ANSWER_ABOVE}\n> the note\n", "Fixed."),
    (f"Fixed.\n-- \nPhil\n\n{OUTLOOK}{ANSWER_ABOVE}\nthe note\n", "Fixed.\n-- \nPhil"),  # Outlook: no '>' at all
    (f"Fixed.\n\n{ANSWER_ABOVE}\nthe note\n", "Fixed."),
    (f"{ATTRIBUTION}> {ANSWER_ABOVE}\n> the note\n", ""),  # sent without writing anything
    ("Fixed, no notification quoted.\n", "Fixed, no notification quoted."),
])
def test_new_text_keeps_what_was_written_above_the_notification(text, expected):
    assert new_text(ParsedMessage(text=text)) == expected
