"""SCIM resources: users, their emails, groups and members an identity provider provisioned"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "scim_user",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(), nullable=False),
        sa.Column("user_name_key", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("display_name", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("resource_json", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_name_key"),
    )
    op.create_index("ix_scim_user_external_id", "scim_user", ["external_id"])
    op.create_index("ix_scim_user_display_name", "scim_user", ["display_name"])
    op.create_index("ix_scim_user_active", "scim_user", ["active"])
    op.create_table(
        "scim_user_email",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("value_key", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["scim_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scim_user_email_user_id", "scim_user_email", ["user_id"])
    op.create_index("ix_scim_user_email_value_key", "scim_user_email", ["value_key"])
    op.create_table(
        "scim_group",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("resource_json", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scim_group_display_name", "scim_group", ["display_name"])
    op.create_index("ix_scim_group_external_id", "scim_group", ["external_id"])
    op.create_table(
        "scim_group_member",
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["scim_group.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["scim_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "user_id"),
    )
    op.create_index("ix_scim_group_member_user_id", "scim_group_member", ["user_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("scim_group_member")
    op.drop_table("scim_group")
    op.drop_table("scim_user_email")
    op.drop_table("scim_user")
