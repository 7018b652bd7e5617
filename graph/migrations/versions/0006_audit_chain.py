"""audit chain: who did what, to which operation, with what outcome; each event hash-chained"""

import sqlalchemy as sa
from alembic import op

from graph.audit import GENESIS, chain

revision = "0006"
down_revision: str | None = "0005"

_COLUMNS = ("actor", "connector", "person_id", "operation_id", "outcome", "detail", "seq")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("event", schema=None) as batch_op:
        for name in ("actor", "connector"):
            batch_op.add_column(sa.Column(name, sa.String(), nullable=True))
        batch_op.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("operation_id", sa.Integer(), nullable=True))
        for name in ("outcome", "detail"):
            batch_op.add_column(sa.Column(name, sa.String(), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        for name in ("hash", "prev_hash"):
            batch_op.add_column(sa.Column(name, sa.String(), nullable=True))
        batch_op.create_index("uq_event_seq", ["seq"], unique=True)
        batch_op.create_index("ix_event_person_id", ["person_id"], unique=False)
    # Everything recorded before was syncd's own doing; chain it in the order it happened.
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE event SET actor = 'syncd'"))
    event = sa.table(
        "event",
        # Untyped: the values as the driver returns them, as `seal` and `verify` read them.
        *(sa.column(name) for name in ("id", "at", "source", "kind", "subject", "subject_id")),
        *(sa.column(name) for name in ("old_json", "new_json", "hash", "prev_hash", *_COLUMNS)),
    )
    rows = bind.execute(sa.select(event).order_by(event.c.id)).mappings().all()
    links = chain(rows, 0, GENESIS)
    if links:
        bind.execute(
            sa.update(event)
            .where(event.c.id == sa.bindparam("event_id"))
            .values(
                seq=sa.bindparam("seq"),
                hash=sa.bindparam("hash"),
                prev_hash=sa.bindparam("prev_hash"),
            ),
            links,
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_person_id")
        batch_op.drop_index("uq_event_seq")
        for name in ("prev_hash", "hash", *reversed(_COLUMNS)):
            batch_op.drop_column(name)
