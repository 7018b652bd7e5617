"""strict email keys: emails re-keyed strictly (NFC, lowercase, IDNA 2008), loose forms kept"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from graph.emails import normalize_email

revision = "0003"
down_revision: str | None = "0002"

# Plain ASCII addresses keep their key; only the others are normalized again, in Python.
_NON_ASCII = {"sqlite": "{column} GLOB '*[^ -~]*'", "postgresql": "{column} ~ '[^ -~]'"}


def _non_ascii(column: str) -> sa.TextClause:
    dialect = op.get_bind().dialect.name
    return sa.text(_NON_ASCII.get(dialect, _NON_ASCII["postgresql"]).format(column=column))


def _rekey_people(conn: sa.Connection) -> None:
    # Every person email carries its loose form: an account's look-alike is found by it.
    conn.execute(sa.text("UPDATE person_email SET email_loose = email"))
    rows: Sequence[Any] = conn.execute(
        sa.select(*(sa.column(name) for name in ("id", "person_id", "email", "raw", "is_primary")))
        .select_from(sa.table("person_email"))
        .where(_non_ascii("raw"))
    ).all()
    for row in rows:
        key = normalize_email(row.raw)
        # An address invalid under the strict rules keeps its old key; it can never match.
        email = key.email or row.email
        conn.execute(
            sa.text("UPDATE person_email SET email = :email, email_loose = :loose WHERE id = :id"),
            {"email": email, "loose": key.loose_key or email, "id": row.id},
        )
        if row.is_primary:
            conn.execute(
                sa.text("UPDATE person SET primary_email = :email WHERE id = :id"),
                {"email": email, "id": row.person_id},
            )


def _rekey_accounts(conn: sa.Connection) -> None:
    rows: Sequence[Any] = conn.execute(
        sa.select(sa.column("id"), sa.column("email_raw"))
        .select_from(sa.table("account"))
        .where(_non_ascii("email_raw"))
    ).all()
    for row in rows:
        key = normalize_email(row.email_raw)
        conn.execute(
            sa.text(
                "UPDATE account SET email = :email, email_error = :error, email_loose = :loose "
                "WHERE id = :id"
            ),
            {"email": key.email, "error": key.error, "loose": key.loose, "id": row.id},
        )


# Links the looser rules made by email and the strict ones would not: the link stays (it
# is untrusted: no role, groups, email or reactivation) and an operator is asked.
_SUSPECT_LINKS = """
INSERT INTO conflict (key, kind, connector, email, person_id, account_id, detail_json, state,
                      created_at)
SELECT 'lookalike:' || a.id || ':' || a.person_id, 'lookalike', a.connector,
       COALESCE(a.email, a.email_raw), a.person_id, a.id, '{}', 'open', :now
FROM account a
WHERE a.person_id IS NOT NULL AND a.link_method = 'email'
  AND (
    a.email_loose IS NOT NULL
    OR a.email IS NULL
    OR (
      NOT EXISTS (
        SELECT 1 FROM person_email pe WHERE pe.person_id = a.person_id AND pe.email = a.email
      )
      AND EXISTS (
        SELECT 1 FROM person_email pe
        WHERE pe.person_id = a.person_id AND pe.email_loose = a.email
      )
    )
  )
ON CONFLICT (key) DO NOTHING
"""


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("account", sa.Column("email_loose", sa.String(), nullable=True))
    op.create_index(
        "ix_account_email_loose",
        "account",
        ["email_loose"],
        unique=False,
        sqlite_where=sa.text("email_loose IS NOT NULL"),
        postgresql_where=sa.text("email_loose IS NOT NULL"),
    )
    op.add_column("person_email", sa.Column("email_loose", sa.String(), nullable=True))
    op.create_index(
        op.f("ix_person_email_email_loose"), "person_email", ["email_loose"], unique=False
    )
    conn = op.get_bind()
    _rekey_people(conn)
    _rekey_accounts(conn)
    now = sa.bindparam("now", datetime.now(UTC), type_=sa.DateTime(timezone=True))
    conn.execute(sa.text(_SUSPECT_LINKS).bindparams(now))


def downgrade() -> None:
    """Revert this revision (keys stay strict: ASCII addresses, nearly all, are unchanged)."""
    op.drop_index(op.f("ix_person_email_email_loose"), table_name="person_email")
    with op.batch_alter_table("person_email", schema=None) as batch_op:
        batch_op.drop_column("email_loose")
    op.drop_index("ix_account_email_loose", table_name="account")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("email_loose")
