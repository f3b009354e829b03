"""A request page worked from the keyboard and the side column, in Chromium at 1280 and
390 px: j / k through the queue one came from, r / n / a / c, the ? dialog, shortcuts
silent while typing; tags, priority, and waiting on the customer with a snooze."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.mail import make_message

pytestmark = pytest.mark.browser

SUBJECTS = ("Invoice twice", "Password reset loops", "Printer on fire")
REQUEST_URL = re.compile(r".*/requests/\d+/$")


def open_from_queue(page, desk, subject: str) -> None:
    page.goto(desk.url + "/queue/general/")
    page.locator("table.requests tbody tr", has_text=subject).locator("td.subject > a").click()
    page.wait_for_url(REQUEST_URL)


def heading(page) -> str:
    return page.locator("h1").inner_text()


def active_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


@pytest.fixture(scope="module")
def requests(desk):
    desk.deliver(*(make_message(subject=s, sender="Dana Customer <dana@customer.example>", body=f"{s}.\n")
                   for s in SUBJECTS))
    return SUBJECTS


def test_keys_tags_priority_and_snooze_at_1280(desk, browser, requests, screenshot_dir: Path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        desk.login(page)
        order = page.locator("table.requests td.subject > a").all_inner_texts()
        open_from_queue(page, desk, order[0])

        # j / k: the queue this request was opened from, in its order.
        page.keyboard.press("j")
        page.wait_for_url(REQUEST_URL)
        assert order[1] in heading(page)
        page.keyboard.press("k")
        page.wait_for_function("document.querySelector('h1').innerText.includes(%r)" % order[0])
        page.keyboard.press("k")  # the first of the page: said, not a jump
        assert "first request" in page.locator("#key-hint").inner_text()

        # ? lists the shortcuts; Esc closes the dialog.
        page.keyboard.press("?")
        dialog = page.locator("dialog#shortcuts")
        assert dialog.is_visible() and "next / previous request" in dialog.inner_text()
        page.screenshot(path=str(screenshot_dir / "request-shortcuts.png"))
        page.keyboard.press("Escape")
        assert not dialog.is_visible()

        # a focuses the assignee list; r the reply, where letters are text, not shortcuts.
        page.keyboard.press("a")
        assert active_id(page) == "assignee"
        page.keyboard.press("Escape")
        page.keyboard.press("r")
        assert active_id(page) == "reply-text"
        page.keyboard.type("jack cares")
        assert page.input_value("#reply-text") == "jack cares" and order[0] in heading(page)
        page.fill("#reply-text", "")
        page.keyboard.press("Escape")
        page.keyboard.press("n")
        assert active_id(page) in ("reply-text", "note-text")
        page.keyboard.press("Escape")

        # Tags with the datalist's field, removed with the small ×; priority.
        for name in ("Billing", "vip"):
            page.fill("#tag-new", name)
            page.locator("form.tag-add button").click()
        expect(page.locator(".tag-list .tag-name")).to_have_text(["billing", "vip"])
        page.locator("button[aria-label='Remove tag billing']").click()
        expect(page.locator(".tag-list .tag-name")).to_have_text(["vip"])
        page.select_option("#priority", "urgent")
        page.locator("form.priority button").click()
        expect(page.locator(".flash")).to_contain_text("priority urgent")
        assert page.locator("#priority").input_value() == "urgent"

        # Waiting on the customer, back tomorrow at 9:00.
        page.locator(".snooze summary").click()
        page.locator("button[name=snooze][value=tomorrow]").click()
        expect(page.locator(".status-line")).to_contain_text("back on")
        status = page.locator(".status-line").inner_text()
        assert "waiting on customer" in status and "back on" in status and "09:00" in status
        assert "waiting on the customer until" in page.locator(".history").inner_text()
        page.screenshot(path=str(screenshot_dir / "request-actions-1280.png"), full_page=True)

        # c closes (a snoozed request too); the history says so.
        page.keyboard.press("c")
        page.locator(".request-actions form[action$='/reopen/']").wait_for()
        assert "closed" in page.locator(".status-line").inner_text()
        assert page.locator(".request-actions form[action$='/reopen/']").count() == 1
        assert not errors, errors
    finally:
        context.close()


def test_the_side_column_at_390(desk, browser, requests, screenshot_dir: Path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        desk.login(page)
        open_from_queue(page, desk, requests[1])
        page.locator(".snooze summary").click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = page.locator(".request-actions").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.screenshot(path=str(screenshot_dir / "request-actions-390.png"), full_page=True)
    finally:
        context.close()
