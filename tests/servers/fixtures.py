"""Pytest fixtures for tests against real servers; ``tests/conftest.py`` imports them all.

    dovecot        (session)  the private Dovecot: tests.servers.dovecot.Dovecot, started
    mail_user      (function) a new user with an empty mailbox: MailUser(username, password)
    silent_server  (function) a TCP server that accepts and never answers: SilentServer
    closed_port    (function) a loopback port number with nothing listening
    smtp_server    (session)  the private SMTP server: tests.servers.smtp.SmtpServer, started
    smtp           (function) the same server, running, with nothing received and no refusals
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .dovecot import Dovecot, DovecotError, MailUser
from .smtp import SmtpServer
from .sockets import SilentServer
from .sockets import closed_port as _free_closed_port

__all__ = ["dovecot", "mail_user", "silent_server", "closed_port", "smtp_server", "smtp"]


def running_dovecot(configure=None) -> Iterator[Dovecot]:
    """A new private Dovecot, optionally reconfigured before it starts, stopped and
    removed afterwards; a server that cannot start fails the test with its log."""
    try:
        server = Dovecot.create()
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
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot for the whole session (it starts in well under a second).

    Tests may stop() and start() it; `mail_user` restarts it if a test left it down.
    """
    yield from running_dovecot()


@pytest.fixture
def mail_user(dovecot: Dovecot) -> MailUser:
    """A user no other test has seen, so its mailbox starts empty."""
    dovecot.start()  # no-op when running
    return dovecot.new_user()


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
def smtp_server(tmp_path_factory) -> Iterator[SmtpServer]:
    """One SMTP server for the whole session (it starts in milliseconds)."""
    server = SmtpServer.create(tmp_path_factory.mktemp("smtp"))
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
