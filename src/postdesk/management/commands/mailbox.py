"""postdesk mailbox add|list|show|edit|remove|test."""

from __future__ import annotations

from django.contrib.auth.models import User

from postdesk import secrets
from postdesk.management.base import USAGE, PostdeskCommand, read_password
from postdesk.models import DEFAULT_SIZE_LIMIT, Intake, Mailbox
from postdesk.sources import SourceError, open_source

DEFAULT_PORTS = {("imap", "tls"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
                 ("pop3", "tls"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110}
POLICIES = {"imap": {"keep", "seen", "move", "delete"}, "pop3": {"keep", "delete"}, "maildir": {"keep", "seen", "move", "delete"}}


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
        p.add_argument("--size-limit", type=float, metavar="MB", help=f"default {DEFAULT_SIZE_LIMIT // 1048576}")
        p.add_argument("--json", action="store_true", help="print the mailbox as JSON")

    def handle(self, *args, **options):
        return getattr(self, "_" + options["action"])(options)

    # --- actions -------------------------------------------------------------

    def _add(self, options):
        if Mailbox.objects.filter(name=options["name"]).exists():
            raise self.fail(f"mailbox {options['name']!r} exists already", USAGE)
        mailbox = Mailbox(name=options["name"], protocol=options["protocol"])
        if mailbox.protocol == "pop3":
            mailbox.after_import = Mailbox.After.KEEP  # POP3 cannot move or mark
        self._apply(mailbox, options)
        self._validate(mailbox)
        mailbox.save()
        self._done(mailbox, f"added mailbox {mailbox.name} ({describe(mailbox)})", options)

    def _edit(self, options):
        mailbox = self._get(options["name"])
        if options.get("protocol"):
            mailbox.protocol = options["protocol"]
        if options["rename"]:
            mailbox.name = options["rename"]
        if options["verify"]:
            mailbox.verify_tls = True
        if options["enable"]:
            mailbox.enabled = True
        if options["disable"]:
            mailbox.enabled = False
        if options["unassign"]:
            mailbox.assign_to = None
        self._apply(mailbox, options)
        self._validate(mailbox)
        mailbox.save()
        self._done(mailbox, f"changed mailbox {mailbox.name} ({describe(mailbox)})", options)

    def _list(self, options):
        rows = [as_dict(m) for m in Mailbox.objects.select_related("assign_to")]
        if options["json"]:
            return self.emit_json(rows)
        if not rows:
            self.stdout.write("no mailboxes; add one with `postdesk mailbox add`")
        for m in Mailbox.objects.select_related("assign_to"):
            health = "ok" if not m.last_error else f"FAILING x{m.consecutive_failures}: {m.last_error}"
            if m.last_attempt_at is None:
                health = "never fetched"
            flag = "" if m.enabled else " (disabled)"
            self.stdout.write(f"{m.name:<16} {describe(m):<50} {health}{flag}")

    def _show(self, options):
        mailbox = self._get(options["name"])
        data = as_dict(mailbox)
        if options["json"]:
            return self.emit_json(data)
        for key, value in data.items():
            self.stdout.write(f"{key + ':':<22} {value if value is not None else ''}")
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
        try:
            source = open_source(mailbox)
            try:
                count = source.count()
            finally:
                source.close()
        except SourceError as exc:
            if options["json"]:
                self.emit_json({"ok": False, "kind": exc.kind, "error": exc.message, "permanent": exc.permanent})
            raise self.fail(f"{mailbox.name}: {exc.kind}: {exc.message}") from None
        except secrets.SecretError as exc:
            raise self.fail(f"{mailbox.name}: {exc}") from None
        if options["json"]:
            return self.emit_json({"ok": True, "messages": count})
        self.stdout.write(f"{mailbox.name}: ok, {count} message{'s' if count != 1 else ''} in {mailbox.folder}")

    # --- helpers -------------------------------------------------------------

    def _get(self, name: str) -> Mailbox:
        try:
            return Mailbox.objects.select_related("assign_to").get(name=name)
        except Mailbox.DoesNotExist:
            raise self.fail(f"no mailbox named {name!r} (see `postdesk mailbox list`)", USAGE) from None

    def _apply(self, mailbox: Mailbox, options) -> None:
        for option, attr in (("address", "address"), ("host", "host"), ("port", "port"), ("security", "security"),
                             ("username", "username"), ("ca_file", "ca_file"), ("folder", "folder"), ("path", "path"),
                             ("poll_interval", "poll_interval")):
            if options.get(option) is not None:
                setattr(mailbox, attr, options[option])
        if options.get("no_verify"):
            mailbox.verify_tls = False
        if options.get("size_limit") is not None:
            mailbox.size_limit = int(options["size_limit"] * 1048576)
        if options.get("after"):
            policy, _, folder = options["after"].partition(":")
            if policy not in ("keep", "seen", "move", "delete"):
                raise self.fail(f"--after must be keep, seen, move:FOLDER or delete, not {options['after']!r}", USAGE)
            mailbox.after_import = policy
            if policy == "move":
                mailbox.move_folder = folder or mailbox.move_folder or "Imported"
        if options.get("assign"):
            try:
                mailbox.assign_to = User.objects.get(username=options["assign"])
            except User.DoesNotExist:
                raise self.fail(f"no staff member {options['assign']!r} (add one with `postdesk staff add`)", USAGE) from None
        password = read_password(options)
        if password is not None:
            mailbox.secret = secrets.encrypt(password)
        if mailbox.port is None and mailbox.protocol != "maildir":
            mailbox.port = DEFAULT_PORTS[(mailbox.protocol, mailbox.security)]

    def _validate(self, mailbox: Mailbox) -> None:
        if mailbox.protocol == "maildir":
            if not mailbox.path:
                raise self.fail("a maildir mailbox needs --path DIR", USAGE)
        elif not mailbox.host or not mailbox.username:
            raise self.fail(f"an {mailbox.protocol} mailbox needs --host and --username", USAGE)
        if mailbox.after_import not in POLICIES[mailbox.protocol]:
            allowed = ", ".join(sorted(POLICIES[mailbox.protocol]))
            raise self.fail(f"--after {mailbox.after_import} is not possible with {mailbox.protocol} (use {allowed})", USAGE)

    def _done(self, mailbox: Mailbox, message: str, options) -> None:
        if options.get("json"):
            self.emit_json(as_dict(Mailbox.objects.select_related("assign_to").get(pk=mailbox.pk)))
        else:
            self.stdout.write(message)
        self._warn(mailbox)

    def _warn(self, mailbox: Mailbox) -> None:
        for warning in warnings(mailbox):
            self.stderr.write(f"warning: {warning}")


def warnings(mailbox: Mailbox) -> list[str]:
    found = []
    if mailbox.protocol != "maildir" and not mailbox.verify_tls:
        found.append(f"{mailbox.name}: certificate verification is OFF; anyone on the path can read this mailbox's password")
    if mailbox.protocol != "maildir" and mailbox.security == "none":
        found.append(f"{mailbox.name}: no TLS; the password and mail cross the network in plain text")
    return found


def describe(m: Mailbox) -> str:
    if m.protocol == "maildir":
        where = m.path
    else:
        where = f"{m.protocol}://{m.username}@{m.host}:{m.port} {m.security}"
    route = f"-> {m.assign_to.get_username()}" if m.assign_to_id else "-> general queue"
    return f"{where}, after: {m.after_label} {route}"


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
        "size_limit_mb": round(m.size_limit / 1048576, 1),
        "last_attempt": m.last_attempt_at,
        "last_success": m.last_success_at,
        "last_error": m.last_error or None,
        "consecutive_failures": m.consecutive_failures,
        "warnings": warnings(m),
    }
