"""Test support for the core's state machine: the test networks, the people and messages it
plays with, and the sign oracle written without the core's own page composition."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from dispatcher.effects import (
    Page,
)
from dispatcher.events import (
    RideRequested,
)
from dispatcher.model import Network, RequestId, StopId
from dispatcher.request_machine import RequestState, Source
from tests.core.conftest import WEEKDAY_PEAKS, build_network
from tests.core.core_kit import (
    BOULOGNE,
    CALAIS,
    CALAIS_SUD,
    DUNKERQUE,
    DUNKERQUE_OUEST,
    FRETHUN,
    GRAVELINES,
    GRAVELINES_SUD,
    MARCK,
    TERMINAL_OF,
    WIMEREUX,
)

# How each place name must read on a sign (upper case, accents gone), written out by hand.
ON_SIGN: dict[StopId, str] = {
    CALAIS: "CALAIS",
    MARCK: "MARCK",
    GRAVELINES: "GRAVELINES",
    DUNKERQUE: "DUNKERQUE",
    DUNKERQUE_OUEST: "DUNKERQUE",
    GRAVELINES_SUD: "GRAVELINES",
    FRETHUN: "FRETHUN",
    CALAIS_SUD: "CALAIS",
    BOULOGNE: "BOULOGNE",
    WIMEREUX: "WIMEREUX",
}
HEADINGS = ("COVOITURAGE", "COVOIT.")
MAX_UNITS = 3  # IISR art. 147: at most 3 information units a page
MAX_WORDS = 7
STOPS = sorted(ON_SIGN)
# Calais-Est twice: a busy stop reaches its cap of waiting riders.
PRESS_STOPS = [*sorted(TERMINAL_OF), CALAIS, CALAIS]
DESTINATIONS = [*STOPS, StopId("nowhere")]
PHONES = ["+33600000001", "+33600000002", "+33600000003"]
CODE_CANDIDATES = st.sampled_from(["4821", "4821", "4822", "0000", "9999", "12", "abcd", "²³"])
# Operator texts already in sign form (ASCII upper case, one row a page, ≤ 12 columns), so the
# expected pages are the posted pages; `()` blanks the sign.
MESSAGE_PAGES: list[tuple[Page, ...]] = [
    (),
    (("TRAVAUX",),),
    (("ROUTE BARREE",), ("DEVIATION",)),
]
MESSAGE_IDS = ["m0", "m1"]
LEASE_REFRESH = timedelta(seconds=30)
RETENTION = timedelta(minutes=60)  # finished requests are forgotten after 2 × max_wait
PARIS = ZoneInfo("Europe/Paris")
PEAKS = ((time(6, 30), time(9, 30)), (time(16, 0), time(19, 30)))


@cache
def networks() -> dict[str, Network]:
    return {
        "plain": build_network(),
        "fallback": build_network(has_fallback=True),
        "peak": build_network(service_hours=WEEKDAY_PEAKS),
    }


@dataclass
class Rider:
    """The model of one request: where, whither, who, and where it stands."""

    request_id: RequestId
    event: RideRequested
    state: RequestState
    code: str | None
    asked_at: datetime
    deadline_at: datetime
    updated_at: datetime
    sources: set[Source] = field(default_factory=set)

    @property
    def holds_code(self) -> bool:
        return self.state in (RequestState.WAITING, RequestState.ANNOUNCED, RequestState.FALLBACK)

    @property
    def live(self) -> bool:
        return self.state in (RequestState.WAITING, RequestState.ANNOUNCED)


@dataclass
class Message:
    pages: tuple[Page, ...]
    priority: int
    posted_at: datetime
    expires_at: datetime


ANNOUNCE_GRACE = timedelta(minutes=10)
MAX_ANNOUNCE = timedelta(minutes=30)
ANNOUNCE_MINUTES = [1, 10, 30, 45]  # 45: beyond the 30 a rider may announce (cut to 30)


def is_announced_page(page: Page) -> bool:
    """A page about a rider on the way: its last row ends "N MIN"."""
    words = page[-1].split()
    return len(words) >= 2 and words[-1] == "MIN" and words[-2].isdecimal()


def announced_on(pages: tuple[Page, ...]) -> list[tuple[str, int]]:
    """(name, minutes) of each page about a rider on the way, in order."""
    found: list[tuple[str, int]] = []
    for page in pages:
        if not is_announced_page(page):
            continue
        rows = [row for row in page if row not in HEADINGS]
        minutes = int(rows[-1].split()[-2])
        if len(rows) == 1:  # one row: "NAME 10 MIN"
            name = " ".join(rows[0].split()[:-2])
        else:  # "NAME", "DANS 10 MIN"
            assert rows[-1] == f"DANS {minutes} MIN", page
            name = rows[0]
        found.append((name, minutes))
    return found


def destinations_on(pages: tuple[Page, ...]) -> list[str]:
    """The destination names on a sign's pages of waiting riders, in order (headings taken
    away; pages about riders on the way left out)."""
    names: list[str] = []
    for page in pages:
        if is_announced_page(page):
            continue
        for row in page:
            if row in HEADINGS:
                continue
            for heading in HEADINGS:
                row = row.removeprefix(f"{heading} ")
            names.append(row)
    return names


def check_wording(pages: tuple[Page, ...]) -> None:
    """Road-sign rules: upper-case ASCII, at most 3 units and 7 words a page, ≤ 3 pages."""
    assert len(pages) <= 3
    for page in pages:
        assert 1 <= len(page) <= MAX_UNITS, page
        assert sum(len(row.split()) for row in page) <= MAX_WORDS, page
        for row in page:
            assert row.isascii(), row
            assert row == row.upper(), row
            assert row.strip() == row, row
