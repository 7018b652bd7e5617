"""authority state and leases: the last feed applied, refusals awaiting approval, writers"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"


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
