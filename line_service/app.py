"""Composition root: `create_app(settings)` — the FastAPI app whose lifespan runs the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Scope

from line_service.cluster.metrics import OwnedLines
from line_service.cluster.ownership import LineOwnership
from line_service.dispatch.intake import NotOwnerError, StorageTimeout
from line_service.runtime import BackgroundJob, Runtime, build_runtime, running, utc_now
from line_service.settings import Settings
from line_service.sms.routes import sms
from line_service.voice.routes import voice
from line_service.web import account_routes, attestation_routes, driver_trip_routes
from line_service.web.cluster_door import ClusterDoor, DoorCounts, Locate, OwnerDoor
from line_service.web.dashboard import Operations, install_operations
from line_service.web.deps import lifespan_state, not_owner, storage_unavailable
from line_service.web.http_guard import HttpGuard, validation_failed
from line_service.web.models import ClusterPlaceOut
from line_service.web.open_data_routes import feeds, standard
from line_service.web.public_routes import api, health
from line_service.web.views import Placement, nowhere

log = structlog.get_logger(__name__)


def _web_state(
    runtime: Runtime, operations: Operations, door: OwnerDoor | None
) -> dict[str, object]:
    """The lifespan state the routes read (`request.state.<name>`): narrow pieces, no runtime."""
    engine = runtime.engine
    return {
        **lifespan_state(
            network=runtime.network,
            current_state=lambda: engine.state,
            clock=runtime.clock,
            intake=runtime.intake,
            store=runtime.store,
            readiness=runtime.ready,
            authority=operations.authority,
            estimates=runtime.estimates,
            public_url=runtime.settings.public_url,
            sign_in=runtime.sign_in,
            driver_trips=runtime.driver_trips,
        ),
        **operations.lifespan_state(),
        "sms": runtime.sms,
        "abuse": runtime.abuse,
        "trusted_proxies": runtime.settings.proxies,
        "rpc_outbox": runtime.authority.outbox if runtime.authority else None,
        "voice": runtime.voice,
        "placement": placement_of(runtime.ownership),
        "peers": door.ask_peers if door is not None else None,
    }


def _door(runtime: Runtime) -> OwnerDoor | None:
    """A cluster's any-door: a standby passes requests to the owner (line_service/cluster)."""
    ownership, addresses = runtime.ownership, runtime.node_addresses
    if ownership is None or addresses is None:
        return None
    locate, wants_body = _finder(runtime)
    return OwnerDoor(
        ownership.node,
        owns=ownership.owns,
        owner_of=ownership.owner_of,
        address_of=addresses.address_of,
        proxies=runtime.settings.proxies,
        locate=locate,
        wants_body=wants_body,
        look_again=ownership.look_again,
    )


def _finder(runtime: Runtime) -> tuple[Locate, Callable[[Scope], bool]]:
    """Which line a request is about (line_service/cluster/request_lines.py), and whether that
    needs its body; a database that cannot say leaves the request here (logged)."""
    from line_service.cluster.request_lines import Later, line_of_path, request_line
    from line_service.storage.request_lines import RequestLineLookup

    network = runtime.network
    lookup = runtime.request_lines or RequestLineLookup(
        runtime.store.engine, network, runtime.clock
    )

    def wants_body(scope: Scope) -> bool:
        found = line_of_path(scope["method"], scope["path"], scope["query_string"], network)
        return isinstance(found, Later) and found.body

    async def locate(scope: Scope, body: bytes | None) -> str | None:
        method = str(scope.get("method", "GET"))
        try:
            return await request_line(
                method,
                scope["path"],
                scope["query_string"],
                scope["headers"],
                body or b"",
                network,
                lookup,
            )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cluster.line_unknown", path=scope["path"][:120], error=str(exc)[:200])
            return None

    return locate, wants_body


def placement_of(ownership: LineOwnership | None) -> Placement:
    """Who dispatches each line, for the dashboard: this process, or the owner it last saw
    holding the line's lock."""
    if ownership is None:
        return nowhere

    def place(line_id: str) -> ClusterPlaceOut:
        here = ownership.owns(line_id)
        return ClusterPlaceOut(
            node=ownership.node,
            role="owner" if here else "standby",
            owner=ownership.owner_of(line_id),
        )

    return place


def create_app(
    settings: Settings,
    background: tuple[BackgroundJob, ...] = (),
    runtime: Runtime | None = None,
    already_running: bool = False,
) -> FastAPI:
    """The service as an ASGI app; nothing starts until its lifespan runs.

    With `already_running`, `runtime` is live already (`carpool-line serve` starts dispatching
    before it imports the web side) and the lifespan runs only the live-updates hub.
    """
    built = runtime or build_runtime(settings, utc_now)
    door = _door(built)

    async def run_hub(_runtime: Runtime) -> None:
        await operations.hub.run()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, object]]:
        async with contextlib.AsyncExitStack() as stack:
            if door is not None:
                stack.push_async_callback(door.aclose)
            if not already_running:
                live = await stack.enter_async_context(running(built, (*background, run_hub)))
                yield _web_state(live, operations, door)
                return
            hub = asyncio.create_task(operations.hub.run(), name="live-hub")
            try:
                yield _web_state(built, operations, door)
            finally:
                hub.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hub

    app = FastAPI(
        title="Carpool line service",
        version="0.1.0",
        summary="Dynamic carpool lines: stop terminals, variable-message signs, SMS, dispatcher.",
        lifespan=lifespan,
    )
    app.add_exception_handler(StorageTimeout, storage_unavailable)
    app.add_exception_handler(NotOwnerError, not_owner)
    app.add_exception_handler(RequestValidationError, validation_failed)
    if door is not None:  # inside HttpGuard: bodies are bounded before they are forwarded
        app.add_middleware(ClusterDoor, door=door)
    app.add_middleware(HttpGuard, max_body_bytes=built.settings.http_max_body_bytes)
    app.include_router(health)
    app.include_router(api)
    app.include_router(account_routes.router)
    app.include_router(attestation_routes.router)
    app.include_router(driver_trip_routes.router)
    app.include_router(sms)
    app.include_router(voice)
    app.include_router(feeds)
    app.include_router(standard)
    operations = install_operations(  # operator API, live updates, metrics, "/"
        app,
        api_tokens=built.settings.api_tokens,
        network=built.network,
        store=built.store,
        engine=built.engine,
        gateway=built.gateway,
        writer=built.writer,
        clock=built.clock,
        accounts=built.sign_in.book if built.sign_in is not None else None,
        abuse=built.abuse,
        placement=placement_of(built.ownership),
    )
    if built.ownership is not None:
        lines = [line.id for line in built.network.lines]
        operations.metrics.registry.register(OwnedLines(lines, built.ownership))
    if door is not None:
        operations.metrics.registry.register(DoorCounts(door))
    return app
