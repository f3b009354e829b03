"""/metrics: Prometheus text, for a signed-in admin or a bearer token; a local
scraper only when POSTDESK_METRICS_LOCAL=1 allows it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from postdesk.models import Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox():
    return Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR, consecutive_failures=2)


def test_closed_by_default_even_from_loopback(client, mailbox, monkeypatch):
    monkeypatch.delenv("POSTDESK_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("POSTDESK_METRICS_LOCAL", raising=False)
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 403


def test_local_scraper_gets_database_gauges_when_allowed(client, mailbox, monkeypatch):
    monkeypatch.setenv("POSTDESK_METRICS_LOCAL", "1")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'postdesk_mailbox_consecutive_failures{mailbox="support"} 2.0' in text
    assert 'postdesk_intake_messages{status="pending"} 0.0' in text
    # The worker's own counters are declared even before it counted anything.
    assert "# TYPE postdesk_messages_fetched_total counter" in text
    assert "# TYPE postdesk_arrival_to_request_seconds histogram" in text


def test_remote_anonymous_scraper_is_refused_even_with_local_allowed(client, mailbox, monkeypatch):
    monkeypatch.setenv("POSTDESK_METRICS_LOCAL", "1")
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_signed_in_admin_may_look_and_other_staff_may_not(client, mailbox):
    client.force_login(User.objects.create_user("phil", "p@example.com", "pw", is_staff=True))
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    client.force_login(User.objects.create_superuser("ada", "ada@example.com", "pw"))
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_token_is_required_once_configured(client, mailbox, monkeypatch):
    monkeypatch.setenv("POSTDESK_METRICS_TOKEN", "s3cret")
    monkeypatch.delenv("POSTDESK_METRICS_LOCAL", raising=False)
    assert client.get("/metrics").status_code == 403  # loopback alone is not enough
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_metrics_is_get_only(client):
    assert client.post("/metrics").status_code == 405
