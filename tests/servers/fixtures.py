"""Pytest fixtures for tests against real servers; ``tests/conftest.py`` imports them all.

    oauth_provider (session)  the test OAuth2 provider: tests.servers.oauth_provider.OAuthProvider,
                              listening, with the public client TEST_CLIENT_ID registered
    oauth          (function) the same provider with default behaviour (lifetimes, intervals,
                              up, not failing), restored again after the test
    dovecot        (session)  the private Dovecot: tests.servers.dovecot.Dovecot, started;
                              also takes XOAUTH2/OAUTHBEARER tokens of `oauth_provider`
    mail_user      (function) a new user with an empty mailbox: MailUser(username, password),
                              also a user of `oauth_provider` (same name and password)
    silent_server  (function) a TCP server that accepts and never answers: SilentServer
    closed_port    (function) a loopback port number with nothing listening
    smtp_server    (session)  the private SMTP server: tests.servers.smtp.SmtpServer, started;
                              also takes XOAUTH2/OAUTHBEARER tokens of `oauth_provider`
    smtp           (function) the same server, running, with nothing received and no refusals
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .dovecot import Dovecot, DovecotError, MailUser
from .oauth_provider import OAuthProvider
from .smtp import SmtpServer
from .sockets import SilentServer
from .sockets import closed_port as _free_closed_port

TEST_CLIENT_ID = "postdesk-test"

__all__ = ["oauth_provider", "oauth", "dovecot", "mail_user", "silent_server", "closed_port", "smtp_server", "smtp"]


def running_dovecot(configure=None, *, introspection_url: str | None = None) -> Iterator[Dovecot]:
    """A new private Dovecot, optionally reconfigured before it starts, stopped and
    removed afterwards; a server that cannot start fails the test with its log.
    With `introspection_url` it also takes OAuth2 tokens (see tests.servers.dovecot)."""
    try:
        server = Dovecot.create(introspection_url=introspection_url)
    except DovecotError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        if configure is not None:
            configure(server)
        try:
            server.start()
        except DovecotError as error:
            pytest.fail(str(error), pytrace=False)
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def oauth_provider() -> Iterator[OAuthProvider]:
    """One OAuth2 provider for the whole session (a thread; it starts in milliseconds)."""
    provider = OAuthProvider.start()
    provider.add_client(TEST_CLIENT_ID)
    try:
        yield provider
    finally:
        provider.down()


@pytest.fixture
def oauth(oauth_provider: OAuthProvider) -> Iterator[OAuthProvider]:
    """The session's provider with default behaviour; a test may shorten lifetimes,
    take it down or make it fail, and the next test finds it normal again."""
    oauth_provider.reset_behaviour()
    try:
        yield oauth_provider
    finally:
        oauth_provider.reset_behaviour()


@pytest.fixture(scope="session")
def dovecot(oauth_provider: OAuthProvider) -> Iterator[Dovecot]:
    """One Dovecot for the whole session (it starts in well under a second), taking
    passwords and the session provider's tokens alike.

    Tests may stop() and start() it; `mail_user` restarts it if a test left it down.
    """
    yield from running_dovecot(introspection_url=oauth_provider.introspection_endpoint)


@pytest.fixture
def mail_user(dovecot: Dovecot, oauth_provider: OAuthProvider) -> MailUser:
    """A user no other test has seen, so its mailbox starts empty; the same person
    (name and password) can sign in at the provider."""
    dovecot.start()  # no-op when running
    user = dovecot.new_user()
    oauth_provider.add_user(user.username, user.password)
    return user


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def closed_port() -> int:
    return _free_closed_port()


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory, oauth_provider: OAuthProvider) -> Iterator[SmtpServer]:
    """One SMTP server for the whole session (it starts in milliseconds); it also takes
    the session provider's tokens (XOAUTH2, OAUTHBEARER)."""
    server = SmtpServer.create(tmp_path_factory.mktemp("smtp"), introspection_url=oauth_provider.introspection_endpoint)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> Iterator[SmtpServer]:
    """The session's SMTP server, up, empty and accepting; a test may stop it or make it refuse."""
    smtp_server.start()
    smtp_server.clear()
    try:
        yield smtp_server
    finally:
        smtp_server.start()
        smtp_server.clear()
