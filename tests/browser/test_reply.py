"""Answering in the browser: a staff reply leaves through the test SMTP server with
threading headers and shows as sent; an internal note stays inside; the queue
works from the keyboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.mail import make_message

pytestmark = pytest.mark.browser

SUBJECT = "Laptop will not boot"
FIRST_ID = "<boot-1@customer.example>"


def test_reply_note_and_keyboard(desk, browser, smtp, screenshot_dir: Path):
    desk.inst.run(
        "mailbox", "edit", "support", "--address", "support@desk.example", "--from-name", "Desk Support",
        "--smtp-host", smtp.host, "--smtp-port", smtp.port, "--smtp-security", "starttls",
        "--smtp-ca-file", smtp.ca_file, "--smtp-username", smtp.username, "--smtp-password-env", "SMTP_PASSWORD",
        env={"SMTP_PASSWORD": smtp.password},
    )
    desk.deliver(make_message(subject=SUBJECT, message_id=FIRST_ID, sender="Dana Customer <dana@customer.example>",
                              body="It shows a black screen since this morning.\n"))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        desk.login(page)

        # Keyboard: j selects the first row, Enter opens it.
        page.keyboard.press("j")
        assert page.evaluate("document.activeElement.closest('tr') !== null")
        first = page.locator("table.requests tbody tr").first.locator("td.subject > a").inner_text()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/requests/\d+/$"))
        assert first in page.locator("h1").inner_text()

        page.goto(desk.url + "/queue/general/")
        page.locator("table.requests tbody tr", has_text=SUBJECT).locator("td.subject > a").click()
        page.wait_for_url(re.compile(r".*/requests/\d+/$"))
        number = int(page.url.rstrip("/").rsplit("/", 1)[1])

        page.fill("#reply-text", "Hello Dana,\n\nplease hold the power button for 30 seconds.\n\nPhil")
        page.click("button.primary")
        assert "Reply queued to dana@customer.example" in page.locator(".flash").inner_text()
        assert page.locator(".out-status .badge").inner_text().lower() == "queued"

        page.click("#tab-note")
        page.fill("#note-text", "Customer's warranty ends in May.")
        page.click("button.note-button")
        assert "never sent" in page.locator(".message-note").inner_text()

        results = json.loads(desk.inst.run("send", "--json").stdout)
        assert [r["status"] for r in results] == ["sent"]  # the note is not in the outbox
        (mail,) = smtp.received
        assert mail.rcpt_tos == ["dana@customer.example"] and mail.tls
        message = mail.message
        assert message["In-Reply-To"] == FIRST_ID
        assert message["Subject"] == f"Re: {SUBJECT} [PD-{number}]"
        assert "hold the power button" in mail.text

        page.reload()
        assert page.locator(".out-status .badge").inner_text().lower() == "sent"
        page.screenshot(path=str(screenshot_dir / "request-reply-and-note.png"), full_page=True)
    finally:
        context.close()
