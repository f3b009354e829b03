"""The sending loop: one thread that delivers the outbox (outbound/sender.py).

Woken when the processing loop queued acknowledgements; otherwise it looks
every few seconds (staff replies are queued by the web process, retries come
due with time).  It also wakes snoozed requests whose time came (desk.status,
at most once a minute)."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from postdesk.worker import backoff

log = logging.getLogger("postdesk.worker")

LOOK_EVERY = 2.0  # seconds: a staff reply leaves within about this


class SendingLoop(threading.Thread):
    def __init__(self, stop: threading.Event):
        super().__init__(name="sending", daemon=True)
        self.stop = stop
        self.wake = threading.Event()
        self.sent = 0

    def run(self) -> None:
        from postdesk.desk import status as request_status
        from postdesk.notify import digest
        from postdesk.outbound import sender

        failures = 0
        try:
            while not self.stop.is_set():
                self.wake.wait(LOOK_EVERY)
                self.wake.clear()
                try:
                    close_old_connections()
                    digest.send_due_digests()  # queued in the outbox, sent just below
                    request_status.wake_due_now_and_then()  # snoozed requests whose time came: open again
                    while not self.stop.is_set():
                        results = sender.send_due()
                        self.sent += sum(1 for r in results if r.status == "sent")
                        if not results:
                            break
                    failures = 0
                except Exception as exc:  # the database, most likely; the rows wait
                    failures += 1
                    wait = backoff.delay(failures, 1.0, 60.0)
                    log.warning("sending failed (%s); again in %.1f s", exc, wait, extra={"failures": failures})
                    connection.close()
                    self.stop.wait(wait)
        finally:
            connection.close()
