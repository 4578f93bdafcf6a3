"""Fault injection: broker killed, service SIGKILLed, database failing, device flapping.

Every test runs the real service (subprocess), a Mosquitto locked down with the generated
accounts and ACL, a virtual device per sign and terminal (each with its own credentials), and
the safety monitor: no sign may show a passenger nobody is for longer than one lease.
Figures are printed (`pytest -s`) and quoted in docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from dispatcher.model import Network, StopId
from line_service.accounts.book import AccountRole
from line_service.broker.mosquitto_config import DEFAULT_OBSERVER_USER as OBSERVER
from line_service.network.lines_file import load_network
from tests.support.accounts import account_tokens, bearer
from tests.support.faults import (
    SCALE,
    DeviceClient,
    Fleet,
    SecureBroker,
    assert_safe,
    eventually,
    figure,
    live,
    watching,
)
from tests.support.service import LINE, ServiceProcess, write_lines_file

PREFIX = f"carpool/v1/{LINE}"
REFUSE_SECONDS = 2
LEASE_SECONDS = 6
SETTLE_SECONDS = 2
FLOOD_QUIET_SECONDS = 2


@dataclass
class Rig:
    """Everything one fault test drives."""

    network: Network
    broker: SecureBroker
    service: ServiceProcess
    fleet: Fleet
    http: httpx.AsyncClient
    database_url: str

    def destinations(self, terminal: str) -> list[str]:
        """Where a rider at this terminal's stop may go."""
        stop = self.fleet.terminals[terminal].stop
        line = self.network.lines[0]
        return [s.id for s in line.destinations_from(StopId(stop.id))]

    async def signs_converged(self) -> bool:
        """Every virtual sign shows what the service wants it to show now."""
        wanted = {sign["id"]: sign["pages"] for sign in (await live(self.http))["signs"]}
        return self.fleet.connected() and all(
            [list(page) for page in device.pages] == wanted[sign_id]
            for sign_id, device in self.fleet.signs.items()
        )

    def stored(self) -> dict[tuple[str, str], str]:
        """(terminal, code) -> state of every stored request (read straight from the database)."""
        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sqlalchemy.text("SELECT terminal_id, code, state FROM ride_request")
                )
                return {(terminal, code): state for terminal, code, state in rows}
        finally:
            engine.dispose()


