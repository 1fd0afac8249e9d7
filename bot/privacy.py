"""Scrub personal data from text bound for shared or customer-facing places.

Payment-card numbers are only replaced when they pass the Luhn check and IBANs only when they
pass the mod-97 check, so order numbers and ticket ids survive. Links and platform ids are
never touched: a Teams deep link holds `19:...@thread.tacv2` (an e-mail look-alike) and a
13-digit message id (a phone look-alike), a Slack permalink a 16-digit `p...` (a card
look-alike). The text is cut into links/ids and people's words first, and only the words are
scrubbed.

Every pattern runs in linear time: each one starts only at the start of a run (a look-behind
that fails inside the run) and every repetition is bounded, so a 40,000-letter word costs one
pass instead of 40,000 (the old e-mail pattern took seconds on it, on the event loop).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from bot import platforms as registry

# Local part <= 64 characters (RFC 5321), labels <= 63, at most 10 labels, a TLD of letters.
EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}")
# 13-19 digits, optionally grouped by single spaces or dashes, never part of a longer number.
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./]\d{2}[./]\d{4}")
# A whole run of digits (never part of a longer one), optionally with a country prefix.
PHONE = re.compile(r"(?<![\w+])(?<!\d[\s.-])(\+|00)?\(?\d(?:[\s().-]{0,2}\d){6,16}(?![\w])(?![\s.-]\d)")

# What is never scrubbed: http(s) links (permalinks, deep links, anything people paste; in
# `<url|label>` markup the label is still scrubbed), and the ids platforms put in text, which the
# registered platforms name (bot.platforms: a Teams conversation id looks like an e-mail address).
# An id must hold a letter, so a user id made of digits is no hiding place for a card number.
LINK = re.compile(r"https?://[^\s<>|\"]+", re.IGNORECASE)


@lru_cache(maxsize=8)
def _keep(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join([LINK.pattern, *patterns]), re.IGNORECASE)
HAS_LETTER = re.compile(r"[A-Za-z]")

MAYBE_PERSONAL = re.compile(r"[\d@]")


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


def scrub(text: str) -> tuple[str, list[str]]:
    """Return the text with personal data replaced, and the kinds that were found."""
    if not MAYBE_PERSONAL.search(text):
        return text, []  # no digit, no @: nothing to find, skip the patterns (the common case)
    out, kinds = _scrub(text)
    return out, list(kinds)


def pieces(text: str) -> Iterator[tuple[bool, str]]:
    """`(keep, piece)` in order: links and platform ids are kept, everything between is words."""
    at = 0
    for match in _keep(registry.text_id_patterns()).finditer(text):
        token = match.group(0)
        if not token.lower().startswith("http") and not token.startswith("19:") \
                and not HAS_LETTER.search(token.split(":", 1)[1]):
            continue  # `29:4111 ...` or `8:30`: digits after a prefix are words, not an id
        if match.start() > at:
            yield False, text[at:match.start()]
        yield True, token
        at = match.end()
    if at < len(text):
        yield False, text[at:]


@lru_cache(maxsize=4096)
def _scrub(text: str) -> tuple[str, tuple[str, ...]]:
    """Cached: one notice goes to several places, and its text is scrubbed once."""
    found: set[str] = set()
    out = [piece if keep else _scrub_words(piece, found) for keep, piece in pieces(text)]
    return "".join(out), tuple(sorted(found))


def _scrub_words(text: str, found: set[str]) -> str:
    """Scrub a piece of people's text (no links or ids in it)."""
    if not MAYBE_PERSONAL.search(text):
        return text

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.add("card number")
            return "[card number removed]"
        return match.group(0)

    def iban(match: re.Match[str]) -> str:
        if iban_ok(match.group(0)):
            found.add("IBAN")
            return "[IBAN removed]"
        return match.group(0)

    def email(match: re.Match[str]) -> str:
        found.add("e-mail address")
        return "[e-mail removed]"

    def phone(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        international = match.group(1) is not None
        # International numbers have 8-15 digits; without a prefix we need 10+ so that dates,
        # order numbers and ticket ids survive.
        if DATE.search(match.group(0)) or not (
                8 <= len(digits) <= 15 if international else 10 <= len(digits) <= 15):
            return match.group(0)
        found.add("phone number")
        return "[phone removed]"

    text = CARD.sub(card, text)
    text = IBAN.sub(iban, text)
    if "@" in text:
        text = EMAIL.sub(email, text)
    return PHONE.sub(phone, text)
