"""What a browser may keep of a page that shows mail (nothing: Cache-Control
no-store), and how a download names its file (RFC 6266, never the raw name)."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from postdesk.models import Attachment
from postdesk.web import disposition, mailframe
from tests.web.test_mail_frame import PNG, html_message
from tests.web.test_quarantine import held, support  # noqa: F401 (a fixture)
from tests.web.test_views import make_request

pytestmark = pytest.mark.django_db


def mail_pages(admin) -> list[str]:
    req = make_request(attachment=b"%PDF-1.4", filename="report.pdf")
    message = req.messages.get()
    attachment = Attachment.objects.get()
    framed = html_message('<p>hi <img src="cid:logo"></p>', images={"logo": (PNG, "image/png")})
    image = Attachment.objects.get(message=framed)
    return ["/", "/queue/all/", "/queue/mine/", f"/requests/{req.pk}/", f"/messages/{message.pk}/raw/",
            f"/attachments/{attachment.pk}/", f"/messages/{framed.pk}/body/",
            f"/inline/{mailframe.inline_token(image.pk, admin.pk)}/", "/mailboxes/", "/metrics"]


def test_every_page_that_shows_mail_says_no_store(as_admin, admin, support):  # noqa: F811
    intake = held(support)
    pages = mail_pages(admin) + ["/quarantine/", f"/quarantine/{intake.pk}/", f"/quarantine/{intake.pk}/raw/",
                                 "/admin/", "/admin/postdesk/request/"]
    for page in pages:
        response = as_admin.get(page, follow=page == "/")
        assert response.status_code == 200, page
        assert "no-store" in response["Cache-Control"], page


def test_sign_in_page_and_redirects_are_not_stored_either(client):
    assert "no-store" in client.get("/login/")["Cache-Control"]
    assert "no-store" in client.get("/queue/all/")["Cache-Control"]


def test_static_files_keep_their_caching(client):
    response = client.get("/static/postdesk/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


# --- Content-Disposition ------------------------------------------------------------


def parsed(header: str) -> dict[str, str]:
    """filename and filename* of a Content-Disposition value, as an RFC 6266 reader takes them."""
    assert header.startswith("attachment; ")
    found = dict(re.findall(r'(filename\*?)=("[^"]*"|[^;]*)', header))
    assert set(found) <= {"filename", "filename*"} and "filename" in found, header
    fallback = found["filename"].strip('"')
    exact = unquote(found["filename*"].removeprefix("UTF-8''"), errors="strict") if "filename*" in found else fallback
    return {"fallback": fallback, "exact": exact}


@pytest.mark.parametrize(("name", "fallback", "exact"), [
    ("shot.png", "shot.png", "shot.png"),
    ('evil "name".html', "evil _name_.html", 'evil "name".html'),
    ("Rechnung März.pdf", "Rechnung Marz.pdf", "Rechnung März.pdf"),
    ("报告.docx", "__.docx", "报告.docx"),
    ("a\r\nSet-Cookie: x=1.txt", "a Set-Cookie_ x=1.txt", "a Set-Cookie: x=1.txt"),
    ("a;b=c; filename=x.exe", "a_b=c_ filename=x.exe", "a;b=c; filename=x.exe"),
    ("100%.txt", "100_.txt", "100%.txt"),
    ("back\\slash.txt", "back_slash.txt", "back\\slash.txt"),
    ("tab\there\x00.txt", "tab here .txt", "tab here .txt"),
    ("..", "attachment", "attachment"),
])
def test_file_names_are_encoded_per_rfc_6266(name, fallback, exact):
    header = disposition.attachment(name)
    assert not re.search(r"[\x00-\x1f\x7f]", header)
    assert header.isascii()
    assert parsed(header) == {"fallback": fallback, "exact": exact}
    assert header.count('"') == 2  # the fallback's quotes only: nothing inside can close it


@pytest.mark.parametrize("name", ['quote".pdf', "naïve résumé.pdf", "crlf\r\nX-Evil: 1.pdf", "semi;colon.pdf"])
def test_attachment_download_uses_the_encoded_name(logged_in, name):
    make_request(attachment=b"data", filename=name, content_type="application/pdf")
    response = logged_in.get(f"/attachments/{Attachment.objects.get().pk}/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == disposition.attachment(name)
    assert "X-Evil" not in response
