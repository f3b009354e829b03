"""A copy of what we send in the mailbox's Sent folder (IMAP APPEND to the test Dovecot):
made after the mail is recorded as sent, and never able to make a sent mail fail."""

from __future__ import annotations

import logging

from postdesk import mailboxes, secrets
from postdesk.models import Mailbox, Outgoing
from tests.outbound.conftest import acks
from tests.support.mail import make_message

SEEN = "\\Seen"


def imap_mailbox(desk, dovecot, user, sent_folder: str) -> Mailbox:
    mailbox = mailboxes.add({
        "name": "support", "protocol": "imap", "host": dovecot.host, "port": dovecot.ports.imap, "security": "starttls",
        "ca_file": str(dovecot.ca_file), "username": user.username, "password": user.password, "after": "keep",
        "address": "support@desk.example", "ack_enabled": True, "sent_folder": sent_folder, **desk.smtp_settings(),
    })
    desk.fetch("support")  # connected: later mail is new
    return mailbox


def test_a_copy_goes_to_the_sent_folder_marked_seen(desk, smtp, dovecot, mail_user):
    imap_mailbox(desk, dovecot, mail_user, "Sent Items")  # not there yet: made on first use
    dovecot.append(mail_user, make_message(subject="Printer on fire"))
    desk.fetch("support")

    assert [r["status"] for r in desk.send()] == ["sent"]

    (mail,) = smtp.received
    (out,) = acks()
    assert out.status == Outgoing.Status.SENT and out.copied_to_sent
    with dovecot.imap(mail_user, "Sent Items") as client:
        (uid,) = client.search("ALL")
        data = client.fetch([uid], ["BODY.PEEK[]", "FLAGS"])[uid]
    assert data[b"BODY[]"] == mail.data  # the very bytes the SMTP server took
    assert SEEN.encode() in data[b"FLAGS"]
    assert dovecot.message_count(mail_user, "INBOX") == 1  # the customer's message, untouched


def test_a_failed_copy_is_logged_and_the_mail_stays_sent(desk, smtp, dovecot, mail_user, caplog):
    mailbox = imap_mailbox(desk, dovecot, mail_user, "Sent")
    dovecot.append(mail_user, make_message(subject="Printer on fire"))
    desk.fetch("support")
    # The IMAP login breaks after the fetch (a password changed at the server, say).
    Mailbox.objects.filter(pk=mailbox.pk).update(secret=secrets.encrypt("no-longer-the-password"))

    with caplog.at_level(logging.WARNING, logger="postdesk.outbound"):
        assert [r["status"] for r in desk.send()] == ["sent"]

    (out,) = acks()
    assert (out.status, out.copied_to_sent, out.last_error) == (Outgoing.Status.SENT, False, "")
    assert len(smtp.received) == 1
    assert any("sent mail not copied to folder Sent" in r.getMessage() for r in caplog.records)
    assert dovecot.message_count(mail_user, "Sent") == 0
