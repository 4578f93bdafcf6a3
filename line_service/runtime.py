"""Composition root: builds every object of the service and runs them under one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.events import ForeignCodesSeen, StorageFailed
from dispatcher.model import Network
from dispatcher.request_machine import Cause, RideRequest, transition
from dispatcher.state import DispatcherState
from line_service.abuse.gate import AbuseGate
from line_service.accounts.book import AccountBook
from line_service.accounts.sign_in import SignIn, SignInRules
from line_service.authority.driver_identity import identify_with
from line_service.authority.trip_links import TripLinker
from line_service.authority.wiring import AuthorityServices, build_authority
from line_service.cluster.presence import node_presence
from line_service.dispatch.device_gateway import DeviceGateway
from line_service.dispatch.device_limits import DeviceLimiter
from line_service.dispatch.engine import Clock, Engine, Inbox
from line_service.dispatch.intake import Intake
from line_service.dispatch.line_share import LineShare
from line_service.dispatch.screen_waits import WaitOnScreens
from line_service.dispatch.timers import Timers
from line_service.dispatch.writer import Writer
from line_service.driver_trips.announcements import DriverTrips
from line_service.estimates.estimator import WaitEstimator, load_corridors
from line_service.estimates.screen_waits import ScreenWaits
from line_service.network.lines_file import load_network
from line_service.network.orphans import LostRidersError, lost_place, orphans
from line_service.privacy.personal_data import run_retention
from line_service.settings import EMBEDDED, Settings
from line_service.sms.channel import SmsChannel, SmsNotifier, build_sms_sender
from line_service.sms.opt_outs import OptOuts, OptOutSender
from line_service.storage.abuse_ledger import DatabaseLedger
from line_service.storage.node_addresses import NodeAddresses
from line_service.storage.party_store import PartyStore
from line_service.storage.request_lines import RequestLineLookup
from line_service.storage.sms_store import SmsStore
from line_service.storage.store import Store
from line_service.storage.voice_store import VoiceStore
from line_service.storage.write_probe import WriteProbe
from line_service.voice.channel import VoiceChannel
from sms_gateway.phones import phone_hash
from stop_devices.mqtt_link import BrokerAddress

if TYPE_CHECKING:  # imported where a cluster is built: psycopg alone costs ~70 ms of start-up
    from line_service.cluster.ownership import LineOwnership

log = structlog.get_logger(__name__)

RESTORE_WINDOW = timedelta(hours=2)
SHUTDOWN_FLUSH_SECONDS = 5.0
HOUSEKEEPING_WAIT = timedelta(minutes=1)
OPT_OUTS_REFRESH_SECONDS = 2.0  # a cluster: a STOP taken by another process holds here within
FOREIGN_CODES_SECONDS = 1.0  # a cluster: codes held on other processes' lines, read this often

BackgroundJob = Callable[["Runtime"], Coroutine[Any, Any, None]]


def utc_now() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything the running service holds; handed to routes through the lifespan state."""

    settings: Settings
    network: Network
    store: Store
    engine: Engine
    intake: Intake
    writer: Writer
    timers: Timers
    gateway: DeviceGateway
    clock: Clock
    started_at: datetime = field(default_factory=utc_now)
    sms: SmsChannel | None = None
    authority: AuthorityServices | None = None  # fallbacks and trip recorder
    estimates: WaitEstimator | None = None  # riders' expected waits (API, SMS, GTFS)
    write_probe: WriteProbe | None = None
    notifier: SmsNotifier | None = None  # texts riders about changes the engine did not make
    sign_in: SignIn | None = None  # riders' and drivers' accounts: codes by SMS, tokens
    driver_trips: DriverTrips | None = None  # "Je passe": trips drivers announce
    abuse: AbuseGate | None = None  # wrong-code budgets and request rates (SMS, HTTP)
    voice: VoiceChannel | None = None  # the phone line (Twilio Voice), riding on the SMS channel
    ownership: LineOwnership | None = None  # CARPOOL_CLUSTER: the lines' locks; None: all lines
    share: LineShare | None = None  # CARPOOL_CLUSTER: the lines dispatched here, as they change
    request_lines: RequestLineLookup | None = None  # CARPOOL_CLUSTER: which line a request is of
    node_addresses: NodeAddresses | None = None  # CARPOOL_CLUSTER: where each process answers

    async def ready(self) -> dict[str, object]:
        """Whether the broker is connected and the database accepts a write now, and which
        lines this process dispatches."""
        if self.write_probe is None:
            self.write_probe = WriteProbe(self.store)
        database = await self.write_probe.accepts_writes()
        checks: dict[str, object] = {"broker": self.gateway.link.connected, "database": database}
        if self.ownership is None:
            return checks
        return {**checks, "role": self.ownership.role, "lines_owned": list(self.ownership.owned)}

    async def settled(self) -> None:
        """Return once the signs were re-asserted after start-up, or this process stands by."""
        if self.ownership is not None:
            await self.ownership.tried.wait()
            if self.ownership.role == "standby":
                return
        await self.gateway.reasserted.wait()


