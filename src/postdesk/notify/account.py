"""The account notifications are sent through.

In order: the system account of the environment (POSTDESK_SMTP_URL, its password
from POSTDESK_SMTP_PASSWORD or POSTDESK_SMTP_PASSWORD_FILE, POSTDESK_NOTIFY_FROM);
else the one an admin set on the "Notification account" page (NotifyAccount, the
password encrypted with postdesk.secrets); else the request's mailbox's own
sending account.  With none, nothing is planned and `status()` says why.

The SMTP session itself is sources/smtp.connect (STARTTLS never skipped, TLS
verified): this module only turns a URL into an `SmtpAccount`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings

from postdesk import secrets
from postdesk.models import Mailbox, NotifyAccount
from postdesk.outbound.compose import sender_of
from postdesk.sources.credentials import Credentials
from postdesk.sources.smtp import SmtpAccount, SmtpConfigError, account_for

SCHEMES = {"smtp": ("starttls", 587), "smtps": ("tls", 465)}


@dataclass(frozen=True)
class SystemAccount:
    source: str  # "environment" or "database"
    smtp: SmtpAccount
    from_address: str


@dataclass(frozen=True)
class Sending:
    """Who a notification is from and which account sends it: `mailbox` None is the system account."""

    from_address: str
    from_name: str
    mailbox: Mailbox | None


@dataclass(frozen=True)
class Status:
    """For the notifications page: how notifications leave, or why they do not."""

    ok: bool
    text: str


def parse_url(url: str, encrypted_password: str = "") -> SmtpAccount:
    """smtp://user@host:587 (STARTTLS) or smtps://user@host:465; ?ca_file=PATH, ?verify=off."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise SmtpConfigError(f"the notification SMTP URL must be smtp://user@host:port or smtps://...: {_safe(url)}")
    security, default_port = SCHEMES[parts.scheme]
    query = parse_qs(parts.query)
    username = unquote(parts.username or "")
    credentials = Credentials(username, "password", encrypted_password) if username else Credentials("", "none")
    return SmtpAccount(
        host=parts.hostname, port=parts.port or default_port, security=security,
        verify_tls=(query.get("verify", ["on"])[0].lower() not in ("off", "0", "no")),
        ca_file=query.get("ca_file", [""])[0], credentials=credentials,
    )


def system_account() -> SystemAccount | None:
    """The environment's account, else the admin's; None when neither is set."""
    if settings.POSTDESK_SMTP_URL:
        # Encrypted here so the password is held as every other one is, and never printed.
        smtp = parse_url(settings.POSTDESK_SMTP_URL, secrets.encrypt(settings.POSTDESK_SMTP_PASSWORD))
        return SystemAccount("environment", smtp, _from(settings.POSTDESK_NOTIFY_FROM, smtp))
    row = NotifyAccount.objects.first()
    if row is not None and row.smtp_url:
        smtp = parse_url(row.smtp_url, row.secret)
        return SystemAccount("database", smtp, _from(settings.POSTDESK_NOTIFY_FROM or row.from_address, smtp))
    return None


def sending_for(mailbox: Mailbox | None) -> Sending | None:
    """How a notification about a request of `mailbox` leaves; None: it cannot."""
    system = system_account()
    if system is not None and system.from_address:
        return Sending(system.from_address, "Postdesk", None)
    if mailbox is not None and _can_send(mailbox):
        address, name = sender_of(mailbox)
        return Sending(address, name or "Postdesk", mailbox)
    return None


def smtp_for(mailbox: Mailbox | None) -> SmtpAccount:
    """At send time: the system account for a row without a mailbox, else the mailbox's."""
    if mailbox is not None:
        return account_for(mailbox)
    system = system_account()
    if system is None:
        raise SmtpConfigError("no notification account is set (POSTDESK_SMTP_URL or the admin's page)")
    return system.smtp


def status() -> Status:
    system = system_account()
    if system is not None:
        if not system.from_address:
            return Status(False, f"The notification account ({system.source}) has no From address: set POSTDESK_NOTIFY_FROM.")
        return Status(True, f"Notifications are sent from {system.from_address} through {system.smtp.host} ({system.source}).")
    if any(_can_send(m) for m in Mailbox.objects.filter(enabled=True)):
        return Status(True, "Notifications are sent through the sending account of each request's mailbox.")
    return Status(False, "Nothing is sent: no notification account is set (POSTDESK_SMTP_URL, or an admin's "
                         "Notification account page) and no mailbox has a sending account.")


def _can_send(mailbox: Mailbox) -> bool:
    try:
        account_for(mailbox)
    except SmtpConfigError:
        return False
    return bool(sender_of(mailbox)[0])


def _from(configured: str, smtp: SmtpAccount) -> str:
    if configured:
        return configured
    return smtp.username if "@" in smtp.username else ""


def _safe(url: str) -> str:
    """The URL without a password someone put in it."""
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url
