"""A two-process cluster (CARPOOL_CLUSTER) through the failures of its parts, with real
processes: the owner drained by SIGTERM, PostgreSQL restarted under load, Mosquitto restarted.

Each test runs the `pair` of tests/test_cluster.py (two `carpool-line serve`, one PostgreSQL,
one locked-down Mosquitto, a virtual device per sign and terminal) and the safety monitor: no
sign may show a passenger nobody is for longer than one lease. Figures are printed
(`pytest -s`) and quoted in docs/OPERATIONS.md and docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import random
import time
from dataclasses import dataclass, field

import httpx
import pytest
import sqlalchemy

from dispatcher.model import StopId
from line_service.accounts.book import AccountRole
from line_service.cluster.presence import node_topic
from line_service.cluster.standby import EXIT_LOST
from stop_devices import topics
from tests.support.accounts import account_tokens, bearer
from tests.support.faults import (
    DeviceClient,
    assert_safe,
    eventually,
    figure,
    live,
    watched_through,
)
from tests.support.postgres import ThrowawayPostgres
from tests.support.service import LINE, ServiceProcess
from tests.test_cluster import (
    SIGNS,
    Pair,
    owns_the_line,
    pair,  # noqa: F401 - the fixture, shared
    standing_by,
    strictly_increasing,
)
from tests.test_faults import LEASE_SECONDS, Rig, all_confirmed, told_waiting

ON_SHARED_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
ON_OWN_POSTGRES = pytest.mark.parametrize("database_url", ["own-postgresql"], indirect=True)


def press_everywhere(cluster: Pair) -> None:
    """One rider per terminal, for its stop's first destination."""
    for terminal in cluster.fleet.terminals.values():
        stop = StopId(terminal.stop.id)
        terminal.press(cluster.network.lines[0].destinations_from(stop)[0].id)


def longest_gap(observer: DeviceClient, sign: str, since: float, until: float) -> float:
    """The longest time between two displays of `sign` in [last one before `since`, `until`]:
    the handover's gap (old owner's last display → new owner's first) is one of them."""
    times = [at for at, _ in observer.received_at(f"{SIGNS}/{sign}/display") if at <= until]
    before = [at for at in times if at <= since]
    window = [before[-1], *(at for at in times if at > since)] if before else []
    return max((b - a for a, b in itertools.pairwise(window)), default=float("inf"))


def current_owner(cluster: Pair) -> ServiceProcess | None:
    """The process answering /readyz as the line's owner, if one does."""
    owners = [p for p in (cluster.first, cluster.second) if p.process and owns_the_line(p)]
    return owners[0] if len(owners) == 1 else None


async def one_owner_and_one_standby(cluster: Pair) -> tuple[ServiceProcess, ServiceProcess]:
    """Wait until one process owns the line and the other stands by; (owner, standby)."""

    def settled() -> bool:
        owner = current_owner(cluster)
        if owner is None:
            return False
        other = cluster.second if owner is cluster.first else cluster.first
        return other.process is not None and standing_by(other)

    await eventually(lambda: asyncio.to_thread(settled), 30, "one owner and one standby")
    owner = current_owner(cluster)
    assert owner is not None
    return owner, (cluster.second if owner is cluster.first else cluster.first)


async def riders_on_the_signs(cluster: Pair, owner: Rig) -> set[tuple[str, str]]:
    """One rider per terminal, each press answered and shown on the signs; who was told to wait."""
    press_everywhere(cluster)
    await eventually(lambda: all_confirmed(owner), 10, "every press answered")
    await eventually(owner.signs_converged, 10, "the riders on the signs")
    return told_waiting(owner)


@ON_SHARED_POSTGRES
async def test_sigterm_drains_the_owner_and_the_standby_takes_over_without_a_dark_gap(
    pair: Pair,  # noqa: F811
) -> None:
    async with (
        watched_through(pair.network, pair.observer) as ledger,
        httpx.AsyncClient(base_url=pair.first.base_url) as http,
    ):
        owner = pair.rig(pair.first, http)
        waiting = await riders_on_the_signs(pair, owner)
        codes = {t: dict(terminal.codes) for t, terminal in pair.fleet.terminals.items()}
        assert len(waiting) == len(pair.fleet.terminals)
        signs = list(pair.fleet.signs)

        signalled = time.monotonic()
        await asyncio.to_thread(pair.first.stop)  # SIGTERM: drained, locks given back, exit
        exited = time.monotonic()

        def reasserted() -> bool:  # a display for every sign since the old owner is gone
            return all(
                any(at > exited for at, _ in pair.observer.received_at(f"{SIGNS}/{sign}/display"))
                for sign in signs
            )

        await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 10, "new owner")
        await eventually(reasserted, 10, "every sign re-asserted by the new owner")
        done = time.monotonic()
        gaps = {sign: longest_gap(pair.observer, sign, signalled, done) for sign in signs}
        async with httpx.AsyncClient(base_url=pair.second.base_url) as heir_http:
            heir = pair.rig(pair.second, heir_http)
            await eventually(heir.signs_converged, 10, "signs as the new owner wants them")
            assert len((await live(heir_http))["waiting"]) == len(waiting)
            assert told_waiting(heir) == waiting  # terminals still show them waiting
        report = ledger.report()
    worst = max(gaps.values())
    figure(
        "SIGTERM handover: signal → every sign shown by the new owner", f"{done - signalled:.2f} s"
    )
    figure("SIGTERM handover: longest time between two displays of a sign", f"{worst:.2f} s")
    assert worst < LEASE_SECONDS, gaps  # no sign went dark: its lease outlived the handover
    assert {t: dict(terminal.codes) for t, terminal in pair.fleet.terminals.items()} == codes
    assert set(owner.stored().values()) == {"waiting"}
    assert strictly_increasing(pair.seqs()), pair.seqs()
    assert all(pair.service_presence())
    assert_safe(report)


