"""The queues: which requests each one holds, and the counts in the top bar (also
polled by live.js, web/live.py).

What each queue holds by default:
  General  unassigned requests that need a person: new and open (desk.status.ACTIVE).
           A request waiting on the customer needs nobody until the customer answers
           (or its snooze ends), and then it is open again and back here by itself.
  Mine     the member's own requests that are not closed (desk.status.NOT_CLOSED):
           waiting ones included, so nothing they are responsible for drops out of view.
  All      every request, closed and merged ones included.
A status filter (`?status=`, desk.filters) replaces the queue's own statuses on every
queue, so "All" with status=open shows what it says, and General can show closed ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.urls import NoReverseMatch, reverse

from postdesk.desk import filters
from postdesk.desk.status import ACTIVE, NOT_CLOSED
from postdesk.models import Mailbox, Request, Tag

QUEUES = {
    "general": "General",
    "mine": "Mine",
    "all": "All",
}

# What the count beside each queue in the top bar counts (nav_counts), said on hover.
COUNTED = {
    "general": "unassigned, new or open",
    "mine": "yours, not closed",
    "all": "not closed",
}
MAILBOX_COUNTED = "not closed"


def _default_statuses(queue: str) -> tuple[str, ...]:
    return {"general": ACTIVE, "mine": NOT_CLOSED}.get(queue, ())


def queue_filter(queue: str, user, *, with_statuses: bool = True) -> Q:
    """The requests of `queue` for `user`; without its default statuses when a status
    filter takes their place."""
    condition = {"general": Q(assignee__isnull=True), "mine": Q(assignee=user)}.get(queue, Q())
    statuses = _default_statuses(queue)
    if with_statuses and statuses:
        condition &= Q(status__in=statuses)
    return condition


def nav_counts(user) -> dict[str, int]:
    """The counts in the top bar, by key: each queue, and "mailbox:NAME" (also polled by live.js).

    Each counts work, never history: General and Mine what they hold, All and each mailbox
    their requests that are not closed. A desk's closed requests grow without end, and these
    counts are made on every page and every poll: counting only open work keeps them as
    cheap at a million requests as at a thousand (indexes on (assignee, status) and on the
    mailbox of open requests answer them without reading the rows)."""
    requests = Request.objects.order_by()
    counts = {queue: requests.filter(_counted(queue, user)).count() for queue in QUEUES}
    # Written as the partial index's own condition (models.Request, request_open_mailbox),
    # which is how SQLite knows to use it.
    by_mailbox = dict(requests.filter(~Q(status=Request.Status.CLOSED), mailbox__isnull=False)
                      .values("mailbox").annotate(n=Count("*")).values_list("mailbox", "n"))
    for pk, name in Mailbox.objects.order_by("name").values_list("pk", "name"):
        counts[f"mailbox:{name}"] = by_mailbox.get(pk, 0)
    return counts


def _counted(queue: str, user) -> Q:
    """What a queue's count in the top bar counts: All, its requests that are not closed."""
    return queue_filter(queue, user) & (Q(status__in=NOT_CLOSED) if not _default_statuses(queue) else Q())


def numbers_page(rows: QuerySet, ordering: tuple, number, *, size: int) -> Page:
    """One page of a queue as request numbers only, chosen and ordered with nothing but the
    filter (so the database walks an index and stops after `size` rows).  A page number out
    of range gives the last page, junk the first (Paginator.get_page): the caller reads
    `page.number` for the page it got."""
    page = Paginator(rows.order_by(*ordering).values_list("pk", flat=True), size).get_page(number)
    page.object_list = list(page.object_list)
    return page


def page_of(rows: QuerySet, ordering: tuple, number, *, size: int, decorate: Callable[[QuerySet], QuerySet]) -> Page:
    """One page of a queue in two steps: the numbers of the page's rows (`numbers_page`),
    then those rows with what the page shows (`decorate`: joins, unread, attachments).
    In one step, SQLite computes every row's subqueries before sorting: seconds on 100,000."""
    page = numbers_page(rows, ordering, number, size=size)
    numbers = page.object_list
    found = {r.pk: r for r in decorate(Request.objects.filter(pk__in=numbers))}
    page.object_list = [found[n] for n in numbers if n in found]
    return page


