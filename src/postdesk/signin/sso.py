"""Single sign-on for staff by OpenID Connect (POSTDESK_SSO_*, read in settings.py).

One sign-in, in three steps; the pages (postdesk.web.sso) only call these:

    start(request, ...)   discovery (postdesk.oauth.providers, OpenID Connect document), then an
                          authorization request with PKCE (S256), `state` and `nonce`
                          (postdesk.oauth.flows, Authlib's client).  What must come back is kept
                          in the session (PendingSso), with "keep me signed in" and `next`.
    finish(request, query) the provider's redirect: the pending sign-in of that state (single use),
                          the code exchanged for tokens, the id_token verified (`verified_claims`:
                          signature by the issuer's JWKS, iss, aud, exp, iat, nonce, azp, at_hash;
                          joserfc and Authlib's CodeIDToken rules), then `link()`.  Answers an
                          SsoOutcome; every refusal is recorded here: a SignInEvent (sso_failed), a
                          log line on postdesk.signin, and a failed sign-in for the throttle.
    sign_in(request, outcome)  flow.first_factor_passed(method="sso"): the flow signs in.

Who the person is (`link`), in this order:

1. (issuer, sub) already linked (SsoIdentity): that member, whatever the email says today;
   refused if the member is deactivated.
2. Otherwise the email must be verified: email_verified true.  Entra ID sends no
   email_verified: POSTDESK_SSO_TRUST_EMAIL=1 takes the email as verified when the claim is
   absent (never when it is false) -- for an issuer whose directory alone sets emails.
3. POSTDESK_SSO_DOMAINS, when set, must list the email's domain.
4. The ONE active staff member with that email (case-insensitive) is linked.  Two or more:
   refused (an admin must tell them apart).  Only deactivated ones: refused.
5. No one: a staff member is created when POSTDESK_SSO_CREATE_STAFF=1 (user name from the
   email's local part, made unique; no usable password), else refused.

With POSTDESK_SSO_PASSWORDS=off a linked member cannot sign in with a password
(`passwords_off_for`, asked by the sign-in form); `postdesk staff sso-unlink NAME` removes the
link, and with it that refusal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from enum import Enum

import requests
from authlib.common.security import generate_token
from authlib.oidc.core import CodeIDToken
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from postdesk.models import SignInEvent, SsoIdentity
from postdesk.signin import audit, flow, throttle
from postdesk.signin.client import client_address

log = logging.getLogger("postdesk.signin")

METHOD = "sso"
SCOPE = "openid email profile"
PENDING_KEY = "postdesk_sso_pending"
PENDING_TTL = 10 * 60  # seconds a person has at the provider
MAX_PENDING = 3  # sign-ins started per session (two tabs), older ones dropped
# Signatures by the issuer's published keys only: no "none", no shared-secret HS*.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY = 60  # seconds of clock difference allowed on exp and iat


@dataclass(frozen=True)
class SsoConfig:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    label: str
    create_staff: bool
    domains: tuple[str, ...]
    passwords: bool  # False: a linked member may not sign in with a password
    trust_email: bool

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


def config() -> SsoConfig:
    """The POSTDESK_SSO_* settings (read from the environment in settings.py)."""
    return SsoConfig(
        issuer=settings.POSTDESK_SSO_ISSUER, client_id=settings.POSTDESK_SSO_CLIENT_ID,
        client_secret=settings.POSTDESK_SSO_CLIENT_SECRET, label=settings.POSTDESK_SSO_LABEL,
        create_staff=settings.POSTDESK_SSO_CREATE_STAFF, domains=tuple(settings.POSTDESK_SSO_DOMAINS),
        passwords=settings.POSTDESK_SSO_PASSWORDS, trust_email=settings.POSTDESK_SSO_TRUST_EMAIL)


# --- the round trip ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingSso:
    """Between sending the person to the provider and their return; kept in the session."""

    state: str
    code_verifier: str = field(repr=False)
    nonce: str = field(repr=False)
    redirect_uri: str
    remember: bool
    next_url: str
    started: float

    @property
    def expired(self) -> bool:
        return time.time() - self.started > PENDING_TTL


def start(request, *, redirect_uri: str, remember: bool, next_url: str) -> str:
    """The provider's authorization URL to send the person to; raises OAuthError (discovery)."""
    from postdesk.oauth import flows

    nonce = generate_token(32)
    started = flows.start_authorization(_client(config()), redirect_uri, nonce=nonce)
    _keep(request, PendingSso(started.state, started.code_verifier, nonce, redirect_uri, remember, next_url,
                              time.time()))
    return started.url


