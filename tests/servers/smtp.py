"""A private SMTP server (aiosmtpd) for tests of what Postdesk sends.

It listens on a free loopback port, offers STARTTLS with a certificate from
the tests' own CA (tests/servers/tls.py) and AUTH PLAIN/LOGIN, accepted only
after STARTTLS and only for its one user, and keeps every message it took:

    server = SmtpServer.create(tmp_dir)
    ...Postdesk sends to server.host:server.port, trusting server.ca_file...
    (mail,) = server.received           # Received(mail_from, rcpt_tos, data, tls, login, mechanism)
    server.refuse("RCPT", "450 4.2.0 mailbox busy")   # that reply to every RCPT TO
    server.refuse("DATA", "554 5.7.1 rejected")       # or to the end of DATA
    server.stop(); server.start()                      # down (refused) and back, on the same port

Given an introspection URL (the session's server has the test OAuth2 provider's,
tests/servers/oauth_provider.py), it also offers AUTH XOAUTH2 and OAUTHBEARER
(RFC 7628) for any user of that provider: the token must be active and issued
to the user named in the SASL message.  A refused token gets what Google and
Microsoft send: a 334 challenge carrying the error as base64 JSON, which the
client answers with an empty line (XOAUTH2) or ^A (OAUTHBEARER), then 535.

Mail is recorded when the server answers the end of DATA with 250, exactly
as a real server takes responsibility for it then.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email
import json
import logging
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import NamedTuple

import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword

from .tls import TlsFiles, write_tls_files

HOST = "127.0.0.1"
USERNAME = "postdesk-sender"
OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
INTROSPECTION_TIMEOUT = 10.0
CODE_INVALID = "535 5.7.8 Authentication credentials invalid"

# aiosmtpd logs a deprecation warning of its own on every login.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool  # the session had switched to TLS (STARTTLS) before the mail
    login: str | None  # the user that authenticated, if any
    mechanism: str | None = None  # how: "PLAIN", "LOGIN", "XOAUTH2" or "OAUTHBEARER"

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


class Login(NamedTuple):
    """A session's authentication (aiosmtpd's auth_data): who, and by which mechanism."""

    login: bytes
    mechanism: str


@dataclass(frozen=True)
class _BearerMessage:
    """The user and token of an XOAUTH2 or OAUTHBEARER initial response."""

    user: str
    token: str

    @classmethod
    def parse(cls, mechanism: str, raw: bytes) -> _BearerMessage | None:
        # XOAUTH2: user=U ^A auth=Bearer T ^A^A.  OAUTHBEARER (RFC 7628): a GS2
        # header "n,a=U," then the same ^A-separated key=value pairs.
        text = raw.decode("utf-8", "replace")
        header, _, rest = text.partition("\x01")
        pairs = dict(item.split("=", 1) for item in rest.split("\x01") if "=" in item)
        if mechanism == "XOAUTH2":
            pairs.setdefault("user", header.removeprefix("user="))
        else:
            pairs["user"] = next((part[2:] for part in header.split(",") if part.startswith("a=")), "")
        auth = pairs.get("auth", "")
        if not auth.lower().startswith("bearer ") or not pairs["user"]:
            return None
        return cls(pairs["user"], auth[len("bearer "):])


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
        auth = session.auth_data if isinstance(session.auth_data, Login) else None
        content = envelope.original_content or envelope.content
        self.server._record(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(content),
                                     session.ssl is not None, auth.login.decode() if auth else None,
                                     auth.mechanism if auth else None))
        return "250 2.0.0 Ok: queued"

    # aiosmtpd offers every handler method named auth_<MECHANISM> (unless excluded).

    async def auth_XOAUTH2(self, smtp, args) -> AuthResult:  # noqa: N802  (aiosmtpd's naming)
        return await self._bearer_auth(smtp, "XOAUTH2", args)

    async def auth_OAUTHBEARER(self, smtp, args) -> AuthResult:  # noqa: N802
        return await self._bearer_auth(smtp, "OAUTHBEARER", args)

    async def _bearer_auth(self, smtp, mechanism: str, args: list[str]) -> AuthResult:
        raw = await _initial_response(smtp, args)
        if raw is None:
            return AuthResult(success=False, handled=True)
        message = _BearerMessage.parse(mechanism, raw)
        if message is None:
            await smtp.push("501 5.5.2 Malformed " + mechanism + " message")
            return AuthResult(success=False, handled=True)
        active = await asyncio.get_running_loop().run_in_executor(None, self.server._token_is_for, message)
        self.server._note_login(message.user, active)
        if active:
            return AuthResult(success=True, auth_data=Login(message.user.encode(), mechanism))
        # The error challenge; the client's answer (empty, or ^A) only ends the exchange.
        answer = await smtp.challenge_auth(json.dumps(_bearer_error(mechanism)))
        if answer is MISSING:  # "*" or bad base64: aiosmtpd has replied already
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=CODE_INVALID)


class SmtpServer:
    """See the module docstring.  Not started by the constructor: use create() or start()."""

    host = HOST

    def __init__(self, tls: TlsFiles, password: str = "smtp-secret-1", introspection_url: str | None = None) -> None:
        self.tls = tls
        self.introspection_url = introspection_url
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
    def create(cls, directory: Path, introspection_url: str | None = None) -> SmtpServer:
        server = cls(write_tls_files(directory / "smtp-tls"), introspection_url=introspection_url)
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
            auth_exclude_mechanism=() if self.introspection_url else OAUTH_MECHANISMS,
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
        self._note_login(user, ok)
        return AuthResult(success=ok, handled=False, auth_data=Login(auth_data.login, mechanism))

    def _note_login(self, user: str, ok: bool) -> None:
        with self._lock:
            self.logins.append((user, ok))

    def _token_is_for(self, message: _BearerMessage) -> bool:
        """Introspection (RFC 7662) says the token is active and was issued to this user."""
        try:
            answer = requests.post(self.introspection_url, data={"token": message.token},
                                   timeout=INTROSPECTION_TIMEOUT).json()
        except (requests.RequestException, ValueError):
            return False  # the provider is down: no way to accept the token
        return answer.get("active") is True and answer.get("username") == message.user

    def _record(self, mail: Received) -> None:
        with self._lock:
            self._received.append(mail)


async def _initial_response(smtp, args: list[str]) -> bytes | None:
    """The SASL initial response, sent with AUTH or after an empty 334; None: answered already."""
    if len(args) == 1:
        raw = await smtp.challenge_auth("")
        return None if raw is MISSING else raw
    try:
        return base64.b64decode(args[1], validate=True)
    except binascii.Error:
        await smtp.push("501 5.5.2 Can't decode base64")
        return None


def _bearer_error(mechanism: str) -> dict:
    # Google's XOAUTH2 error and RFC 7628's OAUTHBEARER error (section 3.2.2).
    if mechanism == "XOAUTH2":
        return {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
    return {"status": "invalid_token", "scope": "mail"}


def _free_port() -> int:
    # aiosmtpd's Controller cannot listen on port 0 (it connects to its own port to
    # check that it is up), so the kernel picks a free port first.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
