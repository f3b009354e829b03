"""Who else has a request open: "anna is viewing", "anna is replying".

The request page's polling (live.js, every 1.5 s while the tab is visible) sends a
heartbeat every 10 s, and at once when its reply box starts or stops being typed
in.  Heartbeats are `Presence` rows in the database, so every web host (and every
waitress thread) sees the same; a row older than EXPIRES counts for nothing and is
deleted by the next heartbeat on that request.  Leaving the page (pagehide) deletes
one's own row at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from postdesk.models import Presence, Request

EXPIRES = timedelta(seconds=30)


@dataclass(frozen=True)
class Present:
    name: str
    replying: bool

    def as_dict(self) -> dict:
        return {"name": self.name, "replying": self.replying}


def beat(user, req: Request, *, replying: bool) -> None:
    """`user` has `req` open (and is typing a reply when `replying`)."""
    now = timezone.now()
    if not Presence.objects.filter(user=user, request=req).update(seen_at=now, replying=replying):
        try:
            with transaction.atomic():  # a savepoint: two tabs may insert at once
                Presence.objects.create(user=user, request=req, seen_at=now, replying=replying)
        except IntegrityError:
            Presence.objects.filter(user=user, request=req).update(seen_at=now, replying=replying)
    Presence.objects.filter(request=req, seen_at__lt=now - EXPIRES).delete()


def leave(user, req: Request) -> None:
    Presence.objects.filter(user=user, request=req).delete()


def others(req: Request, user) -> list[Present]:
    """Everyone but `user` with `req` open now, by name."""
    rows = (Presence.objects.filter(request=req, seen_at__gte=timezone.now() - EXPIRES)
            .exclude(user=user).select_related("user").order_by("user__username"))
    return [Present(row.user.get_username(), row.replying) for row in rows]
