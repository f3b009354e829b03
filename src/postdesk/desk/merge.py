"""Merging one request into another: the customer wrote twice about one thing.

Merging A into B moves A's messages (their attachments with them), its history and its
tags to B; A keeps only its number, points to B (merged_into) and is closed, and both
histories say so. Mail that later names A finds B: a reply's References name a message
that now lives in B, and a subject tag [PD-A] is followed along merged_into
(`final_target`, also across chains: A into B, then B into C).

Requests of two customers are merged only when the agent confirms (`other_customer=True`):
B's customer will then be answered about A's messages too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from postdesk.desk import status as request_status
from postdesk.desk import search
from postdesk.models import Message, Request, RequestEvent

MAX_CHAIN = 50  # merged_into hops followed before giving up (a chain never loops, but a database could)


class MergeRefused(ValueError):
    """A merge that is not done; the message says why, in words."""


@dataclass(frozen=True)
class Merged:
    source: int
    target: int
    changed: bool  # False: it was already merged there
    messages: int  # how many messages moved


def final_target(req: Request) -> Request:
    """The request that holds `req`'s messages now: `req` itself unless it was merged."""
    seen = {req.pk}
    while req.merged_into_id is not None and len(seen) <= MAX_CHAIN:
        nxt = Request.objects.select_related("customer").filter(pk=req.merged_into_id).first()
        if nxt is None or nxt.pk in seen:
            break
        seen.add(nxt.pk)
        req = nxt
    return req


def _locked(*numbers: int) -> dict[int, Request]:
    """The rows locked in number order, so two merges never wait on each other in a circle."""
    rows = Request.objects.select_for_update(of=("self",)).select_related("customer").filter(pk__in=numbers).order_by("pk")
    return {r.pk: r for r in rows}


def _why_not(source: Request, target: Request, other_customer: bool) -> str:
    if source.pk == target.pk:
        return f"#{source.pk} cannot be merged into itself"
    if source.merged_into_id is not None:
        return f"#{source.pk} is already merged into #{source.merged_into_id}"
    if final_target(target).pk == source.pk:
        return f"#{target.pk} is merged into #{source.pk}"
    if source.customer_id != target.customer_id and not other_customer:
        return (f"#{source.pk} and #{target.pk} come from different customers; "
                "confirm to merge them anyway")
    return ""


def merge(source_number: int, target_number: int, actor=None, *, other_customer: bool = False, guard=None) -> Merged:
    """Merge request `source_number` into `target_number` (followed to its final target),
    in one transaction under both row locks. Merging again changes nothing. `guard(source)`,
    when given, runs under the locks first and may raise to refuse (the web's stale-page
    check, as for a reply)."""
    with transaction.atomic():
        target = Request.objects.filter(pk=target_number).first()
        if target is None:
            raise MergeRefused(f"no request #{target_number}")
        target = final_target(target)
        rows = _locked(source_number, target.pk)
        if source_number not in rows:
            raise MergeRefused(f"no request #{source_number}")
        source, target = rows[source_number], rows.get(target.pk, target)
        if guard is not None:
            guard(source)
        if source.merged_into_id == target.pk:
            return Merged(source.pk, target.pk, False, 0)
        reason = _why_not(source, target, other_customer)
        if reason:
            raise MergeRefused(reason)
        return _move(source, target, actor)


def _move(source: Request, target: Request, actor) -> Merged:
    moved = Message.objects.filter(request=source).update(request=target)
    RequestEvent.objects.filter(request=source).update(request=target)
    tags = list(source.tags.all())
    target.tags.add(*tags)
    source.tags.clear()
    source.merged_into = target
    was_closed = source.status == request_status.Status.CLOSED
    request_status.record(source, request_status.close(source, detail=f"closed: merged into #{target.pk}"), actor)
    source.save(update_fields=["merged_into", "status", "snooze_until", "updated_at"])
    RequestEvent.objects.create(request=source, actor=actor, kind="merged", detail=f"merged into #{target.pk}")
    # The work of an open request must not disappear into a closed one.
    reopened = None if was_closed else request_status.reopen(target)
    request_status.record(target, reopened, actor)
    target.save(update_fields=["status", "snooze_until", "updated_at"])
    RequestEvent.objects.create(request=target, actor=actor, kind="merged",
                                detail=f"#{source.pk} merged into this request ({moved} message{'s' if moved != 1 else ''})")
    # The messages' words now belong to the target's document (same transaction).
    search.index_requests([source.pk, target.pk])
    return Merged(source.pk, target.pk, True, moved)
