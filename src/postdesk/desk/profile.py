"""A staff member's own settings: their time zone and their signature (StaffProfile).

No row means the defaults: the server's time zone (TIME_ZONE, POSTDESK_TIME_ZONE) and
no signature. Pages read them through these functions, never the model directly."""

from __future__ import annotations

import zoneinfo

from postdesk.models import StaffProfile


def profile_of(user) -> StaffProfile:
    """The member's profile, unsaved when they have none yet."""
    if user is None or not getattr(user, "pk", None):
        return StaffProfile()
    try:
        return user.desk_profile
    except StaffProfile.DoesNotExist:
        return StaffProfile(staff=user)


def time_zone_of(user) -> zoneinfo.ZoneInfo | None:
    """The member's time zone, or None for the server's."""
    name = profile_of(user).time_zone
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None  # a zone the system no longer knows: the server's, rather than an error page


def valid_time_zone(name: str) -> bool:
    return not name or name in zoneinfo.available_timezones()


def signature_of(user) -> str:
    return profile_of(user).signature


def save(user, **fields) -> StaffProfile:
    """Set some of time_zone and signature."""
    profile, _ = StaffProfile.objects.get_or_create(staff=user)
    for name, value in fields.items():
        if name not in ("time_zone", "signature"):
            raise ValueError(f"not a profile field: {name}")
        setattr(profile, name, value)
    profile.save()
    return profile
