"""operation error kind and lookup failures: why an operation failed, lookups counted apart"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_kind", sa.String(), nullable=True))
        batch_op.add_column(
            sa.Column("lookup_failures", sa.Integer(), nullable=False, server_default="0")
        )
    # Dead operations from before: a vendor's refusal needs an operator, anything else retries.
    op.execute(
        "UPDATE operation SET error_kind = CASE"
        " WHEN last_error LIKE 'UnsupportedOperation%' THEN 'unsupported'"
        " WHEN last_error LIKE 'InvalidIdentifierError%' THEN 'unsupported'"
        " WHEN last_error = 'rejected by an operator' THEN 'rejected'"
        " ELSE 'transient' END"
        " WHERE state = 'dead'"
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.drop_column("lookup_failures")
        batch_op.drop_column("error_kind")
