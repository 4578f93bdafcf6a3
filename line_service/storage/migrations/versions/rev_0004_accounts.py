"""Rider and driver accounts: `account` (the verified number), `account_token` (token hashes),
`sign_in_challenge` (one-time codes sent by SMS, hashed); `driver_trip` (a signed-in driver's
"Je passe": a trip announced along a line).

The validation and app-request routes were open to anyone; they now need a token of an account
that proved, by a code texted to it, that it holds its number.

Revision 0004, after 0003.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "account",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone"),
    )
    op.create_table(
        "account_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_account_token_account_id", "account_token", ["account_id"])
    op.create_table(
        "sign_in_challenge",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_challenge_phone_hash", "sign_in_challenge", ["phone_hash"])
    op.create_table(
        "driver_trip",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("driver_ref", sa.String(length=160), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("direction_id", sa.String(length=64), nullable=False),
        sa.Column("from_stop", sa.String(length=64), nullable=False),
        sa.Column("towards", sa.String(length=64), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leaves_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("passes_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("riders_told", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_driver_trip_passes_until", "driver_trip", ["passes_until"])


def downgrade() -> None:
    """Drop the tables."""
    op.drop_index("ix_driver_trip_passes_until", table_name="driver_trip")
    op.drop_table("driver_trip")
    op.drop_index("ix_sign_in_challenge_phone_hash", table_name="sign_in_challenge")
    op.drop_table("sign_in_challenge")
    op.drop_index("ix_account_token_account_id", table_name="account_token")
    op.drop_table("account_token")
    op.drop_table("account")
