"""Times in the reader's own time zone: the zone from their profile (desk.profile), made
current for the request, so templates and desk_time show local times. No profile or an
unknown zone: the server's (settings.TIME_ZONE)."""

from __future__ import annotations

from django.utils import timezone

from postdesk.desk.profile import time_zone_of


class ReaderTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        zone = time_zone_of(user) if user is not None and user.is_authenticated else None
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()  # a worker thread serves the next reader with no zone left over
