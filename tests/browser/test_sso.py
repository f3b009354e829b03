"""Single sign-on in Chromium: /login/, the SSO button, the test OpenID Connect provider's
sign-in and consent page, and back on the queue signed in as the staff member with that
verified email (tests/web/test_sso.py holds the rules; this is the round trip in a browser)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.installation import Installation

from .conftest import PostdeskServer

pytestmark = pytest.mark.browser

STAFF = "sara"
EMAIL = "sara@desk.example"
CLIENT_ID = "postdesk-browser-sso"
LABEL = "Sign in with Example ID"
CALLBACK_PATH = "/login/sso/callback/"


class SsoDesk:
    def __init__(self, url: str, provider_user: str, provider_password: str):
        self.url, self.provider_user, self.provider_password = url, provider_user, provider_password


@pytest.fixture(scope="module")
def sso_desk(tmp_path_factory, oauth_provider) -> Iterator[SsoDesk]:
    """`postdesk serve` with single sign-on at the session's provider (the client secret in a
    file), a staff member, and that member's account at the provider (same email)."""
    root = tmp_path_factory.mktemp("sso-desk")
    inst = Installation(root / "installation")
    server = None
    try:
        inst.run("staff", "add", STAFF, "--email", EMAIL)  # no password: single sign-on only
        secret = secrets.token_urlsafe(16)
        (root / "sso-secret").write_text(secret + "\n")
        server = PostdeskServer(inst, env={
            "POSTDESK_SSO_ISSUER": oauth_provider.issuer, "POSTDESK_SSO_CLIENT_ID": CLIENT_ID,
            "POSTDESK_SSO_CLIENT_SECRET_FILE": str(root / "sso-secret"), "POSTDESK_SSO_LABEL": LABEL})
        oauth_provider.add_client(CLIENT_ID, secret=secret, redirect_uris=(server.url + CALLBACK_PATH,))
        password = secrets.token_urlsafe(12)
        oauth_provider.add_user("sara-at-the-provider", password, email=EMAIL)
        server.wait_until_listening()
        yield SsoDesk(server.url, "sara-at-the-provider", password)
    finally:
        try:
            if server is not None:
                server.stop()
        finally:
            inst.close()


def test_the_sso_button_signs_in_through_the_provider(sso_desk, browser, oauth_provider, screenshot_dir: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(sso_desk.url + "/login/")
        assert page.locator("#sso").inner_text() == LABEL
        page.screenshot(path=str(screenshot_dir / "login-sso-button.png"))
        page.check("#id_remember")
        page.click("#sso")  # no user name or password typed: the form is not validated for this button

        page.wait_for_url(lambda url: url.startswith(oauth_provider.issuer + "/authorize?"))
        assert page.locator("#client").inner_text() == CLIENT_ID
        page.fill("input[name=username]", sso_desk.provider_user)
        page.fill("input[name=password]", sso_desk.provider_password)
        page.click("button[name=decision][value=allow]")

        page.wait_for_url(sso_desk.url + "/queue/general/")
        assert page.locator(".who").inner_text() == STAFF
        session = next(c for c in context.cookies() if c["name"] == "sessionid")
        assert session["expires"] > 0  # "keep me signed in" came back through the provider
    finally:
        context.close()
