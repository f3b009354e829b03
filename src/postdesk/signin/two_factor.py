"""Two factors: TOTP and recovery codes (django-otp).  To be built."""

from __future__ import annotations


def second_factor_needed(user, method: str) -> bool:
    """Whether a sign-in by `method` must also give a code."""
    return False
