"""Single sign-on for staff (postdesk.signin.sso, web/sso.py) against the session's real OpenID
Connect provider (tests/servers/oauth_provider.py): the Django test client plays the browser on
our side, `requests` signs in and consents at the provider, and the provider's redirect comes
back to /login/sso/callback/.  Its id_tokens are real RS256 JWTs checked against its /jwks.
"""

from __future__ import annotations

import html
import io
import itertools
import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command

from postdesk.models import AuditEvent, SignInEvent, SsoIdentity
from postdesk.oauth import providers
from postdesk.signin import sessions, throttle

pytestmark = pytest.mark.django_db

SECRET = "the-sso-client-secret"
CALLBACK = "http://testserver/login/sso/callback/"
LABEL = "Sign in with Example ID"
PASSWORD = "password-at-the-provider"
LOCKED_WORDS = "Too many failed sign-ins: try again in"
_numbers = itertools.count(1)


@pytest.fixture
def sso(settings, oauth):
    """Single sign-on on, against the session's provider, with a confidential client of its own."""
    providers.forget()
    client_id = f"postdesk-sso-{next(_numbers)}"
    oauth.add_client(client_id, secret=SECRET, redirect_uris=(CALLBACK,))
    settings.POSTDESK_SSO_ISSUER = oauth.issuer
    settings.POSTDESK_SSO_CLIENT_ID = client_id
    settings.POSTDESK_SSO_CLIENT_SECRET = SECRET
    settings.POSTDESK_SSO_LABEL = LABEL
    settings.POSTDESK_SSO_CREATE_STAFF = False
    settings.POSTDESK_SSO_DOMAINS = []
    settings.POSTDESK_SSO_PASSWORDS = True
    settings.POSTDESK_SSO_TRUST_EMAIL = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield oauth
    providers.forget()


def person(provider, email: str, verified: bool | None = True) -> str:
    """A new user at the provider (its `sub` is the returned name)."""
    name = f"sso-person-{next(_numbers)}"
    provider.add_user(name, PASSWORD, email=email, email_verified=verified)
    return name


def begin(client, *, remember: bool = False, next_url: str = ""):
    """Press the SSO button: the page that moves on to the provider."""
    data = {"next": next_url, **({"remember": "on"} if remember else {})}
    return client.post("/login/sso/", data)


def provider_url(page) -> str:
    assert page.status_code == 200, page.content.decode()[:500]
    return html.unescape(re.search(r'id="continue" href="([^"]+)"', page.content.decode()).group(1))


