"""Mailbox settings and the connection test: what `postdesk mailbox` and the admin pages share.

Plain functions on the model.  `add()` and `edit()` apply a dict of changes
(only the keys present change anything), validate the result, save it and
write an audit row; a mistake raises InvalidSettings with one message per
setting, so the CLI can print a line and the web form can mark its fields.
The passwords (fetching and SMTP) are encrypted here (postdesk.secrets) and
never come back out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.db import transaction

from postdesk import secrets
from postdesk.models import AuditEvent, Mailbox
from postdesk.sources import SourceError, classify_error, open_source

DEFAULT_PORTS = {("imap", "tls"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
                 ("pop3", "tls"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110}
AFTER_POLICIES = ("keep", "seen", "move", "delete")
# POP3 can neither mark a message nor move it.
POLICIES = {"imap": set(AFTER_POLICIES), "pop3": {"keep", "delete"}, "maildir": set(AFTER_POLICIES)}
MB = 1048576
MIN_PASS_DEADLINE = 10  # seconds: less would not leave time to log in and list

# The settings a change may name, as `postdesk mailbox add/edit` calls them:
#   plain fields    set as given (a port of None: the protocol's default)
#   after           "keep" | "seen" | "move:FOLDER" | "move" | "delete"
#   assign          a username; unassign=True routes to the general queue
#   size_limit      megabytes (float)
#   password        the plain password, encrypted here; absent: keep the current one
#   smtp_password   the same for the SMTP account
# Sending: smtp_* (an SMTP port of None: the security's usual port), or smtp_same_as_fetch;
# from_address/from_name; sent_folder (IMAP only).  Acknowledgements: ack_*; a blank
# template means the default one (outbound/acknowledge.py).
PLAIN_FIELDS = ("name", "protocol", "address", "host", "port", "security", "verify_tls", "ca_file", "username",
                "folder", "path", "enabled", "poll_interval", "pass_deadline",
                "smtp_same_as_fetch", "smtp_host", "smtp_port", "smtp_security", "smtp_verify_tls", "smtp_ca_file",
                "smtp_username", "from_address", "from_name", "sent_folder",
                "ack_enabled", "ack_subject", "ack_body", "ack_backlog", "ack_daily_limit")
SECRET_SETTINGS = ("password", "smtp_password")
SETTINGS = frozenset(PLAIN_FIELDS + ("after", "assign", "unassign", "size_limit") + SECRET_SETTINGS)
# Stripped of surrounding blanks as they are set (templates keep theirs).
_STRIPPED = {"name", "smtp_host", "smtp_username", "from_address", "from_name", "sent_folder"}


class InvalidSettings(ValueError):
    """What is wrong with a mailbox's settings: {setting: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# --- add and edit ---------------------------------------------------------------


def add(changes: Mapping[str, object], actor=None) -> Mailbox:
    mailbox = Mailbox(protocol=changes.get("protocol") or "")
    if mailbox.protocol == Mailbox.Protocol.POP3:
        mailbox.after_import = Mailbox.After.KEEP  # the model's default (move) is not possible with POP3
    _save(mailbox, changes, actor, "mailbox.added")
    return mailbox


def edit(mailbox: Mailbox, changes: Mapping[str, object], actor=None) -> Mailbox:
    _save(mailbox, changes, actor, "mailbox.edited")
    return mailbox


def _save(mailbox: Mailbox, changes: Mapping[str, object], actor, kind: str) -> None:
    unknown = set(changes) - SETTINGS
    if unknown:
        raise TypeError(f"not a mailbox setting: {', '.join(sorted(unknown))}")
    errors = apply(mailbox, changes)
    errors.update({k: v for k, v in problems(mailbox).items() if k not in errors})
    if errors:
        raise InvalidSettings(errors)
    with transaction.atomic():
        mailbox.save()
        # A password is never part of the record: only that it changed.
        changed = sorted(k for k in changes if k not in (*SECRET_SETTINGS, "unassign"))
        changed += [f"{k} (changed)" for k in SECRET_SETTINGS if k in changes]
        AuditEvent.record(actor, kind, target(mailbox), f"{mailbox.name}: {describe(mailbox)}; set {', '.join(changed)}")


