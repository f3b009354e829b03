"""The test OAuth2 provider works, and Dovecot (and the test SMTP server) take its
tokens.  Clients here are requests, the stdlib's and IMAPClient, used directly, so a
failure points at the servers in tests/servers, not at Postdesk."""

from __future__ import annotations

import base64
import hashlib
import imaplib
import json
import poplib
import re
import secrets
import smtplib
import ssl
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from imapclient import IMAPClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.servers.fixtures import TEST_CLIENT_ID
from tests.servers.oauth_provider import DEVICE_CODE_GRANT_TYPE, TokenSet

REDIRECT_URI = "http://127.0.0.1/oauth/callback"
TIMEOUT = 10


@pytest.fixture
def desk(oauth):
    """A public client with a loopback redirect URI, as Postdesk registers one."""
    oauth.add_client("desk-public", redirect_uris=(REDIRECT_URI,))
    return "desk-public"


def post_token(oauth, client_id: str = TEST_CLIENT_ID, **form) -> requests.Response:
    return requests.post(oauth.token_endpoint, data={"client_id": client_id, **form}, timeout=TIMEOUT)


def refresh(oauth, refresh_token: str, client_id: str = TEST_CLIENT_ID) -> requests.Response:
    return post_token(oauth, client_id, grant_type="refresh_token", refresh_token=refresh_token)


def introspect(oauth, token: str) -> dict:
    return requests.post(oauth.introspection_endpoint, data={"token": token}, timeout=TIMEOUT).json()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(client_id: str, challenge: str, redirect_uri: str = REDIRECT_URI) -> dict:
    return {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "st-1",
        "scope": "mail offline_access", "code_challenge": challenge, "code_challenge_method": "S256",
    }


