"""Pure: SMS segment counting — GSM 03.38 (7-bit, with its extension table) or UCS-2."""

from __future__ import annotations

import math
import unicodedata

# GSM 03.38 basic character set (the escape code 0x1B excluded).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each of these costs two septets (escape + character).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


def is_gsm7(text: str) -> bool:
    """True when every character of `text` can be sent in the GSM 7-bit alphabet."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def septets(text: str) -> int:
    """Length of `text` in GSM 7-bit septets (extension characters count twice)."""
    return sum(2 if char in GSM7_EXTENSION else 1 for char in text)


def ucs2_units(text: str) -> int:
    """Length of `text` in UTF-16 code units (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """How many SMS segments `text` takes (0 for an empty text)."""
    if not text:
        return 0
    if is_gsm7(text):
        size = septets(text)
        return 1 if size <= GSM7_SINGLE else math.ceil(size / GSM7_PART)
    size = ucs2_units(text)
    return 1 if size <= UCS2_SINGLE else math.ceil(size / UCS2_PART)


def to_gsm7(text: str, replacement: str = "?") -> str:
    """`text` in GSM 7-bit: accents outside it dropped (ê → e), other characters replaced."""
    return "".join(_gsm7_char(char, replacement) for char in text)


def _gsm7_char(char: str, replacement: str) -> str:
    if char in GSM7_BASIC or char in GSM7_EXTENSION:
        return char
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if base and is_gsm7(base) else replacement
