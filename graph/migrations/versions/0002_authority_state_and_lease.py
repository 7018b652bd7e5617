"""authority state and leases: the last feed applied, refusals awaiting approval, writers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "authority_state",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("applied_digest", sa.String(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refused_reason", sa.String(), nullable=True),
        sa.Column("refused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refused_digest", sa.String(), nullable=True),
        sa.Column("refused_count", sa.Integer(), nullable=True),
        sa.Column("approved_digest", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "lease",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("lease")
    op.drop_table("authority_state")
