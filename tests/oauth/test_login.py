"""Our SASL answers and our stored grant against the real servers: Dovecot (IMAP, POP3) with its
oauth2 passdb introspecting at the test provider, and the test SMTP server.  A refused token is
refreshed once (access_token(rejected=...)) and the login retried, as sources/ will do."""

from __future__ import annotations

import base64
import imaplib
import poplib
import smtplib
import ssl

import pytest

from postdesk.oauth import sasl, tokens
from tests.oauth.support import connected
from tests.servers.fixtures import TEST_CLIENT_ID

pytestmark = pytest.mark.django_db
TIMEOUT = 60


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def imap_login(dovecot, mechanism: str, user: str, token: str) -> None:
    client = imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=TIMEOUT)
    try:
        answer = (sasl.xoauth2(user, token) if mechanism == "XOAUTH2"
                  else sasl.oauthbearer(user, token, dovecot.host, dovecot.ports.imap))
        client.authenticate(mechanism, lambda challenge: answer.encode() if not challenge else b"")
        assert client.select("INBOX")[0] == "OK"
    finally:
        client.shutdown()


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_imap_login_with_the_stored_grant(dovecot, provider, mail_user, mechanism):
    mailbox = connected(provider, TEST_CLIENT_ID, mail_user.username)
    imap_login(dovecot, mechanism, mail_user.username, tokens.access_token(mailbox))


def test_a_refused_token_is_refreshed_once_and_the_login_retried(dovecot, provider, mail_user):
    mailbox = connected(provider, TEST_CLIENT_ID, mail_user.username)
    token = tokens.access_token(mailbox)
    provider.expire(token)  # the server refuses it although we thought it had an hour left
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap_login(dovecot, "XOAUTH2", mail_user.username, token)
    fresh = tokens.access_token(mailbox, rejected=token)
    imap_login(dovecot, "XOAUTH2", mail_user.username, fresh)
    assert provider.refreshes(mail_user.username) == 1


def test_pop3_xoauth2_with_the_stored_grant(dovecot, provider, mail_user):
    mailbox = connected(provider, TEST_CLIENT_ID, mail_user.username)
    answer = base64.b64encode(sasl.xoauth2(mail_user.username, tokens.access_token(mailbox)).encode()).decode()
    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=TIMEOUT)
    try:
        assert pop._shortcmd("AUTH XOAUTH2 " + answer).startswith(b"+OK")
    finally:
        pop.quit()


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_smtp_with_the_stored_grant(smtp, provider, mail_user, mechanism):
    mailbox = connected(provider, TEST_CLIENT_ID, mail_user.username)
    token = tokens.access_token(mailbox)
    answer = (sasl.xoauth2(mail_user.username, token) if mechanism == "XOAUTH2"
              else sasl.oauthbearer(mail_user.username, token, smtp.host, smtp.port))
    with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT) as client:
        client.starttls(context=ssl.create_default_context(cafile=str(smtp.ca_file)))
        client.ehlo()
        assert client.auth(mechanism, lambda challenge=None: answer if challenge is None else "")[0] == 235