@dataclass
class Load:
    """Presses, cancels and app requests sent to the cluster until told to stop."""

    pair: Pair
    tokens: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    pressed: list[tuple[str, str]] = field(default_factory=list)
    cancelled: set[tuple[str, str]] = field(default_factory=set)
    asked: dict[str, str] = field(default_factory=dict)  # client_ref -> stop, answered waiting
    refused_asks: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def destinations(self, terminal_id: str) -> list[str]:
        stop = StopId(self.pair.fleet.terminals[terminal_id].stop.id)
        return [s.id for s in self.pair.network.lines[0].destinations_from(stop)]

    async def run(self, on_asked: functools.partial[None]) -> None:
        terminals = list(self.pair.fleet.terminals)
        tokens = iter(self.tokens)
        async with httpx.AsyncClient(timeout=3) as http:
            for round_ in itertools.count():
                if self.stop.is_set():
                    return
                terminal_id = self.rng.choice(terminals)
                terminal = self.pair.fleet.terminals[terminal_id]
                wanted = self.rng.choice(self.destinations(terminal_id))
                self.pressed.append((terminal_id, terminal.press(wanted)))
                waiting = [r for r, outcome in terminal.outcomes.items() if outcome == "waiting"]
                if waiting and self.rng.random() < 0.3:
                    chosen = self.rng.choice(waiting)
                    self.cancelled.add((terminal_id, chosen))
                    terminal.cancel(chosen)
                token = next(tokens, None) if round_ % 4 == 0 else None
                if token is not None:
                    await self._ask(http, terminal_id, wanted, token, f"app-{round_}", on_asked)
                await asyncio.sleep(0.1)  # pacing of the load, not synchronisation

    async def _ask(
        self,
        http: httpx.AsyncClient,
        terminal_id: str,
        destination: str,
        token: str,
        ref: str,
        on_asked: functools.partial[None],
    ) -> None:
        """An app's request, to whichever process takes it (a standby answers 503)."""
        stop = self.pair.fleet.terminals[terminal_id].stop.id
        body = {"line_id": LINE, "stop_id": stop, "destination_id": destination, "client_ref": ref}
        for process in (self.pair.first, self.pair.second):
            try:
                answer = await http.post(
                    f"{process.base_url}/api/v1/requests", json=body, headers=bearer(token)
                )
            except httpx.HTTPError:
                continue
            if answer.status_code == 201 and answer.json()["state"] == "waiting":
                self.asked[ref] = stop
                on_asked(ref, stop)
                return
        self.refused_asks += 1


