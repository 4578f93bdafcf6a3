"""Persistence on SQLite and PostgreSQL: what is saved comes back the same, history in order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dispatcher.model import RequestId, TerminalId
from dispatcher.request_machine import (
    Cause,
    DeviceRequestId,
    RequestState,
    RideRequest,
    Source,
    transition,
)
from line_service.storage.store import Store
from tests.support.requests import waiting_request

NOW = datetime(2026, 11, 23, 6, 45, 12, 345000, tzinfo=UTC)


def waiting(request_id: str, at: datetime = NOW) -> RideRequest:
    return waiting_request(
        request_id, at, terminal="t-marck-est", seats=2, wait=timedelta(minutes=30)
    )


def test_a_saved_request_comes_back_identical_with_aware_times(store: Store) -> None:
    request = waiting("r1")
    store.save([(request, None)])
    assert store.request("r1") == request
    assert store.live_requests(NOW, timedelta(hours=1)) == [request]


def test_transitions_are_upserted_and_recorded_in_order(store: Store) -> None:
    request = waiting("r2")
    picked = transition(request, Cause.CODE_VALIDATED, NOW + timedelta(minutes=3), "driver-7")
    store.save([(request, None)])
    store.save([(picked, request.state)])
    assert store.request("r2") == picked
    history = [(row.from_state, row.to_state, row.cause) for row in store.history("r2")]
    assert history == [
        (None, "waiting", "requested"),
        ("waiting", "picked_up", "code_validated"),
    ]


def test_restore_window_keeps_open_requests_and_recent_finished_ones(store: Store) -> None:
    old_waiting = waiting("old-waiting", NOW - timedelta(days=2))
    old_done = replace(
        waiting("old-done", NOW - timedelta(days=2)),
        state=RequestState.CANCELLED,
        cause=Cause.RIDER_CANCELLED,
    )
    recent_done = replace(
        waiting("recent-done", NOW - timedelta(minutes=5)),
        state=RequestState.EXPIRED,
        cause=Cause.DEADLINE_REACHED,
    )
    old_taxi = replace(
        waiting("old-taxi", NOW - timedelta(days=2)),
        state=RequestState.FALLBACK,
        cause=Cause.GUARANTEE_REACHED,
    )
    recent_taxi = replace(
        waiting("recent-taxi", NOW - timedelta(minutes=20)),
        state=RequestState.FALLBACK,
        cause=Cause.GUARANTEE_REACHED,
    )
    store.save([(r, None) for r in (old_waiting, old_done, recent_done, old_taxi, recent_taxi)])
    restored = {r.id for r in store.live_requests(NOW, timedelta(hours=1))}
    # A taxi sent days ago holds no code and no memory any more; a recent one still may.
    assert restored == {"old-waiting", "recent-done", "recent-taxi"}


def test_device_presence_is_remembered(store: Store) -> None:
    store.save_device_status("calais-dunkerque", "sign", "pmv-marck-est-1", False, NOW)
    store.save_device_status("calais-dunkerque", "sign", "pmv-marck-est-1", True, NOW)
    [status] = store.device_statuses()
    assert (status.device_id, status.online) == ("pmv-marck-est-1", True)


def test_ping_tells_whether_the_database_answers(store: Store) -> None:
    assert store.ping()
    broken = Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert not broken.ping()


def test_source_aliases_come_back_for_their_requests(store: Store) -> None:
    request = waiting("r-alias")
    second_press = Source.of_terminal(TerminalId("t-marck-est"), DeviceRequestId("second-press"))
    store.save([(request, None)], [(second_press, request.id)])
    store.save([], [(second_press, request.id)])  # saving an alias twice is harmless
    assert store.aliases_of(["r-alias"]) == [(second_press, RequestId("r-alias"))]
    assert store.aliases_of(["someone-else"]) == []
