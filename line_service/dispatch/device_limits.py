"""Shell: a token bucket per device, so that one flooding device degrades itself only.

Each device may send `burst` messages at once and `rate` a second on average; what comes
beyond is dropped before decoding and counted. A device's *flood episode* opens with its first
dropped message and closes once it has sent nothing dropped for `quiet` seconds: the gateway
tells the core once at each end (one alert per episode, never one per message).

The clock is injected (seconds, monotonic): unit tests drive it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class Admission(Enum):
    """What becomes of one message."""

    ADMITTED = "admitted"
    DROPPED = "dropped"
    FLOOD_STARTED = "flood_started"
    """Dropped, and the first drop of an episode: tell the operator."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    filled_at: float
    last_drop_at: float | None = None
    """Set while an episode is open."""


class DeviceLimiter(Generic[Key]):
    """Token buckets by device key, and their flood episodes."""

    def __init__(
        self,
        rate: float,
        burst: int,
        quiet: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or quiet <= 0:
            raise ValueError("rate and quiet must be positive, burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._quiet = quiet
        self._clock = clock
        self._buckets: dict[Key, _Bucket] = {}
        self.dropped = 0
        self.episodes = 0

    @property
    def quiet(self) -> float:
        """Seconds without a drop that close an episode."""
        return self._quiet

    def admit(self, key: Key) -> Admission:
        """Take a token for one message of `key`, or drop it."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        else:
            refill = (now - bucket.filled_at) * self._rate
            bucket.tokens = min(self._burst, bucket.tokens + refill)
            bucket.filled_at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Admission.ADMITTED
        self.dropped += 1
        started = bucket.last_drop_at is None
        bucket.last_drop_at = now
        if started:
            self.episodes += 1
            return Admission.FLOOD_STARTED
        return Admission.DROPPED

    def flooding(self) -> list[Key]:
        """Devices whose episode is open."""
        return [key for key, b in self._buckets.items() if b.last_drop_at is not None]

    def close_quiet_episodes(self) -> list[Key]:
        """Close (and return) the episodes with no drop for `quiet` seconds."""
        now = self._clock()
        closed: list[Key] = []
        for key, bucket in self._buckets.items():
            if bucket.last_drop_at is not None and now - bucket.last_drop_at >= self._quiet:
                bucket.last_drop_at = None
                closed.append(key)
        return closed
