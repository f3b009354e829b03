"""How long a failing mailbox (or the processing loop) waits before trying again."""

from __future__ import annotations

import random


def delay(failures: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": base·2^(failures-1) capped, of which
    a random half is waited on top of the other half.  The jitter keeps many
    mailboxes on one server from retrying in lock-step after an outage; the
    fixed half keeps a failing server from being hammered by a short draw."""
    if failures <= 0:
        return 0.0
    ceiling = min(cap, base * 2 ** min(failures - 1, 30))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
