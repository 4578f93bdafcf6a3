"""Pure: a SIRET is 14 digits whose Luhn sum is a multiple of 10.

La Poste's establishments (SIREN 356 000 000) are the one exception INSEE documents: the sum
of their 14 digits is a multiple of 5 instead.
"""

from __future__ import annotations

LA_POSTE_SIREN = "356000000"


def luhn_ok(digits: str) -> bool:
    """The Luhn check over a string of digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def siret_problem(text: str) -> str | None:
    """Why `text` is not a SIRET, or None when it is one."""
    if len(text) != 14 or not text.isascii() or not text.isdigit():
        return f"a SIRET is 14 digits, got {text!r}"
    if text.startswith(LA_POSTE_SIREN) and sum(int(char) for char in text) % 5 == 0:
        return None
    if not luhn_ok(text):
        return f"{text} is not a SIRET: its check digit is wrong (Luhn)"
    return None
