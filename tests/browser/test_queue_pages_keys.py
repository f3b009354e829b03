"""j / k on a request page go on across the pages of the queue one came from (keys.js and
the queue's ?numbers=1 answer), with its filters and sort, in Chromium at 1280 px; a request
closed meanwhile shifts the pages, and the end of the queue is said.
Screenshot: build/screenshots/request-end-of-queue.png."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

# 60 requests made in one statement, every tenth closed: the 54 open ones fill page 1 (50) and
# page 2 (4) of QUEUE, which shows open ones only, by number.
MAKE = """
import json
from postdesk.models import Request
made = Request.objects.bulk_create([Request(subject=f"Bulk request {i:03}", status="closed" if i % 10 == 5 else "open")
                                    for i in range(60)])
print(json.dumps([r.pk for r in made if r.status == "open"]))
"""
QUEUE = "/queue/all/?status=open&sort=number&order=asc"


def shell(desk, code: str) -> str:
    return desk.inst.run("shell", "--no-imports", "-c", code).stdout


def press(page, desk, key: str, number: int) -> None:
    page.keyboard.press(key)
    page.wait_for_url(f"{desk.url}/requests/{number}/")


def test_j_and_k_go_on_across_queue_pages_at_1280(desk, browser, screenshot_dir: Path):
    open_ones = json.loads(shell(desk, MAKE).strip().splitlines()[-1])
    assert len(open_ones) == 54
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        desk.login(page)
        page.goto(desk.url + QUEUE)
        page.locator("table.requests td.subject > a").nth(49).click()  # the last of page 1
        page.wait_for_url(f"{desk.url}/requests/{open_ones[49]}/")

        # Closed since the page was shown: page 2's first request is now page 1's last; j takes it.
        shell(desk, f"from postdesk.models import Request; Request.objects.filter(pk={open_ones[0]}).update(status='closed')")
        press(page, desk, "j", open_ones[50])
        press(page, desk, "k", open_ones[49])
        press(page, desk, "j", open_ones[50])
        press(page, desk, "j", open_ones[51])  # the fresh page 2, filtered and sorted as the queue was
        press(page, desk, "k", open_ones[50])  # back across the boundary
        for number in open_ones[51:]:
            press(page, desk, "j", number)

        page.keyboard.press("j")  # the very end: said, not a jump
        hint = page.locator("#key-hint")
        hint.wait_for()
        assert "End of the queue" in hint.inner_text() and page.url == f"{desk.url}/requests/{open_ones[-1]}/"
        page.screenshot(path=str(screenshot_dir / "request-end-of-queue.png"))

        page.keyboard.press("u")  # back to the page that holds it
        page.wait_for_url(f"{desk.url}{QUEUE}&page=2")
        assert not errors, errors
    finally:
        context.close()