def sign_in_rules(settings: Settings) -> SignInRules:
    """The sign-in codes' lifetime, tries and limits, and the tokens' lifetime, from settings."""
    return SignInRules(
        code_lifetime=timedelta(seconds=settings.sign_in_code_seconds),
        max_attempts=settings.sign_in_attempts,
        resend_window=timedelta(seconds=settings.sign_in_resend_seconds),
        hourly_limit=settings.sign_in_codes_per_hour,
        token_lifetime=timedelta(days=settings.account_token_days),
    )


def _ownership(settings: Settings, network: Network) -> LineOwnership:
    from line_service.cluster.ownership import LineOwnership

    return LineOwnership(
        settings.database_url, [line.id for line in network.lines], settings.mqtt_client_id
    )


def build_runtime(
    settings: Settings, clock: Clock = utc_now, network: Network | None = None
) -> Runtime:
    """Wire every part from settings (raises LinesFileError on a broken lines file); `network`
    is the lines file already read and checked, when the caller has it."""
    if network is None:
        network = load_network(settings.lines_file)
    if settings.ignore_service_hours:
        log.warning("service_hours.ignored", reason="CARPOOL_IGNORE_SERVICE_HOURS (demo mode)")
        network = Network(tuple(replace(line, service_hours=None) for line in network.lines))
    salt = settings.phone_hash_salt.get_secret_value()
    store = Store(settings.database_url, phone_hasher=lambda phone: phone_hash(phone, salt))
    inbox = Inbox()
    ownership = _ownership(settings, network) if settings.cluster else None
    writer = Writer(
        store,
        refuse_after=settings.storage_refuse_seconds,
        on_stuck=lambda ids: inbox.submit_nowait(StorageFailed(tuple(ids))),
        gate=ownership.fence if ownership else None,
    )
    gateway = DeviceGateway(
        network,
        BrokerAddress.from_url(settings.broker_url),
        settings.mqtt_client_id,
        inbox,
        DeviceLimiter(
            settings.device_rate_per_second,
            settings.device_burst,
            settings.device_flood_quiet_seconds,
        ),
        # A cluster: one process's death is not the service's (see line_service/cluster).
        will=node_presence(settings.mqtt_client_id, False) if ownership else None,
        announcements=(node_presence(settings.mqtt_client_id, True),) if ownership else (),
        gate=ownership.fence if ownership else None,
        per_line=ownership is not None,  # a cluster process serves the lines it holds only
    )
    timers = Timers(inbox.submit_nowait, settings.lease_refresh)
    sms_store = SmsStore(store.engine)
    opt_outs = OptOuts(lambda phone: phone_hash(phone, salt))
    sms_sender = OptOutSender(build_sms_sender(settings, sms_store, clock), opt_outs)
    accounts = AccountBook(store.engine)
    authority = build_authority(
        network,
        store,
        sms_sender,
        settings,
        clock,
        # An app driver's trip names the account; the registry gets its verified number.
        identify=identify_with(accounts.phone_of_ref),
    )
    notifier = SmsNotifier(network, sms_sender)
    corridors_file = settings.lines_file.parent / "corridors.yaml"
    estimates = WaitEstimator(
        network, store.finished_waits, clock, lambda: load_corridors(corridors_file)
    )
    # No history read while the devices are re-asserted: the warm-up reads them just after.
    screen_waits = ScreenWaits(network, estimates, reads_allowed=gateway.reasserted.is_set)
    engine = Engine(
        # A cluster process holds no line until it takes some (line_service/cluster).
        DispatcherState(network=Network(()) if ownership else network),
        clock,
        inbox,
        WaitOnScreens(gateway, network, screen_waits.minutes),
        timers,
        writer,
        notifier=notifier,
        fallback=authority.fallbacks,
        listeners=[authority.trips],
    )
    intake = Intake(engine, refusal=ownership.refusal) if ownership else Intake(engine)
    abuse = AbuseGate(
        settings.guess_limits,
        settings.request_rates,
        clock,
        inbox.submit_nowait,
        lambda phone: phone_hash(phone, salt),
        # In the database: a restart, a takeover or another process counts on (issue #15).
        ledger=DatabaseLedger(store.engine),
    )
    driver_trips = DriverTrips(store.engine, sms_sender, lambda: engine.state, clock)
    sms = SmsChannel(
        settings,
        network,
        engine,
        intake,
        sms_store,
        sms_sender,
        clock,
        opt_outs,
        abuse,
        estimates=estimates,
        parties=PartyStore(store.engine),
        trip_links=TripLinker(store, clock, settings.trip_link_hours),
        next_driver=driver_trips.next_driver_at,
    )
    runtime = Runtime(
        settings,
        network,
        store,
        engine,
        intake,
        writer,
        timers,
        gateway,
        clock,
        sms=sms,
        authority=authority,
        estimates=estimates,
        notifier=notifier,
        sign_in=SignIn(
            store.engine,
            sms_sender,
            lambda phone: phone_hash(phone, salt),
            clock,
            sign_in_rules(settings),
            accounts,
        ),
        driver_trips=driver_trips,
        abuse=abuse,
        voice=VoiceChannel(sms, VoiceStore(store.engine)),
        ownership=ownership,
        node_addresses=NodeAddresses(store.engine) if ownership else None,
    )
    if ownership is not None:
        runtime.share = LineShare(
            network,
            store,
            engine,
            gateway,
            writer,
            clock,
            RESTORE_WINDOW,
            # Say again where this process answers: peers forward these lines' requests there.
            on_adopted=lambda: advertise(runtime),
        )
        runtime.request_lines = RequestLineLookup(store.engine, network, clock)
        # One process at a time sends to the registry: the first line's owner.
        first = network.lines[0].id if network.lines else None
        authority.sender.active = lambda: first is not None and ownership.owns(first)
    return runtime


