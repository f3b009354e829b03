"""Fixtures of the OAuth tests: the session's test provider (tests/servers/oauth_provider.py,
fixture `oauth`), and a user and a client of its own for each test."""

from __future__ import annotations

import itertools

import pytest

from postdesk.oauth import providers

_numbers = itertools.count(1)
PASSWORD = "secret-of-the-test-user"
REDIRECT_URI = "http://127.0.0.1/callback"  # loopback: any port matches (RFC 8252)


@pytest.fixture
def provider(oauth):
    """The session provider with default behaviour (`oauth`), and no discovery cached in this process."""
    providers.forget()
    yield oauth
    providers.forget()


@pytest.fixture
def person(provider) -> str:
    """A user at the provider that no other test has seen (its counters start at 0)."""
    name = f"oauth-user-{next(_numbers)}"
    provider.add_user(name, PASSWORD)
    return name


@pytest.fixture
def client_id(provider) -> str:
    """A public client (PKCE, no secret) registered for the loopback redirect."""
    name = f"postdesk-{next(_numbers)}"
    provider.add_client(name, redirect_uris=(REDIRECT_URI,))
    return name

