"""Two-factor sign-in in real Chromium against `postdesk serve`: a member turns it on at
/account/two-factor/ (the QR code is drawn, the key is read off the page as an app
would, a code computed from it confirms), the recovery codes are shown, then signing
out and in again asks for a code after the password and lands in the queue.  A
screenshot of the enrolment and of the code page goes to build/screenshots/."""

from __future__ import annotations

import re
import time
from base64 import b32decode
from pathlib import Path

import pytest
from django_otp.oath import TOTP

from .support import Seen

pytestmark = pytest.mark.browser

STEP = 30


def code(key: bytes, at: float) -> str:
    """What an authenticator app shows at `at` (django-otp's maths, as the server uses)."""
    totp = TOTP(key, STEP)
    totp.time = at
    return f"{totp.token():06d}"


def enrol(page, desk, screenshot_dir: Path) -> tuple[bytes, float]:
    """Turn two factors on as a member would; the key read off the page, and when it was confirmed."""
    page.goto(desk.url + "/account/two-factor/")
    page.get_by_role("button", name="Turn on").click()
    # The QR code, drawn inline, and the key as text for typing by hand.
    qr = page.locator("figure.qr-code svg")
    qr.wait_for()
    box = qr.bounding_box()
    assert box["width"] >= 150 and box["height"] >= 150, box
    grouped = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{4})+", grouped), grouped
    plain = grouped.replace(" ", "")
    page.screenshot(path=str(screenshot_dir / "two-factor-enrol.png"), full_page=True)
    key, now = b32decode(plain + "=" * (-len(plain) % 8)), time.time()
    page.fill("#id_confirm_code", code(key, now))
    page.get_by_role("button", name="Confirm").click()
    return key, now


def assert_recovery_codes_shown(page) -> None:
    codes = page.locator("#recovery-codes li code")
    codes.first.wait_for()
    assert codes.count() == 10
    assert all(re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", c) for c in codes.all_inner_texts())
    assert "shown only this once" in page.content()


def sign_in_with_code(page, desk, key: bytes, at: float, screenshot_dir: Path) -> None:
    page.fill("input[name=username]", desk.username)
    page.fill("input[name=password]", desk.password)
    page.click("form button[type=submit]")
    page.wait_for_url(desk.url + "/login/code/")
    page.screenshot(path=str(screenshot_dir / "two-factor-code.png"), full_page=True)
    page.fill("#id_code", code(key, at))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(desk.url + "/queue/general/")


def test_enrol_then_sign_in_with_password_and_code(desk, browser, screenshot_dir: Path):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    seen = Seen(origin=desk.url)
    seen.attach(context)
    page = context.new_page()
    try:
        desk.login(page)
        key, confirmed_at = enrol(page, desk, screenshot_dir)
        assert_recovery_codes_shown(page)
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(re.escape(desk.url) + r"/login/"))
        # The next step's code: the one that confirmed is spent (a step is accepted
        # once), and the server accepts a step either side of its clock.
        sign_in_with_code(page, desk, key, confirmed_at + STEP, screenshot_dir)
        assert page.locator("header.topbar .who").inner_text() == desk.username
        assert not seen.page_errors
        assert not [c for c in seen.console if "Content Security Policy" in c[1]], seen.console
    finally:
        context.close()
