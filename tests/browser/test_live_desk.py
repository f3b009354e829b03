"""The live desk in two browsers at once (phil, and the admin ada): the queue and a
request change without a reload, unread rows, who else is on a request, and the
stale-page refusals of Send reply, Close and Take (postdesk.web.staleness)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.mail import make_message

from .support import ADMIN

pytestmark = pytest.mark.browser


def signed_in(browser, desk, username=None, password=None):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    desk.login(page, username, password)
    return context, page


def open_request(page, subject: str) -> int:
    page.locator("table.requests tbody tr", has_text=subject).locator("td.subject > a").click()
    page.wait_for_url(re.compile(r".*/requests/\d+/$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_queue_and_request_update_live_with_unread_and_presence(desk, browser, admin_password):
    desk.deliver(make_message(subject="Monitor flickers", message_id="<flicker-1@customer.example>"))
    phil_context, phil = signed_in(browser, desk)
    ada_context, ada = signed_in(browser, desk, ADMIN, admin_password)
    try:
        row = phil.locator("table.requests tbody tr", has_text="Monitor flickers")
        expect(row).to_have_class("unread")
        general = phil.locator('[data-count="general"]')
        before = int(general.inner_text())

        # A new request appears in phil's open queue, bold, the count with it: no reload.
        desk.deliver(make_message(subject="Keyboard sticky", message_id="<sticky-1@customer.example>"))
        expect(phil.locator("table.requests tbody tr.unread", has_text="Keyboard sticky")).to_be_visible()
        expect(general).to_have_text(str(before + 1))

        # Both on one request: each sees the other, viewing then replying.
        number = open_request(phil, "Monitor flickers")
        ada.goto(f"{desk.url}/requests/{number}/")
        expect(ada.locator(".presence")).to_have_text("phil is viewing")
        phil.locator("#reply-text").press_sequentially("Hello")
        expect(ada.locator(".presence")).to_have_text("phil is replying")

        # Ada takes it: phil's page says so without a reload.
        ada.click("section.actions button:has-text('Take')")
        expect(phil.locator(".request-head .assigned")).to_have_text(f"assigned to {ADMIN}")
        expect(phil.locator(".live-banner")).to_contain_text(f"it was assigned to {ADMIN}")

        # The customer writes again: a banner on the page; the row is unread again in the queue.
        desk.deliver(make_message(subject="Re: Monitor flickers", message_id="<flicker-2@customer.example>",
                                  in_reply_to="<flicker-1@customer.example>", body="Now it is black.\n"))
        expect(phil.locator(".live-banner")).to_contain_text("New message from the customer")
        phil.click(".live-banner .live-show")
        expect(phil.locator(".conversation")).to_contain_text("Now it is black.")
        expect(phil.locator("#reply-text")).to_have_value("Hello")  # the draft survived the reload
        ada.goto(f"{desk.url}/queue/all/")
        expect(ada.locator("table.requests tbody tr.unread", has_text="Monitor flickers")).to_contain_text("customer replied")
    finally:
        phil_context.close()
        ada_context.close()


def test_stale_pages_refuse_reply_close_and_take(desk, browser, admin_password):
    desk.deliver(make_message(subject="Printer offline", message_id="<offline-1@customer.example>"))
    phil_context, phil = signed_in(browser, desk)
    ada_context, ada = signed_in(browser, desk, ADMIN, admin_password)
    try:
        number = open_request(phil, "Printer offline")
        ada.goto(f"{desk.url}/requests/{number}/")

        # Take: ada took it after phil's page was opened; refused, and the page shown is up to date.
        ada.click("section.actions button:has-text('Take')")
        # A click returns before its POST is answered: wait until ada's Take is done.
        expect(ada.locator(".request-head .assigned")).to_have_text(f"assigned to {ADMIN}")
        phil.click("section.actions button:has-text('Take')")
        expect(phil.locator(".stale")).to_contain_text(f"it was assigned to {ADMIN}")
        expect(phil.locator(".request-head .assigned")).to_have_text(f"assigned to {ADMIN}")

        # Reply: ada wrote a note while phil typed; refused, the draft kept, nothing sent.
        ada.click("#tab-note")
        ada.fill("#note-text", "I am calling them now.")
        ada.click("button.note-button")
        expect(ada.get_by_text("I am calling them now.", exact=True)).to_be_visible()  # the note is in
        phil.fill("#reply-text", "Restart the spooler, please.")
        phil.fill("#reply-cc", "boss@customer.example")
        phil.click("button.primary")
        expect(phil.locator(".stale")).to_contain_text(f"{ADMIN} added an internal note")
        expect(phil.locator("#reply-text")).to_have_value("Restart the spooler, please.")
        expect(phil.locator("#reply-cc")).to_have_value("boss@customer.example")
        expect(phil.locator(".out-status")).to_have_count(0)  # nothing was sent

        # Close: the customer wrote since the page was opened.
        desk.deliver(make_message(subject="Re: Printer offline", message_id="<offline-2@customer.example>",
                                  in_reply_to="<offline-1@customer.example>", body="It prints again!\n"))
        phil.click("section.actions button:has-text('Close')")
        expect(phil.locator(".stale")).to_contain_text("a new message from the customer")
        expect(phil.locator(".request-head .badge")).not_to_have_text("closed")
        expect(phil.locator("#reply-text")).to_have_value("Restart the spooler, please.")  # kept across Close

        # Take on the up-to-date page: ada has it, so it asks first; yes takes it.
        phil.click("section.actions button:has-text('Take')")
        expect(phil.locator(".confirm")).to_contain_text(f"{ADMIN} has it; take it anyway?")
        phil.click(".confirm button")
        expect(phil.locator(".request-head .assigned")).to_have_text("assigned to phil")
    finally:
        phil_context.close()
        ada_context.close()
