"""The processing loop: one thread that turns stored messages into requests.

Runners only store (intake) and acknowledge; they wake this loop when they
stored something.  It also looks every few seconds on its own, for rows left by
a crashed worker (their lease runs out), by `reprocess`, or by another host.
A failure of the loop itself (database locked, disk full) gives back what it
had in hand at once and is retried with backoff; a message that keeps failing
is quarantined by process_one after MAX_ATTEMPTS, so it never blocks the rest.
Parsing happens in the parser pool (process/parallel.py) under a time limit: a
message still being read stays pending there while the loop applies the rest
and goes on claiming new mail from every mailbox.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection
from django.utils import timezone

from postdesk import metrics, process, tags
from postdesk.models import Intake
from postdesk.process.apply import Applied
from postdesk.worker import backoff
from postdesk.worker.config import WorkerConfig

log = logging.getLogger("postdesk.worker")


class ProcessingLoop(threading.Thread):
    def __init__(self, stop: threading.Event, config: WorkerConfig, on_processed=None):
        super().__init__(name="processing", daemon=True)
        self.stop = stop
        self.config = config
        self.on_processed = on_processed or (lambda: None)
        self.wake = threading.Event()
        self.processed = 0  # outcomes so far (tests and the bench wait on it)

    def run(self) -> None:
        failures = 0
        try:
            while not self.stop.is_set():
                self.wake.wait(self.config.sweep_every)
                self.wake.clear()
                if self.stop.is_set():
                    return
                try:
                    close_old_connections()
                    self._drain()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    wait = backoff.delay(failures, 1.0, 60.0)
                    log.warning("processing failed (%s); again in %.1f s", exc, wait,
                                extra={"error": type(exc).__name__, "failures": failures, "delay": round(wait, 1)})
                    connection.close()
                    self.stop.wait(wait)
        finally:
            from postdesk.process import parallel

            parallel.shutdown()
            connection.close()

    def _drain(self) -> None:
        """Step until nothing is in hand.  Each step's outcomes are recorded (and the
        sending loop woken for their acknowledgements) at once: a message still
        being read holds nobody else's request, log line or acknowledgement."""
        processor = process.Processor()
        try:
            while not self.stop.is_set():
                outcomes = processor.step()
                if outcomes:
                    self._record(outcomes)
                    self.on_processed()
                elif not processor.held():
                    return
        finally:
            processor.abandon()  # stopping: what is in hand is given back at once

    def _record(self, outcomes: list) -> None:
        """Metrics and one structured log line per message."""
        now = timezone.now()
        rows = {
            row["pk"]: row
            for row in Intake.objects.filter(pk__in=[o.intake_id for o in outcomes]).values("pk", "mailbox__name", "server_date")
        }
        for outcome in outcomes:
            row = rows.get(outcome.intake_id, {})
            mailbox = row.get("mailbox__name", "")
            fields = {"mailbox": mailbox, "intake": outcome.intake_id}
            if isinstance(outcome, Applied):
                metrics.PROCESSED.labels(mailbox, outcome.outcome).inc()
                if outcome.request_number is not None:
                    fields["request"] = tags.label(outcome.request_number)
                if outcome.outcome in ("created", "threaded") and row.get("server_date"):
                    metrics.ARRIVAL_TO_REQUEST.labels(mailbox).observe(max(0.0, (now - row["server_date"]).total_seconds()))
                log.info("request %s", outcome.outcome, extra={**fields, "outcome": outcome.outcome})
            else:
                metrics.QUARANTINED.labels(mailbox).inc()
                log.error("message quarantined: %s", outcome.reason, extra=fields)
            self.processed += 1
