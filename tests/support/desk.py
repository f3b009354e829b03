"""The hidden fields a request page's forms carry (postdesk.web.staleness): what a page
opened now would send with Reply, Note, Take, Assign, Unassign, Close and Reopen."""

from __future__ import annotations

from postdesk.models import Request
from postdesk.web.staleness import seen_now


def seen(request: Request | int) -> dict[str, str]:
    """The fields of a page rendered now; call it again after a change to stay fresh."""
    pk = request if isinstance(request, int) else request.pk
    return seen_now(Request.objects.get(pk=pk)).as_fields()
