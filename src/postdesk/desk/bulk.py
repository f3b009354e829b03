"""One action on many requests: the selected rows of a queue page.

Each request is changed by the function its own page's action uses (desk.assignment,
desk.tagging, desk.priority, desk.status, desk.merge), under its row lock, with its own
history line; nothing is changed by a bare UPDATE.

One transaction for the whole selection, with the rows locked at the start in number
order: one commit instead of one per request (a bulk close of 100 costs one write
lock on SQLite and one fsync), two bulk actions over the same rows wait for each other
instead of deadlocking, and a failure half-way leaves nothing half done. A selection is
capped at MAX_SELECTION (two pages), so the lock is held briefly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction

from postdesk.desk import assignment, merge, priority, tagging
from postdesk.desk import status as request_status
from postdesk.models import Request, RequestEvent
from postdesk.notify import hooks as notify_hooks

MAX_SELECTION = 100
ACTIONS = ("assign", "take", "tag", "priority", "close", "merge")


class BulkError(ValueError):
    """The whole action is refused (no action, a bad value); the message says why."""


@dataclass
class BulkResult:
    """What one bulk action did: which requests changed, which were already so, which
    were skipped and why (shown as the flash)."""

    action: str
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.action}: {len(self.changed)} changed"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already so")
        if self.skipped:
            parts.append("skipped " + "; ".join(f"#{n} ({why})" for n, why in self.skipped))
        return ", ".join(parts)


@dataclass(frozen=True)
class BulkAction:
    """An action with its value checked: `apply(req)` changes one locked request and
    returns whether it changed; raising a ValueError skips that request with the reason."""

    name: str
    apply: Callable[[Request], bool]


def numbers_from(values: Iterable[str]) -> list[int]:
    """The selected request numbers of a form; anything that is not a number is dropped."""
    found = []
    for value in values:
        if str(value).isdigit() and len(str(value)) <= 18 and int(value) not in found:
            found.append(int(value))
    return found


def _save(req: Request) -> None:
    req.save(update_fields=["assignee", "status", "snooze_until", "updated_at"])


def _assigning(actor, staff, take: bool) -> Callable[[Request], bool]:
    def apply(req: Request) -> bool:
        if take and req.assignee_id not in (None, actor.pk):
            raise ValueError(f"{req.assignee.get_username()} has it")
        change = assignment.take(req, actor) if take else assignment.assign(req, staff)
        if change is None:
            return False
        _save(req)
        RequestEvent.objects.create(request=req, actor=actor, kind=change.kind, detail=change.detail[:500])
        notify_hooks.assigned(req, actor)  # in this transaction; never the actor
        return True

    return apply


def _tagging(actor, tag: str) -> Callable[[Request], bool]:
    return lambda req: tagging.add_tag(req, tag, actor).changed


def _prioritising(actor, value: int) -> Callable[[Request], bool]:
    return lambda req: priority.set_priority(req, value, actor).changed


def _closing(actor) -> Callable[[Request], bool]:
    def apply(req: Request) -> bool:
        move = request_status.close(req)
        if move is None:
            return False
        _save(req)
        request_status.record(req, move, actor)
        return True

    return apply


def _merging(actor, target: int, other_customer: bool) -> Callable[[Request], bool]:
    def apply(req: Request) -> bool:
        if req.pk == target:
            return False  # the target of the selection stays itself
        try:
            return merge.merge(req.pk, target, actor, other_customer=other_customer).changed
        except merge.MergeRefused as refused:
            raise ValueError(str(refused)) from None

    return apply


def _staff(form) -> object:
    value = str(form.get("assignee", ""))
    staff = get_user_model().objects.filter(pk=int(value), is_active=True).first() if value.isdigit() and len(value) <= 18 else None
    if staff is None:
        raise BulkError("choose a staff member to assign to")
    return staff


def _tag(form) -> str:
    try:
        return tagging.clean_name(form.get("tag", ""))
    except tagging.TagError as error:
        raise BulkError(str(error)) from None


def _priority(form) -> int:
    try:
        return priority.parse(form.get("priority", ""))
    except priority.PriorityError as error:
        raise BulkError(str(error)) from None


def _merge_target(form, selected: list[int]) -> int:
    """The number given, or with none the oldest selected request (the one the customer began with)."""
    target = form.get("target", "").strip().lstrip("#")
    if not target and selected:
        return min(selected)
    if not target.isdigit() or len(target) > 18:
        raise BulkError(f"“{target}” is not a request number")
    return int(target)


def action_for(name: str, actor, form, selected: list[int]) -> BulkAction:
    """The action a bulk form asks for, its value checked before any row is locked."""
    builders = {
        "take": lambda: _assigning(actor, None, take=True),
        "assign": lambda: _assigning(actor, _staff(form), take=False),
        "tag": lambda: _tagging(actor, _tag(form)),
        "priority": lambda: _prioritising(actor, _priority(form)),
        "close": lambda: _closing(actor),
        "merge": lambda: _merging(actor, _merge_target(form, selected), form.get("other_customer") == "1"),
    }
    if name not in builders:
        raise BulkError(f"unknown action “{name}”: one of {', '.join(ACTIONS)}")
    return BulkAction(name, builders[name]())


def run(action: BulkAction, numbers: list[int]) -> BulkResult:
    """Apply `action` to each selected request, in one transaction."""
    if not numbers:
        raise BulkError("select at least one request")
    if len(numbers) > MAX_SELECTION:
        raise BulkError(f"select at most {MAX_SELECTION} requests at a time")
    result = BulkResult(action.name)
    with transaction.atomic():
        rows = {r.pk: r for r in Request.objects.select_for_update(of=("self",)).select_related("assignee")
                .filter(pk__in=numbers).order_by("pk")}
        for number in numbers:
            _one(action, rows.get(number), number, result)
    return result


def _one(action: BulkAction, req: Request | None, number: int, result: BulkResult) -> None:
    if req is None:
        result.skipped.append((number, "no such request"))
    elif req.merged_into_id is not None and action.name != "merge":
        result.skipped.append((number, f"merged into #{req.merged_into_id}"))
    else:
        try:
            with transaction.atomic():  # a savepoint: a skipped request leaves nothing behind
                changed = action.apply(req)
        except ValueError as why:
            result.skipped.append((number, str(why)))
            return
        (result.changed if changed else result.unchanged).append(number)