def target(mailbox: Mailbox) -> str:
    """How audit rows name a mailbox: by id, which survives a rename."""
    return f"mailbox {mailbox.pk}"


def apply(mailbox: Mailbox, changes: Mapping[str, object]) -> dict[str, str]:
    """Set what `changes` names on the (unsaved) mailbox; returns the settings that could not be read."""
    errors: dict[str, str] = {}
    for field in PLAIN_FIELDS:
        if field in changes:
            value = changes[field]
            setattr(mailbox, field, value.strip() if isinstance(value, str) and field in _STRIPPED else value)
    if "size_limit" in changes:
        mailbox.size_limit = int(float(changes["size_limit"]) * MB)
    if changes.get("after"):
        policy, _, folder = str(changes["after"]).partition(":")
        if policy not in AFTER_POLICIES:
            errors["after"] = f"after import must be keep, seen, move:FOLDER or delete, not {changes['after']!r}"
        else:
            mailbox.after_import = policy
            if policy == "move":
                mailbox.move_folder = folder or mailbox.move_folder or "Imported"
    if changes.get("unassign"):
        mailbox.assign_to = None
    if changes.get("assign"):
        User = get_user_model()
        try:
            mailbox.assign_to = User.objects.get(**{User.USERNAME_FIELD: changes["assign"], "is_active": True})
        except User.DoesNotExist:
            errors["assign"] = f"no staff member {changes['assign']!r}"
    if changes.get("password") is not None:
        mailbox.secret = secrets.encrypt(str(changes["password"]))
    if changes.get("smtp_password") is not None:
        mailbox.smtp_secret = secrets.encrypt(str(changes["smtp_password"]))
    if mailbox.port is None and mailbox.protocol in ("imap", "pop3") and mailbox.security in Mailbox.Security.values:
        mailbox.port = DEFAULT_PORTS[(mailbox.protocol, mailbox.security)]
    return errors


def problems(mailbox: Mailbox) -> dict[str, str]:
    """What keeps these settings from working: {setting: message}, empty when they are fine."""
    found: dict[str, str] = {}
    name = mailbox.name or ""
    if not name:
        found["name"] = "a mailbox needs a name"
    elif "/" in name or len(name) > 100:
        # The name is part of the queue's address (/queue/mailbox/NAME/).
        found["name"] = "a mailbox name has at most 100 characters and no '/'"
    elif Mailbox.objects.filter(name=name).exclude(pk=mailbox.pk).exists():
        found["name"] = f"mailbox {name!r} exists already"
    if mailbox.protocol not in Mailbox.Protocol.values:
        found["protocol"] = f"the protocol must be imap, pop3 or maildir, not {mailbox.protocol!r}"
        return found
    if mailbox.security not in Mailbox.Security.values:
        found["security"] = f"security must be tls, starttls or none, not {mailbox.security!r}"
    if mailbox.protocol == "maildir":
        if not mailbox.path:
            found["path"] = "a maildir mailbox needs a path (the Maildir directory)"
    else:
        if not mailbox.host:
            found["host"] = f"an {mailbox.protocol} mailbox needs a host"
        if not mailbox.username:
            found["username"] = f"an {mailbox.protocol} mailbox needs a username"
    if mailbox.port is not None and not 1 <= mailbox.port <= 65535:
        found["port"] = f"the port must be between 1 and 65535, not {mailbox.port}"
    if mailbox.after_import not in POLICIES[mailbox.protocol]:
        allowed = ", ".join(sorted(POLICIES[mailbox.protocol]))
        found["after"] = f"after import {mailbox.after_import} is not possible with {mailbox.protocol} (use {allowed})"
    if mailbox.poll_interval is not None and mailbox.poll_interval < 1:
        found["poll_interval"] = "the poll interval is at least 1 second"
    if mailbox.size_limit < 1:
        found["size_limit"] = "the size limit must be more than 0 MB"
    if mailbox.pass_deadline is None or mailbox.pass_deadline < MIN_PASS_DEADLINE:
        found["pass_deadline"] = f"the pass deadline is at least {MIN_PASS_DEADLINE} seconds"
    found.update({k: v for k, v in sending_problems(mailbox).items() if k not in found})
    return found


