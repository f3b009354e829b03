"""Staff sign-in: the one home of who may come in, and how.

A sign-in goes through these steps; each module owns one of them:

- throttle.py   failed sign-ins, per account and per address (django-axes), the
                growing wait, lockouts and unlocking.
- flow.py       the steps of one sign-in: a first factor (password or single
                sign-on) leaves a *pending* sign-in in the session; `complete()`
                turns it into a Django login once every factor that is required
                has been given.  Every way in ends in `complete()`.  The code
                step (`give_code()`) is here too.
- two_factor.py TOTP and recovery codes (django-otp): who must use them
                (POSTDESK_REQUIRE_2FA), enrolment, checking a code.
- sso.py        OpenID Connect for staff (POSTDESK_SSO_*): the provider round
                trip, linking by verified email, creating staff when allowed.
- sessions.py   how long a session lasts, "keep me signed in", what ends one
                early, and the register of open sessions ("your sessions").
- audit.py      the sign-in log admins read: SignInEvent rows and log lines.
- browsers.py   a browser in words from its User-Agent, for the sessions and the log.
- client.py     the client's address (the trusted proxy's rule).

Imports run one way: flow -> two_factor -> sessions -> audit -> client, and
throttle -> audit; sso -> flow.

The pages are in postdesk.web (signin pages, account pages, admin pages); they
call these modules and hold no rule of their own.
"""

from __future__ import annotations


def connect() -> None:
    """Connect the sign-in signal receivers (called once from PostdeskConfig.ready)."""
    from postdesk.signin import sessions  # noqa: F401  (receivers connect on import)
