"""The registry outbox `rpc_journey` and the attestation identities `party`.

`rpc_journey`: one row per trip, what is still to be done to attest it to the Registre de
preuve de covoiturage and its status there. `party`: the number (and, if given by SMS, last
name and adult or not) behind an `sms:<hash>` ref, which the registry's identity needs.

Revision 0006, after 0005.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create both tables."""
    op.create_table(
        "rpc_journey",
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("trip_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("cancel_code", sa.String(length=32), nullable=True),
        sa.Column("cancel_message", sa.String(length=512), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("journey_id"),
    )
    op.create_index("ix_rpc_journey_trip_at", "rpc_journey", ["trip_at"])
    op.create_index("ix_rpc_journey_status", "rpc_journey", ["status"])
    op.create_index("ix_rpc_journey_next_at", "rpc_journey", ["next_at"])
    op.create_table(
        "party",
        sa.Column("ref", sa.String(length=160), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("last_name", sa.String(length=64), nullable=True),
        sa.Column("over_18", sa.Boolean(), nullable=True),
        sa.Column("identity_key", sa.String(length=64), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ref"),
    )
    op.create_index("ix_party_phone", "party", ["phone"])
    op.create_index("ix_party_identity_key", "party", ["identity_key"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_party_identity_key", table_name="party")
    op.drop_index("ix_party_phone", table_name="party")
    op.drop_table("party")
    for index in ("ix_rpc_journey_next_at", "ix_rpc_journey_status", "ix_rpc_journey_trip_at"):
        op.drop_index(index, table_name="rpc_journey")
    op.drop_table("rpc_journey")
