"""The mailbox form in the browser: only the fields of the chosen protocol and sign-in show,
at desktop and phone widths, with no sideways scrolling."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import ADMIN

pytestmark = pytest.mark.browser


def login_as_admin(desk, page, password: str) -> None:
    desk.login(page, ADMIN, password)


def visible(page, name: str) -> bool:
    return page.locator(f"[name={name}]").is_visible()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_add_form_follows_the_protocol_and_the_sign_in(desk, browser, admin_password, screenshot_dir: Path, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        login_as_admin(desk, page, admin_password)
        page.goto(desk.url + "/mailboxes/add/")

        page.select_option("[name=protocol]", "maildir")
        assert visible(page, "path") and not visible(page, "folder")  # After import folds away until opened
        page.click("summary:has(.fold-name:text-is('After import'))")
        assert visible(page, "folder")
        for name in ("host", "port", "username", "password", "auth", "oauth_provider", "sent_folder"):
            assert not visible(page, name), name
        assert not page.locator("fieldset:has(> legend:text-is(\"Connection\"))").is_visible()  # the whole group
        page.screenshot(path=str(screenshot_dir / f"mailbox-add-maildir-{width}.png"), full_page=True)
        maildir_height = page.evaluate("document.documentElement.scrollHeight")

        page.select_option("[name=protocol]", "pop3")
        assert visible(page, "host") and visible(page, "password") and not visible(page, "path")
        assert not visible(page, "folder") and not visible(page, "oauth_client_id")

        page.select_option("[name=protocol]", "imap")
        page.select_option("[name=auth]", "oauth")
        assert not visible(page, "smtp_host")  # Sending folds away until it is opened (or in use)
        page.click("summary:has(.fold-name:text-is('Sending'))")
        for name in ("oauth_provider", "oauth_tenant", "oauth_client_id", "oauth_client_secret", "oauth_scope",
                     "smtp_auth", "sent_folder"):
            assert visible(page, name), name
        assert not visible(page, "password")
        page.screenshot(path=str(screenshot_dir / f"mailbox-add-oauth-{width}.png"), full_page=True)

        # Nothing scrolls sideways (the acknowledgement template used to, at phone width).
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        print(f"mailbox form at {width} px: {maildir_height} px tall for a Maildir mailbox")
    finally:
        context.close()


def test_an_oauth_mailbox_is_added_in_the_browser(desk, browser, admin_password):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        login_as_admin(desk, page, admin_password)
        page.goto(desk.url + "/mailboxes/add/")
        page.fill("[name=name]", "office365")
        page.select_option("[name=protocol]", "imap")
        page.fill("[name=host]", "outlook.office365.com")
        page.fill("[name=username]", "support@example.com")
        page.select_option("[name=auth]", "oauth")
        page.fill("[name=oauth_provider]", "microsoft")
        page.fill("[name=oauth_tenant]", "organizations")
        page.fill("[name=oauth_client_id]", "app-123")
        page.click("form.settings-form button[type=submit]")
        page.wait_for_url(desk.url + "/mailboxes/*/")
        text = page.locator("main").inner_text()
        assert "Added mailbox office365" in text and "not connected" in text and "app-123" in text

        page.click("text=Edit")
        assert visible(page, "oauth_client_id") and not visible(page, "password")  # as saved, before any script
    finally:
        context.close()
