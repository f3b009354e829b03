"""Connecting an OAuth2 mailbox in the browser (issue 12): Connect, the test provider's
consent page, back to Postdesk signed in; a refusal, a forged callback, and a revoked
grant (the banner, the metric, Reconnect), each checked against the real provider,
Dovecot introspecting its tokens, and `postdesk fetch`."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from tests.servers.dovecot import MailUser
from tests.support.mail import DEFAULT_DATE, new_message_id

from .support import ADMIN

pytestmark = pytest.mark.browser

SCOPE = "mail offline_access"
CALLBACK_PATH = "/mailboxes/oauth/callback/"
EXPIRED_TEXT = "sign-in expired: reconnect the mailbox"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class OAuthMailbox:
    """A mailbox of the desk that signs in at the test provider, not yet connected; its own
    Dovecot user (also a provider user), so no other mailbox of the desk reads its INBOX."""

    name: str
    user: MailUser
    client_id: str


@pytest.fixture
def oauth_mailbox(desk, oauth) -> OAuthMailbox:
    name = f"oauth{next(_numbers)}"
    user = desk.dovecot.new_user(name)
    oauth.add_user(user.username, user.password)
    client_id = f"postdesk-browser-{name}"
    oauth.add_client(client_id, redirect_uris=(desk.url + CALLBACK_PATH,))  # public: PKCE, no secret
    desk.inst.run("mailbox", "add", name, "--protocol", "imap", "--host", desk.dovecot.host,
                  "--port", desk.dovecot.ports.imap, "--security", "none", "--username", user.username,
                  "--after", "keep", "--oauth", oauth.issuer, "--oauth-client-id", client_id, "--oauth-scope", SCOPE)
    return OAuthMailbox(name, user, client_id)


@pytest.fixture
def page(desk, browser, admin_password):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        desk.login(page, ADMIN, admin_password)
        yield page
    finally:
        context.close()


# --------------------------------------------------------------------------- helpers


def shown(desk, mailbox: OAuthMailbox) -> dict:
    return desk.inst.json("mailbox", "show", mailbox.name)


def open_mailbox_page(desk, page, mailbox: OAuthMailbox) -> None:
    page.goto(desk.url + "/mailboxes/")
    page.click(f"main a:text-is('{mailbox.name}')")
    page.wait_for_selector(".oauth-panel")


def oauth_state(page) -> str:
    return page.locator(".oauth-panel .oauth-state").inner_text().strip()


def consent(page, oauth, mailbox: OAuthMailbox, decision: str) -> None:
    """On the provider's consent page (reached from Connect/Reconnect): sign in as the
    mailbox's user and Allow or Deny; wait until the provider has sent us back."""
    page.wait_for_url(lambda url: url.startswith(oauth.issuer + "/authorize?"))
    assert page.locator("#client").inner_text() == mailbox.client_id
    page.fill("input[name=username]", mailbox.user.username)
    page.fill("input[name=password]", mailbox.user.password)
    page.click(f"button[name=decision][value={decision}]")
    page.wait_for_url(lambda url: not url.startswith(oauth.issuer))
    page.wait_for_load_state()


def connect(desk, page, oauth, mailbox: OAuthMailbox) -> None:
    open_mailbox_page(desk, page, mailbox)
    page.click(".oauth-panel button[name=connect]")
    consent(page, oauth, mailbox, "allow")
    assert re.fullmatch(re.escape(desk.url) + r"/mailboxes/\d+/", page.url), page.url


def flashed(page) -> str:
    """The messages at the top of the page (Django's messages framework)."""
    return page.locator(".flash").inner_text()


def message(subject: str) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Olga Customer <olga@customer.example>"
    msg["To"] = "Support <support@desk.example>"
    msg["Subject"] = subject
    msg["Date"] = DEFAULT_DATE
    msg["Message-ID"] = new_message_id()
    msg.set_content(f"{subject}: sent to an OAuth2 mailbox.\n")
    return msg.as_bytes()


def fetch(desk, mailbox: OAuthMailbox) -> dict:
    """`postdesk fetch --mailbox NAME --json`: this mailbox's report (exit code not checked:
    a failed sign-in is a report with its error)."""
    proc = desk.inst.run("fetch", "--mailbox", mailbox.name, "--json", check=False)
    (report,) = [r for r in json.loads(proc.stdout) if r["mailbox"] == mailbox.name]
    return report


def subjects(desk) -> list[str]:
    return [r["subject"] for r in desk.inst.requests()]