def consent(url: str, username: str, decision: str = "allow") -> str:
    """Sign in and decide on the provider's consent page: where it sends the browser back to."""
    answer = requests.post(url, data={"username": username, "password": PASSWORD, "decision": decision},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def come_back(client, location: str):
    assert location.startswith(CALLBACK), location
    return client.get(CALLBACK.removeprefix("http://testserver") + "?" + urlsplit(location).query)


def round_trip(client, username: str, **kwargs):
    return come_back(client, consent(provider_url(begin(client, **kwargs)), username))


def signed_in_as(client) -> User | None:
    pk = client.session.get("_auth_user_id")
    return User.objects.get(pk=pk) if pk else None


def refusal(response) -> str:
    assert response.status_code == 403, (response.status_code, response.content.decode()[:300])
    return re.search(r'<p class="error" role="alert">(.*?)</p>', response.content.decode(), re.S).group(1)


def failures(reason: str) -> list[SignInEvent]:
    return list(SignInEvent.objects.filter(kind=SignInEvent.SSO_FAILED, detail__startswith=reason + ":"))


@pytest.fixture
def phil(db):
    return User.objects.create_user("phil", "Phil@Example.org", "phil-password", is_staff=True)


# --- the button ---------------------------------------------------------------------------------


def test_the_button_appears_only_when_issuer_and_client_id_are_set(client, settings, oauth):
    settings.POSTDESK_SSO_ISSUER, settings.POSTDESK_SSO_CLIENT_ID = oauth.issuer, ""
    assert 'id="sso"' not in client.get("/login/").content.decode()
    assert client.post("/login/sso/").status_code == 404
    assert client.get("/login/sso/callback/?state=x&code=y").status_code == 404
    settings.POSTDESK_SSO_CLIENT_ID = "postdesk"
    page = client.get("/login/").content.decode()
    assert re.search(r'<button type="submit" class="sso" id="sso" formaction="/login/sso/" formnovalidate>'
                     r"Sign in with single sign-on</button>", page)


# --- linking ------------------------------------------------------------------------------------


def test_first_sign_in_links_the_member_with_that_verified_email(client, sso, phil, caplog):
    caplog.set_level(logging.INFO, logger="postdesk")
    name = person(sso, "phil@example.org")  # another case than the member's: matched anyway
    page = begin(client)
    query = dict(parse_qsl(urlsplit(provider_url(page)).query))
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    assert query["redirect_uri"] == CALLBACK and set(query["scope"].split()) == {"openid", "email", "profile"}
    answer = come_back(client, consent(provider_url(page), name))
    assert answer.status_code == 302 and answer["Location"] == "/"
    assert signed_in_as(client) == phil and client.session[sessions.METHOD_KEY] == "sso"
    assert client.session.get_expire_at_browser_close()  # "keep me signed in" was not ticked
    identity = SsoIdentity.objects.get(user=phil)
    assert (identity.issuer, identity.subject, identity.email) == (sso.issuer, name, "phil@example.org")
    assert identity.last_used_at is not None
    assert "single sign-on linked" in caplog.text and SECRET not in caplog.text


def test_keep_me_signed_in_and_next_survive_the_round_trip(client, sso, phil):
    answer = round_trip(client, person(sso, phil.email), remember=True, next_url="/queue/mine/")
    assert answer["Location"] == "/queue/mine/" and signed_in_as(client) == phil
    assert not client.session.get_expire_at_browser_close()


def test_a_next_to_another_site_is_not_followed(client, sso, phil):
    assert round_trip(client, person(sso, phil.email), next_url="https://evil.example/")["Location"] == "/"


def test_an_unverified_email_is_refused(client, sso, phil, caplog):
    caplog.set_level(logging.INFO, logger="postdesk.signin")
    message = refusal(round_trip(client, person(sso, phil.email, verified=False)))
    assert "is not verified" in message and signed_in_as(client) is None
    assert not SsoIdentity.objects.exists() and len(failures("unverified")) == 1
    assert [(r.getMessage(), r.outcome) for r in caplog.records if r.getMessage() == "single sign-on refused"] == [
        ("single sign-on refused", "unverified")]
    # Counted for the address, but against no account: the claim was not verified.
    (attempt,) = AccessAttempt.objects.all()
    assert attempt.username is None and attempt.ip_address == "127.0.0.1"


def test_no_email_verified_claim_is_trusted_only_when_told(client, sso, phil, settings):
    name = person(sso, phil.email, verified=None)  # as at Entra ID
    assert "is not verified" in refusal(round_trip(client, name))
    settings.POSTDESK_SSO_TRUST_EMAIL = True
    round_trip(client, name)
    assert signed_in_as(client) == phil


def test_two_members_with_the_email_are_refused(client, sso, phil):
    User.objects.create_user("phil2", "phil@example.org")
    message = refusal(round_trip(client, person(sso, "phil@example.org")))
    assert "More than one staff member has the email phil@example.org" in message
    assert signed_in_as(client) is None and failures("ambiguous")


def test_no_member_with_the_email_is_refused_unless_creation_is_allowed(client, sso, settings):
    assert "No staff member has the email new.person@example.org" in refusal(
        round_trip(client, person(sso, "new.person@example.org")))
    settings.POSTDESK_SSO_CREATE_STAFF = True
    User.objects.create_user("new.person", "someone-else@example.org")  # the name is taken
    round_trip(client, person(sso, "new.person@example.org"))
    created = signed_in_as(client)
    assert created.username == "new.person2" and created.email == "new.person@example.org"
    assert created.is_staff and not created.is_superuser and not created.has_usable_password()
    assert SsoIdentity.objects.filter(user=created).exists()


def test_domains_restrict_who_is_created_or_linked(client, sso, settings, phil):
    settings.POSTDESK_SSO_CREATE_STAFF = True
    settings.POSTDESK_SSO_DOMAINS = ["staff.example"]
    assert "not open to addresses at example.org" in refusal(round_trip(client, person(sso, phil.email)))
    assert "not open to addresses at elsewhere.example" in refusal(
        round_trip(client, person(sso, "mo@elsewhere.example")))
    round_trip(client, person(sso, "mo@staff.example"))
    assert signed_in_as(client).username == "mo"


def test_a_linked_identity_wins_even_when_its_email_changed(client, sso, phil):
    name = person(sso, phil.email)
    round_trip(client, name)
    client.logout()
    User.objects.create_user("other", "phil.new@example.org")
    sso.add_user(name, PASSWORD, email="phil.new@example.org")  # the provider's address changed
    round_trip(client, name)
    assert signed_in_as(client) == phil


def test_a_deactivated_member_is_refused(client, sso, phil):
    name = person(sso, phil.email)
    round_trip(client, name)
    client.logout()
    User.objects.filter(pk=phil.pk).update(is_active=False)
    assert refusal(round_trip(client, name)) == "Your staff account is deactivated."
    assert "is deactivated" in refusal(round_trip(client, person(sso, phil.email)))  # nor linked by email
    assert signed_in_as(client) is None and len(failures("inactive")) == 2


# --- the id_token -------------------------------------------------------------------------------


def test_an_id_token_for_another_audience_is_refused(client, sso, phil):
    sso.id_token_claims = {"aud": ["some-other-app"]}
    message = refusal(round_trip(client, person(sso, phil.email)))
    assert "could not be verified (id_token: invalid_claim" in message and "aud" in message
    assert signed_in_as(client) is None and failures("token")


def test_an_id_token_with_another_nonce_is_refused(client, sso, phil):
    url = provider_url(begin(client))
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query), nonce="a-nonce-we-never-sent")
    message = refusal(come_back(client, consent(parts._replace(query=urlencode(query)).geturl(), person(sso, phil.email))))
    assert "could not be verified (id_token: invalid_claim" in message and "nonce" in message
    assert signed_in_as(client) is None


