"""One mailbox, fetched on its own schedule in its own thread.

A runner fetches (intake and acknowledge only: processing is the processing
loop's job), then sleeps until the next poll, or until its IDLE watcher says
new mail is there, or, after a failure, for a backoff delay that grows up to
the cap.  A slow or dead mailbox only ever holds its own thread and, while
its connection is open, one of the worker's connection slots.  A mailbox
another fetcher holds (`postdesk fetch`, another host) is looked at again at
the next poll, and is not a failure.  The thread never dies on an exception:
a pass that raises (the database, the disk) is one log line, a backoff and an
error in the mailbox's health.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections, connection

from postdesk import metrics
from postdesk.models import Mailbox
from postdesk.sources import SourceError
from postdesk.worker import backoff
from postdesk.worker.config import WorkerConfig
from postdesk.worker.idle import IdleWatcher
from postdesk.worker.maildir_watch import MaildirWatcher

log = logging.getLogger("postdesk.worker")


class MailboxRunner(threading.Thread):
    def __init__(self, mailbox: Mailbox, stop: threading.Event, config: WorkerConfig,
                 connections: threading.BoundedSemaphore, idle_slots: threading.BoundedSemaphore,
                 on_stored: Callable[[], None]):
        super().__init__(name=f"mailbox:{mailbox.name}", daemon=True)
        self.mailbox_id, self.mailbox_name = mailbox.pk, mailbox.name
        self.version = mailbox.updated_at  # an edit restarts the runner with the new settings
        self.config = config
        self.connections = connections
        self.idle_slots = idle_slots
        self.on_stored = on_stored
        self.worker_stop = stop
        self.stopping = threading.Event()  # this runner only (mailbox edited, disabled or removed)
        self.wake = threading.Event()
        self.watcher: IdleWatcher | MaildirWatcher | None = None
        self.passes = 0  # completed passes (tests wait on it)

    # --- control ------------------------------------------------------------------

    def request_stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def should_stop(self) -> bool:
        return self.stopping.is_set() or self.worker_stop.is_set()

    def new_mail(self) -> None:
        self.wake.set()

    # --- the loop -----------------------------------------------------------------

    def run(self) -> None:
        crashes = 0  # passes in a row that raised (the database or disk, never the server)
        try:
            while not self.should_stop():
                try:
                    mailbox = self._load()
                    if mailbox is None:
                        return
                    self.wake.clear()  # mail announced from here on triggers another pass
                    # request_stop() sets `stopping` before `wake`: a stop that came after the
                    # check above had its wake cleared just now, so look again, or the wait
                    # below would sleep through it (a whole poll interval or backoff delay).
                    if self.should_stop():
                        return
                    report = self._pass(mailbox)
                    self.passes += 1
                    delay = self._after(mailbox, report)
                    crashes = 0
                except Exception as exc:  # this thread never dies: one line, backoff, health
                    crashes += 1
                    delay = self._crashed(exc, crashes)
                self.wake.wait(delay)
        finally:
            self.stopping.set()  # the watcher follows its runner
            connection.close()

    def _load(self) -> Mailbox | None:
        close_old_connections()
        return Mailbox.objects.select_related("assign_to").filter(pk=self.mailbox_id, enabled=True).first()

    def _pass(self, mailbox: Mailbox):
        from postdesk import pipeline

        # The slot is taken inside, only while the connection is open: a pass waiting
        # for the database or parsing holds none.
        report = pipeline.fetch_mailbox(mailbox, process_now=False, should_stop=self.should_stop, slot=self.connections)
        if report.fetched:
            metrics.FETCHED.labels(mailbox.name).inc(report.fetched)
            self.on_stored()
        return report

    def _after(self, mailbox: Mailbox, report) -> float:
        """Log what changed, start push where it can work; the seconds to wait."""
        if report.busy:
            # Another fetcher (`postdesk fetch`, another host) has it: not a failure,
            # try again at the next poll.
            log.info("%s; next look at the next poll", report.busy, extra={"mailbox": mailbox.name})
            return float(mailbox.poll_interval)
        previous = mailbox.consecutive_failures  # as loaded before this pass
        if report.error is None:
            if previous:
                log.warning("mailbox recovered after %d failed passes", previous, extra={"mailbox": mailbox.name, "failures": previous})
            self._start_watcher(mailbox)
            return float(mailbox.poll_interval)
        failures = previous + 1
        wait = backoff.delay(failures, self.config.backoff_base, self.config.backoff_cap)
        what = f"{report.error_kind}: {report.error}"
        advice = "will not fix itself: check the mailbox settings" if report.error_kind in SourceError.PERMANENT else "retrying"
        fields = {"mailbox": mailbox.name, "kind": report.error_kind, "failures": failures, "delay": round(wait, 1)}
        # One error line when the mailbox becomes failing, not one per retry.
        if failures == self.config.failing_after:
            log.error("mailbox failing (%d passes in a row): %s (%s)", failures, what, advice, extra=fields)
        elif failures == 1:
            log.warning("mailbox pass failed: %s (%s)", what, advice, extra=fields)
        else:
            log.info("mailbox pass failed again: %s", what, extra=fields)
        return wait

    def _crashed(self, exc: Exception, crashes: int) -> float:
        """A pass that raised (fetch_mailbox reports errors, so this is the database
        or the disk failing around it): one log line, health if it can be written,
        and a backoff; the thread carries on."""
        from postdesk import pipeline

        wait = backoff.delay(crashes, self.config.backoff_base, self.config.backoff_cap)
        report = pipeline.failed_pass(self.mailbox_id, self.mailbox_name, exc)
        log.warning("mailbox pass failed: %s: %s (retrying)", report.error_kind, report.error,
                    extra={"mailbox": self.mailbox_name, "kind": report.error_kind, "failures": crashes, "delay": round(wait, 1)})
        try:
            connection.close()  # a broken connection is not reused
        except Exception:
            pass
        return wait

    def _start_watcher(self, mailbox: Mailbox) -> None:
        """Push where the source allows it (IMAP IDLE, a Maildir's new/); POP3 only polls."""
        if self.watcher is not None and (self.watcher.is_alive() or self.watcher.unsupported):
            return
        if mailbox.protocol == Mailbox.Protocol.IMAP and self.config.max_idle > 0:
            self.watcher = IdleWatcher(mailbox.pk, mailbox.name, self.new_mail, self.stopping, self.config, self.idle_slots)
        elif mailbox.protocol == Mailbox.Protocol.MAILDIR:
            self.watcher = MaildirWatcher(mailbox.path, mailbox.name, self.new_mail, self.stopping)
        else:
            return
        self.watcher.start()

    @property
    def pushing(self) -> bool:
        """True while an IDLE command is running for this mailbox."""
        return self.watcher is not None and self.watcher.active.is_set()
