"""Scrubbing personal data: what must go, what must stay, and a property for card numbers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.privacy import iban_ok, luhn_ok, scrub


@pytest.mark.parametrize(("text", "kinds", "left"), [
    ("mail bob@globex.com now", ["e-mail address"], "mail [e-mail removed] now"),
    ("card 4111 1111 1111 1111 declined", ["card number"], "card [card number removed] declined"),
    ("card 4111-1111-1111-1111", ["card number"], "card [card number removed]"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", ["IBAN"], "IBAN [IBAN removed] please"),
    ("call +49 170 1234567", ["phone number"], "call [phone removed]"),
    ("order 4111 1111 1111 1112 failed", [], None),  # fails Luhn: an order number, not a card
    ("ticket ESC-1042 on 2026-11-23", [], None),
    ("since 2026-11-23 09:00, order 1234567", [], None),
    ("call 030 1234 5678 or 0049 30 1234567", ["phone number"], "call [phone removed] or [phone removed]"),
    ("DE89 3704 0044 0532 0130 01", [], None),  # fails mod-97
])
def test_scrubbing_removes_personal_data_and_keeps_the_rest(text: str, kinds: list[str], left: str | None) -> None:
    out, found = scrub(text)
    assert found == kinds
    assert out == (left if left is not None else text)


def luhn_complete(prefix: list[int]) -> str:
    for check in range(10):
        candidate = "".join(map(str, prefix)) + str(check)
        if luhn_ok(candidate):
            return candidate
    raise AssertionError


@given(digits=st.lists(st.integers(0, 9), min_size=12, max_size=18),
       sep=st.sampled_from(["", " ", "-"]),
       before=st.text(alphabet="abc ,.:", max_size=10), after=st.text(alphabet="xyz ,.:", max_size=10))
def test_no_card_number_that_passes_luhn_survives(digits: list[int], sep: str, before: str, after: str) -> None:
    number = luhn_complete(digits)
    grouped = sep.join(number[i:i + 4] for i in range(0, len(number), 4))
    out, _ = scrub(f"{before} {grouped} {after}")
    assert number not in re.sub(r"[ -]", "", out)


def test_iban_check_accepts_real_ibans_only() -> None:
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("GB82 WEST 1234 5698 7654 33")
