"""When a snooze ends: the quick choices ("tomorrow 9:00", "in 3 days", "next week") and a
date and time the agent picked, read in the agent's own time zone (desk.profile).

The move itself (pending with snooze_until, and waking) is desk.status; this module only
turns what the form said into an aware datetime, or says in words why it cannot."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from django.utils import timezone

from postdesk.desk import profile

MORNING = time(9, 0)  # agents come back to a snoozed request at the start of a working day
# The quick choices, in the order the page shows them: (value, label).
QUICK = (("tomorrow", "tomorrow 9:00"), ("3days", "in 3 days"), ("week", "next week"))
MAX_AHEAD = timedelta(days=366)  # a date further out is a typo (2062 for 2026), not a plan


class SnoozeError(ValueError):
    """A snooze time the form cannot mean; the message says why, in words."""


@dataclass(frozen=True)
class SnoozeChoice:
    until: datetime | None  # None: waiting without a time, until the customer answers


def zone_of(user) -> tzinfo:
    """The agent's time zone, or the server's."""
    return profile.time_zone_of(user) or timezone.get_default_timezone()


def quick(choice: str, now: datetime, zone: tzinfo) -> datetime:
    """A quick choice: tomorrow 9:00, three days from today 9:00, or next Monday 9:00."""
    today = timezone.localtime(now, zone).date()
    days = {"tomorrow": 1, "3days": 3, "week": 7 - today.weekday()}.get(choice)
    if days is None:
        raise SnoozeError(f"unknown snooze choice {choice!r}")
    return datetime.combine(today + timedelta(days=days), MORNING, tzinfo=zone)


def picked(value: str, now: datetime, zone: tzinfo) -> datetime:
    """A date and time from <input type=datetime-local> ("2026-12-03T09:00"), in `zone`."""
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SnoozeError(f"not a date and time: {value!r}") from None
    if naive.tzinfo is not None:
        raise SnoozeError("a snooze time is given without a time zone offset")
    until = naive.replace(tzinfo=zone)
    if until <= now:
        raise SnoozeError("the snooze time has already passed: pick a later one")
    if until - now > MAX_AHEAD:
        raise SnoozeError("the snooze time is more than a year away: check the year")
    return until


def read(form, user, now: datetime | None = None) -> SnoozeChoice:
    """What a "Waiting on customer" form asks for: a quick choice wins over the picker;
    neither means waiting until the customer answers."""
    now = now or timezone.now()
    zone = zone_of(user)
    if form.get("snooze"):
        return SnoozeChoice(quick(form["snooze"], now, zone))
    if form.get("until", "").strip():
        return SnoozeChoice(picked(form["until"], now, zone))
    if form.get("pick"):  # the picker's own button, with no date picked
        raise SnoozeError("pick the date and time it should come back on")
    return SnoozeChoice(None)


def in_words(until: datetime, zone: tzinfo | None = None) -> str:
    """ "3 Dec 09:00 UTC": for the history and the page (the year only when it is not this one)."""
    local = timezone.localtime(until, zone or timezone.get_default_timezone())
    year = "" if local.year == timezone.localtime(timezone.now(), local.tzinfo).year else f" {local.year}"
    name = local.tzname() or (local.tzinfo.key if isinstance(local.tzinfo, zoneinfo.ZoneInfo) else "")
    return f"{local.day} {local:%b}{year} {local:%H:%M} {name}".rstrip()
