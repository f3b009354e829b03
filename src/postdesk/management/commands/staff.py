"""postdesk staff add|list|unlock|reset-2fa|sso-unlink: staff members are Django users."""

from __future__ import annotations

from django.contrib.auth.models import User

from postdesk.management.base import USAGE, PostdeskCommand, read_password


class Command(PostdeskCommand):
    help = "Add and list staff members (add USERNAME --email E [--name N] [--password-stdin] [--admin]; list; unlock NAME [--address]; reset-2fa NAME; sso-unlink NAME)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a staff member")
        add.add_argument("username")
        add.add_argument("--email", required=True)
        add.add_argument("--name", default="")
        add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        add.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
        add.add_argument("--admin", action="store_true", help="may manage mailboxes and use the Django admin")
        lst = sub.add_parser("list", help="list staff members")
        lst.add_argument("--json", action="store_true")
        unlock = sub.add_parser("unlock", help="let a sign-in locked by failed attempts try again")
        unlock.add_argument("name", help="the user name typed at sign-in (or, with --address, a client address)")
        unlock.add_argument("--address", action="store_true", help="NAME is a client address, not an account")
        unlink = sub.add_parser("sso-unlink", help="forget a member's single sign-on link (with "
                                "POSTDESK_SSO_PASSWORDS=off: lets them sign in with a password again)")
        unlink.add_argument("name", help="the staff member's user name")
        reset = sub.add_parser("reset-2fa", help="remove a member's authenticator and recovery codes (a lost phone)")
        reset.add_argument("name", help="the staff member's user name")

    def handle(self, *args, **options):
        if options["action"] == "add":
            return self._add(options)
        if options["action"] == "unlock":
            return self._unlock(options)
        if options["action"] == "sso-unlink":
            return self._sso_unlink(options)
        if options["action"] == "reset-2fa":
            return self._reset_two_factor(options)
        return self._list(options)

    def _unlock(self, options):
        from postdesk.signin import throttle

        done = throttle.unlock("address" if options["address"] else "account", options["name"])
        self.stdout.write(f"unlocked {done.kind} {done.name} ({done.cleared} failure records cleared)")

    def _sso_unlink(self, options):
        from postdesk.signin import sso

        user = User.objects.filter(username=options["name"]).first()
        if user is None:
            raise self.fail(f"no staff member {options['name']!r}")
        removed = sso.unlink(user)
        self.stdout.write(f"unlinked {user.username} from single sign-on ({removed} links removed)")

    def _reset_two_factor(self, options):
        from postdesk.signin import two_factor

        member = User.objects.filter(username=options["name"]).first()
        if member is None:
            raise self.fail(f"no staff member {options['name']!r}")
        if two_factor.reset(member):
            self.stdout.write(f"reset two-factor sign-in of {member.username}: they sign in with the password and enrol again")
        else:
            self.stdout.write(f"{member.username} has no two-factor sign-in to reset")

    def _add(self, options):
        username = options["username"]
        if User.objects.filter(username=username).exists():
            raise self.fail(f"staff member {username!r} exists already", USAGE)
        first, _, last = options["name"].partition(" ")
        user = User(username=username, email=options["email"], first_name=first, last_name=last, is_staff=True)
        user.is_superuser = options["admin"]
        password = read_password(options)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()  # set one later with `postdesk changepassword`
        user.save()
        self.stdout.write(f"added staff member {username}")

    def _list(self, options):
        from postdesk.signin import audit

        signs_in = {m.username: m for m in audit.members()}
        rows = []
        for u in User.objects.filter(is_active=True).order_by("username"):
            how = signs_in[u.username]
            rows.append({"username": u.username, "email": u.email, "name": u.get_full_name(), "admin": u.is_superuser,
                         "two_factor": how.two_factor, "sso": how.sso,
                         "last_signed_in": how.last_signed_in.isoformat() if how.last_signed_in else None})
        if options["json"]:
            return self.emit_json(rows)
        for row in rows:
            marks = [m for m, on in (("admin", row["admin"]), ("2fa", row["two_factor"]), ("sso", row["sso"])) if on]
            self.stdout.write(f"{row['username']:<20} {row['email']:<30} {row['name']}{'  (' + ', '.join(marks) + ')' if marks else ''}")
