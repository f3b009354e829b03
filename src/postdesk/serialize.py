"""Requests as plain data: the JSON of `requests list/show` and `export`."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from postdesk.models import Attachment, Message, Request


def requests_with_counts(queryset: QuerySet | None = None) -> QuerySet:
    queryset = queryset if queryset is not None else Request.objects.all()
    return (queryset.select_related("assignee", "mailbox", "customer").prefetch_related("tags")
            .annotate(message_count=Count("messages")))


def summary(request: Request) -> dict:
    return {
        "number": request.pk,
        "subject": request.subject,
        "status": request.status,
        "priority": request.get_priority_display(),
        "tags": sorted(tag.name for tag in request.tags.all()),
        "assignee": request.assignee.get_username() if request.assignee_id else None,
        "mailbox": request.mailbox.name if request.mailbox_id else None,
        "customer": request.customer.address if request.customer_id else None,
        "customer_name": request.customer.name if request.customer_id else None,
        "auto_submitted": request.auto_submitted or None,
        "message_count": getattr(request, "message_count", None) or request.messages.count(),
        "created": request.created_at.isoformat(),
        "updated": request.updated_at.isoformat(),
    }


def message_dict(message: Message, attachments: list[Attachment]) -> dict:
    return {
        "message_id": message.message_id or None,
        "from": {"name": message.sender_name, "address": message.sender_address} if message.sender_address or message.sender_name else None,
        "to": message.to,
        "cc": message.cc,
        "date": message.date.isoformat() if message.date else None,
        "subject": message.subject,
        "text": message.text,
        "auto_submitted": message.auto_submitted or None,
        "defects": message.defects,
        "joined_by": message.thread_rule or None,
        "reply_to": message.reply_to,
        "reply_to_trusted": message.reply_to_trusted,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.blob_id, "inline": a.inline}
            for a in attachments
        ],
    }


def detail(request: Request) -> dict:
    data = summary(request)
    messages = list(request.messages.all())
    by_message: dict[int, list[Attachment]] = {m.pk: [] for m in messages}
    for attachment in Attachment.objects.filter(message__request=request).order_by("message_id", "position"):
        by_message[attachment.message_id].append(attachment)
    data["messages"] = [message_dict(m, by_message[m.pk]) for m in messages]
    # A stranger's message that named this request's tag opened a request of its own (process/thread.py).
    data["mentions"] = sorted(request.mentions.values_list("pk", flat=True))
    data["mentioned_by"] = sorted(request.mentioned_by.values_list("pk", flat=True))
    return data
