"""Test support: validated rides recorded as trips on the shipped line (money tests)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.model import Compensation, Line, LineId, Network
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.authority.trips import TripBook, draft_trip
from line_service.network.lines_file import load_network
from line_service.storage.store import TripRecord
from tests.support.requests import ride_request

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "lines.yaml"
# Monday 2 November 2026, 07:00 in Paris.
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
RIDER = "+33612345678"
DRIVER = "+33699887766"
SIRET = "11000101300017"  # a valid SIRET (the registry's own example)
LINE_ID = "calais-dunkerque"


def paying_network(siret: str | None = SIRET) -> Network:
    """The shipped line, paying 1 EUR a car run and 1 EUR a passenger, with a payer SIRET."""
    network = load_network(SHIPPED)
    lines = tuple(
        replace(line, compensation=Compensation(100, 100, 0, siret)) for line in network.lines
    )
    return Network(lines=lines)


def line_of(network: Network) -> Line:
    found = network.line(LineId(LINE_ID))
    assert found is not None
    return found


def validated(
    request_id: str,
    picked_up_at: datetime,
    *,
    origin: str = "marck-est",
    destination: str = "dunkerque-est",
    phone: str | None = RIDER,
    driver: str = DRIVER,
    seats: int = 1,
    asked_before: timedelta = timedelta(minutes=4),
) -> RideRequest:
    """A request validated by a driver's code at `picked_up_at`, asked `asked_before` earlier."""
    return ride_request(
        request_id,
        picked_up_at,
        stop=origin,
        destination=destination,
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        phone=phone,
        source=Source(Channel.SMS, f"src-{request_id}"),
        code="1234",
        seats=seats,
        created_at=picked_up_at - asked_before,
        driver_ref=driver,
    )


def record(book: TripBook, network: Network, request: RideRequest) -> TripRecord:
    """Draft and store the trip of a validated request."""
    draft = draft_trip(line_of(network), request, None)
    assert draft is not None
    return book.record(draft)
