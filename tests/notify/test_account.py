"""The account notifications leave through: the environment's system account, the
admin's, the mailbox's own; with none, nothing is planned and the page says why."""

from __future__ import annotations

import pytest
from django.test import Client

from postdesk import metrics, secrets
from postdesk.models import NotifyAccount, Outgoing
from postdesk.notify import account
from tests.notify.conftest import notifications
from tests.support.mail import make_message


def system_url(smtp, user=None) -> str:
    return f"smtp://{user or smtp.username}@{smtp.host}:{smtp.port}/?ca_file={smtp.ca_file}"


def test_the_environments_account_sends_with_starttls(desk, staff, smtp, settings):
    settings.POSTDESK_SMTP_URL = system_url(smtp)
    settings.POSTDESK_SMTP_PASSWORD = smtp.password
    settings.POSTDESK_NOTIFY_FROM = "desk-notify@staff.example"
    staff("phil")
    desk.mailbox(assign="phil", ack_enabled=False)
    desk.receive("support", make_message(subject="Printer"))

    (out,) = Outgoing.objects.filter(kind="notification")
    assert out.mailbox is None and out.envelope_from == "desk-notify@staff.example"
    assert [r["status"] for r in desk.send()] == ["sent"]
    (mail,) = notifications(smtp)
    assert mail.tls and mail.login == smtp.username and mail.mail_from == "desk-notify@staff.example"


def test_the_admins_account_is_used_and_the_environment_wins(desk, staff, smtp, settings):
    NotifyAccount.objects.create(smtp_url=system_url(smtp), secret=secrets.encrypt(smtp.password),
                                 from_address="db@staff.example")
    assert account.system_account().source == "database"
    settings.POSTDESK_SMTP_URL = system_url(smtp, "other")
    settings.POSTDESK_NOTIFY_FROM = "env@staff.example"
    system = account.system_account()
    assert (system.source, system.smtp.username, system.from_address) == ("environment", "other", "env@staff.example")


def test_a_wrong_password_is_retried_not_failed(desk, staff, smtp, settings):
    settings.POSTDESK_SMTP_URL = system_url(smtp)
    settings.POSTDESK_SMTP_PASSWORD = "wrong"
    settings.POSTDESK_NOTIFY_FROM = "desk-notify@staff.example"
    staff("phil")
    desk.mailbox(assign="phil", ack_enabled=False)
    desk.receive("support", make_message(subject="Printer"))

    assert [r["status"] for r in desk.send()] == ["retry"]
    assert notifications(smtp) == []


def test_without_any_account_nothing_is_planned_and_the_page_says_why(transactional_db, staff, settings, tmp_path):
    from postdesk import mailboxes

    settings.DATA_DIR = tmp_path
    secrets._fernet.cache_clear()
    mailboxes.add({"name": "support", "protocol": "maildir", "path": str(tmp_path), "address": "support@desk.example"})
    phil = staff("phil")
    client = Client()
    client.force_login(phil)

    page = client.get("/account/notifications/").content.decode()

    assert "Nothing is sent: no notification account is set" in page
    assert not account.status().ok
    secrets._fernet.cache_clear()


@pytest.mark.parametrize("url", ["http://host", "smtp://", "ftp://user@host"])
def test_a_bad_url_is_refused(url):
    with pytest.raises(account.SmtpConfigError):
        account.parse_url(url)


def test_the_url_reads_security_port_and_user():
    starttls = account.parse_url("smtp://me%40x.example@mail.x.example")
    tls = account.parse_url("smtps://mail.x.example?verify=off")
    assert (starttls.security, starttls.port, starttls.username) == ("starttls", 587, "me@x.example")
    assert (tls.security, tls.port, tls.verify_tls, tls.credentials.method) == ("tls", 465, False, "none")


def test_sent_notifications_are_counted_with_their_delay(desk, staff, smtp):
    before = metrics.REGISTRY.get_sample_value("postdesk_notifications_sent_total") or 0
    count_before = metrics.REGISTRY.get_sample_value("postdesk_notification_delay_seconds_count") or 0
    staff("phil")
    desk.mailbox(assign="phil")
    desk.receive("support", make_message(subject="Printer"))
    desk.send()

    assert metrics.REGISTRY.get_sample_value("postdesk_notifications_sent_total") == before + 1
    assert metrics.REGISTRY.get_sample_value("postdesk_notification_delay_seconds_count") == count_before + 1


def test_failed_notifications_are_counted(desk, staff, smtp):
    before = metrics.REGISTRY.get_sample_value("postdesk_notifications_failed_total") or 0
    staff("phil")
    desk.mailbox(assign="phil", ack_enabled=False)
    desk.receive("support", make_message(subject="Printer"))
    smtp.refuse("RCPT", "550 5.1.1 no such user")

    assert [r["status"] for r in desk.send()] == ["failed"]
    assert metrics.REGISTRY.get_sample_value("postdesk_notifications_failed_total") == before + 1
