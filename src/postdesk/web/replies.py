"""Answering from the request page: a reply to the customer, or an internal note."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from postdesk.models import Request
from postdesk.outbound import compose
from postdesk.outbound.reply import ReplyDraft, ReplyError, add_note, send_reply
from postdesk.web import staleness

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # what most receiving servers accept in all


def _files(request) -> tuple[compose.FileToSend, ...]:
    files, total = [], 0
    for upload in request.FILES.getlist("attachments"):
        total += upload.size
        if total > MAX_ATTACHMENT_BYTES:
            raise ReplyError("the attachments are larger than 25 MB together; most mail servers would refuse them")
        files.append(compose.FileToSend(upload.name or "attachment", upload.content_type or "application/octet-stream", upload.read()))
    return tuple(files)


def _draft(request) -> dict:
    return {"text": request.POST.get("text", "")[:200_000], "cc": request.POST.get("cc", "")[:2000]}


def _keep_draft(request) -> None:
    """On an error the page shows the form again with what was typed."""
    request.session["reply_draft"] = _draft(request)


def _refuse_stale(request, number: int, stale: staleness.StalePage):
    """409: the request page as it is now, what changed on top, the draft in the form
    (the names of the chosen files too: a browser cannot hand files back to a form)."""
    from postdesk.web.views import request_page

    draft = {**_draft(request), "files": [u.name for u in request.FILES.getlist("attachments")]}
    req = get_object_or_404(Request.objects.select_related("assignee", "mailbox", "customer"), pk=number)
    return request_page(request, req, draft=draft, stale=stale.changes, status=409)


@require_POST
@login_required
def reply(request, number: int):
    get_object_or_404(Request, pk=number)
    try:
        draft = ReplyDraft(request.POST.get("text", ""), request.POST.get("cc", ""), _files(request))
        message = send_reply(number, draft, request.user, guard=staleness.guard(staleness.read_seen(request.POST), request.user, "reply"))
    except staleness.StalePage as stale:
        return _refuse_stale(request, number, stale)
    except ReplyError as exc:
        _keep_draft(request)
        flash.error(request, f"Not sent: {exc}")
        return redirect(f"/requests/{number}/#reply")
    flash.success(request, f"Reply queued to {message.to[0]['address']}; it leaves within seconds.")
    request.session.pop("reply_draft", None)
    return redirect("postdesk_web:request", number=number)


@require_POST
@login_required
def note(request, number: int):
    get_object_or_404(Request, pk=number)
    try:
        add_note(number, request.POST.get("text", ""), request.user, guard=staleness.guard(staleness.read_seen(request.POST), request.user, "note"))
    except staleness.StalePage as stale:
        return _refuse_stale(request, number, stale)
    except ReplyError as exc:
        _keep_draft(request)
        flash.error(request, str(exc))
        return redirect(f"/requests/{number}/#reply")
    request.session.pop("reply_draft", None)
    flash.success(request, "Note added (not sent to the customer).")
    return redirect("postdesk_web:request", number=number)
