"""Adapter: French public holidays as a frozenset of dates, for the core's service calendar."""

from __future__ import annotations

from datetime import date

FIRST_YEAR = 2024
LAST_YEAR = 2035


def french_public_holidays(today: date | None = None) -> frozenset[date]:
    """Every French public holiday (national list, metropolitan France) from 2024 to 2035.

    The range widens to keep at least one year before and ten years after `today`, so a long
    running service never silently reopens on holidays.
    """
    import holidays  # ~30 ms to import: only for lines that close on public holidays

    year = (today or date.today()).year
    years = range(min(FIRST_YEAR, year - 1), max(LAST_YEAR, year + 10) + 1)
    return frozenset(holidays.country_holidays("FR", years=years).keys())
