"""Composition root: demo mode — simulated devices and traffic on the configured lines.

The simulated drivers validate codes the way a driver's phone would: through the HTTP API.
"""

from __future__ import annotations

import random

import httpx
import structlog

from dispatcher.model import LineId
from line_service.runtime import BackgroundJob, Runtime
from line_service.settings import Settings
from stop_devices.mqtt_link import BrokerAddress
from stop_devices.simulator import DemoTraffic, TrafficSettings

log = structlog.get_logger(__name__)


def demo_jobs(settings: Settings) -> tuple[BackgroundJob, ...]:
    """Background jobs that bring the demo line to life."""
    api = f"http://{settings.http_host}:{settings.http_port}/api/v1"

    async def traffic(runtime: Runtime) -> None:
        await runtime.gateway.link.wait_connected()
        async with httpx.AsyncClient(base_url=api, timeout=5) as client:

            async def validate_code(line_id: LineId, code: str) -> bool:
                answer = await client.post(
                    f"/lines/{line_id}/validations",
                    json={"code": code, "driver_ref": f"demo-driver-{random.randrange(1000)}"},
                )
                return answer.status_code == 200

            simulation = DemoTraffic(
                runtime.network,
                BrokerAddress.from_url(settings.broker_url),
                validate_code,
                TrafficSettings(ignore_hours=True, passengers_per_hour=24.0),
                rng=random.Random(),
            )
            log.info(
                "demo.started", terminals=len(simulation.terminals), signs=len(simulation.signs)
            )
            await simulation.run()

    return (traffic,)
