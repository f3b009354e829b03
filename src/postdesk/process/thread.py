"""Which request does a message belong to?  Each rule is small and named; first match wins.

1. References / In-Reply-To naming a message already in a request
2. a bounce: the Message-ID of the message it reports
3. our own subject tag ("[PD-123]"), accepted only when the sender already
   takes part in that request or shares its customer's domain, so a stranger
   cannot join a request by guessing a number
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from postdesk.mail import ParsedMessage
from postdesk.models import Message, Request


@dataclass(frozen=True)
class ThreadMatch:
    request: Request
    rule: str  # "references", "in-reply-to", "bounce", "subject-tag"


def tag_pattern() -> re.Pattern:
    prefix = re.escape(getattr(settings, "POSTDESK_TAG_PREFIX", "PD"))
    return re.compile(rf"\[{prefix}-(\d{{1,12}})\]", re.I)


def subject_tag(number: int) -> str:
    return f"[{getattr(settings, 'POSTDESK_TAG_PREFIX', 'PD')}-{number}]"


def by_reference(parsed: ParsedMessage, sender: str) -> ThreadMatch | None:
    # The message answered directly first, then the thread from newest to oldest.
    candidates = ([parsed.in_reply_to] if parsed.in_reply_to else []) + list(reversed(parsed.references))
    candidates = [c[:998] for c in candidates if c and c != parsed.message_id][:50]
    if not candidates:
        return None
    found = dict(Message.objects.filter(message_id__in=candidates).order_by("id").values_list("message_id", "request_id"))
    for candidate in candidates:
        if candidate in found:
            rule = "in-reply-to" if candidate == parsed.in_reply_to else "references"
            return ThreadMatch(Request.objects.get(pk=found[candidate]), rule)
    return None


def by_bounced_message(parsed: ParsedMessage, sender: str) -> ThreadMatch | None:
    auto = parsed.auto_submitted
    if not auto or auto.kind != "bounce" or not auto.original_message_id:
        return None
    message = Message.objects.filter(message_id=auto.original_message_id[:998]).select_related("request").order_by("-id").first()
    return ThreadMatch(message.request, "bounce") if message else None


def by_subject_tag(parsed: ParsedMessage, sender: str) -> ThreadMatch | None:
    match = tag_pattern().search(parsed.subject or "")
    if not match:
        return None
    request = Request.objects.filter(pk=int(match.group(1))).select_related("customer").first()
    if request is None or not sender:
        return None
    if _takes_part(request, sender):
        return ThreadMatch(request, "subject-tag")
    return None


def _takes_part(request: Request, sender: str) -> bool:
    if request.customer and request.customer.address == sender:
        return True
    if Message.objects.filter(request=request, sender_address=sender).exists():
        return True
    domain = sender.rpartition("@")[2]
    return bool(request.customer and domain and request.customer.address.rpartition("@")[2] == domain)


RULES = (by_reference, by_bounced_message, by_subject_tag)


def find_request(parsed: ParsedMessage, sender: str) -> ThreadMatch | None:
    for rule in RULES:
        match = rule(parsed, sender)
        if match is not None:
            return match
    return None
