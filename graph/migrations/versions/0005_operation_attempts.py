"""operation attempts: every try of an operation with the vendor's answer; finished_at"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "operation_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["operation_id"], ["operation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_operation_attempt_operation_id", "operation_attempt", ["operation_id"], unique=False
    )
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
    op.drop_index("ix_operation_attempt_operation_id", table_name="operation_attempt")
    op.drop_table("operation_attempt")
