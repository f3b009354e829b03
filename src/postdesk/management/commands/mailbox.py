"""postdesk mailbox add|list|show|edit|remove|test|connect."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from django.core.management.base import CommandError

from postdesk import mailboxes
from postdesk.mailboxes import as_dict, describe, warnings
from postdesk.management.base import USAGE, PostdeskCommand, read_password
from postdesk.models import DEFAULT_SIZE_LIMIT, Intake, Mailbox

# Options that name a setting of the same name (postdesk.mailboxes.apply).
SETTING_OPTIONS = ("address", "host", "port", "security", "username", "ca_file", "folder", "path", "poll_interval",
                   "pass_deadline",
                   "size_limit", "after", "assign", "smtp_host", "smtp_port", "smtp_security", "smtp_username",
                   "smtp_ca_file", "smtp_same_as_fetch", "from_address", "from_name", "sent_folder", "ack_subject",
                   "ack_body", "ack_backlog", "ack_daily_limit")
# Settings whose option is not --<setting> (for error messages).
OPTION_NAMES = {"ack_enabled": "--ack", "smtp_verify_tls": "--smtp-no-verify", "verify_tls": "--no-verify",
                "smtp_password": "--smtp-password-env", "enabled": "--enable"}


# (option turning it on, option turning it off, the setting)
ON_OFF_FLAGS = (("verify", "no_verify", "verify_tls"), ("enable", "disable", "enabled"),
                ("smtp_verify", "smtp_no_verify", "smtp_verify_tls"))


class Command(PostdeskCommand):
    help = "Connect and manage mailboxes (add, list, show, edit, remove, test)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="connect a mailbox")
        add.add_argument("name")
        add.add_argument("--protocol", required=True, choices=["imap", "pop3", "maildir"])
        self._settings_arguments(add)
        edit = sub.add_parser("edit", help="change a mailbox's settings")
        edit.add_argument("name")
        edit.add_argument("--protocol", choices=["imap", "pop3", "maildir"])
        edit.add_argument("--rename", metavar="NEW_NAME")
        edit.add_argument("--verify", action="store_true", help="turn certificate verification back on")
        edit.add_argument("--enable", action="store_true")
        edit.add_argument("--disable", action="store_true")
        edit.add_argument("--unassign", action="store_true", help="route to the general queue")
        edit.add_argument("--smtp-verify", action="store_true", help="turn certificate verification for sending back on")
        self._settings_arguments(edit)
        lst = sub.add_parser("list", help="list mailboxes and their health")
        lst.add_argument("--json", action="store_true")
        show = sub.add_parser("show", help="show one mailbox")
        show.add_argument("name")
        show.add_argument("--json", action="store_true")
        remove = sub.add_parser("remove", help="disconnect a mailbox (its requests stay)")
        remove.add_argument("name")
        remove.add_argument("--json", action="store_true")
        test = sub.add_parser("test", help="connect, log in, open the folder, count the messages")
        test.add_argument("name")
        test.add_argument("--json", action="store_true")
        connect = sub.add_parser("connect", help="sign an OAuth2 mailbox in (device code, or a browser on this machine)")
        connect.add_argument("name")
        connect.add_argument("--no-device", action="store_true",
                             help="use the browser redirect to 127.0.0.1 even where the provider offers a device code")
        connect.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                             help="how long to wait for the browser's redirect (default 600)")

    @staticmethod
    def _settings_arguments(p):
        p.add_argument("--address", help="the address customers write to")
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--security", choices=["tls", "starttls", "none"])
        p.add_argument("--username")
        p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        p.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
        p.add_argument("--ca-file", help="trust this CA (PEM) for the server's certificate")
        p.add_argument("--no-verify", action="store_true", help="do not verify the certificate (shown as a warning)")
        p.add_argument("--folder", help="IMAP folder or Maildir++ subfolder to read (default INBOX)")
        p.add_argument("--after", help="after import: keep | seen | move:FOLDER | delete (default move:Imported; POP3 keep)")
        p.add_argument("--assign", metavar="USERNAME", help="assign its new requests to this staff member")
        p.add_argument("--path", help="Maildir directory")
        p.add_argument("--poll-interval", type=int, metavar="SECONDS")
        p.add_argument("--pass-deadline", type=int, metavar="SECONDS",
                       help="a whole fetch pass ends by then, however slow the server (default 600)")
        p.add_argument("--size-limit", type=float, metavar="MB", help=f"default {DEFAULT_SIZE_LIMIT // 1048576}")
        sending = p.add_argument_group("sending (acknowledgements and replies)")
        sending.add_argument("--smtp-same-as-fetch", action=argparse.BooleanOptionalAction, default=None,
                             help="send through the fetching server with its login (STARTTLS, or TLS when fetching uses TLS)")
        sending.add_argument("--smtp-host", metavar="HOST")
        sending.add_argument("--smtp-port", type=int, metavar="PORT", help="default: 465 with tls, 587 with starttls, 25 with none")
        sending.add_argument("--smtp-security", choices=["tls", "starttls", "none"], help="default starttls")
        sending.add_argument("--smtp-username", metavar="USER")
        sending.add_argument("--smtp-password-stdin", action="store_true",
                             help="read the SMTP password from standard input (the second line with --password-stdin)")
        sending.add_argument("--smtp-password-env", metavar="VAR", help="read the SMTP password from this environment variable")
        sending.add_argument("--smtp-ca-file", metavar="PEM", help="trust this CA (PEM) for the SMTP server's certificate")
        sending.add_argument("--smtp-no-verify", action="store_true",
                             help="do not verify the SMTP server's certificate (shown as a warning)")
        sending.add_argument("--from-address", metavar="ADDRESS", help="From of the mail we send (default: --address)")
        sending.add_argument("--from-name", metavar="NAME", help="display name in From, e.g. 'Example Support'")
        sending.add_argument("--sent-folder", metavar="FOLDER", help="IMAP only: keep a copy of what we send in this folder")
        ack = p.add_argument_group("acknowledgements (new requests from people only)")
        ack.add_argument("--ack", dest="ack_enabled", action=argparse.BooleanOptionalAction, default=None,
                         help="acknowledge new requests (--no-ack: stop)")
        ack.add_argument("--ack-subject", metavar="TEMPLATE",
                         help="Django template; {{ number }} {{ tag }} {{ subject }} {{ customer_name }} "
                              "{{ customer_address }} {{ mailbox_name }}; '' for the default")
        ack.add_argument("--ack-body", metavar="TEMPLATE", help="the same for the body; '' for the default")
        ack.add_argument("--ack-body-file", metavar="PATH", help="read the body template from this file (UTF-8)")
        ack.add_argument("--ack-backlog", action=argparse.BooleanOptionalAction, default=None,
                         help="also acknowledge mail that was in the mailbox when it was connected")
        ack.add_argument("--ack-daily-limit", type=int, metavar="N", help="acknowledgements per sender per day (default 5)")
        p.add_argument("--json", action="store_true", help="print the mailbox as JSON")

    def handle(self, *args, **options):
        return getattr(self, "_" + options["action"])(options)

    # --- actions -------------------------------------------------------------

    def _add(self, options):
        changes = {"name": options["name"], "protocol": options["protocol"], **self._changes(options)}
        try:
            mailbox = mailboxes.add(changes)
        except mailboxes.InvalidSettings as exc:
            raise self.fail(one_line(exc), USAGE) from None
        self._done(mailbox, f"added mailbox {mailbox.name} ({describe(mailbox)})", options)

    def _edit(self, options):
        mailbox = self._get(options["name"])
        changes = self._changes(options)
        if options.get("protocol"):
            changes["protocol"] = options["protocol"]
        if options["rename"]:
            changes["name"] = options["rename"]
        try:
            mailboxes.edit(mailbox, changes)
        except mailboxes.InvalidSettings as exc:
            raise self.fail(one_line(exc), USAGE) from None
        self._done(mailbox, f"changed mailbox {mailbox.name} ({describe(mailbox)})", options)

    def _list(self, options):
        rows = [as_dict(m) for m in Mailbox.objects.select_related("assign_to")]
        if options["json"]:
            return self.emit_json(rows)
        if not rows:
            self.stdout.write("no mailboxes; add one with `postdesk mailbox add`")
        for m in Mailbox.objects.select_related("assign_to"):
            self.stdout.write(f"{m.name:<16} {describe(m):<50} {health_line(m)}")

    def _show(self, options):
        mailbox = self._get(options["name"])
        data = as_dict(mailbox)
        if options["json"]:
            return self.emit_json(data)
        for key, value in data.items():
            text = str(value if value is not None else "").rstrip("\n").replace("\n", "\n" + " " * 23)
            self.stdout.write(f"{key + ':':<22} {text}")
        self._warn(mailbox)

    def _remove(self, options):
        mailbox = self._get(options["name"])
        if Intake.objects.filter(mailbox=mailbox).exists():
            # Its intake history is what makes re-adding it safe: keep the row, disable it.
            mailbox.enabled = False
            mailbox.save(update_fields=["enabled"])
            if options["json"]:
                return self.emit_json({"name": mailbox.name, "removed": False, "disabled": True})
            self.stdout.write(f"disabled mailbox {mailbox.name} (kept: it has imported mail; its requests stay)")
            return
        mailbox.delete()
        if options["json"]:
            return self.emit_json({"name": mailbox.name, "removed": True, "disabled": False})
        self.stdout.write(f"removed mailbox {mailbox.name}")

    def _test(self, options):
        mailbox = self._get(options["name"])
        self._warn(mailbox)
        result = mailboxes.test_connection(mailbox)
        if options["json"]:
            self.emit_json(result.as_dict())
        if not options["json"] and result.sending is not None:
            self.stdout.write(f"{mailbox.name}: {result.sending_summary}")
        if not result.ok:
            raise self.fail(f"{mailbox.name}: {result.summary}")
        if not options["json"]:
            self.stdout.write(f"{mailbox.name}: {result.summary}")
        if not result.all_ok:
            raise self.fail(f"{mailbox.name}: {result.sending_summary}")

    def _connect(self, options):
        from postdesk.oauth import OAuthError, connect_cli

        mailbox = self._get(options["name"])
        if mailbox.auth != "oauth" and mailbox.smtp_auth != "oauth":
            raise self.fail(f"mailbox {mailbox.name} signs in with a password, not OAuth2", USAGE)
        try:
            done = connect_cli.connect(mailbox, self._say, no_device=options["no_device"], timeout=options["timeout"])
        except OAuthError as exc:
            raise self.fail(f"{mailbox.name}: {exc.message}") from None
        self._say(f"{mailbox.name}: {done.summary}")

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()  # a person (or a test) reads the code while we wait

    # --- helpers -------------------------------------------------------------

    def _get(self, name: str) -> Mailbox:
        try:
            return Mailbox.objects.select_related("assign_to").get(name=name)
        except Mailbox.DoesNotExist:
            raise self.fail(f"no mailbox named {name!r} (see `postdesk mailbox list`)", USAGE) from None

    @staticmethod
    def _changes(options) -> dict:
        """The settings these options change (postdesk.mailboxes.apply): only those given."""
        changes = {key: options[key] for key in SETTING_OPTIONS if options.get(key) is not None}
        # The "off" flag beats the "on" one: --no-verify beats --verify, --disable beats --enable.
        for on, off, setting in ON_OFF_FLAGS:
            if options.get(on):
                changes[setting] = True
            if options.get(off):
                changes[setting] = False
        if options.get("unassign"):
            changes["unassign"] = True
        if options.get("ack_enabled") is not None:
            changes["ack_enabled"] = options["ack_enabled"]
        if options.get("ack_body_file"):
            if options.get("ack_body") is not None:
                raise CommandError("give --ack-body or --ack-body-file, not both", returncode=USAGE)
            try:
                changes["ack_body"] = Path(options["ack_body_file"]).read_text(encoding="utf-8")
            except (OSError, UnicodeError) as exc:
                raise CommandError(f"cannot read --ack-body-file: {exc}", returncode=USAGE) from None
        password = read_password(options)
        if password is not None:
            changes["password"] = password
        smtp_password = read_smtp_password(options)
        if smtp_password is not None:
            changes["smtp_password"] = smtp_password
        return changes

    def _done(self, mailbox: Mailbox, message: str, options) -> None:
        if options.get("json"):
            self.emit_json(as_dict(Mailbox.objects.select_related("assign_to").get(pk=mailbox.pk)))
        else:
            self.stdout.write(message)
        self._warn(mailbox)

    def _warn(self, mailbox: Mailbox) -> None:
        for warning in warnings(mailbox):
            self.stderr.write(f"warning: {warning}")


def health_line(m: Mailbox) -> str:
    """What `mailbox list` says about a mailbox's health, flags after it."""
    health = "ok" if not m.last_error else f"FAILING x{m.consecutive_failures}: {m.last_error}"
    if m.last_attempt_at is None:
        health = "never fetched"
    flags = [] if m.enabled else ["(disabled)"]
    if m.identity_unstable_at is not None:
        flags.append("UNSTABLE IDENTITY (UIDVALIDITY keeps changing: use after-import move or delete)")
    busy = mailboxes.fetching(m)
    if busy:
        flags.append(f"(being fetched by {busy})")
    return " ".join([health, *flags])


def read_smtp_password(options) -> str | None:
    """Like the fetching password: never from the command line.  With --password-stdin
    as well, standard input holds the fetching password first, the SMTP password second."""
    if options.get("smtp_password_stdin") and options.get("smtp_password_env"):
        raise CommandError("give --smtp-password-stdin or --smtp-password-env, not both", returncode=USAGE)
    if options.get("smtp_password_stdin"):
        line = sys.stdin.readline()
        if not line:
            second = " (the second line, after the fetching password)" if options.get("password_stdin") else ""
            raise CommandError(f"no SMTP password on standard input{second}", returncode=USAGE)
        return line.rstrip("\r\n")
    var = options.get("smtp_password_env")
    if var:
        if var not in os.environ:
            raise CommandError(f"environment variable {var} is not set", returncode=USAGE)
        return os.environ[var]
    return None


def one_line(exc: mailboxes.InvalidSettings) -> str:
    """Every problem, each with the option that sets it."""
    return "; ".join(message if setting in ("name", "protocol")
                     else f"{message} ({OPTION_NAMES.get(setting, '--' + setting.replace('_', '-'))})"
                     for setting, message in exc.errors.items())
