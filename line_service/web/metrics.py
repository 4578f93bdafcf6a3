"""Shell: Prometheus metrics of the service, in a registry of its own built by the composition root.

Counters and the wait histogram are fed by an engine listener (O(1) per effect); gauges and the
counters other parts already keep (MQTT drops, engine step time) are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from dispatcher.effects import AlertKind, Effect, RaiseAlert, SaveRequest, ShowOnSign
from dispatcher.events import Event
from dispatcher.model import DeviceKind, Network
from dispatcher.request_machine import RequestState
from dispatcher.state import DispatcherState
from line_service.dispatch.device_gateway import DeviceGateway
from line_service.dispatch.engine import Engine
from line_service.dispatch.writer import Writer

WAIT_BUCKETS = (30, 60, 120, 180, 300, 420, 600, 900, 1200, 1800, 3600)


class LiveCounters(Protocol):
    """What the live-updates hub counts."""

    @property
    def clients(self) -> int: ...
    @property
    def pushed(self) -> int: ...
    @property
    def dropped_clients(self) -> int: ...


class AbuseCounters(Protocol):
    """What the abuse gate counts (line_service/abuse/gate.py)."""

    @property
    def wrong_codes(self) -> int: ...
    @property
    def refused_guesses(self) -> int: ...
    @property
    def refused_requests(self) -> int: ...


class _ServiceCollector(Collector):
    """Values read from the running service when Prometheus scrapes."""

    def __init__(
        self,
        network: Network,
        engine: Engine,
        gateway: DeviceGateway,
        writer: Writer,
        live: LiveCounters | None,
        abuse: AbuseCounters | None = None,
    ) -> None:
        self._network = network
        self._engine = engine
        self._gateway = gateway
        self._writer = writer
        self._live = live
        self._abuse = abuse

    def collect(self) -> Iterable[Metric]:
        yield from self._devices_and_requests()
        yield from self._transport()
        yield from self._engine_counters()
        yield from self._live_counters()
        yield from self._abuse_counters()

    def _devices_and_requests(self) -> Iterable[Metric]:
        state = self._engine.state
        online = GaugeMetricFamily(
            "carpool_devices_online", "Devices whose last status said online", labels=["kind"]
        )
        known = GaugeMetricFamily(
            "carpool_devices_configured", "Devices in lines.yaml", labels=["kind"]
        )
        devices = self._network.devices()
        for kind in DeviceKind:
            count = sum(1 for (k, _id), up in state.online.items() if k is kind and up)
            online.add_metric([kind.value], count)
            known.add_metric([kind.value], sum(1 for (k, _id) in devices if k is kind))
        yield online
        yield known
        waiting = GaugeMetricFamily(
            "carpool_requests_waiting", "Riders waiting now", labels=["line"]
        )
        for line in self._network.lines:
            waiting.add_metric([line.id], sum(1 for r in state.waiting() if r.line_id == line.id))
        yield waiting
        alerts = GaugeMetricFamily("carpool_alerts_active", "Active device alerts", labels=["kind"])
        for alert_kind in AlertKind:
            alerts.add_metric(
                [alert_kind.value], sum(1 for k, _ in state.alerts if k is alert_kind)
            )
        yield alerts

    def _transport(self) -> Iterable[Metric]:
        gateway = self._gateway
        dropped = CounterMetricFamily(
            "carpool_mqtt_dropped", "MQTT messages dropped, by reason", labels=["reason"]
        )
        for reason, count in sorted(gateway.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield CounterMetricFamily(
            "carpool_mqtt_rate_limited",
            "Device messages dropped beyond the device's rate (before decoding)",
            value=gateway.limiter.dropped,
        )
        yield CounterMetricFamily(
            "carpool_mqtt_flood_episodes",
            "Flood episodes (a device sending beyond its rate), one alert each",
            value=gateway.limiter.episodes,
        )
        yield CounterMetricFamily(
            "carpool_mqtt_received", "MQTT messages received from devices", value=gateway.received
        )
        yield CounterMetricFamily(
            "carpool_mqtt_repeated_statuses",
            "Device heartbeats repeating the device's last status, skipped before decoding",
            value=gateway.repeated_statuses,
        )
        yield CounterMetricFamily(
            "carpool_mqtt_stale_skipped",
            "Displays and screens not published because a newer one for the device went out",
            value=gateway.stale_skipped,
        )
        yield CounterMetricFamily(
            "carpool_writer_commits", "Database commits by the writer", value=self._writer.commits
        )
        yield CounterMetricFamily(
            "carpool_writer_failures",
            "Failed database commits (each retried, never dropped)",
            value=self._writer.failures,
        )

    def _engine_counters(self) -> Iterable[Metric]:
        engine = self._engine
        yield CounterMetricFamily(
            "carpool_engine_events", "Events processed by the engine", value=engine.processed
        )
        yield CounterMetricFamily(
            "carpool_engine_step_seconds",
            "Time spent processing events (divide by carpool_engine_events_total for the mean)",
            value=engine.step_seconds_total,
        )
        rejected = CounterMetricFamily(
            "carpool_engine_rejected", "Events rejected by the core", labels=["reason"]
        )
        for reason, count in sorted(engine.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected

    def _live_counters(self) -> Iterable[Metric]:
        live = self._live
        yield GaugeMetricFamily(
            "carpool_live_clients",
            "Dashboards connected over WebSocket",
            value=live.clients if live else 0,
        )
        yield CounterMetricFamily(
            "carpool_live_broadcasts",
            "Snapshots of line state offered to the connected dashboards (coalesced)",
            value=live.pushed if live else 0,
        )
        yield CounterMetricFamily(
            "carpool_live_dropped_clients",
            "Dashboards disconnected for not taking a snapshot in time",
            value=live.dropped_clients if live else 0,
        )

    def _abuse_counters(self) -> Iterable[Metric]:
        abuse = self._abuse
        yield CounterMetricFamily(
            "carpool_wrong_codes",
            "Drivers' codes checked and found held by no rider (SMS and HTTP)",
            value=abuse.wrong_codes if abuse else 0,
        )
        yield CounterMetricFamily(
            "carpool_codes_refused",
            "Drivers' codes not checked: their sender or line past its wrong-code budget",
            value=abuse.refused_guesses if abuse else 0,
        )
        yield CounterMetricFamily(
            "carpool_requests_rate_limited",
            "New ride requests refused past the rate per phone or per client address",
            value=abuse.refused_requests if abuse else 0,
        )


STEP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class ServiceMetrics:
    """The registry and the listener that feeds it."""

    def __init__(
        self,
        network: Network,
        engine: Engine,
        gateway: DeviceGateway,
        writer: Writer,
        live: LiveCounters | None = None,
        abuse: AbuseCounters | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "carpool_requests",
            "Ride requests by the state they reached",
            ["line", "outcome"],
            registry=self.registry,
        )
        self.wait = Histogram(
            "carpool_wait_seconds",
            "How long riders waited, by how the wait ended",
            ["line", "outcome"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.sign_updates = Counter(
            "carpool_sign_updates", "Displays sent to signs", ["line"], registry=self.registry
        )
        self.alerts = Counter(
            "carpool_alerts_raised", "Operator alerts raised", ["kind"], registry=self.registry
        )
        self.step_duration = Histogram(
            "carpool_engine_step_duration_seconds",
            "Time the engine took to apply one event and hand out its effects, by event",
            ["event"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServiceCollector(network, engine, gateway, writer, live, abuse))
        # A metric's `labels()` validates and joins its values on every call (a lock, a dict):
        # each label set's child is looked up once, then kept here.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def observe_step(self, event: str, seconds: float) -> None:
        """Engine step timer: one observation per event processed."""
        self._child(self.step_duration, event).observe(seconds)

    def on_step(self, _event: Event | None, effects: list[Effect], _state: DispatcherState) -> None:
        """Engine listener: count what the step did."""
        for effect in effects:
            if isinstance(effect, SaveRequest):
                request = effect.request
                self._child(self.requests, request.line_id, request.state.value).inc()
                if effect.previous_state is RequestState.WAITING and not request.is_waiting:
                    waited = (request.updated_at - request.created_at).total_seconds()
                    outcome = request.state.value
                    self._child(self.wait, request.line_id, outcome).observe(max(0.0, waited))
            elif isinstance(effect, ShowOnSign):
                self._child(self.sign_updates, effect.line_id).inc()
            elif isinstance(effect, RaiseAlert):
                self._child(self.alerts, effect.alert.kind.value).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


metrics_router = APIRouter(tags=["health"])


@metrics_router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    service: ServiceMetrics = request.state.metrics
    return Response(service.exposition(), media_type=CONTENT_TYPE_LATEST)