@ON_OWN_POSTGRES
async def test_postgresql_restarted_under_load_leaves_one_owner_and_loses_no_rider(
    pair: Pair,  # noqa: F811
    own_postgres: ThrowawayPostgres,
) -> None:
    phones = [f"+3362{index:07d}" for index in range(40)]
    tokens = await asyncio.to_thread(account_tokens, pair.database_url, phones, AccountRole.RIDER)
    load = Load(pair, tokens)
    async with watched_through(pair.network, pair.observer) as ledger:
        asked = functools.partial(ledger.rider_waits, "api")
        loader = asyncio.create_task(load.run(asked))
        async with httpx.AsyncClient(base_url=pair.first.base_url) as http:
            before = pair.rig(pair.first, http)
            await eventually(lambda: len(told_waiting(before)) >= 5, 15, "riders waiting")
            await eventually(lambda: len(load.asked) >= 2, 15, "app requests taken")
        pressed_before = len(load.pressed)
        restarted_at = time.monotonic()
        await asyncio.to_thread(own_postgres.restart)  # every session ends, the locks too
        assert pair.first.process is not None
        code = await asyncio.to_thread(pair.first.process.wait, 15)
        assert code == EXIT_LOST, pair.first.log()[-3000:]
        pair.first.process = None
        await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 20, "new owner")
        took = time.monotonic() - restarted_at
        await asyncio.to_thread(pair.first.start, False)  # as its supervisor would
        owner, _ = await one_owner_and_one_standby(pair)
        assert owner is pair.second
        await eventually(lambda: len(load.pressed) >= pressed_before + 20, 20, "more presses")
        load.stop.set()
        await loader
        async with httpx.AsyncClient(base_url=owner.base_url) as http:
            heir = pair.rig(owner, http)
            await eventually(lambda: all_confirmed(heir), 20, "every press confirmed")
            await eventually(heir.signs_converged, 10, "signs converged at rest")
            on_signs = (await live(http))["waiting"]
            report = ledger.report()
            stored = heir.stored()
    lost = lost_riders(heir, load, stored)
    assert lost == [], f"riders told 'waiting' but not stored as waiting: {lost}"
    app_riders = await asyncio.to_thread(stored_app_requests, pair.database_url)
    assert all(app_riders.get(ref) == "waiting" for ref in load.asked), (load.asked, app_riders)
    stored_waiting = [key for key, state in stored.items() if state == "waiting"]
    assert len(on_signs) == len(stored_waiting)
    assert strictly_increasing(pair.seqs()), "two processes published for the line"
    assert "cluster.ownership_lost" in pair.first.log()
    assert_safe(report)
    figure("PostgreSQL restarted: new owner in", f"{took:.2f} s after the restart began")
    figure(
        "presses and app requests through a PostgreSQL restart",
        f"{len(load.pressed)} presses, {len(load.asked)} app requests taken, 0 lost",
    )


def stored_app_requests(database_url: str) -> dict[str, str]:
    """client_ref -> state of every request made through the API."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT source_ref, state FROM ride_request WHERE channel = 'api'")
            )
            return {str(ref).rsplit(":", 1)[-1]: str(state) for ref, state in rows}
    finally:
        engine.dispose()


def lost_riders(
    heir: Rig, load: Load, stored: dict[tuple[str, str], str]
) -> list[tuple[tuple[str, str], str | None]]:
    """Riders a terminal told "waiting" (and who did not cancel) not stored as waiting, and
    cancels not stored as cancelled."""
    told = told_waiting(heir)
    gone = {(t, heir.fleet.terminals[t].codes[r]) for t, r in load.cancelled}
    lost = [(key, stored.get(key)) for key in told - gone if stored.get(key) != "waiting"]
    missed = [(key, stored.get(key)) for key in gone if stored.get(key) != "cancelled"]
    return lost + missed


@ON_SHARED_POSTGRES
async def test_broker_restarted_with_two_processes_one_owner_publishes_and_says_online(
    pair: Pair,  # noqa: F811
) -> None:
    async with (
        watched_through(pair.network, pair.observer) as ledger,
        httpx.AsyncClient(base_url=pair.first.base_url) as http,
    ):
        owner = pair.rig(pair.first, http)
        waiting = await riders_on_the_signs(pair, owner)
        last_seq = {sign: values[-1] for sign, values in pair.seqs().items()}

        await asyncio.to_thread(pair.broker.kill)
        await eventually(lambda: not pair.fleet.connected(), 10, "devices cut off")
        before = len(pair.observer.since(0))
        await asyncio.to_thread(pair.broker.start)  # no persistence: retained state is gone
        took = await eventually(owner.signs_converged, 15, "signs re-converged")
        figure("broker restarted (cluster): signs re-converged in", f"{took:.2f} s")
        service = topics.DISPATCHER_STATUS
        owner_node, standby_node = (
            node_topic(f"dispatcher-{process.http_port}") for process in (pair.first, pair.second)
        )

        def said(topic: str) -> list[bool]:
            after = pair.observer.since(before)
            return [json.loads(payload)["online"] for t, payload in after if t == topic]

        await eventually(lambda: bool(said(service)), 10, "the service's presence again")
        await eventually(lambda: bool(said(owner_node)), 10, "the owner's presence again")
        # A standby keeps its own session (it takes lines over without connecting first).
        await eventually(lambda: bool(said(standby_node)), 10, "the standby's presence again")
        assert await asyncio.to_thread(owns_the_line, pair.first)
        assert await asyncio.to_thread(standing_by, pair.second)
        assert len((await live(http))["waiting"]) == len(waiting)
        assert told_waiting(owner) == waiting
        report = ledger.report()
    after = {
        sign: [json.loads(p)["seq"] for t, p in pair.observer.since(before) if t == topic]
        for sign in pair.fleet.signs
        if (topic := f"{SIGNS}/{sign}/display")
    }
    assert all(said(service)), said(service)
    assert all(said(owner_node))
    assert all(said(standby_node))  # up, and publishing no display: seqs only go up below
    assert strictly_increasing(after)
    assert all(not values or values[0] > last_seq[sign] for sign, values in after.items())
    assert set(owner.stored().values()) == {"waiting"}
    assert_safe(report)
