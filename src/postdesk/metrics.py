"""Prometheus metrics, served at /metrics (postdesk.web) and by `postdesk worker --metrics-port`.

Two kinds:
- counters and the latency histogram are counted by the worker in this
  process (so `postdesk run`, web and worker in one process, shows them at
  /metrics; a separate `postdesk worker` shows its own with --metrics-port);
- gauges read from the database at scrape time (mailbox health, intake rows by
  status), which are the same whichever host or process is asked.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry()  # not auto_describe: registering must not query the database

FETCHED = Counter("postdesk_messages_fetched", "Messages fetched and stored from a mailbox", ["mailbox"], registry=REGISTRY)
PROCESSED = Counter(
    "postdesk_messages_processed", "Messages turned into requests (outcome: created, threaded, duplicate)",
    ["mailbox", "outcome"], registry=REGISTRY,
)
QUARANTINED = Counter("postdesk_messages_quarantined", "Messages put in quarantine", ["mailbox"], registry=REGISTRY)
FETCH_ERRORS = Counter("postdesk_fetch_errors", "Failed passes over a mailbox, by error kind", ["mailbox", "kind"], registry=REGISTRY)
ARRIVAL_TO_REQUEST = Histogram(
    "postdesk_arrival_to_request_seconds",
    "From the server's arrival date (IMAP INTERNALDATE, Maildir file time) to the request or follow-up existing",
    ["mailbox"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 6 * 3600),
    registry=REGISTRY,
)
NOTIFICATIONS_SENT = Counter("postdesk_notifications_sent", "Notifications to staff accepted by the SMTP server",
                             registry=REGISTRY)  # exposed as postdesk_notifications_sent_total
NOTIFICATIONS_FAILED = Counter("postdesk_notifications_failed", "Notifications to staff that failed for good",
                               registry=REGISTRY)
NOTIFICATION_DELAY = Histogram(
    "postdesk_notification_delay_seconds",
    "From the message's arrival (its stored row) to the notification accepted by the SMTP server",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 300, 900, 3600, 6 * 3600),
    registry=REGISTRY,
)


def notification_sent(outgoing) -> None:
    """Count a notification the server took, and its delay since its cause arrived."""
    from django.utils import timezone

    NOTIFICATIONS_SENT.inc()
    if outgoing.event_at is not None:
        NOTIFICATION_DELAY.observe(max(0.0, (timezone.now() - outgoing.event_at).total_seconds()))


class DatabaseCollector:
    """Gauges from the database, read when Prometheus scrapes."""

    # Set by `postdesk worker --metrics-port`: prometheus_client answers each
    # scrape in a new thread, whose database connection nobody else would close.
    close_connection_after = False

    def collect(self):
        try:
            yield from self._collect()
        finally:
            if self.close_connection_after:
                from django.db import connection

                connection.close()

    def _collect(self):
        from django.db.models import Count

        from postdesk.models import Intake, Mailbox, OAuthGrant

        failures = GaugeMetricFamily("postdesk_mailbox_consecutive_failures", "Failed passes in a row", labels=["mailbox"])
        success = GaugeMetricFamily(
            "postdesk_mailbox_last_success_timestamp_seconds", "Unix time of the last successful pass", labels=["mailbox"]
        )
        enabled = GaugeMetricFamily("postdesk_mailbox_enabled", "1 when the mailbox is fetched", labels=["mailbox"])
        for m in Mailbox.objects.only("name", "consecutive_failures", "last_success_at", "enabled"):
            failures.add_metric([m.name], m.consecutive_failures)
            enabled.add_metric([m.name], 1 if m.enabled else 0)
            if m.last_success_at is not None:
                success.add_metric([m.name], m.last_success_at.timestamp())
        oauth_failures = GaugeMetricFamily(
            "postdesk_mailbox_oauth_refresh_failures", "Failed OAuth2 token refreshes in a row (OAuth mailboxes)",
            labels=["mailbox"],
        )
        for name, count in OAuthGrant.objects.values_list("mailbox__name", "refresh_failures"):
            oauth_failures.add_metric([name], count)
        intakes = GaugeMetricFamily("postdesk_intake_messages", "Stored messages by processing status", labels=["status"])
        counts = dict(Intake.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in Intake.Status.values:
            intakes.add_metric([status], counts.get(status, 0))
        yield from (failures, success, enabled, oauth_failures, intakes)


REGISTRY.register(DatabaseCollector())


def exposition() -> bytes:
    return generate_latest(REGISTRY)
