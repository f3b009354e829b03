"""Each event sends exactly one notification to exactly the right people, through the
outbox and the test SMTP server; none to the actor, none for automatic mail or bounces."""

from __future__ import annotations

from django.test import Client

from postdesk.models import Outgoing, PendingNotification, Request
from postdesk.notify import digest, preferences
from postdesk.notify.reply_address import ANSWER_ABOVE, read_reply_address
from postdesk.outbound import reply
from tests.notify.conftest import notifications, recipients
from tests.support.desk import seen
from tests.support.mail import make_bounce, make_message, new_message_id


def routed_desk(desk, staff):
    phil = staff("phil")
    desk.mailbox(assign="phil")
    return phil


def test_a_routed_new_request_tells_its_assignee_once(desk, staff, smtp):
    routed_desk(desk, staff)
    staff("anna")
    desk.receive("support", make_message(subject="Printer on fire", body="It is on fire.\nSend help.\n",
                                         attachments=[("photo.jpg", "image/jpeg", b"\xff\xd8jpeg")]))
    desk.send()
    desk.send()

    (mail,) = notifications(smtp)
    assert mail.rcpt_tos == ["phil@staff.example"]
    message = mail.message
    request = Request.objects.get()
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["References"] == f"<pd-notify-{request.pk}-{request.assignee_id}@desk.example>"
    assert "Printer on fire" in message["Subject"]
    token = read_reply_address([message["Reply-To"]])
    assert token.ok and (token.token.staff_id, token.token.request_id) == (request.assignee_id, request.pk)
    text = mail.text
    assert text.startswith(ANSWER_ABOVE)  # what the member writes above it is all that reaches the customer
    assert "Alice Customer <alice@customer.example>" in text and "> It is on fire." in text
    assert "photo.jpg" in text and f"/requests/{request.pk}/" in text
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == ["alice@customer.example", "phil@staff.example"]  # + the ack


def test_the_customer_writing_again_tells_the_assignee_in_the_same_thread(desk, staff, smtp):
    routed_desk(desk, staff)
    first = new_message_id()
    desk.receive("support", make_message(subject="Printer on fire", message_id=first))
    desk.receive("support", make_message(subject="Re: Printer on fire", in_reply_to=first, references=first,
                                         body="Still burning.\n"))
    desk.send()

    assert recipients(smtp) == ["phil@staff.example", "phil@staff.example"]
    roots = {m.message["References"] for m in notifications(smtp)}
    assert len(roots) == 1  # one thread in a mail client
    assert "Still burning." in notifications(smtp)[1].text


def test_the_assignee_writing_into_their_request_is_not_told_about_it(desk, staff, smtp):
    routed_desk(desk, staff)
    first = new_message_id()
    desk.receive("support", make_message(subject="Printer on fire", message_id=first))
    desk.receive("support", make_message(subject="Re: Printer on fire", in_reply_to=first, references=first,
                                         sender="Phil <PHIL@staff.example>", body="I am on it.\n"))
    desk.send()

    assert recipients(smtp) == ["phil@staff.example"]  # the new request only


def test_a_new_unassigned_request_tells_the_watchers_only(desk, staff, smtp):
    desk.mailbox()
    anna, bob, gone = staff("anna"), staff("bob"), staff("gone", is_active=False)
    for member in (anna, gone):
        preferences.save(member, list(preferences.ALL_EVENTS), True, 0)
    desk.receive("support", make_message(subject="Who takes this?"))
    desk.send()

    assert recipients(smtp) == ["anna@staff.example"]


def test_automatic_mail_and_bounces_tell_nobody(desk, staff, smtp):
    routed_desk(desk, staff)
    anna = staff("anna")
    preferences.save(anna, list(preferences.ALL_EVENTS), True, 0)
    first = new_message_id()
    desk.receive("support", make_message(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}))
    original = make_message(subject="Printer", message_id=first)
    desk.receive("support", original)
    smtp.clear()
    Outgoing.objects.all().delete()
    desk.receive("support", make_message(subject="Re: Printer", in_reply_to=first, references=first,
                                         headers={"Auto-Submitted": "auto-replied"}))
    desk.receive("support", make_bounce(original))
    desk.send()

    assert notifications(smtp) == []


