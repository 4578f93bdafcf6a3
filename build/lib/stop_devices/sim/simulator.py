"""Adapter: the device simulator — virtual signs and terminals, and demo traffic that uses them.

The implementation lives in `sim_devices` (one virtual device each) and `sim_traffic` (riders and
drivers); this module is the stable import point for demo mode, end-to-end tests and benchmarks.
"""

from __future__ import annotations

from stop_devices.sim.devices import (
    FINAL_SCREEN_STATES,
    CancelReason,
    Clock,
    VirtualSign,
    VirtualTerminal,
    fresh_request_id,
    utc_now,
)
from stop_devices.sim.traffic import DemoTraffic, TrafficSettings, ValidateCode

__all__ = [
    "FINAL_SCREEN_STATES",
    "CancelReason",
    "Clock",
    "DemoTraffic",
    "TrafficSettings",
    "ValidateCode",
    "VirtualSign",
    "VirtualTerminal",
    "fresh_request_id",
    "utc_now",
]
