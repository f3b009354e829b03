"""Message identity across UIDVALIDITY changes (IMAP).

An IMAP source key is "UIDVALIDITY/UID".  When the server changes UIDVALIDITY,
every key changes, so every message left at the server (after-import "keep" or
"seen") looks new.  Some servers do it in every session; without this module
each poll would download the whole mailbox again and add an intake row per
message (processing then finds them duplicates by fingerprint, so nothing was
ever doubled in the requests, but the intake table grew without end).

What we do, from cheapest to surest:

  recognise        before downloading: a listed message with a new key whose
                   RFC822.SIZE and INTERNALDATE equal those of a row we hold
                   under an older UIDVALIDITY, and whose Message-ID (a header
                   fetch of a few bytes) equals that row's, takes the row over:
                   its source key is updated, nothing is downloaded, no row added
  rekey_by_content after downloading (no Message-ID, a changed date): a message
                   whose bytes (sha256) equal a row under an older UIDVALIDITY
                   takes that row over before intake, so intake sees it as known

A row under an older UIDVALIDITY names a UID that no longer exists, so it can
only ever be taken over, never meant.  Each row is taken over by one key at most.

The changes are tracked on the Mailbox (`uidvalidity`, `uidvalidity_changes`:
ISO times within the last day); after UNSTABLE_AFTER changes in a day the
mailbox is flagged (`identity_unstable_at`): the server gives no stable identity,
and the admin should use after-import move or delete.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.db import IntegrityError, transaction
from django.utils import timezone

from postdesk import intake
from postdesk.models import Intake, Mailbox
from postdesk.sources import Fetched
from postdesk.store import blobs

log = logging.getLogger("postdesk.pipeline")

UNSTABLE_AFTER = 3  # changes within WINDOW
WINDOW = timedelta(hours=24)
UNSTABLE_ADVICE = ("the server changes UIDVALIDITY all the time, so messages have no stable identity: "
                   "use after-import move or delete")
HEADER_BYTES = 64 * 1024  # enough for any sane header block; the Message-ID is read from it
CHUNK = 500  # keys, sizes or blobs per query


@dataclass(frozen=True)
class Numbering:
    """The UIDVALIDITY of this session: keys under any other one are stale."""

    uidvalidity: int

    @property
    def prefix(self) -> str:
        return f"{self.uidvalidity}/"

    def stale_rows(self, mailbox: Mailbox):
        return Intake.objects.filter(mailbox=mailbox).exclude(source_key__startswith=self.prefix)


def track(mailbox: Mailbox, source) -> Numbering | None:
    """Note the session's UIDVALIDITY on the mailbox (a change is timed; the third in
    a day flags the mailbox).  None for sources without one (POP3, Maildir)."""
    uidvalidity = getattr(source, "uidvalidity", None)
    if uidvalidity is None:
        return None
    uidvalidity = int(uidvalidity)
    now = timezone.now()
    row = Mailbox.objects.filter(pk=mailbox.pk).values("uidvalidity", "uidvalidity_changes", "identity_unstable_at").get()
    changes = [t for t in row["uidvalidity_changes"] or [] if _parse(t) and _parse(t) > now - WINDOW]
    changed = row["uidvalidity"] is not None and row["uidvalidity"] != uidvalidity
    if changed:
        changes.append(now.isoformat())
        log.info("UIDVALIDITY changed from %s to %s", row["uidvalidity"], uidvalidity, extra={"mailbox": mailbox.name})
    unstable_at = row["identity_unstable_at"]
    if len(changes) >= UNSTABLE_AFTER and unstable_at is None:
        unstable_at = now
        # Once, when it turns unstable: the flag itself shows on every page and listing.
        log.warning("%s: %s", mailbox.name, UNSTABLE_ADVICE, extra={"mailbox": mailbox.name, "changes": len(changes)})
    elif not changes and unstable_at is not None:
        unstable_at = None  # a whole day without a change
    if changed or row["uidvalidity"] is None or changes != row["uidvalidity_changes"] or unstable_at != row["identity_unstable_at"]:
        Mailbox.objects.filter(pk=mailbox.pk).update(uidvalidity=uidvalidity, uidvalidity_changes=changes,
                                                     identity_unstable_at=unstable_at)
    mailbox.uidvalidity, mailbox.uidvalidity_changes, mailbox.identity_unstable_at = uidvalidity, changes, unstable_at
    return Numbering(uidvalidity)


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


# --- before downloading -------------------------------------------------------------


def recognise(mailbox: Mailbox, numbering: Numbering, source, listing: list) -> int:
    """Re-key the rows of messages we already hold under an older UIDVALIDITY, by size,
    arrival date and Message-ID; returns how many.  Called with the session's listing,
    before it is compared with what we hold."""
    known = intake.known_keys(mailbox, [item.key for item in listing])
    unknown = [item for item in listing if item.key not in known and item.size is not None and item.server_date]
    if not unknown:
        return 0
    stale_rows = numbering.stale_rows(mailbox)
    if not stale_rows.exists():
        return 0
    sizes = sorted({item.size for item in unknown})
    by_shape = defaultdict(list)
    for start in range(0, len(sizes), CHUNK):  # bounded IN lists (SQLite's variable limit)
        rows = stale_rows.filter(size__in=sizes[start : start + CHUNK]).order_by("pk")
        for pk, size, server_date, raw_id in rows.values_list("pk", "size", "server_date", "raw_id"):
            if server_date is not None:
                by_shape[(size, server_date)].append((pk, raw_id))
    candidates = [item for item in unknown if (item.size, item.server_date) in by_shape]
    if not candidates or not hasattr(source, "message_id_headers"):
        return 0
    headers = source.message_id_headers([item.key for item in candidates])
    listed_ids = {key: header_message_id(header) for key, header in headers.items()}
    stored_ids = _stored_message_ids({raw_id for rows in by_shape.values() for _, raw_id in rows})
    moves: dict[int, str] = {}
    for item in candidates:
        message_id = listed_ids.get(item.key)
        if not message_id:
            continue  # nothing to confirm the match with: downloaded, and matched by content then
        rows = by_shape[(item.size, item.server_date)]
        for index, (pk, raw_id) in enumerate(rows):
            if stored_ids.get(raw_id) == message_id:
                moves[pk] = item.key
                del rows[index]
                break
    return _rekey(mailbox, moves, "by size, date and Message-ID")


def _stored_message_ids(raw_ids: set[str]) -> dict[str, str]:
    found = {}
    ordered = sorted(raw_ids)
    for start in range(0, len(ordered), CHUNK):
        for raw_id, head in blobs.read_heads(ordered[start : start + CHUNK], HEADER_BYTES).items():
            found[raw_id] = header_message_id(head)
    return found


def header_message_id(header: bytes) -> str:
    """The Message-ID in a header block, as compared: without <>, spaces or case of the domain."""
    head = header.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    value = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n").get("Message-ID")
    return normal_message_id(str(value)) if value else ""


def normal_message_id(value: str) -> str:
    return "".join(str(value).split()).strip("<>")


# --- after downloading ----------------------------------------------------------------


def rekey_by_content(mailbox: Mailbox, numbering: Numbering, batch: list) -> int:
    """Before intake: a fetched message whose exact bytes we hold under an older
    UIDVALIDITY takes that row over (intake then sees its key as known)."""
    # Nothing held under another UIDVALIDITY (every mailbox that never saw a
    # change): one cheap query, instead of hashing every message of the batch.
    if not batch or not numbering.stale_rows(mailbox).exists():
        return 0
    known = intake.known_keys(mailbox, [item.key for item in batch])
    by_sha = {}
    for item in batch:
        # Only what was downloaded whole: a message left at the source as too large has no bytes to compare.
        if item.key not in known and isinstance(item, Fetched):
            by_sha.setdefault(hashlib.sha256(item.raw).hexdigest(), []).append(item.key)
    if not by_sha:
        return 0
    moves: dict[int, str] = {}
    for pk, raw_id in numbering.stale_rows(mailbox).filter(raw_id__in=list(by_sha)).order_by("pk").values_list("pk", "raw_id"):
        keys = by_sha.get(raw_id)
        if keys:
            moves[pk] = keys.pop(0)
    return _rekey(mailbox, moves, "by content")


def _rekey(mailbox: Mailbox, moves: dict[int, str], how: str) -> int:
    done = 0
    with transaction.atomic():
        for pk, key in moves.items():
            try:
                with transaction.atomic():
                    done += Intake.objects.filter(pk=pk, mailbox=mailbox).update(source_key=key)
            except IntegrityError:  # the key was taken meanwhile (cannot happen under the fetch lease)
                continue
    if done:
        log.info("recognised %d messages after a UIDVALIDITY change (%s)", done, how, extra={"mailbox": mailbox.name})
    return done
