"""Adapter: HTTP request and response bodies of the REST API (frozen pydantic models)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.request_machine import RideRequest

Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValidationIn(_Body):
    """A driver validates a rider's code."""

    code: Annotated[str, Field(pattern=r"^\d{4}$")]
    driver_ref: Annotated[str, Field(min_length=1, max_length=120)]


class RideRequestIn(_Body):
    """A ride asked through the API (an app)."""

    line_id: Slug
    stop_id: Slug
    destination_id: Slug
    seats: Annotated[int, Field(ge=1, le=4)] = 1
    client_ref: Annotated[str | None, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None


class RideRequestOut(_Body):
    """A ride request as the API shows it."""

    id: str
    line_id: str
    stop_id: str
    destination_id: str
    seats: int
    channel: str
    state: str
    cause: str
    code: str | None
    created_at: datetime
    deadline_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, request: RideRequest, with_code: bool = True) -> RideRequestOut:
        """The public view of a request."""
        return cls(
            id=request.id,
            line_id=request.line_id,
            stop_id=request.stop_id,
            destination_id=request.destination_id,
            seats=request.seats,
            channel=request.source.channel.value,
            state=request.state.value,
            cause=request.cause.value,
            code=request.code if with_code else None,
            created_at=request.created_at,
            deadline_at=request.deadline_at,
            updated_at=request.updated_at,
        )


class TransitionOut(_Body):
    """One step in a request's history."""

    at: datetime
    from_state: str | None
    to_state: str
    cause: str


class RideRequestDetail(_Body):
    """A request with its history."""

    request: RideRequestOut
    history: list[TransitionOut]


class SignOut(_Body):
    """A sign: what it was asked to show, what it says it shows, whether it is online."""

    id: str
    stop_id: str
    pages: list[list[str]]
    seq: int | None
    expires_at: datetime | None
    reported_pages: list[list[str]] | None
    online: bool | None


class LiveLineOut(_Body):
    """A line's live state."""

    line_id: str
    waiting: list[RideRequestOut]
    signs: list[SignOut]
    alerts: list[str]


class Problem(_Body):
    """An error answer."""

    detail: str


class Readiness(_Body):
    """What /readyz checked."""

    broker: bool
    database: bool
