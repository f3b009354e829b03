"""postdesk mailbox add|list|show|edit|remove|test|connect."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from django.core.management.base import CommandError

from postdesk import mailboxes
from postdesk.mailbox_settings import BY_NAME, SETTINGS, Option, Setting
from postdesk.mailboxes import as_dict, describe, warnings
from postdesk.management.base import USAGE, PostdeskCommand
from postdesk.models import Intake, Mailbox

# The CLI groups of the settings' options (mailbox_settings.GROUPS), as --help shows them.
HELP_GROUPS = {"Sending": "sending (acknowledgements and replies)",
               "Acknowledgement": "acknowledgements (new requests from people only)",
               "Sign-in": "sign-in (a password, or OAuth2 at Microsoft 365, Google or an issuer URL)"}
ORDINALS = ("first", "second", "third", "fourth")


class Command(PostdeskCommand):
    help = "Connect and manage mailboxes (add, list, show, edit, remove, test)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="connect a mailbox")
        add.add_argument("name")
        settings_arguments(add, editing=False)
        edit = sub.add_parser("edit", help="change a mailbox's settings")
        edit.add_argument("name")
        edit.add_argument("--rename", metavar="NEW_NAME")
        settings_arguments(edit, editing=True)
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
        for key, value in flat(data):
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
        return changes_from(options)

    def _done(self, mailbox: Mailbox, message: str, options) -> None:
        if options.get("json"):
            self.emit_json(as_dict(Mailbox.objects.select_related("assign_to").get(pk=mailbox.pk)))
        else:
            self.stdout.write(message)
        self._warn(mailbox)

    def _warn(self, mailbox: Mailbox) -> None:
        for warning in warnings(mailbox):
            self.stderr.write(f"warning: {warning}")


def flat(data: dict, prefix: str = ""):
    """(key, value) pairs with nested objects spelled out: oauth.provider, oauth.grant.state."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from flat(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def health_line(m: Mailbox) -> str:
    """What `mailbox list` says about a mailbox's health, flags after it."""
    health = "ok"
    if m.last_error and mailboxes.is_failing(m):
        health = f"FAILING x{m.consecutive_failures}: {m.last_error}"
    elif m.last_error:  # below POSTDESK_FAILING_AFTER: the worker retries, nobody need act yet
        health = f"ok (retrying after {m.consecutive_failures} failure{'s' if m.consecutive_failures != 1 else ''}: {m.last_error})"
    if m.last_attempt_at is None:
        health = "never fetched"
    flags = [] if m.enabled else ["(disabled)"]
    if m.identity_unstable_at is not None:
        flags.append("UNSTABLE IDENTITY (UIDVALIDITY keeps changing: use after-import move or delete)")
    busy = mailboxes.fetching(m)
    if busy:
        flags.append(f"(being fetched by {busy})")
    return " ".join([health, *flags])


# --- the options, made from mailbox_settings.SETTINGS ------------------------------------------


def settings_arguments(parser, editing: bool) -> None:
    """One argparse option per Option of each setting, in the table's groups."""
    groups = {}
    for setting in SETTINGS:
        for option in setting.options:
            if option.edit_only and not editing:
                continue
            if setting.group not in groups:
                title = HELP_GROUPS.get(setting.group)
                groups[setting.group] = parser.add_argument_group(title) if title else parser
            _add_option(groups[setting.group], setting, option, required=not editing and setting.name == "protocol")
    parser.add_argument("--json", action="store_true", help="print the mailbox as JSON")


def _add_option(parser, setting: Setting, option: Option, required: bool) -> None:
    named = {"help": option.help or setting.help or None}
    if option.takes == "value":
        named.update(metavar=option.metavar, required=required)
        if setting.kind in ("int", "float"):
            named["type"] = int if setting.kind == "int" else float
        if setting.kind == "choice" and setting.choices:
            named["choices"] = [value for value, _ in setting.choices]
            named.pop("metavar")
    elif option.takes in ("const", "stdin"):
        named["action"] = "store_true"
    elif option.takes == "negatable":
        named.update(action=argparse.BooleanOptionalAction, default=None)
    else:  # env, file
        named["metavar"] = option.metavar
    parser.add_argument(option.flag, dest=option.dest, **named)


def changes_from(options) -> dict:
    """What the options given change: {setting: value}, the secrets read from their sources."""
    changes: dict = {}
    stdin_read: list[Setting] = []
    for setting in SETTINGS:
        given = [o for o in setting.options if _given(o, options.get(o.dest))]
        sources = [o for o in given if o.takes in ("value", "env", "stdin", "file")]
        if len(sources) > 1:
            raise CommandError(f"give {sources[0].flag} or {sources[1].flag}, not both", returncode=USAGE)
        for option in given:  # in the table's order: a later one wins (--no-verify beats --verify)
            changes[setting.name] = _value(setting, option, options, stdin_read)
            changes.update(option.also)
    return changes


def _given(option: Option, value) -> bool:
    """Whether the option was on the command line (a flag's False is its absence; --no-ack's is not)."""
    return value is not None and not (option.takes in ("const", "stdin") and value is False)


def _value(setting: Setting, option: Option, options, stdin_read: list[Setting]):
    given = options[option.dest]
    if option.takes == "const":
        return option.const
    if option.takes == "env":
        if given not in os.environ:
            raise CommandError(f"environment variable {given} is not set", returncode=USAGE)
        return os.environ[given]
    if option.takes == "file":
        try:
            return Path(given).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise CommandError(f"cannot read {option.flag}: {exc}", returncode=USAGE) from None
    if option.takes == "stdin":
        return _stdin_line(setting, stdin_read)
    return given


def _stdin_line(setting: Setting, stdin_read: list[Setting]) -> str:
    """Secrets never come from the command line, where `ps` and shell history would show
    them: each --*-stdin takes one line of standard input, in the table's order (the
    fetching password first, then the SMTP password)."""
    line = sys.stdin.readline()
    if not line and stdin_read:
        earlier = " and the ".join(s.noun for s in stdin_read)
        raise CommandError(f"no {setting.noun} on standard input (the {ORDINALS[len(stdin_read)]} line, after the {earlier})",
                           returncode=USAGE)
    if not line and setting.name != "password":  # an empty fetching password was always taken as given
        raise CommandError(f"no {setting.noun} on standard input", returncode=USAGE)
    stdin_read.append(setting)
    return line.rstrip("\r\n")


def one_line(exc: mailboxes.InvalidSettings) -> str:
    """Every problem, each with the option that sets it."""
    return "; ".join(message if _hint(setting) == "-" else f"{message} ({_hint(setting)})"
                     for setting, message in exc.errors.items())


def _hint(name: str) -> str:
    setting = BY_NAME.get(name)
    return setting.option_hint if setting else "--" + name.replace("_", "-")
