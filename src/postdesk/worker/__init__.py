"""`postdesk worker`: every enabled mailbox fetched on its own schedule, until stopped.

    Worker (supervisor, the calling thread)
      ├─ MailboxRunner per enabled mailbox    fetch -> intake -> acknowledge; poll or backoff
      │    └─ IdleWatcher (IMAP with IDLE)    wakes its runner when the server announces mail
      └─ ProcessingLoop                       stored messages -> requests (one thread, parser pool)

The supervisor looks at the mailbox table every few seconds: a new or
re-enabled mailbox gets a runner, an edited one a fresh runner, a disabled or
removed one loses its runner.  Stopping (SIGTERM, SIGINT, or `stop` set by
`postdesk run`) lets each runner finish the batch in hand, closes the
connections and returns within a few seconds.  A kill -9 at any moment is
covered by the pipeline's own guarantees (docs/architecture.md).
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection

from postdesk.models import Mailbox
from postdesk.worker.config import WorkerConfig
from postdesk.worker.processing import ProcessingLoop
from postdesk.worker.runner import MailboxRunner
from postdesk.worker.sending import SendingLoop

log = logging.getLogger("postdesk.worker")

JOIN_SECONDS = 5.0  # for all threads together at shutdown; runners are daemons, so a hung socket cannot hold the exit


class Worker:
    def __init__(self, config: WorkerConfig | None = None, stop: threading.Event | None = None):
        self.config = config or WorkerConfig.from_env()
        self.stop = stop or threading.Event()
        self.connections = threading.BoundedSemaphore(self.config.max_connections)
        self.idle_slots = threading.BoundedSemaphore(max(1, self.config.max_idle))
        self.sending = SendingLoop(self.stop)
        # Acknowledgements are queued by processing: wake the sender then.
        self.processing = ProcessingLoop(self.stop, self.config, on_processed=self.sending.wake.set)
        self.runners: dict[int, MailboxRunner] = {}
        self.ready = threading.Event()  # set once the first runners are started

    def run(self) -> None:
        """Run until `stop` is set."""
        log.info("worker started", extra={"count": Mailbox.objects.filter(enabled=True).count()})
        self.processing.start()
        self.sending.start()
        self.processing.wake.set()  # whatever an earlier run left pending
        try:
            while not self.stop.is_set():
                try:
                    self._reconcile()
                except Exception as exc:  # the database (locked, disk full): the runners go on; look again
                    log.warning("mailboxes not reloaded (%s: %s); again in %.0f s", type(exc).__name__, exc,
                                self.config.reload_every)
                    connection.close()
                self.ready.set()
                self.stop.wait(self.config.reload_every)
        finally:
            self._shut_down()

    def _reconcile(self) -> None:
        """Runners for exactly the enabled mailboxes, each with its current settings."""
        close_old_connections()
        wanted = {m.pk: m for m in Mailbox.objects.filter(enabled=True)}
        connection.close()
        for mailbox_id, runner in list(self.runners.items()):
            current = wanted.get(mailbox_id)
            if current is None or current.updated_at != runner.version or not runner.is_alive():
                runner.request_stop()
                del self.runners[mailbox_id]
        for mailbox_id, mailbox in wanted.items():
            if mailbox_id not in self.runners:
                runner = MailboxRunner(mailbox, self.stop, self.config, self.connections, self.idle_slots, self.processing.wake.set)
                self.runners[mailbox_id] = runner
                runner.start()

    def wake_all(self) -> None:
        for runner in list(self.runners.values()):
            runner.new_mail()

    def _shut_down(self) -> None:
        self.stop.set()
        runners = list(self.runners.values())
        for runner in runners:
            runner.request_stop()
        self.processing.wake.set()
        self.sending.wake.set()
        # One deadline for all of them: joined one by one with JOIN_SECONDS each, N runners
        # stuck in a network read would hold the exit for N times as long.
        deadline = time.monotonic() + JOIN_SECONDS
        for thread in [*runners, *(r.watcher for r in runners if r.watcher), self.processing, self.sending]:
            thread.join(max(0.0, deadline - time.monotonic()))
        log.info("worker stopped")
