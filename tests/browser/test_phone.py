"""The admin's pages at phone (390 px) and desktop (1280 px) widths, in Debian's Chromium
against `postdesk serve`: the top bar (a Menu button on a phone, opening the queue,
mailbox and admin links), the mailbox form (no sideways scroll, its length), the
quarantine list (sender, subject, size) and the account page.  Screenshots:
build/screenshots/phone-*.png and admin-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mail import maildir_deliver, make_message

from .support import ADMIN

pytestmark = pytest.mark.browser

WIDTHS = [390, 1280]


@pytest.fixture(scope="module")
def held_message(desk, tmp_path_factory) -> None:
    """One message over a tiny size limit, in the quarantine of the module's desk."""
    inbox = tmp_path_factory.mktemp("tiny") / "maildir"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    desk.inst.run("mailbox", "add", "tiny", "--protocol", "maildir", "--path", str(inbox), "--after", "keep",
                  "--size-limit", "0.001")
    maildir_deliver(inbox, make_message(subject="Scanned licence agreement", sender="Jürgen Weiß <jurgen@example.com>",
                                        attachments=[("scan.bin", "application/octet-stream", bytes(range(256)) * 16)]))
    desk.inst.run("fetch", "--mailbox", "tiny")


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def height_of(page, selector: str) -> float:
    return page.locator(selector).bounding_box()["height"]


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_pages_at_phone_and_desktop_width(desk, browser, admin_password, held_message, screenshot_dir: Path, width):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        desk.login(page, ADMIN, admin_password)
        topbar = height_of(page, "header.topbar")
        mailboxes_link = page.locator("header.topbar a", has_text="Mailboxes")
        if width == 390:
            # One line: brand, Menu, account, log out (it took 190 px with every link shown).
            assert topbar <= 56, topbar
            assert page.locator(".menu-button").is_visible() and not mailboxes_link.is_visible()
            page.screenshot(path=str(screenshot_dir / "phone-topbar-390.png"))
            page.click(".menu-button")
            assert mailboxes_link.is_visible() and page.get_attribute(".menu-button", "aria-expanded") == "true"
            assert page.locator("header.topbar a", has_text="General").is_visible()
            page.screenshot(path=str(screenshot_dir / "phone-menu-open-390.png"))
            page.keyboard.press("Escape")
            assert not mailboxes_link.is_visible()
        else:
            assert not page.locator(".menu-button").is_visible() and mailboxes_link.is_visible()
            assert topbar <= 60, topbar
        print(f"top bar at {width} px: {topbar:.0f} px tall")

        # The mailbox form: short, nothing sideways, the acknowledgement template inside its card.
        page.goto(desk.url + "/mailboxes/add/")
        page.select_option("[name=protocol]", "imap")
        length = page.evaluate("document.documentElement.scrollHeight")
        assert length < 2000, length  # it was about 3,500 px with every section open
        assert no_sideways_scroll(page)
        page.screenshot(path=str(screenshot_dir / f"admin-mailbox-form-{width}.png"), full_page=True)
        page.click("summary:has(.fold-name:text-is('Acknowledgement'))")
        page.check("[name=ack_enabled]")
        assert page.locator("[name=ack_body]").is_visible() and no_sideways_scroll(page)
        card = page.locator("details:has([name=ack_body])").bounding_box()
        body = page.locator("[name=ack_body]").bounding_box()
        assert body["x"] + body["width"] <= card["x"] + card["width"] + 1
        print(f"mailbox form at {width} px: {length} px tall (IMAP, sections folded)")

        # The quarantine: who and what, with a size in KB.
        page.goto(desk.url + "/quarantine/")
        row = page.locator("table.quarantine tbody tr").first
        text = row.inner_text()
        assert "Jürgen Weiß" in text and "Scanned licence agreement" in text and " KB" in text and "0.0 MB" not in text
        assert no_sideways_scroll(page)
        page.screenshot(path=str(screenshot_dir / f"admin-quarantine-{width}.png"), full_page=True)

        # The account page.
        page.goto(desk.url + "/account/")
        assert page.locator("[name=time_zone]").is_visible() and page.locator("[name=signature]").is_visible()
        assert no_sideways_scroll(page)
        page.screenshot(path=str(screenshot_dir / f"admin-account-{width}.png"), full_page=True)
    finally:
        context.close()


def test_the_account_page_saves_the_time_zone_and_signature(desk, browser, screenshot_dir: Path):
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        desk.login(page)
        page.goto(desk.url + "/account/")
        page.fill("[name=first_name]", "Phil")
        page.select_option("[name=time_zone]", "Europe/Berlin")
        page.fill("[name=signature]", "Phil\nExample Support")
        page.click("form.account-form button[type=submit]")
        page.wait_for_url(desk.url + "/account/")
        assert "Saved your details." in page.locator(".flash").inner_text()
        assert page.input_value("[name=time_zone]") == "Europe/Berlin"
        assert page.input_value("[name=signature]") == "Phil\nExample Support"
        page.screenshot(path=str(screenshot_dir / "phone-account-saved-390.png"), full_page=True)
    finally:
        context.close()
