"""Queues in real Chromium: filter, sort, save a view, and bulk actions (priority, tag,
close) on selected rows, at 1280 px and at 390 px, where a row is two or three lines.
Screenshots: build/screenshots/queue-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mail import make_message

pytestmark = pytest.mark.browser

SUBJECTS = ["Invoice twice", "Refund please", "VPN drops every hour", "Printer on fire", "Password reset"]


def rows(page):
    return page.locator("table.queue-table tbody tr")


def pick(page, subject: str) -> None:
    rows(page).filter(has_text=subject).locator("input[name=pick]").check()


def bulk(page, action: str, **values) -> None:
    page.select_option("#bulk-action", action)
    for selector, value in values.items():
        field = page.locator(f"#bulk-{selector}")
        field.select_option(value) if field.evaluate("e => e.tagName") == "SELECT" else field.fill(value)
    page.click("#bulk button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture(scope="module")
def delivered(desk):
    desk.deliver(*[make_message(subject=s, sender=f"Customer {i} <c{i}@customer.example>") for i, s in enumerate(SUBJECTS)])
    return desk


def test_filter_sort_save_and_bulk_close_at_1280(delivered, browser, screenshot_dir: Path):
    desk = delivered
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        desk.login(page)
        assert rows(page).count() == len(SUBJECTS)

        # Bulk: two rows urgent and tagged billing; the count follows the selection.
        pick(page, "Invoice twice")
        pick(page, "Refund please")
        assert page.locator("[data-bulk-count]").inner_text() == "2"
        bulk(page, "priority", priority="urgent")
        assert "priority: 2 changed" in page.locator(".flash").inner_text()
        pick(page, "Invoice twice")
        pick(page, "Refund please")
        bulk(page, "tag", tag="Billing")
        assert "tag: 2 changed" in page.locator(".flash").inner_text()

        # Filter by the filter bar: urgent and tagged billing; chips say so.
        page.click(".filters > summary")
        page.select_option(".filter-form select[name=priority]", "urgent")
        page.fill(".filter-form input[name=tag]", "billing")
        page.click(".filter-form button[type=submit]")
        page.wait_for_url("**/queue/general/?**")
        assert rows(page).count() == 2
        assert "priority: urgent" in page.locator(".chips").inner_text()
        assert "billing" in rows(page).first.locator("td.tags").inner_text()

        # Sort by number by the column header: highest first, then the other way round.
        page.click("th >> text=#")
        page.wait_for_url("**sort=number&order=desc")
        first = [int(n) for n in rows(page).locator("td.num").all_inner_texts()]
        assert first == sorted(first, reverse=True)
        page.click("th >> text=#")
        page.wait_for_url("**sort=number&order=asc")
        assert [int(n) for n in rows(page).locator("td.num").all_inner_texts()] == sorted(first)

        # Save the view; it shows as a chip and opens the same URL.
        page.click(".filters > summary")
        page.fill(".save-view input[name=name]", "My urgent")
        page.click(".save-view button[type=submit]")
        assert page.locator(".chip-view", has_text="My urgent").count() == 1
        saved_url = page.url
        page.screenshot(path=str(screenshot_dir / "queue-filtered-1280.png"), full_page=True)

        # Select all on this page, close in bulk: the filtered General queue is then empty.
        page.locator("[data-pick-all]").check()
        assert page.locator("[data-bulk-count]").inner_text() == "2"
        bulk(page, "close")
        assert "close: 2 changed" in page.locator(".flash").inner_text()
        assert rows(page).count() == 0
        page.goto(desk.url + "/queue/all/?status=closed")
        assert rows(page).count() == 2
        page.goto(saved_url)
        assert "No requests match these filters." in page.locator(".queue-list").inner_text()

        # An unknown value is a note, not an error page.
        page.goto(desk.url + "/queue/all/?status=someday&sort=colour")
        assert "unknown status “someday” ignored" in page.locator(".filter-notes").inner_text()
        assert rows(page).count() == len(SUBJECTS)
        page.screenshot(path=str(screenshot_dir / "queue-all-1280.png"), full_page=True)
        assert errors == []
    finally:
        context.close()


def test_queue_rows_are_short_at_390(delivered, browser, screenshot_dir: Path):
    desk = delivered
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        desk.login(page)
        page.goto(desk.url + "/queue/all/")
        assert rows(page).count() == len(SUBJECTS)
        heights = [rows(page).nth(i).bounding_box()["height"] for i in range(rows(page).count())]
        line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 20")
        assert max(heights) <= 4 * line, heights  # two or three lines, not a 240 px card
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        pick(page, "Printer on fire")
        page.select_option("#bulk-action", "priority")
        assert page.locator("#bulk-priority").is_visible() and not page.locator("#bulk-tag").is_visible()
        page.screenshot(path=str(screenshot_dir / "queue-all-390.png"), full_page=True)
    finally:
        context.close()
