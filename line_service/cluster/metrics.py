"""Adapter: which lines this process owns, for Prometheus (`carpool_line_owned`)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from line_service.cluster.ownership import LineOwnership


class OwnedLines(Collector):
    """1 for each line this process dispatches now, 0 for each it stands by for."""

    def __init__(self, line_ids: Iterable[str], ownership: LineOwnership) -> None:
        self._lines = tuple(line_ids)
        self._ownership = ownership

    def collect(self) -> Iterable[Metric]:
        owned = GaugeMetricFamily(
            "carpool_line_owned",
            "1 when this process owns the line (CARPOOL_CLUSTER), 0 while it stands by",
            labels=["line"],
        )
        held = set(self._ownership.owned)
        for line in self._lines:
            owned.add_metric([line], 1 if line in held else 0)
        yield owned
