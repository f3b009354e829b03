"""The whole round trip: a staff reply from the request page goes out over SMTP,
the customer answers it under a new subject, the answer is APPENDed to the IMAP
mailbox, fetched, and lands in the same request."""

from __future__ import annotations

from email.utils import make_msgid

from django.contrib.auth.models import User
from django.test import Client

from postdesk import mailboxes
from postdesk.models import Message, Request
from tests.support.mail import make_message
from tests.support.desk import seen


def test_staff_reply_and_the_customers_answer_share_a_request(desk, smtp, dovecot, mail_user):
    mailboxes.add({
        "name": "support", "protocol": "imap", "host": dovecot.host, "port": dovecot.ports.imap, "security": "starttls",
        "ca_file": str(dovecot.ca_file), "username": mail_user.username, "password": mail_user.password, "after": "keep",
        "address": "support@desk.example", "from_name": "Desk Support", **desk.smtp_settings(),
    })
    first_id = make_msgid(domain="customer.example")
    dovecot.append(mail_user, make_message(subject="Printer on fire", message_id=first_id,
                                           sender="Alice Customer <alice@customer.example>"))
    desk.fetch("support")
    request = Request.objects.get()

    staff = Client()
    staff.force_login(User.objects.create_user("phil", "phil@desk.example", "pw"))
    assert staff.post(f"/requests/{request.pk}/reply/", {**seen(request), "text": "Did you try turning it off?\n\nPhil"}).status_code == 302
    assert [r["status"] for r in desk.send()] == ["sent"]

    (sent,) = smtp.received
    assert sent.tls and sent.rcpt_tos == ["alice@customer.example"]
    mail = sent.message
    assert mail["Subject"] == f"Re: Printer on fire [PD-{request.pk}]"
    assert mail["In-Reply-To"] == first_id and first_id in mail["References"]

    # Alice answers from her own client, changing the subject: only References tie it back.
    answer = make_message(
        subject="It is worse now", sender="Alice Customer <alice@customer.example>",
        in_reply_to=mail["Message-ID"], references=[first_id, mail["Message-ID"]], body="Yes. Now it smokes.\n",
    )
    dovecot.append(mail_user, answer)
    (report,) = desk.fetch("support")
    assert (report["created"], report["threaded"]) == (0, 1)
    assert Request.objects.count() == 1
    conversation = list(request.messages.order_by("id").values_list("direction", "subject"))
    assert conversation == [("in", "Printer on fire"), ("out", f"Re: Printer on fire [PD-{request.pk}]"), ("in", "It is worse now")]
    assert Message.objects.get(subject="It is worse now").request == request
