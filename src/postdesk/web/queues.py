"""The queues: which requests each one holds, and the counts in the top bar (also
polled by live.js, web/live.py)."""

from __future__ import annotations

from django.db.models import Count, Q

from postdesk.models import Mailbox, Request

OPEN = ~Q(status=Request.Status.CLOSED)

QUEUES = {
    "general": "General",
    "mine": "Mine",
    "all": "All",
}


def queue_filter(queue: str, user) -> Q:
    if queue == "general":
        return Q(assignee__isnull=True) & OPEN
    if queue == "mine":
        return Q(assignee=user) & OPEN
    return Q()


def nav_counts(user) -> dict[str, int]:
    """The counts in the top bar, by key: each queue, and "mailbox:NAME" (also polled by live.js)."""
    counts = Request.objects.aggregate(
        general=Count("pk", filter=queue_filter("general", user)),
        mine=Count("pk", filter=queue_filter("mine", user)),
        all=Count("pk"),
    )
    for name, count in Mailbox.objects.annotate(count=Count("requests")).values_list("name", "count"):
        counts[f"mailbox:{name}"] = count
    return counts
