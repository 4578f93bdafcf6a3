"""Money follows proof: `trip.unpaid_reason`, `trip_review` (operators' decisions on held
trips, with who and when) and `banned_driver` (drivers who earn nothing).

A trip the anti-abuse rules hold is unpaid and unexported until an operator approves it; a
trip whose driver is the rider, or cannot be identified, is paid nothing and says why.

Revision 0005, after 0004.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the column and the two tables."""
    op.add_column("trip", sa.Column("unpaid_reason", sa.String(length=40), nullable=True))
    op.create_table(
        "trip_review",
        sa.Column("trip_id", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trip_id"),
    )
    op.create_table(
        "banned_driver",
        sa.Column("driver_key", sa.String(length=160), nullable=False),
        sa.Column("registry_user_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("banned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("driver_key"),
    )


def downgrade() -> None:
    """Drop the tables and the column."""
    op.drop_table("banned_driver")
    op.drop_table("trip_review")
    with op.batch_alter_table("trip") as batch:
        batch.drop_column("unpaid_reason")
