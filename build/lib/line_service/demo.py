"""Composition root: demo mode — simulated devices and traffic on the configured lines.

Two kinds of simulated riders:
- at the terminals (stop_devices.sim.simulator.DemoTraffic): press, wait, get picked up by a driver
  who read the sign — drivers validate the code through the HTTP API, as a phone would;
- in the app (`app_riders` below): ask through the API with a phone number, and a driver with
  a known number validates — these trips carry the identities the national registry needs.
Demo phone numbers are made up (+33 6 00 00 xx xx; libphonenumber refuses ARCEP's range for
fiction, 06 39 98, as unassigned). Demo mode never sends an SMS: `serve --demo` forces the
console provider, which only logs.
"""

from __future__ import annotations

import asyncio
import random

import httpx
import structlog

from dispatcher.model import LineId
from line_service.runtime import BackgroundJob, Runtime
from line_service.settings import Settings
from stop_devices.mqtt_link import BrokerAddress
from stop_devices.sim.simulator import DemoTraffic, TrafficSettings

log = structlog.get_logger(__name__)

FICTION_PREFIX = "+3360000"
APP_RIDER_EVERY_SECONDS = 40.0
APP_RIDERS = 400
APP_DRIVERS = 120


def fictional_phone(number: int) -> str:
    """A made-up French mobile number for a simulated rider or driver (never texted)."""
    return f"{FICTION_PREFIX}{number % 10_000:04d}"


def demo_jobs(settings: Settings) -> tuple[BackgroundJob, ...]:
    """Background jobs that bring the demo line to life."""
    api = f"http://{settings.http_host}:{settings.http_port}/api/v1"

    async def traffic(runtime: Runtime) -> None:
        await runtime.gateway.link.wait_connected()
        async with httpx.AsyncClient(base_url=api, timeout=5) as client:

            async def validate_code(line_id: LineId, code: str) -> bool:
                driver = fictional_phone(5000 + random.randrange(APP_DRIVERS))
                answer = await client.post(
                    f"/lines/{line_id}/validations",
                    json={"code": code, "driver_ref": f"tel:{driver}"},
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

    async def app_riders(runtime: Runtime) -> None:
        await runtime.gateway.link.wait_connected()
        rng = random.Random()
        boarding = [
            (line, stop)
            for line in runtime.network.lines
            for stop in line.all_stops()
            if line.destinations_from(stop.id)
        ]
        async with (
            httpx.AsyncClient(base_url=api, timeout=5) as client,
            asyncio.TaskGroup() as rides,
        ):
            while True:
                await asyncio.sleep(rng.expovariate(1 / APP_RIDER_EVERY_SECONDS))
                line, stop = rng.choice(boarding)
                destination = rng.choice(line.destinations_from(stop.id))
                rides.create_task(_app_ride(client, rng, line.id, stop.id, destination.id))

    return (traffic, app_riders)


async def _app_ride(
    client: httpx.AsyncClient, rng: random.Random, line_id: str, stop_id: str, destination_id: str
) -> None:
    """One app rider: ask, wait for a driver (or give up), and the driver validates the code."""
    phone = fictional_phone(rng.randrange(APP_RIDERS))
    try:
        asked = await client.post(
            "/requests",
            json={
                "line_id": line_id,
                "stop_id": stop_id,
                "destination_id": destination_id,
                "phone": phone,
            },
        )
        ride = asked.json()
        if asked.status_code != 201 or ride.get("state") != "waiting":
            log.info("sim.app_refused", stop=stop_id, cause=ride.get("cause"))
            return
        log.info("sim.app_waiting", stop=stop_id, destination=destination_id, code=ride["code"])
        await asyncio.sleep(rng.uniform(10, 90))
        driver = fictional_phone(5000 + rng.randrange(APP_DRIVERS))
        done = await client.post(
            f"/lines/{line_id}/validations",
            json={"code": ride["code"], "driver_ref": f"tel:{driver}"},
        )
        log.info("sim.app_pickup" if done.status_code == 200 else "sim.app_missed", stop=stop_id)
    except httpx.HTTPError as exc:
        log.warning("sim.app_failed", error=str(exc)[:200])