def sending_problems(mailbox: Mailbox) -> dict[str, str]:
    """The SMTP account, the From and the acknowledgement templates.  Checked when
    they are set, not when mail is sent: an acknowledgement that could not be made
    would only be noticed by the customer who never got it."""
    from postdesk.outbound import acknowledge

    found: dict[str, str] = {}
    own_account = not mailbox.smtp_same_as_fetch
    if mailbox.smtp_same_as_fetch and mailbox.protocol == "maildir":
        found["smtp_same_as_fetch"] = "a maildir mailbox has no server to send through: set an SMTP server instead"
    if mailbox.smtp_security not in Mailbox.Security.values:
        found["smtp_security"] = f"SMTP security must be tls, starttls or none, not {mailbox.smtp_security!r}"
    if mailbox.smtp_port is not None and not 1 <= mailbox.smtp_port <= 65535:
        found["smtp_port"] = f"the SMTP port must be between 1 and 65535, not {mailbox.smtp_port}"
    if own_account and mailbox.smtp_username and not mailbox.smtp_secret:
        found["smtp_password"] = "an SMTP username needs the SMTP password"
    if mailbox.from_address and not _one_address(mailbox.from_address):
        found["from_address"] = f"the From address must be one address like support@example.com, not {mailbox.from_address!r}"
    if _has_line_break(mailbox.from_name):
        found["from_name"] = "the From name must be one line"
    if mailbox.sent_folder and mailbox.protocol != "imap":
        found["sent_folder"] = "a copy in a Sent folder needs an IMAP mailbox"
    if mailbox.ack_daily_limit is None or mailbox.ack_daily_limit < 1:
        found["ack_daily_limit"] = "the daily limit of acknowledgements per sender is at least 1"
    for setting, label in (("ack_subject", "subject"), ("ack_body", "body")):
        template = getattr(mailbox, setting)
        if template:
            try:
                acknowledge.render(template, acknowledge.sample_context(mailbox))
            except Exception as exc:  # TemplateSyntaxError mostly; a filter may fail as it renders
                found[setting] = f"the acknowledgement {label} template does not work: {exc}"
    if mailbox.ack_enabled:
        if own_account and not mailbox.smtp_host and "smtp_same_as_fetch" not in found:
            found["smtp_host"] = "acknowledgements need an SMTP server to send through (or 'same as fetching')"
        if not _one_address(mailbox.from_address or mailbox.address):
            found.setdefault("from_address", "acknowledgements need a From address: set the mailbox's address or a From address")
    return found


def sends(mailbox: Mailbox) -> bool:
    """Whether the mailbox has an account to send through."""
    return bool(mailbox.smtp_host) if not mailbox.smtp_same_as_fetch else mailbox.protocol != "maildir"


def smtp_port(mailbox: Mailbox) -> int | None:
    """The SMTP port mail is sent to (the security's usual one when none is set)."""
    from postdesk.sources.smtp import DEFAULT_PORTS as SMTP_PORTS

    if mailbox.smtp_port:
        return mailbox.smtp_port
    security = mailbox.smtp_security
    if mailbox.smtp_same_as_fetch:
        security = "tls" if mailbox.security == "tls" else "starttls"
    return SMTP_PORTS.get(security)


def _one_address(value: str) -> bool:
    from email.headerregistry import Address

    local, at, domain = (value or "").partition("@")
    if not (at and local and domain) or any(c.isspace() or c in "<>,;\"()@" for c in local + domain):
        return False
    try:
        Address(addr_spec=value)  # what compose.py will make of it
    except (ValueError, IndexError):
        return False
    return True


def _has_line_break(value: str) -> bool:
    return any(c in (value or "") for c in "\r\n\x00")


# --- how a mailbox reads ----------------------------------------------------------


