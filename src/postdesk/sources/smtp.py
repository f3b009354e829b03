"""An SMTP session for a mailbox: TLS verified as for fetching, STARTTLS never skipped,
signed in with the mailbox's credentials (a password, or its OAuth2 grant by XOAUTH2)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from types import SimpleNamespace

from postdesk.sources._base import COMMAND_TIMEOUT, CONNECT_TIMEOUT, SourceError, tls_context
from postdesk.sources.credentials import SEND, Credentials, credentials_for, initial_response, preferred_mechanism, sign_in

DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}


@dataclass(frozen=True)
class SmtpAccount:
    host: str
    port: int
    security: str
    verify_tls: bool
    ca_file: str
    credentials: Credentials

    @property
    def username(self) -> str:
        return self.credentials.username


class SmtpConfigError(Exception):
    """The mailbox cannot send: settings are missing (a person must act)."""


def account_for(mailbox) -> SmtpAccount:
    """The account the mailbox sends through; nothing is decrypted here."""
    if mailbox.smtp_same_as_fetch:
        host = mailbox.host
        security, verify, ca_file = ("tls" if mailbox.security == "tls" else "starttls"), mailbox.verify_tls, mailbox.ca_file
        port = mailbox.smtp_port or DEFAULT_PORTS[security]
    else:
        host = mailbox.smtp_host
        security, verify, ca_file = mailbox.smtp_security, mailbox.smtp_verify_tls, mailbox.smtp_ca_file
        port = mailbox.smtp_port or DEFAULT_PORTS.get(security, 587)
    if not host:
        raise SmtpConfigError(f"mailbox {mailbox.name} has no SMTP server (set one, or 'same as fetching')")
    return SmtpAccount(host, port, security, verify, ca_file, credentials_for(mailbox, SEND))


def connect(account: SmtpAccount) -> smtplib.SMTP:
    """A session, TLS up and signed in.  Raises smtplib's errors, SmtpConfigError, and
    SourceError for credentials that cannot be had (a changed key, an expired grant)."""
    account.credentials.check()
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
        sign_in(account.credentials, password=client.login, token=_token_login(client, account),
                refused=smtplib.SMTPAuthenticationError)
    except BaseException:
        try:
            client.close()
        except Exception:
            pass
        raise
    return client


def _context(account: SmtpAccount):
    # tls_context reads these fields of a mailbox: the same rules as for fetching.
    return tls_context(SimpleNamespace(verify_tls=account.verify_tls, ca_file=account.ca_file, host=account.host))


def _token_login(client: smtplib.SMTP, account: SmtpAccount):
    """AUTH XOAUTH2 / OAUTHBEARER with the initial response; a refusal comes as a 334
    challenge (the error, in JSON) that is answered empty before the final 535."""

    def login(user: str, access_token: str) -> None:
        offered = {m.upper() for m in (client.esmtp_features.get("auth") or "").split()}
        mechanism = preferred_mechanism(offered)
        response = initial_response(mechanism, user, access_token, account.host, account.port).decode()
        answered = []

        def authobject(challenge=None):
            if not answered:
                answered.append(True)
                return response
            return ""  # the refusal's explanation: acknowledged, and the server ends with 535

        client.auth(mechanism, authobject, initial_response_ok=True)

    return login


__all__ = ["DEFAULT_PORTS", "SmtpAccount", "SmtpConfigError", "SourceError", "account_for", "connect"]
