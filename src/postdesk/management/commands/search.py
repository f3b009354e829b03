"""postdesk search reindex|query: the full-text index of requests (postdesk.desk.search)."""

from __future__ import annotations

from postdesk.desk import search
from postdesk.management.base import PostdeskCommand


class Command(PostdeskCommand):
    help = "The full-text search index: reindex [--from ID] [--missing], or query TEXT to try a search."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        reindex = sub.add_parser("reindex", help="rebuild the index, in batches by request number; safe to stop and run again")
        reindex.add_argument("--from", dest="after", type=int, default=0, metavar="ID",
                             help="continue after this request number (the last one a stopped run printed)")
        reindex.add_argument("--missing", action="store_true", help="only requests not in the index yet")
        reindex.add_argument("--batch", type=int, default=search.BATCH, help=f"requests per transaction (default {search.BATCH})")
        find = sub.add_parser("query", help="the requests a search finds, as the queue's search box would")
        find.add_argument("text")

    def handle(self, *args, **options):
        if options["action"] == "query":
            return self._query(options["text"])
        if options["batch"] < 1:
            raise self.fail("--batch must be at least 1")
        count = search.run(self._progress, after=options["after"], missing_only=options["missing"], batch=options["batch"])
        self.stdout.write(f"indexed {count} requests" if count else "no requests to index")

    def _progress(self, step: search.Progress) -> None:
        self.stdout.write(f"{step.done}/{step.total} requests, up to #{step.last_id} (--from {step.last_id} continues here)")

    def _query(self, text: str) -> None:
        from postdesk.models import Request

        rows = search.filter_requests(Request.objects.all(), text).order_by("-updated_at", "-pk")[:50]
        for req in rows:
            self.stdout.write(f"#{req.pk:<8} {req.status:<8} {req.subject}")
        if not rows:
            self.stdout.write("no requests")
