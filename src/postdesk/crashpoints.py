"""Named points between pipeline stages where tests make the process die.

POSTDESK_CRASH_AT=name[:n]   die the n-th time (default first) `name` is reached
POSTDESK_CRASH_MODE=exit|raise   os._exit(75) (a kill) or raise CrashInjected

Unset (always, outside tests), reached() is one dictionary lookup.
"""

from __future__ import annotations

import os

POINTS = (
    "after-intake",  # raw bytes and intake rows committed, source not yet acknowledged
    "after-acknowledge",  # acknowledged at the source, acknowledgement not yet recorded
    "before-process",  # acknowledged and recorded, not processed
    "inside-process",  # inside the processing transaction, before it commits
    "before-send",  # an outgoing mail claimed (its cause committed long ago), not yet given to SMTP
    "after-send",  # the SMTP server accepted an outgoing mail, not yet recorded as sent
    "after-reply",  # a staff reply committed (its draft discarded with it), the page not yet answered
    "after-note",  # the same for an internal note
    "oauth-after-refresh",  # the provider answered a refresh (maybe a rotated refresh token), not yet saved
)

_counts: dict[str, int] = {}


class CrashInjected(RuntimeError):
    pass


def reached(name: str) -> None:
    spec = os.environ.get("POSTDESK_CRASH_AT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] != int(nth or 1):
        return
    if os.environ.get("POSTDESK_CRASH_MODE", "exit") == "raise":
        raise CrashInjected(f"crash injected at {name}")
    os._exit(75)
