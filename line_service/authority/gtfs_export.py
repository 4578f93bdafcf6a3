"""Adapter: the lines as a GTFS feed, so trip planners show them beside buses and trains.

A carpool line has no timetable: a car stops when a driver sees the lit sign. It is published
the way frequency-based services are:

- each line × direction is a route (`route_type` 1550 by default: the experimental value
  transport.data.gouv.fr asks carpooling lines to use until NeTEx France is in place);
- each service window of a weekday group (days sharing the same windows) is one trip of each
  direction, its stop times spaced by the stops' `km` at `SPEED_KMH` (`timepoint` 0: times
  are approximate); nobody boards at the last stop nor alights at the first;
- `frequencies.txt` gives, hour by hour within the window, the wait to expect at the
  direction's first stop towards its last (on the group's first weekday) as `headway_secs`
  (`exact_times` 0: no fixed departures); without an estimate, the wait guarantee, else the
  longest wait;
- `calendar.txt` runs each weekday group over the feed's period; `calendar_dates.txt` removes
  the French public holidays the line is closed on. A line without service hours runs every
  day from 00:00 to 24:00.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time, timedelta

from dispatcher.model import Direction, Line, Network, TimeWindow, Weekday
from line_service.estimates.estimator import WaitEstimator

ROUTE_TYPE_CARPOOL_LINE = 1550
SPEED_KMH = 60.0
DAY_SECONDS = 24 * 3600
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Headway = Callable[[Line, Direction, int, int], int | None]
"""Seconds to expect between cars for (line, direction, weekday 0-6, local hour), or None."""

Rows = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """What the feed covers and says of its publisher."""

    start: date
    publisher_name: str
    publisher_url: str  # also the agency URL of lines without an `agency:` key
    days: int = 365
    route_type: int = ROUTE_TYPE_CARPOOL_LINE
    version: str = ""

    @property
    def end(self) -> date:
        """The feed's last day (included)."""
        return self.start + timedelta(days=self.days - 1)


@dataclass(frozen=True, slots=True)
class _Service:
    id: str
    weekdays: tuple[int, ...]
    windows: tuple[tuple[int, int], ...]  # seconds since local midnight, start < end


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _services(line: Line) -> list[_Service]:
    """Weekdays grouped by identical windows, in week order."""
    if line.service_hours is None:
        return [_Service(f"{line.id}:daily", tuple(range(7)), ((0, DAY_SECONDS),))]
    groups: dict[tuple[TimeWindow, ...], list[int]] = {}
    for index, day in enumerate(Weekday):
        windows = line.service_hours.windows.get(day, ())
        if windows:
            groups.setdefault(windows, []).append(index)
    services = []
    for windows, days in groups.items():
        names = [list(Weekday)[d].value for d in days]
        contiguous = days == list(range(days[0], days[-1] + 1))
        name = f"{names[0]}-{names[-1]}" if contiguous and len(days) > 1 else "+".join(names)
        spans = tuple((_seconds(w.start), _seconds(w.end)) for w in windows)
        services.append(_Service(f"{line.id}:{name}", tuple(days), spans))
    return services


def _route_id(line: Line, direction: Direction) -> str:
    return f"{line.id}:{direction.id}"


def _stop_id(line: Line, stop_id: str) -> str:
    return f"{line.id}:{stop_id}"


def _fallback_headway(line: Line) -> int:
    wait = line.tuning.wait_guarantee or line.tuning.max_wait
    return int(wait.total_seconds())


def build_feed(network: Network, options: FeedOptions, headway: Headway) -> dict[str, Rows]:
    """Every file of the feed as rows (file name → rows, columns in the rows' key order)."""
    feed: dict[str, Rows] = {
        name: []
        for name in (
            "agency.txt",
            "stops.txt",
            "routes.txt",
            "calendar.txt",
            "calendar_dates.txt",
            "trips.txt",
            "stop_times.txt",
            "frequencies.txt",
        )
    }
    for line in network.lines:
        _add_line(feed, line, options, headway)
    feed["feed_info.txt"] = [
        {
            "feed_publisher_name": options.publisher_name,
            "feed_publisher_url": options.publisher_url,
            "feed_lang": "fr",
            "feed_contact_url": options.publisher_url,
            "feed_start_date": f"{options.start:%Y%m%d}",
            "feed_end_date": f"{options.end:%Y%m%d}",
            "feed_version": options.version or f"{options.start:%Y%m%d}",
        }
    ]
    if not feed["calendar_dates.txt"]:
        del feed["calendar_dates.txt"]
    return feed


