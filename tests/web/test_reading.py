"""Reading a request: the HTML frame's sandbox, plain-text links, times in the reader's
zone, attachment previews and their headers, the customer's page, panel and note."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import datetime, timezone as dt_timezone

import pytest
from django.utils import timezone

from postdesk.desk import customers, profile
from postdesk.models import Attachment, AuditEvent, Customer, Message, Request
from postdesk.store import blobs
from postdesk.web import previews
from postdesk.web.templatetags.desk_reading import linkify

from .test_mail_frame import PNG

pytestmark = pytest.mark.django_db
_serial = itertools.count()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def message_in(req: Request, *, text="Hello", html=None, date=None, sender="ann@example.com") -> Message:
    raw = b"Subject: x\r\n\r\n" + str(next(_serial)).encode()
    return Message.objects.create(
        request=req, fingerprint=hashlib.sha256(raw).hexdigest(), subject=req.subject, sender_address=sender,
        date=date or timezone.now(), text=text, html=html, raw=blobs.put(raw))


def request_of(address="ann@example.com", subject="Printer", name="", **fields) -> Request:
    customer, _ = Customer.objects.get_or_create(address=address, defaults={"name": name})
    return Request.objects.create(subject=subject, customer=customer, **fields)


def attach(message: Message, data: bytes, content_type: str, filename: str) -> Attachment:
    return Attachment.objects.create(message=message, blob=blobs.put(data), position=message.attachments.count(),
                                     filename=filename, content_type=content_type, size=len(data))


def page_of(client, req) -> str:
    response = client.get(f"/requests/{req.pk}/")
    assert response.status_code == 200
    return response.content.decode()


# --- the HTML frame -------------------------------------------------------------


def test_frame_is_same_origin_but_never_scripted(logged_in):
    req = request_of()
    message = message_in(req, html="<p>hi</p>")
    page = page_of(logged_in, req)
    [frame] = re.findall(r'<iframe class="message-html"[^>]*>', page)
    sandbox = set(re.search(r'sandbox="([^"]*)"', frame).group(1).split())
    assert "allow-same-origin" in sandbox  # the page measures the frame's height
    assert not sandbox & {"allow-scripts", "allow-forms", "allow-top-navigation", "allow-modals",
                          "allow-top-navigation-by-user-activation", "allow-downloads"}
    assert 'class="frame-expand" hidden' in page  # the cap's control, shown by reading.js only when needed
    policy = logged_in.get(f"/messages/{message.pk}/body/")["Content-Security-Policy"]
    assert "script-src" not in policy and "default-src 'none'" in policy and "form-action 'none'" in policy


@pytest.mark.parametrize("url", ["http://testserver/requests/1/", "https://testserver/logout/", "//testserver/x.png",
                                 "HTTP://TESTSERVER./a.gif"])
def test_images_on_our_own_host_are_never_loaded_by_the_frame(logged_in, url):
    """The frame is of our origin, so its requests would carry the session cookie."""
    req = request_of()
    message = message_in(req, html=f'<p>x<img src="{url}"><img src="https://elsewhere.example/ok.gif"></p>')
    text = logged_in.get(f"/messages/{message.pk}/body/?images=1").content.decode().split("<body>", 1)[1]
    assert "testserver" not in text.lower() and "https://elsewhere.example/ok.gif" in text


# --- plain text -----------------------------------------------------------------


def test_links_in_plain_text_are_clickable_safely(logged_in):
    req = request_of()
    message_in(req, text="See https://example.com/a?b=1&c=2, or mail mailto:ann@example.com.\n  indented line")
    page = page_of(logged_in, req)
    assert ('<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank" '
            'class="text-link">https://example.com/a?b=1&amp;c=2</a>, or mail') in page
    assert 'href="mailto:ann@example.com"' in page
    assert "\n  indented line" in page  # whitespace kept (the CSS shows it)


@pytest.mark.parametrize("hostile", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox", "<a href=\"javascript:alert(1)\">x</a>", "/requests/1/close/", "//evil.example/x",
    "file:///etc/passwd", "https://", "<script>alert(1)</script>",
])
def test_hostile_text_is_never_a_link_nor_markup(hostile):
    shown = str(linkify(hostile))
    assert "<a " not in shown and "<script" not in shown  # no link, and the text escaped
    assert "<" not in shown.replace("&lt;", "")


def test_quotes_and_brackets_end_a_link():
    shown = str(linkify('<https://example.com/x>"onmouseover="alert(1) (see https://en.wikipedia.org/wiki/A_(b)).'))
    assert 'href="https://example.com/x"' in shown and "onmouseover=\"" not in shown
    assert 'href="https://en.wikipedia.org/wiki/A_(b)"' in shown
    assert "&lt;" in shown and "&quot;onmouseover" in shown


def test_plain_text_is_not_monospace():
    css = open("src/postdesk/static/postdesk/app.css").read()
    reading = css.split("helper \"reading\"", 1)[1]
    rule = re.search(r"\.message \.text \{([^}]*)\}", reading).group(1)
    assert "monospace" not in rule and "pre-wrap" in rule


# --- times ----------------------------------------------------------------------


def test_times_are_in_the_readers_zone_with_the_absolute_time_on_hover(logged_in, staff):
    req = request_of()
    message_in(req, date=datetime(2026, 7, 1, 12, 0, tzinfo=dt_timezone.utc))
    assert 'datetime="2026-07-01T12:00:00+00:00" title="2026-07-01 12:00 UTC">2026-07-01 12:00</time>' in page_of(logged_in, req)
    profile.save(staff, time_zone="Europe/Berlin")
    page = page_of(logged_in, req)
    assert ('<time datetime="2026-07-01T14:00:00+02:00" title="2026-07-01 14:00 CEST (Europe/Berlin)">'
            "2026-07-01 14:00</time>") in page
    queue = logged_in.get("/queue/all/").content.decode()
    assert re.search(r'<time datetime="[^"]+\+0[12]:00" title="[^"]+ CES?T \(Europe/Berlin\)">(now|[^<]*ago)</time>', queue)


def test_an_unknown_zone_falls_back_to_the_servers(logged_in, staff):
    req = request_of()
    message_in(req, date=datetime(2026, 7, 1, 12, 0, tzinfo=dt_timezone.utc))
    profile.save(staff, time_zone="Mars/Olympus")
    assert 'title="2026-07-01 12:00 UTC"' in page_of(logged_in, req)


# --- previews -------------------------------------------------------------------


def test_image_attachment_is_a_thumbnail_that_opens_larger(logged_in):
    req = request_of()
    image = attach(message_in(req), PNG, "image/png", "photo.png")
    page = page_of(logged_in, req)
    assert f'<img src="/attachments/{image.pk}/view/"' in page
    assert f'href="/attachments/{image.pk}/view/" target="_blank" rel="noopener"' in page
    response = logged_in.get(f"/attachments/{image.pk}/view/")
    assert response.status_code == 200 and response.content == PNG
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline;")
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize("content_type,filename", [("image/svg+xml", "x.svg"), ("text/html", "x.html"), ("application/zip", "x.zip")])
def test_svg_and_others_are_download_only(logged_in, content_type, filename):
    req = request_of()
    other = attach(message_in(req), b"<svg onload=alert(1)>", content_type, filename)
    page = page_of(logged_in, req)
    assert f"/attachments/{other.pk}/view/" not in page and f"/attachments/{other.pk}/pdf/" not in page
    assert logged_in.get(f"/attachments/{other.pk}/view/").status_code == 404
    assert logged_in.get(f"/attachments/{other.pk}/pdf/").status_code == 404
    download = logged_in.get(f"/attachments/{other.pk}/")
    assert download["Content-Disposition"].startswith("attachment") and download["Content-Type"] == "application/octet-stream"


def test_pdf_preview_frame_runs_in_an_opaque_origin(logged_in):
    req = request_of()
    pdf = attach(message_in(req), PDF, "application/pdf", "invoice.pdf")
    page = page_of(logged_in, req)
    [frame] = re.findall(r'<iframe class="pdf-preview"[^>]*>', page)
    assert f'src="/attachments/{pdf.pk}/pdf/"' in frame
    assert re.search(r'sandbox="([^"]*)"', frame).group(1) == previews.PDF_FRAME_SANDBOX == "allow-scripts"
    response = logged_in.get(f"/attachments/{pdf.pk}/pdf/")
    policy = response["Content-Security-Policy"]
    assert "sandbox allow-scripts" in policy and "allow-same-origin" not in policy
    assert "script-src http://testserver/static/postdesk/ blob:" in policy and "'unsafe-eval'" not in policy
    assert "connect-src http://testserver/preview/" in policy and "form-action 'none'" in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    text = response.content.decode()
    assert "<script>" not in text and 'type="module" src="http://testserver/static/postdesk/pdf-preview.mjs"' in text


def test_pdf_bytes_by_token_with_cors_and_never_as_a_document(client, logged_in, staff):
    req = request_of()
    pdf = attach(message_in(req), PDF, "application/octet-stream", "scan.PDF")  # many mailers say octet-stream
    text = logged_in.get(f"/attachments/{pdf.pk}/pdf/").content.decode()
    url = re.search(r'data-src="http://testserver(/preview/[^"]+/)"', text).group(1)
    client.logout()  # the opaque-origin frame sends no cookie: the token is the credential
    response = client.get(url, HTTP_ORIGIN="null")
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/octet-stream" and response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Access-Control-Allow-Origin"] == "*" and "Access-Control-Allow-Credentials" not in response
    assert "sandbox" in response["Content-Security-Policy"]
    assert client.get(url[:-4] + "xyz/").status_code == 404
    staff.is_active = False
    staff.save()
    assert client.get(url).status_code == 404


def test_pdf_token_expires_and_a_fake_pdf_is_refused(logged_in, staff, monkeypatch):
    req = request_of()
    fake = attach(message_in(req), b"<html><script>alert(1)</script>", "application/pdf", "fake.pdf")
    token = previews.pdf_token(fake.pk, staff.pk)
    assert logged_in.get(f"/preview/{token}/").status_code == 404  # not %PDF-
    real = attach(message_in(req), PDF, "application/pdf", "real.pdf")
    token = previews.pdf_token(real.pk, staff.pk)
    monkeypatch.setattr(previews, "PDF_TOKEN_MAX_AGE", -1)
    assert logged_in.get(f"/preview/{token}/").status_code == 404


def test_reading_pages_need_sign_in(client):
    req = request_of()
    pdf = attach(message_in(req), PDF, "application/pdf", "a.pdf")
    image = attach(req.messages.get(), PNG, "image/png", "a.png")
    for url in (f"/customers/{req.customer_id}/", f"/attachments/{pdf.pk}/pdf/", f"/attachments/{image.pk}/view/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    assert client.post(f"/customers/{req.customer_id}/note/", {"note": "x"}).status_code == 302
    assert Customer.objects.get().note == ""


# --- the customer ---------------------------------------------------------------


def test_panel_beside_the_request(logged_in):
    older = [request_of(address="ann@acme.example", name="Ann Example", subject=f"Old {n}") for n in range(7)]
    Request.objects.filter(pk=older[0].pk).update(status="closed")
    req = request_of(address="ann@acme.example", subject="Now")
    Customer.objects.filter(pk=req.customer_id).update(note="Prefers <b>phone</b>")
    message_in(req)
    page = page_of(logged_in, req)
    panel = page.split('<section class="customer-panel"', 1)[1].split("</section>", 1)[0]
    assert f'href="/customers/{req.customer_id}/">Ann Example</a>' in panel
    assert "ann@acme.example" in panel and "acme.example" in panel
    assert "Prefers &lt;b&gt;phone&lt;/b&gt;" in panel
    shown = re.findall(r'href="/requests/(\d+)/"', panel)
    assert len(shown) == customers.PANEL_REQUESTS and str(req.pk) not in shown
    assert f'from <a class="customer-link" href="/customers/{req.customer_id}/">' in page


def test_customer_page_lists_requests_and_colleagues_but_not_public_providers(logged_in):
    mine = [request_of(address="bob@acme.example", subject=f"Q{n}") for n in range(30)]
    request_of(address="carol@acme.example", name="Carol")
    request_of(address="dan@gmail.com")
    request_of(address="erin@gmail.com")
    page = logged_in.get(f"/customers/{mine[0].customer_id}/").content.decode()
    assert "acme.example" in page and "Carol" in page and "gmail" not in page
    assert page.count('class="subject"') == 25 and "Page 1 of 2" in page
    assert "Q29" in page and "Q0<" not in page  # newest first
    page2 = logged_in.get(f"/customers/{mine[0].customer_id}/?page=2").content.decode()
    assert page2.count('class="subject"') == 5
    dan = Customer.objects.get(address="dan@gmail.com")
    page = logged_in.get(f"/customers/{dan.pk}/").content.decode()
    assert "no organisation" in page and "erin@gmail.com" not in page
    assert logged_in.get("/customers/999999/").status_code == 404


def test_note_is_saved_by_post_with_an_audit_line_and_twice_changes_nothing(logged_in, staff):
    req = request_of()
    url = f"/customers/{req.customer_id}/note/"
    assert logged_in.get(url).status_code == 405
    response = logged_in.post(url, {"note": "  VIP <script>x</script>\r\n", "next": f"/requests/{req.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/requests/{req.pk}/"
    assert Customer.objects.get().note == "VIP <script>x</script>"
    logged_in.post(url, {"note": "VIP <script>x</script>"})
    events = AuditEvent.objects.filter(kind="customer.note")
    assert events.count() == 1 and events.get().actor == staff and events.get().target == f"customer {req.customer_id}"
    page = logged_in.get(f"/customers/{req.customer_id}/").content.decode()
    assert "VIP &lt;script&gt;" in page and "<script>x" not in page
    assert logged_in.post(url, {"note": "x", "next": "https://evil.example/"})["Location"] == f"/customers/{req.customer_id}/"
    assert logged_in.post(url, {"note": "x", "next": "//evil.example/"})["Location"] == f"/customers/{req.customer_id}/"


def test_note_needs_csrf(client, staff):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    req = request_of()
    assert strict.post(f"/customers/{req.customer_id}/note/", {"note": "x"}).status_code == 403
