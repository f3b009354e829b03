"""The staff UI in real Chromium against `postdesk serve`: a mail APPENDed to Dovecot
and fetched shows in the General queue; its page renders the inline image (cid:)
inside the sandboxed HTML frame; the attachment downloads byte for byte; Take moves
it to Mine.  Screenshots of the queue and the request page go to build/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.mail import make_message

from .support import Seen, pdf, png, related_html_mail

pytestmark = pytest.mark.browser

SUBJECT = "Invoice 2025-06 looks wrong"
IMAGE = png(24, 16)
ATTACHMENT = ("invoice-2025-06.pdf", "application/pdf", pdf())
HTML = """<!doctype html><html><body>
<h2 style="color:#1a4d8f">Hello Support,</h2>
<p>the <b>June invoice</b> lists the printer twice. Our logo, for reference:</p>
<p><img id="logo" src="cid:logo-1@customer.example" alt="Customer logo" width="96" height="64"></p>
<ul><li>Printer P-200: 2 &times; 149.00</li><li>Toner: 1 &times; 39.00</li></ul>
<p>Kind regards,<br>Alice</p>
</body></html>"""
TEXT = "Hello Support,\n\nthe June invoice lists the printer twice.\n\nKind regards,\nAlice\n"


def row(page, subject: str):
    return page.locator("table.requests tbody tr", has_text=subject)


def test_fetch_open_download_take(desk, browser, screenshot_dir: Path, tmp_path: Path):
    # A few plain requests around it, so the queue looks like a queue.
    desk.deliver(
        make_message(subject="Printer on fire", sender="Bob Jones <bob@customer.example>"),
        related_html_mail(SUBJECT, text=TEXT, html=HTML, image=IMAGE, cid="logo-1@customer.example", attachment=ATTACHMENT),
        make_message(subject="VPN drops every hour", sender="Carol <carol@partner.example>"),
    )
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    seen = Seen(origin=desk.url)
    seen.attach(context)
    page = context.new_page()
    try:
        # Log in: the form at /login/ leads to the General queue.
        page.goto(desk.url + "/")
        assert page.url.startswith(desk.url + "/login/")
        desk.login(page)
        assert page.locator("header.topbar .who").inner_text() == desk.username

        # The fetched message is a request in General, unassigned.
        mail_row = row(page, SUBJECT)
        assert mail_row.count() == 1, page.locator("table.requests").inner_text()
        assert "Alice Customer" in mail_row.inner_text() and "unassigned" in mail_row.inner_text()
        assert mail_row.locator("td.subject .marker").count() == 1  # the paperclip
        page.screenshot(path=str(screenshot_dir / "queue-general.png"), full_page=True)

        # Open it.
        mail_row.locator("td.subject a").first.click()
        page.wait_for_url(re.compile(re.escape(desk.url) + r"/requests/\d+/$"))
        number = int(page.url.rstrip("/").rsplit("/", 1)[1])
        assert SUBJECT in page.locator("h1").inner_text()
        assert "the June invoice lists the printer twice." in page.locator("div.text").first.text_content()

        # The HTML body: in the sandboxed frame, its inline image (cid:) served and decoded.
        frame_el = page.locator("iframe.message-html")
        assert frame_el.count() == 1, "no iframe.message-html on the request page"
        assert re.fullmatch(r"/messages/\d+/body/", frame_el.get_attribute("src") or ""), frame_el.get_attribute("src")
        sandbox = set((frame_el.get_attribute("sandbox") or "").split())
        assert not sandbox & {"allow-scripts", "allow-forms", "allow-top-navigation"}, sandbox  # same-origin: sized by reading.js
        frame = page.frame_locator("iframe.message-html")
        image = frame.locator("img#logo, img[alt='Customer logo']").first
        image.wait_for(state="attached")
        src = image.get_attribute("src") or ""
        assert not src.startswith("cid:"), f"cid: not rewritten: {src}"
        image.evaluate("img => img.complete || new Promise(ok => img.addEventListener('load', ok, {once: true}))")
        natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert natural == [24, 16], f"the inline image did not render: naturalWidth/Height {natural}, src {src}"
        assert "June invoice" in frame.locator("body").inner_text()
        current = image.evaluate("img => img.currentSrc")
        assert current.startswith(desk.url + "/"), f"the inline image is not served by Postdesk: {current}"
        page.screenshot(path=str(screenshot_dir / "request-html-mail.png"), full_page=True)

        # Download the attachment: the very bytes that were sent.
        link = page.locator("ul.attachments a", has_text=ATTACHMENT[0])
        assert link.count() == 1, page.locator("ul.attachments").inner_text()
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        assert download.suggested_filename == ATTACHMENT[0]
        saved = tmp_path / "download.bin"
        download.save_as(saved)
        assert saved.read_bytes() == ATTACHMENT[2]

        # Take it: assigned to me, out of General, into Mine.
        page.locator('form[action$="/take/"] button').click()
        page.wait_for_url(f"{desk.url}/requests/{number}/")
        assert f"assigned to {desk.username}" in page.locator("header.request-head .meta").inner_text()
        assert page.locator('form[action$="/take/"]').count() == 0
        page.goto(desk.url + "/queue/mine/")
        mine = row(page, SUBJECT)
        assert mine.count() == 1
        assert desk.username in mine.inner_text()
        page.goto(desk.url + "/queue/general/")
        assert row(page, SUBJECT).count() == 0

        # Nothing on the way left the server, nothing went wrong in the page.
        assert not seen.foreign_requests(), seen.report()
        assert not seen.dialogs and not seen.page_errors, seen.report()
        # (Chromium asks for /favicon.ico by itself; its 404 is no fault of the page.)
        errors = [c for c in seen.console if c[0] == "error" and not c[2].endswith("/favicon.ico")]
        assert not errors, seen.report()
    finally:
        context.close()


def test_phone_width_queue(desk, browser, screenshot_dir: Path):
    """The General queue on a 390 x 844 phone: rows stack, nothing scrolls sideways."""
    desk.deliver(make_message(subject="Cannot log in on my phone",
                              sender="Dominique Longname <dominique.longname@subsidiary.customer.example>"))
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        desk.login(page)
        assert row(page, "Cannot log in on my phone").is_visible()
        page.screenshot(path=str(screenshot_dir / "queue-general-phone.png"), full_page=True)
        overflowing = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(el => !el.closest('thead, .visually-hidden'))
            .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
            .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ': ' + (el.textContent || '').trim().slice(0, 40))""")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 and not overflowing, f"the queue is {width} px wide on a 390 px phone; past the edge: {overflowing}"
    finally:
        context.close()