def _client(cfg: SsoConfig):
    from postdesk.oauth import flows, providers

    endpoints = providers.discover(cfg.issuer, openid=True)
    return flows.Client(endpoints, cfg.client_id, cfg.client_secret, scope=SCOPE)


def _keep(request, pending: PendingSso) -> None:
    kept = {state: data for state, data in request.session.get(PENDING_KEY, {}).items()
            if not PendingSso(**data).expired}
    kept[pending.state] = asdict(pending)
    request.session[PENDING_KEY] = dict(sorted(kept.items(), key=lambda kv: kv[1]["started"])[-MAX_PENDING:])


def _take(request, state: str) -> PendingSso | None:
    """The pending sign-in of this state, removed from the session (single use)."""
    kept = request.session.get(PENDING_KEY, {})
    data = kept.pop(state, None) if state else None
    request.session[PENDING_KEY] = kept
    pending = PendingSso(**data) if data else None
    return None if pending is None or pending.expired else pending


class Outcome(Enum):
    SIGNED_IN = "signed in"  # an identity linked before
    LINKED = "linked"  # first sign-in: linked to the member with that email
    CREATED = "created"  # first sign-in: a staff member created
    REFUSED = "refused"
    LOCKED = "locked"  # the email is locked by failed sign-ins (the lockout page)


@dataclass(frozen=True)
class SsoOutcome:
    outcome: Outcome
    user: AbstractBaseUser | None = None  # the member (not for REFUSED or LOCKED)
    email: str = ""
    reason: str = ""  # refusals: one word for the log and the audit (state, provider, token, unverified, ...)
    message: str = ""  # refusals: what the sign-in page says
    pending: PendingSso | None = None

    @property
    def refused(self) -> bool:
        return self.outcome in (Outcome.REFUSED, Outcome.LOCKED)


def finish(request, query: Mapping[str, str]) -> SsoOutcome:
    """The provider's redirect (its query) to the end: who signs in, or a recorded refusal."""
    from postdesk.oauth import OAuthError

    pending = _take(request, query.get("state", ""))
    if pending is None:
        return refuse(request, "state", "The single sign-on could not be finished: it does not match a sign-in "
                                        "started here (an old or repeated page, or the session ended). Try again.")
    cfg = config()
    try:
        claims = _claims_from_provider(cfg, pending, query)
    except OAuthError as exc:
        return refuse(request, "provider", f"The single sign-on failed: {exc.message}.", pending=pending,
                      counted=exc.kind in throttle.COUNTED_OAUTH_ERRORS)
    except _Unverifiable as exc:
        return refuse(request, "token", "The single sign-on failed: the provider's answer could not be verified "
                                        f"({exc}). Ask an admin to check the single sign-on settings.", pending=pending)
    email = str(claims.get("email") or "").strip()
    if email and throttle.refused_wait(request, email) > timedelta(0):
        return _locked(request, email, pending)
    outcome = link(cfg, claims)
    if outcome.refused:
        return refuse(request, outcome.reason, outcome.message, email=outcome.email, pending=pending)
    _used(cfg, claims["sub"])
    log.info(f"single sign-on {outcome.outcome.value}", extra={"user": outcome.user.get_username(),
                                                               "address": client_address(request)})
    return SsoOutcome(outcome.outcome, outcome.user, outcome.email, pending=pending)


def sign_in(request, outcome: SsoOutcome) -> flow.Step:
    """The person is who the provider says: on to the flow (a second factor, or signed in)."""
    return flow.first_factor_passed(request, outcome.user, method=METHOD, remember=outcome.pending.remember,
                                    next_url=outcome.pending.next_url)


