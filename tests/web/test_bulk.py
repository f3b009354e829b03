"""Bulk actions on selected queue rows (desk.bulk): each request moved by its single
action's desk function, with its own history line; doing it twice changes nothing more."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from postdesk.desk import bulk, tagging
from postdesk.models import Request, RequestEvent
from tests.web.test_queues_filters import make

pytestmark = pytest.mark.django_db
S = Request.Status


@pytest.fixture
def three(db):
    return [make(f"request {i}") for i in range(3)]


def post(client, action, reqs, **values):
    return client.post("/requests/bulk/", {"action": action, "pick": [r.pk for r in reqs], "next": "/queue/all/?status=open", **values},
                       follow=True)


def flash(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def events(kind) -> int:
    return RequestEvent.objects.filter(kind=kind).count()


def test_bulk_close_twice(logged_in, three):
    first = post(logged_in, "close", three)
    assert first.redirect_chain[-1][0] == "/queue/all/?status=open"
    assert "close: 3 changed" in flash(first)
    assert set(Request.objects.values_list("status", flat=True)) == {S.CLOSED}
    assert events("closed") == 3
    again = post(logged_in, "close", three)
    assert "close: 0 changed, 3 already so" in flash(again) and events("closed") == 3


def test_bulk_take_opens_new_requests_and_skips_someone_elses(logged_in, staff, three):
    rita = User.objects.create_user("rita", "rita@example.com", "pw")
    Request.objects.filter(pk=three[2].pk).update(assignee=rita)
    response = post(logged_in, "take", three)
    assert f"skipped #{three[2].pk} (rita has it)" in flash(response)
    assert list(Request.objects.filter(assignee=staff).values_list("status", flat=True)) == [S.OPEN, S.OPEN]
    post(logged_in, "take", three[:2])
    assert events("assigned") == 2


def test_bulk_assign_tag_priority_twice(logged_in, three):
    rita = User.objects.create_user("rita", "rita@example.com", "pw")
    for _ in range(2):
        post(logged_in, "assign", three, assignee=rita.pk)
        post(logged_in, "tag", three, tag="Billing")
        post(logged_in, "priority", three, priority="urgent")
    assert set(Request.objects.values_list("assignee", flat=True)) == {rita.pk}
    assert all(tagging.names(r) == ["billing"] for r in three)
    assert set(Request.objects.values_list("priority", flat=True)) == {Request.Priority.URGENT}
    assert (events("assigned"), events("tagged"), events("priority")) == (3, 3, 3)


def test_bulk_merge_into_the_oldest_selected(logged_in, three):
    response = post(logged_in, "merge", three)
    assert "merge: 2 changed" in flash(response)
    oldest = min(r.pk for r in three)
    assert Request.objects.get(pk=oldest).messages.count() == 3
    assert Request.objects.filter(merged_into=oldest).count() == 2
    assert "merge: 0 changed, 3 already so" in flash(post(logged_in, "merge", three))


def test_a_bad_value_or_selection_refuses_the_whole_action(logged_in, three):
    assert "unknown priority" in flash(post(logged_in, "priority", three, priority="whenever"))
    assert "a tag cannot contain" in flash(post(logged_in, "tag", three, tag="a/b"))
    assert "choose a staff member" in flash(post(logged_in, "assign", three, assignee="x"))
    assert "unknown action" in flash(post(logged_in, "explode", three))
    assert "select at least one" in flash(post(logged_in, "close", []))
    assert not RequestEvent.objects.exclude(kind="tagged").exists()


def test_merged_requests_are_skipped_and_foreign_next_is_ignored(logged_in, three):
    post(logged_in, "merge", three[:2])
    response = logged_in.post("/requests/bulk/", {"action": "close", "pick": [three[1].pk, 999999], "next": "https://evil.example/"})
    assert response["Location"] == "/queue/general/"
    result = bulk.run(bulk.action_for("close", User.objects.get(), {}, []), [three[1].pk, 999999])
    assert result.skipped == [(three[1].pk, f"merged into #{three[0].pk}"), (999999, "no such request")]


def test_bulk_needs_sign_in_and_post(client, logged_in, three):
    assert logged_in.get("/requests/bulk/").status_code == 405
    client.logout()
    assert client.post("/requests/bulk/", {"action": "close", "pick": [three[0].pk]})["Location"].startswith("/login/")
    assert not RequestEvent.objects.filter(kind="closed").exists()
