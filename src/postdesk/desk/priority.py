"""A request's priority: low, normal, high, urgent (Request.Priority)."""

from __future__ import annotations

from dataclasses import dataclass

from postdesk.models import Request, RequestEvent

Priority = Request.Priority


class PriorityError(ValueError):
    pass


@dataclass(frozen=True)
class PriorityChange:
    priority: int
    changed: bool


def parse(value: str | int) -> int:
    """A priority from a form or a URL: its number or its name ("urgent")."""
    text = str(value).strip().lower()
    for choice in Priority:
        if text in (str(choice.value), choice.label):
            return choice.value
    raise PriorityError(f"unknown priority {value!r}: one of {', '.join(Priority.labels)}")


def set_priority(req: Request, value: str | int, actor=None) -> PriorityChange:
    """On the caller's (locked) request; saves the field and writes one history line."""
    priority = parse(value)
    if req.priority == priority:
        return PriorityChange(priority, False)
    req.priority = priority
    req.save(update_fields=["priority", "updated_at"])
    RequestEvent.objects.create(request=req, actor=actor, kind="priority", detail=f"priority {Priority(priority).label}")
    return PriorityChange(priority, True)
