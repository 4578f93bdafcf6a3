"""Shell: the operator dashboard (static page served at `/`) and the wiring of the operator API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from line_service.runtime import Runtime
from line_service.web import lines_routes, requests_routes
from line_service.web.live import LiveHub, live_router
from line_service.web.metrics import ServiceMetrics, metrics_router
from line_service.web.operator_accounts import TokenAuthority

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


def install_operations(app: FastAPI, runtime: Runtime) -> Operations:
    """Add the operator API, live updates, metrics and the dashboard to the app.

    The caller must run `operations.hub.run` as a background job of the service.
    """
    hub = LiveHub(runtime)
    operations = Operations(
        authority=TokenAuthority(runtime.settings.api_tokens, runtime.store),
        hub=hub,
        metrics=ServiceMetrics(runtime, live_clients=lambda: hub.clients),
    )
    runtime.engine.listeners.extend([hub.on_step, operations.metrics.on_step])
    runtime.engine.step_timers.append(operations.metrics.observe_step)
    app.state.operations = operations
    app.include_router(lines_routes.router)
    app.include_router(requests_routes.router)
    app.include_router(live_router)
    app.include_router(metrics_router)
    app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return operations
