"""Answering in the browser (issue 15), at 1280 and 390 px: a draft comes back after a
reload, a canned reply is inserted with its placeholders filled, a file dropped on the
form is attached, the note has its own tab, and "Send and close" sends (through the
test SMTP server) and closes, signed by the mailbox's signature."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import ADMIN
from tests.support.mail import make_message

pytestmark = pytest.mark.browser

WIDTHS = (1280, 390)


def add_canned_reply(desk, browser, admin_password: str) -> None:
    """Through the admin pages, as an admin would."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        desk.login(page, ADMIN, admin_password)
        page.goto(desk.url + "/staff/canned/add/")
        page.fill("#id_title", "Reboot first")
        page.fill("#id_body", "Hello {customer_name}, please reboot once (request {request_number}).")
        page.click("button.primary")
        expect(page.locator("table.canned-list")).to_contain_text("Reboot first")
    finally:
        context.close()


def drop_file(page, name: str, content: str) -> None:
    """What a browser does when a file is dragged from the desktop onto the form."""
    transfer = page.evaluate_handle(
        "([name, content]) => { const dt = new DataTransfer();"
        " dt.items.add(new File([content], name, { type: 'text/plain' })); return dt; }", [name, content])
    page.dispatch_event("form.reply-form .dropzone", "drop", {"dataTransfer": transfer})


def drop_big_file(page, name: str, size: int) -> None:
    transfer = page.evaluate_handle(
        "([name, size]) => { const dt = new DataTransfer();"
        " dt.items.add(new File([new Uint8Array(size)], name)); return dt; }", [name, size])
    page.dispatch_event("form.reply-form .dropzone", "drop", {"dataTransfer": transfer})


def answer_at(desk, browser, width: int, screenshot_dir: Path) -> int:
    subject = f"Screen flickers at {width}"
    desk.deliver(make_message(subject=subject, sender="Dana Customer <dana@customer.example>",
                              body="The screen flickers when I open the lid.\n"))
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        desk.login(page)
        page.goto(desk.url + "/queue/all/")
        page.locator("table.requests tbody tr", has_text=subject).locator("td.subject > a").click()
        page.wait_for_url(re.compile(r".*/requests/\d+/$"))
        number = int(page.url.rstrip("/").rsplit("/", 1)[1])

        # Typed, saved by itself, back after a reload.
        page.locator("#reply-text").press_sequentially("Thanks for the details.")
        expect(page.locator(".draft-saved")).to_contain_text("Draft saved")
        page.reload()
        expect(page.locator("#reply-text")).to_have_value("Thanks for the details.")

        # The canned picker: filtered as one types, inserted with the placeholders filled.
        page.fill("#canned-search", "reboot")
        page.locator(".canned-option", has_text="Reboot first").click()
        expect(page.locator("#reply-text")).to_have_value(
            f"Thanks for the details.\n\nHello Dana Customer, please reboot once (request {number}).")

        if width == WIDTHS[0]:  # once: more than 25 MB is refused before sending, and can be removed
            drop_big_file(page, "video.mp4", 26 * 1024 * 1024)
            expect(page.locator(".files-error")).to_contain_text("most mail servers refuse more than 25 MB")
            page.click("button:has-text('Send and close')")
            expect(page.locator(".files-error")).to_be_visible()  # still on the page: nothing sent
            page.click("button[aria-label='Remove video.mp4']")
            expect(page.locator(".files-error")).to_be_hidden()
        drop_file(page, "lid-angle.txt", "opened to 110 degrees")
        expect(page.locator(".chosen-files")).to_contain_text("lid-angle.txt")
        assert page.evaluate("document.getElementById('reply-files').files.length") == 1
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the form scrolls sideways"
        page.locator("section.compose").screenshot(path=str(screenshot_dir / f"compose-reply-{width}.png"))

        page.click("#tab-note")
        expect(page.locator("#note-pane")).to_be_visible()
        expect(page.locator("#reply-pane")).to_be_hidden()
        expect(page.locator(".note-label")).to_contain_text("Internal note: colleagues only")
        page.locator("section.compose").screenshot(path=str(screenshot_dir / f"compose-note-{width}.png"))
        page.click("#tab-reply")

        page.click("button:has-text('Send and close')")
        expect(page.locator(".flash")).to_contain_text("The request is closed")
        expect(page.locator(".request-head .badge")).to_have_text(re.compile("closed", re.I))
        expect(page.locator("#reply-text")).to_have_value("")  # the draft went with the reply
        page.screenshot(path=str(screenshot_dir / f"compose-sent-{width}.png"), full_page=True)
        return number
    finally:
        context.close()


def test_compose_draft_canned_drop_and_send_and_close(desk, browser, smtp, admin_password, screenshot_dir: Path):
    desk.inst.run(
        "mailbox", "edit", "support", "--address", "support@desk.example", "--from-name", "Desk Support",
        "--smtp-host", smtp.host, "--smtp-port", smtp.port, "--smtp-security", "starttls",
        "--smtp-ca-file", smtp.ca_file, "--smtp-username", smtp.username, "--smtp-password-env", "SMTP_PASSWORD",
        "--signature", "{mailbox}, answered by {agent_name}",
        env={"SMTP_PASSWORD": smtp.password},
    )
    add_canned_reply(desk, browser, admin_password)
    numbers = [answer_at(desk, browser, width, screenshot_dir) for width in WIDTHS]

    results = json.loads(desk.inst.run("send", "--json").stdout)
    assert [r["status"] for r in results] == ["sent", "sent"]
    for number, mail in zip(numbers, sorted(smtp.received, key=lambda m: m.message["Subject"]), strict=True):
        assert mail.rcpt_tos == ["dana@customer.example"]
        assert f"please reboot once (request {number})" in mail.text
        assert mail.text.rstrip().endswith("-- \nDesk Support, answered by Phil Staff")
        assert [part.get_filename() for part in mail.message.iter_attachments()] == ["lid-angle.txt"]