def refuse(request, reason: str, message: str, *, email: str = "", pending: PendingSso | None = None,
           counted: bool = True) -> SsoOutcome:
    """Record a refused single sign-on: the audit row, the log line, and (unless the provider
    was down or our settings are wrong: not `counted`) a failed sign-in for the client address
    and for `email` (a verified one, when known)."""
    matches = list(get_user_model().objects.filter(email__iexact=email)[:2]) if email else []
    user = matches[0] if len(matches) == 1 else None
    audit.record(SignInEvent.SSO_FAILED, request, user=user, username=email, method=METHOD,
                 detail=f"{reason}: {message}")
    log.warning("single sign-on refused", extra={"outcome": reason, "user": email,
                                                  "address": client_address(request)})
    if counted:
        throttle.count_failure(request, email)
    return SsoOutcome(Outcome.REFUSED, email=email, reason=reason, message=message, pending=pending)


def _locked(request, email: str, pending: PendingSso) -> SsoOutcome:
    # Refused before linking and not counted, like a password typed for a locked account.
    audit.record(SignInEvent.SSO_FAILED, request, username=email, method=METHOD, detail="locked")
    log.warning("sign-in locked", extra={"user": email, "address": client_address(request)})
    return SsoOutcome(Outcome.LOCKED, email=email, reason="locked", pending=pending)


def _used(cfg: SsoConfig, subject: str) -> None:
    SsoIdentity.objects.filter(issuer=cfg.issuer, subject=subject).update(last_used_at=timezone.now())


# --- the provider's answer, verified -----------------------------------------------------------


class _Unverifiable(Exception):
    """The id_token is missing, or fails its signature or a claim."""


def _claims_from_provider(cfg: SsoConfig, pending: PendingSso, query: Mapping[str, str]) -> dict:
    from postdesk.oauth import flows

    client = _client(cfg)
    started = flows.PendingAuthorization(url="", state=pending.state, code_verifier=pending.code_verifier,
                                         redirect_uri=pending.redirect_uri)
    tokens = flows.finish_authorization(client, started, query)
    if not tokens.id_token:
        raise _Unverifiable("no id_token: is the openid scope allowed for this client?")
    try:
        return verified_claims(tokens.id_token, keys=_published_keys(client.endpoints), issuer=cfg.issuer,
                               client_id=cfg.client_id, nonce=pending.nonce, access_token=tokens.access_token)
    except JoseError as exc:
        raise _Unverifiable(f"id_token: {exc.error}{': ' + exc.description if exc.description else ''}") from None
    except (ValueError, TypeError, KeyError) as exc:  # keys or token that are not JOSE at all
        raise _Unverifiable(f"id_token: {type(exc).__name__}") from None


def _published_keys(endpoints) -> dict:
    """The issuer's JWKS, fetched on every sign-in (sign-ins are rare; keys rotate)."""
    from postdesk.oauth import errors
    from postdesk.oauth.providers import TIMEOUT

    if not endpoints.jwks_uri:
        raise errors.config("the issuer's OpenID Connect document names no jwks_uri")
    try:
        response = requests.get(endpoints.jwks_uri, timeout=TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        keys = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise errors.provider(f"the issuer's keys ({endpoints.jwks_uri}) cannot be read: {type(exc).__name__}") from None
    if not isinstance(keys, dict):
        raise errors.provider(f"the issuer's keys ({endpoints.jwks_uri}) are not a JWK set")
    return keys


def verified_claims(id_token: str, *, keys: dict, issuer: str, client_id: str, nonce: str,
                    access_token: str = "") -> dict:
    """The id_token's claims once its signature (one of `keys`) and claims hold: iss is the
    issuer, aud has our client id, not expired, the nonce we sent, sub present (OpenID Connect
    Core 3.1.3.7).  Raises joserfc's JoseError."""
    token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=ALGORITHMS)
    options = {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id},
               "sub": {"essential": True}, "exp": {"essential": True}, "nonce": {"essential": True, "value": nonce}}
    claims = CodeIDToken(token.claims, token.header, options,
                         {"nonce": nonce, "client_id": client_id, "access_token": access_token})
    claims.validate(leeway=LEEWAY)
    return dict(claims)


# --- who it is -----------------------------------------------------------------------------------


