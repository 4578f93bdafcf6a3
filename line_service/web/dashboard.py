"""Shell: the operator dashboard (static page served at `/`) and the wiring of the operator API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr

from dispatcher.model import Network
from line_service.accounts.book import AccountBook
from line_service.dispatch.device_gateway import DeviceGateway
from line_service.dispatch.engine import Engine
from line_service.dispatch.writer import Writer
from line_service.storage.store import Store
from line_service.web import lines_routes, requests_routes, rpc_routes, trips_routes
from line_service.web.live import LiveHub, live_router
from line_service.web.metrics import AbuseCounters, ServiceMetrics, metrics_router
from line_service.web.operator_accounts import TokenAuthority
from line_service.web.views import Placement, nowhere

STATIC = Path(__file__).parent / "static"

dashboard_router = APIRouter(include_in_schema=False)


@dashboard_router.get("/")
async def dashboard() -> FileResponse:
    """The operator dashboard (French; every asset is served by the service)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@dataclass
class Operations:
    """What the operator side adds to the service: tokens, the live hub, metrics."""

    authority: TokenAuthority
    hub: LiveHub
    metrics: ServiceMetrics

    def lifespan_state(self) -> dict[str, object]:
        """What the live socket and `/metrics` read from the lifespan state."""
        return {"hub": self.hub, "metrics": self.metrics}


def install_operations(
    app: FastAPI,
    *,
    api_tokens: SecretStr,
    network: Network,
    store: Store,
    engine: Engine,
    gateway: DeviceGateway,
    writer: Writer,
    clock: Callable[[], datetime],
    accounts: AccountBook | None = None,
    abuse: AbuseCounters | None = None,
    placement: Placement = nowhere,
) -> Operations:
    """Add the operator API, live updates, metrics and the dashboard to the app.

    The caller must run `operations.hub.run` as a background job of the service, and put
    `operations.lifespan_state()` in the lifespan state.
    """
    hub = LiveHub(network, lambda: engine.state, clock, placement=placement)
    operations = Operations(
        authority=TokenAuthority(api_tokens, store, clock, accounts),
        hub=hub,
        metrics=ServiceMetrics(network, engine, gateway, writer, live=hub, abuse=abuse),
    )
    engine.subscribe(hub.on_step)
    engine.subscribe(operations.metrics.on_step)
    engine.time_steps(operations.metrics.observe_step)
    app.include_router(lines_routes.router)
    app.include_router(requests_routes.router)
    app.include_router(trips_routes.router)
    app.include_router(rpc_routes.router)
    app.include_router(live_router)
    app.include_router(metrics_router)
    app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return operations