def test_a_refusal_at_the_provider_is_refused_and_counted(client, sso, phil):
    message = refusal(come_back(client, consent(provider_url(begin(client)), person(sso, phil.email), "deny")))
    assert "The single sign-on failed: the sign-in was refused at the provider" in message
    assert AccessAttempt.objects.get().failures_since_start == 1


def test_a_provider_that_is_down_is_no_ones_failed_sign_in(client, sso, phil):
    location = consent(provider_url(begin(client)), person(sso, phil.email))
    sso.fail_with(503)
    assert "The single sign-on failed" in refusal(come_back(client, location))
    assert not AccessAttempt.objects.exists()


# --- the callback's state and the throttle -------------------------------------------------------


def test_a_bad_state_is_refused_and_counted(client, sso, caplog):
    caplog.set_level(logging.INFO, logger="postdesk.signin")
    message = refusal(client.get("/login/sso/callback/?state=forged&code=stolen"))
    assert "does not match a sign-in started here" in message
    assert failures("state") and AccessAttempt.objects.get().failures_since_start == 1
    assert "stolen" not in AccessAttempt.objects.get().get_data  # the code is masked like a password
    assert [r.getMessage() for r in caplog.records if r.name == "postdesk.signin"] == [
        "single sign-on refused", "sign-in failed"]


def test_five_bad_callbacks_lock_the_address_and_the_provider_is_not_asked(client, sso, phil):
    name = person(sso, phil.email)
    waiting = consent(provider_url(begin(client)), name)  # a real code, kept for later
    answers = [client.get("/login/sso/callback/", {"state": f"forged-{n}", "code": "x"}) for n in range(5)]
    assert [a.status_code for a in answers] == [403] * 4 + [throttle.LOCKED_STATUS]
    assert LOCKED_WORDS in answers[-1].content.decode()
    locked = come_back(client, waiting)
    assert locked.status_code == throttle.LOCKED_STATUS and LOCKED_WORDS in locked.content.decode()
    assert sso.issued(name) == 0 and signed_in_as(client) is None  # the code was never exchanged
    assert begin(client).status_code == throttle.LOCKED_STATUS  # nor is anyone sent to the provider
    # The address is locked for passwords too: one throttle for every way in.
    assert client.post("/login/", {"username": "phil", "password": "phil-password"}).status_code == 429


def test_an_email_locked_by_failed_sign_ins_is_refused_from_any_address(client, sso, phil):
    for n in range(5):  # someone guessing passwords for the address, from elsewhere
        client.post("/login/", {"username": "phil@example.org", "password": "guess"}, REMOTE_ADDR=f"203.0.113.{n}")
    locked = round_trip(client, person(sso, "phil@example.org"))
    assert locked.status_code == throttle.LOCKED_STATUS and LOCKED_WORDS in locked.content.decode()
    assert signed_in_as(client) is None and not SsoIdentity.objects.exists()
    assert SignInEvent.objects.get(kind=SignInEvent.SSO_FAILED).detail == "locked"


def test_an_unreachable_issuer_says_so_and_counts_against_no_one(client, sso, settings, closed_port):
    settings.POSTDESK_SSO_ISSUER = f"http://127.0.0.1:{closed_port}"
    page = begin(client)
    assert page.status_code == 502 and "Single sign-on is not available right now" in page.content.decode()
    assert not AccessAttempt.objects.exists()


# --- passwords ----------------------------------------------------------------------------------


def test_password_off_refuses_linked_members_until_unlinked(client, sso, settings, phil):
    settings.POSTDESK_SSO_PASSWORDS = False
    User.objects.create_user("nina", "nina@example.org", "nina-password")
    round_trip(client, person(sso, phil.email))
    client.logout()
    page = client.post("/login/", {"username": "phil", "password": "phil-password"})
    assert page.status_code == 200 and signed_in_as(client) is None
    assert f"This account signs in with single sign-on (“{LABEL}”)." in html.unescape(page.content.decode())
    assert client.post("/login/", {"username": "nina", "password": "nina-password"}).status_code == 302
    client.logout()
    out = io.StringIO()
    call_command("staff", "sso-unlink", "phil", stdout=out)
    assert "unlinked phil from single sign-on (1 links removed)" in out.getvalue()
    assert AuditEvent.objects.get(kind="signin.sso_unlinked").target == "phil"
    assert client.post("/login/", {"username": "phil", "password": "phil-password"}).status_code == 302


