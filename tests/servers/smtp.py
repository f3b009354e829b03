"""A private SMTP server (aiosmtpd) for tests of what Postdesk sends.

It listens on a free loopback port, offers STARTTLS with a certificate from
the tests' own CA (tests/servers/tls.py) and AUTH PLAIN/LOGIN, accepted only
after STARTTLS and only for its one user, and keeps every message it took:

    server = SmtpServer.create(tmp_dir)
    ...Postdesk sends to server.host:server.port, trusting server.ca_file...
    (mail,) = server.received           # Received(mail_from, rcpt_tos, data, tls, login)
    server.refuse("RCPT", "450 4.2.0 mailbox busy")   # that reply to every RCPT TO
    server.refuse("DATA", "554 5.7.1 rejected")       # or to the end of DATA
    server.stop(); server.start()                      # down (refused) and back, on the same port

Mail is recorded when the server answers the end of DATA with 250, exactly
as a real server takes responsibility for it then.
"""

from __future__ import annotations

import email
import logging
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .tls import TlsFiles, write_tls_files

HOST = "127.0.0.1"
USERNAME = "postdesk-sender"

# aiosmtpd logs a deprecation warning of its own on every login.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool  # the session had switched to TLS (STARTTLS) before the mail
    login: str | None  # the user that authenticated, if any

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.data, policy=default_policy)

    @property
    def text(self) -> str:
        """The text/plain body, with \\n line ends."""
        part = self.message.get_body(("plain",))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""

    @property
    def message_id(self) -> str:
        return (self.message["Message-ID"] or "").strip()


@dataclass
class _Handler:
    server: SmtpServer
    refusals: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refusals.get("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.refusals.get("DATA")
        if reply:
            return reply
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        content = envelope.original_content or envelope.content
        self.server._record(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(content),
                                     session.ssl is not None, login))
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    """See the module docstring.  Not started by the constructor: use create() or start()."""

    host = HOST

    def __init__(self, tls: TlsFiles, password: str = "smtp-secret-1") -> None:
        self.tls = tls
        self.username = USERNAME
        self.password = password
        self.port = _free_port()
        self.logins: list[tuple[str, bool]] = []  # (user, succeeded) per AUTH attempt
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._handler = _Handler(self)
        self._controller: Controller | None = None
        self._tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls_context.load_cert_chain(str(tls.cert_file), str(tls.key_file))

    @classmethod
    def create(cls, directory: Path) -> SmtpServer:
        server = cls(write_tls_files(directory / "smtp-tls"))
        server.start()
        return server

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget what was received and any refusals (between tests)."""
        with self._lock:
            self._received.clear()
            self.logins.clear()
        self._handler.refusals.clear()

    def refuse(self, command: str, reply: str | None) -> None:
        """Answer every `command` ("RCPT" or "DATA") with `reply`; None: accept again."""
        if command not in ("RCPT", "DATA"):
            raise ValueError(f"refusals are for RCPT or DATA, not {command}")
        if reply is None:
            self._handler.refusals.pop(command, None)
        else:
            self._handler.refusals[command] = reply

    def start(self) -> None:
        if self._controller is not None:
            return
        controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",
            ready_timeout=10,
            # What a submission server demands: TLS before anything, then a login.
            tls_context=self._tls_context,
            require_starttls=True,
            auth_require_tls=True,
            auth_required=True,
            authenticator=self._authenticate,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening: connecting is refused until start()."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        ok = user == self.username and auth_data.password.decode() == self.password
        with self._lock:
            self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _record(self, mail: Received) -> None:
        with self._lock:
            self._received.append(mail)


def _free_port() -> int:
    # aiosmtpd's Controller cannot listen on port 0 (it connects to its own port to
    # check that it is up), so the kernel picks a free port first.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