def redirect_query(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {key: values[0] for key, values in parse_qs(urlsplit(response.headers["Location"]).query).items()}


# -- discovery -------------------------------------------------------------------------


@pytest.mark.parametrize("document", ["oauth-authorization-server", "openid-configuration"])
def test_discovery_names_every_endpoint(oauth, document):
    metadata = requests.get(f"{oauth.issuer}/.well-known/{document}", timeout=TIMEOUT).json()
    assert metadata["issuer"] == oauth.issuer == f"http://127.0.0.1:{oauth.port}"
    assert metadata["token_endpoint"] == oauth.token_endpoint
    assert metadata["device_authorization_endpoint"] == oauth.device_authorization_endpoint
    for name in ("authorization_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert metadata[name].startswith(oauth.issuer + "/")
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert DEVICE_CODE_GRANT_TYPE in metadata["grant_types_supported"]


# -- authorization code + PKCE, through the consent page ------------------------------------


def test_consent_allow_then_code_for_tokens(oauth, desk, mail_user):
    verifier, challenge = pkce_pair()
    # Any port on the loopback address matches the registered port-less URI (RFC 8252).
    params = authorize_params(desk, challenge, "http://127.0.0.1:48123/oauth/callback")
    page = requests.get(oauth.authorization_endpoint, params=params, timeout=TIMEOUT)
    assert page.status_code == 200
    for field in ('name="username"', 'name="password"', 'name="decision" value="allow"', 'value="deny"'):
        assert field in page.text
    answer = requests.post(
        oauth.authorization_endpoint, params=params, allow_redirects=False, timeout=TIMEOUT,
        data={"username": mail_user.username, "password": mail_user.password, "decision": "allow"},
    )
    query = redirect_query(answer)
    assert answer.headers["Location"].startswith("http://127.0.0.1:48123/oauth/callback?")
    assert query["state"] == "st-1"
    tokens = post_token(oauth, desk, grant_type="authorization_code", code=query["code"],
                        redirect_uri=params["redirect_uri"], code_verifier=verifier).json()
    assert tokens["scope"] == "mail offline_access" and tokens["refresh_token"]
    assert introspect(oauth, tokens["access_token"])["username"] == mail_user.username
    # A code is good once.
    again = post_token(oauth, desk, grant_type="authorization_code", code=query["code"],
                       redirect_uri=params["redirect_uri"], code_verifier=verifier)
    assert again.json()["error"] == "invalid_grant"


def test_openid_scope_gets_an_id_token_signed_with_the_published_key(oauth, desk, mail_user):
    verifier, challenge = pkce_pair()
    params = authorize_params(desk, challenge) | {"scope": "openid email offline_access", "nonce": "n-0S6"}
    answer = requests.post(oauth.authorization_endpoint, params=params, allow_redirects=False, timeout=TIMEOUT,
                           data={"username": mail_user.username, "password": mail_user.password, "decision": "allow"})
    tokens = post_token(oauth, desk, grant_type="authorization_code", code=redirect_query(answer)["code"],
                        redirect_uri=REDIRECT_URI, code_verifier=verifier).json()
    metadata = requests.get(oauth.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json())
    claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == oauth.issuer and claims["aud"] == [desk] and claims["nonce"] == "n-0S6"
    assert (claims["sub"], claims["email"], claims["email_verified"]) == (
        mail_user.username, f"{mail_user.username}@example.org", True)


def test_a_wrong_code_verifier_gets_no_tokens(oauth, desk, mail_user):
    _verifier, challenge = pkce_pair()
    params = authorize_params(desk, challenge)
    answer = requests.post(oauth.authorization_endpoint, params=params, allow_redirects=False, timeout=TIMEOUT,
                           data={"username": mail_user.username, "password": mail_user.password, "decision": "allow"})
    code = redirect_query(answer)["code"]
    wrong = post_token(oauth, desk, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI,
                       code_verifier=pkce_pair()[0])
    assert wrong.json()["error"] == "invalid_grant"


def test_deny_redirects_with_access_denied(oauth, desk):
    params = authorize_params(desk, pkce_pair()[1])
    answer = requests.post(oauth.authorization_endpoint, params=params, data={"decision": "deny"},
                           allow_redirects=False, timeout=TIMEOUT)
    assert redirect_query(answer) | {"error_description": ""} == {
        "error": "access_denied", "state": "st-1", "error_description": ""}


def test_a_wrong_password_shows_the_page_again(oauth, desk, mail_user):
    params = authorize_params(desk, pkce_pair()[1])
    answer = requests.post(oauth.authorization_endpoint, params=params, allow_redirects=False, timeout=TIMEOUT,
                           data={"username": mail_user.username, "password": "wrong", "decision": "allow"})
    assert answer.status_code == 401
    assert "Wrong username or password" in answer.text


@pytest.mark.parametrize("redirect_uri", ["http://evil.example/oauth/callback", "http://127.0.0.1/elsewhere",
                                          "https://127.0.0.1/oauth/callback"])
def test_an_unknown_redirect_uri_gets_an_error_page_not_a_redirect(oauth, desk, redirect_uri):
    params = authorize_params(desk, pkce_pair()[1], redirect_uri)
    answer = requests.get(oauth.authorization_endpoint, params=params, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 400
    assert 'id="error"' in answer.text


def test_a_public_client_must_send_an_s256_challenge(oauth, desk):
    params = authorize_params(desk, "")
    del params["code_challenge"], params["code_challenge_method"]
    assert redirect_query(requests.get(oauth.authorization_endpoint, params=params, allow_redirects=False,
                                       timeout=TIMEOUT))["error"] == "invalid_request"
    plain = authorize_params(desk, "a" * 43) | {"code_challenge_method": "plain"}
    assert redirect_query(requests.get(oauth.authorization_endpoint, params=plain, allow_redirects=False,
                                       timeout=TIMEOUT))["error"] == "invalid_request"


def test_a_confidential_client_authenticates_with_its_secret(oauth, mail_user):
    oauth.add_client("desk-secret", secret="s3cret", redirect_uris=(REDIRECT_URI,))
    verifier, challenge = pkce_pair()
    params = authorize_params("desk-secret", challenge)
    answer = requests.post(oauth.authorization_endpoint, params=params, allow_redirects=False, timeout=TIMEOUT,
                           data={"username": mail_user.username, "password": mail_user.password, "decision": "allow"})
    form = {"grant_type": "authorization_code", "code": redirect_query(answer)["code"],
            "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    without = requests.post(oauth.token_endpoint, data={"client_id": "desk-secret", **form}, timeout=TIMEOUT)
    assert without.json()["error"] == "invalid_client"
    tokens = requests.post(oauth.token_endpoint, data=form, auth=("desk-secret", "s3cret"), timeout=TIMEOUT)
    assert tokens.status_code == 200 and tokens.json()["access_token"]


# -- device authorization grant (RFC 8628) --------------------------------------------------


def start_device(oauth) -> dict:
    answer = requests.post(oauth.device_authorization_endpoint, data={"client_id": TEST_CLIENT_ID, "scope": "mail"},
                           timeout=TIMEOUT)
    assert answer.status_code == 200
    return answer.json()


def poll(oauth, device: dict) -> requests.Response:
    return post_token(oauth, grant_type=DEVICE_CODE_GRANT_TYPE, device_code=device["device_code"])


def test_device_grant_pending_slow_down_then_tokens(oauth, mail_user):
    device = start_device(oauth)
    assert device["interval"] == 1 and device["expires_in"] > 0
    assert device["verification_uri"] == oauth.verification_uri
    assert device["verification_uri_complete"].endswith(device["user_code"])
    assert poll(oauth, device).json()["error"] == "authorization_pending"
    assert poll(oauth, device).json()["error"] == "slow_down"  # polled again at once
    oauth.approve_device(device["user_code"], mail_user.username)
    tokens = poll(oauth, device).json()
    assert introspect(oauth, tokens["access_token"])["username"] == mail_user.username
    assert poll(oauth, device).status_code == 400  # used up


def test_device_grant_through_the_verification_page(oauth, mail_user):
    device = start_device(oauth)
    page = requests.get(device["verification_uri_complete"], timeout=TIMEOUT)
    assert f'value="{device["user_code"]}"' in page.text
    done = requests.post(oauth.verification_uri, timeout=TIMEOUT, data={
        "user_code": device["user_code"].lower().replace("-", ""),  # typed sloppily
        "username": mail_user.username, "password": mail_user.password, "decision": "allow"})
    assert done.status_code == 200 and 'id="done"' in done.text
    assert poll(oauth, device).json()["token_type"] == "Bearer"


def test_device_grant_denied_and_expired(oauth):
    denied, expired = start_device(oauth), start_device(oauth)
    oauth.deny_device(denied["user_code"])
    assert poll(oauth, denied).json()["error"] == "access_denied"
    oauth.expire_device(expired["user_code"])
    assert poll(oauth, expired).json()["error"] == "expired_token"


def test_device_interval_is_settable(oauth):
    oauth.device_interval = 7
    assert start_device(oauth)["interval"] == 7


# -- refresh, rotation, reuse detection, revocation, lifetimes --------------------------------


def test_every_refresh_rotates_and_counts(oauth, mail_user):
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID, scope="mail")
    first = refresh(oauth, tokens.refresh_token).json()
    second = refresh(oauth, first["refresh_token"]).json()
    assert len({tokens.refresh_token, first["refresh_token"], second["refresh_token"]}) == 3
    assert second["scope"] == "mail"
    assert oauth.refreshes(mail_user.username) == 2
    assert oauth.issued(mail_user.username) == 3


def test_the_old_refresh_token_works_until_its_successor_is_used(oauth, mail_user):
    """A client killed after the provider rotated, before it saved: the old token still works."""
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID)
    lost = refresh(oauth, tokens.refresh_token).json()["refresh_token"]  # never saved
    saved = refresh(oauth, tokens.refresh_token).json()["refresh_token"]
    assert lost != saved
    newer = refresh(oauth, saved)
    assert newer.status_code == 200
    # Now the successor has been used: the old one is a replay, and the grant is gone.
    replay = refresh(oauth, tokens.refresh_token)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert refresh(oauth, newer.json()["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(oauth, newer.json()["access_token"]) == {"active": False}


def test_keeping_the_abandoned_answer_of_two_refreshes_revokes_the_grant(oauth, mail_user):
    """Two refreshes with one token: the first answer is superseded; using it is a replay."""
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID)
    abandoned = refresh(oauth, tokens.refresh_token).json()
    kept = refresh(oauth, tokens.refresh_token).json()
    assert refresh(oauth, abandoned["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(oauth, kept["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(oauth, kept["access_token"]) == {"active": False}


def test_a_refresh_token_of_another_client_is_refused(oauth, mail_user):
    oauth.add_client("other")
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID)
    assert refresh(oauth, tokens.refresh_token, client_id="other").json()["error"] == "invalid_grant"


def test_revoked_consent_refuses_refresh_and_deactivates_tokens(oauth, mail_user):
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID)
    oauth.revoke_user(mail_user.username)
    assert refresh(oauth, tokens.refresh_token).json()["error"] == "invalid_grant"
    assert introspect(oauth, tokens.access_token) == {"active": False}


def test_revocation_endpoint(oauth, mail_user):
    by_access, by_refresh = (oauth.mint(mail_user.username, TEST_CLIENT_ID) for _ in range(2))
    for token in (by_access.access_token, by_refresh.refresh_token):
        answer = requests.post(oauth.revocation_endpoint, data={"token": token, "client_id": TEST_CLIENT_ID},
                               timeout=TIMEOUT)
        assert answer.status_code == 200
    assert introspect(oauth, by_access.access_token) == {"active": False}
    assert refresh(oauth, by_access.refresh_token).status_code == 200  # only the access token went
    assert introspect(oauth, by_refresh.access_token) == {"active": False}  # the whole grant went
    assert refresh(oauth, by_refresh.refresh_token).json()["error"] == "invalid_grant"


def test_introspection_of_an_active_token(oauth, mail_user):
    oauth.access_lifetime = 30
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID, scope="mail")
    assert tokens.expires_in == 30
    answer = introspect(oauth, tokens.access_token)
    assert answer["active"] is True
    assert answer["exp"] - answer["iat"] == 30
    assert {key: answer[key] for key in ("username", "sub", "scope", "client_id")} == {
        "username": mail_user.username, "sub": mail_user.username, "scope": "mail", "client_id": TEST_CLIENT_ID}
    assert introspect(oauth, "not-a-token") == {"active": False}
    assert introspect(oauth, tokens.refresh_token) == {"active": False}  # access tokens only
    oauth.expire(tokens)
    assert introspect(oauth, tokens.access_token) == {"active": False}


def test_refresh_expires_in_is_sent_when_set(oauth, mail_user):
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID)
    assert "refresh_expires_in" not in refresh(oauth, tokens.refresh_token).json()
    oauth.refresh_expires_in = 86400
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID)
    assert refresh(oauth, tokens.refresh_token).json()["refresh_expires_in"] == 86400


