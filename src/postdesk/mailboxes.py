"""Mailbox settings and the connection test: what `postdesk mailbox` and the admin pages share.

Plain functions on the model.  `add()` and `edit()` apply a dict of changes
(only the keys present change anything), validate the result, save it and
write an audit row; a mistake raises InvalidSettings with one message per
setting, so the CLI can print a line and the web form can mark its fields.
What each setting is, takes and must be is declared once, in
postdesk.mailbox_settings; this module applies that table.  The secrets
(passwords, the OAuth2 client secret) are encrypted here (postdesk.secrets)
and never come back out: JSON and the audit say only "(set)" or "(changed)".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.db import transaction

from postdesk import secrets

# MIN_PASS_DEADLINE, POLICIES and sending_auth are re-exported: callers have used them from here.
from postdesk.mailbox_settings import (  # noqa: F401
    AFTER_POLICIES,
    BY_NAME,
    MB,
    MIN_PASS_DEADLINE,
    POLICIES,
    SECRETS,
    SERVERS,
    Setting,
    one_address,
    sending_auth,
    sends,
    smtp_port,
)
from postdesk.mailbox_settings import SETTINGS as TABLE
from postdesk.mailbox_settings import problems as check_settings
from postdesk.models import AuditEvent, Mailbox
from postdesk.sources import SourceError, classify_error, open_source

DEFAULT_PORTS = {("imap", "tls"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
                 ("pop3", "tls"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110}

# The keys a change may name: one per row of mailbox_settings.SETTINGS (see there for
# what each takes), plus "unassign" (True: the general queue), as older callers say it.
SETTINGS = frozenset(BY_NAME) | {"unassign"}
SECRET_SETTINGS = tuple(s.name for s in SECRETS)


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
    before = _values(mailbox)
    errors = apply(mailbox, changes)
    errors.update({k: v for k, v in problems(mailbox).items() if k not in errors})
    if errors:
        raise InvalidSettings(errors)
    changed = changed_settings(before, _values(mailbox))
    with transaction.atomic():
        mailbox.save()
        dropped = _drop_grant_if_its_settings_changed(mailbox, changed)
        detail = f"{mailbox.name}: {describe(mailbox)}; set {', '.join(changed) or 'nothing'}{dropped}"
        AuditEvent.record(actor, kind, target(mailbox), detail)


# A grant is issued to one client at one provider (and tenant): under other settings it
# cannot be refreshed, and keeping it would only fail later.  It is dropped with the
# change, in the same transaction, and the mailbox reads "not signed in" until connected.
GRANT_SETTINGS = ("auth", "oauth_provider", "oauth_tenant", "oauth_client_id")


def _drop_grant_if_its_settings_changed(mailbox: Mailbox, changed: list[str]) -> str:
    if not any(name in GRANT_SETTINGS for name in changed):
        return ""
    from postdesk.models import OAuthGrant

    deleted, _ = OAuthGrant.objects.filter(mailbox=mailbox).delete()
    return "; OAuth2 grant dropped (connect again)" if deleted else ""


def _values(mailbox: Mailbox) -> dict[str, object]:
    """Each setting's stored value (secrets encrypted: only compared, never written out)."""
    return {s.name: getattr(mailbox, s.stored_in + ("_id" if s.kind == "user" else "")) for s in TABLE}


def changed_settings(before: dict, after: dict) -> list[str]:
    """The settings whose value changed, for the audit row.  A secret is never part of
    the record: only that it changed."""
    return [f"{s.name} (changed)" if s.kind == "secret" else s.name for s in TABLE if before[s.name] != after[s.name]]


def target(mailbox: Mailbox) -> str:
    """How audit rows name a mailbox: by id, which survives a rename."""
    return f"mailbox {mailbox.pk}"


def apply(mailbox: Mailbox, changes: Mapping[str, object]) -> dict[str, str]:
    """Set what `changes` names on the (unsaved) mailbox; returns the settings that could not be read."""
    errors: dict[str, str] = {}
    if changes.get("unassign"):
        mailbox.assign_to = None
    for setting in TABLE:
        if setting.name in changes:
            problem = _set(mailbox, setting, changes[setting.name])
            if problem:
                errors[setting.name] = problem
    if mailbox.port is None and mailbox.protocol in ("imap", "pop3") and mailbox.security in Mailbox.Security.values:
        mailbox.port = DEFAULT_PORTS[(mailbox.protocol, mailbox.security)]
    return errors


def _set(mailbox: Mailbox, setting: Setting, value) -> str | None:
    """Set one setting from a change's value: None, or why the value cannot be read."""
    setter = _SETTERS.get(setting.name) or _SETTERS.get(setting.kind, _set_plain)
    return setter(mailbox, setting, value)


