"""Index ride_request.created_at: the API lists requests newest first, the report reads a month.

`GET /requests` (the dashboard's list) orders by created_at and keeps the first N, and the
monthly report selects a month of created_at: without an index both read and sort the whole
table, which only grows.

Revision 0002, after 0001.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the index."""
    op.create_index("ix_ride_request_created_at", "ride_request", ["created_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_ride_request_created_at", table_name="ride_request")
