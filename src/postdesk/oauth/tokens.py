"""The grant store: a mailbox's OAuth2 tokens on its OAuthGrant row, and their health.

    connect(mailbox, tokens, actor)        a new grant (the first, or a reconnect): saved whole or not at all
    access_token(mailbox, rejected=None)   a token for a login: the cached one while it has time left,
                                           else a refresh
    describe(mailbox), warnings(mailbox)   what `mailbox show` and the banner say; never a token

Refreshing, across processes and hosts sharing one database:

  - one refresher per grant: the refresh lease (OAuthGrant.refresh_lease_*, postdesk.leases);
    the others wait (bounded) and use what the holder saved;
  - the HTTP call happens outside any transaction; the answer is saved by compare-and-set on
    `generation` and fenced by the lease, so an older token never overwrites a newer one;
  - a rotated refresh token is saved at once, before the new access token is used: the
    provider keeps the old refresh token valid until the new one has been used, so a kill
    between receipt and save (crash point "oauth-after-refresh") leaves the old one working.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from postdesk import crashpoints, leases, secrets
from postdesk.models import AuditEvent, Mailbox, OAuthGrant
from postdesk.oauth import errors, flows, providers
from postdesk.oauth.errors import OAuthError
from postdesk.oauth.flows import Client, TokenResponse

REFRESH_LEASE = timedelta(minutes=2)  # longer than one token request can take (providers.TIMEOUT)
WAIT_FOR_REFRESHER = 90.0  # seconds another process's refresh may take before we give up (transient)
ASSUMED_LIFETIME = 3600  # seconds, when a token answer has no expires_in
USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
GRANT_WARNING = timedelta(days=7)
MIN_MARGIN, MAX_MARGIN = timedelta(seconds=10), timedelta(minutes=5)
State = OAuthGrant.State


def client_for(mailbox: Mailbox) -> Client:
    """The mailbox's OAuth settings as an Authlib client's configuration."""
    if not mailbox.oauth_client_id:
        raise errors.config(f"mailbox {mailbox.name} has no OAuth2 client id")
    try:
        client_secret = secrets.decrypt(mailbox.oauth_client_secret)
    except secrets.SecretError:
        raise errors.secret() from None
    return Client(endpoints=providers.resolve(mailbox.oauth_provider, mailbox.oauth_tenant),
                  client_id=mailbox.oauth_client_id, client_secret=client_secret, scope=mailbox.oauth_scope)


# --- connect ----------------------------------------------------------------------------------


def connect(mailbox: Mailbox, tokens: TokenResponse, actor=None) -> OAuthGrant:
    """Store a new grant in one transaction (nothing is saved on failure)."""
    if not tokens.refresh_token:
        # Without one the mailbox would stop working within the hour, silently.
        raise OAuthError("config", "the provider gave no refresh token: the scope needs offline_access "
                                   "(Microsoft, generic providers) or offline access (Google)", permanent=True)
    now = timezone.now()
    with transaction.atomic():
        grant, _ = OAuthGrant.objects.select_for_update().get_or_create(mailbox=mailbox)
        for name, value in _token_fields(tokens, tokens.refresh_token, now).items():
            setattr(grant, name, value)
        grant.generation = F("generation") + 1
        grant.connected_at, grant.connected_by = now, actor if actor is not None and actor.is_authenticated else None
        grant.save()
        AuditEvent.record(actor, "mailbox.oauth.connected", f"mailbox {mailbox.pk}",
                          f"{mailbox.name}: {_provider_name(mailbox)}, scopes {tokens.scope}")
    grant.refresh_from_db()
    return grant


def _token_fields(tokens: TokenResponse, refresh_token: str, now: datetime) -> dict:
    """The columns a token answer sets, and a healthy state."""
    fields = {
        "refresh_token": secrets.encrypt(refresh_token),
        "access_token": secrets.encrypt(tokens.access_token),
        "access_expires_at": now + timedelta(seconds=tokens.expires_in or ASSUMED_LIFETIME),
        "granted_scope": tokens.scope[:2000],
        "state": State.OK, "refresh_failures": 0, "last_error": "", "last_error_at": None, "updated_at": now,
    }
    if tokens.grant_expires_in:
        fields["grant_expires_at"] = now + timedelta(seconds=tokens.grant_expires_in)
    return fields


# --- an access token for a login -------------------------------------------------------------


def access_token(mailbox: Mailbox, *, rejected: str | None = None) -> str:
    """A valid access token; `rejected`: the one the server just refused (refresh even if it has time left)."""
    grant = _grant(mailbox)
    token = _usable(grant, rejected)
    if token is None:
        token = _refreshed(mailbox, grant, rejected)
    _mark_used(grant)
    return token


def _grant(mailbox: Mailbox) -> OAuthGrant:
    grant = OAuthGrant.objects.filter(mailbox_id=mailbox.pk).first()
    if grant is None or not grant.refresh_token:
        raise errors.not_connected(mailbox.name)
    if grant.state == State.EXPIRED:
        raise errors.expired()
    return grant


def _usable(grant: OAuthGrant, rejected: str | None) -> str | None:
    """The stored access token if it has more than the margin left and is not the rejected one."""
    if not grant.access_token or grant.access_expires_at is None:
        return None
    if grant.access_expires_at - timezone.now() <= margin(grant):
        return None
    token = _decrypt(grant.access_token)
    return None if token == rejected else token


def margin(grant: OAuthGrant) -> timedelta:
    """Refresh ahead by 20% of the token's lifetime, at least 10 s and at most 5 minutes."""
    # The token came with the last connect or refresh, whichever was later.
    issued = max((t for t in (grant.last_refreshed_at, grant.connected_at) if t is not None), default=None)
    if issued is None:
        return MAX_MARGIN
    lifetime = (grant.access_expires_at - issued).total_seconds()
    return timedelta(seconds=max(MIN_MARGIN.total_seconds(), min(MAX_MARGIN.total_seconds(), 0.2 * lifetime)))


