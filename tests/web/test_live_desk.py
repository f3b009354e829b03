"""Unread rows, the polled queue and request page, presence (postdesk.web.unread, live, presence)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from postdesk.desk import search
from postdesk.models import Presence, Request
from tests.support.desk import customer_writes, req, rita, seen  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def row_classes(client) -> dict[int, tuple[bool, bool]]:
    """(unread, customer replied) per request number in General."""
    rows = client.get("/queue/general/").context["page"].object_list
    return {r.pk: (r.unread, r.customer_replied) for r in rows}


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_unread_until_opened_after_the_last_customer_message(logged_in, req, rita):
    assert row_classes(logged_in) == {req.pk: (True, False)}
    assert 'class="unread"' in logged_in.get("/queue/general/").content.decode()
    logged_in.get(f"/requests/{req.pk}/")
    assert row_classes(logged_in) == {req.pk: (False, False)}
    assert row_classes(as_user(rita)) == {req.pk: (True, False)}  # per staff member
    customer_writes(req, "Hello again")
    assert row_classes(logged_in) == {req.pk: (True, True)}
    assert "customer replied" in logged_in.get("/queue/general/").content.decode()
    logged_in.get(f"/requests/{req.pk}/")
    assert row_classes(logged_in) == {req.pk: (False, False)}


def test_the_queue_costs_the_same_queries_for_one_row_or_fifty(logged_in, req):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.get("/queue/all/").status_code == 200
        return len(captured)

    queries()  # the first page after signing in moves the session's end (a write); the next ones do not
    one = queries()
    for n in range(49):
        customer_writes(Request.objects.create(subject=f"r{n}", mailbox=req.mailbox))
    assert queries() == one


def test_the_queue_poll_sends_counts_and_rows_only_when_they_changed(logged_in, req):
    page = logged_in.get("/queue/general/?q=Printer")
    stamp = page.context["stamp"]
    assert 'data-live-url="/queue/general/?q=Printer&amp;live=1"' in page.content.decode()
    data = logged_in.get(f"/queue/general/?q=Printer&live=1&since={stamp}").json()
    assert data["counts"]["general"] == 1 and data["counts"]["mailbox:support"] == 1 and "html" not in data
    search.index_request(Request.objects.create(subject="Printer jammed", mailbox=req.mailbox).pk)  # as apply.py does
    data = logged_in.get(f"/queue/general/?q=Printer&live=1&since={stamp}").json()
    assert data["count"] == 2 and data["stamp"] != stamp and "Printer jammed" in data["html"]


def test_the_request_poll_says_what_changed_and_who_is_there(logged_in, req, rita):
    page = seen(req)
    url = f"/requests/{req.pk}/live/"
    data = logged_in.post(url, {**page, "beat": "1"}).json()
    assert (data["changes"], data["presence"], data["status"], data["assignee"]) == ([], [], "new", "")
    as_user(rita).post(url, {**page, "beat": "1", "replying": "1"})
    Request.objects.filter(pk=req.pk).update(assignee=rita)
    customer_writes(req, "Any news?")
    data = logged_in.post(url, page).json()
    assert data["customer"] and data["assignee"] == "rita"
    assert data["changes"] == ["a new message from the customer (Alice)", "it was assigned to rita"]
    assert data["presence"] == [{"name": "rita", "replying": True}]
    # Rita stops typing, then leaves.
    as_user(rita).post(url, {**page, "beat": "1", "replying": "0"})
    assert logged_in.post(url, page).json()["presence"] == [{"name": "rita", "replying": False}]
    as_user(rita).post(url, {"leave": "1"})
    assert logged_in.post(url, page).json()["presence"] == []


def test_presence_expires(logged_in, req, rita):
    url = f"/requests/{req.pk}/live/"
    as_user(rita).post(url, {**seen(req), "beat": "1"})
    Presence.objects.update(seen_at=timezone.now() - timedelta(seconds=31))
    assert logged_in.post(url, {**seen(req), "beat": "1"}).json()["presence"] == []
    assert list(Presence.objects.values_list("user__username", flat=True)) == ["phil"]  # the stale row is gone


def test_the_request_poll_is_post_only_and_signed_in(logged_in, req):
    url = f"/requests/{req.pk}/live/"
    assert logged_in.get(url).status_code == 405
    assert Client().post(url).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(User.objects.get(username="phil"))
    assert strict.post(url, {"beat": "1"}).status_code == 403


def test_polls_do_not_keep_a_session_alive(logged_in, req):
    from django.contrib.sessions.models import Session

    soon = timezone.now() + timedelta(minutes=5)
    Session.objects.update(expire_date=soon)
    logged_in.post(f"/requests/{req.pk}/live/", {**seen(req), "beat": "1"})
    logged_in.get("/queue/general/?live=1")
    assert Session.objects.get().expire_date == soon
    logged_in.get("/queue/general/")  # the staff member's own doing does
    assert Session.objects.get().expire_date > soon


def test_the_server_keeps_an_open_connection_for_each_of_200_pages():
    from postdesk.web.server import ServerOptions, make_server

    server = make_server(ServerOptions(port=0))
    try:
        assert server.adj.connection_limit >= 200 + 100  # the pages, and room for everyone else
    finally:
        server.close()
