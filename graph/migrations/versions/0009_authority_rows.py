"""authority rows: a hash per HR row last applied, with its person and their version"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "authority_row",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("row_hash", sa.String(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source", "row_hash"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("authority_row")
