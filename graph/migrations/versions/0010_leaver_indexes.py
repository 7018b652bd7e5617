"""leaver indexes: unlinked accounts by email, missing accounts, authority rows covered"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"

_UNLINKED = sa.text("person_id IS NULL")
_MISSING = sa.text("missing_since IS NOT NULL")


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_account_unlinked_email",
        "account",
        ["email"],
        sqlite_where=_UNLINKED,
        postgresql_where=_UNLINKED,
    )
    op.create_index(
        "ix_account_missing",
        "account",
        ["connector"],
        sqlite_where=_MISSING,
        postgresql_where=_MISSING,
    )
    op.create_index(
        "ix_authority_row_current",
        "authority_row",
        ["source", "row_hash", "person_id", "version"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_authority_row_current", "authority_row")
    op.drop_index("ix_account_missing", "account")
    op.drop_index("ix_account_unlinked_email", "account")
