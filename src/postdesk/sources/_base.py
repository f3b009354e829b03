"""What every source gives the pipeline, and the errors it raises."""

from __future__ import annotations

import ast
import errno
import imaplib
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# POSTDESK_NETWORK_TIMEOUT caps both (seconds): a server that accepts the
# connection and then says nothing must not hold its mailbox (or a test) for long.
_CAP = float(os.environ.get("POSTDESK_NETWORK_TIMEOUT") or 0) or None
CONNECT_TIMEOUT = min(15.0, _CAP or 15.0)  # seconds to establish TCP and TLS
COMMAND_TIMEOUT = min(60.0, _CAP or 60.0)  # seconds for any one server answer


@dataclass(frozen=True, slots=True)
class Listed:
    key: str
    size: int | None = None
    server_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    key: str
    raw: bytes
    server_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class TooLarge:
    """A message over the size limit, not downloaded: it stays at the source untouched.

    `headers` is a bounded slice of its header (at most HEADER_SLICE bytes, maybe
    none when the server lied about the size mid-transfer), so staff can see who
    sent what; `announced_size` is what the server said the whole message is."""

    key: str
    announced_size: int
    headers: bytes = b""
    server_date: datetime | None = None
    lied: bool = False  # the server sent more than it announced


HEADER_SLICE = 64 * 1024  # bytes of a too-large message's header we download


def header_part(data: bytes) -> bytes:
    """The header of a message (through the blank line) from its first bytes, at most HEADER_SLICE."""
    data = data[:HEADER_SLICE]
    for end in (b"\r\n\r\n", b"\n\n"):
        at = data.find(end)
        if at >= 0:
            return data[: at + len(end)]
    return data


class SourceError(Exception):
    """A mailbox could not be read.  `kind` tells what to do about it:

        dns, refused, timeout, network, tls   transient: retrying may help
        unavailable                           transient: the server refused the login for now
                                              ([UNAVAILABLE], [SYS/TEMP]: its auth backend is down)
        slow                                  transient: below the minimum rate, or out of pass time
        too-large, protocol                   the server sent more (or other) than it said; retried
        disk, database, lease, internal       ours, not the server's (pipeline._classify)
        certificate, login, folder, config    permanent: a person must act
        secret                                the stored password or token cannot be decrypted
        oauth                                 permanent: the OAuth2 grant ended ("sign-in expired:
                                              reconnect the mailbox"), or the client is wrong
        provider                              transient: the OAuth2 provider is down or slow
    """

    PERMANENT = frozenset({"certificate", "login", "folder", "config", "secret", "oauth"})

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def permanent(self) -> bool:
        return self.kind in self.PERMANENT

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class Source(Protocol):
    def list(self) -> list[Listed]: ...

    def fetch(self, keys: list[str]) -> Iterator[Fetched | TooLarge]:
        """Exact bytes; a message announced over the size limit comes as TooLarge
        (not downloaded).  What was yielded before an error is good to keep."""

    def acknowledge(self, keys: list[str]) -> list[str]:
        """Apply the after-import policy; returns the keys whose acknowledgement is final now."""

    def close(self) -> list[str]:
        """End the session; returns keys whose acknowledgement became final by closing (POP3 QUIT)."""

    def count(self) -> int: ...


def where(mailbox) -> str:
    return f"{mailbox.host}:{mailbox.port}" if mailbox.protocol != "maildir" else mailbox.path


def classify_error(exc: BaseException, mailbox) -> SourceError:
    """One line that tells an admin what went wrong, and whether retrying can help."""
    place = where(mailbox)
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, socket.gaierror):
        return SourceError("dns", f"cannot resolve {mailbox.host!r}: {exc.strerror or exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SourceError("certificate", f"certificate of {place} rejected: {exc.verify_message or exc.reason}")
    if isinstance(exc, ssl.SSLError):
        return SourceError("tls", f"TLS handshake with {place} failed: {exc.reason or exc}")
    if isinstance(exc, ConnectionRefusedError):
        return SourceError("refused", f"connection to {place} refused (is the server running on that port?)")
    if isinstance(exc, TimeoutError | socket.timeout):
        return SourceError("timeout", f"{place} did not answer in time")
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET, errno.EPIPE):
        return SourceError("network", f"connection to {place} failed: {exc.strerror}")
    if isinstance(exc, EOFError | ConnectionError):
        return SourceError("network", f"{place} closed the connection")
    if isinstance(exc, imaplib.IMAP4.abort):
        # imaplib's "socket error: EOF" / "command: FETCH => socket error: ...":
        # the server went away (killed, restarted); not a protocol problem.
        command = _ABORTED_COMMAND.match(server_text(exc))
        during = f" during {command.group(1)}" if command else ""
        return SourceError("network", f"{place} closed the connection{during}")
    text = server_text(exc, 300) or type(exc).__name__
    return SourceError("network" if isinstance(exc, OSError) else "protocol", f"{place}: {text}")


_ABORTED_COMMAND = re.compile(r"command: (\w+) =>")
_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)
# Dovecot appends its own timing, "(0.001 + 0.000 secs)": the same error should
# read the same on every attempt.
_SERVER_TIMING = re.compile(r"\s*\([0-9.]+ \+ [0-9.]+(?: \+ [0-9.]+)? secs\)\.?")


def server_text(exc: BaseException, limit: int = 200) -> str:
    """What a server said, as one clean line: bytes decoded, and a bytes repr
    (IMAPClient stringifies bytes: "b'[AUTHENTICATIONFAILED] ...'") undone."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(str(text).split())
    quoted = _BYTES_REPR.match(text)
    if quoted:
        try:
            text = ast.literal_eval(text).decode("utf-8", "replace")
        except (ValueError, SyntaxError):
            text = quoted.group(2)
    text = _SERVER_TIMING.sub("", text)
    return text[:limit]


# A refused login that says the refusal is passing: IMAP's [UNAVAILABLE] (RFC 5530; Dovecot
# when its password or token backend, e.g. the OAuth2 provider, is down) and POP3's
# [SYS/TEMP] and [IN-USE] (RFC 3206).  Anything else is the credentials' fault.
_PASSING_REFUSAL = re.compile(r"\[(UNAVAILABLE|SYS/TEMP|IN-USE)\]", re.IGNORECASE)


def login_refused(username: str, exc: BaseException) -> SourceError:
    """A login the server said no to: "login" (permanent: wrong password, token, or
    username), unless the server says it is a passing problem on its side ("unavailable")."""
    text = server_text(exc)
    if _PASSING_REFUSAL.search(text):
        return SourceError("unavailable", f"login as {username!r} failed for now: {text}")
    return SourceError("login", f"login as {username!r} refused: {text}")


def tls_context(mailbox) -> ssl.SSLContext:
    """Verified TLS by default; a CA file for private CAs; no verification only when asked."""
    context = ssl.create_default_context(cafile=mailbox.ca_file or None)
    if not mailbox.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
