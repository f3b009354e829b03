"""Delivering the outbox when things go wrong: nothing lost, nothing sent twice where SMTP
lets us know, and the status shown is what happened.

    server down     refused connections: queued with the reason, sent once when it is back
    4xx             retried later; 5xx: failed, with the server's reply on the mail
    the account     a refused login, an untrusted certificate, no TLS: retried, never failed
                    for good (the admin fixes the account and the mail leaves)
    crash           `postdesk send` killed between the server's 250 and our record
    twice           a second `postdesk send` sends nothing
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from postdesk import mailboxes
from postdesk.models import Mailbox, Outgoing
from tests.outbound import cli
from tests.outbound.conftest import acks
from tests.support.mail import make_message, maildir_deliver

CRASH_EXIT = 75  # os._exit status of postdesk.crashpoints


def queued_ack(desk, **settings) -> Outgoing:
    """A mailbox, a customer's new request, and so one acknowledgement in the outbox."""
    desk.mailbox(**settings)
    desk.receive("support", make_message(subject="Printer on fire"))
    (out,) = acks()
    assert out.status == Outgoing.Status.QUEUED
    return out


def due_now(out: Outgoing) -> None:
    """Skip the backoff: the retry is due."""
    Outgoing.objects.filter(pk=out.pk).update(next_attempt_at=timezone.now())


def test_server_down_keeps_the_mail_queued_and_sends_it_once_when_back(desk, smtp):
    out = queued_ack(desk)
    smtp.stop()

    (result,) = desk.send()

    assert result["status"] == "retry"
    out.refresh_from_db()
    assert (out.status, out.attempts, out.sent_at) == (Outgoing.Status.QUEUED, 1, None)
    assert "Connection refused" in out.last_error
    assert out.next_attempt_at > timezone.now() + timedelta(seconds=10)  # backoff, not a busy loop
    assert desk.send() == []  # not due yet

    smtp.start()
    due_now(out)
    assert [r["status"] for r in desk.send()] == ["sent"]
    assert desk.send() == []
    out.refresh_from_db()
    assert (out.status, out.attempts, out.last_error) == (Outgoing.Status.SENT, 2, "")
    assert len(smtp.received) == 1


@pytest.mark.parametrize("command, reply", [("RCPT", "450 4.2.1 mailbox busy, try later"),
                                            ("DATA", "451 4.3.0 temporary local problem")], ids=["rcpt", "data"])
def test_4xx_is_retried_later(desk, smtp, command, reply):
    out = queued_ack(desk)
    smtp.refuse(command, reply)

    assert [r["status"] for r in desk.send()] == ["retry"]
    out.refresh_from_db()
    assert out.status == Outgoing.Status.QUEUED and reply in out.last_error and out.next_attempt_at > timezone.now()

    smtp.refuse(command, None)
    due_now(out)
    assert [r["status"] for r in desk.send()] == ["sent"]
    out.refresh_from_db()
    assert (out.status, out.attempts, out.last_error) == (Outgoing.Status.SENT, 2, "")
    assert len(smtp.received) == 1


@pytest.mark.parametrize("command, reply", [("RCPT", "550 5.1.1 no such user here"),
                                            ("DATA", "554 5.7.1 message rejected as spam")], ids=["rcpt", "data"])
def test_5xx_fails_with_the_servers_reply_and_is_not_retried(desk, smtp, command, reply):
    out = queued_ack(desk)
    smtp.refuse(command, reply)

    (result,) = desk.send()

    assert result["status"] == "failed"
    out.refresh_from_db()
    assert out.status == Outgoing.Status.FAILED
    assert reply in out.smtp_reply and reply in out.last_error  # what the server said, shown on the message
    smtp.refuse(command, None)
    due_now(out)
    assert desk.send() == [] and smtp.received == []  # failed is final


@pytest.mark.parametrize("problem", ["wrong-password", "untrusted-certificate", "no-tls"])
def test_a_broken_account_is_retried_not_failed_and_sends_once_fixed(desk, smtp, problem):
    broken = {"wrong-password": {"smtp_password": "not-the-password"},
              "untrusted-certificate": {"smtp_ca_file": str(smtp.tls.untrusted_ca_file)},
              # The server offers AUTH only after STARTTLS: without TLS, no login.
              "no-tls": {"smtp_security": "none"}}[problem]
    says = {"wrong-password": "535", "untrusted-certificate": "CERTIFICATE_VERIFY_FAILED",
            "no-tls": "AUTH extension not supported"}[problem]
    out = queued_ack(desk, **broken)

    assert [r["status"] for r in desk.send()] == ["retry"]
    out.refresh_from_db()
    assert out.status == Outgoing.Status.QUEUED and says in out.last_error
    assert smtp.received == []

    mailboxes.edit(Mailbox.objects.get(name="support"), desk.smtp_settings())
    due_now(out)
    assert [r["status"] for r in desk.send()] == ["sent"]
    assert len(smtp.received) == 1


def test_send_twice_sends_nothing_the_second_time(desk, smtp):
    desk.mailbox()
    desk.receive("support", make_message(subject="One", sender="a@customer.example"),
                 make_message(subject="Two", sender="b@customer.example"))

    assert [r["status"] for r in desk.send()] == ["sent", "sent"]
    assert desk.send() == []
    assert len(smtp.received) == 2 and len({m.message_id for m in smtp.received}) == 2


def test_crash_between_sending_and_recording_resends_the_same_mail(installation, smtp):
    """SMTP has no way to ask a server "did you take this?": once the server said 250
    and we died before writing that down, all we know is that the row is still
    "sending".  So the next run sends it again, the SAME bytes with the SAME
    Message-ID, which mail clients (and our own intake) recognise as one message.
    At-least-once with a stable identity is the strongest promise the protocol allows."""
    inbox = cli.add_sending_maildir(installation, smtp, "support", "support@desk.example")
    maildir_deliver(inbox, make_message(subject="Printer on fire"))
    cli.fetch(installation)

    crashed = cli.send(installation, env={"POSTDESK_CRASH_AT": "after-send"}, check=False)

    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    (first,) = smtp.received
    (row,) = cli.state(installation)["outgoing"]
    assert (row["status"], row["attempts"]) == ("sending", 1)  # the truth: sent or not, we cannot know
    assert row["lease_owner"].rpartition(":")[2].isdigit()  # leased to the process that died

    again = cli.send(installation)  # the dead process's lease is free at once (same host)

    assert "sent 1," in again.stdout
    assert len(smtp.received) == 2
    assert {m.message_id for m in smtp.received} == {first.message_id} == {f"<{row['message_id']}>"}
    assert smtp.received[1].data == first.data
    (row,) = cli.state(installation)["outgoing"]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, "")
    assert "sent 0," in cli.send(installation).stdout and len(smtp.received) == 2
