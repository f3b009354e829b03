"""The worker's knobs, from the environment (documented in the README's settings table)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _number(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise SystemExit(f"{name}={value!r}: not a number") from None


@dataclass(frozen=True)
class WorkerConfig:
    max_connections: int = 8  # mailboxes fetched at the same time
    max_idle: int = 100  # IMAP IDLE connections held open (beyond: polling)
    backoff_base: float = 5.0  # seconds before the first retry of a failed mailbox
    backoff_cap: float = 900.0  # the longest wait between retries (15 minutes)
    failing_after: int = 3  # consecutive failures before a mailbox shows as failing
    idle_reissue: float = 25 * 60.0  # RFC 2177: re-issue IDLE before 29 minutes
    reload_every: float = 10.0  # seconds between looks for added, edited or removed mailboxes
    sweep_every: float = 5.0  # seconds between looks for work left by others (crashed workers, reprocess)

    @classmethod
    def from_env(cls) -> WorkerConfig:
        d = cls()
        return cls(
            max_connections=max(1, int(_number("POSTDESK_MAX_CONNECTIONS", d.max_connections))),
            max_idle=max(0, int(_number("POSTDESK_MAX_IDLE", d.max_idle))),
            backoff_base=_number("POSTDESK_BACKOFF_BASE", d.backoff_base),
            backoff_cap=_number("POSTDESK_BACKOFF_CAP", d.backoff_cap),
            failing_after=max(1, int(_number("POSTDESK_FAILING_AFTER", d.failing_after))),
            idle_reissue=min(_number("POSTDESK_IDLE_REISSUE", d.idle_reissue), 29 * 60.0),
            reload_every=_number("POSTDESK_WORKER_RELOAD", d.reload_every),
            sweep_every=_number("POSTDESK_WORKER_SWEEP", d.sweep_every),
        )
