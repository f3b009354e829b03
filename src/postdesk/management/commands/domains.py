"""postdesk domains list|add|remove|check: public mail domains (postdesk.domains).

Sharing a public domain (gmail.com, a disposable one, one an admin added)
with a request's customer never lets a message join that request by its
subject tag.  The shipped lists come with Postdesk; admins add to them here or
in the Django admin.
"""

from __future__ import annotations

from django.db import transaction

from postdesk import domains
from postdesk.management.base import USAGE, PostdeskCommand


class Command(PostdeskCommand):
    help = ("Public mail domains, whose senders never join a request by sharing the customer's domain: "
            "list [--json], add DOMAIN..., remove DOMAIN..., check ADDRESS|DOMAIN [--json].")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        lst = sub.add_parser("list", help="the domains admins added, and the size of the shipped lists")
        lst.add_argument("--json", action="store_true")
        add = sub.add_parser("add", help="list domains as public (e.g. your region's free-mail provider)")
        add.add_argument("domains", nargs="+", metavar="DOMAIN")
        remove = sub.add_parser("remove", help="take domains an admin added off the list")
        remove.add_argument("domains", nargs="+", metavar="DOMAIN")
        check = sub.add_parser("check", help="is this address's domain public, and by which list?")
        check.add_argument("address", metavar="ADDRESS|DOMAIN")
        check.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action']}")(options)

    def _list(self, options):
        added = domains.added()
        shipped = domains.shipped_counts()
        if options["json"]:
            return self.emit_json({"added": [{"domain": d.domain, "added": d.created_at} for d in added], "shipped": shipped})
        for row in added:
            self.stdout.write(f"{row.domain:<40} added {row.created_at:%Y-%m-%d %H:%M}")
        if not added:
            self.stdout.write("no domains added by an admin")
        self.stdout.write("shipped: " + ", ".join(f"{count} {name}" for name, count in shipped.items()))

    def _add(self, options):
        for domain in self._each(options, domains.add):
            self.stdout.write(f"added {domain}: mail from it no longer joins a request by sharing the customer's domain")

    def _remove(self, options):
        for domain in self._each(options, domains.remove):
            self.stdout.write(f"removed {domain}")

    def _each(self, options, change) -> list[str]:
        """Apply `change` to every domain named, all or none: one refused changes nothing."""
        try:
            names = [domains.valid(d) for d in options["domains"]]
            with transaction.atomic():
                for name in names:
                    change(name)
        except domains.DomainError as exc:
            raise self.fail(f"{exc}; nothing changed", USAGE) from None
        return names

    def _check(self, options):
        value = options["address"].strip()
        domain = domains.domain_of(value) if "@" in value else domains.normalize(value)
        if not domain:
            raise self.fail(f"{value!r} has no domain", USAGE)
        verdict = domains.check(domain)
        if options["json"]:
            return self.emit_json({"address": value, "domain": verdict.domain, "public": verdict.public,
                                   "listed_as": verdict.listed_as, "source": verdict.source})
        self.stdout.write(verdict.describe())
