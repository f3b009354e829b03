"""No double answers: every form of the request page carries what the page saw
(postdesk.web.staleness), and a form from a stale page is refused (409) with what
changed, the draft kept; Take on a colleague's request asks first."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from postdesk.models import Message, Outgoing, Request, RequestEvent
from postdesk.outbound.reply import ReplyDraft, add_note, send_reply
from tests.support.desk import customer_writes, req, rita, seen  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def set_state(request: Request, **fields) -> None:
    Request.objects.filter(pk=request.pk).update(**fields)


def refused(response, *words: str) -> str:
    assert response.status_code == 409
    page = response.content.decode()
    assert "Not done: this page was out of date." in page
    for w in words:
        assert w in page, w
    return page


# --- reply and note -----------------------------------------------------------------


def test_a_reply_after_a_new_customer_message_is_refused_with_the_draft_kept(logged_in, req):
    page = seen(req)
    customer_writes(req, "Now it smokes too.")
    upload = SimpleUploadedFile("photo.jpg", b"\xff\xd8jpeg", content_type="image/jpeg")
    response = logged_in.post(f"/requests/{req.pk}/reply/", {**page, "text": "Unplug it, please.", "cc": "bob@customer.example",
                                                            "attachments": [upload]})
    html = refused(response, "a new message from the customer (Alice)", "Unplug it, please.</textarea>",
                   'value="bob@customer.example"', "Attach again (a browser cannot keep chosen files): photo.jpg")
    assert not Outgoing.objects.exists() and not Message.objects.filter(direction="out").exists()
    # The page shown is up to date: sending from it goes through.
    assert "Now it smokes too." in html
    assert logged_in.post(f"/requests/{req.pk}/reply/", {**seen(req), "text": "Unplug it, please."}).status_code == 302
    assert Outgoing.objects.count() == 1


def test_a_reply_after_a_colleagues_reply_or_note_is_refused(logged_in, req, rita):
    page = seen(req)
    send_reply(req.pk, ReplyDraft("Rita here: we are on it."), rita)
    refused(logged_in.post(f"/requests/{req.pk}/reply/", {**page, "text": "On it!"}), "rita replied to the customer")
    page = seen(req)
    add_note(req.pk, "I am calling her now, do not answer.", rita)
    refused(logged_in.post(f"/requests/{req.pk}/reply/", {**page, "text": "On it!"}), "rita added an internal note")
    # A note beside a colleague's note does no harm: it goes through.
    assert logged_in.post(f"/requests/{req.pk}/note/", {**page, "text": "Noted."}).status_code == 302
    assert Outgoing.objects.count() == 1  # Rita's reply only


def test_a_note_after_a_customer_message_is_refused(logged_in, req):
    page = seen(req)
    customer_writes(req)
    refused(logged_in.post(f"/requests/{req.pk}/note/", {**page, "text": "Old firmware."}), "a new message from the customer",
            "Old firmware.</textarea>")
    assert not Message.objects.filter(direction="note").exists()


def test_ones_own_reply_from_another_tab_does_not_refuse(logged_in, staff, req):
    page = seen(req)
    send_reply(req.pk, ReplyDraft("First."), staff)
    assert logged_in.post(f"/requests/{req.pk}/note/", {**page, "text": "Sent the first."}).status_code == 302


@pytest.mark.parametrize("change, words", [
    ({"status": Request.Status.CLOSED}, "it was closed"),
    ("rita", "it was assigned to rita"),
])
def test_a_reply_after_it_was_closed_or_assigned_to_someone_else_is_refused(logged_in, req, rita, change, words):
    page = seen(req)
    set_state(req, **({"assignee": rita} if change == "rita" else change))
    refused(logged_in.post(f"/requests/{req.pk}/reply/", {**page, "text": "Hello"}), words)
    assert not Outgoing.objects.exists()


@pytest.mark.parametrize("action", ["reply", "note", "take", "assign", "unassign", "close", "reopen"])
def test_a_form_without_the_pages_version_is_refused(logged_in, staff, req, action):
    set_state(req, assignee=staff)
    data = {"text": "Hello", "assignee": staff.pk}
    refused(logged_in.post(f"/requests/{req.pk}/{action}/", data), "which version of the request it was opened on")
    assert not RequestEvent.objects.exists() and not Message.objects.exclude(direction="in").exists()


def test_a_malformed_version_is_refused(logged_in, req):
    refused(logged_in.post(f"/requests/{req.pk}/reply/", {**seen(req), "seen_status": "gone", "text": "x"}))


# --- actions ------------------------------------------------------------------------


def test_close_after_a_customer_message_is_refused(logged_in, req):
    page = seen(req)
    customer_writes(req, "One more thing.")
    refused(logged_in.post(f"/requests/{req.pk}/close/", page), "a new message from the customer")
    req.refresh_from_db()
    assert req.status != Request.Status.CLOSED and not RequestEvent.objects.exists()


def test_close_after_a_colleague_took_it_is_refused(logged_in, req, rita):
    page = seen(req)
    set_state(req, assignee=rita)
    refused(logged_in.post(f"/requests/{req.pk}/close/", page), "it was assigned to rita")


@pytest.mark.parametrize("action", ["take", "assign", "unassign"])
def test_assignment_actions_after_a_colleague_took_it_are_refused(logged_in, staff, req, rita, action):
    page = seen(req)
    set_state(req, assignee=rita)
    refused(logged_in.post(f"/requests/{req.pk}/{action}/", {**page, "assignee": staff.pk}), "it was assigned to rita")
    req.refresh_from_db()
    assert req.assignee == rita and not RequestEvent.objects.exists()


def test_reopen_after_someone_reopened_it_is_refused(logged_in, req):
    set_state(req, status=Request.Status.CLOSED)
    page = seen(req)
    set_state(req, status=Request.Status.OPEN)
    refused(logged_in.post(f"/requests/{req.pk}/reopen/", page), "it was reopened")


def test_a_customer_message_does_not_refuse_take(logged_in, staff, req):
    page = seen(req)
    customer_writes(req)
    assert logged_in.post(f"/requests/{req.pk}/take/", page).status_code == 302
    req.refresh_from_db()
    assert req.assignee == staff


def test_taking_a_colleagues_request_asks_first(logged_in, staff, req, rita):
    set_state(req, assignee=rita)
    response = logged_in.post(f"/requests/{req.pk}/take/", seen(req))
    assert response.status_code == 200
    page = response.content.decode()
    assert "rita has it; take it anyway?" in page and 'name="confirm" value="1"' in page
    req.refresh_from_db()
    assert req.assignee == rita and not RequestEvent.objects.exists()
    assert logged_in.post(f"/requests/{req.pk}/take/", {**seen(req), "confirm": "1"}).status_code == 302
    req.refresh_from_db()
    assert req.assignee == staff


def test_every_form_on_the_page_carries_the_version(logged_in, req):
    page = logged_in.get(f"/requests/{req.pk}/").content.decode()
    last = req.messages.latest("pk").pk
    assert page.count(f'name="seen_message" value="{last}"') == page.count("<form method=\"post\" action=\"/requests/")
    # Take, Assign, Close, Waiting on customer, priority, add a tag, Reply, Note, Merge at least
    assert page.count('name="seen_status" value="new"') == page.count("<form method=\"post\" action=\"/requests/") >= 9
