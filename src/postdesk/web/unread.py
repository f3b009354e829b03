"""Unread, per staff member: a request is bold in the queues until they open it
after its last customer message; "customer replied" when that message is not the first.

A `ReadMark(user, request, read_at)` row says up to which customer message a staff
member has read: opening the page stores the time of the request's latest incoming
message (not the web host's clock, so a worker host's clock skew cannot hide a
message).  The queue annotates its rows with subqueries (one SQL statement for the
page of 50 rows, no query per row).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Case, F, Max, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from postdesk.models import Message, ReadMark, Request


def mark_read(user, req: Request) -> None:
    """`user` has now seen everything the customer wrote on `req`."""
    last = req.messages.filter(direction="in").aggregate(last=Max("created_at"))["last"] or timezone.now()
    updated = ReadMark.objects.filter(user=user, request=req).update(read_at=last)
    if updated:
        return
    try:
        with transaction.atomic():  # a savepoint: two tabs opening at once may both insert
            ReadMark.objects.create(user=user, request=req, read_at=last)
    except IntegrityError:
        ReadMark.objects.filter(user=user, request=req).update(read_at=last)


def _incoming(order: str) -> Subquery:
    return Subquery(Message.objects.filter(request=OuterRef("pk"), direction="in").order_by(order).values("created_at")[:1])


def annotate(rows: QuerySet, user) -> QuerySet:
    """Adds `unread` and `customer_replied` (booleans) to each row of a Request queryset."""
    read_at = Subquery(ReadMark.objects.filter(user=user, request=OuterRef("pk")).values("read_at")[:1])
    rows = rows.annotate(last_in=_incoming("-created_at"), first_in=_incoming("created_at"), read_at=read_at)
    unread = Q(last_in__isnull=False) & (Q(read_at__isnull=True) | Q(read_at__lt=F("last_in")))
    return rows.annotate(
        unread=Case(When(unread, then=Value(True)), default=Value(False), output_field=BooleanField()),
        customer_replied=Case(When(unread & Q(last_in__gt=F("first_in")), then=Value(True)), default=Value(False), output_field=BooleanField()),
    )
