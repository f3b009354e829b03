"""The request tag (postdesk.tags): one format, found the same way in subjects and searches."""

from __future__ import annotations

import pytest

from postdesk import tags


def test_tag_label_and_subject_follow_the_prefix(settings):
    settings.POSTDESK_TAG_PREFIX = "ACME"
    assert (tags.tag(12), tags.label(12)) == ("[ACME-12]", "ACME-12")
    assert tags.tagged_subject("  Printer   on fire ", 12) == "Re: Printer on fire [ACME-12]"
    assert tags.tagged_subject("RE: Printer [acme-12]", 12) == "RE: Printer [acme-12]"  # already there: not twice
    assert tags.tagged_subject("", 12, reply=False) == "(no subject) [ACME-12]"


@pytest.mark.parametrize("subject, number", [
    ("Re: [PD-12] Printer", 12),
    ("AW: Printer [pd-7] and [PD-8]", 7),  # the first tag
    ("[PD-12 ] Printer", None),
    ("[XX-12] Printer", None),
    ("[#12] Printer", None),
    ("PD-12 Printer", None),  # a tag has its brackets
    (f"[PD-{'9' * 19}]", None),  # no number a database can hold
    ("", None),
    (None, None),
])
def test_in_subject(subject, number):
    assert tags.in_subject(subject) == number


def test_all_in_subject_in_order_each_once_and_bounded():
    assert tags.all_in_subject("Re: [PD-12] Printer [PD-13] [pd-12]") == [12, 13]
    assert tags.all_in_subject(" ".join(f"[PD-{n}]" for n in range(1000))) == [0, 1, 2, 3, 4]


def test_a_desk_with_another_prefix_ignores_ours(settings):
    settings.POSTDESK_TAG_PREFIX = "HD"
    assert tags.in_subject("Re: [PD-12] Printer") is None and tags.in_subject("Re: [HD-12] Printer") == 12


@pytest.mark.parametrize("query, number", [
    ("12", 12), ("#12", 12), (" PD-12 ", 12), ("pd-12", 12), ("[PD-12]", 12),
    ("PD-", None), ("[PD-12", None), ("XX-12", None), ("12 printers", None), ("9" * 19, None),
])
def test_in_query(query, number):
    assert tags.in_query(query) == number
