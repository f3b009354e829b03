"""OAuth2 mailboxes signing in through sources/ against the real servers: Dovecot
(IMAP, POP3; its oauth2 passdb introspects at the test provider) and the test
SMTP server (XOAUTH2/OAUTHBEARER, the same introspection).

What each test pins down: a refused token is refreshed once and the login
retried; an ended grant is a permanent "oauth" error that says "reconnect";
a provider that is down is a passing "provider" error; a fetch pass, a staff
reply and its Sent copy all go through the one grant.
"""

from __future__ import annotations

import pytest

from postdesk import mailboxes
from postdesk.models import Outgoing, Request
from postdesk.sources import SourceError, open_source
from tests.oauth.support import connected, grant_of, stored
from tests.outbound.conftest import acks, desk  # noqa: F401  (the fixture, shared)
from tests.support import commands
from tests.support.mail import make_message

PORTS = {("imap", "tls"): "imaps", ("imap", "starttls"): "imap", ("pop3", "tls"): "pop3s", ("pop3", "starttls"): "pop3"}


def dovecot_mailbox(provider, client_id, dovecot, user, *, protocol="imap", security="tls", **fields):
    """An OAuth mailbox at the test Dovecot for `user` (a Dovecot user who is also a provider user), connected."""
    return connected(provider, client_id, user.username, host=dovecot.host, protocol=protocol, security=security,
                     port=getattr(dovecot.ports, PORTS[(protocol, security)]), ca_file=str(dovecot.ca_file),
                     after_import="keep", **fields)


def count(mailbox) -> int:
    source = open_source(mailbox)
    try:
        return source.count()
    finally:
        source.close()


@pytest.mark.parametrize("protocol,security", [("imap", "tls"), ("imap", "starttls"), ("pop3", "tls"), ("pop3", "starttls")])
def test_an_oauth_mailbox_signs_in_with_its_token(db, provider, client_id, dovecot, mail_user, protocol, security):
    dovecot.append(mail_user, make_message(subject="Printer on fire"))
    mailbox = dovecot_mailbox(provider, client_id, dovecot, mail_user, protocol=protocol, security=security)

    assert count(mailbox) == 1
    assert count(mailbox) == 1  # twice: the stored token is reused, not refreshed
    assert provider.refreshes(mail_user.username) == 0
    assert grant_of(mailbox).last_used_at is not None


def test_a_refused_token_is_refreshed_once_and_the_login_retried(db, provider, client_id, dovecot, mail_user):
    mailbox = dovecot_mailbox(provider, client_id, dovecot, mail_user)
    access, _ = stored(mailbox)
    provider.expire(access)  # the server now refuses the token we believe valid for an hour

    assert count(mailbox) == 0
    assert provider.refreshes(mail_user.username) == 1
    assert stored(mailbox)[0] != access
    assert grant_of(mailbox).state == "ok"


def test_an_ended_grant_is_permanent_and_says_reconnect(db, provider, client_id, dovecot, mail_user):
    mailbox = dovecot_mailbox(provider, client_id, dovecot, mail_user)
    provider.revoke_user(mail_user.username)  # consent removed: tokens inactive, refresh -> invalid_grant

    with pytest.raises(SourceError) as failure:
        count(mailbox)
    assert failure.value.kind == "oauth" and failure.value.permanent
    assert "reconnect the mailbox" in failure.value.message
    assert grant_of(mailbox).state == "expired"
    assert any("reconnect the mailbox" in w for w in mailboxes.warnings(mailbox))


def test_a_provider_that_is_down_is_a_passing_failure(db, provider, client_id, dovecot, mail_user):
    mailbox = dovecot_mailbox(provider, client_id, dovecot, mail_user)
    provider.expire(stored(mailbox)[0])
    provider.fail_with(503)

    with pytest.raises(SourceError) as failure:
        count(mailbox)
    assert failure.value.kind == "provider" and not failure.value.permanent
    assert grant_of(mailbox).state == "failing"

    provider.fail_with(None)
    assert count(mailbox) == 0
    assert grant_of(mailbox).state == "ok"


def test_a_fetch_pass_imports_through_the_grant_once(transactional_db, provider, client_id, dovecot, mail_user, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    dovecot.append(mail_user, make_message(subject="Printer on fire"))
    dovecot_mailbox(provider, client_id, dovecot, mail_user, name="office")

    (report,) = commands.fetch("office")
    assert report["created"] == 1
    (again,) = commands.fetch("office")  # run it twice: nothing new
    assert again["created"] == 0
    assert Request.objects.count() == 1


def test_replies_and_their_sent_copy_use_the_grant(desk, smtp, provider, client_id, dovecot, mail_user):  # noqa: F811
    mailbox = dovecot_mailbox(
        provider, client_id, dovecot, mail_user, name="support", address="support@desk.example",
        ack_enabled=True, sent_folder="Sent", smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="starttls",
        smtp_ca_file=str(smtp.ca_file), smtp_auth="oauth")
    desk.fetch("support")  # connected while empty: what comes next is new
    dovecot.append(mail_user, make_message(subject="Printer on fire"))
    desk.fetch("support")

    assert [r["status"] for r in desk.send()] == ["sent"]

    (mail,) = smtp.received
    assert (mail.login, mail.mechanism) == (mail_user.username, "OAUTHBEARER")
    (out,) = acks()
    assert out.status == Outgoing.Status.SENT and out.copied_to_sent
    assert dovecot.message_count(mail_user, "Sent") == 1
    assert mailbox.pk == out.mailbox_id


def test_a_provider_down_for_the_mail_server_too_is_passing(db, provider, client_id, dovecot, mail_user):
    """Dovecot cannot introspect the token ([UNAVAILABLE]) and we cannot refresh it: passing, not a wrong login."""
    mailbox = dovecot_mailbox(provider, client_id, dovecot, mail_user)
    provider.down()
    try:
        with pytest.raises(SourceError) as failure:
            count(mailbox)
        assert failure.value.kind in ("provider", "unavailable") and not failure.value.permanent, failure.value
    finally:
        provider.up()
    assert count(mailbox) == 0
