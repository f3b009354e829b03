"""Admin pages: the quarantine.  List it, read a held message and why, re-run or discard it.

Admins only, like the mailbox pages (web/mailboxes.admin_required).  Re-running
and discarding go through postdesk.quarantine, the same code as `postdesk
reprocess` and `postdesk quarantine discard`; both write an audit row.  The raw
message is shown as escaped text (never as HTML or a document), capped, with
the whole .eml as a download.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from postdesk import process, quarantine
from postdesk.models import AuditEvent, Intake
from postdesk.process.apply import Applied
from postdesk.store import blobs
from postdesk.web import disposition
from postdesk.web.access import admin_required
from postdesk.web.views import PAGE_SIZE, _nav

CURRENT = "admin:quarantine"
PREVIEW_BYTES = 256 * 1024  # of the raw message shown in the page; the download has it all


def _page(request, template: str, context: dict):
    return render(request, template, {"current": CURRENT, **context, **_nav(request)})


def _safe_next(request) -> str | None:
    """A ?next= (or posted next) that stays on this site, else None: never an open redirect."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return None


def _back(request, default: str):
    """Where a form asked to return to (when on this site), else our own page `default`."""
    return redirect(_safe_next(request) or default)


# --- the list and one message -----------------------------------------------------------


@admin_required
def quarantine_list(request):
    page = Paginator(quarantine.held().order_by("-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return _page(request, "postdesk/quarantine/list.html", {"title": "Quarantine", "page": page,
                                                           "rows": quarantine.with_envelopes(page.object_list),
                                                           "left_at_source_hint": quarantine.LEFT_AT_SOURCE_HINT})


@dataclass(frozen=True)
class Preview:
    text: str
    truncated: bool
    size: int


def preview(raw: bytes, limit: int = PREVIEW_BYTES) -> Preview:
    """The first `limit` bytes as text: UTF-8 when they are UTF-8 (a character cut at the
    limit is dropped), else Latin-1, which shows every byte as some character."""
    head = raw[:limit]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut_at_the_end = len(raw) > limit and exc.reason == "unexpected end of data"
        text = head[:exc.start].decode("utf-8") if cut_at_the_end else head.decode("latin-1")
    # A NUL has no business in an HTML page; show it as the replacement character.
    return Preview(text.replace("\x00", "\ufffd"), len(raw) > limit, len(raw))


@admin_required
def quarantine_detail(request, pk: int):
    # Any intake can be looked at (a discarded one keeps its bytes); the actions
    # are offered only while it is quarantined.
    intake = get_object_or_404(Intake.objects.select_related("mailbox"), pk=pk)
    try:
        shown, missing = preview(blobs.read(intake.raw_id)), ""
    except FileNotFoundError as exc:  # what may have put it here: the page must still say why
        shown, missing = None, str(exc)
    context = {
        "title": f"Quarantined message #{intake.pk}",
        "intake": intake,
        "held": intake.status == Intake.Status.QUARANTINED,
        "preview": shown,
        "raw_missing": missing,
        "preview_limit": PREVIEW_BYTES,
        "left_at_source_hint": quarantine.LEFT_AT_SOURCE_HINT,
        "longer_limits": LONGER_LIMITS,
        "history": AuditEvent.objects.filter(target=quarantine.target(intake.pk)).select_related("actor").order_by("-id"),
    }
    return _page(request, "postdesk/quarantine/detail.html", context)


@admin_required
def quarantine_raw(request, pk: int):
    intake = get_object_or_404(Intake, pk=pk)
    try:
        data = blobs.read(intake.raw_id)
    except FileNotFoundError:
        raise Http404("the raw message is missing from the store") from None
    return disposition.download(data, f"intake-{intake.pk}.eml", "message/rfc822")


# --- actions ------------------------------------------------------------------------------


def _not_held(request, intake: Intake):
    flash.info(request, f"#{intake.pk} is not in the quarantine (it is {intake.status}).")
    return redirect("postdesk_web:quarantine_detail", pk=intake.pk)


@admin_required
@require_POST
def quarantine_rerun(request, pk: int):
    intake = get_object_or_404(Intake, pk=pk)
    if intake.status != Intake.Status.QUARANTINED:
        return _not_held(request, intake)
    longer = _parse_timeout(request)
    if longer:
        # A long limit must not hold this request: the worker reads it (and any
        # `postdesk fetch` of its mailbox).
        if not quarantine.queue_rerun(pk, longer, actor=request.user):
            return _not_held(request, Intake.objects.get(pk=pk))
        flash.success(request, f"#{pk} is queued: the worker reads it with a {longer} s time limit.")
        return redirect("postdesk_web:quarantine_detail", pk=pk)
    outcome = quarantine.rerun([pk], actor=request.user).outcomes.get(pk)
    said = quarantine.describe_outcome(outcome)
    if isinstance(outcome, process.Quarantined):
        flash.error(request, f"Re-ran #{pk}: {said}")
        return redirect("postdesk_web:quarantine_detail", pk=pk)
    flash.success(request, f"Re-ran #{pk}: {said}")
    if isinstance(outcome, Applied) and outcome.request_number is not None:
        return redirect("postdesk_web:request", number=outcome.request_number)
    return _back(request, "postdesk_web:quarantine")


# The longer time limits the page offers for a message that took too long to read.
LONGER_LIMITS = (120, 600)


def _parse_timeout(request) -> int | None:
    value = request.POST.get("parse_timeout", "")
    return int(value) if value.isdigit() and int(value) in LONGER_LIMITS else None


@admin_required
@require_http_methods(["GET", "POST"])
def quarantine_discard(request, pk: int):
    """GET: are you sure?  POST: discard it (status only: the raw bytes stay), with an audit row."""
    intake = get_object_or_404(Intake.objects.select_related("mailbox"), pk=pk)
    if intake.status != Intake.Status.QUARANTINED:
        return _not_held(request, intake)
    if request.method == "GET":
        context = {"title": f"Discard #{intake.pk}?", "intake": intake, "next": _safe_next(request) or ""}
        return _page(request, "postdesk/quarantine/discard.html", context)
    if not quarantine.discard(pk, actor=request.user):
        return _not_held(request, Intake.objects.get(pk=pk))
    flash.success(request, f"Discarded #{pk}; its raw message is kept.")
    return _back(request, "postdesk_web:quarantine")
