"""Sign arbitration: pages, geometry, leases and sequence numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher import sign_pages
from dispatcher.effects import Page, ShowOnSign, SignDisplay
from dispatcher.events import Actor, DeadlineReached, Event, LeaseRefreshDue, RideCancelled
from dispatcher.model import Network, RequestId, SignGeometry
from tests.core.core_kit import (
    CALAIS,
    CALAIS_SUD,
    DUNKERQUE,
    FRETHUN,
    GRAVELINES,
    GRAVELINES_SUD,
    HEADING,
    LINE,
    MARCK,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    PMV_GRAVELINES,
    PMV_GRAVELINES_SUD,
    PMV_MARCK,
    T0,
    Core,
    api,
    ms,
    only,
    pages_by_sign,
    press,
)

THREE_ROWS = SignGeometry(rows=3, columns=18)
LEASE = timedelta(seconds=90)


def pages(*rows: tuple[str, ...]) -> tuple[Page, ...]:
    return rows


# --- composing pages --------------------------------------------------------------------------


def test_no_destination_is_a_blank_sign() -> None:
    assert sign_pages.compose_pages([], THREE_ROWS, 3) == ()


def test_two_destinations_a_page_oldest_first() -> None:
    composed = sign_pages.compose_pages(["Dunkerque", "Gravelines", "Marck"], THREE_ROWS, 3)
    assert composed == pages((HEADING, "DUNKERQUE", "GRAVELINES"), (HEADING, "MARCK"))


def test_a_destination_asked_twice_shows_once_at_its_oldest_place() -> None:
    composed = sign_pages.compose_pages(["Marck", "Dunkerque", "Marck"], THREE_ROWS, 3)
    assert composed == pages((HEADING, "MARCK", "DUNKERQUE"))


@pytest.mark.parametrize("rows", [3, 4, 8])
def test_never_more_than_three_information_units(rows: int) -> None:
    names = ["A", "B", "C", "D", "E"]
    composed = sign_pages.compose_pages(names, SignGeometry(rows=rows, columns=18), 5)
    assert composed == pages((HEADING, "A", "B"), (HEADING, "C", "D"), (HEADING, "E"))


def test_seven_words_fit_a_page_eight_do_not() -> None:
    wide = SignGeometry(rows=3, columns=40)
    seven = sign_pages.compose_pages(["Loon Plage Centre", "Port Est Dunkerque"], wide, 3)
    assert seven == pages((HEADING, "LOON PLAGE CENTRE", "PORT EST DUNKERQUE"))
    eight = sign_pages.compose_pages(["Loon Plage Centre", "Port Est de Dunkerque"], wide, 3)
    assert eight == pages((HEADING, "LOON PLAGE CENTRE"), (HEADING, "PORT EST DE DUNKERQUE"))


def test_a_very_long_name_is_cut_to_seven_words_a_page() -> None:
    wide = SignGeometry(rows=3, columns=80)
    name = "Zone Industrielle et Portuaire de Dunkerque Est Nord"
    (page,) = sign_pages.compose_pages([name], wide, 3)
    assert page == (HEADING, "ZONE INDUSTRIELLE ET PORTUAIRE DE DUNKERQUE")
    assert sum(len(row.split()) for row in page) == 7


def test_upper_case_without_accents() -> None:
    names = ["Fréthun", "Bourbourg-l'Église", "  Saint   Omer "]
    composed = sign_pages.compose_pages(names, THREE_ROWS, 3)
    assert composed == pages((HEADING, "FRETHUN", "BOURBOURG-L'EGLISE"), (HEADING, "SAINT OMER"))
    assert sign_pages.sign_text("Œuvre à Sète", 18) == "OEUVRE A SETE"


def test_columns_cut_the_text_and_shorten_the_heading() -> None:
    narrow = SignGeometry(rows=3, columns=8)
    composed = sign_pages.compose_pages(["Dunkerque", "Grande-Synthe"], narrow, 3)
    assert composed == pages(("COVOIT.", "DUNKERQU", "GRANDE-S"))
    assert sign_pages.compose_pages(["Marck"], SignGeometry(rows=3, columns=5), 3) == pages(
        ("COVOI", "MARCK"),
    )
    # A cut that ends on a space leaves no trailing blank.
    assert sign_pages.sign_text("Saint-Pol-sur-Mer Ouest", 18) == "SAINT-POL-SUR-MER"


def test_two_rows_give_one_destination_a_page() -> None:
    composed = sign_pages.compose_pages(["Dunkerque", "Marck"], SignGeometry(rows=2), 3)
    assert composed == pages((HEADING, "DUNKERQUE"), (HEADING, "MARCK"))


def test_one_row_gives_heading_and_destination_on_that_row() -> None:
    one_row = SignGeometry(rows=1, columns=24)
    composed = sign_pages.compose_pages(["Dunkerque", "Marck"], one_row, 3)
    assert composed == pages(("COVOITURAGE DUNKERQUE",), ("COVOITURAGE MARCK",))
    # The short heading rather than a cut destination, when that is enough to fit.
    short = SignGeometry(rows=1, columns=18)
    assert sign_pages.compose_pages(["Dunkerque", "Marck"], short, 3) == pages(
        ("COVOIT. DUNKERQUE",), ("COVOITURAGE MARCK",)
    )
    tiny = SignGeometry(rows=1, columns=10)
    assert sign_pages.compose_pages(["Dunkerque"], tiny, 3) == pages(("COVOIT. DU",))


@pytest.mark.parametrize("max_pages", [1, 2, 3])
def test_max_pages_keeps_the_oldest_destinations(max_pages: int) -> None:
    names = [f"Stop {letter}" for letter in "ABCDEFGH"]
    composed = sign_pages.compose_pages(names, THREE_ROWS, max_pages)
    expected = pages(
        (HEADING, "STOP A", "STOP B"), (HEADING, "STOP C", "STOP D"), (HEADING, "STOP E", "STOP F")
    )
    assert composed == expected[:max_pages]
    one_row = sign_pages.compose_pages(names, SignGeometry(rows=1, columns=24), max_pages)
    assert len(one_row) == max_pages


# --- pages through step -----------------------------------------------------------------------


def test_several_destinations_at_a_stop_show_oldest_request_first(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, MARCK, "r1", code="0001"), T0)
    core.run(press(CALAIS, DUNKERQUE, "r2", code="0002"), T0 + timedelta(seconds=1))
    effects = core.run(api(CALAIS, GRAVELINES, "r3", code="0003"), T0 + timedelta(seconds=2))

    both = pages((HEADING, "MARCK", "DUNKERQUE"), (HEADING, "GRAVELINES"))
    assert pages_by_sign(effects) == {PMV_CALAIS_1: both, PMV_CALAIS_2: both}

    # A newer rider for Marck changes nothing; once the older one leaves, Marck goes last.
    assert (
        only(core.run(api(CALAIS, MARCK, "r4", code="0004"), T0 + timedelta(seconds=3)), ShowOnSign)
        == []
    )
    cancel = RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r1"))
    effects = core.run(cancel, T0 + timedelta(seconds=4))
    reordered = pages((HEADING, "DUNKERQUE", "GRAVELINES"), (HEADING, "MARCK"))
    assert pages_by_sign(effects) == {PMV_CALAIS_1: reordered, PMV_CALAIS_2: reordered}


def test_each_sign_follows_its_own_geometry(network: Network) -> None:
    core = Core(network)
    effects = core.run(api(GRAVELINES, DUNKERQUE, "r1"), T0)
    assert pages_by_sign(effects) == {PMV_GRAVELINES: pages((HEADING, "DUNKERQUE"))}

    core.run(api(GRAVELINES_SUD, FRETHUN, "r2", code="0002"), T0)
    effects = core.run(api(GRAVELINES_SUD, CALAIS_SUD, "r3", code="0003"), T0)
    assert pages_by_sign(effects) == {
        PMV_GRAVELINES_SUD: pages(("COVOITURAGE FRETHUN",), ("COVOITURAGE CALAIS",))
    }


def test_requests_at_one_stop_never_light_another_stops_signs(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    core.run(press(MARCK, GRAVELINES, "r2", code="0002"), T0)
    assert {sign: shown.pages for sign, shown in core.state.signs.items()} == {
        PMV_CALAIS_1: pages((HEADING, "DUNKERQUE")),
        PMV_CALAIS_2: pages((HEADING, "DUNKERQUE")),
        PMV_MARCK: pages((HEADING, "GRAVELINES")),
    }


# --- leases -----------------------------------------------------------------------------------


def test_a_display_leases_the_sign_for_the_line_lease(network: Network) -> None:
    core = Core(network)
    (shown, _) = only(core.run(press(CALAIS, DUNKERQUE, "r1"), T0), ShowOnSign)
    assert shown.display.expires_at == T0 + LEASE


def test_lease_refresh_renews_every_lit_sign_and_only_those(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="0001"), T0)
    core.run(press(MARCK, DUNKERQUE, "r2", code="0002"), T0)
    previous = dict(core.state.signs)
    at = T0 + timedelta(seconds=60)

    effects = core.run(LeaseRefreshDue(), at)

    calais = pages((HEADING, "DUNKERQUE"))
    assert effects == [
        ShowOnSign(LINE, PMV_CALAIS_1, SignDisplay(ms(at), calais, at + LEASE)),
        ShowOnSign(LINE, PMV_CALAIS_2, SignDisplay(ms(at), calais, at + LEASE)),
        ShowOnSign(LINE, PMV_MARCK, SignDisplay(ms(at), calais, at + LEASE)),
    ]
    for effect in only(effects, ShowOnSign):
        assert effect.display.seq > previous[effect.sign_id].seq
        assert effect.display.expires_at > previous[effect.sign_id].expires_at

    # Once Calais is blank, only Marck is renewed.
    core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r1")), at)
    effects = core.run(LeaseRefreshDue(), at + timedelta(seconds=60))
    assert [effect.sign_id for effect in only(effects, ShowOnSign)] == [PMV_MARCK]
    assert effects == only(effects, ShowOnSign)


def test_lease_refresh_with_nothing_lit_does_nothing(network: Network) -> None:
    core = Core(network)
    assert core.run(LeaseRefreshDue(), T0) == []
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r1")), T0)
    assert core.run(LeaseRefreshDue(), T0 + timedelta(seconds=30)) == []


def test_a_lease_never_outlives_the_earliest_deadline(fallback_network: Network) -> None:
    core = Core(fallback_network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="0001"), T0)  # deadline T0 + 15 min
    core.run(api(CALAIS, MARCK, "r2", code="0002"), T0 + timedelta(minutes=5))
    deadline = T0 + timedelta(minutes=15)
    for seconds in range(0, 15 * 60, 30):
        at = T0 + timedelta(minutes=5, seconds=seconds)
        if at >= deadline:
            break
        for effect in only(core.run(LeaseRefreshDue(), at), ShowOnSign):
            assert effect.display.expires_at == min(at + LEASE, deadline)
    last = core.state.signs[PMV_CALAIS_1]
    assert last.expires_at == deadline

    # Past the first deadline the lease follows the next one.
    core.run(DeadlineReached(RequestId("r1")), deadline)
    for effect in only(core.run(LeaseRefreshDue(), deadline), ShowOnSign):
        assert effect.display.expires_at == deadline + LEASE
        assert effect.display.pages == pages((HEADING, "MARCK"))


def test_a_lapsed_sign_is_lit_again_by_the_next_request(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="0001"), T0)

    # Before the lease lapses a rider for the same destination changes no sign.
    soon = T0 + timedelta(seconds=10)
    assert only(core.run(api(CALAIS, DUNKERQUE, "r2", code="0002"), soon), ShowOnSign) == []

    # No refresh came (a stalled timer): the signs blanked themselves at T0 + 90 s.
    late = T0 + timedelta(minutes=5)
    effects = core.run(api(CALAIS, DUNKERQUE, "r3", code="0003"), late)
    lit = SignDisplay(ms(late), pages((HEADING, "DUNKERQUE")), late + LEASE)
    assert only(effects, ShowOnSign) == [
        ShowOnSign(LINE, PMV_CALAIS_1, lit),
        ShowOnSign(LINE, PMV_CALAIS_2, lit),
    ]


# --- sequence numbers -------------------------------------------------------------------------


def test_seq_increases_per_sign_even_within_one_millisecond(network: Network) -> None:
    core = Core(network)
    seqs: list[int] = []
    events: list[Event] = [
        press(CALAIS, DUNKERQUE, "r1", code="0001"),
        press(CALAIS, MARCK, "r2", code="0002"),
        RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r1")),
        LeaseRefreshDue(),
        RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r2")),
    ]
    for event in events:
        for effect in only(core.run(event, T0), ShowOnSign):
            if effect.sign_id == PMV_CALAIS_1:
                seqs.append(effect.display.seq)
    assert seqs == [ms(T0) + n for n in range(5)]


def test_seq_is_at_least_the_time_in_milliseconds_so_it_survives_a_restart(
    network: Network,
) -> None:
    core = Core(network)
    for n in range(20):
        core.run(api(CALAIS, DUNKERQUE if n % 2 else MARCK, f"r{n}", code=f"{n:04d}"), T0)
        core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId(f"r{n}")), T0)
    core.run(api(CALAIS, DUNKERQUE, "last", code="0099"), T0)
    before = core.state.signs[PMV_CALAIS_1].seq
    assert before > ms(T0)

    restart_at = T0 + timedelta(seconds=1)
    effects = core.restart(list(core.state.requests.values()), restart_at)
    after = {effect.sign_id: effect.display.seq for effect in only(effects, ShowOnSign)}
    assert after[PMV_CALAIS_1] == ms(restart_at) > before
    assert all(seq >= ms(restart_at) for seq in after.values())
