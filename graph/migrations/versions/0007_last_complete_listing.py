"""last complete listing: when each connector last finished a listing that was complete"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("connector_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_complete_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE connector_state SET last_complete_at = listing_finished_at WHERE listing_complete"
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("connector_state", schema=None) as batch_op:
        batch_op.drop_column("last_complete_at")