def _set_plain(mailbox, setting, value):
    if isinstance(value, str) and setting.strip:
        value = value.strip()
    setattr(mailbox, setting.stored_in, value)


def _set_secret(mailbox, setting, value):
    if value is not None:  # None: keep the current one
        setattr(mailbox, setting.stored_in, secrets.encrypt(str(value)))


def _set_float(mailbox, setting, value):
    if setting.name == "size_limit":
        mailbox.size_limit = int(float(value) * MB)
    else:
        setattr(mailbox, setting.stored_in, float(value))


def _set_after(mailbox, setting, value):
    if not value:
        return None
    policy, _, folder = str(value).partition(":")
    if policy not in AFTER_POLICIES:
        return f"after import must be keep, seen, move:FOLDER or delete, not {value!r}"
    mailbox.after_import = policy
    if policy == "move":
        mailbox.move_folder = folder or mailbox.move_folder or "Imported"
    return None


def _set_move_folder(mailbox, setting, value):
    if value and str(value).strip():  # blank: the current folder (or "Imported")
        mailbox.move_folder = str(value).strip()


def _set_user(mailbox, setting, value):
    if not value:
        mailbox.assign_to = None
        return None
    User = get_user_model()
    try:
        mailbox.assign_to = User.objects.get(**{User.USERNAME_FIELD: value, "is_active": True})
    except User.DoesNotExist:
        return f"no staff member {value!r}"
    return None


# By the setting's name first, then by its kind; the rest is set as given.
_SETTERS = {"move_folder": _set_move_folder, "secret": _set_secret, "float": _set_float, "after": _set_after,
            "user": _set_user}


def problems(mailbox: Mailbox) -> dict[str, str]:
    """What keeps these settings from working: {setting: message} (mailbox_settings, the one place)."""
    return check_settings(mailbox)




# --- how a mailbox reads ----------------------------------------------------------


def warnings(mailbox: Mailbox) -> list[str]:
    found = []
    secret = "access token" if mailbox.auth == "oauth" else "password"  # what an OAuth2 mailbox sends instead
    if mailbox.protocol != "maildir" and not mailbox.verify_tls:
        found.append(f"{mailbox.name}: certificate verification is OFF; anyone on the path can read this mailbox's {secret}")
    if mailbox.protocol != "maildir" and mailbox.security == "none":
        found.append(f"{mailbox.name}: no TLS; the {secret} and mail cross the network in plain text")
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


def failing_after() -> int:
    """POSTDESK_FAILING_AFTER: failures in a row before a mailbox shows as failing (one refused
    connection is a blip the worker retries; the worker's log line, the banner, the list and
    `mailbox list` all use this one threshold)."""
    from postdesk.worker.config import WorkerConfig  # the worker's knobs; imported late (worker imports us)

    return WorkerConfig.from_env().failing_after


def is_failing(m: Mailbox, threshold: int | None = None) -> bool:
    return m.consecutive_failures >= (threshold if threshold is not None else failing_after())


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
        if m.auth == "oauth":
            where += f" (OAuth2 {m.oauth_provider})"
    route = f"-> {m.assign_to.get_username()}" if m.assign_to_id else "-> general queue"
    described = f"{where}, after: {m.after_label} {route}"
    if m.smtp_same_as_fetch and m.protocol != "maildir":
        described += f", sends via {m.host}:{smtp_port(m)} (as fetching)"
    elif m.smtp_host:
        described += f", sends via {m.smtp_host}:{smtp_port(m)} {m.smtp_security}"
    if m.ack_enabled:
        described += ", acknowledges new requests"
    return described


def settings_dict(m: Mailbox) -> dict:
    """Every setting as JSON shows it, keyed as the table says ("oauth.provider" nests)."""
    data: dict = {}
    for setting in TABLE:
        if not setting.in_json:
            continue
        head, dot, tail = setting.json_key.partition(".")
        if dot:
            data.setdefault(head, {})[tail] = setting.read(m)
        else:
            data[head] = setting.read(m)
    if m.auth == "oauth" and m.protocol in SERVERS:
        from postdesk.oauth import tokens

        data["oauth"].update(tokens.grant_state(m))  # the grant's health beside its settings; never a token
    else:
        data["oauth"] = None  # password sign-in: the OAuth2 settings kept (if any) are not used
    return data


def as_dict(m: Mailbox) -> dict:
    return {
        **settings_dict(m),
        "last_attempt": m.last_attempt_at,
        "last_success": m.last_success_at,
        "last_error": m.last_error or None,
        "last_error_kind": m.last_error_kind or None,
        "consecutive_failures": m.consecutive_failures,
        "fetching": fetching(m),
        "uidvalidity_changes_24h": len(m.uidvalidity_changes or []),
        "identity_unstable": m.identity_unstable_at is not None,
        "warnings": warnings(m),
    }


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
