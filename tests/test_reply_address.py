"""The reply address of a notification (postdesk.notify.reply_address): pure, no database."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from types import SimpleNamespace

import pytest
from django.core import signing

from postdesk.notify.reply_address import (
    ReplyAddressError,
    TokenStatus,
    read_reply_address,
    reply_address,
)

PHIL, ANNA = SimpleNamespace(pk=7), SimpleNamespace(pk=8)
REQUEST = SimpleNamespace(pk=123_456)
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=dt_timezone.utc)


def test_address_names_the_staff_member_and_the_request_and_fits_a_local_part():
    address = reply_address(PHIL, REQUEST, "support@desk.example", now=NOW)

    local, _, domain = address.partition("@")
    assert domain == "desk.example" and local.startswith("support+") and len(local) <= 64
    check = read_reply_address(["alice@customer.example", f"Desk <{address}>"], now=NOW)
    assert check.status is TokenStatus.OK
    assert (check.token.staff_id, check.token.request_id) == (7, 123_456)


def test_largest_ids_still_fit():
    address = reply_address(SimpleNamespace(pk=2**31), SimpleNamespace(pk=2**63 - 1), "helpdesk@desk.example", now=NOW)
    assert len(address.partition("@")[0]) <= 64
    assert read_reply_address([address], now=NOW).token.request_id == 2**63 - 1


def test_case_changed_by_a_server_reads_the_same():
    address = reply_address(PHIL, REQUEST, "support@desk.example", now=NOW)
    assert read_reply_address([address.upper()], now=NOW).ok
    assert read_reply_address([address.lower()], now=NOW).ok


def test_every_changed_character_is_a_bad_token():
    local, _, domain = reply_address(PHIL, REQUEST, "support@desk.example", now=NOW).partition("@")
    base, token = local.split("+")
    for i in range(len(token)):
        changed = token[:i] + ("b" if token[i] != "b" else "c") + token[i + 1:]
        check = read_reply_address([f"{base}+{changed}@{domain}"], now=NOW)
        assert check.status is TokenStatus.BAD and check.token is None, i


def test_another_members_token_is_another_member():
    address = reply_address(ANNA, REQUEST, "support@desk.example", now=NOW)
    assert read_reply_address([address], now=NOW).token.staff_id == 8


def test_token_expires_after_the_configured_days(settings):
    settings.POSTDESK_REPLY_TOKEN_DAYS = 30
    address = reply_address(PHIL, REQUEST, "support@desk.example", now=NOW)

    assert read_reply_address([address], now=NOW + timedelta(days=30)).ok
    late = read_reply_address([address], now=NOW + timedelta(days=31))
    assert late.status is TokenStatus.EXPIRED and late.token.request_id == REQUEST.pk


def test_a_rotated_secret_key_still_verifies_and_another_key_does_not(settings):
    address = reply_address(PHIL, REQUEST, "support@desk.example", now=NOW)
    old = settings.SECRET_KEY

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a new key " * 5, [old]
    assert read_reply_address([address], now=NOW).ok
    settings.SECRET_KEY_FALLBACKS = []
    assert read_reply_address([address], now=NOW).status is TokenStatus.BAD


def test_other_signatures_of_the_site_are_not_tokens():
    other = signing.dumps([7, 123_456], salt="something else")
    assert not read_reply_address([f"support+{other}@desk.example"], now=NOW).ok


def test_plain_plus_addressing_is_not_a_reply_address():
    assert read_reply_address(["support+billing@desk.example", "support@desk.example"]).status is TokenStatus.NONE


def test_good_token_wins_over_a_bad_one_among_recipients():
    good = reply_address(PHIL, REQUEST, "support@desk.example", now=NOW)
    assert read_reply_address(["support+" + "a" * 30 + "@desk.example", good], now=NOW).ok


def test_delimiter_is_a_setting(settings):
    settings.POSTDESK_REPLY_DELIMITER = "-"
    address = reply_address(PHIL, REQUEST, "help-desk@desk.example", now=NOW)
    assert address.startswith("help-desk-")
    assert read_reply_address([address], now=NOW).ok


def test_a_base_address_already_plus_addressed_keeps_its_part_and_the_token_comes_last():
    """Servers split at the first delimiter (delivery) and we read after the last one."""
    address = reply_address(PHIL, REQUEST, "support+x9@desk.example", now=NOW)
    assert address.startswith("support+x9+")
    assert read_reply_address([address], now=NOW).ok


def test_local_part_with_no_room_left_refuses():
    with pytest.raises(ReplyAddressError):
        reply_address(PHIL, REQUEST, "x" * 40 + "@desk.example", now=NOW)
