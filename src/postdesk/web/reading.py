"""Reading pages: a customer's page with their note, and the attachment previews.

Thin views over desk.customers and web.previews; every page needs sign-in, the note
is changed by POST (CSRF). The PDF bytes are the one view without a session: the
sandboxed preview frame has an opaque origin, so its signed token is the credential."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from postdesk.desk import customers
from postdesk.models import Attachment, Customer
from postdesk.store.attachments import read_attachment
from postdesk.web import disposition, previews, views

CUSTOMER_PAGE_SIZE = 25


@require_GET
@login_required
def customer_page(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    page = Paginator(customers.requests_of(customer), CUSTOMER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "customer": customer,
        "organisation": customers.organisation_of(customer),
        "page": page,
        "note_history": customers.note_history(customer)[:10],
        "note_max": customers.NOTE_MAX,
        "title": str(customer),
        "current": "",
        **views._nav(request),  # the top bar, as on every staff page
    }
    return render(request, "postdesk/customer.html", context)


@require_POST
@login_required
def customer_note(request, customer_id: int):
    get_object_or_404(Customer, pk=customer_id)
    change = customers.save_note(customer_id, request.POST.get("note", ""), request.user)
    if change.changed:
        flash.success(request, "Note saved.")
    else:
        flash.info(request, "Nothing to change.")
    back = request.POST.get("next", "")
    return redirect(back if _own_page(back) else reverse("postdesk_web:customer", args=[customer_id]))


def _own_page(url: str) -> bool:
    """A redirect only to a page of ours (a request or customer page), never elsewhere."""
    return url.startswith(("/requests/", "/customers/")) and "//" not in url and "\\" not in url


def _attachment_for(attachment_id: int, kind: str) -> Attachment:
    attachment = get_object_or_404(Attachment, pk=attachment_id)
    if previews.preview_of(attachment).kind != kind:
        raise Http404("no preview of this kind for this attachment")
    return attachment


@require_GET
@login_required
def image_view(request, attachment_id: int):
    """An image attachment shown by itself (the thumbnail's "open larger")."""
    attachment = _attachment_for(attachment_id, "image")
    response = HttpResponse(read_attachment(attachment), content_type=previews.declared_type(attachment))
    response["Content-Disposition"] = "inline" + disposition.attachment(attachment.filename or f"image-{attachment.pk}").removeprefix("attachment")
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@login_required
@xframe_options_sameorigin
def pdf_frame(request, attachment_id: int):
    """The PDF preview frame's document: PDF.js under a strict CSP, in an opaque origin."""
    attachment = _attachment_for(attachment_id, "pdf")
    origin = request.build_absolute_uri("/").rstrip("/")
    token = previews.pdf_token(attachment.pk, request.user.pk)
    context = {
        "attachment": attachment,
        "bytes_url": origin + reverse("postdesk_web:pdf_bytes", args=[token]),
        "library": origin + static("postdesk/pdfjs/pdf.min.mjs"),
        "worker": origin + static("postdesk/pdfjs/pdf.worker.min.mjs"),
        "script": origin + static("postdesk/pdf-preview.mjs"),
        "style": origin + static("postdesk/pdf-preview.css"),
    }
    response = render(request, "postdesk/pdf_preview.html", context)
    response["Content-Security-Policy"] = previews.pdf_frame_policy(origin)
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def pdf_bytes(request, token: str):
    """The PDF's bytes for the preview frame: as opaque bytes (never shown as a document
    if opened), to any origin holding the token (the frame's is opaque: "null")."""
    claim = previews.read_pdf_token(token)
    if claim is None:
        raise Http404("unknown or expired preview link")
    attachment_id, user_id = claim
    if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
        raise Http404("unknown or expired preview link")
    attachment = get_object_or_404(Attachment, pk=attachment_id)
    data = read_attachment(attachment)
    if not previews.is_pdf(attachment) or not data.startswith(previews.PDF_MAGIC):
        raise Http404("not a PDF")
    response = disposition.download(data, attachment.filename or f"attachment-{attachment.pk}.pdf", "application/octet-stream")
    response["Access-Control-Allow-Origin"] = "*"  # no credentials: the token is one
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
