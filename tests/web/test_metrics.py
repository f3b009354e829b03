"""/metrics: Prometheus text, for a logged-in user, a local scraper, or a bearer token."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from postdesk.models import Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox():
    return Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR, consecutive_failures=2)


def test_local_scraper_gets_database_gauges(client, mailbox):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'postdesk_mailbox_consecutive_failures{mailbox="support"} 2.0' in text
    assert 'postdesk_intake_messages{status="pending"} 0.0' in text
    # The worker's own counters are declared even before it counted anything.
    assert "# TYPE postdesk_messages_fetched_total counter" in text
    assert "# TYPE postdesk_arrival_to_request_seconds histogram" in text


def test_remote_anonymous_scraper_is_refused(client, mailbox):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_logged_in_user_may_look(client, mailbox):
    client.force_login(User.objects.create_user("phil", "p@example.com", "pw"))
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_token_is_required_once_configured(client, mailbox, monkeypatch):
    monkeypatch.setenv("POSTDESK_METRICS_TOKEN", "s3cret")
    assert client.get("/metrics").status_code == 403  # loopback alone is not enough then
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_metrics_is_get_only(client):
    assert client.post("/metrics").status_code == 405
