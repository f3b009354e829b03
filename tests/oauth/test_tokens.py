"""The grant store against the test provider, in this process: connect, the cached token,
refresh ahead of expiry, rotation and compare-and-set, a revoked grant, an outage, and
what `mailbox show`, the warnings and the gauge say.  Several processes: test_processes.py."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from postdesk import leases, mailboxes, metrics, secrets
from postdesk.models import AuditEvent, OAuthGrant
from postdesk.oauth import OAuthError, tokens
from tests.oauth.support import SCOPE, connected, grant_of, minted, oauth_mailbox, stored

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def due(mailbox, seconds: float = 5) -> None:
    """The stored access token runs out in `seconds`: inside the refresh margin."""
    OAuthGrant.objects.filter(mailbox=mailbox).update(access_expires_at=timezone.now() + timedelta(seconds=seconds))


# =========================================================================== connect


def test_connect_stores_the_grant_encrypted_and_audited(provider, client_id, person):
    mailbox = oauth_mailbox(provider, client_id, person)
    answer = minted(provider, person, client_id)
    grant = tokens.connect(mailbox, answer)
    assert (grant.state, grant.generation, grant.granted_scope, grant.refresh_failures) == ("ok", 1, SCOPE, 0)
    assert answer.refresh_token not in grant.refresh_token and answer.access_token not in grant.access_token
    assert stored(mailbox) == (answer.access_token, answer.refresh_token)
    assert grant.access_expires_at - grant.connected_at == timedelta(seconds=3600)
    assert grant.last_refreshed_at is None  # connected, not refreshed
    event = AuditEvent.objects.get(kind="mailbox.oauth.connected")
    assert event.target == f"mailbox {mailbox.pk}" and SCOPE in event.detail and answer.access_token not in event.detail


def test_connect_twice_replaces_the_grant(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    tokens.connect(mailbox, again := minted(provider, person, client_id))
    assert OAuthGrant.objects.count() == 1
    assert grant_of(mailbox).generation == 2
    assert stored(mailbox)[1] == again.refresh_token
    assert AuditEvent.objects.filter(kind="mailbox.oauth.connected").count() == 2


def test_connect_without_a_refresh_token_saves_nothing(provider, client_id, person):
    mailbox = oauth_mailbox(provider, client_id, person)
    answer = minted(provider, person, client_id)
    no_refresh = type(answer)(answer.access_token, "", 3600, SCOPE, None)
    with pytest.raises(OAuthError, match="no refresh token"):
        tokens.connect(mailbox, no_refresh)
    assert not OAuthGrant.objects.exists() and not AuditEvent.objects.exists()


def test_a_mailbox_not_connected_says_how_to_connect(provider, client_id, person):
    mailbox = oauth_mailbox(provider, client_id, person)
    with pytest.raises(OAuthError) as raised:
        tokens.access_token(mailbox)
    assert raised.value.kind == "not-connected" and "postdesk mailbox connect support" in raised.value.message
    assert mailboxes.warnings(mailbox) == ["support: not signed in: run `postdesk mailbox connect support`"]


# =========================================================================== the cached token


def test_a_valid_token_is_handed_out_without_asking_the_provider(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    first = tokens.access_token(mailbox)
    assert tokens.access_token(mailbox) == first == stored(mailbox)[0]
    assert provider.refreshes(person) == 0
    assert grant_of(mailbox).last_used_at is not None


@pytest.mark.parametrize(("lifetime", "margin"), [(3600, 300), (60, 12), (20, 10), (5, 10)])
def test_the_refresh_margin(lifetime, margin):
    now = timezone.now()
    refreshed = OAuthGrant(last_refreshed_at=now, access_expires_at=now + timedelta(seconds=lifetime))
    assert tokens.margin(refreshed) == timedelta(seconds=margin)
    connected = OAuthGrant(connected_at=now, last_refreshed_at=now - timedelta(days=1),
                           access_expires_at=now + timedelta(seconds=lifetime))
    assert tokens.margin(connected) == timedelta(seconds=margin)


def test_refresh_ahead_of_expiry_stores_the_rotated_refresh_token(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    old_access, old_refresh = stored(mailbox)
    due(mailbox)
    token = tokens.access_token(mailbox)
    assert token != old_access and provider.refreshes(person) == 1
    access, refresh = stored(mailbox)
    assert (access, grant_of(mailbox).generation) == (token, 2)
    assert refresh != old_refresh  # the provider rotated it: the new one is what we keep
    assert grant_of(mailbox).last_refreshed_at is not None


def test_refresh_twice(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    seen = set()
    for _ in range(2):
        due(mailbox)
        seen.add(tokens.access_token(mailbox))
    assert len(seen) == 2 and provider.refreshes(person) == 2 and grant_of(mailbox).generation == 3
    assert tokens.access_token(mailbox) in seen and provider.refreshes(person) == 2


def test_a_rejected_token_is_refreshed_even_with_time_left(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    refused = tokens.access_token(mailbox)
    fresh = tokens.access_token(mailbox, rejected=refused)
    assert fresh != refused and provider.refreshes(person) == 1
    assert tokens.access_token(mailbox, rejected=refused) == fresh  # no second refresh for the same refusal


def test_compare_and_set_refuses_an_older_generation(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    due(mailbox)
    tokens.access_token(mailbox)  # generation 2
    newest = stored(mailbox)
    late = minted(provider, person, client_id)
    assert not tokens.save_refreshed(grant_of(mailbox).pk, 1, late, "old")  # started from generation 1
    assert stored(mailbox) == newest and grant_of(mailbox).generation == 2
    assert tokens.save_refreshed(grant_of(mailbox).pk, 2, late, "old")
    assert stored(mailbox)[0] == late.access_token and grant_of(mailbox).generation == 3


def test_a_save_is_fenced_by_the_refresh_lease(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    pk = grant_of(mailbox).pk
    ours = leases.RowLease(OAuthGrant, pk, "refresh_lease_", tokens.REFRESH_LEASE)
    ours.claim()
    # We stalled past the lease and another host took it over.
    OAuthGrant.objects.filter(pk=pk).update(refresh_lease_owner="elsewhere:1", refresh_lease_token=99)
    assert not tokens.save_refreshed(pk, 1, minted(provider, person, client_id), "old", ours)
    assert grant_of(mailbox).generation == 1


# =========================================================================== failures


def test_a_revoked_grant_is_expired_for_good(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    provider.revoke_user(person)
    due(mailbox)
    with pytest.raises(OAuthError) as raised:
        tokens.access_token(mailbox)
    assert (raised.value.kind, raised.value.permanent) == ("expired", True)
    grant = grant_of(mailbox)
    assert grant.state == "expired" and grant.last_error.startswith("sign-in expired: reconnect the mailbox")
    assert "support: sign-in expired: reconnect the mailbox" in mailboxes.warnings(mailbox)
    issued = provider.issued(person)
    with pytest.raises(OAuthError, match="reconnect"):  # no further request to the provider
        tokens.access_token(mailbox)
    assert provider.issued(person) == issued
    tokens.connect(mailbox, minted(provider, person, client_id))  # Reconnect
    assert grant_of(mailbox).state == "ok" and tokens.access_token(mailbox)
    assert mailboxes.warnings(mailbox) == []


def test_a_provider_that_is_down_is_transient_and_counted(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    due(mailbox)
    provider.down()
    for n in (1, 2):
        with pytest.raises(OAuthError) as raised:
            tokens.access_token(mailbox)
        assert (raised.value.kind, raised.value.permanent) == ("provider", False)
        assert (grant_of(mailbox).state, grant_of(mailbox).refresh_failures) == ("failing", n)
    assert any("token refresh failing 2 times" in w for w in mailboxes.warnings(mailbox))
    assert 'postdesk_mailbox_oauth_refresh_failures{mailbox="support"} 2.0' in metrics.exposition().decode()
    provider.up()
    assert tokens.access_token(mailbox)
    grant = grant_of(mailbox)
    assert (grant.state, grant.refresh_failures, grant.last_error) == ("ok", 0, "")
    assert 'postdesk_mailbox_oauth_refresh_failures{mailbox="support"} 0.0' in metrics.exposition().decode()


def test_a_503_is_transient(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    due(mailbox)
    provider.fail_with(503)
    with pytest.raises(OAuthError) as raised:
        tokens.access_token(mailbox)
    assert (raised.value.kind, raised.value.permanent) == ("provider", False)
    assert "503" in grant_of(mailbox).last_error and grant_of(mailbox).state == "failing"


def test_a_token_that_cannot_be_decrypted_is_a_key_change(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    OAuthGrant.objects.filter(mailbox=mailbox).update(access_token=secrets.encrypt("x")[:-4] + "AAAA")
    with pytest.raises(OAuthError) as raised:
        tokens.access_token(mailbox)
    assert raised.value.kind == "secret" and "mailbox key changed" in raised.value.message


def test_the_grants_end_is_warned_about_a_week_ahead(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    provider.refresh_expires_in = 3 * 86400
    due(mailbox)
    tokens.access_token(mailbox)
    ends = grant_of(mailbox).grant_expires_at
    assert ends is not None
    assert f"support: the grant ends on {ends:%Y-%m-%d}: reconnect before then" in mailboxes.warnings(mailbox)


# =========================================================================== how it reads


def test_show_describes_the_grant_and_never_a_token(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    access, refresh = stored(mailbox)
    shown = mailboxes.as_dict(mailbox)
    assert shown["auth"] == "oauth"
    oauth = shown["oauth"]
    assert (oauth["provider"], oauth["state"], oauth["granted_scope"]) == (provider.issuer, "ok", SCOPE)
    assert set(oauth) >= {"connected_at", "last_used_at", "last_refreshed_at", "access_expires_at",
                          "grant_expires_at", "refresh_failures", "last_error"}
    text = repr(shown)
    assert access not in text and refresh not in text


# =========================================================================== waiting for another refresher


@pytest.mark.django_db(transaction=True)
def test_a_process_that_finds_the_refresh_lease_held_waits_and_uses_the_holders_token(provider, client_id, person):
    mailbox = connected(provider, client_id, person)
    due(mailbox)
    pk = grant_of(mailbox).pk
    OAuthGrant.objects.filter(pk=pk).update(refresh_lease_owner="elsewhere:1", refresh_lease_token=7,
                                            refresh_lease_until=timezone.now() + timedelta(minutes=2))
    theirs = minted(provider, person, client_id)

    def holder():  # another host's refresher, finishing a moment later
        try:
            time.sleep(1)
            assert tokens.save_refreshed(pk, 1, theirs, "old")
            OAuthGrant.objects.filter(pk=pk).update(refresh_lease_owner="", refresh_lease_until=None)
        finally:
            connection.close()

    other = threading.Thread(target=holder)
    other.start()
    try:
        assert tokens.access_token(mailbox) == theirs.access_token
    finally:
        other.join()
    assert provider.refreshes(person) == 0


def test_a_changed_provider_or_client_drops_the_grant(db, provider, client_id, person):
    from postdesk import mailboxes
    from postdesk.models import AuditEvent, OAuthGrant
    from tests.oauth.support import connected

    mailbox = connected(provider, client_id, person)
    mailboxes.edit(mailbox, {"folder": "Support"})  # unrelated: the grant stays
    assert OAuthGrant.objects.filter(mailbox=mailbox).exists()

    mailboxes.edit(mailbox, {"oauth_client_id": "another-app"})
    assert not OAuthGrant.objects.filter(mailbox=mailbox).exists()
    assert "OAuth2 grant dropped" in AuditEvent.objects.latest("id").detail
    assert mailboxes.as_dict(mailbox)["oauth"]["state"] == "not connected"
