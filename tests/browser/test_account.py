"""Your sessions, in real Chromium against `postdesk serve`: two browsers signed in as
the same member; the first finds both on /account/ (itself marked "this browser"),
ends the other, and the other is signed out at its next page.  Signing out makes the
old cookie worthless, even replayed in a fresh browser.  The admin's sign-in page
shows the log and the open sessions.  Screenshots go to build/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .support import ADMIN

pytestmark = pytest.mark.browser

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")


def test_end_a_session_from_another_browser(desk, browser, screenshot_dir: Path):
    laptop = browser.new_context(viewport={"width": 1280, "height": 800})
    phone = browser.new_context(user_agent=PHONE)
    try:
        here, there = laptop.new_page(), phone.new_page()
        desk.login(there)
        desk.login(here)
        here.click("header.topbar a.who")
        here.wait_for_url(desk.url + "/account/")
        rows = here.locator("table.sessions tbody tr")
        assert rows.count() == 2
        mine = here.locator("table.sessions tbody tr.current")
        assert re.search(r"Chrome \d+ on Linux this browser", mine.inner_text())
        other = rows.filter(has_text="Safari 17 on iOS")
        assert "UTC" in other.inner_text()
        here.screenshot(path=str(screenshot_dir / "account-sessions.png"), full_page=True)

        other.get_by_role("button", name="End").click()
        here.wait_for_load_state()
        assert "Ended the session of Safari 17 on iOS" in here.locator(".flash").inner_text()
        assert here.locator("table.sessions tbody tr").count() == 1

        there.goto(desk.url + "/queue/general/")
        assert there.url.startswith(desk.url + "/login/")
    finally:
        laptop.close()
        phone.close()


def test_sign_out_makes_the_old_cookie_worthless(desk, browser):
    first = browser.new_context()
    try:
        page = first.new_page()
        desk.login(page)
        cookies = first.cookies()
        page.click("header.topbar form.logout button")
        page.wait_for_url(re.compile(re.escape(desk.url) + "/login/"))
    finally:
        first.close()
    replay = browser.new_context()
    try:
        replay.add_cookies(cookies)
        page = replay.new_page()
        page.goto(desk.url + "/queue/general/")
        assert page.url.startswith(desk.url + "/login/")
    finally:
        replay.close()


def test_the_admin_sign_in_page(desk, browser, admin_password, screenshot_dir: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(desk.url + "/login/")
        page.fill("input[name=username]", desk.username)
        page.fill("input[name=password]", "not the password")
        page.click("form button[type=submit]")
        desk.login(page, ADMIN, admin_password)
        page.click("nav[aria-label=Administration] >> text=Sign-ins")
        page.wait_for_url(desk.url + "/staff/signins/")
        log = page.locator("table.signins tbody")
        assert "signed in" in log.inner_text() and "failed" in log.inner_text()
        page.select_option("#f-kind", "failed")
        page.click("form.filters button[type=submit]")
        page.wait_for_url(re.compile(r"kind=failed"))
        assert page.locator("table.signins tbody tr").count() >= 1
        assert "signed in" not in page.locator("table.signins tbody").inner_text()
        assert page.locator("table.sessions tbody tr", has_text=ADMIN).count() == 1
        page.screenshot(path=str(screenshot_dir / "staff-signins.png"), full_page=True)
    finally:
        context.close()