def _decrypt(value: str) -> str:
    try:
        return secrets.decrypt(value)
    except secrets.SecretError:
        raise errors.secret() from None


def _mark_used(grant: OAuthGrant) -> None:
    now = timezone.now()
    if grant.last_used_at is None or now - grant.last_used_at >= USED_EVERY:
        OAuthGrant.objects.filter(pk=grant.pk).update(last_used_at=now)


# --- refresh -----------------------------------------------------------------------------------


def _refreshed(mailbox: Mailbox, grant: OAuthGrant, rejected: str | None) -> str:
    """Refresh under the grant's lease, or wait for the process that holds it and use its result."""
    lease = leases.RowLease(OAuthGrant, grant.pk, "refresh_lease_", REFRESH_LEASE)
    while True:
        if isinstance(lease.claim(), leases.Held):
            try:
                return _refresh_holding(mailbox, lease, rejected)
            finally:
                lease.release()
        since, seen = timezone.now(), grant.generation
        if not lease.wait(WAIT_FOR_REFRESHER, done=lambda: _outcome_since(grant.pk, seen, since)):
            raise OAuthError("busy", "another process is refreshing this mailbox's token and has not finished",
                             permanent=False)
        grant = _grant(mailbox)
        token = _usable(grant, rejected)
        if token is not None:
            return token
        if grant.generation == seen and grant.last_error_at is not None and grant.last_error_at >= since:
            # The holder failed while we waited: report its failure rather than hammer the provider.
            raise errors.provider(grant.last_error or "the token refresh failed")


def _outcome_since(pk: int, generation: int, since: datetime) -> bool:
    """The holder saved new tokens, or recorded a failure, after `since`."""
    row = OAuthGrant.objects.filter(pk=pk)
    return row.exclude(generation=generation).exists() or row.filter(last_error_at__gte=since).exists()


