"""Who works on a request: take, assign, unassign, on the caller's locked request.

Each function changes the request in memory and returns the history line it calls for
(`Assignment`), or None when nothing changes; a new request someone is assigned to is open
(desk.status.after_assignment). The caller saves the row and writes the line in its
transaction, as with desk.status moves."""

from __future__ import annotations

from dataclasses import dataclass

from postdesk.desk import status as request_status
from postdesk.models import Request


@dataclass(frozen=True)
class Assignment:
    kind: str  # the RequestEvent kind: "assigned" or "unassigned"
    detail: str


def _name(user) -> str:
    return user.get_username() if user is not None else ""


def _now_open(req: Request) -> str:
    return ", now open" if request_status.after_assignment(req) else ""


def take(req: Request, actor) -> Assignment | None:
    if req.assignee_id == actor.pk:
        return None
    req.assignee = actor
    return Assignment("assigned", f"taken by {_name(actor)}" + _now_open(req))


def assign(req: Request, staff) -> Assignment | None:
    if req.assignee_id == staff.pk:
        return None
    req.assignee = staff
    return Assignment("assigned", f"assigned to {_name(staff)}" + _now_open(req))


def unassign(req: Request) -> Assignment | None:
    if req.assignee_id is None:
        return None
    detail = f"unassigned from {_name(req.assignee)}"
    req.assignee = None
    return Assignment("unassigned", detail)
