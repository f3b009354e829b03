"""postdesk requests list|show."""

from __future__ import annotations

from postdesk import serialize
from postdesk.management.base import USAGE, PostdeskCommand
from postdesk.models import Request
from postdesk.sizes import describe_size


class Command(PostdeskCommand):
    help = "List requests, or show one with its messages (list [--queue general|all] ...; show NUMBER)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        lst = sub.add_parser("list", help="list requests, newest activity first")
        lst.add_argument("--queue", choices=["general", "all"], default="all", help="general: unassigned only")
        lst.add_argument("--assignee", metavar="USERNAME")
        lst.add_argument("--mailbox", metavar="NAME")
        lst.add_argument("--status", choices=Request.Status.values, help="pending: waiting on the customer")
        lst.add_argument("--limit", type=int, default=0)
        lst.add_argument("--json", action="store_true")
        show = sub.add_parser("show", help="one request with its messages")
        show.add_argument("number", type=int)
        show.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["action"] == "show":
            return self._show(options)
        rows = Request.objects.all()
        if options["queue"] == "general":
            rows = rows.filter(assignee=None)
        if options["assignee"]:
            rows = rows.filter(assignee__username=options["assignee"])
        if options["mailbox"]:
            rows = rows.filter(mailbox__name=options["mailbox"])
        if options["status"]:
            rows = rows.filter(status=options["status"])
        rows = serialize.requests_with_counts(rows).order_by("-updated_at", "-id")
        if options["limit"]:
            rows = rows[: options["limit"]]
        data = [serialize.summary(r) for r in rows]
        if options["json"]:
            return self.emit_json(data)
        if not data:
            self.stdout.write("no requests")
        for r in data:
            self.stdout.write(_row(r))

    def _show(self, options):
        request = serialize.requests_with_counts().filter(pk=options["number"]).first()
        if request is None:
            raise self.fail(f"no request #{options['number']}", USAGE)
        data = serialize.detail(request)
        if options["json"]:
            return self.emit_json(data)
        self.stdout.write(f"#{data['number']} {data['subject']}  [{data['status']}]  assignee: {data['assignee'] or '-'}")
        for m in data["messages"]:
            sender = m["from"]["address"] if m["from"] else "?"
            self.stdout.write(f"\n--- {m['date'] or ''}  {sender}" + (f"  [{m['auto_submitted']}]" if m["auto_submitted"] else ""))
            self.stdout.write(m["text"])
            for a in m["attachments"]:
                self.stdout.write(f"  [attachment] {a['filename']} ({a['content_type']}, {describe_size(a['size'])})")


def _row(r: dict) -> str:
    """One request on one line: number, status, priority (when not normal), assignee,
    customer, subject, then its tags and whether a machine sent it."""
    who = r["assignee"] or "-"
    priority = r["priority"] if r["priority"] != "normal" else ""
    tags = "".join(f" #{name}" for name in r["tags"])
    auto = f" [{r['auto_submitted']}]" if r["auto_submitted"] else ""
    return f"#{r['number']:<6} {r['status']:<7} {priority:<6} {who:<12} {r['customer'] or '':<30} {r['subject'][:60]}{tags}{auto}"