@pytest.fixture
async def rig(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    lines = write_lines_file(
        tmp_path,
        sign_lease_seconds=LEASE_SECONDS,
        max_waiting_per_stop=100,
        device_settle_seconds=SETTLE_SECONDS,
    )
    network = load_network(lines)
    broker = SecureBroker(network, tmp_path / "broker")
    await asyncio.to_thread(broker.start)
    service = ServiceProcess(
        broker_url=broker.url(),
        database_url=database_url,
        lines_file=lines,
        directory=tmp_path,
        extra_env={
            "CARPOOL_LEASE_REFRESH_SECONDS": "2",
            "CARPOOL_STORAGE_REFUSE_SECONDS": str(REFUSE_SECONDS),
            "CARPOOL_DEVICE_FLOOD_QUIET_SECONDS": str(FLOOD_QUIET_SECONDS),
            # Hundreds of app asks come from this one test client; X-Forwarded-For from it
            # stands for as many clients as the guessing test wants.
            "CARPOOL_REQUEST_RATE_PER_ADDRESS": "1000000",
            "CARPOOL_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    await asyncio.to_thread(service.start)
    marker = request.node.get_closest_marker("without_devices")
    fleet = Fleet.of(network, broker.address, frozenset(marker.args if marker else ()))
    try:
        async with fleet.running(), httpx.AsyncClient(base_url=service.base_url) as http:
            yield Rig(network, broker, service, fleet, http, database_url)
    finally:
        await asyncio.to_thread(service.stop)
        await asyncio.to_thread(broker.stop)


def told_waiting(rig: Rig) -> set[tuple[str, str]]:
    """(terminal, code) of every rider whose terminal last said "waiting" for their press."""
    return {
        (terminal_id, terminal.codes[request_id])
        for terminal_id, terminal in rig.fleet.terminals.items()
        for request_id, outcome in terminal.outcomes.items()
        if outcome == "waiting"
    }


def pressed_since(pressed: list[tuple[str, str]], count: int) -> bool:
    """At least `count` presses so far."""
    return len(pressed) >= count


def all_confirmed(rig: Rig) -> bool:
    """No terminal is still re-sending a press."""
    return all(not terminal.unconfirmed for terminal in rig.fleet.terminals.values())


async def test_broker_killed_and_restarted_under_load_loses_nothing_and_signs_reconverge(
    rig: Rig,
) -> None:
    rng = random.Random(7)
    pressed: list[tuple[str, str]] = []
    cancelled: set[tuple[str, str]] = set()
    stop_load = asyncio.Event()

    async def load() -> None:
        terminals = list(rig.fleet.terminals)
        while not stop_load.is_set():
            terminal_id = rng.choice(terminals)
            terminal = rig.fleet.terminals[terminal_id]
            pressed.append((terminal_id, terminal.press(rng.choice(rig.destinations(terminal_id)))))
            waiting = [r for r, outcome in terminal.outcomes.items() if outcome == "waiting"]
            if waiting and rng.random() < 0.4:
                chosen = rng.choice(waiting)
                cancelled.add((terminal_id, chosen))
                terminal.cancel(chosen)
            await asyncio.sleep(0.05 / SCALE)  # pacing of the load, not synchronisation

    async with watching(rig.network, rig.broker.address()) as monitor:
        loader = asyncio.create_task(load())
        for cycle in range(SCALE):
            await eventually(lambda: len(told_waiting(rig)) >= 5, 10, "riders waiting")
            await asyncio.to_thread(rig.broker.kill)
            down_at = len(pressed)
            await eventually(
                lambda: not any(t.connected for t in rig.fleet.terminals.values()),
                5,
                "devices cut off",
            )
            await eventually(
                functools.partial(pressed_since, pressed, down_at + 20),
                10,
                "presses during the outage",
            )
            await asyncio.to_thread(rig.broker.start)
            if cycle == SCALE - 1:
                stop_load.set()
            took = await eventually(
                rig.signs_converged, 5, "signs re-converged after the broker's return"
            )
            figure(f"broker restart {cycle + 1}: signs re-converged in", f"{took:.2f} s")
        stop_load.set()
        await loader
        took = await eventually(lambda: all_confirmed(rig), 10, "every press confirmed")
        await eventually(rig.signs_converged, 5, "signs converged at rest")
        report = monitor.ledger.report()

    # Pressing again for the same destination at the same terminal joins the rider's request
    # (its screen names the new press, with the same code): judge by (terminal, code).
    told = told_waiting(rig)
    gone = {(t, rig.fleet.terminals[t].codes[r]) for t, r in cancelled}
    stored = rig.stored()
    lost = [(key, stored.get(key)) for key in told - gone if stored.get(key) != "waiting"]
    assert lost == [], f"riders told 'waiting' but not stored as waiting: {lost}"
    missed = [(key, stored.get(key)) for key in gone if stored.get(key) != "cancelled"]
    assert missed == [], f"cancels lost: {missed}"
    stored_waiting = sorted(key for key, state in stored.items() if state == "waiting")
    assert len((await live(rig.http))["waiting"]) == len(stored_waiting)
    assert_safe(report)
    figure("presses under broker faults", f"{len(pressed)} ({SCALE} outage(s)), 0 lost")
    figure(
        "longest phantom during broker faults",
        f"{report.longest_phantom.total_seconds() * 1000:.0f} ms",
    )


async def test_sigkill_with_hundreds_waiting_restores_every_rider_and_reasserts_signs(
    rig: Rig,
) -> None:
    rng = random.Random(11)
    per_stop = 30 * SCALE if SCALE <= 3 else 100
    async with watching(rig.network, rig.broker.address()) as monitor:
        # One rider per terminal and destination (pressing again joins the same request) …
        for terminal_id, terminal in rig.fleet.terminals.items():
            for destination in rig.destinations(terminal_id):
                terminal.press(destination)
        # … and hundreds more through the API, as an app would.
        boarding = list(rig.fleet.terminals.values())
        asks = [
            (terminal.stop.id, rng.choice(rig.destinations(terminal.terminal_id)), f"app-{i}")
            for terminal in boarding
            for i in range(per_stop - len(rig.destinations(terminal.terminal_id)))
        ]
        phones = [f"+3361{index:07d}" for index in range(len(asks))]  # one rider each
        tokens = await asyncio.to_thread(
            account_tokens, rig.database_url, phones, AccountRole.RIDER
        )
        for (stop_id, destination, ref), token in zip(asks, tokens, strict=True):
            answer = await rig.http.post(
                "/api/v1/requests",
                json={
                    "line_id": LINE,
                    "stop_id": stop_id,
                    "destination_id": destination,
                    "client_ref": f"{stop_id}-{ref}",
                },
                headers=bearer(token),
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["state"] == "waiting"
            monitor.ledger.rider_waits("api", f"{stop_id}-{ref}", stop_id)
        await eventually(lambda: all_confirmed(rig), 30, "every press confirmed")
        waiting_before = told_waiting(rig)
        total = len(waiting_before) + len(asks)
        seqs = {sign_id: sign.seq or 0 for sign_id, sign in rig.fleet.signs.items()}
        codes = {t: dict(term.codes) for t, term in rig.fleet.terminals.items()}

        await asyncio.to_thread(rig.service.kill)
        started = time.monotonic()
        await asyncio.to_thread(rig.service.start)

        def reasserted() -> bool:
            return all(
                (sign.seq or 0) > seqs[sign_id] and sign.lit
                for sign_id, sign in rig.fleet.signs.items()
            )

        await eventually(reasserted, 10, "every sign re-asserted")
        figure(
            f"SIGKILL with {total} waiting: signs re-asserted",
            f"{time.monotonic() - started:.2f} s after the restart began (incl. process start)",
        )
        assert len((await live(rig.http))["waiting"]) == total
        assert told_waiting(rig) == waiting_before
        assert {t: dict(term.codes) for t, term in rig.fleet.terminals.items()} == codes
        report = monitor.ledger.report()
    stored = rig.stored()
    assert all(stored.get(key) == "waiting" for key in waiting_before)
    assert_safe(report)


async def test_a_failing_database_write_refuses_the_request_clearly_and_applies_nothing_half(
    rig: Rig,
) -> None:
    engine = sqlalchemy.create_engine(rig.database_url)
    dialect = engine.dialect.name
    inject = (
        [
            "CREATE TRIGGER injected_fault BEFORE INSERT ON request_event "
            "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        ]
        if dialect == "sqlite"
        else [
            "CREATE FUNCTION injected_fault() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER injected_fault BEFORE INSERT ON request_event "
            "FOR EACH ROW EXECUTE FUNCTION injected_fault()",
        ]
    )
    heal = "DROP TRIGGER injected_fault" + ("" if dialect == "sqlite" else " ON request_event")
    terminal = rig.fleet.terminals["t-marck-est"]
    try:
        async with watching(rig.network, rig.broker.address()) as monitor:
            with engine.begin() as connection:
                for statement in inject:
                    connection.execute(sqlalchemy.text(statement))
            request_id = terminal.press("dunkerque-est")
            took = await eventually(
                lambda: terminal.outcomes.get(request_id) == "refused",
                REFUSE_SECONDS + 10,
                "a clear refusal while the database fails",
            )
            figure("database failing: rider told 'refused'", f"{took:.2f} s after the press")
            assert "writer.commit_failed" in rig.service.log()
            assert terminal.screen is not None
            assert terminal.screen.lines[0] == "Service momentanement indisponible"
            assert rig.stored() == {}, "half-applied write"

            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(heal))
            await eventually(
                lambda: "refused" in rig.stored().values(), 15, "the refusal stored once healed"
            )
            report = monitor.ledger.report()
        with engine.connect() as connection:
            history = [
                row[0]
                for row in connection.execute(
                    sqlalchemy.text(
                        "SELECT e.to_state FROM request_event e JOIN ride_request r "
                        "ON r.id = e.request_id WHERE r.source_ref = :ref ORDER BY e.id"
                    ),
                    {"ref": f"t-marck-est/{request_id}"},
                )
            ]
        # Accepted, then refused: the whole story is stored, once, despite retries and resends.
        assert history == ["waiting", "refused"]
        assert_safe(report)
    finally:
        engine.dispose()


def alerts_of(log: str, event: str, device: str) -> int:
    """How many `alert.raised` / `alert.cleared` lines name this device."""
    return sum(1 for line in log.splitlines() if f'"{event}"' in line and device in line)


FLAPPER = "pmv-marck-est-1"


@pytest.mark.without_devices(FLAPPER)
async def test_a_flapping_sign_raises_and_clears_its_alert_without_flooding_displays(
    rig: Rig,
) -> None:
    flaps = 10 * SCALE
    rig.fleet.terminals["t-marck-est"].press("dunkerque-est")
    await eventually(lambda: len(told_waiting(rig)) == 1, 10, "a rider waiting at Marck")
    watcher = DeviceClient(rig.broker.port, OBSERVER, rig.broker.password(OBSERVER))
    flapper = DeviceClient(rig.broker.port, FLAPPER, rig.broker.password(FLAPPER))
    try:
        assert watcher.wait_connected()
        assert flapper.wait_connected()
        watcher.subscribe(f"{PREFIX}/signs/+/display")
        status = f"{PREFIX}/signs/{FLAPPER}/status"
        started = time.monotonic()
        for _ in range(flaps):
            flapper.publish(status, {"v": 1, "online": False})
            flapper.publish(status, {"v": 1, "online": True})
        flapper.publish(status, {"v": 1, "online": True})  # and a heartbeat
        log_of = rig.service.log

        # One episode: one alert, cleared once the sign stayed online for the settle time.
        await eventually(
            lambda: alerts_of(log_of(), "alert.cleared", FLAPPER) >= 1, 15, "the alert cleared"
        )
        elapsed = time.monotonic() - started
        alerts = (await live(rig.http))["alerts"]
        assert not any(FLAPPER in str(alert) for alert in alerts)
        assert alerts_of(log_of(), "alert.raised", FLAPPER) == 1
        assert alerts_of(log_of(), "alert.cleared", FLAPPER) == 1
        flapping = len(watcher.received(f"{PREFIX}/signs/{FLAPPER}/display"))
        steady = len(watcher.received(f"{PREFIX}/signs/pmv-marck-est-2/display"))
        # Displays come at lease refreshes (every 2 s) only, never one per return.
        assert flapping <= steady + 1, f"{flapping} displays for {flaps} returns"
        assert steady <= elapsed / 2 + 2, "a flapping sign must not disturb its neighbour"
        figure(
            f"flapping sign, {flaps} offline/online cycles",
            f"1 alert raised and cleared; {flapping} displays ({steady} to its neighbour) "
            f"in {elapsed:.1f} s",
        )
    finally:
        watcher.close()
        flapper.close()


FLOOD = 5000 * SCALE


@pytest.mark.without_devices(FLAPPER)
async def test_a_device_flooding_and_flapping_degrades_itself_only(rig: Rig) -> None:
    rig.fleet.terminals["t-marck-est"].press("dunkerque-est")
    await eventually(lambda: len(told_waiting(rig)) == 1, 10, "a rider waiting at Marck")
    flooder = DeviceClient(rig.broker.port, FLAPPER, rig.broker.password(FLAPPER))
    others = [t for t in rig.fleet.terminals if t != "t-marck-est"]
    try:
        assert flooder.wait_connected()
        flooder.subscribe(f"{PREFIX}/signs/{FLAPPER}/display")
        status = f"{PREFIX}/signs/{FLAPPER}/status"
        bodies = [b'{"v":1,"online":false}', b'{"v":1,"online":true}']
        started = time.monotonic()

        def flood() -> float:
            info = None
            for number in range(FLOOD):
                info = flooder.client.publish(status, bodies[number % 2], qos=1)
            assert info is not None
            info.wait_for_publish(60)
            return time.monotonic() - started

        flooding = asyncio.create_task(asyncio.to_thread(flood))
        pressed: list[tuple[str, str]] = []
        while not flooding.done():  # the other stops keep pressing throughout
            for terminal_id in others:
                terminal = rig.fleet.terminals[terminal_id]
                pressed.append((terminal_id, terminal.press(rig.destinations(terminal_id)[0])))
            await asyncio.sleep(0.1)
        flood_seconds = await flooding
        # Every other press is answered: its terminal was told "waiting" (none lost).
        await eventually(
            lambda: all(
                rig.fleet.terminals[t].outcomes.get(request_id) == "waiting"
                for t, request_id in pressed
            ),
            15,
            "every other stop's press answered",
        )
        answered_at = time.monotonic() - started
        log_of = rig.service.log

        async def heartbeat() -> None:
            # It calms down and heartbeats like a device (its last status may have been dropped).
            while True:
                await asyncio.to_thread(flooder.publish, status, {"v": 1, "online": True})
                await asyncio.sleep(0.5)

        beating = asyncio.create_task(heartbeat())
        try:
            await eventually(
                lambda: alerts_of(log_of(), "alert.cleared", FLAPPER) >= 2,
                20,
                "both alerts cleared",
            )
        finally:
            beating.cancel()
        raised = alerts_of(log_of(), "alert.raised", FLAPPER)
        assert raised == 2, "one flooding and one offline alert, each once"
        assert alerts_of(log_of(), "alert.cleared", FLAPPER) == 2
        assert not any(FLAPPER in str(alert) for alert in (await live(rig.http))["alerts"])
        elapsed = time.monotonic() - started
        displays = len(flooder.received(f"{PREFIX}/signs/{FLAPPER}/display"))
        # Lease refreshes every 2 s, one plain return, and the retained one on subscribing.
        assert displays <= elapsed / 2 + 3, f"{displays} displays in {elapsed:.1f} s"
        metrics = (await rig.http.get("/metrics")).text
        limited = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("carpool_mqtt_rate_limited_total")
        )
        assert limited > 0
        figure(
            f"{FLOOD} messages from one sign (flapping) while {len(others)} terminals press",
            f"flood sent in {flood_seconds:.1f} s; {len(pressed)} other presses, 0 lost, all "
            f"answered {answered_at:.1f} s after the flood began; {limited:.0f} dropped at the "
            f"gateway; {raised} alerts raised and cleared; {displays} displays to the flooder",
        )
    finally:
        flooder.close()


GUESSERS = 1000


async def test_a_thousand_drivers_guessing_codes_validate_nobody(rig: Rig) -> None:
    for terminal_id, terminal in rig.fleet.terminals.items():
        terminal.press(rig.destinations(terminal_id)[0])
    riders = len(rig.fleet.terminals)
    await eventually(lambda: len(told_waiting(rig)) == riders, 15, "a rider at every terminal")
    waiting = told_waiting(rig)
    held = {code for _terminal, code in waiting}
    wrong = [f"{n:04d}" for n in range(10_000) if f"{n:04d}" not in held]
    phones = [f"+3368{n:07d}" for n in range(GUESSERS + 1)]
    *guessers, fresh = await asyncio.to_thread(
        account_tokens, rig.database_url, phones, AccountRole.DRIVER
    )
    started = time.monotonic()
    statuses: list[int] = []
    for batch in range(0, GUESSERS, 50):
        answers = await asyncio.gather(
            *(
                rig.http.post(
                    f"/api/v1/lines/{LINE}/validations",
                    json={"code": wrong[n]},
                    headers={
                        **bearer(guessers[n]),
                        "X-Forwarded-For": f"10.{n // 250}.{n % 250}.1",
                    },
                )
                for n in range(batch, batch + 50)
            )
        )
        statuses += [answer.status_code for answer in answers]
    seconds = time.monotonic() - started
    assert statuses.count(404) == 20  # the line's budget; then no code is checked at all
    assert statuses.count(429) == GUESSERS - 20
    # The right code of a waiting rider, from a driver and an address never seen, is not
    # checked either.
    _terminal, code = sorted(waiting)[0]
    answer = await rig.http.post(
        f"/api/v1/lines/{LINE}/validations",
        json={"code": code},
        headers={**bearer(fresh), "X-Forwarded-For": "192.0.2.1"},
    )
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0
    assert told_waiting(rig) == waiting
    assert len((await live(rig.http))["waiting"]) == riders
    await eventually(rig.signs_converged, 10, "signs still lit for every rider")
    await eventually(
        lambda: "code_guessing" in rig.service.log(), 5, "the line's guessing alarm logged"
    )
    alerts = (await live(rig.http))["alerts"]
    assert any("wrong drivers' codes" in alert for alert in alerts)
    figure(
        f"{GUESSERS} drivers guessing codes while {riders} riders wait",
        f"{GUESSERS} guesses in {seconds:.1f} s: 20 checked (all wrong), {GUESSERS - 20} "
        "refused with 429; 0 riders validated, the line's alarm raised",
    )
