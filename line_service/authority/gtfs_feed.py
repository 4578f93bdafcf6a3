"""Adapter: the GTFS feed as the service publishes it — wait estimates as headways, cached."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dispatcher.model import Network
from line_service.authority.gtfs_export import (
    FeedOptions,
    Headway,
    build_feed,
    estimated_headway,
    to_zip,
)
from line_service.estimates.estimator import WaitEstimator, load_corridors
from line_service.settings import Settings
from line_service.storage.store import Store


def feed_headway(settings: Settings, network: Network, store: Store) -> Headway:
    """Headways from the stored history, else the study's corridors beside the lines file."""
    corridors_file = settings.lines_file.parent / "corridors.yaml"
    estimator = WaitEstimator(
        network,
        store.finished_waits,
        lambda: datetime.now(UTC),
        lambda: load_corridors(corridors_file),
    )
    return estimated_headway(estimator)


class GtfsFeed:
    """The zip served at `/gtfs.zip`: built on first demand, then again once `ttl` has passed."""

    def __init__(
        self,
        network: Network,
        estimator: WaitEstimator,
        clock: Callable[[], datetime],
        publisher_url: str,
        ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.ttl = ttl
        self._network = network
        self._headway = estimated_headway(estimator)
        self._clock = clock
        self._publisher_url = publisher_url
        self._built: tuple[datetime, bytes] | None = None
        self._lock = threading.Lock()

    def archive(self) -> tuple[bytes, datetime, timedelta]:
        """The feed's bytes, when they were built and for how long they stay the served ones
        (blocking: run it in a worker thread)."""
        now = self._clock()
        with self._lock:
            if self._built is None or now - self._built[0] >= self.ttl:
                options = FeedOptions(
                    start=now.date(),
                    publisher_name="carpool-line",
                    publisher_url=self._publisher_url,
                )
                self._built = (now, to_zip(build_feed(self._network, options, self._headway)))
            built_at, content = self._built
            return content, built_at, self.ttl - (now - built_at)
