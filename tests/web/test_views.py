"""The staff web UI: login, queues, a request page, actions, downloads, headers."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from postdesk.desk import search
from postdesk.models import Attachment, Customer, Mailbox, Message, Request, RequestEvent
from postdesk.store import blobs
from tests.support.desk import seen

pytestmark = pytest.mark.django_db

_serial = itertools.count()
RAW = b"From: Ann <ann@example.com>\r\nTo: help@example.org\r\nSubject: Printer\r\n\r\nIt is on fire.\r\n"


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def other(db):
    return User.objects.create_user("rita", "rita@example.com", "pw")


@pytest.fixture
def mailbox(db):
    return Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR)


def make_request(subject="Printer on fire", customer="ann@example.com", mailbox=None, assignee=None,
                 status=Request.Status.NEW, text="It is on fire.\n<b>not html</b>", attachment: bytes | None = None,
                 filename="report.pdf", content_type="application/pdf"):
    cust, _ = Customer.objects.get_or_create(address=customer)
    req = Request.objects.create(subject=subject, customer=cust, mailbox=mailbox, assignee=assignee, status=status)
    raw = RAW + str(next(_serial)).encode()
    message = Message.objects.create(
        request=req, mailbox=mailbox, fingerprint=hashlib.sha256(raw).hexdigest(), subject=subject,
        sender_address=customer, sender_name="Ann", to=[{"name": "", "address": "help@example.org"}],
        date=timezone.now(), text=text, raw=blobs.put(raw),
    )
    if attachment is not None:
        Attachment.objects.create(message=message, blob=blobs.put(attachment), position=0, filename=filename,
                                  content_type=content_type, size=len(attachment))
    search.index_request(req.pk)  # as process/apply.py does for arriving mail
    return req


def numbers(response) -> list[int]:
    return [r.pk for r in response.context["page"].object_list]


# --- login --------------------------------------------------------------------


def test_every_page_requires_login(client, mailbox):
    req = make_request(mailbox=mailbox, attachment=b"%PDF-1.4")
    message = req.messages.get()
    attachment = Attachment.objects.get()
    urls = ["/", "/queue/general/", "/queue/mine/", "/queue/all/", "/queue/mailbox/support/",
            f"/requests/{req.pk}/", f"/attachments/{attachment.pk}/", f"/messages/{message.pk}/raw/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/login/?next={url}", url
    for action in ["take", "assign", "unassign", "close", "reopen"]:
        url = f"/requests/{req.pk}/{action}/"
        response = client.post(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), url
    assert not RequestEvent.objects.exists()


def test_login_page_and_login(client, staff):
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'name="username"' in page.content and b"csrfmiddlewaretoken" in page.content
    response = client.post("/login/", {"username": "phil", "password": "pw", "next": "/queue/all/"})
    assert response.status_code == 302 and response["Location"] == "/queue/all/"
    assert client.get("/queue/all/").status_code == 200


def test_wrong_password_is_refused(client, staff):
    response = client.post("/login/", {"username": "phil", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_login_never_redirects_off_site(client, staff):
    response = client.post("/login/", {"username": "phil", "password": "pw", "next": "https://evil.example/x"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "evil" not in response["Location"]


def test_logout_is_post_only(logged_in):
    assert logged_in.get("/logout/").status_code == 405
    response = logged_in.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert logged_in.get("/queue/all/").status_code == 302


# --- queues -------------------------------------------------------------------


def test_home_redirects_to_general(logged_in):
    response = logged_in.get("/")
    assert response.status_code == 302 and response["Location"] == "/queue/general/"


def test_queues_filter(logged_in, staff, other, mailbox):
    sales = Mailbox.objects.create(name="sales", protocol=Mailbox.Protocol.MAILDIR)
    unassigned = make_request("unassigned", mailbox=mailbox)
    mine = make_request("mine", mailbox=mailbox, assignee=staff)
    theirs = make_request("theirs", mailbox=sales, assignee=other)
    closed = make_request("closed", mailbox=sales, status=Request.Status.CLOSED)
    assert numbers(logged_in.get("/queue/general/")) == [unassigned.pk]
    assert numbers(logged_in.get("/queue/mine/")) == [mine.pk]
    assert set(numbers(logged_in.get("/queue/all/"))) == {unassigned.pk, mine.pk, theirs.pk, closed.pk}
    assert set(numbers(logged_in.get("/queue/mailbox/support/"))) == {unassigned.pk, mine.pk}
    assert set(numbers(logged_in.get("/queue/mailbox/sales/"))) == {theirs.pk, closed.pk}
    assert logged_in.get("/queue/mailbox/nope/").status_code == 404
    assert logged_in.get("/queue/bogus/").status_code == 404
    page = logged_in.get("/queue/all/")
    counts = {q["key"]: q["count"] for q in page.context["nav_queues"]}
    assert counts == {"general": 1, "mine": 1, "all": 3}  # All and mailboxes count what is not closed
    assert {m["name"]: m["count"] for m in page.context["nav_mailboxes"]} == {"support": 2, "sales": 1}


def test_queue_table_shows_columns_and_markers_newest_first(logged_in, staff, mailbox):
    old = make_request("Old one", mailbox=mailbox)
    new = make_request("New one", customer="bob@example.net", mailbox=mailbox, assignee=staff, attachment=b"x")
    Request.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=1))
    Request.objects.filter(pk=new.pk).update(auto_submitted="auto-replied")
    response = logged_in.get("/queue/all/")
    assert numbers(response) == [new.pk, old.pk]
    html = response.content.decode()
    for text in ["New one", "bob@example.net", "support", "phil", "has attachments", "auto-replied", "badge-new"]:
        assert text in html
    row = response.context["page"].object_list[0]
    assert row.has_attachments and not response.context["page"].object_list[1].has_attachments


def test_search_by_subject_customer_and_number(logged_in):
    a = make_request("Printer on fire", customer="ann@example.com")
    b = make_request("Invoice missing", customer="bob@billing.example")
    assert numbers(logged_in.get("/queue/all/", {"q": "PRINTER"})) == [a.pk]
    assert numbers(logged_in.get("/queue/all/", {"q": "billing"})) == [b.pk]
    for q in [str(b.pk), f"#{b.pk}", f"PD-{b.pk}", f"pd-{b.pk}"]:
        assert numbers(logged_in.get("/queue/all/", {"q": q})) == [b.pk], q
    assert numbers(logged_in.get("/queue/all/", {"q": "nothing like it"})) == []
    assert numbers(logged_in.get("/queue/all/", {"q": "9" * 40})) == []  # not a number the database can hold


def test_pagination(logged_in):
    for i in range(53):
        make_request(f"request {i}")
    first = logged_in.get("/queue/all/")
    assert len(numbers(first)) == 50 and first.context["page"].paginator.num_pages == 2
    second = logged_in.get("/queue/all/", {"page": 2})
    assert len(numbers(second)) == 3
    assert not set(numbers(first)) & set(numbers(second))
    assert len(numbers(logged_in.get("/queue/all/", {"page": "junk"}))) == 50
    searched = logged_in.get("/queue/all/", {"q": "request"})
    assert b"q=request&amp;page=2" in searched.content


# --- a request ----------------------------------------------------------------


def test_request_page_shows_the_conversation(logged_in, mailbox):
    req = make_request(mailbox=mailbox, attachment=b"%PDF-1.4 data")
    second_raw = RAW + b"second"
    Message.objects.create(request=req, fingerprint=hashlib.sha256(second_raw).hexdigest(), sender_address="ann@example.com",
                           text="Still burning.", raw=blobs.put(second_raw))
    response = logged_in.get(f"/requests/{req.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("It is on fire.") < html.index("Still burning.")
    assert "&lt;b&gt;not html&lt;/b&gt;" in html and "<b>not html</b>" not in html
    assert "help@example.org" in html and "report.pdf" in html
    attachment = Attachment.objects.get()
    assert f'href="/attachments/{attachment.pk}/"' in html
    assert f'href="/messages/{req.messages.first().pk}/raw/"' in html
    # Only our own static scripts, no inline ones (the CSP would block them anyway).
    scripts = re.findall(r"<script[^>]*>", html)
    assert all(re.fullmatch(r'<script src="/static/postdesk/[\w-]+\.js" defer>', tag) for tag in scripts), scripts
    assert {'<script src="/static/postdesk/keys.js" defer>', '<script src="/static/postdesk/live.js" defer>',
            '<script src="/static/postdesk/menu.js" defer>',
            '<script src="/static/postdesk/reading.js" defer>'} <= set(scripts)
    assert "style=" not in html
    assert logged_in.get("/requests/999999/").status_code == 404


def test_request_page_shows_what_the_parser_repaired_with_the_from_as_written(logged_in, mailbox):
    req = make_request(mailbox=mailbox, customer="pat@example.com")
    message = req.messages.get()
    message.defects = ["from: no usable address in 'From: \"Pat <b>\" <>'; sender taken from Reply-To",
                       "header block: a stray line among the headers dropped: 'scanned'", "c", "d", "e"]
    message.save()
    html = logged_in.get(f"/requests/{req.pk}/").content.decode()
    assert "repaired:" in html and "sender taken from Reply-To" in html
    assert "From: &quot;Pat &lt;b&gt;&quot; &lt;&gt;" in html  # as written, and escaped
    assert "(and 2 more; see the raw .eml)" in html


def test_request_page_has_no_repaired_line_for_a_clean_message(logged_in, mailbox):
    req = make_request(mailbox=mailbox)
    assert "repaired:" not in logged_in.get(f"/requests/{req.pk}/").content.decode()


@pytest.mark.parametrize("action", ["take", "assign", "unassign", "close", "reopen"])
def test_get_on_an_action_is_refused(logged_in, action):
    req = make_request()
    assert logged_in.get(f"/requests/{req.pk}/{action}/").status_code == 405
    assert not RequestEvent.objects.exists()


def _event(req) -> RequestEvent:
    return RequestEvent.objects.filter(request=req).latest("id")


def test_take(logged_in, staff):
    req = make_request()
    response = logged_in.post(f"/requests/{req.pk}/take/", seen(req))
    assert response.status_code == 302 and response["Location"] == f"/requests/{req.pk}/"
    req.refresh_from_db()
    assert req.assignee == staff
    event = _event(req)
    assert (event.actor, event.kind) == (staff, "assigned")
    page = logged_in.get(f"/requests/{req.pk}/").content.decode()
    assert "taken by phil" in page
    # Taking it again changes nothing and records nothing.
    logged_in.post(f"/requests/{req.pk}/take/", seen(req))
    assert RequestEvent.objects.filter(request=req).count() == 1


def test_assign_and_unassign(logged_in, staff, other):
    req = make_request()
    logged_in.post(f"/requests/{req.pk}/assign/", {**seen(req), "assignee": other.pk})
    req.refresh_from_db()
    assert req.assignee == other
    event = _event(req)
    assert (event.actor, event.kind, event.detail) == (staff, "assigned", "assigned to rita, now open")
    logged_in.post(f"/requests/{req.pk}/unassign/", seen(req))
    req.refresh_from_db()
    assert req.assignee is None
    event = _event(req)
    assert (event.actor, event.kind) == (staff, "unassigned")
    assert logged_in.post(f"/requests/{req.pk}/assign/", {**seen(req), "assignee": "999999"}).status_code == 400
    assert logged_in.post(f"/requests/{req.pk}/assign/", {**seen(req), "assignee": "x"}).status_code == 400
    other.is_active = False
    other.save()
    assert logged_in.post(f"/requests/{req.pk}/assign/", {**seen(req), "assignee": other.pk}).status_code == 400
    assert RequestEvent.objects.filter(request=req).count() == 2


def test_close_and_reopen(logged_in, staff):
    req = make_request()
    logged_in.post(f"/requests/{req.pk}/close/", seen(req))
    req.refresh_from_db()
    assert req.status == Request.Status.CLOSED
    assert (_event(req).actor, _event(req).kind) == (staff, "closed")
    logged_in.post(f"/requests/{req.pk}/reopen/", seen(req))
    req.refresh_from_db()
    assert req.status == Request.Status.OPEN
    assert (_event(req).actor, _event(req).kind) == (staff, "reopened")
    history = logged_in.get(f"/requests/{req.pk}/").context["events"]
    assert [e.kind for e in history] == ["closed", "reopened"]


def test_actions_need_the_csrf_token(client, staff):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    req = make_request()
    assert strict.post(f"/requests/{req.pk}/close/", seen(req)).status_code == 403
    req.refresh_from_db()
    assert req.status == Request.Status.NEW


# --- downloads ----------------------------------------------------------------


def test_attachment_download_headers(logged_in):
    make_request(attachment=b"<html><script>alert(1)</script>", filename='evil "name".html', content_type="text/html")
    attachment = Attachment.objects.get()
    response = logged_in.get(f"/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"<html><script>alert(1)</script>"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_safe_image_keeps_its_type_but_is_still_an_attachment(logged_in):
    make_request(attachment=b"\x89PNG\r\n\x1a\n", filename="shot.png", content_type="image/png")
    response = logged_in.get(f"/attachments/{Attachment.objects.get().pk}/")
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="shot.png"'


def test_svg_is_served_as_bytes(logged_in):
    make_request(attachment=b"<svg onload='alert(1)'/>", filename="x.svg", content_type="image/svg+xml")
    response = logged_in.get(f"/attachments/{Attachment.objects.get().pk}/")
    assert response["Content-Type"] == "application/octet-stream"


def test_large_attachment_from_the_file_store(logged_in, data_dir, monkeypatch):
    monkeypatch.setenv("POSTDESK_BLOB_STORE", "fs")
    data = b"A" * (blobs.INLINE_MAX + 10)
    make_request(attachment=data, filename="big.bin", content_type="application/x-thing")
    response = logged_in.get(f"/attachments/{Attachment.objects.get().pk}/")
    assert b"".join(response.streaming_content) == data


def test_raw_message_download(logged_in):
    req = make_request()
    message = req.messages.get()
    response = logged_in.get(f"/messages/{message.pk}/raw/")
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="message-{message.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == blobs.read(message.raw_id)
    assert logged_in.get("/messages/999999/raw/").status_code == 404


# --- headers ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/login/", "/queue/all/", "REQUEST"])
def test_security_headers(logged_in, url):
    if url == "REQUEST":
        url = f"/requests/{make_request().pk}/"
    response = logged_in.get(url)
    assert response.status_code == 200 or url == "/login/"
    csp = response["Content-Security-Policy"]
    for part in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                 "base-uri 'none'", "form-action 'self'", "img-src 'self' data:"]:
        assert part in csp
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_headers_on_a_redirect_to_login_too(client):
    response = client.get("/queue/all/")
    assert "Content-Security-Policy" in response and response["Referrer-Policy"] == "same-origin"


def test_stylesheet_is_found(settings):
    from django.contrib.staticfiles import finders

    assert finders.find("postdesk/app.css")


# --- the failing-mailbox banner -------------------------------------------------


def test_admins_see_failing_mailboxes_in_a_banner(client, staff, mailbox):
    mailbox.consecutive_failures = 3
    mailbox.last_error = "login: login as 'support' refused: [AUTHENTICATIONFAILED]"
    mailbox.save()
    client.force_login(staff)
    assert "banner-failing" not in client.get("/queue/general/").content.decode()  # staff: not theirs to fix
    admin = User.objects.create_superuser("ada", "ada@example.com", "pw")
    client.force_login(admin)
    page = client.get("/queue/general/").content.decode()
    assert "1 mailbox failing" in page and "AUTHENTICATIONFAILED" in page
    assert "will not fix itself: check the mailbox settings" in page  # a login error needs a person
    assert f'href="/mailboxes/{mailbox.pk}/"' in page
    mailbox.consecutive_failures = 1  # one failed pass is not "failing" yet
    mailbox.save()
    assert "banner-failing" not in client.get("/queue/general/").content.decode()
