"""Push delivery: an IMAP IDLE connection per mailbox folder (RFC 2177).

The watcher holds its own connection, separate from the one that fetches, and
does nothing but listen: when the server announces new mail (`EXISTS`) it
wakes the mailbox's runner, which fetches at once.  It re-issues IDLE before
the 29 minutes after which servers may drop an idle client, reconnects (with
backoff) when the connection drops, and gives up for good only when the server
does not offer IDLE: the runner's polling then carries on alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection

from postdesk.worker import backoff
from postdesk.worker.config import WorkerConfig

log = logging.getLogger("postdesk.worker.idle")

CHECK_SECONDS = 1.0  # how often the stop flag is looked at while idling


class IdleWatcher(threading.Thread):
    def __init__(self, mailbox_id: int, name: str, on_new_mail: Callable[[], None], stop: threading.Event,
                 config: WorkerConfig, slots: threading.BoundedSemaphore):
        super().__init__(name=f"idle:{name}", daemon=True)
        self.mailbox_id, self.mailbox_name = mailbox_id, name
        self.on_new_mail = on_new_mail
        self.stop = stop
        self.config = config
        self.slots = slots
        self.unsupported = False  # the server has no IDLE: polling only
        self.active = threading.Event()  # set while an IDLE command is running

    def run(self) -> None:
        if not self.slots.acquire(blocking=False):
            log.info("IDLE connections at their limit (POSTDESK_MAX_IDLE); polling", extra={"mailbox": self.mailbox_name})
            return
        try:
            self._watch()
        finally:
            self.slots.release()
            connection.close()

    def _watch(self) -> None:
        failures = 0
        while not self.stop.is_set():
            source = None
            try:
                source = self._connect()
                if source is None:
                    return
                if not source.client.has_capability("IDLE"):
                    self.unsupported = True
                    log.info("server offers no IDLE; polling", extra={"mailbox": self.mailbox_name})
                    return
                failures = 0
                self._idle(source.client)
            except Exception as exc:  # the fetching runner reports mailbox errors; here we only retry
                self.active.clear()
                failures += 1
                if failures == 1:
                    # The server may be gone: a pass now finds out and reports it
                    # (health, logs), rather than at the next poll.  Only once: the
                    # runner's own backoff paces the retries after that.
                    self.on_new_mail()
                wait = backoff.delay(failures, self.config.backoff_base, self.config.backoff_cap)
                log.info("IDLE connection lost (%s); again in %.0f s", exc, wait, extra={"mailbox": self.mailbox_name})
                self.stop.wait(wait)
            finally:
                self.active.clear()
                if source is not None:
                    _logout_quietly(source.client)

    def _connect(self):
        from postdesk.models import Mailbox
        from postdesk.sources import open_watch

        close_old_connections()
        try:
            mailbox = Mailbox.objects.filter(pk=self.mailbox_id, enabled=True).first()
            # Signing in may read the OAuth grant (and refresh it): the database is still open.
            return open_watch(mailbox) if mailbox is not None else None
        finally:
            connection.close()  # an idling thread holds no database connection

    def _idle(self, client) -> None:
        client.idle()
        self.active.set()
        # Anything that arrived while no IDLE was running (first start, a
        # reconnect) is fetched now rather than at the next poll.
        self.on_new_mail()
        started = time.monotonic()
        while not self.stop.is_set():
            responses = client.idle_check(timeout=CHECK_SECONDS)
            if _announces_mail(responses):
                self.on_new_mail()
            if time.monotonic() - started >= self.config.idle_reissue:
                _, responses = client.idle_done()
                if _announces_mail(responses):
                    self.on_new_mail()
                client.idle()
                started = time.monotonic()
        client.idle_done()


def _announces_mail(responses) -> bool:
    """`* 12 EXISTS` (and `* 3 RECENT`) are how a server says a message arrived."""
    for response in responses or ():
        if isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT"):
            return True
    return False


def _logout_quietly(client) -> None:
    try:
        client.logout()
    except Exception:  # the connection is already gone
        try:
            client.shutdown()
        except Exception:
            pass