def test_assigning_tells_the_new_assignee_but_taking_tells_nobody(desk, staff, smtp):
    desk.mailbox()
    phil, anna = staff("phil"), staff("anna")
    desk.receive("support", make_message(subject="Printer"))
    request = Request.objects.get()
    as_anna, as_phil = Client(), Client()
    as_anna.force_login(anna)
    as_phil.force_login(phil)

    assert as_phil.post(f"/requests/{request.pk}/take/", seen(request)).status_code == 302
    desk.send()
    assert notifications(smtp) == []  # phil took it himself

    as_anna.post(f"/requests/{request.pk}/assign/", {"assignee": anna.pk, **seen(request), "confirm": "1"})
    desk.send()
    assert notifications(smtp) == []  # anna assigned it to herself

    assert as_anna.post(f"/requests/{request.pk}/assign/", {"assignee": phil.pk, **seen(request)}).status_code == 302
    desk.send()
    (mail,) = notifications(smtp)
    assert mail.rcpt_tos == ["phil@staff.example"] and "anna assigned you request" in mail.text


def test_a_note_naming_a_member_tells_that_member_but_never_the_author(desk, staff, smtp):
    desk.mailbox()
    phil, anna = staff("phil"), staff("anna")
    desk.receive("support", make_message(subject="Printer"))
    request = Request.objects.get()

    reply.add_note(request.pk, "@phil can you look? cc @anna and @nobody.", anna)
    desk.send()

    (mail,) = notifications(smtp)
    assert mail.rcpt_tos == ["phil@staff.example"]
    assert "anna named you in a note" in mail.text and "> @phil can you look?" in mail.text


def test_events_switched_off_are_not_sent(desk, staff, smtp):
    phil = routed_desk(desk, staff)
    preferences.save(phil, ["mentioned"], False, 0)
    desk.receive("support", make_message(subject="Printer"))
    desk.send()

    assert notifications(smtp) == []


def test_a_digest_collects_the_pending_events_into_one_mail(desk, staff, smtp):
    phil = routed_desk(desk, staff)
    preferences.save(phil, list(preferences.ALL_EVENTS), False, 30)
    desk.receive("support", make_message(subject="Printer"), make_message(subject="Scanner"))
    desk.send()
    assert notifications(smtp) == [] and PendingNotification.objects.count() == 2

    assert digest.send_due_digests() == 1
    assert digest.send_due_digests() == 0  # not due again for 30 minutes
    desk.send()

    (mail,) = notifications(smtp)
    assert mail.rcpt_tos == ["phil@staff.example"]
    assert "Printer" in mail.text and "Scanner" in mail.text and "2 things happened" in mail.text
    assert PendingNotification.objects.count() == 0


def test_answering_the_notification_mails_the_customer_only_what_was_written_above_the_line(desk, staff, smtp):
    """The whole round trip: a notification reaches Phil, Phil answers it from his mail
    client (quoting all of it), and the customer gets his words and nothing of the notification."""
    routed_desk(desk, staff)
    desk.receive("support", make_message(subject="Printer on fire", body="It is on fire.\nSend help.\n"))
    desk.send()
    (note,) = notifications(smtp)
    quoted = "\n".join(f"> {line}" for line in note.text.splitlines())
    answer = make_message(
        subject=f"Re: {note.message['Subject']}", sender="Phil <phil@staff.example>", to=note.message["Reply-To"],
        in_reply_to=note.message["Message-ID"], references=note.message["Message-ID"],
        body=f"Unplug it and step away, we are on our way.\n\nOn Tuesday Postdesk wrote:\n{quoted}\n")
    desk.receive("support", answer)
    desk.send()
    desk.send()
    (to_customer,) = [m for m in smtp.received if m.rcpt_tos == ["alice@customer.example"] and "Unplug" in m.text]
    assert "Unplug it and step away" in to_customer.text
    assert "It is on fire" not in to_customer.text and ANSWER_ABOVE not in to_customer.text
    request = Request.objects.get()
    assert request.messages.filter(direction="out", kind="reply", author__username="phil").count() == 1
    assert not request.messages.filter(direction="in", sender_address="phil@staff.example").exists()


def test_a_snoozed_request_that_wakes_tells_its_assignee_once(desk, staff, smtp):
    from datetime import timedelta

    from django.utils import timezone

    from postdesk.desk import status

    routed_desk(desk, staff)
    desk.receive("support", make_message(subject="Printer on fire"))
    desk.send()
    request = Request.objects.get()
    Request.objects.filter(pk=request.pk).update(status="pending", snooze_until=timezone.now() - timedelta(minutes=1))
    assert status.wake_due() == 1
    assert status.wake_due() == 0  # twice: one notification
    desk.send()

    assert recipients(smtp) == ["phil@staff.example", "phil@staff.example"]  # assigned by routing, then back
    assert "is back: its snooze ended" in notifications(smtp)[1].text
