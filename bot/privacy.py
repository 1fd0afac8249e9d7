"""Scrub personal data from text bound for shared or customer-facing places.

Payment-card numbers are only replaced when they pass the Luhn check and IBANs only when they
pass the mod-97 check, so order numbers and ticket ids survive.
"""

from __future__ import annotations

import re
from functools import lru_cache

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by single spaces or dashes.
CARD = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./]\d{2}[./]\d{4}")
# A whole run of digits (never part of a longer one), optionally with a country prefix.
PHONE = re.compile(r"(?<![\w+])(?<!\d[\s.-])(\+|00)?\(?\d(?:[\s().-]{0,2}\d){6,16}(?![\w])(?![\s.-]\d)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    raw = candidate.replace(" ", "").upper()
    if not 15 <= len(raw) <= 34:
        return False
    moved = raw[4:] + raw[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in moved))
    except ValueError:
        return False
    return number % 97 == 1


MAYBE_PERSONAL = re.compile(r"[\d@]")


def scrub(text: str) -> tuple[str, list[str]]:
    """Return the text with personal data replaced, and the kinds that were found."""
    if not MAYBE_PERSONAL.search(text):
        return text, []  # no digit, no @: nothing to find, skip the patterns (the common case)
    out, kinds = _scrub(text)
    return out, list(kinds)


@lru_cache(maxsize=4096)
def _scrub(text: str) -> tuple[str, tuple[str, ...]]:
    """Cached: one notice goes to several places, and its text is scrubbed once."""
    found: list[str] = []

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.append("card number")
            return "[card number removed]"
        return match.group(0)

    def iban(match: re.Match[str]) -> str:
        if iban_ok(match.group(0)):
            found.append("IBAN")
            return "[IBAN removed]"
        return match.group(0)

    def email(match: re.Match[str]) -> str:
        found.append("e-mail address")
        return "[e-mail removed]"

    def phone(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        international = match.group(1) is not None
        # International numbers have 8-15 digits; without a prefix we need 10+ so that dates,
        # order numbers and ticket ids survive.
        if DATE.search(match.group(0)) or not (
                8 <= len(digits) <= 15 if international else 10 <= len(digits) <= 15):
            return match.group(0)
        found.append("phone number")
        return "[phone removed]"

    text = CARD.sub(card, text)
    text = IBAN.sub(iban, text)
    text = EMAIL.sub(email, text)
    text = PHONE.sub(phone, text)
    return text, tuple(sorted(set(found)))