def warnings(mailbox: Mailbox) -> list[str]:
    found = []
    if mailbox.protocol != "maildir" and not mailbox.verify_tls:
        found.append(f"{mailbox.name}: certificate verification is OFF; anyone on the path can read this mailbox's password")
    if mailbox.protocol != "maildir" and mailbox.security == "none":
        found.append(f"{mailbox.name}: no TLS; the password and mail cross the network in plain text")
    if mailbox.smtp_host and not mailbox.smtp_same_as_fetch:  # "same as fetching" is warned about above
        if not mailbox.smtp_verify_tls:
            found.append(f"{mailbox.name}: certificate verification for sending is OFF; anyone on the path can read "
                         "the SMTP password")
        if mailbox.smtp_security == "none":
            found.append(f"{mailbox.name}: sending without TLS; the SMTP password and mail cross the network in plain text")
    if mailbox.ack_enabled and not sends(mailbox):
        found.append(f"{mailbox.name}: acknowledgements are on but there is no SMTP server to send them")
    if mailbox.identity_unstable_at is not None:
        from postdesk.identity import UNSTABLE_ADVICE

        found.append(f"{mailbox.name}: {UNSTABLE_ADVICE}")
    from postdesk.oauth import tokens  # OAuth's one home says what is wrong with a grant

    found += [f"{mailbox.name}: {warning}" for warning in tokens.warnings(mailbox)]
    return found


def fetching(m: Mailbox) -> str | None:
    """Who holds the mailbox's fetch lease now ("pid N on host H"), if anyone."""
    from django.utils import timezone

    if not m.fetch_lease_owner or m.fetch_lease_until is None or m.fetch_lease_until < timezone.now():
        return None
    host, _, pid = m.fetch_lease_owner.rpartition(":")
    return f"pid {pid} on host {host}"


def describe(m: Mailbox) -> str:
    if m.protocol == "maildir":
        where = m.path
    else:
        where = f"{m.protocol}://{m.username}@{m.host}:{m.port} {m.security}"
    route = f"-> {m.assign_to.get_username()}" if m.assign_to_id else "-> general queue"
    described = f"{where}, after: {m.after_label} {route}"
    if m.smtp_same_as_fetch and m.protocol != "maildir":
        described += f", sends via {m.host}:{smtp_port(m)} (as fetching)"
    elif m.smtp_host:
        described += f", sends via {m.smtp_host}:{smtp_port(m)} {m.smtp_security}"
    if m.ack_enabled:
        described += ", acknowledges new requests"
    return described


def as_dict(m: Mailbox) -> dict:
    return {
        "name": m.name,
        "address": m.address,
        "protocol": m.protocol,
        "host": m.host,
        "port": m.port,
        "security": m.security,
        "verify_tls": m.verify_tls,
        "ca_file": m.ca_file,
        "username": m.username,
        "password": "(set)" if m.secret else "(not set)",
        "folder": m.folder,
        "path": m.path,
        "after": m.after_label,
        "assign": m.assign_to.get_username() if m.assign_to_id else None,
        "enabled": m.enabled,
        "poll_interval": m.poll_interval,
        "pass_deadline": m.pass_deadline,
        "size_limit_mb": round(m.size_limit / MB, 1),
        "smtp_same_as_fetch": m.smtp_same_as_fetch,
        "smtp_host": (m.host if m.smtp_same_as_fetch else m.smtp_host) or None,
        "smtp_port": smtp_port(m) if sends(m) else m.smtp_port,
        "smtp_security": ("tls" if m.security == "tls" else "starttls") if m.smtp_same_as_fetch else m.smtp_security,
        "smtp_verify_tls": m.verify_tls if m.smtp_same_as_fetch else m.smtp_verify_tls,
        "smtp_ca_file": m.ca_file if m.smtp_same_as_fetch else m.smtp_ca_file,
        "smtp_username": m.username if m.smtp_same_as_fetch else m.smtp_username,
        "smtp_password": "(set)" if (m.secret if m.smtp_same_as_fetch else m.smtp_secret) else "(not set)",
        "from_address": m.from_address or m.address or None,
        "from_name": m.from_name,
        "sent_folder": m.sent_folder or None,
        "ack": m.ack_enabled,
        "ack_subject": m.ack_subject,  # "": the default template
        "ack_body": m.ack_body,
        "ack_backlog": m.ack_backlog,
        "ack_daily_limit": m.ack_daily_limit,
        "last_attempt": m.last_attempt_at,
        "last_success": m.last_success_at,
        "last_error": m.last_error or None,
        "last_error_kind": m.last_error_kind or None,
        "consecutive_failures": m.consecutive_failures,
        "fetching": fetching(m),
        "uidvalidity_changes_24h": len(m.uidvalidity_changes or []),
        "identity_unstable": m.identity_unstable_at is not None,
        "warnings": warnings(m),
        **_oauth_dict(m),
    }


