"""The numbers that wrote STOP: `sms_opt_out` (salted hash of the number, when).

French SMS practice (and the line's own promise in AIDE) is that STOP, STOP SMS or ARRET ends
every text to that number until it writes again; the list must survive a restart.

Revision 0003, after 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "sms_opt_out",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_hash"),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("sms_opt_out")
