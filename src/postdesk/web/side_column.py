"""What the request page's side column shows (_request_actions.html) besides the request:
its tags, the tag names offered, the priorities, the snooze choices in the viewer's zone.
The page (views.request_page) reads it; the actions are web/request_actions.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from postdesk.desk import snooze, tagging
from postdesk.models import Request, Tag

TAG_SUGGESTIONS = 200  # names offered in the datalist; typing any other name makes it
# History kinds whose detail is a sentence of its own ("reopened by the customer",
# "waiting on the customer until 3 Dec 09:00 UTC"): the page shows the detail alone,
# not "reopened: reopened by the customer".
HISTORY_IN_WORDS = frozenset({"status", "pending", "woke", "reopened", "closed", "assigned", "unassigned",
                              "priority", "tagged", "untagged"})



@dataclass(frozen=True)
class SideColumn:
    """What _request_actions.html needs besides the request itself."""

    tags: list[str]
    tag_names: list[str]
    priorities: list[tuple[int, str]]
    quick_snoozes: tuple[tuple[str, str], ...]
    snoozed_until: str  # "3 Dec 09:00 CET" in the viewer's zone, or ""
    earliest_snooze: str  # the datetime-local picker's min, in the viewer's zone
    history_in_words: frozenset[str] = HISTORY_IN_WORDS


def side_column(user, req: Request) -> SideColumn:
    zone = snooze.zone_of(user)
    soon = timezone.localtime(timezone.now() + timedelta(minutes=1), zone)
    until = snooze.in_words(req.snooze_until, zone) if req.snooze_until and req.status == Request.Status.PENDING else ""
    return SideColumn(
        tags=tagging.names(req),
        tag_names=list(Tag.objects.values_list("name", flat=True)[:TAG_SUGGESTIONS]),
        priorities=list(Request.Priority.choices),
        quick_snoozes=snooze.QUICK,
        snoozed_until=until,
        earliest_snooze=f"{soon:%Y-%m-%dT%H:%M}",
    )
