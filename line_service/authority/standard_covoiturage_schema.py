"""Pure: JSON Schemas of the standard covoiturage answers this service gives (read side).

Written from the facts of "standard covoiturage" v1.0.0-alpha, Fabrique des Mobilités
(OpenAPI 3.0 file `standard-covoiturage_openapi.yaml`: components `Trip`, `DriverTrip`,
`JourneySchedule`, `DriverJourney`, `User`, `Price`, response `BadRequest`), restricted to what
`GET /driver_journeys` returns; not a copy of that file. The tests validate the service's
answers against these schemas; nothing at run time needs them.
"""

from __future__ import annotations

from typing import Any

STANDARD = "standard covoiturage"
VERSION = "1.0.0-alpha"
ORIGIN = "Fabrique des Mobilités, standard-covoiturage_openapi.yaml"

_NUMBER: dict[str, Any] = {"type": "number"}
_INTEGER: dict[str, Any] = {"type": "integer"}
_STRING: dict[str, Any] = {"type": "string"}

USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "alias", "operator"],
    "properties": {
        "id": _STRING,
        "operator": _STRING,
        "alias": _STRING,
        "firstName": _STRING,
        "lastName": _STRING,
        "grade": {"type": "integer", "minimum": 1, "maximum": 5},
        "picture": _STRING,
        "gender": {"enum": ["F", "M", "O"]},
        "verifiedIdentity": {"type": "boolean"},
    },
}

PRICE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["FREE", "PAYING", "UNKNOWN"]},
        "amount": _NUMBER,
        "currency": _STRING,
    },
}

DRIVER_JOURNEY: dict[str, Any] = {
    "type": "object",
    "required": [
        # Trip
        "duration",
        "operator",
        "passengerPickupLat",
        "passengerPickupLng",
        "passengerDropLat",
        "passengerDropLng",
        # DriverTrip
        "driver",
        # JourneySchedule
        "passengerPickupDate",
        "type",
    ],
    "properties": {
        "operator": _STRING,
        "passengerPickupLat": _NUMBER,
        "passengerPickupLng": _NUMBER,
        "passengerDropLat": _NUMBER,
        "passengerDropLng": _NUMBER,
        "passengerPickupAddress": _STRING,
        "passengerDropAddress": _STRING,
        "distance": _INTEGER,
        "driverDepartureLat": _NUMBER,
        "driverDepartureLng": _NUMBER,
        "driverArrivalLat": _NUMBER,
        "driverArrivalLng": _NUMBER,
        "driverDepartureAddress": _STRING,
        "driverArrivalAddress": _STRING,
        "duration": _INTEGER,
        "journeyPolyline": _STRING,
        "webUrl": _STRING,
        "driver": USER,
        "departureToPickupWalkingDistance": _INTEGER,
        "departureToPickupWalkingDuration": _INTEGER,
        "dropoffToArrivalWalkingDistance": _INTEGER,
        "dropoffToArrivalWalkingDuration": _INTEGER,
        "id": {"type": "string", "minLength": 1, "maxLength": 255},
        "passengerPickupDate": _NUMBER,
        "driverDepartureDate": _NUMBER,
        "type": {"enum": ["PLANNED", "DYNAMIC", "LINE"]},
        "availableSeats": _INTEGER,
        "price": PRICE,
    },
}

DRIVER_JOURNEYS: dict[str, Any] = {"type": "array", "items": DRIVER_JOURNEY}

BAD_REQUEST: dict[str, Any] = {"type": "object", "properties": {"error": _STRING}}
