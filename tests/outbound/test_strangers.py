"""The attack of issue 10, end to end through the test SMTP server: someone at the
customer's free-mail domain guesses a request number, writes with its tag and a
Reply-To of their own, and waits for the staff's next reply (a password reset link).

Neither their message nor their Reply-To may reach the request: the staff's reply
goes to the customer, and only to the customer and people taking part."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from postdesk.models import Request
from tests.outbound.conftest import history, request_of
from tests.support.mail import make_message, new_message_id
from tests.support.desk import seen

ALICE = "Alice Customer <alice@gmail.com>"


def staff_reply(request: Request, text: str) -> None:
    staff = Client()
    staff.force_login(User.objects.get_or_create(username="phil", defaults={"email": "phil@desk.example"})[0])
    assert staff.post(f"/requests/{request.pk}/reply/", {**seen(request), "text": text}).status_code == 302


def test_stranger_with_the_tag_and_a_reply_to_gets_nothing(desk, smtp):
    desk.mailbox("support", ack_enabled=False)
    first = new_message_id("gmail.com")
    desk.receive("support", make_message(subject="Password reset", sender=ALICE, message_id=first))
    request = request_of(first)

    desk.receive("support", make_message(
        subject=f"Re: [PD-{request.pk}] Password reset", sender="Mallory <mallory@gmail.com>",
        headers={"Reply-To": "drop@evil.example"}, body="I have a new address, please send the link there.\n"))

    mallorys = Request.objects.exclude(pk=request.pk).get()
    assert request.messages.count() == 1 and list(mallorys.mentions.all()) == [request]
    assert f"does not take part in #{request.pk}" in history(request, "mentioned")[0]
    staff_reply(request, "Here is your reset link: https://desk.example/reset/s3cret")
    assert [r["status"] for r in desk.send()] == ["sent"]
    (sent,) = smtp.received
    assert sent.rcpt_tos == ["alice@gmail.com"]


def test_participant_joins_but_their_new_reply_to_is_not_used(desk, smtp):
    desk.mailbox("support", ack_enabled=False)
    first = new_message_id("gmail.com")
    desk.receive("support", make_message(subject="Password reset", sender=ALICE, message_id=first, cc="dave@gmail.com"))
    request = request_of(first)

    desk.receive("support", make_message(
        subject=f"Re: [PD-{request.pk}] Password reset", sender="Dave <dave@gmail.com>",
        headers={"Reply-To": "drop@evil.example"}, body="Send it to the other address please.\n"))

    assert request.messages.count() == 2  # Dave was in Cc: he takes part
    staff_reply(request, "Here is the link: https://desk.example/reset/s3cret")
    desk.send()
    (sent,) = smtp.received
    assert sent.rcpt_tos == ["dave@gmail.com"]
    assert b"evil.example" not in sent.message.as_bytes()
