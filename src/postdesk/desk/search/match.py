"""A parsed query (query.ParsedQuery) as one filter on requests: the full-text part as
FTS5 MATCH or tsquery text, the operators as plain ORM conditions.

Every word that reaches the database was made by normalise (letters and digits only), and
is still quoted here: nothing a user types is FTS5 or tsquery syntax.
"""

from __future__ import annotations

import datetime as dt
import json

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, IntegerField, Lookup, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from postdesk.desk.profile import time_zone_of
from postdesk.desk.search.index import TABLE, VECTORS
from postdesk.desk.search.query import ParsedQuery, Term
from postdesk.models import Attachment, Request

_COLUMN = {"any": None, "from": "sender", "to": "recipients"}
LISTED_AT_MOST = 20_000  # matching requests passed on as a list (_text); more stay a subquery


def condition(parsed: ParsedQuery, user=None) -> Q:
    """The filter on Request for this query; Q(pk__in=[]) when it can match nothing."""
    if parsed.empty:
        return Q(pk__in=[]) if parsed.ignored else Q()
    if parsed.number_or_text is not None:
        return Q(pk=parsed.number_or_text) | _text(parsed.terms)
    result = Q()
    if parsed.terms:
        result &= _text(parsed.terms)
    for part in _operators(parsed, user):
        result &= part
    return result


def _text(terms: tuple[Term, ...]) -> Q:
    """The requests whose document matches: looked up once, here, as a list of numbers.

    A queue page asks twice (its count, and its rows in order): as a subquery the match
    would run twice, and a phrase re-reads each candidate's document (bench/desk.py: 100 ms
    a time on PostgreSQL at 100,000 requests). A match too big to list stays a subquery:
    most requests match, and walking the queue's order finds a page at once."""
    sql, params = _match_sql(terms)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} LIMIT {LISTED_AT_MOST + 1}", params)
        found = [row[0] for row in cursor.fetchall()]
    if len(found) > LISTED_AT_MOST:
        return Q(pk__in=RawSQL(sql, params))
    return Q(pk__one_of=found)


@IntegerField.register_lookup
class OneOf(Lookup):
    """`pk__one_of=[...]`: a list of numbers as one parameter, whatever its length (an
    `__in` makes a parameter of each). PostgreSQL: `= ANY(array)`, which it checks by a
    hash or answers from the index, and plans with the list's true length."""

    lookup_name = "one_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*params, json.dumps([int(n) for n in self.rhs])]

    def as_postgresql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", [*params, [int(n) for n in self.rhs]]


def _match_sql(terms: tuple[Term, ...]) -> tuple[str, list[str]]:
    """The SELECT of the matching request numbers, and its parameters."""
    if connection.vendor == "postgresql":
        by_vector: dict[str, list[str]] = {}
        for term in terms:
            by_vector.setdefault(VECTORS[_COLUMN[term.field]], []).append(_tsquery(term))
        where = " AND ".join(f"{vector} @@ %s::tsquery" for vector in by_vector)
        return f"SELECT request_id FROM {TABLE} WHERE {where}", [" & ".join(q) for q in by_vector.values()]
    return f"SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH %s", [" AND ".join(_fts5(t) for t in terms)]


def _fts5(term: Term) -> str:
    column = _COLUMN[term.field]
    spellings = []
    for phrase in term.spellings:
        text = '"' + " ".join(phrase).replace('"', '""') + '"' + (" *" if term.prefix else "")
        spellings.append(f"{column} : {text}" if column else text)
    return "(" + " OR ".join(spellings) + ")"


def _tsquery(term: Term) -> str:
    """The term in the tsquery of its own vector (index.VECTORS), so no weight to check."""
    spellings = []
    for phrase in term.spellings:
        words = [_lexeme(w) + (":*" if term.prefix and i == len(phrase) - 1 else "") for i, w in enumerate(phrase)]
        spellings.append("(" + " <-> ".join(words) + ")")
    return "(" + " | ".join(spellings) + ")"


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _operators(parsed: ParsedQuery, user) -> list[Q]:
    parts = []
    if parsed.statuses:
        parts.append(Q(status__in=parsed.statuses))
    for name in parsed.tags:  # each its own subquery: tag:a tag:b is both tags
        parts.append(Q(Exists(Request.tags.through.objects.filter(request=OuterRef("pk"), tag__name=name))))
    if parsed.assignees:
        parts.append(_any(_assignee(a, user) for a in parsed.assignees))
    if parsed.mailboxes:
        parts.append(_any(Q(mailbox__name__iexact=m) for m in parsed.mailboxes))
    if parsed.priorities:
        parts.append(Q(priority__in=parsed.priorities))
    if parsed.has_attachment:
        parts.append(Q(Exists(Attachment.objects.filter(message__request=OuterRef("pk")))))
    if parsed.before:
        parts.append(Q(created_at__lt=_midnight(parsed.before, user)))
    if parsed.after:
        parts.append(Q(created_at__gte=_midnight(parsed.after, user)))
    if parsed.numbers:
        parts.append(Q(pk__in=parsed.numbers))
    return parts


def _any(conditions) -> Q:
    result = Q(pk__in=[])
    for c in conditions:
        result |= c
    return result


def _assignee(name: str, user) -> Q:
    if name == "me":
        return Q(assignee=user) if user is not None and user.is_authenticated else Q(pk__in=[])
    if name in ("none", "nobody"):
        return Q(assignee__isnull=True)
    field = get_user_model().USERNAME_FIELD
    return Q(**{f"assignee__{field}__iexact": name}) | Q(assignee__first_name__iexact=name)


def _midnight(day: dt.date, user) -> dt.datetime:
    """The start of `day` in the member's time zone (the server's if they chose none)."""
    zone = (time_zone_of(user) if user is not None and user.is_authenticated else None) or timezone.get_default_timezone()
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def requests(parsed: ParsedQuery, user=None):
    return Request.objects.filter(condition(parsed, user))
