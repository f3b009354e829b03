"""`postdesk mailbox test` and the Test connection button check the SMTP account too."""

from __future__ import annotations

import pytest

from postdesk import mailboxes, secrets
from postdesk.models import Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    secrets._fernet.cache_clear()
    yield
    secrets._fernet.cache_clear()


def sending_mailbox(tmp_path, smtp, **changes) -> Mailbox:
    maildir = tmp_path / "md"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    settings = {"name": "support", "protocol": "maildir", "path": str(maildir), "address": "support@desk.example",
                "smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_security": "starttls", "smtp_username": smtp.username,
                "smtp_password": smtp.password, "smtp_ca_file": str(smtp.ca_file)}
    settings.update(changes)
    return mailboxes.add(settings)


def test_a_working_smtp_account_is_reported(tmp_path, smtp):
    result = mailboxes.test_connection(sending_mailbox(tmp_path, smtp))
    assert result.all_ok and result.sending[0]
    assert result.sending_summary == f"sending: ok, {smtp.host}:{smtp.port} starttls, logged in as {smtp.username}"
    assert smtp.received == []  # nothing is sent by a test


def test_a_refused_smtp_login_is_shown_exactly(tmp_path, smtp):
    result = mailboxes.test_connection(sending_mailbox(tmp_path, smtp, smtp_password="wrong"))
    assert result.ok and not result.all_ok  # fetching works, sending does not
    assert result.sending_summary.startswith("sending: failed, 535")


def test_a_mailbox_that_does_not_send_is_not_tested_for_it(tmp_path, smtp):
    mailbox = sending_mailbox(tmp_path, smtp)
    mailbox.smtp_host = ""
    mailbox.save()
    result = mailboxes.test_connection(mailbox)
    assert result.sending is None and result.all_ok


def test_cli_exits_non_zero_when_sending_fails(tmp_path, smtp):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    sending_mailbox(tmp_path, smtp, smtp_password="wrong")
    with pytest.raises(CommandError, match="sending: failed, 535"):
        call_command("mailbox", "test", "support")
