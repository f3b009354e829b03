"""One pass over a mailbox: the pipeline's stages in their order.

    leases.RowLease(mailbox).claim()   one fetcher per mailbox: the others skip it ("busy")
    source.list()                      what is there, by source key
    source.fetch(batch)                exact bytes, nothing changed at the server
    intake.take(batch)                 COMMIT raw bytes + intake rows
    source.acknowledge(batch)          only now: keep / seen / move / delete
    intake.mark_acknowledged(...)      remember that the source let go
    process.Processor(mailbox).step()  parse, thread, route, apply (one transaction a batch)
    lease.release()                    also on errors; a dead holder's lease is taken over at once

A crash between any two lines loses nothing (the source still has what we
have not committed) and duplicates nothing (intake rows are unique on the
source key; messages on their fingerprint).  Re-running the pass finishes
whatever the last one left: acknowledgements not yet done, rows not yet
processed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from postdesk import crashpoints, identity, intake, leases, metrics, process
from postdesk.models import Mailbox
from postdesk.process import parallel
from postdesk.process.apply import Applied
from postdesk.sources import SourceError, classify_error, open_source
from postdesk.store import blobs

log = logging.getLogger("postdesk.pipeline")

BATCH_MESSAGES = 100
BATCH_BYTES = 32 * 1024 * 1024  # a batch of fetched bytes held in memory at most (plus one message)


FETCH_LEASE = timedelta(minutes=2)  # one fetcher per mailbox; renewed while the pass runs
HEARTBEAT_EVERY = 30.0  # seconds between renewals by the heartbeat thread (a long batch, a slow server)
# Failures on our side, not the server's: `postdesk fetch` exits non-zero for them.
LOCAL_KINDS = frozenset({"disk", "database", "internal"})


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
    # Another fetcher (a second `fetch`, the worker, another host) held the
    # mailbox: skipped, and not a failure; the text says who.
    busy: str | None = None
    created_numbers: list[int] = field(default_factory=list)

    @property
    def status(self) -> str:
        """"ok", "busy" (skipped: someone else is fetching it) or "failed"."""
        return "busy" if self.busy else "failed" if self.error is not None else "ok"

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
        data = {k: v for k, v in self.__dict__.items() if k != "created_numbers"}
        data["status"] = self.status
        return data


Progress = Callable[[str, int, int], None]


def fetch_mailbox(
    mailbox: Mailbox,
    progress: Progress | None = None,
    process_now: bool = True,
    should_stop: Callable[[], bool] | None = None,
    slot: AbstractContextManager | None = None,
) -> MailboxReport:
    """Fetch, store, acknowledge and process one mailbox; errors end up in the report
    (this never raises, but for the crash points of the tests).

    Only one fetcher at a time: the pass holds the mailbox's fetch lease
    (postdesk.leases) from start to end, and a mailbox someone else is fetching
    is skipped with `report.busy` saying who.  `slot` (the worker's connection
    semaphore) is held only while the connection is open.  `should_stop` is
    asked between batches (the worker's shutdown): what is in hand is finished
    and acknowledged, the rest waits at the source."""
    report = MailboxReport(mailbox.name)
    lease = leases.RowLease(Mailbox, mailbox.pk, "fetch_lease_", FETCH_LEASE)
    try:
        claimed = lease.claim()
    except Exception as exc:  # the database itself (locked, disk full): a failed pass like any other
        _fail(report, exc, mailbox)
        _record_health_quietly(mailbox, report)
        return report
    if isinstance(claimed, leases.Busy):
        report.busy = busy_message(mailbox, claimed)
        log.info(report.busy, extra={"mailbox": mailbox.name})
        return report
    heartbeat = leases.Heartbeat(lease, HEARTBEAT_EVERY)
    heartbeat.start()
    try:
        _fetch(mailbox, report, lease, progress, process_now, should_stop, slot)
    finally:
        heartbeat.stop()
        try:
            lease.release()
        except Exception:  # it runs out by itself; our pid's death frees it at once
            log.warning("mailbox %s: fetch lease not released", mailbox.name)
    _record_health_quietly(mailbox, report)
    return report


def busy_message(mailbox: Mailbox, busy: leases.Busy) -> str:
    return f"mailbox {mailbox.name} is being fetched by pid {busy.pid} on host {busy.host}"


def _fetch(mailbox: Mailbox, report: MailboxReport, lease: leases.RowLease, progress: Progress | None,
           process_now: bool, should_stop: Callable[[], bool] | None, slot: AbstractContextManager | None) -> None:
    processor = None
    try:
        Mailbox.objects.filter(pk=mailbox.pk).update(last_attempt_at=timezone.now())
        processor = process.Processor(mailbox.pk) if process_now else None
        with slot if slot is not None else nullcontext():
            acked = _read_source(mailbox, report, lease, progress, processor, should_stop)
        intake.mark_acknowledged(mailbox, acked)
    except crashpoints.CrashInjected:
        raise
    except Exception as exc:  # one bad mailbox must never stop the others
        _fail(report, exc, mailbox)
    if processor is not None:
        try:
            # What was stored is processed even when the source failed half-way.
            for outcome in processor.drain():
                report.count(outcome)
        except crashpoints.CrashInjected:
            raise
        except Exception as exc:  # the rows stay pending; the next pass or `postdesk process` takes them
            processor.abandon()
            if report.error is None:
                _fail(report, exc, mailbox)


def _read_source(mailbox: Mailbox, report: MailboxReport, lease: leases.RowLease, progress: Progress | None,
                 processor, should_stop: Callable[[], bool] | None) -> list[str]:
    """Connect, run the stages, close: the connection (and its slot) lives only here.
    Returns the keys whose acknowledgement became final by closing (POP3 QUIT)."""
    source = open_source(mailbox)
    try:
        fenced = FencedSource(source, mailbox, lease, identity.track(mailbox, source))
        _run(mailbox, fenced, report, progress, processor, should_stop)
        lease.check()  # POP3 deletes at QUIT: not for a pass whose lease was taken over
        acked = source.close()
    except BaseException:
        _close_quietly(source)
        raise
    return acked


class FencedSource:
    """The source as one pass sees it: every acknowledgement is fenced by the fetch
    lease (a pass that stalled past its lease and was taken over stops before it
    changes anything more at the server), and after a UIDVALIDITY change a
    fetched message whose bytes we already hold under its old key takes that
    row over instead of becoming a second one (postdesk.identity)."""

    def __init__(self, source, mailbox: Mailbox, lease: leases.RowLease, numbering: identity.Numbering | None):
        self._source, self._mailbox, self._lease, self._numbering = source, mailbox, lease, numbering

    def __getattr__(self, name):
        return getattr(self._source, name)

    def list(self) -> list:
        listing = self._source.list()
        if self._numbering is not None:
            identity.recognise(self._mailbox, self._numbering, self._source, listing)
        return listing

    def fetch(self, keys: list[str]):
        if self._numbering is None:
            yield from self._source.fetch(keys)
            return
        batch: list = []
        try:
            for item in self._source.fetch(keys):
                batch.append(item)
        except Exception:
            # Cut off mid-batch: what did arrive (a too-large liar among it) is
            # still handed on, so it is stored before the error ends the pass.
            identity.rekey_by_content(self._mailbox, self._numbering, batch)
            yield from batch
            raise
        identity.rekey_by_content(self._mailbox, self._numbering, batch)
        yield from batch

    def acknowledge(self, keys: list[str]) -> list[str]:
        if keys:
            self._lease.check()
        return self._source.acknowledge(keys)


def _fail(report: MailboxReport, exc: BaseException, mailbox: Mailbox) -> None:
    error = _classify(exc, mailbox)
    report.error, report.error_kind = error.message, error.kind
    # A traceback only for what nobody recognised: a known network failure, a
    # full disk or a locked database is said in one line.
    if error.kind == "internal" or (error.kind == "protocol" and not isinstance(exc, SourceError)):
        log.exception("mailbox %s: unexpected failure", mailbox.name)


def failed_pass(mailbox_id: int, name: str, exc: BaseException) -> MailboxReport:
    """The report of a pass that raised around fetch_mailbox (the worker's runner:
    the database or the disk failing), with its health recorded if that can be done."""
    report = MailboxReport(name)
    full = blobs.disk_full(exc)
    report.error_kind = "disk" if full else "database" if isinstance(exc, DatabaseError) else "internal"
    report.error = full or f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    try:
        _record_health(Mailbox(pk=mailbox_id, name=name), report)
    except Exception:  # the database is what failed; the caller logs the one line
        pass
    return report


def _classify(exc: BaseException, mailbox: Mailbox) -> SourceError:
    """A SourceError with its kind: the server's problem (sources.classify_error),
    the data dir's disk, the database, a lost lease, or our own bug ("internal")."""
    full = blobs.disk_full(exc)
    if full is not None:
        return SourceError("disk", full)
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, leases.LeaseLost):
        return SourceError("lease", f"stopped: this pass stalled past its lease and another fetcher took {mailbox.name} over")
    if isinstance(exc, DatabaseError):  # locked, gone: ours, and passing; no traceback
        return SourceError("database", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    return classify_error(exc, mailbox)


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
        fetched, failure = _fetch_batch(source, [item.key for item in batch])
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


def _fetch_batch(source, keys: list[str]) -> tuple[list, Exception | None]:
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
    """Health on the Mailbox row (and the error metric), for every pass but a busy one:
    a skipped mailbox neither succeeded nor failed."""
    now = timezone.now()
    if report.busy:
        return
    if report.error is None:
        Mailbox.objects.filter(pk=mailbox.pk).update(last_success_at=now, consecutive_failures=0, last_error="",
                                                     last_error_kind="")
    else:
        metrics.FETCH_ERRORS.labels(mailbox.name, report.error_kind or "error").inc()
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_error=f"{report.error_kind}: {report.error}"[:500],
            last_error_kind=(report.error_kind or "")[:20],
            last_error_at=now,
            consecutive_failures=F("consecutive_failures") + 1,
        )


def _record_health_quietly(mailbox: Mailbox, report: MailboxReport) -> None:
    try:
        _record_health(mailbox, report)
    except Exception as exc:  # the database is what failed: the report still says so, the log once
        log.warning("mailbox %s: health not recorded: %s", mailbox.name, exc)


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