def _add_line(feed: dict[str, Rows], line: Line, options: FeedOptions, headway: Headway) -> None:
    agency = line.agency
    feed["agency.txt"].append(
        {
            "agency_id": line.id,
            "agency_name": agency.name if agency else line.name,
            "agency_url": agency.url if agency else options.publisher_url,
            "agency_timezone": line.timezone,
            "agency_lang": "fr",
            "agency_phone": (agency.phone or "") if agency else "",
        }
    )
    for stop in line.all_stops():
        feed["stops.txt"].append(
            {
                "stop_id": _stop_id(line, stop.id),
                "stop_code": stop.code,
                "stop_name": stop.name,
                "stop_desc": f"Arrêt de covoiturage, direction {_direction_of(line, stop.id)}",
                "stop_lat": f"{stop.lat:.6f}",
                "stop_lon": f"{stop.lon:.6f}",
                "location_type": "0",
            }
        )
    services = _services(line)
    for service in services:
        _add_calendar(feed, line, service, options)
    for index, direction in enumerate(line.directions):
        if len(direction.stops) < 2:
            continue
        route_id = _route_id(line, direction)
        feed["routes.txt"].append(
            {
                "route_id": route_id,
                "agency_id": line.id,
                "route_short_name": "",
                "route_long_name": f"{line.name}, vers {direction.name}",
                "route_desc": (
                    "Ligne de covoiturage dynamique sans réservation : demandez à la borne de "
                    "l'arrêt ou par SMS (code de l'arrêt puis destination), un conducteur "
                    "s'arrête ; la fréquence est l'attente estimée"
                ),
                "route_type": str(options.route_type),
            }
        )
        for service in services:
            for start, end in service.windows:
                _add_trip(feed, line, direction, index, route_id, service, (start, end), headway)


def _direction_of(line: Line, stop_id: str) -> str:
    return next(d.name for d in line.directions if any(s.id == stop_id for s in d.stops))


def _add_calendar(
    feed: dict[str, Rows], line: Line, service: _Service, options: FeedOptions
) -> None:
    feed["calendar.txt"].append(
        {
            "service_id": service.id,
            **{day: "1" if i in service.weekdays else "0" for i, day in enumerate(_DAY_NAMES)},
            "start_date": f"{options.start:%Y%m%d}",
            "end_date": f"{options.end:%Y%m%d}",
        }
    )
    closed = line.service_hours.closed_dates if line.service_hours else frozenset()
    for holiday in sorted(closed):
        if options.start <= holiday <= options.end and holiday.weekday() in service.weekdays:
            feed["calendar_dates.txt"].append(
                {"service_id": service.id, "date": f"{holiday:%Y%m%d}", "exception_type": "2"}
            )


def _add_trip(
    feed: dict[str, Rows],
    line: Line,
    direction: Direction,
    index: int,
    route_id: str,
    service: _Service,
    window: tuple[int, int],
    headway: Headway,
) -> None:
    start, end = window
    trip_id = f"{route_id}:{service.id.split(':', 1)[1]}:{_clock(start)[:5].replace(':', '')}"
    feed["trips.txt"].append(
        {
            "route_id": route_id,
            "service_id": service.id,
            "trip_id": trip_id,
            "trip_headsign": direction.name,
            "direction_id": str(index) if index < 2 else "",
        }
    )
    first_km = direction.stops[0].km
    last = len(direction.stops) - 1
    for sequence, stop in enumerate(direction.stops):
        offset = round(abs(stop.km - first_km) / SPEED_KMH * 3600)
        moment = _clock(start + offset)
        feed["stop_times.txt"].append(
            {
                "trip_id": trip_id,
                "arrival_time": moment,
                "departure_time": moment,
                "stop_id": _stop_id(line, stop.id),
                "stop_sequence": str(sequence),
                "pickup_type": "1" if sequence == last else "0",
                "drop_off_type": "1" if sequence == 0 else "0",
                "timepoint": "0",
            }
        )
    weekday = service.weekdays[0]
    slot = start
    while slot < end:
        slot_end = min(end, (slot // 3600 + 1) * 3600)
        seconds = headway(line, direction, weekday, slot // 3600 % 24)
        feed["frequencies.txt"].append(
            {
                "trip_id": trip_id,
                "start_time": _clock(slot),
                "end_time": _clock(slot_end),
                "headway_secs": str(max(60, seconds or _fallback_headway(line))),
                "exact_times": "0",
            }
        )
        slot = slot_end


def _csv(rows: Rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_zip(feed: dict[str, Rows]) -> bytes:
    """The feed as a zip archive (UTF-8 CSV files; same feed, same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in feed.items():
            if rows:
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, _csv(rows))
    return buffer.getvalue()


def estimated_headway(estimator: WaitEstimator) -> Headway:
    """The headway of a direction: the median wait to expect from its first stop to its last."""

    def headway(line: Line, direction: Direction, weekday: int, hour: int) -> int | None:
        first, last = direction.stops[0].id, direction.stops[-1].id
        found = estimator.estimate(line, first, last, weekday, hour)
        return None if found is None else round(found.median.total_seconds())

    return headway