def _oauth_dict(m: Mailbox) -> dict:
    """The sign-in, and for OAuth the grant as postdesk.oauth describes it (never a token)."""
    if m.auth != "oauth" and m.smtp_auth != "oauth":
        return {"auth": m.auth}
    from postdesk.oauth import tokens

    return {"auth": m.auth, "smtp_auth": m.smtp_auth, "oauth": tokens.describe(m)}


# --- the connection test -----------------------------------------------------------


@dataclass(frozen=True)
class ConnectionResult:
    """What `mailbox test` found: ok with a count, or the failure's kind and exact message.

    kind is a SourceError kind (dns, refused, timeout, network, tls, certificate,
    login, folder, config) or "secret" when the stored password cannot be decrypted."""

    mailbox: str
    folder: str
    ok: bool
    messages: int | None = None
    kind: str = ""
    message: str = ""
    permanent: bool = False
    # The SMTP account, when the mailbox sends: None (it does not), or (ok, what was found).
    sending: tuple[bool, str] | None = None

    @property
    def summary(self) -> str:
        if self.ok:
            return f"ok, {self.messages} message{'s' if self.messages != 1 else ''} in {self.folder}"
        return f"{self.kind}: {self.message}"

    @property
    def sending_summary(self) -> str:
        if self.sending is None:
            return ""
        ok, what = self.sending
        return f"sending: {'ok' if ok else 'failed'}, {what}"

    @property
    def all_ok(self) -> bool:
        return self.ok and (self.sending is None or self.sending[0])

    def as_dict(self) -> dict:
        data = {"ok": True, "messages": self.messages} if self.ok else {
            "ok": False, "kind": self.kind, "error": self.message, "permanent": self.permanent}
        if self.sending is not None:
            data["sending"] = {"ok": self.sending[0], "detail": self.sending[1]}
        return data


def test_connection(mailbox: Mailbox, actor=None) -> ConnectionResult:
    """Connect, log in, open the folder and count, changing nothing there nor in the mailbox's
    health (a test is not a fetch).  The sources' network timeouts apply."""
    try:
        source = open_source(mailbox)
        try:
            count = source.count()
        except Exception as exc:  # a connection that dies while counting is still a connection failure
            raise classify_error(exc, mailbox) from exc
        finally:
            source.close()
    except SourceError as exc:
        result = ConnectionResult(mailbox.name, mailbox.folder, False, kind=exc.kind, message=exc.message, permanent=exc.permanent)
    except secrets.SecretError as exc:
        result = ConnectionResult(mailbox.name, mailbox.folder, False, kind="secret", message=str(exc), permanent=True)
    else:
        result = ConnectionResult(mailbox.name, mailbox.folder, True, messages=count)
    result = replace(result, sending=test_sending(mailbox))
    detail = f"{mailbox.name}: {result.summary}" + (f"; {result.sending_summary}" if result.sending else "")
    AuditEvent.record(actor, "mailbox.tested", target(mailbox), detail[:1000])
    return result


def test_sending(mailbox: Mailbox) -> tuple[bool, str] | None:
    """Connect to the SMTP account, TLS and login included, and leave (nothing is sent)."""
    import smtplib

    from postdesk.sources import smtp

    if not (mailbox.smtp_host or mailbox.smtp_same_as_fetch):
        return None
    try:
        account = smtp.account_for(mailbox)
        client = smtp.connect(account)
        client.quit()
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return False, f"{exc.smtp_code} {text}"
    except (smtp.SmtpConfigError, SourceError, smtplib.SMTPException, OSError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    login = f", logged in as {account.username}" if account.username else ""
    return True, f"{account.host}:{account.port} {account.security}{login}"


test_sending.__test__ = False


test_connection.__test__ = False  # a function named test_*, not a test (pytest collects by name)