@dataclass(frozen=True)
class PageNumbers:
    """What a request page's j / k need of a neighbouring queue page (keys.js): its number,
    its requests in order (numbers and their pages' links), and whether pages follow or precede."""

    page: int
    numbers: list[int]
    has_next: bool
    has_previous: bool

    @classmethod
    def of(cls, page: Page) -> PageNumbers:
        return cls(page.number, list(page.object_list), page.has_next(), page.has_previous())

    def as_dict(self) -> dict:
        links = [reverse("postdesk_web:request", args=[n]) for n in self.numbers]
        return {"page": self.page, "numbers": self.numbers, "links": links,
                "has_next": self.has_next, "has_previous": self.has_previous}


def queue_url(queue: str) -> str:
    """The address of a queue key ("general", "mailbox:NAME")."""
    if queue.startswith("mailbox:"):
        try:
            return reverse("postdesk_web:mailbox", args=[queue.split(":", 1)[1]])
        except NoReverseMatch:  # a saved view naming a mailbox no URL can hold: All instead
            return reverse("postdesk_web:queue", args=["all"])
    return reverse("postdesk_web:queue", args=[queue if queue in QUEUES else "all"])


@dataclass(frozen=True)
class Column:
    """A sortable column header: its label, the link that sorts by it, and whether it does now."""

    label: str
    sort: str
    link: str
    current: str  # "ascending", "descending" or "" (aria-sort)


def _with_search(q: str, query_string: str) -> str:
    """A link's query string that keeps the page's search."""
    return "?" + "&".join(part for part in (urlencode({"q": q}) if q else "", query_string) if part)


@dataclass(frozen=True)
class Chip:
    """A filter that is set, shown as a chip whose link removes it."""

    label: str
    without: str


def _chips(query: filters.QueueQuery, q: str) -> list[Chip]:
    labels = dict(Request.Status.choices)
    chips = [Chip(f"status: {labels[s]}", _with_search(q, query.to_query_string(statuses=tuple(x for x in query.statuses if x != s))))
             for s in query.statuses]
    for name in ("assignee", "mailbox", "tag"):
        if getattr(query, name):
            chips.append(Chip(f"{name}: {getattr(query, name)}", _with_search(q, query.to_query_string(**{name: ""}))))
    chips += [Chip(f"priority: {Request.Priority(p).label}", _with_search(q, query.to_query_string(priorities=tuple(x for x in query.priorities if x != p))))
              for p in query.priorities]
    for name in filters.DATE_FIELDS:
        if getattr(query, name):
            chips.append(Chip(f"{name.replace('_', ' ').replace('created', 'opened')}: {getattr(query, name).isoformat()}",
                              _with_search(q, query.to_query_string(**{name: None}))))
    return chips


def _columns(query: filters.QueueQuery, q: str) -> dict[str, Column]:
    labels = {"number": "#", "status": "Status", "priority": "Priority", "created": "Opened", "updated": "Last activity"}
    return {sort: Column(label, sort, _with_search(q, query.sorted_by(sort)),
                         ("descending" if query.descending else "ascending") if query.sort == sort else "")
            for sort, label in labels.items()}


def queue_bar(query: filters.QueueQuery, resolved: filters.Resolved, user, *, current: str, q: str = "") -> dict:
    """What the filter bar, the column headers, the saved views and the bulk form show."""
    staff = list(get_user_model().objects.filter(is_active=True).order_by("username").values_list("pk", "username"))
    views = filters.views_of(user)
    return {
        "query": query,
        "query_string": query.to_query_string(),
        "filter_notes": resolved.notes,
        "columns": _columns(query, q),
        "filter_chips": _chips(query, q),
        "filter_open": bool(resolved.notes),
        "page_query": query.to_query_string(),
        "query_pairs": parse_qsl(query.to_query_string()),
        "status_choices": Request.Status.choices,
        "priority_choices": Request.Priority.choices,
        "filter_mailboxes": list(Mailbox.objects.order_by("name").values_list("name", flat=True)),
        "filter_tags": list(Tag.objects.order_by("name").values_list("name", flat=True)[:300]),
        "staff_choices": staff,
        "saved_views": [(v, f"{queue_url(v.queue)}?{v.query}" if v.query else queue_url(v.queue)) for v in views],
        "queue_path": queue_url(current),
    }
