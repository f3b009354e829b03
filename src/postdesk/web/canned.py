"""Canned replies, managed by admins (/staff/canned/); agents insert them from the
reply editor (_compose.html, desk.canned fills the placeholders)."""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from postdesk.desk import canned
from postdesk.models import CannedReply
from postdesk.web.access import admin_required
from postdesk.web.views import _nav

CURRENT = "admin:canned"
PLACEHOLDER_HELP = "Placeholders: " + " ".join("{" + name + "}" for name in canned.PLACEHOLDERS) + \
    "; an unknown one is left as written, for the agent to see."


class CannedForm(forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ["title", "body", "mailbox"]
        labels = {"body": "Text", "mailbox": "Only for mailbox"}
        help_texts = {"body": PLACEHOLDER_HELP, "mailbox": "empty: offered on every mailbox's requests"}
        widgets = {"body": forms.Textarea(attrs={"rows": 10})}


def _page(request, template: str, context: dict):
    return render(request, template, {"current": CURRENT, **context, **_nav(request)})


@admin_required
def canned_list(request):
    rows = CannedReply.objects.select_related("mailbox").order_by("title")
    return _page(request, "postdesk/canned/list.html", {"title": "Canned replies", "rows": rows})


@admin_required
def canned_add(request):
    return _edit(request, CannedReply(), "Add a canned reply")


@admin_required
def canned_edit(request, pk: int):
    return _edit(request, get_object_or_404(CannedReply, pk=pk), "Edit canned reply")


def _edit(request, reply: CannedReply, title: str):
    form = CannedForm(request.POST or None, instance=reply)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        flash.success(request, f"Canned reply “{saved.title}” saved.")
        return redirect("postdesk_web:canned_list")
    return _page(request, "postdesk/canned/form.html", {"title": title, "form": form, "reply": reply})


@require_POST
@admin_required
def canned_delete(request, pk: int):
    deleted, _ = CannedReply.objects.filter(pk=pk).delete()  # twice: the second deletes nothing, says so
    flash.success(request, "Canned reply deleted." if deleted else "That canned reply was already deleted.")
    return redirect("postdesk_web:canned_list")
