"""A staff member's notification settings: which events, watching the general
queue, and immediately or a digest every N minutes (model NotifyPreference)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from postdesk.models import NotifyPreference

ALL_EVENTS = ("assigned", "customer_wrote", "mentioned", "new_unassigned", "woke")
MAX_DIGEST_MINUTES = 24 * 60


@dataclass(frozen=True)
class Preferences:
    events: frozenset
    watch_general: bool
    digest_minutes: int  # 0: each notification at once

    @property
    def digest(self) -> bool:
        return self.digest_minutes > 0


DEFAULT = Preferences(frozenset(ALL_EVENTS), False, 0)


def of(staff) -> Preferences:
    """The member's settings; without a saved row, every event at once, no watching."""
    row = NotifyPreference.objects.filter(staff=staff).first()
    if row is None:
        return DEFAULT
    return Preferences(frozenset(row.events), row.watch_general, row.digest_minutes)


def save(staff, events: list[str], watch_general: bool, digest_minutes: int) -> Preferences:
    unknown = set(events) - set(ALL_EVENTS)
    if unknown:
        raise ValueError(f"unknown events: {', '.join(sorted(unknown))}")
    if not 0 <= digest_minutes <= MAX_DIGEST_MINUTES:
        raise ValueError(f"a digest every 0 to {MAX_DIGEST_MINUTES} minutes")
    NotifyPreference.objects.update_or_create(
        staff=staff, defaults={"events": sorted(events), "watch_general": watch_general, "digest_minutes": digest_minutes},
    )
    return of(staff)


def watchers() -> list:
    """The active members who watch the general queue (new unassigned requests)."""
    ids = NotifyPreference.objects.filter(watch_general=True).values_list("staff_id", flat=True)
    return list(get_user_model().objects.filter(pk__in=list(ids), is_active=True).order_by("pk"))
