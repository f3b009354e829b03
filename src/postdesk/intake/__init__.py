"""Intake: the durable hand-off between a source and the rest of the pipeline.

take() stores a batch of fetched messages: raw bytes first (blob store), then
one Intake row each, unique on (mailbox, source key), in one transaction.  Only
after it returns may the source be told to let go of those messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from postdesk.models import Intake, Mailbox
from postdesk.sources import Fetched, TooLarge
from postdesk.sizes import describe_over, describe_size
from postdesk.store import blobs


@dataclass
class TakeResult:
    stored: list[str] = field(default_factory=list)  # newly taken keys
    known: list[str] = field(default_factory=list)  # taken before (by us or another worker)
    oversized: list[str] = field(default_factory=list)  # taken, and quarantined for size
    # Too large to download: a placeholder row with the headers, quarantined; the
    # message stays at the source, so these are never acknowledged.
    left: list[str] = field(default_factory=list)


def take(mailbox: Mailbox, batch: list[Fetched | TooLarge]) -> TakeResult:
    """Store a batch.  A TooLarge item (announced over the limit, not downloaded)
    gets a row whose raw blob is its header slice, so staff see who sent what,
    marked left_at_source and quarantined: the caller must not acknowledge it."""
    result = TakeResult()
    if not batch:
        return result
    with transaction.atomic():
        raw_blobs = blobs.put_many([item.headers if isinstance(item, TooLarge) else item.raw for item in batch])
        taken_before = set(known_keys(mailbox, [item.key for item in batch]))
        rows = []
        for item, blob in zip(batch, raw_blobs, strict=True):
            if item.key in taken_before:
                if not isinstance(item, TooLarge):  # a placeholder is never acknowledged, even then
                    result.known.append(item.key)
                continue
            if isinstance(item, TooLarge):
                rows.append(_left_row(mailbox, item, blob))
                result.left.append(item.key)
                continue
            over = len(item.raw) > mailbox.size_limit
            rows.append(_row(mailbox, item, blob, over))
            (result.oversized if over else result.stored).append(item.key)
        try:
            # One INSERT for the batch; a savepoint, so a clash can fall back to row by row.
            with transaction.atomic():
                Intake.objects.bulk_create(rows)
        except IntegrityError:
            # Another worker took some of these keys meanwhile: the unique key says which.
            result.stored, result.oversized, result.left = [], [], []
            for row in rows:
                try:
                    with transaction.atomic():
                        row.pk = None
                        row.save(force_insert=True)
                except IntegrityError:
                    if not row.left_at_source:
                        result.known.append(row.source_key)
                    continue
                if row.left_at_source:
                    result.left.append(row.source_key)
                else:
                    (result.oversized if row.status == Intake.Status.QUARANTINED else result.stored).append(row.source_key)
    return result


def _row(mailbox: Mailbox, item: Fetched, blob, over: bool) -> Intake:
    return Intake(
        mailbox=mailbox,
        source_key=item.key,
        raw_id=blob.sha256,
        size=len(item.raw),
        server_date=item.server_date,
        status=Intake.Status.QUARANTINED if over else Intake.Status.PENDING,
        quarantine_reason=_size_reason(len(item.raw), mailbox.size_limit) if over else "",
        # No complete pass yet: this mail was waiting when the mailbox was connected.
        backlog=mailbox.last_success_at is None,
    )


def _left_row(mailbox: Mailbox, item: TooLarge, headers_blob) -> Intake:
    return Intake(
        mailbox=mailbox,
        source_key=item.key,
        raw_id=headers_blob.sha256,
        size=item.announced_size,
        server_date=item.server_date,
        status=Intake.Status.QUARANTINED,
        quarantine_reason=left_reason(item),
        left_at_source=True,
        backlog=mailbox.last_success_at is None,
    )


def left_reason(item: TooLarge) -> str:
    if item.lied:
        return f"too large (more than the {describe_size(item.announced_size)} announced): left on the server"
    return f"too large ({describe_size(item.announced_size)}): left on the server"


def left_at_source(mailbox: Mailbox) -> set[str]:
    """The keys of this mailbox's messages left at the source: never to be acknowledged."""
    return set(Intake.objects.filter(mailbox=mailbox, left_at_source=True).values_list("source_key", flat=True))


def mark_acknowledged(mailbox: Mailbox, keys: list[str]) -> None:
    for start in range(0, len(keys), 500):
        Intake.objects.filter(mailbox=mailbox, source_key__in=keys[start : start + 500], acknowledged_at=None).update(
            acknowledged_at=timezone.now()
        )


SETTLE_MARGIN = timedelta(minutes=1)


def settle_gone(mailbox: Mailbox, listed_keys: set[str], listed_at) -> int:
    """Rows never recorded as acknowledged whose message the source no longer
    lists: a kill came after the server let go (MOVE, DELETE, POP3 QUIT) and
    before we wrote it down.  The source is done with them; say so.

    Only rows taken well before the listing (SETTLE_MARGIN, for clocks of
    several hosts): a row another worker took after it was listed is simply
    not in this listing yet, and must keep its acknowledgement pending.  There
    are few such rows (a batch per crash), so they are read, not searched for."""
    candidates = Intake.objects.filter(mailbox=mailbox, acknowledged_at=None, fetched_at__lt=listed_at - SETTLE_MARGIN)
    gone = [pk for pk, key in candidates.values_list("pk", "source_key") if key not in listed_keys]
    if gone:
        Intake.objects.filter(pk__in=gone, acknowledged_at=None).update(acknowledged_at=timezone.now())
    return len(gone)


def known_keys(mailbox: Mailbox, keys: list[str]) -> dict[str, bool]:
    """{key: acknowledged?} for the keys already taken from this mailbox."""
    found: dict[str, bool] = {}
    for start in range(0, len(keys), 500):
        rows = Intake.objects.filter(mailbox=mailbox, source_key__in=keys[start : start + 500]).values_list(
            "source_key", "acknowledged_at"
        )
        found.update((key, acked is not None) for key, acked in rows)
    return found


def _size_reason(size: int, limit: int) -> str:
    return f"over the size limit: {describe_over(size, limit)} (re-run to import it anyway)"