def deliver(desk, mailbox: OAuthMailbox, subject: str) -> dict:
    desk.dovecot.start()  # no-op while running
    desk.dovecot.append(mailbox.user, message(subject))
    return fetch(desk, mailbox)


# --------------------------------------------------------------------------- the tests


def test_connect_allow_signs_the_mailbox_in_and_fetch_imports(desk, page, oauth, oauth_mailbox, screenshot_dir: Path):
    open_mailbox_page(desk, page, oauth_mailbox)
    assert oauth_state(page).startswith("not connected")
    assert page.locator(".oauth-panel .redirect-uri").inner_text() == desk.url + CALLBACK_PATH
    assert page.locator(".oauth-panel button[name=connect]").inner_text() == "Connect"
    assert "no TLS; the access token and mail cross the network" in page.locator(".warnings").inner_text()
    page.screenshot(path=str(screenshot_dir / "mailbox-oauth-not-connected.png"), full_page=True)

    page.click(".oauth-panel button[name=connect]")
    consent(page, oauth, oauth_mailbox, "allow")

    assert f"Connected {oauth_mailbox.name}." in flashed(page)
    assert oauth_state(page) == "signed in"
    assert page.locator(".oauth-panel button[name=connect]").inner_text() == "Reconnect"
    page.screenshot(path=str(screenshot_dir / "mailbox-oauth-signed-in.png"), full_page=True)
    # The long labels of the Sending and Acknowledgement panels used to push the page sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert shown(desk, oauth_mailbox)["oauth"]["state"] == "ok"

    report = deliver(desk, oauth_mailbox, "Hello over OAuth2")
    assert not report["error"] and report["created"] == 1, report
    assert "Hello over OAuth2" in subjects(desk)


def test_deny_leaves_the_mailbox_not_connected(desk, page, oauth, oauth_mailbox):
    open_mailbox_page(desk, page, oauth_mailbox)
    page.click(".oauth-panel button[name=connect]")
    consent(page, oauth, oauth_mailbox, "deny")

    text = flashed(page)
    assert f"{oauth_mailbox.name} was not connected" in text, text
    assert "denied" in text.lower(), text
    assert oauth_state(page).startswith("not connected")
    assert shown(desk, oauth_mailbox)["oauth"]["state"] == "not connected"


def test_a_forged_callback_saves_nothing(desk, page, oauth, oauth_mailbox):
    page.goto(desk.url + CALLBACK_PATH + "?state=bogus&code=x")
    text = flashed(page)
    assert "The sign-in could not be finished" in text and "Press Connect again" in text, text
    assert shown(desk, oauth_mailbox)["oauth"]["state"] == "not connected"


def test_a_revoked_grant_shows_the_banner_and_reconnect_brings_it_back(desk, page, oauth, oauth_mailbox,
                                                                       screenshot_dir: Path):
    oauth.access_lifetime = 1  # so the fetch after the revocation must refresh (and is refused)
    connect(desk, page, oauth, oauth_mailbox)
    oauth.revoke_user(oauth_mailbox.user.username)

    report = fetch(desk, oauth_mailbox)
    assert report["status"] == "failed" and report["error_kind"] == "oauth", report
    assert EXPIRED_TEXT in report["error"], report
    assert shown(desk, oauth_mailbox)["oauth"]["state"] == "expired"

    page.goto(desk.url + "/queue/general/")
    banner = page.locator(".banner-signin form", has_text=oauth_mailbox.name)
    assert EXPIRED_TEXT in banner.inner_text()
    page.screenshot(path=str(screenshot_dir / "banner-oauth-sign-in-expired.png"), full_page=False)

    page.goto(desk.url + "/metrics")
    metric = re.search(rf'^postdesk_mailbox_oauth_refresh_failures\{{mailbox="{oauth_mailbox.name}"\}} (\S+)$',
                       page.locator("body").inner_text(), re.M)
    assert metric and float(metric.group(1)) >= 1, page.locator("body").inner_text()
    listed = desk.inst.run("mailbox", "list").stdout
    assert EXPIRED_TEXT in listed, listed

    page.goto(desk.url + "/queue/general/")
    page.locator(".banner-signin form", has_text=oauth_mailbox.name).get_by_role("button", name="Reconnect").click()
    consent(page, oauth, oauth_mailbox, "allow")
    assert f"Connected {oauth_mailbox.name}." in flashed(page)
    assert oauth_state(page) == "signed in"
    assert page.locator(".banner-signin form", has_text=oauth_mailbox.name).count() == 0

    report = deliver(desk, oauth_mailbox, "Back after Reconnect")
    assert not report["error"] and report["created"] == 1, report
    assert "Back after Reconnect" in subjects(desk)
