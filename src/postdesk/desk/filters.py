"""A queue's filters and sort order, read from a queue URL's query string and written back
to one (so a filtered queue is a shareable URL, and a saved view is that query string).

    ?status=open&status=pending     several statuses (also "open,pending")
    &assignee=me | none | a username
    &mailbox=NAME  &tag=NAME  &priority=urgent (several allowed, names or numbers)
    &created_after=2026-11-01  &created_before=...  &updated_after=...  &updated_before=...
    &sort=updated | created | priority | status | number   &order=desc | asc

"after D" means from the start of day D, "before D" up to the start of day D, in the
member's time zone. A value we do not know is ignored, and the page says so (`notes`):
a hand-edited or old URL shows a queue, never an error page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import QueryDict
from django.utils import timezone

from postdesk.desk import priority as priorities
from postdesk.desk import profile
from postdesk.desk.status import Status
from postdesk.models import Mailbox, SavedView, Tag

SORTS = {  # the URL's name -> the column
    "updated": "updated_at",
    "created": "created_at",
    "priority": "priority",
    "status": "status_rank",
    "number": "pk",
}
DEFAULT_SORT = "updated"
# The working order of statuses, for sorting by status: what needs a person first.
STATUS_RANK = {Status.NEW: 0, Status.OPEN: 1, Status.PENDING: 2, Status.CLOSED: 3}
DATE_FIELDS = ("created_after", "created_before", "updated_after", "updated_before")
ASSIGNEE_ME, ASSIGNEE_NONE = "me", "none"


@dataclass(frozen=True)
class QueueQuery:
    """What a queue URL asks for, checked for form (names are looked up by `resolve`)."""

    statuses: tuple[str, ...] = ()
    assignee: str = ""
    mailbox: str = ""
    tag: str = ""
    priorities: tuple[int, ...] = ()
    created_after: dt.date | None = None
    created_before: dt.date | None = None
    updated_after: dt.date | None = None
    updated_before: dt.date | None = None
    sort: str = DEFAULT_SORT
    descending: bool = True
    notes: tuple[str, ...] = field(default=(), compare=False)  # what was ignored, in words

    @property
    def filtered(self) -> bool:
        """Any filter set (the sort alone is not a filter)."""
        return bool(self.statuses or self.assignee or self.mailbox or self.tag or self.priorities
                    or any(getattr(self, name) for name in DATE_FIELDS))

    def to_query_string(self, **changes) -> str:
        """The query string of this query (with `changes`), in a stable order; the default sort is left out."""
        query = replace(self, **changes) if changes else self
        pairs = [("status", s) for s in query.statuses]
        pairs += [(name, getattr(query, name)) for name in ("assignee", "mailbox", "tag") if getattr(query, name)]
        pairs += [("priority", _priority_name(p)) for p in query.priorities]
        pairs += [(name, getattr(query, name).isoformat()) for name in DATE_FIELDS if getattr(query, name)]
        if query.sort != DEFAULT_SORT or not query.descending:
            pairs += [("sort", query.sort), ("order", "desc" if query.descending else "asc")]
        return urlencode(pairs)

    def sorted_by(self, sort: str) -> str:
        """The query string a column header links to: by `sort`, or the other way round if already so."""
        descending = not self.descending if sort == self.sort else True
        return self.to_query_string(sort=sort, descending=descending)


def _priority_name(priority: int) -> str:
    """A priority as URLs write it: "urgent", not "3"."""
    return priorities.Priority(priority).label


@dataclass(frozen=True)
class Resolved:
    """A query made concrete for one member: the condition, the ordering, and what was ignored."""

    condition: Q
    ordering: tuple
    notes: tuple[str, ...]
    statuses_given: bool  # a status filter replaces the queue's own statuses
    annotations: dict = field(default_factory=dict)  # what the ordering needs (status_rank)


# --- reading a URL -----------------------------------------------------------


def _values(get, name: str) -> list[str]:
    """Every value of `name`, repeated or comma-separated, blanks dropped."""
    found = []
    for raw in get.getlist(name):
        found += [part.strip() for part in raw.split(",") if part.strip()]
    return found


def _statuses(get, notes: list[str]) -> tuple[str, ...]:
    chosen = []
    for value in _values(get, "status"):
        status = {"waiting": Status.PENDING}.get(value.lower(), value.lower())  # the word the page shows
        if status not in Status.values:
            notes.append(f"unknown status “{value}” ignored")
        elif status not in chosen:
            chosen.append(status)
    return tuple(chosen)


def _priorities(get, notes: list[str]) -> tuple[int, ...]:
    chosen = []
    for value in _values(get, "priority"):
        try:
            number = priorities.parse(value)
        except priorities.PriorityError:
            notes.append(f"unknown priority “{value}” ignored")
            continue
        if number not in chosen:
            chosen.append(number)
    return tuple(chosen)


def _date(get, name: str, notes: list[str]) -> dt.date | None:
    value = get.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        notes.append(f"“{value}” is not a date (YYYY-MM-DD): {name.replace('_', ' ')} ignored")
        return None


def _sort(get, notes: list[str]) -> tuple[str, bool]:
    sort = get.get("sort", "").strip().lower() or DEFAULT_SORT
    if sort not in SORTS:
        notes.append(f"unknown sort “{sort}” ignored")
        sort = DEFAULT_SORT
    order = get.get("order", "").strip().lower()
    if order not in ("", "asc", "desc"):
        notes.append(f"unknown order “{order}” ignored")
    return sort, order != "asc"


def from_get(get) -> QueueQuery:
    """The query of a queue URL (request.GET); never raises."""
    notes: list[str] = []
    sort, descending = _sort(get, notes)
    query = QueueQuery(
        statuses=_statuses(get, notes),
        assignee=get.get("assignee", "").strip(),
        mailbox=get.get("mailbox", "").strip(),
        tag=get.get("tag", "").strip(),
        priorities=_priorities(get, notes),
        **{name: _date(get, name, notes) for name in DATE_FIELDS},
        sort=sort,
        descending=descending,
    )
    return replace(query, notes=tuple(notes))


def from_query_string(text: str) -> QueueQuery:
    return from_get(QueryDict(text))


# --- making it concrete ------------------------------------------------------


def _assignee(query: QueueQuery, user, notes: list[str]) -> Q:
    name = query.assignee
    if not name:
        return Q()
    if name.lower() == ASSIGNEE_ME:
        return Q(assignee=user)
    if name.lower() == ASSIGNEE_NONE:
        return Q(assignee__isnull=True)
    found = get_user_model().objects.filter(username=name).first()
    if found is None:
        notes.append(f"no staff member “{name}”: assignee filter ignored")
        return Q()
    return Q(assignee=found)


def _named(model, name: str, what: str, lookup: str, notes: list[str], normal=lambda n: n) -> Q:
    if not name:
        return Q()
    found = model.objects.filter(name=normal(name)).first()
    if found is None:
        notes.append(f"no {what} “{name}”: {what} filter ignored")
        return Q()
    return Q(**{lookup: found})


def _day_start(day: dt.date, user) -> dt.datetime:
    zone = profile.time_zone_of(user) or timezone.get_current_timezone()
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def _dates(query: QueueQuery, user) -> Q:
    condition = Q()
    for name in DATE_FIELDS:
        day = getattr(query, name)
        if day is not None:
            column, side = name.split("_")
            condition &= Q(**{f"{column}_at__{'gte' if side == 'after' else 'lt'}": _day_start(day, user)})
    return condition


def _tag_name(name: str) -> str:
    return name.strip().lower()


def resolve(query: QueueQuery, user) -> Resolved:
    """The condition and ordering of `query` for `user` (who "me" is, their time zone)."""
    notes = list(query.notes)
    condition = Q(status__in=query.statuses) if query.statuses else Q()
    condition &= _assignee(query, user, notes)
    condition &= _named(Mailbox, query.mailbox, "mailbox", "mailbox", notes)
    condition &= _named(Tag, query.tag, "tag", "tags", notes, normal=_tag_name)
    if query.priorities:
        condition &= Q(priority__in=query.priorities)
    condition &= _dates(query, user)
    column = SORTS[query.sort]
    ordering = tuple(dict.fromkeys(f"-{c}" if query.descending else c for c in (column, "pk")))
    annotations = {"status_rank": status_rank()} if query.sort == "status" else {}
    return Resolved(condition, ordering, tuple(notes), bool(query.statuses), annotations)


def status_rank() -> Case:
    """The annotation `status_rank` that sorting by status orders on."""
    return Case(*[When(status=s, then=Value(rank)) for s, rank in STATUS_RANK.items()],
                default=Value(len(STATUS_RANK)), output_field=IntegerField())


# --- saved views -------------------------------------------------------------

MAX_VIEW_NAME = 80


class ViewError(ValueError):
    """A saved view that cannot be saved so; the message says why, in words."""


@dataclass(frozen=True)
class SavedViewLink:
    pk: int
    name: str
    queue: str  # "general", "mine", "all" or "mailbox:NAME"
    query: str


def _view_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ViewError("a saved view needs a name")
    if len(cleaned) > MAX_VIEW_NAME:
        raise ViewError(f"a saved view's name is at most {MAX_VIEW_NAME} characters")
    return cleaned


def canonical(query_string: str) -> str:
    """The query string as the queue writes it: only what desk.filters reads (no page, no
    live poll), in a stable order."""
    return from_query_string(query_string).to_query_string()


def save_view(user, name: str, queue: str, query_string: str) -> SavedView:
    """Save (or, under a name the member already uses, replace) a view of `queue`."""
    view, _ = SavedView.objects.update_or_create(
        staff=user, name=_view_name(name), defaults={"queue": queue[:100], "query": canonical(query_string)[:2000]})
    return view


def rename_view(user, pk: int, name: str) -> SavedView:
    view = SavedView.objects.get(staff=user, pk=pk)
    view.name = _view_name(name)
    try:
        with transaction.atomic():
            view.save(update_fields=["name"])
    except IntegrityError:
        raise ViewError(f"you already have a view named “{view.name}”") from None
    return view


def delete_view(user, pk: int) -> bool:
    deleted, _ = SavedView.objects.filter(staff=user, pk=pk).delete()
    return bool(deleted)


def views_of(user) -> list[SavedViewLink]:
    return [SavedViewLink(v.pk, v.name, v.queue, v.query) for v in SavedView.objects.filter(staff=user)]