def _refresh_holding(mailbox: Mailbox, lease: leases.RowLease, rejected: str | None) -> str:
    # Read again under the lease: the previous holder may have saved a fresh token meanwhile.
    grant = _grant(mailbox)
    token = _usable(grant, rejected)
    if token is not None:
        return token
    try:
        refresh_token = _decrypt(grant.refresh_token)
        tokens = flows.refresh(client_for(mailbox), refresh_token)  # HTTP: no transaction is open here
    except OAuthError as error:
        record_failure(grant, error)
        raise
    crashpoints.reached("oauth-after-refresh")
    if not save_refreshed(grant.pk, grant.generation, tokens, refresh_token, lease):
        # Our lease was taken over and a newer token saved: that one is the truth.
        return _usable(_grant(mailbox), rejected) or tokens.access_token
    return tokens.access_token


def save_refreshed(pk: int, seen: int, tokens: TokenResponse, previous_refresh_token: str,
                   lease: leases.RowLease | None = None) -> bool:
    """Compare-and-set: save only over generation `seen` (and while we hold the lease)."""
    fence = lease.fence() if lease is not None else {}
    # A provider that does not rotate (Google) answers without a refresh token: keep ours.
    now = timezone.now()
    fields = _token_fields(tokens, tokens.refresh_token or previous_refresh_token, now)
    return bool(OAuthGrant.objects.filter(pk=pk, generation=seen, **fence).update(
        generation=seen + 1, last_refreshed_at=now, **fields))


def record_failure(grant: OAuthGrant, error: OAuthError) -> None:
    """invalid_grant: expired for good.  Anything else: failing, counted.  Never over a newer save."""
    now = timezone.now()
    row = OAuthGrant.objects.filter(pk=grant.pk, generation=grant.generation)
    # Both count as a failed refresh: the gauge a scraper alerts on must move for an ended
    # grant too (it stays ended, and is not retried at the provider, until a reconnect).
    state = State.EXPIRED if error.kind == "expired" else State.FAILING
    row.update(state=state, refresh_failures=F("refresh_failures") + 1, last_error=error.message[:500],
               last_error_at=now, updated_at=now)


# --- how a grant reads ---------------------------------------------------------------------


def grant_state(mailbox: Mailbox) -> dict:
    """The grant's health for `mailbox show --json` and the mailbox page (its settings come from
    mailbox_settings): state "not connected" | ok | failing | expired, and when; never a token."""
    grant = OAuthGrant.objects.filter(mailbox_id=mailbox.pk).first()
    if grant is None or not grant.refresh_token:
        return {"state": "not connected"}
    return {"state": grant.state, "granted_scope": grant.granted_scope,
            "connected_at": grant.connected_at, "last_used_at": grant.last_used_at,
            "last_refreshed_at": grant.last_refreshed_at, "access_expires_at": grant.access_expires_at,
            "grant_expires_at": grant.grant_expires_at, "refresh_failures": grant.refresh_failures,
            "last_error": grant.last_error or None}


def describe(mailbox: Mailbox) -> dict:
    """The provider, client and grant of an OAuth mailbox, as one dict (never a token)."""
    return {"provider": _provider_name(mailbox), "tenant": mailbox.oauth_tenant or None,
            "client_id": mailbox.oauth_client_id,
            "client_secret": "(set)" if mailbox.oauth_client_secret else "(not set)",
            "requested_scope": mailbox.oauth_scope or None, **grant_state(mailbox)}


def _provider_name(mailbox: Mailbox) -> str:
    if mailbox.oauth_provider == "microsoft":
        return f"microsoft ({mailbox.oauth_tenant or 'organizations'})"
    return mailbox.oauth_provider


def warnings(mailbox: Mailbox) -> list[str]:
    if mailbox.auth != "oauth" and mailbox.smtp_auth != "oauth":
        return []
    grant = OAuthGrant.objects.filter(mailbox_id=mailbox.pk).first()
    if grant is None or not grant.refresh_token:
        return [f"not signed in: run `postdesk mailbox connect {mailbox.name}`"]
    found = []
    if grant.state == State.EXPIRED:
        found.append(errors.EXPIRED_MESSAGE)
    elif grant.grant_expires_at is not None and grant.grant_expires_at - timezone.now() <= GRANT_WARNING:
        found.append(f"the grant ends on {grant.grant_expires_at:%Y-%m-%d}: reconnect before then")
    if grant.state == State.FAILING:
        found.append(f"token refresh failing {grant.refresh_failures} times: {grant.last_error}")
    return found
