"""Adapter: every table of the service, in one SQLAlchemy MetaData (what migrations must match)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

import line_service.storage.abuse_ledger
import line_service.storage.account_tables
import line_service.storage.driver_trip_table
import line_service.storage.money_tables
import line_service.storage.node_addresses
import line_service.storage.operator_table
import line_service.storage.party_store
import line_service.storage.rpc_outbox_table
import line_service.storage.sms_store
import line_service.storage.store
import line_service.storage.voice_store  # noqa: F401 - importing the modules registers their tables


def metadata() -> MetaData:
    """The models' MetaData, every table module imported."""
    return SQLModel.metadata
