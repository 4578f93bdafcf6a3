"""Composition root: demo mode — simulated devices and traffic on the configured lines.

Two kinds of simulated riders:
- at the terminals (stop_devices.sim.simulator.DemoTraffic): press, wait, get picked up by a driver
  who read the sign — drivers validate the code through the HTTP API, as a phone would;
- in the app (`app_riders` below): a signed-in rider asks through the API, and a signed-in
  driver validates.
Simulated riders and drivers sign in through the real flow (`DemoSignIn`): they ask for a code,
read it from the console provider's outbox (demo mode texts nobody) and exchange it for a token,
kept per number.
How often riders come and drivers stop is the study's model (`carpool-line plan`) for the line's
corridor in `corridors.yaml` beside the lines file, so the demo's waits look like the real line's.
Demo phone numbers are made up (+33 6 00 00 xx xx; libphonenumber refuses ARCEP's range for
fiction, 06 39 98, as unassigned). Demo mode never sends an SMS: `serve --demo` forces the
console provider, which only logs.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import httpx
import structlog

from dispatcher.model import LineId, Network
from line_service.accounts.book import AccountRole
from line_service.accounts.sign_in import SIGN_IN_REF, code_in_text
from line_service.runtime import BackgroundJob, Runtime
from line_service.settings import Settings
from line_service.sms.opt_outs import OptOutSender
from sms_gateway.console_sender import ConsoleSender
from stop_devices.mqtt_link import BrokerAddress
from stop_devices.sim.simulator import DemoTraffic, TrafficSettings

log = structlog.get_logger(__name__)

FICTION_PREFIX = "+3360000"
APP_RIDER_EVERY_SECONDS = 40.0
APP_RIDERS = 400
APP_DRIVERS = 120
DEMO_MIN_RIDERS_PER_HOUR = TrafficSettings().passengers_per_hour
DEMO_STOP_PROBABILITY = 0.25
"""Share of simulated passing cars that stop; their spacing follows from the model's rate."""


def modelled_traffic(corridors_file: Path, network: Network) -> TrafficSettings:
    """Demo traffic from the study's model for the first line that has a corridor in the
    file; the simulator's defaults when there is none (logged)."""
    # Imported here: only demo mode reads the corridors file.
    from line_service.planning.rates import demo_traffic
    from line_service.planning.scenario import ScenarioError, load_scenario

    try:
        corridors = {c.id: c for c in load_scenario(corridors_file).corridors}
    except (OSError, ScenarioError) as exc:
        log.warning("demo.traffic_defaults", file=str(corridors_file), reason=str(exc)[:200])
        return TrafficSettings(ignore_hours=True)
    for line in network.lines:
        corridor = corridors.get(line.id)
        if corridor is None:
            continue
        model = demo_traffic(corridor)
        stopping_gap_hours = 1 / model.stopping_drivers_per_hour
        log.info(
            "demo.traffic_modelled",
            corridor=corridor.id,
            riders_per_hour_peak=round(model.riders_per_hour_peak, 1),
            mean_wait_minutes=round(60 * stopping_gap_hours, 1),
        )
        return TrafficSettings(
            ignore_hours=True,
            # A demo must show riders within a minute: never fewer than the simulator's default
            # (a real corridor's quiet hour can have under 2); waits are the model's.
            passengers_per_hour=max(DEMO_MIN_RIDERS_PER_HOUR, model.riders_per_hour_off_peak),
            peak_factor=max(1.0, model.riders_per_hour_peak / model.riders_per_hour_off_peak),
            car_interval=timedelta(hours=DEMO_STOP_PROBABILITY * stopping_gap_hours),
            stop_probability=DEMO_STOP_PROBABILITY,
        )
    log.warning("demo.traffic_defaults", file=str(corridors_file), reason="no corridor of a line")
    return TrafficSettings(ignore_hours=True)


def fictional_phone(number: int) -> str:
    """A made-up French mobile number for a simulated rider or driver (never texted)."""
    return f"{FICTION_PREFIX}{number % 10_000:04d}"


class DemoSignInError(Exception):
    """A simulated rider or driver could not sign in (logged; the ride is skipped)."""


