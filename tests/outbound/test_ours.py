"""Which addresses are ours (postdesk.outbound.ours): pure parts, no database."""

from __future__ import annotations

from postdesk.mail import delivered_to
from postdesk.outbound.ours import Ours

FORWARDED = (b"Delivered-To: desk@ours.example\r\n"
             b"X-Original-To: Help <help@ours.example>\r\n"
             b"Delivered-To: alice@customer.example\r\n"  # the customer's own server, before her forward
             b"From: alice@customer.example\r\n\r\nbody\r\n")


def test_delivery_fields_top_down_and_the_last_hop_alone():
    assert delivered_to(FORWARDED) == ["desk@ours.example", "alice@customer.example", "help@ours.example"]
    assert delivered_to(FORWARDED, last_hop=True) == ["desk@ours.example", "help@ours.example"]
    assert delivered_to(b"Envelope-To: Desk@Ours.Example\r\n\r\n") == ["desk@ours.example"]
    assert delivered_to(b"\xff\xfe\x00garbage") == [] and delivered_to(b"") == []


def test_ours_knows_sub_addresses_and_case():
    ours = Ours(frozenset({"desk@ours.example"})) | ["Help@Ours.Example", "", None, "not an address"]
    assert "DESK@ours.example" in ours and "help@ours.example" in ours
    assert "desk+billing@ours.example" in ours and "help+x+y@ours.example" in ours
    assert "desk@customer.example" not in ours and "+desk@ours.example" not in ours and "deskx@ours.example" not in ours
    assert ours.addresses == {"desk@ours.example", "help@ours.example"}
