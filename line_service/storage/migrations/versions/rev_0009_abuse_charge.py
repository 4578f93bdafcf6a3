"""The abuse limits' counts: `abuse_charge` (key, tag, charge id, when) — wrong drivers' codes
by identity and by line, new ride requests by identity and by address.

In the database, the budgets survive a restart and are one for every process of a cluster.

Revision 0009, after 0008.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the table and its indexes (the window's query, a refund)."""
    op.create_table(
        "abuse_charge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("charge_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_abuse_charge_key_at", "abuse_charge", ["key", "at"])
    op.create_index("ix_abuse_charge_charge_id", "abuse_charge", ["charge_id"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("ix_abuse_charge_charge_id", table_name="abuse_charge")
    op.drop_index("ix_abuse_charge_key_at", table_name="abuse_charge")
    op.drop_table("abuse_charge")
