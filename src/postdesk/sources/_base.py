"""What every source gives the pipeline, and the errors it raises."""

from __future__ import annotations

import errno
import os
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


class SourceError(Exception):
    """A mailbox could not be read.  `kind` tells what to do about it:

        dns, refused, timeout, network, tls   transient: retrying may help
        disk, database, lease, internal       ours, not the server's (pipeline._classify)
        certificate, login, folder, config    permanent: a person must act
        secret                                the stored password cannot be decrypted
    """

    PERMANENT = frozenset({"certificate", "login", "folder", "config", "secret"})

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

    def fetch(self, keys: list[str]) -> Iterator[Fetched]: ...

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
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    return SourceError("network" if isinstance(exc, OSError) else "protocol", f"{place}: {text}")


def tls_context(mailbox) -> ssl.SSLContext:
    """Verified TLS by default; a CA file for private CAs; no verification only when asked."""
    context = ssl.create_default_context(cafile=mailbox.ca_file or None)
    if not mailbox.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