# -- outages -----------------------------------------------------------------------------------


def test_down_closes_the_port_and_up_reopens_it(oauth):
    port = oauth.port
    oauth.down()
    with pytest.raises(requests.ConnectionError):
        requests.get(oauth.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
    oauth.up()
    assert oauth.port == port
    assert requests.get(oauth.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT).ok


def test_fail_with_answers_token_requests_only(oauth, mail_user):
    tokens = oauth.mint(mail_user.username, TEST_CLIENT_ID)
    oauth.fail_with(503)
    answer = refresh(oauth, tokens.refresh_token)
    assert answer.status_code == 503
    assert introspect(oauth, tokens.access_token)["active"] is True
    oauth.fail_with(None)
    assert refresh(oauth, tokens.refresh_token).status_code == 200
    assert oauth.refreshes(mail_user.username) == 1


# -- Dovecot takes the tokens: IMAP and POP3 ----------------------------------------------------


def imap_client(dovecot) -> IMAPClient:
    return IMAPClient(dovecot.host, port=dovecot.ports.imap, ssl=False, timeout=TIMEOUT)


def minted(oauth, user) -> TokenSet:
    return oauth.mint(user.username, TEST_CLIENT_ID, scope="mail")


@pytest.mark.parametrize("mechanism", ["oauth2_login", "oauthbearer_login"])
def test_imap_takes_a_minted_token(dovecot, oauth, mail_user, mechanism):
    tokens = minted(oauth, mail_user)
    with imap_client(dovecot) as client:
        getattr(client, mechanism)(mail_user.username, tokens.access_token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_imap_password_login_still_works(dovecot, mail_user):
    with imap_client(dovecot) as client:
        assert client.login(mail_user.username, mail_user.password) == b"Logged in"


@pytest.mark.parametrize("mechanism", ["oauth2_login", "oauthbearer_login"])
@pytest.mark.parametrize("spoil", ["revoked", "expired", "other user", "unknown"])
def test_imap_refuses_a_bad_token(dovecot, oauth, mail_user, mechanism, spoil):
    tokens = minted(oauth, mail_user)
    username = mail_user.username
    with imap_client(dovecot) as client:  # a first login proves the token was good
        getattr(client, mechanism)(username, tokens.access_token)
    token = tokens.access_token
    if spoil == "revoked":
        oauth.revoke_grant(tokens)
    elif spoil == "expired":
        oauth.expire(tokens)
    elif spoil == "other user":
        other = dovecot.new_user()
        oauth.add_user(other.username, other.password)
        username = other.username
    else:
        token = "not-" + token
    client = imap_client(dovecot)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            getattr(client, mechanism)(username, token)
    finally:
        client.shutdown()


def xoauth2(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, base64 (Google's and Microsoft's format)."""
    return base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode()).decode()


def test_pop3_takes_xoauth2(dovecot, oauth, mail_user):
    tokens = minted(oauth, mail_user)
    dovecot.append(mail_user, b"Subject: hi\r\n\r\nHi.\r\n")
    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=TIMEOUT)
    try:
        assert pop._shortcmd("AUTH XOAUTH2 " + xoauth2(mail_user.username, tokens.access_token)).startswith(b"+OK")
        assert pop.stat()[0] == 1
    finally:
        pop.quit()


def test_pop3_refuses_a_revoked_token(dovecot, oauth, mail_user):
    tokens = minted(oauth, mail_user)
    oauth.revoke_user(mail_user.username)
    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=TIMEOUT)
    try:
        # XOAUTH2's failure: a challenge carrying the error as JSON, answered empty, then -ERR.
        challenge = pop._shortcmd("AUTH XOAUTH2 " + xoauth2(mail_user.username, tokens.access_token))
        assert json.loads(base64.b64decode(challenge.removeprefix(b"+ ")))["status"] == "401"
        with pytest.raises(poplib.error_proto, match=re.escape("-ERR")):
            pop._shortcmd("")
    finally:
        pop.close()


def test_imap_login_while_the_provider_is_down_is_a_temporary_failure(dovecot, oauth, mail_user):
    tokens = minted(oauth, mail_user)
    oauth.down()
    client = imap_client(dovecot)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            client.oauth2_login(mail_user.username, tokens.access_token)
    finally:
        client.shutdown()
    oauth.up()
    with imap_client(dovecot) as client:
        client.oauth2_login(mail_user.username, tokens.access_token)


# -- the test SMTP server takes the tokens too ------------------------------------------------------

MAIL = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHi.\r\n"


def smtp_session(smtp) -> smtplib.SMTP:
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT)
    client.starttls(context=ssl.create_default_context(cafile=str(smtp.ca_file)))
    client.ehlo()
    return client


def oauthbearer(username: str, token: str) -> str:
    return f"n,a={username},\x01auth=Bearer {token}\x01\x01"


def sasl_answer(message: str, failure_reply: str):
    """smtplib's authobject: the message first, then `failure_reply` to an error challenge."""
    return lambda challenge=None: message if challenge is None else failure_reply


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_smtp_takes_a_token_and_records_the_mechanism(smtp, oauth, mail_user, mechanism):
    tokens = minted(oauth, mail_user)
    raw = base64.b64decode(xoauth2(mail_user.username, tokens.access_token)).decode()
    message = raw if mechanism == "XOAUTH2" else oauthbearer(mail_user.username, tokens.access_token)
    with smtp_session(smtp) as client:
        assert mechanism in client.esmtp_features["auth"].split()
        code, _ = client.auth(mechanism, sasl_answer(message, ""))
        assert code == 235
        client.sendmail("a@example.com", ["b@example.com"], MAIL)
    (mail,) = smtp.received
    assert (mail.login, mail.mechanism, mail.tls) == (mail_user.username, mechanism, True)


def test_smtp_password_login_records_its_mechanism(smtp):
    with smtp_session(smtp) as client:
        client.login(smtp.username, smtp.password)
        client.sendmail("a@example.com", ["b@example.com"], MAIL)
    assert smtp.received[0].mechanism in ("PLAIN", "LOGIN")


@pytest.mark.parametrize("mechanism, failure_reply", [("XOAUTH2", ""), ("OAUTHBEARER", "\x01")])
@pytest.mark.parametrize("spoil", ["revoked", "other user"])
def test_smtp_refuses_a_bad_token_with_535(smtp, oauth, mail_user, mechanism, failure_reply, spoil):
    tokens = minted(oauth, mail_user)
    username = mail_user.username
    if spoil == "revoked":
        oauth.revoke_grant(tokens)
    else:
        username = "someone-else"
    raw = base64.b64decode(xoauth2(username, tokens.access_token)).decode()
    message = raw if mechanism == "XOAUTH2" else oauthbearer(username, tokens.access_token)
    challenges = []

    def answer(challenge=None):
        challenges.append(challenge)
        return sasl_answer(message, failure_reply)(challenge)

    with smtp_session(smtp) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.auth(mechanism, answer)
    assert refused.value.smtp_code == 535
    assert json.loads(challenges[1])["status"] in ("401", "invalid_token")  # the error challenge
    assert smtp.logins == [(username, False)]
