"""The schema as `create_all` made it before migrations: requests, trips, devices, SMS, operators.

Revision 0001, the first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _utc(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _text(name: str, length: int, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    """Create every table and index of the service."""
    op.create_table(
        "ride_request",
        _text("id", 64),
        _text("line_id", 64),
        _text("stop_id", 64),
        _text("destination_id", 64),
        sa.Column("seats", sa.Integer(), nullable=False),
        _text("channel", 16),
        _text("source_ref", 160),
        _text("terminal_id", 64, nullable=True),
        _text("phone", 32, nullable=True),
        _text("code", 8, nullable=True),
        _text("state", 16),
        _text("cause", 32),
        _text("driver_ref", 160, nullable=True),
        _utc("created_at"),
        _utc("deadline_at"),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ride_request_state", "ride_request", ["state"])
    op.create_index("ix_ride_request_source_ref", "ride_request", ["source_ref"])
    op.create_index("ix_ride_request_updated_at", "ride_request", ["updated_at"])

    op.create_table(
        "request_event",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        _text("request_id", 64),
        _utc("at"),
        _text("from_state", 16, nullable=True),
        _text("to_state", 16),
        _text("cause", 32),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_request_event_request_id", "request_event", ["request_id"])

    op.create_table(
        "request_source_alias",
        _text("channel", 16),
        _text("source_ref", 160),
        _text("request_id", 64),
        sa.PrimaryKeyConstraint("channel", "source_ref"),
    )
    op.create_index("ix_request_source_alias_request_id", "request_source_alias", ["request_id"])

    op.create_table(
        "rider_phone_hash",
        _text("request_id", 64),
        _text("phone_hash", 64),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_rider_phone_hash_phone_hash", "rider_phone_hash", ["phone_hash"])

    op.create_table(
        "device_status",
        _text("kind", 16),
        _text("device_id", 64),
        _text("line_id", 64),
        sa.Column("online", sa.Boolean(), nullable=False),
        _utc("changed_at"),
        sa.PrimaryKeyConstraint("kind", "device_id"),
    )

    op.create_table(
        "trip",
        _text("id", 64),
        _text("request_id", 64),
        _text("operator_trip_id", 64),
        _text("line_id", 64),
        _text("origin_id", 64),
        _text("destination_id", 64),
        _utc("requested_at"),
        _utc("picked_up_at"),
        _utc("arrival_at"),
        sa.Column("distance_m", sa.Integer(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        _text("channel", 16),
        _text("driver_ref", 160),
        _text("driver_phone_trunc", 16, nullable=True),
        _text("driver_identity_key", 64, nullable=True),
        _text("passenger_ref", 64, nullable=True),
        _text("passenger_phone_trunc", 16, nullable=True),
        _text("passenger_identity_key", 64, nullable=True),
        sa.Column("fallback_dispatched", sa.Boolean(), nullable=False),
        sa.Column("driver_compensation_cents", sa.Integer(), nullable=False),
        sa.Column("passenger_contribution_cents", sa.Integer(), nullable=False),
        _text("flags", 200),
        _text("operator_class", 1),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_trip_operator_trip_id", "trip", ["operator_trip_id"])
    op.create_index("ix_trip_picked_up_at", "trip", ["picked_up_at"])
    op.create_index("ix_trip_driver_ref", "trip", ["driver_ref"])
    op.create_index("ix_trip_passenger_ref", "trip", ["passenger_ref"])

    op.create_table(
        "sms_inbound",
        _text("message_sid", 64),
        _text("phone_hash", 64),
        _text("command", 32),
        _text("reply", 1600),
        _utc("received_at"),
        sa.PrimaryKeyConstraint("message_sid"),
    )
    op.create_index("ix_sms_inbound_phone_hash", "sms_inbound", ["phone_hash"])

    op.create_table(
        "sms_delivery",
        _text("message_sid", 64),
        _text("status", 32),
        _text("error_code", 16, nullable=True),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("message_sid"),
    )

    op.create_table(
        "api_operator",
        _text("name", 80),
        _text("role", 16),
        _text("token_hash", 64),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_api_operator_token_hash", "api_operator", ["token_hash"])


def downgrade() -> None:
    """Drop every table (their indexes go with them)."""
    for table in (
        "api_operator",
        "sms_delivery",
        "sms_inbound",
        "trip",
        "device_status",
        "rider_phone_hash",
        "request_source_alias",
        "request_event",
        "ride_request",
    ):
        op.drop_table(table)
