"""Fixtures of the core tests: a small network built by hand from dispatcher.model (no YAML).

Line calais-dunkerque, two directions:
  to-dunkerque: calais-est (terminal, 2 signs) → marck (terminal, 1 sign) → gravelines (no
                terminal, a 2-row 12-column sign) → dunkerque-centre (terminal, no sign)
  to-calais:    dunkerque-ouest (terminal, 1 sign) → gravelines-sud (a 1-row sign) → frethun
                ("Fréthun", 1 sign) → calais-sud
Line boulogne-calais: boulogne (terminal, 1 sign) → wimereux.
"""

from __future__ import annotations

from datetime import time

import pytest

from dispatcher.model import (
    Direction,
    DirectionId,
    Line,
    LineTuning,
    Network,
    ServiceHours,
    SignGeometry,
    SignSpec,
    Stop,
    TimeWindow,
    Weekday,
)
from tests.core.core_kit import (
    BOULOGNE,
    CALAIS,
    CALAIS_SUD,
    DUNKERQUE,
    DUNKERQUE_OUEST,
    FRETHUN,
    GRAVELINES,
    GRAVELINES_SUD,
    LINE,
    MARCK,
    OTHER_LINE,
    PMV_BOULOGNE,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    PMV_DUNKERQUE_OUEST,
    PMV_FRETHUN,
    PMV_GRAVELINES,
    PMV_GRAVELINES_SUD,
    PMV_MARCK,
    T_BOULOGNE,
    T_CALAIS,
    T_DUNKERQUE,
    T_DUNKERQUE_OUEST,
    T_MARCK,
    WIMEREUX,
)

PEAKS = (TimeWindow(time(6, 30), time(9, 30)), TimeWindow(time(16, 0), time(19, 30)))
WEEKDAY_PEAKS = ServiceHours(
    {day: PEAKS for day in (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)}
)


def build_network(
    *,
    has_fallback: bool = False,
    service_hours: ServiceHours | None = None,
    tuning: LineTuning | None = None,
) -> Network:
    """The test network; options change the calais-dunkerque line only."""
    to_dunkerque = Direction(
        DirectionId("to-dunkerque"),
        "Dunkerque",
        (
            Stop(
                id=CALAIS,
                name="Calais",
                code="CAL",
                lat=50.9481,
                lon=1.8564,
                km=0.0,
                terminal=T_CALAIS,
                signs=(SignSpec(PMV_CALAIS_1, 250), SignSpec(PMV_CALAIS_2, 150)),
            ),
            Stop(
                id=MARCK,
                name="Marck",
                code="MAR",
                lat=50.9489,
                lon=1.9538,
                km=8.0,
                terminal=T_MARCK,
                signs=(SignSpec(PMV_MARCK, 200),),
            ),
            Stop(
                id=GRAVELINES,
                name="Gravelines",
                code="GRA",
                lat=50.9865,
                lon=2.1281,
                km=22.0,
                terminal=None,
                signs=(SignSpec(PMV_GRAVELINES, 300, SignGeometry(rows=2, columns=12)),),
            ),
            Stop(
                id=DUNKERQUE,
                name="Dunkerque",
                code="DUN",
                lat=51.0343,
                lon=2.3768,
                km=40.0,
                terminal=T_DUNKERQUE,
                signs=(),
            ),
        ),
    )
    to_calais = Direction(
        DirectionId("to-calais"),
        "Calais",
        (
            Stop(
                id=DUNKERQUE_OUEST,
                name="Dunkerque",
                code="DKO",
                lat=51.0301,
                lon=2.3500,
                km=0.0,
                terminal=T_DUNKERQUE_OUEST,
                signs=(SignSpec(PMV_DUNKERQUE_OUEST, 250),),
            ),
            Stop(
                id=GRAVELINES_SUD,
                name="Gravelines",
                code="GRS",
                lat=50.9850,
                lon=2.1300,
                km=18.0,
                terminal=None,
                signs=(SignSpec(PMV_GRAVELINES_SUD, 200, SignGeometry(rows=1, columns=24)),),
            ),
            Stop(
                id=FRETHUN,
                name="Fréthun",
                code="FRE",
                lat=50.9330,
                lon=1.8220,
                km=36.0,
                terminal=None,
                signs=(SignSpec(PMV_FRETHUN, 150),),
            ),
            Stop(
                id=CALAIS_SUD,
                name="Calais",
                code="CAS",
                lat=50.9400,
                lon=1.8500,
                km=40.0,
                terminal=None,
                signs=(),
            ),
        ),
    )
    main = Line(
        id=LINE,
        name="Calais ⇄ Dunkerque",
        timezone="Europe/Paris",
        directions=(to_dunkerque, to_calais),
        service_hours=service_hours,
        tuning=tuning or LineTuning(),
        has_fallback=has_fallback,
    )
    other = Line(
        id=OTHER_LINE,
        name="Boulogne ⇄ Calais",
        timezone="Europe/Paris",
        directions=(
            Direction(
                DirectionId("to-calais"),
                "Calais",
                (
                    Stop(
                        id=BOULOGNE,
                        name="Boulogne",
                        code="BOU",
                        lat=50.7264,
                        lon=1.6147,
                        km=0.0,
                        terminal=T_BOULOGNE,
                        signs=(SignSpec(PMV_BOULOGNE, 200),),
                    ),
                    Stop(
                        id=WIMEREUX,
                        name="Wimereux",
                        code="WIM",
                        lat=50.7700,
                        lon=1.6100,
                        km=6.0,
                        terminal=None,
                        signs=(),
                    ),
                ),
            ),
        ),
    )
    return Network((main, other))


@pytest.fixture(scope="session")
def network() -> Network:
    """Always open, no fallback: a request waits max_wait (30 min) and then expires."""
    return build_network()


@pytest.fixture(scope="session")
def fallback_network() -> Network:
    """Always open, with a fallback: the wait guarantee (15 min) dispatches a taxi."""
    return build_network(has_fallback=True)


@pytest.fixture(scope="session")
def peak_network() -> Network:
    """Open Mon–Fri 06:30–09:30 and 16:00–19:30 (Europe/Paris), no fallback."""
    return build_network(service_hours=WEEKDAY_PEAKS)
