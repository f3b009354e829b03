"""What a page saw of a request, and what changed since: the one home of "stale page".

Every form on the request page (reply, note, Take, Assign, Unassign, Close, Reopen,
Waiting on customer, priority, tags)
carries what the page showed (`Seen`, as hidden fields: the last message's id, the
assignee, the status).  On POST, under the request's row lock, `changes_since()`
compares that with the request as it is now and says in words what changed
(`Changes`).  An action refuses (HTTP 409) when a change it cares about happened,
so nobody answers a customer twice, or closes a request a colleague just took,
by accident.  A form without these fields (an old page, a script) is refused too:
`Seen.missing()`.

What counts, per action (`RELEVANT`):

- reply: a new customer message, a colleague's reply, a colleague's note (notes are
  where colleagues write "I am calling them, do not answer"), assigned to someone
  else, closed or reopened;
- note: the same but a colleague's note (two notes side by side do no harm);
- close: a new customer message (closing would bury it), a colleague's reply, the
  assignee or the status changed;
- take, assign, unassign, reopen, merge: the assignee or the status changed;
- wait (waiting on the customer, snoozed or not): a new customer message (they just
  answered: waiting on them would bury it), the assignee or the status changed;
- priority, tag: nothing (they mean the same whoever has the request, whatever its
  status); a form without the page's version is still refused.

One's own changes (a reply sent from another tab) never count.

Message ids come from one sequence, so "after the last id the page saw" is
"arrived since"; a message committed out of id order by a concurrent writer on
PostgreSQL could be missed (it would have to commit in the milliseconds between
the page's render and a later, higher id), which we accept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from django.db.models import Max

from postdesk.models import Message, Request

FIELDS = ("seen_message", "seen_assignee", "seen_status")


class Kind(enum.Enum):
    CUSTOMER_MESSAGE = "customer message"
    COLLEAGUE_REPLY = "colleague's reply"
    COLLEAGUE_NOTE = "colleague's note"
    ASSIGNEE = "assignee"
    STATUS = "status"


_EVERYTHING = frozenset(Kind)
RELEVANT: dict[str, frozenset[Kind]] = {
    "reply": _EVERYTHING,
    "note": _EVERYTHING - {Kind.COLLEAGUE_NOTE},
    "close": frozenset({Kind.CUSTOMER_MESSAGE, Kind.COLLEAGUE_REPLY, Kind.ASSIGNEE, Kind.STATUS}),
    "take": frozenset({Kind.ASSIGNEE, Kind.STATUS}),
    "assign": frozenset({Kind.ASSIGNEE, Kind.STATUS}),
    "unassign": frozenset({Kind.ASSIGNEE, Kind.STATUS}),
    "reopen": frozenset({Kind.ASSIGNEE, Kind.STATUS}),
    # Merging moves every message, a new one too; what the agent decided on was who has it
    # and where it stands.
    "merge": frozenset({Kind.ASSIGNEE, Kind.STATUS}),
    "wait": frozenset({Kind.CUSTOMER_MESSAGE, Kind.ASSIGNEE, Kind.STATUS}),
    "priority": frozenset(),
    "tag": frozenset(),
}


@dataclass(frozen=True)
class Seen:
    """What a page showed of a request.  `None` fields: the form did not say (refused)."""

    last_message: int | None
    assignee: int | None
    status: str | None
    complete: bool = True

    def as_fields(self) -> dict[str, str]:
        """The hidden fields of every form on the request page."""
        return {"seen_message": str(self.last_message or 0), "seen_assignee": str(self.assignee or ""),
                "seen_status": self.status or ""}

    def missing(self) -> bool:
        return not self.complete


def seen_now(req: Request) -> Seen:
    """The request as a page rendered now shows it."""
    last = req.messages.aggregate(last=Max("pk"))["last"]
    return Seen(last or 0, req.assignee_id, req.status)


def read_seen(data) -> Seen:
    """The hidden fields of a POST (or the query of a poll); incomplete when any is absent or malformed."""
    if any(name not in data for name in FIELDS):
        return Seen(None, None, None, complete=False)
    message, assignee, status = (data.get(name, "").strip() for name in FIELDS)
    if not message.isdigit() or not (assignee == "" or assignee.isdigit()) or status not in Request.Status.values:
        return Seen(None, None, None, complete=False)
    return Seen(int(message), int(assignee) if assignee else None, status)


@dataclass(frozen=True)
class Change:
    kind: Kind
    words: str


@dataclass(frozen=True)
class Changes:
    """What changed since a page was rendered, in the words shown to the staff member."""

    items: tuple[Change, ...] = ()
    incomplete_form: bool = False
    kinds: frozenset[Kind] = field(default=frozenset())

    def blocking(self, action: str) -> "Changes":
        """Only the changes that refuse `action`."""
        relevant = RELEVANT[action]
        items = tuple(c for c in self.items if c.kind in relevant)
        return Changes(items, self.incomplete_form, frozenset(c.kind for c in items))

    def __bool__(self) -> bool:
        return bool(self.items) or self.incomplete_form

    @property
    def words(self) -> list[str]:
        if self.incomplete_form:
            return ["this form does not say which version of the request it was opened on (an older page?): reload and check"]
        return [c.words for c in self.items]


def changes_since(seen: Seen, req: Request, actor) -> Changes:
    """What changed on `req` (read under its row lock) since the page saw `seen`, leaving out the actor's own doing."""
    if seen.missing():
        return Changes(incomplete_form=True)
    items = [*_message_changes(seen, req, actor), *_state_changes(seen, req)]
    return Changes(tuple(items), False, frozenset(c.kind for c in items))


def _message_changes(seen: Seen, req: Request, actor) -> list[Change]:
    newer = Message.objects.filter(request=req, pk__gt=seen.last_message).select_related("author").order_by("pk")
    changes = []
    for message in newer:
        change = _message_change(message, actor)
        if change is not None:
            changes.append(change)
    return changes


def _message_change(message: Message, actor) -> Change | None:
    if message.direction == "in":
        who = message.sender_name or message.sender_address or "the customer"
        return Change(Kind.CUSTOMER_MESSAGE, f"a new message from the customer ({who})")
    if message.author_id is None or message.author_id == getattr(actor, "pk", None):
        return None  # an acknowledgement, or one's own doing
    name = message.author.get_username()
    if message.direction == "note":
        return Change(Kind.COLLEAGUE_NOTE, f"{name} added an internal note")
    return Change(Kind.COLLEAGUE_REPLY, f"{name} replied to the customer")


def _state_changes(seen: Seen, req: Request) -> list[Change]:
    changes = []
    if req.assignee_id != seen.assignee:
        now = req.assignee.get_username() if req.assignee is not None else None
        changes.append(Change(Kind.ASSIGNEE, f"it was assigned to {now}" if now else "it was unassigned"))
    if req.status != seen.status:
        was_closed, closed = seen.status == Request.Status.CLOSED, req.status == Request.Status.CLOSED
        if closed != was_closed:  # new -> open is no news to anyone
            changes.append(Change(Kind.STATUS, "it was closed" if closed else "it was reopened"))
    return changes


class StalePage(Exception):
    """Raised under the row lock to refuse a form from a stale page; carries what changed."""

    def __init__(self, changes: Changes) -> None:
        super().__init__("; ".join(changes.words))
        self.changes = changes


def guard(seen: Seen, actor, action: str):
    """A check for outbound.reply's `guard`: raises StalePage when `action` must be refused."""

    def check(req: Request) -> None:
        stale = changes_since(seen, req, actor).blocking(action)
        if stale:
            raise StalePage(stale)

    return check
