"""Which request does a message belong to?  Each rule is small and named; first match wins.

1. References / In-Reply-To naming a message already in a request (the strong
   link: our Message-IDs cannot be guessed, so whoever holds one was sent the mail)
2. a bounce: the Message-ID of the message it reports
3. our own subject tag ("[PD-123]").  Request numbers are sequential and a tag
   is easy to type, so a tag alone lets a message join only when
     a. its sender already takes part in the request (the customer, or From,
        To or Cc of one of its messages, ours included; notes are not mail), or
     b. its sender shares the customer's own organisation domain, and that
        domain is not a public one (postdesk.domains: gmail.com and the like).
   Anything else is refused (TagRefused): the message opens a request of its
   own that mentions the tagged one, and both histories say why.

A request merged into another (desk.merge) holds no messages: a tag naming it is
followed along merged_into to the request that holds them, and the checks of rule 3
are made there. References need nothing: the messages they name moved with the merge.

Joining is one question; whose Reply-To a staff reply may use is the other
(`reply_to_trusted`): a message that joined by its tag cannot bring in a new
address to answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from postdesk import domains, tags
from postdesk.desk.merge import final_target
from postdesk.mail import ParsedMessage
from postdesk.models import Message, Request

# Rules that prove the sender was sent our mail (or is the mail system reporting on it).
STRONG_RULES = frozenset({"references", "in-reply-to", "bounce"})


@dataclass(frozen=True)
class ThreadMatch:
    request: Request
    rule: str  # "references", "in-reply-to", "bounce", "subject-tag"


@dataclass(frozen=True)
class TagRefused:
    """A subject tag this sender may not join by: the message opens a request of
    its own, which mentions `request`."""

    request: Request
    tag: str  # as we write it: "[PD-12]"
    reason: str  # "x@gmail.com does not take part in #12"

    @property
    def detail(self) -> str:
        return f"subject tag {self.tag} ignored: {self.reason}"


@dataclass(frozen=True)
class Threading:
    """What the rules found: the request to join, or none; and a tag that was refused."""

    match: ThreadMatch | None = None
    refused: TagRefused | None = None


def by_reference(parsed: ParsedMessage, sender: str, staged: Iterable[Message] = ()) -> ThreadMatch | None:
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


def by_bounced_message(parsed: ParsedMessage, sender: str, staged: Iterable[Message] = ()) -> ThreadMatch | None:
    auto = parsed.auto_submitted
    if not auto or auto.kind != "bounce" or not auto.original_message_id:
        return None
    message = Message.objects.filter(message_id=auto.original_message_id[:998]).select_related("request").order_by("-id").first()
    return ThreadMatch(message.request, "bounce") if message else None


def by_subject_tag(parsed: ParsedMessage, sender: str, staged: Iterable[Message] = ()) -> ThreadMatch | TagRefused | None:
    """The first tagged request the sender may join; else the first one refused.  A
    subject can carry two tags ("Re: [PD-12] Printer [PD-13]": #13 was opened by a
    message that named #12), and its sender belongs to the second."""
    numbers = tags.all_in_subject(parsed.subject)
    if not numbers:
        return None
    found = Request.objects.select_related("customer").in_bulk(numbers)
    refused = None
    for number in numbers:
        request = found.get(number)
        if request is None:
            continue  # names no request of ours: nothing to join, nothing to mention
        request = final_target(request)  # [PD-A] of a merged A means the request holding A's mail
        refusal = _why_not(request, sender, staged)
        if not refusal:
            return ThreadMatch(request, "subject-tag")
        refused = refused or TagRefused(request, tags.tag(number), refusal)
    return refused


def _why_not(request: Request, sender: str, staged: Iterable[Message]) -> str:
    """Why `sender` may not join `request` by its tag alone; "" if they may."""
    if not sender:
        return f"the message has no sender address, so nothing shows it takes part in #{request.pk}"
    if sender in participants(request, staged) or _colleague(request, sender):
        return ""
    reason = f"{sender} does not take part in #{request.pk}"
    domain = domains.domain_of(sender)
    if request.customer and domain == domains.domain_of(request.customer.address):
        reason += f" ({domains.check(domain).describe()})"
    return reason


def _colleague(request: Request, sender: str) -> bool:
    """The sender writes from the customer's own organisation domain (not a public one)."""
    if request.customer is None:
        return False
    domain = domains.domain_of(sender)
    return bool(domain) and domain == domains.domain_of(request.customer.address) and not domains.is_public(domain)


def participants(request: Request, staged: Iterable[Message] = ()) -> set[str]:
    """Lower-case addresses taking part in `request`: its customer, and the From, To and
    Cc of its mail, received and sent (notes are never mail).  `staged`: messages of
    the batch being applied, not in the database yet."""
    found = {request.customer.address.lower()} if request.customer_id and request.customer else set()
    rows = list(
        Message.objects.filter(request=request, direction__in=("in", "out")).values_list("sender_address", "to", "cc")
    )
    rows += [(m.sender_address, m.to, m.cc) for m in staged if m.request.pk is not None and m.request.pk == request.pk]
    for sender, to, cc in rows:
        found.add((sender or "").lower())
        found.update((entry.get("address") or "").strip().lower() for entry in [*(to or []), *(cc or [])] if isinstance(entry, dict))
    found.discard("")
    return found


def reply_to_trusted(parsed: ParsedMessage, sender: str, match: ThreadMatch | None, staged: Iterable[Message] = ()) -> bool:
    """May a staff reply use this message's Reply-To?  Yes when it opened its request
    (`match` None), joined by a strong link, or every Reply-To address already takes part
    (its own sender counts: replies go there anyway).  Otherwise the Reply-To is shown,
    never used, and the reply goes to the sender, who was allowed to join."""
    if match is None or match.rule in STRONG_RULES:
        return True
    reply_to = {a.address.strip().lower() for a in parsed.reply_to if a.address and a.address.strip()}
    if reply_to <= {sender}:
        return True
    return reply_to <= participants(match.request, staged) | {sender}


RULES = (by_reference, by_bounced_message, by_subject_tag)


def find_request(parsed: ParsedMessage, sender: str, staged: Iterable[Message] = ()) -> Threading:
    """The first rule that matches; a refused tag is kept so the caller can link the
    new request to the tagged one."""
    staged = list(staged)
    refused = None
    for rule in RULES:
        found = rule(parsed, sender, staged)
        if isinstance(found, ThreadMatch):
            return Threading(found)
        if isinstance(found, TagRefused):
            refused = found
    return Threading(None, refused)
