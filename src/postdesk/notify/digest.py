"""Digests: for a member who asked for one every N minutes, the events pending
since their last digest go out as one mail.

`send_due_digests()` runs in the worker's sending loop (worker/sending.py): for
each member whose digest is due and who has pending events, one transaction
queues the digest in the outbox, deletes those pending rows and stamps
`last_digest_at`; the sender delivers it like any notification.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from postdesk.models import NotifyPreference, PendingNotification
from postdesk.notify import account, compose
from postdesk.notify.outbox import queue_notification


def send_due_digests(now=None) -> int:
    """Queue every due digest; the number queued."""
    now = now or timezone.now()
    queued = 0
    staff_ids = set(PendingNotification.objects.values_list("staff_id", flat=True))
    for pref in NotifyPreference.objects.filter(staff_id__in=staff_ids, digest_minutes__gt=0).select_related("staff"):
        if _due(pref, now):
            queued += _queue_digest(pref.staff_id, now)
    return queued


def _due(pref: NotifyPreference, now) -> bool:
    return pref.last_digest_at is None or now - pref.last_digest_at >= timedelta(minutes=pref.digest_minutes)


def _queue_digest(staff_id: int, now) -> int:
    with transaction.atomic():
        pref = NotifyPreference.objects.select_for_update().select_related("staff").get(staff_id=staff_id)
        if not _due(pref, now):
            return 0  # another worker sent it meanwhile
        pending = list(PendingNotification.objects.filter(staff_id=staff_id).select_related("request", "request__mailbox"))
        if not pending:
            return 0
        sending = account.sending_for(pending[0].request.mailbox)
        if sending is None or not pref.staff.is_active or not pref.staff.email:
            return 0  # kept for when an account exists
        note = compose.compose_digest([(p.request, p.summary) for p in pending], staff=pref.staff,
                                      from_address=sending.from_address, from_name=sending.from_name)
        queue_notification(note, pref.staff, None, sending, min(p.event_at or p.created_at for p in pending))
        PendingNotification.objects.filter(pk__in=[p.pk for p in pending]).delete()
        pref.last_digest_at = now
        pref.save(update_fields=["last_digest_at"])
    return 1
