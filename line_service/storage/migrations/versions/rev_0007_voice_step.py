"""The phone line's answered steps: `voice_step` (CallSid, step, number's hash, TwiML, when).

Twilio retries a webhook that timed out; the stored answer makes a retried step harmless.

Revision 0007, after 0006.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "voice_step",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=128), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("twiml", sa.String(length=4000), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_sid", "step"),
    )
    op.create_index("ix_voice_step_phone_hash", "voice_step", ["phone_hash"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("ix_voice_step_phone_hash", table_name="voice_step")
    op.drop_table("voice_step")
