"""postdesk export: every request as one JSON object per line, streamed."""

from __future__ import annotations

import json
from datetime import datetime, time, timezone

from postdesk import serialize
from postdesk.management.base import USAGE, PostdeskCommand
from postdesk.models import Request


class Command(PostdeskCommand):
    help = "Export every request (with its messages) as JSON lines; --since DATE for recent ones."

    def add_arguments(self, parser):
        parser.add_argument("--since", metavar="DATE", help="only requests with activity since this date (YYYY-MM-DD or ISO 8601)")

    def handle(self, *args, **options):
        rows = Request.objects.all()
        if options["since"]:
            rows = rows.filter(updated_at__gte=_parse_since(options["since"], self))
        # iterator() streams from the database: a million requests never sit in memory at once.
        for request in serialize.requests_with_counts(rows).order_by("id").iterator(chunk_size=200):
            self.stdout.write(json.dumps(serialize.detail(request), ensure_ascii=False))


def _parse_since(value: str, command) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise command.fail(f"--since: {value!r} is not a date like 2026-11-25", USAGE) from None
    if len(value) <= 10:
        parsed = datetime.combine(parsed.date(), time.min)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
