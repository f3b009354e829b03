"""The queue page's forms: bulk actions on the selected rows, saved views, and merging a
request from its page. Thin: the rules are desk.bulk, desk.merge and desk.filters."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from postdesk.desk import bulk, filters, merge
from postdesk.web import staleness
from postdesk.web.queues import queue_url


def _back(request, fallback: str):
    """Back to the queue page the form was on (only a path of ours)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts=None) and target.startswith("/"):
        return redirect(target)
    return redirect(fallback)


@require_POST
@login_required
def bulk_action(request):
    numbers = bulk.numbers_from(request.POST.getlist("pick"))
    try:
        action = bulk.action_for(request.POST.get("action", ""), request.user, request.POST, numbers)
        result = bulk.run(action, numbers)
    except bulk.BulkError as error:
        flash.error(request, str(error))
    else:
        (flash.success if result.changed else flash.info)(request, result.summary())
    return _back(request, queue_url("general"))


@require_POST
@login_required
def merge_request(request, number: int):
    target = request.POST.get("target", "").strip().lstrip("#")
    if not target.isdigit() or len(target) > 18:
        flash.error(request, f"“{target}” is not a request number")
        return redirect("postdesk_web:request", number=number)
    try:
        merged = merge.merge(number, int(target), request.user, other_customer=request.POST.get("other_customer") == "1",
                             guard=staleness.guard(staleness.read_seen(request.POST), request.user, "merge"))
    except staleness.StalePage as stale:
        flash.error(request, f"Not merged: since you opened this page, {stale}. Check, then merge again.")
        return redirect("postdesk_web:request", number=number)
    except merge.MergeRefused as refused:
        flash.error(request, str(refused))
        return redirect("postdesk_web:request", number=number)
    if merged.changed:
        flash.success(request, f"#{merged.source} merged into this request ({merged.messages} messages moved)")
    else:
        flash.info(request, f"#{merged.source} was already merged into this request")
    return redirect("postdesk_web:request", number=merged.target)


@require_POST
@login_required
def save_view(request):
    queue = request.POST.get("queue", "all")
    try:
        view = filters.save_view(request.user, request.POST.get("name", ""), queue, request.POST.get("query", ""))
    except filters.ViewError as error:
        flash.error(request, str(error))
        return _back(request, queue_url(queue))
    flash.success(request, f"View “{view.name}” saved")
    return redirect(queue_url(view.queue) + (f"?{view.query}" if view.query else ""))


@require_POST
@login_required
def rename_view(request, pk: int):
    try:
        view = filters.rename_view(request.user, pk, request.POST.get("name", ""))
    except filters.ViewError as error:
        flash.error(request, str(error))
    except filters.SavedView.DoesNotExist:
        flash.error(request, "no such saved view")
    else:
        flash.success(request, f"View renamed “{view.name}”")
    return _back(request, queue_url("general"))


@require_POST
@login_required
def delete_view(request, pk: int):
    if filters.delete_view(request.user, pk):
        flash.success(request, "View deleted")
    else:
        flash.info(request, "That view was already deleted")
    return _back(request, queue_url("general"))