def link(cfg: SsoConfig, claims: Mapping) -> SsoOutcome:
    """Verified claims -> the member who signs in, linked or created; or why no one does."""
    identity = SsoIdentity.objects.select_related("user").filter(issuer=cfg.issuer, subject=claims["sub"]).first()
    if identity is not None:
        return _known(identity)
    email = verified_email(cfg, claims)
    if not email:
        # No email on the refusal: an unverified claim must count against no one's account.
        claimed = str(claims.get("email") or "").strip()
        return _refusal("unverified", f"Your email address at the provider{f' ({claimed})' if claimed else ''} is "
                                      "not verified, so it cannot be matched to a staff member. Ask an admin.")
    domain = email.rpartition("@")[2].lower()
    if cfg.domains and domain not in cfg.domains:
        return _refusal("domain", f"Single sign-on is not open to addresses at {domain}.", email)
    members = list(get_user_model().objects.filter(email__iexact=email))
    active = [member for member in members if member.is_active]
    if len(active) > 1:
        return _refusal("ambiguous", f"More than one staff member has the email {email}: an admin must give each "
                                     "their own address before single sign-on can tell them apart.", email)
    if active:
        return _linked(cfg, claims, active[0], email, Outcome.LINKED)
    if members:
        return _refusal("inactive", "The staff account with this email is deactivated.", email)
    if not cfg.create_staff:
        return _refusal("unknown", f"No staff member has the email {email}. Ask an admin to add you.", email)
    return _linked(cfg, claims, None, email, Outcome.CREATED)


def verified_email(cfg: SsoConfig, claims: Mapping) -> str:
    """The email, if the issuer vouches for it ("" if not).  Some issuers send "true" as a string."""
    email = str(claims.get("email") or "").strip()
    verified = claims.get("email_verified")
    if verified is None and cfg.trust_email:
        verified = True
    return email if "@" in email and verified in (True, "true") else ""


def _refusal(reason: str, message: str, email: str = "") -> SsoOutcome:
    return SsoOutcome(Outcome.REFUSED, email=email, reason=reason, message=message)


def _known(identity: SsoIdentity) -> SsoOutcome:
    if not identity.user.is_active:
        return _refusal("inactive", "Your staff account is deactivated.", identity.user.email)
    return SsoOutcome(Outcome.SIGNED_IN, identity.user, identity.user.email)


def _linked(cfg: SsoConfig, claims: Mapping, member, email: str, outcome: Outcome) -> SsoOutcome:
    """Link (issuer, sub) to the member (or to a new one); the unique constraint settles two
    first sign-ins at once: the second finds the first one's link."""
    try:
        with transaction.atomic():
            member = member or _new_member(email, claims)
            SsoIdentity.objects.create(user=member, issuer=cfg.issuer, subject=claims["sub"], email=email)
    except IntegrityError:
        identity = SsoIdentity.objects.select_related("user").filter(issuer=cfg.issuer, subject=claims["sub"]).first()
        if identity is None:  # the user name was taken meanwhile, not the link: nothing was saved
            return _refusal("busy", "Another sign-in was saving the same account: try again.", email)
        return _known(identity)
    return SsoOutcome(outcome, member, email)


def _new_member(email: str, claims: Mapping):
    member = get_user_model()(username=_free_username(email), email=email, is_staff=True,
                              first_name=str(claims.get("given_name") or "")[:150],
                              last_name=str(claims.get("family_name") or "")[:150])
    member.set_unusable_password()  # signs in by single sign-on; an admin may set one later
    member.save()
    return member


def _free_username(email: str) -> str:
    """The email's local part in the characters Django allows, then 2, 3, ... until unused."""
    base = re.sub(r"[^\w.@+-]", "", email.partition("@")[0])[:140] or "staff"
    users = get_user_model().objects
    name, number = base, 1
    while users.filter(username__iexact=name).exists():
        number += 1
        name = f"{base}{number}"
    return name


# --- passwords and unlinking ----------------------------------------------------------------------


def passwords_off_for(user) -> bool:
    """Whether this member may not sign in with a password (POSTDESK_SSO_PASSWORDS=off and linked)."""
    cfg = config()
    return cfg.enabled and not cfg.passwords and SsoIdentity.objects.filter(user=user).exists()


def unlink(user, actor=None) -> int:
    """Forget the member's single sign-on links (their next SSO sign-in links again by email),
    audited; with POSTDESK_SSO_PASSWORDS=off this gives the password back."""
    from postdesk.models import AuditEvent

    deleted, _ = SsoIdentity.objects.filter(user=user).delete()
    AuditEvent.record(actor, "signin.sso_unlinked", user.get_username(), detail=f"{deleted} single sign-on links removed")
    log.info("single sign-on unlinked", extra={"user": user.get_username(), "count": deleted})
    return deleted
