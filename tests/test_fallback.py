"""Wait guarantee: the taxi is called by webhook (retried) or SMS; a late driver is recorded too."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from dispatcher.events import CodeValidated, DeadlineReached, RideRequested
from dispatcher.model import LineId, Network, RequestId, StopId, TerminalId
from dispatcher.request_machine import (
    Cause,
    Channel,
    DeviceRequestId,
    RequestState,
    RideRequest,
    Source,
)
from dispatcher.state import DispatcherState
from line_service.authority.fallback import LineFallbacks, LoggingTextSender, sms_text
from line_service.authority.trips import TripBook, TripRecorder
from line_service.dispatch.engine import Engine, Inbox
from line_service.dispatch.writer import Writer
from line_service.network.lines_file import parse_network
from line_service.storage.store import Store
from tests.support.engine_doubles import Outbox, Timers
from tests.support.requests import ride_request
from tests.support.waiting import wait_until

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "lines.yaml"
T0 = datetime(2026, 11, 23, 6, 40, tzinfo=UTC)
LINE = LineId("calais-dunkerque")


class TaxiDesk:
    """A local HTTP stand-in for a taxi company's webhook: scripted answers, recorded calls."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.calls: list[tuple[dict[str, str], dict[str, Any]]] = []
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                desk.calls.append((dict(self.headers), body))
                status = desk.answers.pop(0) if desk.answers else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/taxi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TaxiDesk:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def network_with(fallback: dict[str, Any]) -> Network:
    """The shipped line, always open, with this fallback."""
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    line = data["lines"][0]
    line.pop("service_hours")
    line["fallback"] = fallback
    return parse_network(yaml.safe_dump(data, allow_unicode=True))


def fallback_request(phone: str | None = "+33612345678") -> RideRequest:
    return ride_request(
        "req-1",
        T0 + timedelta(minutes=15),
        line=LINE,
        state=RequestState.FALLBACK,
        cause=Cause.GUARANTEE_REACHED,
        phone=phone,
        source=Source(Channel.SMS, "SM1"),
        seats=2,
        created_at=T0,
    )


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until `condition()` holds (checked from a thread); fail after 10 s."""
    await asyncio.to_thread(wait_until, condition, 10.0, what)


async def test_webhook_is_retried_until_the_taxi_company_accepts_it() -> None:
    with TaxiDesk([503, 502]) as desk:
        network = network_with({"kind": "webhook", "url": desk.url, "name": "Taxi test"})
        fallbacks = LineFallbacks(network, LoggingTextSender(), first_delay=0.01)
        task = asyncio.create_task(fallbacks.run())
        fallbacks.dispatch(fallback_request())
        webhook = fallbacks.webhooks[LINE]
        await wait_for(lambda: webhook.delivered == 1, "the delivery")
        task.cancel()
    assert len(desk.calls) == 3
    assert {headers["Idempotency-Key"] for headers, _ in desk.calls} == {"req-1"}
    body = desk.calls[-1][1]
    assert body["event"] == "fallback.requested"
    assert body["pickup"] == {
        "id": "marck-est",
        "name": "Marck",
        "code": "MRK",
        "lat": 50.94748,
        "lon": 1.965316,
    }
    assert body["destination"]["name"] == "Dunkerque"
    assert (body["seats"], body["rider_phone"], body["code"]) == (2, "+33612345678", "4821")
    assert body["requested_at"] == "2026-11-23T06:40:00Z"
    assert body["dispatched_at"] == "2026-11-23T06:55:00Z"


async def test_a_refused_webhook_is_not_retried_and_counts_as_failed() -> None:
    with TaxiDesk([400]) as desk:
        network = network_with({"kind": "webhook", "url": desk.url})
        fallbacks = LineFallbacks(network, LoggingTextSender(), first_delay=0.01)
        task = asyncio.create_task(fallbacks.run())
        fallbacks.dispatch(fallback_request())
        webhook = fallbacks.webhooks[LINE]
        await wait_for(lambda: webhook.failed == 1, "the failure")
        task.cancel()
    assert len(desk.calls) == 1
    assert webhook.delivered == 0


def test_sms_fallback_texts_the_taxi_company_where_and_where_to() -> None:
    network = network_with({"kind": "sms", "phone": "+33321000000"})
    sender = LoggingTextSender()
    LineFallbacks(network, sender).dispatch(fallback_request())
    [(to, body)] = sender.sent
    assert to == "+33321000000"
    assert "Marck (MRK)" in body
    assert "Dunkerque" in body
    assert "2 pers." in body
    assert "+33612345678" in body
    line = network.line(LINE)
    assert line is not None
    assert body == sms_text(line, fallback_request())


async def test_guarantee_calls_the_taxi_and_a_late_driver_is_recorded_as_well(
    store: Store,
) -> None:
    clock = [T0]
    with TaxiDesk([]) as desk:
        network = network_with({"kind": "webhook", "url": desk.url})
        writer = Writer(store)
        fallbacks = LineFallbacks(network, LoggingTextSender(), first_delay=0.01)
        recorder = TripRecorder(network, TripBook(store))
        engine = Engine(
            DispatcherState(network),
            lambda: clock[0],
            Inbox(),
            Outbox(),
            Timers(),
            writer,
            fallback=fallbacks,
            listeners=[recorder],
        )
        tasks = [asyncio.create_task(job.run()) for job in (writer, engine, fallbacks, recorder)]
        await engine.submit(
            RideRequested(
                RequestId("r-1"),
                LINE,
                StopId("marck-est"),
                StopId("dunkerque-est"),
                1,
                Source.of_terminal(TerminalId("t-marck-est"), DeviceRequestId("p1")),
                "4821",
                terminal_id=TerminalId("t-marck-est"),
            )
        )
        clock[0] = T0 + timedelta(minutes=15)
        await engine.submit(DeadlineReached(RequestId("r-1")))
        await wait_for(lambda: fallbacks.webhooks[LINE].delivered == 1, "the taxi call")
        clock[0] = T0 + timedelta(minutes=17)
        await engine.submit(CodeValidated(LINE, "4821", "+33699887766"))
        await wait_for(lambda: recorder.recorded == 1, "the trip")
        for task in tasks:
            task.cancel()
    assert [body["request_id"] for _, body in desk.calls] == ["r-1"]
    history = [(row.from_state, row.to_state) for row in store.history("r-1")]
    assert history == [(None, "waiting"), ("waiting", "fallback"), ("fallback", "picked_up")]
    [trip] = TripBook(store).between(T0, T0 + timedelta(hours=1))
    assert trip.fallback_dispatched
    assert (trip.origin_id, trip.destination_id, trip.distance_m) == (
        "marck-est",
        "dunkerque-est",
        35000,
    )
    assert trip.driver_compensation_cents == 200  # 1 € a trip + 1 € a passenger (lines.yaml)
