"""Every time on a page, one way: `{% desk_time value %}` (or `{% desk_time value "relative" %}`).

It prints <time datetime="ISO 8601 with offset" title="absolute time, zone">shown</time>, in the
reader's time zone (activated per request by web.timezones.ReaderTimeZoneMiddleware from
desk.profile.time_zone_of). "relative" shows "5 minutes ago" with the absolute time on
hover, for the queue's last activity; the default shows the absolute time."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

SHOWN = "%Y-%m-%d %H:%M"


def absolute(moment: datetime) -> str:
    """'2026-12-01 15:04 CET (Europe/Berlin)': the hover text."""
    zone = timezone.get_current_timezone_name()
    abbreviation = moment.strftime("%Z")
    named = f" ({zone})" if zone and zone != abbreviation else ""
    return f"{moment.strftime(SHOWN)} {abbreviation}{named}".strip()


@register.simple_tag
def desk_time(value, style: str = "absolute"):
    if not isinstance(value, datetime):
        return ""
    moment = timezone.localtime(value) if timezone.is_aware(value) else value
    shown = naturaltime(value) if style == "relative" else moment.strftime(SHOWN)
    return format_html('<time datetime="{}" title="{}">{}</time>', moment.isoformat(timespec="seconds"), absolute(moment), shown)
