"""Wait estimates: exact median/p90 over seeded histories, the floor, the widening, the model."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.model import Line, LineId, StopId
from dispatcher.request_machine import Cause, RequestState
from line_service.estimates.estimator import WaitEstimator, load_corridors
from line_service.estimates.wait_estimate import (
    EstimateSource,
    WaitEstimate,
    WaitObservation,
    announced_driver_minutes,
    estimate_wait,
    whole_minutes,
)
from line_service.network.lines_file import load_network
from line_service.planning.rates import hourly_rates
from line_service.storage.store import Store
from tests.support.requests import ride_request

CONFIG = Path(__file__).parent.parent / "config"
NETWORK = load_network(CONFIG / "lines.yaml")
LINE = NETWORK.line(LineId("calais-dunkerque"))
assert LINE is not None
MARCK, DUNKERQUE = StopId("marck-est"), StopId("dunkerque-est")
GRAVELINES = StopId("gravelines-est")
# Tuesday 3 March 2026, 07:10 in Paris (UTC+1): a morning peak hour of the line.
TUESDAY_0710 = datetime(2026, 3, 3, 6, 10, tzinfo=UTC)
NOW = TUESDAY_0710 + timedelta(weeks=1)


def _line() -> Line:
    assert LINE is not None
    return LINE


def _observation(minutes: float, weekday: int = 1, hour: int = 7) -> WaitObservation:
    return WaitObservation(MARCK, DUNKERQUE, weekday, hour, timedelta(minutes=minutes))


def test_median_and_p90_of_the_exact_slot() -> None:
    waits = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 30]  # 12 observations
    found = estimate_wait(
        [_observation(m) for m in waits], MARCK, DUNKERQUE, 1, 7, model_mean=None, guarantee=None
    )
    assert found is not None
    assert found.source is EstimateSource.HISTORY
    assert found.observations == 12
    assert found.median == timedelta(minutes=6.5)  # (6 + 7) / 2
    assert found.p90 == timedelta(minutes=11)  # nearest rank: ceil(0.9 × 12) = 11th
    capped = estimate_wait(
        [_observation(m) for m in waits],
        MARCK,
        DUNKERQUE,
        1,
        7,
        model_mean=None,
        guarantee=timedelta(minutes=10),
    )
    assert capped is not None
    assert capped.p90 == timedelta(minutes=10)


def test_thin_history_widens_then_falls_back_to_the_model() -> None:
    history = [_observation(4)] * 9 + [_observation(8, weekday=3)]  # 9 on Tuesday, 1 Thursday
    any_weekday = estimate_wait(history, MARCK, DUNKERQUE, 1, 7, model_mean=None, guarantee=None)
    assert any_weekday is not None
    assert any_weekday.source is EstimateSource.HISTORY_ANY_WEEKDAY
    assert (any_weekday.observations, any_weekday.median) == (10, timedelta(minutes=4))
    spread = [_observation(2, hour=h) for h in (7, 8, 16, 17, 18)] * 2
    any_hour = estimate_wait(spread, MARCK, DUNKERQUE, 1, 7, model_mean=None, guarantee=None)
    assert any_hour is not None
    assert any_hour.source is EstimateSource.HISTORY_ANY_HOUR
    assert any_hour.observations == 10
    # Other destinations never count for this one.
    other = [WaitObservation(MARCK, GRAVELINES, 1, 7, timedelta(minutes=1))] * 20
    mean = timedelta(minutes=6)
    model = estimate_wait(other, MARCK, DUNKERQUE, 1, 7, model_mean=mean, guarantee=None)
    assert model is not None
    assert model.source is EstimateSource.MODEL
    assert model.observations == 0
    assert model.median == mean * math.log(2)
    assert model.p90 == mean * math.log(10)
    assert estimate_wait(other, MARCK, DUNKERQUE, 1, 7, model_mean=None, guarantee=None) is None


def test_an_announced_driver_is_told_when_within_the_expected_wait() -> None:
    estimate = WaitEstimate(timedelta(minutes=6), timedelta(minutes=15), EstimateSource.MODEL, 0)
    assert announced_driver_minutes(estimate, timedelta(minutes=3, seconds=40)) == 4
    assert announced_driver_minutes(estimate, timedelta(minutes=6)) == 6
    assert announced_driver_minutes(estimate, timedelta(minutes=7)) is None  # no better news
    assert announced_driver_minutes(None, timedelta(minutes=12)) == 12  # no estimate: say it
    assert announced_driver_minutes(estimate, None) is None
    assert announced_driver_minutes(estimate, timedelta(minutes=-1)) is None  # passed already


def test_whole_minutes_for_riders() -> None:
    assert whole_minutes(timedelta(seconds=20)) == 1
    assert whole_minutes(timedelta(minutes=4, seconds=31)) == 5


def _seed(store: Store, waits_minutes: list[int], *, start: datetime, prefix: str) -> None:
    """Requests at Marck towards Dunkerque, a week apart, each ended after its wait."""
    for index, minutes in enumerate(waits_minutes):
        asked = start + timedelta(minutes=index)  # same local hour and weekday
        request_id = f"{prefix}{index}"
        waiting = ride_request(request_id, asked)
        left = asked + timedelta(minutes=minutes)
        state = RequestState.FALLBACK if minutes >= 15 else RequestState.PICKED_UP
        cause = Cause.GUARANTEE_REACHED if state is RequestState.FALLBACK else Cause.CODE_VALIDATED
        done = ride_request(request_id, left, created_at=asked, state=state, cause=cause)
        store.save([(waiting, None), (done, RequestState.WAITING)])


def test_estimator_reads_the_stored_history(store: Store) -> None:
    waits = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 15]  # the 15 ends in FALLBACK: it counts too
    _seed(store, waits, start=TUESDAY_0710, prefix="r")
    cancelled = ride_request(
        "c1",
        TUESDAY_0710 + timedelta(minutes=2),
        created_at=TUESDAY_0710,
        state=RequestState.CANCELLED,
        cause=Cause.RIDER_CANCELLED,
    )
    store.save([(ride_request("c1", TUESDAY_0710), None), (cancelled, RequestState.WAITING)])
    _seed(store, [1] * 20, start=NOW - timedelta(weeks=9), prefix="old")  # out of the window
    estimator = WaitEstimator(NETWORK, store.finished_waits, lambda: NOW, lambda: {})
    found = estimator.estimate_now(_line(), MARCK, DUNKERQUE, NOW)
    assert found is not None
    assert found.source is EstimateSource.HISTORY
    assert found.observations == 11
    assert found.median == timedelta(minutes=4)
    assert found.p90 == timedelta(minutes=9)  # nearest rank: ceil(0.9 × 11) = 10th of 11


def test_without_history_the_corridor_model_answers(store: Store) -> None:
    corridors = load_corridors(CONFIG / "corridors.yaml")
    estimator = WaitEstimator(NETWORK, store.finished_waits, lambda: NOW, lambda: corridors)
    found = estimator.estimate_now(_line(), MARCK, DUNKERQUE, NOW)
    assert found is not None
    assert found.source is EstimateSource.MODEL
    rates = hourly_rates(corridors["calais-dunkerque"], 7)
    mean = timedelta(minutes=60 / rates.stopping_drivers_per_hour)
    assert found.median == min(mean * math.log(2), timedelta(minutes=15))
    # The way back is the corridor's reverse.
    back = estimator.estimate_now(_line(), StopId("gravelines-ouest"), StopId("calais-ouest"), NOW)
    reverse = hourly_rates(corridors["calais-dunkerque"], 7, reverse=True)
    assert back is not None
    assert back.source is EstimateSource.MODEL
    expected = timedelta(minutes=60 / reverse.stopping_drivers_per_hour) * math.log(2)
    assert back.median == min(expected, timedelta(minutes=15))
    # No corridor for the line, no history: no estimate.
    bare = WaitEstimator(NETWORK, store.finished_waits, lambda: NOW, dict)
    assert bare.estimate_now(_line(), MARCK, DUNKERQUE, NOW) is None


def test_a_failing_database_keeps_the_last_history_then_the_model_answers() -> None:
    now = [NOW]
    history = [(MARCK, DUNKERQUE, NOW - timedelta(weeks=1), NOW - timedelta(weeks=1, minutes=-3))]
    calls: list[datetime] = []

    def waits(_line: str, since: datetime) -> list[tuple[StopId, StopId, datetime, datetime]]:
        calls.append(since)
        if len(calls) > 1:
            raise OSError("database down")
        return history * 10

    model = {"calais-dunkerque": load_corridors(CONFIG / "corridors.yaml")["calais-dunkerque"]}
    estimator = WaitEstimator(NETWORK, waits, lambda: now[0], lambda: model)
    first = estimator.estimate_now(_line(), MARCK, DUNKERQUE, NOW)
    assert first is not None
    assert (first.source, first.median) == (EstimateSource.HISTORY, timedelta(minutes=3))
    now[0] = NOW + timedelta(minutes=6)  # past the refresh: read again, and it fails
    kept = estimator.estimate_now(_line(), MARCK, DUNKERQUE, NOW)
    assert kept == first
    assert len(calls) == 2
    fresh = WaitEstimator(NETWORK, waits, lambda: now[0], lambda: model)  # fails from the start
    found = fresh.estimate_now(_line(), MARCK, DUNKERQUE, NOW)
    assert found is not None
    assert found.source is EstimateSource.MODEL
