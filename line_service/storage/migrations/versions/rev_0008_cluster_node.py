"""The cluster's address book `cluster_node`: each process's node id and HTTP URL.

A standby forwards the requests it gets to the owner of the lines at the URL recorded here
(docs/OPERATIONS.md, "Two nodes").

Revision 0008, after 0007.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "cluster_node",
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("http_url", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("cluster_node")
