"""An SMTP session for a mailbox: TLS verified as for fetching, STARTTLS never skipped."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

from postdesk.sources._base import COMMAND_TIMEOUT, CONNECT_TIMEOUT

DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}


@dataclass(frozen=True)
class SmtpAccount:
    host: str
    port: int
    security: str
    verify_tls: bool
    ca_file: str
    username: str
    password: str


class SmtpConfigError(Exception):
    """The mailbox cannot send: settings are missing (a person must act)."""


def account_for(mailbox) -> SmtpAccount:
    from postdesk import secrets

    if mailbox.smtp_same_as_fetch:
        host, username, secret = mailbox.host, mailbox.username, mailbox.secret
        security, verify, ca_file = ("tls" if mailbox.security == "tls" else "starttls"), mailbox.verify_tls, mailbox.ca_file
        port = mailbox.smtp_port or DEFAULT_PORTS[security]
    else:
        host, username, secret = mailbox.smtp_host, mailbox.smtp_username, mailbox.smtp_secret
        security, verify, ca_file = mailbox.smtp_security, mailbox.smtp_verify_tls, mailbox.smtp_ca_file
        port = mailbox.smtp_port or DEFAULT_PORTS.get(security, 587)
    if not host:
        raise SmtpConfigError(f"mailbox {mailbox.name} has no SMTP server (set one, or 'same as fetching')")
    password = secrets.decrypt(secret) if secret else ""
    return SmtpAccount(host, port, security, verify, ca_file, username, password)


def _context(account: SmtpAccount):
    from types import SimpleNamespace

    from postdesk.sources._base import tls_context

    # tls_context reads these fields of a mailbox: the same rules as for fetching.
    return tls_context(SimpleNamespace(verify_tls=account.verify_tls, ca_file=account.ca_file, host=account.host))


def connect(account: SmtpAccount) -> smtplib.SMTP:
    timeout = max(CONNECT_TIMEOUT, COMMAND_TIMEOUT)
    if account.security == "tls":
        client = smtplib.SMTP_SSL(account.host, account.port, timeout=timeout, context=_context(account))
    else:
        client = smtplib.SMTP(account.host, account.port, timeout=timeout)
    try:
        client.ehlo()
        if account.security == "starttls":
            if not client.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(
                    f"{account.host}:{account.port} does not offer STARTTLS; refusing to send without TLS"
                )
            client.starttls(context=_context(account))
            client.ehlo()
        if account.username:
            client.login(account.username, account.password)
    except BaseException:
        try:
            client.close()
        except Exception:
            pass
        raise
    return client
