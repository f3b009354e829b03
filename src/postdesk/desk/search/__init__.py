"""Full-text search of requests: the index and the query language.

    normalise.py  the one normaliser, at index and at query time (accents, umlauts, CJK)
    query.py      the search language -> a typed ParsedQuery (never raises)
    match.py      a ParsedQuery -> one filter on Request (FTS5 MATCH / tsquery, operators)
    index.py      one document per request, written in the caller's transaction
    snippets.py   the matching passage of a found request, escaped, words in <mark>

The index is kept current where requests change: process/apply.py (a batch of mail and
a customer's new name), outbound/reply.py (replies and notes), desk/tagging.py (tags).
`postdesk search reindex` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils.safestring import SafeString

from postdesk.desk.search import index, match, query, snippets
from postdesk.desk.search.index import index_customer, index_requests
from postdesk.desk.search.query import ParsedQuery, parse
from postdesk.models import Request

__all__ = ["ParsedQuery", "Progress", "filter_requests", "index_customer", "index_request", "index_requests",
           "parse", "reindex", "snippets_for"]


def filter_requests(queryset: QuerySet, q: str, user=None) -> QuerySet:
    """`queryset` narrowed to what the search `q` finds (all of it for an empty search)."""
    if not (q or "").strip():
        return queryset
    return queryset.filter(match.condition(query.parse(q), user))


def snippets_for(request_ids: list[int], q: str) -> dict[int, SafeString]:
    return snippets.snippets(request_ids, query.parse(q)) if (q or "").strip() else {}


def index_request(request_id: int) -> None:
    index.index_requests([request_id])


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    last_id: int  # `reindex --from` this id continues after it


BATCH = 500


def reindex(*, after: int = 0, missing_only: bool = False, batch: int = BATCH) -> Iterator[Progress]:
    """Rebuild the index in batches of requests by ascending id, one transaction each, so an
    interrupted run loses one batch at most and continues with `after`. `missing_only`: only
    requests with no document yet (continue a first build). Documents of requests that no
    longer exist are dropped as the run passes them."""
    ids = Request.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)
    total, done = ids.count(), 0
    last = after
    while True:
        chunk = list(ids.filter(pk__gt=last)[:batch])
        if not chunk:
            break
        with transaction.atomic():
            todo = chunk
            if missing_only:
                present = set(index.indexed_ids(last, chunk[-1]))
                todo = [i for i in chunk if i not in present]
            index.index_requests(todo)
            index.drop_orphans(last, chunk[-1])
        done, last = done + len(chunk), chunk[-1]
        yield Progress(done, total, last)
    with transaction.atomic():
        index.drop_orphans(last, None)


def run(progress: Callable[[Progress], None], **options) -> int:
    count = 0
    for step in reindex(**options):
        progress(step)
        count = step.done
    return count
