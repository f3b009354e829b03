"""Answering from the request page: a reply to the customer, or an internal note."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from postdesk.models import Request
from postdesk.outbound import compose
from postdesk.outbound.reply import ReplyDraft, ReplyError, add_note, send_reply

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # what most receiving servers accept in all


def _files(request) -> tuple[compose.FileToSend, ...]:
    files, total = [], 0
    for upload in request.FILES.getlist("attachments"):
        total += upload.size
        if total > MAX_ATTACHMENT_BYTES:
            raise ReplyError("the attachments are larger than 25 MB together; most mail servers would refuse them")
        files.append(compose.FileToSend(upload.name or "attachment", upload.content_type or "application/octet-stream", upload.read()))
    return tuple(files)


def _keep_draft(request) -> None:
    """On an error the page shows the form again with what was typed."""
    request.session["reply_draft"] = {"text": request.POST.get("text", "")[:200_000], "cc": request.POST.get("cc", "")[:2000]}


@require_POST
@login_required
def reply(request, number: int):
    get_object_or_404(Request, pk=number)
    try:
        draft = ReplyDraft(request.POST.get("text", ""), request.POST.get("cc", ""), _files(request))
        message = send_reply(number, draft, request.user)
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
        add_note(number, request.POST.get("text", ""), request.user)
    except ReplyError as exc:
        _keep_draft(request)
        flash.error(request, str(exc))
        return redirect(f"/requests/{number}/#reply")
    request.session.pop("reply_draft", None)
    flash.success(request, "Note added (not sent to the customer).")
    return redirect("postdesk_web:request", number=number)