def test_passwords_on_lets_linked_members_use_theirs(client, sso, phil):
    round_trip(client, person(sso, phil.email))
    client.logout()
    assert client.post("/login/", {"username": "phil", "password": "phil-password"}).status_code == 302


# --- the redirect URL and the settings --------------------------------------------------------------


def test_the_redirect_url_follows_postdesk_public_url(client, sso, settings):
    settings.POSTDESK_PUBLIC_URL = "https://desk.example.com"
    query = dict(parse_qsl(urlsplit(provider_url(begin(client))).query))
    assert query["redirect_uri"] == "https://desk.example.com/login/sso/callback/"


def test_the_client_secret_can_come_from_a_file(tmp_path, monkeypatch):
    from postdesk import settings as module

    (tmp_path / "secret").write_text("from-the-file\n")
    monkeypatch.setenv("POSTDESK_SSO_CLIENT_SECRET", "from-the-environment")
    assert module._sso_client_secret() == "from-the-environment"
    monkeypatch.setenv("POSTDESK_SSO_CLIENT_SECRET_FILE", str(tmp_path / "secret"))
    assert module._sso_client_secret() == "from-the-file"
    assert "from-the-file" not in repr(__import__("postdesk.signin.sso", fromlist=["x"]).SsoConfig(
        "i", "c", "from-the-file", "l", False, (), True, False))


# --- the mailbox OAuth callback: the same throttle ------------------------------------------------


def test_bad_mailbox_oauth_callbacks_are_counted_and_locked(as_admin):
    answers = [as_admin.get("/mailboxes/oauth/callback/", {"state": f"forged-{n}", "code": "x"}) for n in range(6)]
    assert [a.status_code for a in answers[:4]] == [302] * 4
    assert [a.status_code for a in answers[4:]] == [throttle.LOCKED_STATUS] * 2
    assert LOCKED_WORDS in answers[-1].content.decode()
    (attempt,) = AccessAttempt.objects.all()
    assert attempt.username is None and attempt.failures_since_start == 5  # the address, not the admin's account


# --- a callback loaded by another site is no one's guess ------------------------------------------

LOADED_BY_ANOTHER_SITE = [
    {"HTTP_SEC_FETCH_MODE": "no-cors", "HTTP_SEC_FETCH_DEST": "image", "HTTP_SEC_FETCH_SITE": "cross-site"},
    {"HTTP_SEC_FETCH_MODE": "navigate", "HTTP_SEC_FETCH_DEST": "iframe", "HTTP_SEC_FETCH_SITE": "cross-site"},
    {"HTTP_SEC_FETCH_MODE": "cors", "HTTP_SEC_FETCH_DEST": "empty", "HTTP_SEC_FETCH_SITE": "cross-site"},
]


@pytest.mark.parametrize("headers", LOADED_BY_ANOTHER_SITE, ids=["img", "iframe", "fetch"])
def test_callbacks_another_site_loads_lock_no_one_out(client, sso, headers):
    """Five hidden <img src=".../callback/?state=x"> on any web page must not lock out the
    office behind the visitor's address: a callback carries no CSRF token, so only a page
    opened as a page counts (Fetch Metadata)."""
    for n in range(6):
        assert client.get("/login/sso/callback/", {"state": f"forged-{n}", "code": "x"}, **headers).status_code == 403
    assert not AccessAttempt.objects.exists()
    assert SignInEvent.objects.filter(kind=SignInEvent.SSO_FAILED).count() == 6  # still in the audit
    assert client.post("/login/", {"username": "nobody", "password": "x"}).status_code == 200  # not locked


def test_a_refused_callback_is_one_audit_row_not_two(client, sso):
    client.get("/login/sso/callback/?state=forged&code=x")
    assert list(SignInEvent.objects.values_list("kind", flat=True)) == [SignInEvent.SSO_FAILED]


@pytest.mark.parametrize("headers", LOADED_BY_ANOTHER_SITE[:1], ids=["img"])
def test_mailbox_callbacks_another_site_loads_lock_no_one_out(as_admin, headers):
    for n in range(6):
        assert as_admin.get("/mailboxes/oauth/callback/", {"state": f"forged-{n}", "code": "x"}, **headers).status_code == 302
    assert not AccessAttempt.objects.exists()
    assert SignInEvent.objects.filter(kind=SignInEvent.FAILED, method="mailbox oauth").count() == 6
