"""Admin pages for the quarantine: list, read, re-run, discard (with confirmation and an audit row)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils.html import escape

from postdesk import pipeline
from postdesk.models import AuditEvent, Intake, Mailbox, Request
from postdesk.store import blobs
from postdesk.web.quarantine import PREVIEW_BYTES
from tests.support.mail import maildir_deliver, make_message

pytestmark = pytest.mark.django_db

REASON = "over the size limit: 0.1 MB > 0.0 MB (re-run to import it anyway)"





@pytest.fixture
def as_staff(client):
    client.force_login(User.objects.create_user("phil", "phil@example.com", "pw", is_staff=True))
    return client


@pytest.fixture
def support(db):
    return Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR, path="/srv/mail/support")


def held(mailbox, raw: bytes | None = None, reason: str = REASON, key: str = "1700000000.1.host", attempts: int = 1) -> Intake:
    """A quarantined intake row, as intake.take() or process.quarantine() leave one."""
    raw = raw if raw is not None else make_message(subject="Big scan", body="Please look at the scan.\n")
    return Intake.objects.create(mailbox=mailbox, source_key=key, raw=blobs.put(raw), size=len(raw), attempts=attempts,
                                 status=Intake.Status.QUARANTINED, quarantine_reason=reason, last_error=reason)


def urls(intake) -> list[tuple[str, str]]:
    return [("get", "/quarantine/"), ("get", f"/quarantine/{intake.pk}/"), ("get", f"/quarantine/{intake.pk}/raw/"),
            ("get", f"/quarantine/{intake.pk}/discard/"), ("post", f"/quarantine/{intake.pk}/discard/"),
            ("get", f"/quarantine/{intake.pk}/rerun/"), ("post", f"/quarantine/{intake.pk}/rerun/")]


def assert_untouched(intake) -> None:
    intake.refresh_from_db()
    assert intake.status == Intake.Status.QUARANTINED
    assert not Request.objects.exists() and not AuditEvent.objects.exists()


# --- who may --------------------------------------------------------------------------


def test_every_quarantine_page_and_action_requires_login(client, support):
    intake = held(support)
    for method, url in urls(intake):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/login/?next="), (method, url)
    assert_untouched(intake)


def test_staff_who_are_not_admins_get_403_on_every_page_and_action(as_staff, support):
    intake = held(support)
    for method, url in urls(intake):
        assert getattr(as_staff, method)(url).status_code == 403, (method, url)
    assert_untouched(intake)


def test_actions_need_the_csrf_token(admin, support):
    intake = held(support)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin)
    assert strict.post(f"/quarantine/{intake.pk}/rerun/").status_code == 403
    assert strict.post(f"/quarantine/{intake.pk}/discard/").status_code == 403
    assert_untouched(intake)
    for url in [f"/quarantine/{intake.pk}/", f"/quarantine/{intake.pk}/discard/", "/quarantine/"]:
        assert b"csrfmiddlewaretoken" in strict.get(url).content, url


def test_rerun_is_post_only(as_admin, support):
    intake = held(support)
    assert as_admin.get(f"/quarantine/{intake.pk}/rerun/").status_code == 405
    assert_untouched(intake)


def test_unknown_intake_is_404(as_admin):
    for url in ["/quarantine/999999/", "/quarantine/999999/raw/", "/quarantine/999999/discard/"]:
        assert as_admin.get(url).status_code == 404, url
    assert as_admin.post("/quarantine/999999/rerun/").status_code == 404


# --- the list and one message ---------------------------------------------------------


def test_list_shows_the_quarantined_only(as_admin, support):
    big = held(support, reason=REASON, attempts=0)
    failed = held(support, make_message(subject="Broken"), reason="processing failed: boom", key="2", attempts=3)
    done = held(support, make_message(subject="Done"), key="3")
    Intake.objects.filter(pk=done.pk).update(status=Intake.Status.PROCESSED)

    response = as_admin.get("/quarantine/")

    assert response.status_code == 200
    assert [i.pk for i in response.context["page"].object_list] == [failed.pk, big.pk]  # newest first
    html = response.content.decode()
    for text in ["support", escape(REASON), "processing failed: boom", f'href="/quarantine/{big.pk}/"',
                 f'action="/quarantine/{big.pk}/rerun/"', f'href="/quarantine/{big.pk}/discard/?next=/quarantine/"']:
        assert text in html, text
    assert f'href="/quarantine/{done.pk}/"' not in html
    assert "style=" not in html


def test_detail_shows_the_reason_and_the_raw_message_as_escaped_text(as_admin, support):
    raw = make_message(subject="Hostile", body="<script>alert(1)</script> caf\u00e9\n")
    intake = held(support, raw, reason="processing failed: <b>boom</b>")

    response = as_admin.get(f"/quarantine/{intake.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "processing failed: &lt;b&gt;boom&lt;/b&gt;" in html
    assert "Subject: Hostile" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert f'href="/quarantine/{intake.pk}/raw/"' in html
    assert f'action="/quarantine/{intake.pk}/rerun/"' in html and f'href="/quarantine/{intake.pk}/discard/"' in html
    assert not response.context["preview"].truncated


def test_a_big_raw_message_is_capped_with_a_note_and_a_download(as_admin, support):
    raw = make_message(subject="Huge", body="x" * 100 + "\n") + b"\xe9" * (PREVIEW_BYTES + 10)  # Latin-1 bytes, past the cap
    intake = held(support, raw)

    response = as_admin.get(f"/quarantine/{intake.pk}/")

    preview = response.context["preview"]
    assert preview.truncated and len(preview.text) == PREVIEW_BYTES and preview.size == len(raw)
    assert "Subject: Huge" in preview.text and "\u00e9" in preview.text  # not UTF-8: shown as Latin-1
    html = response.content.decode()
    assert "Showing the first 256.0\u00a0KB" in html and "Download the whole message" in html


def test_a_missing_raw_message_still_shows_the_page(as_admin, support, monkeypatch):
    monkeypatch.setenv("POSTDESK_BLOB_STORE", "fs")
    raw = make_message(subject="Lost", body="y" * (blobs.INLINE_MAX + 10))
    intake = held(support, raw, reason="processing failed: FileNotFoundError")
    blobs.path_for(intake.raw_id).unlink()
    response = as_admin.get(f"/quarantine/{intake.pk}/")
    assert response.status_code == 200 and "is missing from the store" in response.content.decode()
    assert as_admin.get(f"/quarantine/{intake.pk}/raw/").status_code == 404


def test_raw_download_has_the_safe_headers(as_admin, support):
    raw = make_message(subject="Download me", body="<html><script>alert(1)</script>\n")
    intake = held(support, raw)
    response = as_admin.get(f"/quarantine/{intake.pk}/raw/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == raw
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="intake-{intake.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


# --- re-run ---------------------------------------------------------------------------------


def test_rerun_of_a_message_left_on_the_server_fetches_it_again(as_admin, admin, data_dir):
    inbox = data_dir / "maildir"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    call_command("mailbox", "add", "support", "--protocol", "maildir", "--path", str(inbox), "--after", "keep",
                 "--size-limit", "0.001", stdout=io.StringIO(), stderr=io.StringIO())
    maildir_deliver(inbox, make_message(subject="Big scan", attachments=[("scan.bin", "application/octet-stream", bytes(range(256)) * 16)]))
    (report,) = pipeline.fetch_all(["support"])
    assert report.quarantined == 1 and not Request.objects.exists()
    intake = Intake.objects.get()
    assert intake.status == Intake.Status.QUARANTINED and intake.left_at_source
    hint = "left on the server: raise the mailbox&#x27;s size limit, then re-run"
    assert hint in as_admin.get("/quarantine/").content.decode()
    page = as_admin.get(f"/quarantine/{intake.pk}/").content.decode()
    assert hint in page and "Subject: Big scan" in page

    call_command("mailbox", "edit", "support", "--size-limit", "1", stdout=io.StringIO(), stderr=io.StringIO())
    response = as_admin.post(f"/quarantine/{intake.pk}/rerun/")

    assert response.status_code == 302 and response["Location"] == "/quarantine/"
    assert not Intake.objects.exists()  # the placeholder is gone; its audit row stays
    event = AuditEvent.objects.get(kind="quarantine.rerun")
    assert (event.actor, event.target) == (admin, f"intake {intake.pk}")
    assert "the next pass of support downloads it again (size limit now 1.0 MB" in event.detail
    assert "downloads it again" in as_admin.get(response["Location"]).content.decode()
    (report,) = pipeline.fetch_all(["support"])
    assert report.created == 1 and Request.objects.get().subject == "Big scan"
    assert not as_admin.get("/quarantine/").context["page"].object_list


def test_rerun_that_fails_again_says_so_with_the_reason(as_admin, admin, support, monkeypatch):
    monkeypatch.setenv("POSTDESK_BLOB_STORE", "fs")
    intake = held(support, make_message(subject="Gone", body="z" * (blobs.INLINE_MAX + 10)), reason="processing failed: once")
    blobs.path_for(intake.raw_id).unlink()  # the store lost the bytes: processing cannot succeed

    response = as_admin.post(f"/quarantine/{intake.pk}/rerun/", follow=True)

    assert response.redirect_chain == [(f"/quarantine/{intake.pk}/", 302)]
    intake.refresh_from_db()
    assert intake.status == Intake.Status.QUARANTINED and "missing from the store" in intake.quarantine_reason
    html = response.content.decode()
    assert f"Re-ran #{intake.pk}: quarantined again: processing failed:" in html and "missing from the store" in html
    event = AuditEvent.objects.get()
    assert (event.actor, event.kind) == (admin, "quarantine.rerun") and event.detail.startswith("quarantined again:")
    assert not Request.objects.exists()


def test_rerun_of_a_message_no_longer_held_changes_nothing(as_admin, support):
    intake = held(support)
    Intake.objects.filter(pk=intake.pk).update(status=Intake.Status.DISCARDED)
    response = as_admin.post(f"/quarantine/{intake.pk}/rerun/")
    assert response.status_code == 302 and response["Location"] == f"/quarantine/{intake.pk}/"
    intake.refresh_from_db()
    assert intake.status == Intake.Status.DISCARDED
    assert not Request.objects.exists() and not AuditEvent.objects.exists()


# --- discard ----------------------------------------------------------------------------------


def test_discard_asks_first_then_discards_keeping_the_bytes_and_an_audit_row(as_admin, admin, support):
    raw = make_message(subject="Spam, really")
    intake = held(support, raw)

    confirm = as_admin.get(f"/quarantine/{intake.pk}/discard/")

    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert f'<form method="post" action="/quarantine/{intake.pk}/discard/"' in html and "csrfmiddlewaretoken" in html
    assert "Discard message" in html and escape(REASON) in html
    intake.refresh_from_db()
    assert intake.status == Intake.Status.QUARANTINED and not AuditEvent.objects.exists()  # a GET changes nothing

    response = as_admin.post(f"/quarantine/{intake.pk}/discard/")

    assert response.status_code == 302 and response["Location"] == "/quarantine/"
    intake.refresh_from_db()
    assert intake.status == Intake.Status.DISCARDED and intake.quarantine_reason == REASON
    assert blobs.read(intake.raw_id) == raw  # the raw message is kept
    event = AuditEvent.objects.get()
    assert (event.actor, event.kind, event.target) == (admin, "quarantine.discarded", f"intake {intake.pk}")
    assert "support" in event.detail and REASON in event.detail
    assert not as_admin.get("/quarantine/").context["page"].object_list
    page = as_admin.get(f"/quarantine/{intake.pk}/").content.decode()  # still readable, no actions left
    assert "discarded" in page and f'action="/quarantine/{intake.pk}/rerun/"' not in page and "ada" in page

    again = as_admin.post(f"/quarantine/{intake.pk}/discard/")
    assert again["Location"] == f"/quarantine/{intake.pk}/" and AuditEvent.objects.count() == 1


@pytest.mark.parametrize(
    "next_url, lands",
    [
        ("/quarantine/?page=2", "/quarantine/?page=2"),
        ("https://evil.example/phish", "/quarantine/"),
        ("//evil.example/phish", "/quarantine/"),
        ("javascript:alert(1)", "/quarantine/"),
    ],
    ids=["own-page", "other-site", "scheme-relative", "javascript"],
)
def test_discard_returns_only_to_our_own_pages(as_admin, support, next_url, lands):
    intake = held(support)
    response = as_admin.post(f"/quarantine/{intake.pk}/discard/", {"next": next_url})
    assert response.status_code == 302 and response["Location"] == lands


def test_confirmation_page_drops_an_off_site_next(as_admin, support):
    intake = held(support)
    html = as_admin.get(f"/quarantine/{intake.pk}/discard/", {"next": "https://evil.example/"}).content.decode()
    assert "evil.example" not in html
    html = as_admin.get(f"/quarantine/{intake.pk}/discard/", {"next": "/quarantine/?page=2"}).content.decode()
    assert 'name="next" value="/quarantine/?page=2"' in html


def test_the_cli_discards_and_reprocesses_through_the_same_code(support):
    first, second = held(support), held(support, make_message(subject="Another"), key="2")
    call_command("quarantine", "discard", str(first.pk), stdout=io.StringIO())
    call_command("reprocess", str(second.pk), stdout=io.StringIO())
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Intake.Status.DISCARDED, Intake.Status.PROCESSED)
    assert [(e.actor, e.kind, e.target) for e in AuditEvent.objects.all()] == [
        (None, "quarantine.discarded", f"intake {first.pk}"), (None, "quarantine.rerun", f"intake {second.pk}")]
