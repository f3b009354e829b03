"""`{% queue_rows rows %}`: a queue's table rows (the page and live.js's re-render).

In Python rather than a template: fifty rows of a dozen cells each cost the template
engine about half of a queue page's time (bench/desk.py, 100,000 requests), and a queue
page is what an agent loads all day. Every value from a request goes through format_html
(escaped); the fixed markup is ours.
"""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from postdesk.web.templatetags.desk_time import desk_time

register = template.Library()

_ATTACHMENT = mark_safe(
    '<span class="marker marker-att" title="has attachments"><svg class="icon" aria-hidden="true" viewBox="0 0 24 24">'
    '<path d="M16.5 6.5 8.9 14.1a1.6 1.6 0 0 0 2.3 2.3l7.4-7.4a3.2 3.2 0 0 0-4.5-4.5l-7.6 7.6a4.8 4.8 0 0 0 6.8 6.8l6.9-6.9"/>'
    '</svg><span class="visually-hidden"> has attachments</span></span>')
_NONE = mark_safe('<span class="muted">—</span>')


@register.simple_tag
def queue_rows(rows) -> SafeString:
    return mark_safe("".join(_row(r) for r in rows))  # noqa: S308 (each row is format_html)


def _row(r) -> str:
    link = reverse("postdesk_web:request", args=[r.pk])
    return format_html(
        '<tr{}data-number="{}">'
        '<td class="pick"><label><input type="checkbox" name="pick" value="{}" form="bulk">'
        '<span class="visually-hidden">Select #{}</span></label></td>'
        '<td data-label="#" class="num"><a href="{}">{}</a></td>'
        '<td data-label="Subject" class="subject">{}</td>'
        '<td data-label="Customer" class="customer">{}</td>'
        '<td data-label="Mailbox" class="mailbox">{}</td>'
        '<td data-label="Assignee" class="assignee">{}</td>'
        '<td data-label="Status" class="status"><span class="badge badge-{}">{}</span></td>'
        '<td data-label="Priority" class="priority"><span class="prio prio-{}">{}</span></td>'
        '<td data-label="Tags" class="tags">{}</td>'
        '<td data-label="Last activity" class="when">{}</td></tr>\n',
        mark_safe(' class="unread" ') if getattr(r, "unread", False) else " ", r.pk, r.pk, r.pk, link, r.pk,
        _subject(r, link), _customer(r.customer), (r.mailbox.name if r.mailbox else "") or "—",
        r.assignee.get_username() if r.assignee else mark_safe('<span class="muted">unassigned</span>'),
        r.status, r.get_status_display(), r.get_priority_display(), r.get_priority_display(),
        _tags(r), desk_time(r.updated_at, "relative"))


def _subject(r, link: str) -> SafeString:
    parts = [format_html('<a href="{}">{}</a>', link, r.subject or "(no subject)")]
    if getattr(r, "unread", False):
        parts.append(mark_safe('<span class="visually-hidden"> (unread)</span>'))
    if getattr(r, "customer_replied", False):
        parts.append(mark_safe(' <span class="marker marker-replied">customer replied</span>'))
    if getattr(r, "has_attachments", False):
        parts.append(_ATTACHMENT)
    if getattr(r, "snippet", None):
        parts.append(format_html(' <span class="snippet">{}</span>', r.snippet))
    if r.auto_submitted:
        parts.append(format_html(' <span class="marker marker-auto" title="sent automatically: {}">auto</span>', r.auto_submitted))
    if r.merged_into_id:
        parts.append(format_html(' <span class="marker marker-merged">merged into #{}</span>', r.merged_into_id))
    return mark_safe("".join(parts))  # noqa: S308 (each part is escaped above)


def _customer(customer) -> SafeString:
    if customer is None:
        return _NONE
    if customer.name:
        return format_html('{} <span class="muted">{}</span>', customer.name, customer.address)
    return format_html("{}", customer.address)


def _tags(r) -> SafeString:
    names = [t.name for t in r.tags.all()]
    if not names:
        return _NONE
    return mark_safe("".join(format_html('<span class="tag">{}</span>', n) for n in names))  # noqa: S308
