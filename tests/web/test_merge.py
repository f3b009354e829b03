"""Merging a request into another (desk.merge) from the request page and by its function."""

from __future__ import annotations

import pytest

from postdesk.desk import merge, tagging
from postdesk.models import Attachment, Request, RequestEvent
from postdesk.store import blobs
from tests.support.desk import seen
from tests.web.test_queues_filters import make

pytestmark = pytest.mark.django_db
S = Request.Status


def history(req) -> list[str]:
    return [f"{e.kind}: {e.detail}" for e in RequestEvent.objects.filter(request=req).order_by("id")]


def test_merge_moves_messages_history_attachments_and_tags(staff):
    a = make("Printer", tags=["hardware"])
    b = make("Printer again", status=S.OPEN)
    Attachment.objects.create(message=a.messages.get(), blob=blobs.put(b"%PDF"), position=0, filename="r.pdf",
                              content_type="application/pdf", size=4)
    result = merge.merge(a.pk, b.pk, staff)
    assert result == merge.Merged(a.pk, b.pk, True, 1)
    a.refresh_from_db(), b.refresh_from_db()
    assert a.merged_into_id == b.pk and a.status == S.CLOSED
    assert b.messages.count() == 2 and not a.messages.exists()
    assert Attachment.objects.get().message.request_id == b.pk
    assert tagging.names(b) == ["hardware"] and tagging.names(a) == []
    assert "tagged: tag hardware added" in history(b)  # A's history moved
    assert f"merged: #{a.pk} merged into this request (1 message)" in history(b)
    assert history(a) == [f"closed: closed: merged into #{b.pk}", f"merged: merged into #{b.pk}"]


def test_merging_twice_changes_nothing_more(staff):
    a, b = make("one"), make("two")
    merge.merge(a.pk, b.pk, staff)
    events = RequestEvent.objects.count()
    assert merge.merge(a.pk, b.pk, staff).changed is False
    assert RequestEvent.objects.count() == events


def test_merge_into_a_merged_request_goes_to_its_target_and_never_loops(staff):
    a, b, c = make("a"), make("b"), make("c")
    merge.merge(b.pk, c.pk, staff)
    assert merge.merge(a.pk, b.pk, staff).target == c.pk
    with pytest.raises(merge.MergeRefused, match="itself"):
        merge.merge(c.pk, b.pk, staff)
    with pytest.raises(merge.MergeRefused, match="no request"):
        merge.merge(c.pk, 999999, staff)


def test_other_customers_need_a_confirmation(staff):
    a, b = make("a", customer="ann@example.com"), make("b", customer="bob@example.com")
    with pytest.raises(merge.MergeRefused, match="different customers"):
        merge.merge(a.pk, b.pk, staff)
    assert merge.merge(a.pk, b.pk, staff, other_customer=True).changed


def test_a_closed_target_is_reopened_by_an_open_request(staff):
    a, b = make("a", status=S.OPEN), make("b", status=S.CLOSED)
    merge.merge(a.pk, b.pk, staff)
    assert Request.objects.get(pk=b.pk).status == S.OPEN


def test_merge_from_the_request_page(logged_in):
    a, b = make("a"), make("b")
    page = logged_in.get(f"/requests/{a.pk}/").content.decode()
    assert f'action="/requests/{a.pk}/merge/"' in page
    response = logged_in.post(f"/requests/{a.pk}/merge/", {"target": f"#{b.pk}", **seen(a)})
    assert response.status_code == 302 and response["Location"] == f"/requests/{b.pk}/"
    again = logged_in.post(f"/requests/{a.pk}/merge/", {"target": str(b.pk), **seen(Request.objects.get(pk=a.pk))})
    assert again["Location"] == f"/requests/{b.pk}/"
    page = logged_in.get(f"/requests/{a.pk}/").content.decode()
    assert f'href="/requests/{b.pk}/"' in page and "Merged into" in page
    refused = logged_in.post(f"/requests/{b.pk}/merge/", {"target": "x", **seen(b)}, follow=True)
    assert "is not a request number" in refused.content.decode()
    assert logged_in.get(f"/requests/{a.pk}/merge/").status_code == 405


def test_merge_from_a_stale_page_is_refused(logged_in, staff):
    """Merging decides where a request's story goes: not on a page that missed a change of
    assignee or status (staleness.RELEVANT["merge"])."""
    a, b = make("a"), make("b")
    before = seen(a)
    Request.objects.filter(pk=a.pk).update(status=S.CLOSED)
    refused = logged_in.post(f"/requests/{a.pk}/merge/", {"target": str(b.pk), **before}, follow=True)
    assert "Not merged" in refused.content.decode()
    assert Request.objects.get(pk=a.pk).merged_into_id is None
