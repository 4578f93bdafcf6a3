"""Adapter: where each process of a cluster answers HTTP (`cluster_node`), for the any-door.

A process records its node id (its MQTT client id, also the `application_name` of its lock
session) and the URL its peers reach it at when it starts and again when it takes the lines; a
standby that knows the owner's node id from the lock reads the owner's URL here and forwards
requests there. Rows of processes gone stay: the lock, not this table, says who owns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

NODE_CHARS = 64
URL_CHARS = 500


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class ClusterNodeRecord(SQLModel, table=True):
    """One process of a cluster and the address its peers forward requests to."""

    __tablename__ = "cluster_node"

    node: str = Field(primary_key=True, max_length=NODE_CHARS)
    http_url: str = Field(max_length=URL_CHARS)
    updated_at: datetime = _utc_column(nullable=False)


class NodeAddresses:
    """Synchronous access to `cluster_node` (call it from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, node: str, http_url: str, at: datetime) -> None:
        """Say (again) where `node` answers HTTP."""
        with Session(self._engine) as session:
            session.merge(
                ClusterNodeRecord(
                    node=node[:NODE_CHARS], http_url=http_url[:URL_CHARS], updated_at=at
                )
            )
            session.commit()

    def address_of(self, node: str) -> str | None:
        """Where `node` said it answers HTTP, or None if it never did."""
        with Session(self._engine) as session:
            row = session.get(ClusterNodeRecord, node[:NODE_CHARS])
            return row.http_url if row else None