class DemoSignIn:
    """Simulated phones sign in as real ones do: a code by SMS (read from the console
    provider's outbox), exchanged for a token; one token per number and role."""

    def __init__(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        self._client = client
        self._outbox = _console_outbox(runtime)
        self._tokens: dict[tuple[str, AccountRole], str] = {}
        self._lock = asyncio.Lock()

    async def headers(self, phone: str, role: AccountRole) -> dict[str, str]:
        """The Authorization header of this number's token (signing in the first time)."""
        async with self._lock:  # one sign-in at a time: a number is asked for one code
            token = self._tokens.get((phone, role))
            if token is None:
                token = await self._sign_in(phone, role)
                self._tokens[(phone, role)] = token
        return {"Authorization": f"Bearer {token}"}

    async def _sign_in(self, phone: str, role: AccountRole) -> str:
        sent = await self._client.post("/auth/otp", json={"phone": phone, "role": role.value})
        if sent.status_code != 202 or self._outbox is None:
            raise DemoSignInError(f"no code: {sent.status_code}")
        code = next(
            (
                code_in_text(message.body)
                for message in reversed(self._outbox.sent)
                if message.to == phone and message.ref == SIGN_IN_REF
            ),
            None,
        )
        answer = await self._client.post("/auth/token", json={"phone": phone, "code": code})
        if answer.status_code != 200:
            raise DemoSignInError(f"code refused: {answer.status_code}")
        token: str = answer.json()["access_token"]
        return token


def _console_outbox(runtime: Runtime) -> ConsoleSender | None:
    """The console provider the demo reads codes from (None with another provider)."""
    sender = runtime.sms.sender if runtime.sms is not None else None
    if isinstance(sender, OptOutSender) and isinstance(sender.provider, ConsoleSender):
        return sender.provider
    log.warning("demo.no_console_sms", reason="simulated phones cannot read their codes")
    return None


def demo_jobs(settings: Settings) -> tuple[BackgroundJob, ...]:
    """Background jobs that bring the demo line to life."""
    api = f"http://{settings.http_host}:{settings.http_port}/api/v1"

    async def traffic(runtime: Runtime) -> None:
        await runtime.gateway.link.wait_connected()
        async with httpx.AsyncClient(base_url=api, timeout=5) as client:
            accounts = DemoSignIn(client, runtime)

            async def validate_code(line_id: LineId, code: str) -> bool:
                driver = fictional_phone(5000 + random.randrange(APP_DRIVERS))
                try:
                    headers = await accounts.headers(driver, AccountRole.DRIVER)
                except (DemoSignInError, httpx.HTTPError) as exc:
                    log.warning("sim.sign_in_failed", error=str(exc)[:200])
                    return False
                answer = await client.post(
                    f"/lines/{line_id}/validations", json={"code": code}, headers=headers
                )
                return answer.status_code == 200

            simulation = DemoTraffic(
                runtime.network,
                BrokerAddress.from_url(settings.broker_url),
                validate_code,
                modelled_traffic(settings.lines_file.parent / "corridors.yaml", runtime.network),
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
            accounts = DemoSignIn(client, runtime)
            while True:
                await asyncio.sleep(rng.expovariate(1 / APP_RIDER_EVERY_SECONDS))
                line, stop = rng.choice(boarding)
                destination = rng.choice(line.destinations_from(stop.id))
                rides.create_task(
                    _app_ride(client, accounts, rng, line.id, stop.id, destination.id)
                )

    return (traffic, app_riders)


async def _app_ride(
    client: httpx.AsyncClient,
    accounts: DemoSignIn,
    rng: random.Random,
    line_id: str,
    stop_id: str,
    destination_id: str,
) -> None:
    """One app rider: ask, wait for a driver (or give up), and the driver validates the code."""
    phone = fictional_phone(rng.randrange(APP_RIDERS))
    try:
        asked = await client.post(
            "/requests",
            json={"line_id": line_id, "stop_id": stop_id, "destination_id": destination_id},
            headers=await accounts.headers(phone, AccountRole.RIDER),
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
            json={"code": ride["code"]},
            headers=await accounts.headers(driver, AccountRole.DRIVER),
        )
        log.info("sim.app_pickup" if done.status_code == 200 else "sim.app_missed", stop=stop_id)
    except (DemoSignInError, httpx.HTTPError) as exc:
        log.warning("sim.app_failed", error=str(exc)[:200])
