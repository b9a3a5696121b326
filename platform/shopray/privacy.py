"""What shopray keeps about a shopper: a pseudonymous session id, never an email address or a phone number."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)
_PHONE_NOISE = re.compile(r"[\s\-.()/]")


def pseudonymous(session_id: str) -> str:
    """A session id as given, or ValueError when it looks like an email address or a phone number (7 or more digits
    once spaces, dashes, dots, slashes and parentheses are removed, with or without a leading +)."""
    if not 1 <= len(session_id) <= 128:
        raise ValueError("session_id must be 1-128 characters")
    if _EMAIL.search(session_id):
        raise ValueError("session_id must be pseudonymous: it looks like an email address")
    if re.fullmatch(r"\+?\d{7,}", _PHONE_NOISE.sub("", session_id)):
        raise ValueError("session_id must be pseudonymous: it looks like a phone number")
    return session_id
