"""Pure: the pages one sign shows for the requests waiting at its stop (which message wins a
sign — riders or an operator — is decided in `displays`).

Rules kept here:
- Every sign of a stop shows the destinations of the stop's waiting requests, oldest request first,
  each destination once; then riders on their way ("J'arrive"), a page each: "COVOITURAGE",
  the destination, "DANS 10 MIN" (3 units), the minutes left rounded up, at least 1; a
  destination someone already waits for is not announced again. Pages past `max_pages` fall away.
- French road-sign rule (IISR art. 147): at most 3 information units and about 7 words a page.
  A page is "COVOITURAGE" plus up to two destinations (3 units), fewer if the sign has fewer rows.
- Text fits the sign's geometry: upper case, no accents, cut to its columns.
- A display is a lease: it expires at `now + lease`, never after the earliest deadline of a request
  it shows, so a sign left alone by a dead dispatcher blanks itself.
- `seq` strictly increases per sign, across restarts: it is at least the current time in ms.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta

from dispatcher.effects import Page, SignDisplay
from dispatcher.model import SignGeometry

HEADING = "COVOITURAGE"
SHORT_HEADING = "COVOIT."
MAX_UNITS_PER_PAGE = 3
MAX_WORDS_PER_PAGE = 7


def next_seq(previous: int, now: datetime) -> int:
    """A sequence number newer than `previous` and than any issued before `now` by an older run."""
    return max(previous + 1, int(now.timestamp() * 1000))


_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss"})


def sign_text(name: str, columns: int) -> str:
    """Text as a sign shows it: printable ASCII upper case, accents removed, cut to `columns`."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    plain = "".join(
        char for char in decomposed if char.isascii() and (char.isprintable() or char.isspace())
    )
    return " ".join(plain.upper().split())[:columns].rstrip()


def free_text_pages(
    pages: Iterable[Iterable[str]], geometry: SignGeometry, max_pages: int
) -> tuple[Page, ...]:
    """An operator's free text fitted to a sign: its rows and columns, 3 units, 7 words a page.

    Empty rows and pages fall away; `()` (blank) stays blank.
    """
    fitted: list[Page] = []
    for page in pages:
        rows: list[str] = []
        words = 0
        for row in page:
            text = sign_text(row, geometry.columns)
            room = MAX_WORDS_PER_PAGE - words
            if not text or room <= 0:
                continue
            text = " ".join(text.split()[:room])
            rows.append(text)
            words += len(text.split())
            if len(rows) == min(geometry.rows, MAX_UNITS_PER_PAGE):
                break
        if rows:
            fitted.append(tuple(rows))
    return tuple(fitted[:max_pages])


def compose_pages(
    destination_names: Iterable[str], geometry: SignGeometry, max_pages: int
) -> tuple[Page, ...]:
    """Pages for destinations given oldest request first (duplicates collapse to the first)."""
    names: list[str] = []
    for name in destination_names:
        # A name alone must leave room for the heading within the words of a page.
        words = sign_text(name, geometry.columns).split()[: MAX_WORDS_PER_PAGE - 1]
        text = " ".join(words)
        if text and text not in names:
            names.append(text)
    if not names:
        return ()
    pages: list[Page]
    heading = HEADING if len(HEADING) <= geometry.columns else SHORT_HEADING[: geometry.columns]
    if geometry.rows == 1:
        pages = [(_one_row(name, geometry.columns),) for name in names]
        return tuple(pages[:max_pages])
    per_page = min(geometry.rows, MAX_UNITS_PER_PAGE) - 1
    pages = []
    current: list[str] = []
    for name in names:
        candidate = (heading, *current, name)
        if current and (len(current) >= per_page or _words(candidate) > MAX_WORDS_PER_PAGE):
            pages.append((heading, *current))
            current = []
        current.append(name)
    pages.append((heading, *current))
    return tuple(pages[:max_pages])


def announced_pages(
    coming: Iterable[tuple[str, int]],
    geometry: SignGeometry,
    max_pages: int,
    already: Iterable[str] = (),
) -> tuple[Page, ...]:
    """A page per destination a rider is coming for, (name, minutes left) given oldest first.

    Three rows: heading, name, "DANS 10 MIN"; two rows: name, "DANS 10 MIN"; one row:
    "NAME 10 MIN" (the name cut first, so the time always shows).
    """
    pages: list[Page] = []
    seen = [_unit(name, geometry) for name in already]
    for name, minutes in coming:
        text = _unit(name, geometry)
        if not text or text in seen:
            continue
        seen.append(text)
        when = f"DANS {minutes} MIN"[: geometry.columns]
        if geometry.rows >= 3:
            heading = HEADING if len(HEADING) <= geometry.columns else SHORT_HEADING
            pages.append((heading[: geometry.columns], text, when))
        elif geometry.rows == 2:
            pages.append((text, when))
        else:
            tail = f" {minutes} MIN"
            pages.append((text[: max(1, geometry.columns - len(tail))].rstrip() + tail,))
    return tuple(pages[:max_pages])


def _unit(name: str, geometry: SignGeometry) -> str:
    """A destination as one unit of a sign (the words a page leaves beside its time)."""
    return " ".join(sign_text(name, geometry.columns).split()[: MAX_WORDS_PER_PAGE - 4])


def minutes_left(now: datetime, at: datetime) -> int:
    """Whole minutes until `at`, rounded up, at least 1 (what a sign says of a coming rider)."""
    seconds = (at - now).total_seconds()
    return max(1, -int(-seconds // 60))


def lease_expiry(now: datetime, lease: timedelta, deadlines: Iterable[datetime]) -> datetime:
    """When a display must blank itself: the lease, cut to the earliest deadline it shows."""
    return min([now + lease, *deadlines])


def display(
    previous_seq: int,
    now: datetime,
    pages: tuple[Page, ...],
    lease: timedelta,
    deadlines: Iterable[datetime],
) -> SignDisplay:
    """A fresh display for a sign."""
    return SignDisplay(
        seq=next_seq(previous_seq, now),
        pages=pages,
        expires_at=lease_expiry(now, lease, deadlines),
    )


def _one_row(name: str, columns: int) -> str:
    """Heading and destination on one row, with the short heading if the full one cuts the name."""
    for heading in (HEADING, SHORT_HEADING):
        row = f"{heading} {name}"
        if len(row) <= columns:
            return row
    return row[:columns].rstrip()


def _words(page: Page) -> int:
    return sum(len(row.split()) for row in page)
