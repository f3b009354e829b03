"""Reading in real Chromium, at 1280 and 390 px: the HTML frame fits its content (a short
mail leaves no blank area, a long one does not scroll inside the frame), links in plain
text open safely, an image attachment is a thumbnail, and a PDF attachment is rendered by
PDF.js inside its opaque-origin frame (a red square found in the canvas's pixels).
Screenshots: build/screenshots/reading-*.png."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from .support import Seen, html_mail, png

pytestmark = pytest.mark.browser

SHORT = "Reading: a short HTML mail"
LONG = "Reading: a long HTML mail"
TEXT = "Reading: plain text with a link and files"
WIDTHS = (1280, 390)
BLANK_PX = 24  # at most this much empty frame below the content (body margins are 12 px)

def red_square_pdf() -> bytes:
    """A one-page PDF (A6) with a red square, its xref table right, made by hand."""
    content = b"1 0 0 rg 60 160 180 180 re f\n"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)

def text_mail_with_files() -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Dana Reader <dana@reader.example>"
    msg["To"] = "Support <support@desk.example>"
    msg["Subject"] = TEXT
    msg["Date"] = "Tue, 01 Dec 2026 10:00:00 +0000"
    msg["Message-ID"] = "<reading-text@reader.example>"
    msg.set_content("Hello,\n\n    the manual is at https://docs.example.com/manual/chapter-4/a-very-long-path-that-"
                    "goes-on-and-on-and-on-without-any-break/index.html?page=12 and\n"
                    "javascript:alert(1) is not a link.\n\nDana\n")
    msg.add_attachment(png(120, 80), maintype="image", subtype="png", filename="screen.png")
    msg.add_attachment(red_square_pdf(), maintype="application", subtype="pdf", filename="scan.pdf")
    return msg.as_bytes()

@pytest.fixture(scope="module")
def mails(desk):
    paragraphs = "".join(f"<p>Paragraph {n}: the printer in room {n} prints blank pages again.</p>" for n in range(40))
    desk.deliver(
        html_mail(SHORT, "<p>Thanks, that fixed it.</p>", text="Thanks, that fixed it."),
        html_mail(LONG, f"<h2>Long report</h2>{paragraphs}<p id='last'>The end.</p>", text="Long report"),
        text_mail_with_files(),
    )

def open_request(page, desk, subject: str) -> None:
    page.goto(desk.url + "/queue/all/")
    page.locator("table.requests tbody tr", has_text=subject).locator("td.subject a").first.click()
    page.wait_for_url(re.compile(re.escape(desk.url) + r"/requests/\d+/$"))
    page.wait_for_load_state("load")

def frame_sizes(page) -> dict:
    """The frame's height on the page, and its document's content and viewport."""
    frame = page.locator("iframe.message-html")
    frame.evaluate("f => f.classList.contains('fitted') || new Promise(ok => { const t = () => f.classList.contains('fitted') ? ok() : requestAnimationFrame(t); t(); })")
    return frame.evaluate("""f => ({outer: f.getBoundingClientRect().height,
        content: f.contentDocument.documentElement.getBoundingClientRect().height,
        scroll: f.contentDocument.documentElement.scrollHeight, view: f.contentDocument.documentElement.clientHeight,
        capped: !f.parentNode.querySelector('.frame-expand').hidden})""")

@pytest.mark.parametrize("width", WIDTHS)
def test_reading(desk, browser, mails, screenshot_dir: Path, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    seen = Seen(origin=desk.url)
    seen.attach(context)
    page = context.new_page()
    try:
        desk.login(page)

        open_request(page, desk, SHORT)
        sizes = frame_sizes(page)
        assert sizes["outer"] - sizes["content"] <= BLANK_PX and sizes["outer"] < 150, sizes
        page.screenshot(path=str(screenshot_dir / f"reading-short-{width}.png"), full_page=True)

        open_request(page, desk, LONG)
        sizes = frame_sizes(page)
        if sizes["capped"]:  # taller than the cap: one click shows it all
            page.locator(".frame-expand-button").click()
            sizes = frame_sizes(page)
        assert sizes["scroll"] <= sizes["view"] + 1, f"the long mail scrolls inside its frame: {sizes}"
        assert sizes["outer"] > 900, sizes
        page.screenshot(path=str(screenshot_dir / f"reading-long-{width}.png"), full_page=True)

        open_request(page, desk, TEXT)
        link = page.locator("div.text a.text-link").first
        assert link.get_attribute("href").startswith("https://docs.example.com/manual/")
        assert link.get_attribute("rel") == "noopener noreferrer nofollow" and link.get_attribute("target") == "_blank"
        assert page.locator("a[href^='javascript:' i]").count() == 0
        font = page.locator("div.text").first.evaluate("el => getComputedStyle(el).fontFamily")
        assert "monospace" not in font, font
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow} px (a long URL did not wrap)"
        thumb = page.locator(".attachment-image img")
        thumb.evaluate("img => img.complete || new Promise(ok => img.addEventListener('load', ok, {once: true}))")
        assert thumb.evaluate("img => img.naturalWidth") == 120

        pdf_frame = page.locator("iframe.pdf-preview")
        pdf_frame.scroll_into_view_if_needed()
        assert pdf_frame.get_attribute("sandbox") == "allow-scripts"
        preview = page.frame_locator("iframe.pdf-preview")
        preview.locator("body.rendered, body.failed").wait_for()
        assert preview.locator("body.rendered").count() == 1, preview.locator(".status").inner_text()
        assert preview.locator(".status").inner_text() == "1 page"
        # The red square, in the middle of the page's upper half (PDF y grows upwards).
        pixel = preview.locator("canvas.page").evaluate("""c => {
            const x = Math.floor(c.width * 150 / 298), y = Math.floor(c.height * (420 - 250) / 420);
            return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data); }""")
        assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60, pixel
        # PDF.js ran in an opaque origin: it cannot see the app's page.

        frame = next(f for f in page.frames if "/attachments/" in f.url and f.url.endswith("/pdf/"))
        assert frame.evaluate("() => self.origin") == "null"
        assert frame.evaluate("() => { try { return !!window.parent.document; } catch (e) { return 'refused'; } }") == "refused"
        page.screenshot(path=str(screenshot_dir / f"reading-text-{width}.png"), full_page=True)

        # The thumbnail opens larger: the image alone, shown (not downloaded) by the browser.
        larger = page.context.new_page()
        larger.goto(desk.url + page.locator(".attachment-image a.thumb").get_attribute("href"))
        assert larger.locator("img").evaluate("img => img.complete && img.naturalWidth") == 120
        larger.close()

        # The customer: from the panel to their page; the note saved (the second width saves
        # the same text again: nothing changes).
        customer_link = page.locator(".customer-panel a.customer-link")
        customer_url = desk.url + customer_link.get_attribute("href")
        assert re.fullmatch(re.escape(desk.url) + r"/customers/\d+/", customer_url), customer_url
        page.goto(customer_url)
        assert "reader.example" in page.locator(".customer-org").inner_text()
        page.fill("textarea#note", "Prefers answers in the morning.")
        page.locator(".customer-note-form button[type=submit]").click()
        page.wait_for_load_state("load")
        assert page.locator("textarea#note").input_value() == "Prefers answers in the morning."
        assert page.locator("ul.flash li").first.inner_text() in ("Note saved.", "Nothing to change.")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the customer page scrolls sideways by {overflow} px"
        page.screenshot(path=str(screenshot_dir / f"reading-customer-{width}.png"), full_page=True)
        assert not seen.page_errors, seen.report()
        assert not seen.foreign_requests(), seen.report()
    finally:
        context.close()
