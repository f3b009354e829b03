"""One pass over a mailbox: the pipeline's stages in their order.

    source.list()                      what is there, by source key
    source.fetch(batch)                exact bytes, nothing changed at the server
    intake.take(batch)                 COMMIT raw bytes + intake rows
    source.acknowledge(batch)          only now: keep / seen / move / delete
    intake.mark_acknowledged(...)      remember that the source let go
    process.Processor(mailbox).step()  parse, thread, route, apply (one transaction a batch)

A crash between any two lines loses nothing (the source still has what we
have not committed) and duplicates nothing (intake rows are unique on the
source key; messages on their fingerprint).  Re-running the pass finishes
whatever the last one left: acknowledgements not yet done, rows not yet
processed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import F
from django.utils import timezone

from postdesk import crashpoints, intake, process
from postdesk.models import Mailbox
from postdesk.process import parallel
from postdesk.process.apply import Applied
from postdesk.sources import SourceError, classify_error, open_source

log = logging.getLogger("postdesk.pipeline")

BATCH_MESSAGES = 100
BATCH_BYTES = 32 * 1024 * 1024  # a batch of fetched bytes held in memory at most (plus one message)


@dataclass
class MailboxReport:
    mailbox: str
    listed: int = 0
    fetched: int = 0
    created: int = 0
    threaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    error: str | None = None
    error_kind: str | None = None
    created_numbers: list[int] = field(default_factory=list)

    def count(self, outcome) -> None:
        if isinstance(outcome, process.Quarantined):
            self.quarantined += 1
        elif isinstance(outcome, Applied):
            if outcome.outcome == "created":
                self.created += 1
                self.created_numbers.append(outcome.request_number)
            elif outcome.outcome == "threaded":
                self.threaded += 1
            elif outcome.outcome == "duplicate":
                self.duplicates += 1

    def outcome_line(self) -> str:
        return f"created {self.created}, threaded {self.threaded}, duplicates {self.duplicates}, quarantined {self.quarantined}"

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "created_numbers"}


Progress = Callable[[str, int, int], None]


def fetch_mailbox(
    mailbox: Mailbox,
    progress: Progress | None = None,
    process_now: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> MailboxReport:
    """Fetch, store, acknowledge and process one mailbox; errors end up in the report.

    `should_stop` is asked between batches (the worker's shutdown): what is in
    hand is finished and acknowledged, the rest waits at the source."""
    report = MailboxReport(mailbox.name)
    Mailbox.objects.filter(pk=mailbox.pk).update(last_attempt_at=timezone.now())
    source = None
    processor = process.Processor(mailbox.pk) if process_now else None
    try:
        source = open_source(mailbox)
        _run(mailbox, source, report, progress, processor, should_stop)
        acked = source.close()
        source = None
        intake.mark_acknowledged(mailbox, acked)
    except crashpoints.CrashInjected:
        raise
    except Exception as exc:  # one bad mailbox must never stop the others
        error = classify_error(exc, mailbox) if not isinstance(exc, SourceError) else exc
        report.error, report.error_kind = error.message, error.kind
        if error.kind == "protocol" and not isinstance(exc, SourceError):  # a known network failure needs no traceback
            log.exception("mailbox %s: unexpected failure", mailbox.name)
    finally:
        if source is not None:
            _close_quietly(source)
    if processor is not None:
        # What was stored is processed even when the source failed half-way.
        for outcome in processor.drain():
            report.count(outcome)
    _record_health(mailbox, report)
    return report


def _run(mailbox: Mailbox, source, report: MailboxReport, progress: Progress | None, processor,
         should_stop: Callable[[], bool] | None = None) -> None:
    listed_at = timezone.now()
    listing = source.list()
    report.listed = len(listing)
    known = intake.known_keys(mailbox, [item.key for item in listing])
    _acknowledge_leftovers(mailbox, source, known)
    intake.settle_gone(mailbox, {item.key for item in listing}, listed_at)
    new = [item for item in listing if item.key not in known]
    if processor is not None and len(new) >= parallel.POOL_THRESHOLD:
        parallel.warm_up()  # the parsers spawn while the first batch is fetched
    done = 0
    for batch in _batches(new):
        fetched, failure = _fetch(source, [item.key for item in batch])
        taken = intake.take(mailbox, fetched)
        crashpoints.reached("after-intake")
        report.fetched += len(taken.stored) + len(taken.oversized)
        report.quarantined += len(taken.oversized) + len(taken.left)
        if failure is not None:
            # Cut off mid-answer (too slow, too large, gone): the session is no
            # use any more.  What arrived is stored; the next pass acknowledges
            # it (_acknowledge_leftovers) and lists the rest again.
            raise failure
        # Everything we hold durably may now be let go at the source, including
        # keys another worker took first: they are committed too.  Not what was
        # left there as too large (taken.left): it stays untouched.
        acked = source.acknowledge(taken.stored + taken.known + taken.oversized)
        crashpoints.reached("after-acknowledge")
        intake.mark_acknowledged(mailbox, acked)
        if processor is not None:
            for outcome in processor.step():  # applies the previous batch while this one parses
                report.count(outcome)
        done += len(batch)
        if progress:
            progress(mailbox.name, done, len(new))
        if should_stop is not None and should_stop():
            break


def _acknowledge_leftovers(mailbox: Mailbox, source, known: dict[str, bool]) -> None:
    """Messages we already hold but the source still shows: a crash came between
    intake and acknowledgement (or a POP3 session ended before QUIT)."""
    policy = mailbox.after_import
    left = intake.left_at_source(mailbox)  # too large: never moved, deleted or marked
    again = [key for key, acked in known.items() if (not acked or policy in ("move", "delete")) and key not in left]
    if again:
        intake.mark_acknowledged(mailbox, source.acknowledge(again))


def _fetch(source, keys: list[str]) -> tuple[list, Exception | None]:
    """What the source gave before an error, and the error: the pass ends after
    storing what did arrive."""
    fetched: list = []
    try:
        for item in source.fetch(keys):
            fetched.append(item)
    except Exception as exc:
        return fetched, exc
    return fetched, None


def _batches(items: list) -> list[list]:
    batches, current, size = [], [], 0
    for item in items:
        current.append(item)
        size += item.size or 0
        if len(current) >= BATCH_MESSAGES or size >= BATCH_BYTES:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def _record_health(mailbox: Mailbox, report: MailboxReport) -> None:
    now = timezone.now()
    if report.error is None:
        Mailbox.objects.filter(pk=mailbox.pk).update(last_success_at=now, consecutive_failures=0, last_error="")
    else:
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_error=f"{report.error_kind}: {report.error}"[:500],
            last_error_at=now,
            consecutive_failures=F("consecutive_failures") + 1,
        )


def _close_quietly(source) -> None:
    try:
        source.close()
    except Exception:  # the session is already broken; a POP3 rollback is expected here
        pass


def fetch_all(names: list[str] | None = None, progress: Progress | None = None, process_now: bool = True) -> list[MailboxReport]:
    mailboxes = Mailbox.objects.filter(enabled=True).select_related("assign_to")
    if names:
        mailboxes = Mailbox.objects.filter(name__in=names).select_related("assign_to")
    return [fetch_mailbox(mailbox, progress, process_now) for mailbox in mailboxes]
