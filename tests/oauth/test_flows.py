"""The grants against the test provider: authorization code + PKCE through its consent page
(driven with requests), the device grant (approve_device), the loopback redirect, and the
errors a user meets on the way, each a clear OAuthError."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from postdesk.oauth import OAuthError, flows, providers
from postdesk.oauth.flows import Client
from tests.oauth.conftest import REDIRECT_URI
from tests.oauth.support import SCOPE, consent


def client(provider, client_id: str, secret: str = "") -> Client:
    return Client(providers.resolve(provider.issuer), client_id, secret, SCOPE)


# =========================================================================== code + PKCE


def test_pkce_round_trip_through_the_consent_page(provider, client_id, person):
    c = client(provider, client_id)
    pending = flows.start_authorization(c, "http://127.0.0.1:8123/callback")
    query = dict(parse_qsl(urlsplit(pending.url).query))
    assert (query["code_challenge_method"], query["client_id"], query["scope"]) == ("S256", client_id, SCOPE)
    assert "code_verifier" not in pending.url and pending.code_verifier not in pending.url
    tokens = flows.finish_authorization(c, pending, consent(pending.url, person))
    assert tokens.access_token and tokens.refresh_token and tokens.scope == SCOPE
    assert tokens.expires_in == 3600
    assert provider.issued(person) == 1


def test_a_confidential_client_signs_its_token_request(provider, person):
    provider.add_client("confidential-desk", secret="s3cret", redirect_uris=(REDIRECT_URI,))
    pending = flows.start_authorization(client(provider, "confidential-desk", "s3cret"), REDIRECT_URI)
    query = consent(pending.url, person)
    with pytest.raises(OAuthError) as raised:  # the wrong secret: our settings, permanent
        flows.finish_authorization(client(provider, "confidential-desk", "wrong"), pending, query)
    assert (raised.value.kind, raised.value.permanent) == ("config", True)
    pending = flows.start_authorization(client(provider, "confidential-desk", "s3cret"), REDIRECT_URI)
    tokens = flows.finish_authorization(client(provider, "confidential-desk", "s3cret"), pending,
                                        consent(pending.url, person))
    assert tokens.refresh_token


def test_a_state_mismatch_is_refused_before_the_code_is_used(provider, client_id, person):
    c = client(provider, client_id)
    pending = flows.start_authorization(c, REDIRECT_URI)
    query = consent(pending.url, person)
    with pytest.raises(OAuthError) as raised:
        flows.finish_authorization(c, pending, {**query, "state": "forged"})
    assert raised.value.kind == "state" and "start again" in raised.value.message
    assert provider.issued(person) == 0
    # The code was not spent: the genuine redirect still works.
    assert flows.finish_authorization(c, pending, query).access_token


def test_a_refusal_at_the_consent_page_says_so(provider, client_id, person):
    c = client(provider, client_id)
    pending = flows.start_authorization(c, REDIRECT_URI)
    query = consent(pending.url, person, decision="deny")
    assert query["error"] == "access_denied"
    with pytest.raises(OAuthError) as raised:
        flows.finish_authorization(c, pending, query)
    assert raised.value.kind == "denied" and "refused at the provider" in raised.value.message


def test_a_code_replayed_with_another_verifier_is_refused(provider, client_id, person):
    c = client(provider, client_id)
    pending = flows.start_authorization(c, REDIRECT_URI)
    query = consent(pending.url, person)
    forged = flows.PendingAuthorization(pending.url, pending.state, "x" * 64, pending.redirect_uri)
    with pytest.raises(OAuthError) as raised:
        flows.finish_authorization(c, forged, query)
    # invalid_grant (RFC 7636 section 4.6), about the code: not "reconnect the mailbox"
    assert (raised.value.kind, raised.value.permanent) == ("denied", True)
    assert "start again" in raised.value.message


def test_the_token_endpoint_down_is_transient(provider, client_id, person):
    c = client(provider, client_id)
    pending = flows.start_authorization(c, REDIRECT_URI)
    query = consent(pending.url, person)
    provider.down()
    with pytest.raises(OAuthError) as raised:
        flows.finish_authorization(c, pending, query)
    assert (raised.value.kind, raised.value.permanent) == ("provider", False)


# =========================================================================== loopback redirect


def test_the_loopback_receiver_catches_one_redirect(provider, client_id, person):
    c = client(provider, client_id)
    with flows.LoopbackReceiver() as receiver:
        assert receiver.redirect_uri.startswith("http://127.0.0.1:")
        pending = flows.start_authorization(c, receiver.redirect_uri)
        query = consent(pending.url, person)
        location = receiver.redirect_uri + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        assert "signed in" in requests.get(location, timeout=30).text
        assert requests.get(location, timeout=30).status_code == 404  # one-shot
        caught = receiver.wait(timeout=30)
    assert flows.finish_authorization(c, pending, caught).refresh_token


def test_the_loopback_receiver_gives_up_after_its_timeout():
    with flows.LoopbackReceiver() as receiver, pytest.raises(OAuthError) as raised:
        receiver.wait(timeout=0.2)
    assert raised.value.kind == "denied"


# =========================================================================== device grant


def test_device_grant_approved(provider, client_id, person):
    c = client(provider, client_id)
    device = flows.start_device(c)
    assert device.verification_uri == provider.verification_uri and device.interval == 1
    seen = []

    def progress(p: flows.DeviceProgress):
        seen.append(p)
        if len(seen) == 2:
            provider.approve_device(device.user_code, person)

    tokens = flows.poll_device(c, device, progress=progress)
    assert tokens.refresh_token and tokens.scope == SCOPE
    assert [p.interval for p in seen] == [1, 1]


def test_device_grant_honours_slow_down(provider, client_id, person):
    c = client(provider, client_id)
    device = flows.start_device(c)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            return  # poll too early once: the provider answers slow_down
        if len(waits) == 3:
            provider.approve_device(device.user_code, person)
        time.sleep(seconds)

    assert flows.poll_device(c, device, sleep=sleep).access_token
    assert waits == [1, 1, 6]  # every later poll waits 5 s more (RFC 8628 section 3.5)


def test_device_grant_denied(provider, client_id, person):
    c = client(provider, client_id)
    device = flows.start_device(c)
    with pytest.raises(OAuthError) as raised:
        flows.poll_device(c, device, progress=lambda p: provider.deny_device(device.user_code))
    assert raised.value.kind == "denied" and raised.value.permanent


def test_device_code_ran_out(provider, client_id, person):
    c = client(provider, client_id)
    device = flows.start_device(c)
    with pytest.raises(OAuthError) as raised:
        flows.poll_device(c, device, progress=lambda p: provider.expire_device(device.user_code))
    assert raised.value.kind == "denied" and "ran out" in raised.value.message


def test_google_has_no_device_grant():
    with pytest.raises(OAuthError, match="no device grant"):
        flows.start_device(Client(providers.google(), "id"))


# =========================================================================== refresh


def test_refresh_rotates_and_an_unknown_token_is_invalid_grant(provider, client_id, person):
    c = client(provider, client_id)
    first = provider.mint(person, client_id, scope=SCOPE)
    renewed = flows.refresh(c, first.refresh_token)
    assert renewed.refresh_token and renewed.refresh_token != first.refresh_token
    assert provider.refreshes(person) == 1
    with pytest.raises(OAuthError) as raised:
        flows.refresh(c, "not-a-token")
    assert (raised.value.kind, raised.value.permanent) == ("expired", True)
    assert raised.value.message.startswith("sign-in expired: reconnect the mailbox")


def test_a_503_is_transient(provider, client_id, person):
    first = provider.mint(person, client_id, scope=SCOPE)
    provider.fail_with(503)
    with pytest.raises(OAuthError) as raised:
        flows.refresh(client(provider, client_id), first.refresh_token)
    assert (raised.value.kind, raised.value.permanent) == ("provider", False)


def test_tokens_never_show_in_a_repr(provider, client_id, person):
    tokens = flows.refresh(client(provider, client_id), provider.mint(person, client_id, scope=SCOPE).refresh_token)
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