async def advertise(runtime: Runtime) -> None:
    """Record where this process answers HTTP, for the peers that forward to it (a cluster's
    any-door); a database that does not take it is logged, and tried again on taking the lines."""
    if runtime.ownership is None or runtime.node_addresses is None:
        return
    node, url = runtime.ownership.node, runtime.settings.peer_url
    try:
        await asyncio.to_thread(runtime.node_addresses.record, node, url, utc_now())
    except (SQLAlchemyError, OSError) as exc:  # dispatching does not depend on this row
        log.warning("cluster.address_unrecorded", node=node, url=url, error=str(exc)[:200])
        return
    log.info("cluster.address_recorded", node=node, url=url)


async def _once_reasserted(
    gateway: DeviceGateway, job: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Start housekeeping once every device was re-asserted (or after HOUSEKEEPING_WAIT with
    no broker): its database work must not slow the signs' re-assertion after a restart."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gateway.reasserted.wait(), HOUSEKEEPING_WAIT.total_seconds())
    await job()


def _warm(estimates: WaitEstimator) -> Callable[[], Coroutine[Any, Any, None]]:
    """Read the estimates' history and model once, so that the first screens show a wait."""

    async def job() -> None:
        try:
            await asyncio.to_thread(estimates.warm)
        except Exception as exc:
            log.warning("estimates.warm_failed", error=str(exc)[:200])

    return job


async def _end_lost_riders(runtime: Runtime, stored: list[RideRequest]) -> list[RideRequest]:
    """Cancel (by the operator, stored with its history) every waiting request whose place the
    lines file lost, text the riders who gave a number; the requests to restore."""
    now = runtime.clock()
    lost = [request for request in stored if lost_place(runtime.network, request) is not None]
    ended = {request.id: transition(request, Cause.OPERATOR_CANCELLED, now) for request in lost}
    await asyncio.to_thread(
        runtime.store.save, [(ended[request.id], request.state) for request in lost]
    )
    for request in ended.values():
        if runtime.notifier is not None:
            runtime.notifier.notify(request)
    log.warning(
        "service.lost_riders_ended",
        requests=sorted(ended),
        lost=[str(orphan) for orphan in orphans(runtime.network, stored)],
    )
    return [ended.get(request.id, request) for request in stored]


@contextlib.asynccontextmanager
async def running(
    runtime: Runtime, background: tuple[BackgroundJob, ...] = (), end_lost_riders: bool = False
) -> AsyncIterator[Runtime]:
    """Start the broker (if embedded), restore state, run every task; stop cleanly on exit.

    Riders waiting on a place the lines file lost raise LostRidersError before anything runs;
    with `end_lost_riders` they are cancelled by the operator instead, and told by SMS.
    In a cluster (CARPOOL_CLUSTER) the process starts holding no line and takes its share in
    the background, each line restored as it is taken (see line_service/cluster/standby.py).
    """
    settings = runtime.settings
    async with contextlib.AsyncExitStack() as stack:
        if settings.mqtt_url == EMBEDDED:
            from line_service.broker.embedded import embedded_broker  # demo mode only: amqtt

            await stack.enter_async_context(embedded_broker(settings.embedded_mqtt_port))
        await asyncio.to_thread(runtime.store.check_schema)
        await advertise(runtime)
        async with _dispatching(runtime, background, end_lost_riders):
            yield runtime


async def _follow_foreign_codes(runtime: Runtime) -> None:
    """A cluster: tell the engine, again and again, which codes riders hold on the lines of
    other processes (none is then given here: one code, one rider, over the network)."""
    lookup, ownership = runtime.request_lines, runtime.ownership
    if lookup is None or ownership is None:
        return
    told: frozenset[str] | None = None
    while True:
        try:
            codes = await asyncio.to_thread(lookup.codes_held_elsewhere, ownership.owned)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cluster.codes_unread", error=str(exc)[:200])
        else:
            if codes != told:
                runtime.engine.submit_nowait(ForeignCodesSeen(codes))
                told = codes
        await asyncio.sleep(FOREIGN_CODES_SECONDS)


@contextlib.asynccontextmanager
async def _sharing(runtime: Runtime) -> AsyncIterator[None]:
    """In a cluster, take this process's share of the lines while the block runs, and hand
    them over at its end (line_service/cluster/standby.py); alone, every line is here."""
    if runtime.ownership is None or runtime.share is None:
        yield
        return
    from line_service.cluster.standby import sharing_lines

    async with sharing_lines(runtime.ownership, runtime.share):
        yield


@contextlib.asynccontextmanager
async def _dispatching(
    runtime: Runtime, background: tuple[BackgroundJob, ...], end_lost_riders: bool
) -> AsyncIterator[Runtime]:
    """Restore the lines' state from the database and run every task until the block ends."""
    settings = runtime.settings
    async with contextlib.AsyncExitStack() as stack:
        stored = await asyncio.to_thread(
            runtime.store.live_requests, runtime.clock(), RESTORE_WINDOW
        )
        lost = orphans(runtime.network, stored)
        if lost and not end_lost_riders:  # they would wait forever, unseen
            log.error("service.lost_riders", lost=[str(orphan) for orphan in lost])
            raise LostRidersError(lost)
        if lost:
            stored = await _end_lost_riders(runtime, stored)
        runtime.timers.start()
        stack.callback(runtime.timers.shutdown)
        stack.callback(runtime.store.dispose)
        if runtime.share is None:  # one process: every line now; a cluster's as it takes them
            aliases = await asyncio.to_thread(
                runtime.store.aliases_of, [request.id for request in stored]
            )
            runtime.engine.restore(stored, aliases)
        # What start-up built (modules, the network, restored state) lives as long as the process:
        # keep it out of the cyclic collector's full passes, which otherwise stall dispatch. No
        # collection first: start-up leaves no cycles to free (measured: 0 unreachable), and a
        # full pass over it costs ~70 ms before the first sign can be re-asserted.
        gc.freeze()
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(runtime.writer.run(), name="writer"),
                group.create_task(runtime.engine.run(), name="engine"),
                group.create_task(runtime.gateway.link.run(), name="mqtt-link"),
                group.create_task(
                    _once_reasserted(
                        runtime.gateway,
                        lambda: run_retention(runtime.store, settings, runtime.clock),
                    ),
                    name="privacy-retention",
                ),
                *(
                    [
                        group.create_task(
                            _once_reasserted(runtime.gateway, _warm(runtime.estimates)),
                            name="estimates-warm",
                        )
                    ]
                    if runtime.estimates
                    else []
                ),
                *([group.create_task(runtime.sms.run(), name="sms-sender")] if runtime.sms else []),
                *(
                    [group.create_task(_follow_foreign_codes(runtime), name="foreign-codes")]
                    if runtime.ownership
                    else []
                ),
                *(
                    [
                        group.create_task(
                            runtime.sms.follow_opt_outs(OPT_OUTS_REFRESH_SECONDS),
                            name="sms-opt-outs",
                        )
                    ]
                    if runtime.sms and runtime.ownership
                    else []
                ),
                *(
                    [group.create_task(runtime.authority.run(), name="authority")]
                    if runtime.authority
                    else []
                ),
                *(
                    group.create_task(job(runtime), name=f"job-{i}")
                    for i, job in enumerate(background)
                ),
            ]
            log.info(
                "service.started",
                lines=[line.id for line in runtime.network.lines],
                broker=settings.broker_url,
                database=runtime.store.engine.dialect.name,
            )
            try:
                async with _sharing(runtime):
                    yield runtime
            finally:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(runtime.writer.drained(), SHUTDOWN_FLUSH_SECONDS)
                for task in tasks:
                    task.cancel()
        log.info("service.stopped")
