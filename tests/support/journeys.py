"""Test support: a journey of the line, valid against the package's RPC v3.4 schema."""

from __future__ import annotations

import copy
import hashlib
from typing import Any


def _key(phone: str) -> str:
    return hashlib.sha256(f"{phone}-".encode()).hexdigest()


_JOURNEY: dict[str, Any] = {
    "operator_journey_id": "9b1f0c2e7a4d4e8fb3c6a1d2e5f70819",
    "operator_trip_id": "0e5a7c3b9d1f4a2c8e6b0d4f2a9c7e13",
    "operator_class": "C",
    "incentives": [{"index": 0, "siret": "20004101000012", "amount": 150}],
    "start": {"datetime": "2026-03-03T16:05:00Z", "lat": 50.9876, "lon": 2.1281},
    "end": {"datetime": "2026-03-03T16:31:00Z", "lat": 51.0345, "lon": 2.3768},
    "distance": 21000,
    "driver": {
        "identity": {
            "operator_user_id": "u-driver-one",
            "identity_key": _key("+33711223344"),
            "phone_trunc": "+337112233",
        },
        "revenue": 150,
    },
    "passenger": {
        "identity": {
            "operator_user_id": "u-rider-one",
            "identity_key": _key("+33655443322"),
            "phone_trunc": "+336554433",
        },
        "contribution": 0,
        "seats": 1,
    },
}


def journey(**changes: Any) -> dict[str, Any]:
    """A fresh copy of the valid journey, with top-level fields replaced."""
    fresh = copy.deepcopy(_JOURNEY)
    fresh.update(changes)
    return fresh
